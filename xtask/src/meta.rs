//! `exercise.toml`: the one place an exercise is described.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Everything the runner and the book know about an exercise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Stable id (`J01`): progress is stored under it.
    pub id: String,
    pub slug: String,
    pub level: String,
    pub title: String,
    pub minutes: u32,
    pub kinds: Vec<String>,
    pub summary: String,
    pub hints: Vec<String>,
    #[serde(default)]
    pub compile_fail: Option<CompileFail>,
    #[serde(default)]
    pub lint: Option<Lint>,
    #[serde(default, rename = "check")]
    pub checks: Vec<CheckMeta>,
}

/// The untouched exercise must not compile, with exactly these diagnostics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileFail {
    /// `error[CODE]: message` lines, in the order rustc reports them.
    pub diagnostics: Vec<String>,
    /// What the compiler protects the learner from, in the lesson's terms.
    pub explain: String,
}

/// Clippy lints the exercise must be clean of.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lint {
    pub deny: Vec<String>,
    /// Whether the lint check fails on the untouched exercise (when it compiles at all).
    #[serde(default)]
    pub fails_on_bug: bool,
    #[serde(default)]
    pub means: Option<String>,
    #[serde(default)]
    pub hint: Option<usize>,
}

/// One check: a `#[test]` function in one of the exercise's test targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckMeta {
    pub name: String,
    #[serde(default = "default_target")]
    pub target: String,
    pub kind: String,
    pub fails_on_bug: bool,
    pub means: String,
    pub hint: usize,
}

fn default_target() -> String {
    "checks".to_owned()
}

/// Check kinds the runner knows.
pub const KINDS: &[&str] = &["srv", "vt", "leak", "loom", "snap", "cf", "lint"];

impl Meta {
    /// Reads and validates one `exercise.toml`.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and validates the text of an `exercise.toml`.
    pub fn parse(text: &str) -> Result<Self> {
        let meta: Meta = toml::from_str(text).context("parsing")?;
        meta.validate()?;
        Ok(meta)
    }

    fn validate(&self) -> Result<()> {
        if self.hints.len() < 2 {
            bail!("an exercise needs at least two progressive hints");
        }
        for kind in &self.kinds {
            if !KINDS.contains(&kind.as_str()) {
                bail!("unknown check kind `{kind}` (known: {})", KINDS.join(", "));
            }
        }
        if self.kinds.iter().any(|k| k == "cf") != self.compile_fail.is_some() {
            bail!("kind `cf` and a [compile_fail] table go together");
        }
        if self.kinds.iter().any(|k| k == "lint") != self.lint.is_some() {
            bail!("kind `lint` and a [lint] table go together");
        }
        if self.checks.is_empty() && self.lint.is_none() {
            bail!("an exercise needs at least one [[check]]");
        }
        for check in &self.checks {
            if check.hint == 0 || check.hint > self.hints.len() {
                bail!(
                    "check `{}` points at hint {}, which does not exist",
                    check.name,
                    check.hint
                );
            }
            if !KINDS.contains(&check.kind.as_str()) {
                bail!("check `{}` has unknown kind `{}`", check.name, check.kind);
            }
        }
        Ok(())
    }

    /// The distinct test targets the checks live in, in the order first mentioned.
    pub fn targets(&self) -> Vec<String> {
        let mut targets: Vec<String> = Vec::new();
        for check in &self.checks {
            if !targets.contains(&check.target) {
                targets.push(check.target.clone());
            }
        }
        targets
    }
}
