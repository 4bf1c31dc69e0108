//! Building a crate's checks and running them, one verdict per check.
//!
//! A check run is one `cargo test --no-run --message-format=json` per test target (which tells
//! us the compiler's diagnostics and the test binary's path), then the test binary itself,
//! run directly under a process-level time limit. Running the binary ourselves instead of
//! through `cargo test` saves a second cargo start-up on the learner's edit-check loop and lets
//! us stop a binary that hangs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::meta::Meta;

/// What one check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Failed, with what the check printed (its panic message, an insta diff).
    Fail(String),
    /// Never ran, and why (the crate does not compile, the binary was stopped).
    NotRun(String),
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// The outcome of running every check of one crate.
#[derive(Debug, Default)]
pub struct Report {
    /// `error[CODE]: message` lines of the first build that failed; empty if it compiled.
    pub diagnostics: Vec<String>,
    /// The compiler's rendered output for those errors, for the learner.
    pub rendered: String,
    /// Verdicts by check name, for every check the metadata declares, plus `lint`.
    pub verdicts: BTreeMap<String, Verdict>,
    /// Tests the binaries ran that the metadata does not declare.
    pub undeclared: Vec<String>,
    /// Cargo's own output, for `--verbose`.
    pub cargo_output: String,
}

impl Report {
    pub fn compiled(&self) -> bool {
        self.diagnostics.is_empty()
    }

    pub fn all_passed(&self) -> bool {
        self.compiled() && self.verdicts.values().all(Verdict::passed)
    }
}

/// How long a whole test binary may run before it is stopped. Each check has its own
/// watchdog (`harness::watchdog`, 20 s by default) that fires first; this is the backstop
/// for a binary that hangs outside any check.
fn binary_limit(checks: usize) -> Duration {
    if let Some(secs) = std::env::var("XTASK_BINARY_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_secs(secs);
    }
    Duration::from_secs(60 + 20 * checks as u64)
}

/// Builds and runs the checks of `package` (the exercise or its solution).
pub fn run(root: &Path, meta: &Meta, package: &str) -> Result<Report> {
    let mut report = Report::default();
    for target in meta.targets() {
        let names: Vec<&str> = meta
            .checks
            .iter()
            .filter(|c| c.target == target)
            .map(|c| c.name.as_str())
            .collect();
        let build = build(root, package, &target)?;
        report.cargo_output.push_str(&build.cargo_output);
        let Some(executable) = build.executable else {
            let why = if build.diagnostics.is_empty() {
                format!("the test target `{target}` could not be built")
            } else {
                "the crate does not compile".to_owned()
            };
            if report.diagnostics.is_empty() {
                report.diagnostics = build.diagnostics;
                report.rendered = build.rendered;
            }
            for name in names {
                report
                    .verdicts
                    .insert(name.to_owned(), Verdict::NotRun(why.clone()));
            }
            continue;
        };
        let outcome = run_binary(root, &executable, binary_limit(names.len()))?;
        report.cargo_output.push_str(&outcome.raw);
        for name in &names {
            let verdict = match outcome.results.get(*name) {
                Some(verdict) => verdict.clone(),
                None if outcome.stopped_after.is_some() => Verdict::Fail(format!(
                    "this check did not finish: the test process was stopped after {} s. \
                     A hang outside the check's own watchdog usually means a thread that never \
                     yields (a blocking loop, a lock that is never released). What a failure of \
                     this check means: {}",
                    outcome.stopped_after.unwrap_or_default().as_secs(),
                    meta.checks
                        .iter()
                        .find(|c| c.name == *name)
                        .map_or("", |c| c.means.as_str())
                )),
                None => Verdict::NotRun(format!("no test named `{name}` in the `{target}` target")),
            };
            report.verdicts.insert((*name).to_owned(), verdict);
        }
        report.undeclared.extend(
            outcome
                .results
                .keys()
                .filter(|name| !names.contains(&name.as_str()))
                .map(|name| format!("{target}::{name}")),
        );
    }
    if let Some(lint) = &meta.lint {
        let verdict = if report.compiled() {
            clippy(root, package, &lint.deny, &mut report.cargo_output)?
        } else {
            Verdict::NotRun("the crate does not compile".to_owned())
        };
        report.verdicts.insert("lint".to_owned(), verdict);
    }
    Ok(report)
}

struct Build {
    executable: Option<PathBuf>,
    diagnostics: Vec<String>,
    rendered: String,
    cargo_output: String,
}

/// Cargo flags for a test target: loom models run optimised (the workspace's `loom` profile,
/// release plus incremental) with the crate's `loom` feature.
fn target_flags(target: &str) -> Vec<&'static str> {
    if target == "loom" {
        vec!["--profile", "loom", "--features", "loom"]
    } else {
        vec![]
    }
}

fn build(root: &Path, package: &str, target: &str) -> Result<Build> {
    let output = Command::new(cargo())
        .current_dir(root)
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "-p",
            package,
            "--test",
            target,
        ])
        .args(target_flags(target))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running cargo test --no-run -p {package}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut build = Build {
        executable: None,
        diagnostics: Vec::new(),
        rendered: String::new(),
        cargo_output: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match message["reason"].as_str() {
            Some("compiler-message") => {
                if let Some(line) = diagnostic_line(&message["message"]) {
                    build.diagnostics.push(line);
                    if let Some(rendered) = message["message"]["rendered"].as_str() {
                        build.rendered.push_str(rendered);
                    }
                }
            }
            Some("compiler-artifact") => {
                let is_target = message["target"]["name"].as_str() == Some(target)
                    && message["profile"]["test"].as_bool() == Some(true);
                if let (true, Some(exe)) = (is_target, message["executable"].as_str()) {
                    build.executable = Some(PathBuf::from(exe));
                }
            }
            _ => {}
        }
    }
    if !output.status.success() {
        build.executable = None;
    }
    Ok(build)
}

/// `error[E0382]: use of moved value: `x``, or `error: message` when there is no code; `None`
/// for warnings and for the summary lines ("aborting due to ...") that carry no span.
pub fn diagnostic_line(message: &Value) -> Option<String> {
    if message["level"].as_str() != Some("error") {
        return None;
    }
    if message["spans"]
        .as_array()
        .is_none_or(|spans| spans.is_empty())
    {
        return None;
    }
    let text = message["message"].as_str()?;
    Some(match message["code"]["code"].as_str() {
        Some(code) => format!("error[{code}]: {text}"),
        None => format!("error: {text}"),
    })
}

/// Compiles `package` (a crate that must not compile) and returns its diagnostic lines.
pub fn compile_errors(root: &Path, package: &str) -> Result<Vec<String>> {
    let output = Command::new(cargo())
        .current_dir(root)
        .args(["build", "--message-format=json", "-p", package])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running cargo build -p {package}"))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-message")
        .filter_map(|m| diagnostic_line(&m["message"]))
        .collect())
}

fn clippy(root: &Path, package: &str, deny: &[String], log: &mut String) -> Result<Verdict> {
    let mut command = Command::new(cargo());
    command.current_dir(root).args([
        "clippy",
        "--message-format=json",
        "--all-targets",
        "-p",
        package,
        "--",
    ]);
    for lint in deny {
        command.args(["-D", lint]);
    }
    let output = command.stdin(Stdio::null()).output().with_context(|| {
        format!(
            "running cargo clippy -p {package} (is clippy installed? `rustup component add clippy`)"
        )
    })?;
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    let mut rendered = String::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-message" && diagnostic_line(&message["message"]).is_some()
        {
            rendered.push_str(message["message"]["rendered"].as_str().unwrap_or_default());
        }
    }
    Ok(if output.status.success() {
        Verdict::Pass
    } else if rendered.is_empty() {
        Verdict::Fail(String::from_utf8_lossy(&output.stderr).into_owned())
    } else {
        Verdict::Fail(rendered)
    })
}

struct BinaryOutcome {
    results: BTreeMap<String, Verdict>,
    stopped_after: Option<Duration>,
    raw: String,
}

fn run_binary(root: &Path, executable: &Path, limit: Duration) -> Result<BinaryOutcome> {
    let mut child = Command::new(executable)
        .current_dir(root)
        // Snapshots are compared, never written: a learner's run must not change the checks.
        .env("INSTA_UPDATE", "no")
        .env("INSTA_WORKSPACE_ROOT", root)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", executable.display()))?;
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let started = Instant::now();
    let mut stopped_after = None;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > limit {
            // A check that hangs outside its watchdog: stop the binary, keep what finished.
            let _ = child.kill();
            let _ = child.wait();
            stopped_after = Some(limit);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    Ok(BinaryOutcome {
        results: parse_libtest(&out),
        stopped_after,
        raw: format!("{out}{err}"),
    })
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Reads libtest's plain output: `test NAME ... ok|FAILED|ignored` lines, then the captured
/// output of each failure between `---- NAME stdout ----` markers.
pub fn parse_libtest(out: &str) -> BTreeMap<String, Verdict> {
    let mut results = BTreeMap::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, status)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let verdict = match status.trim() {
            "ok" => Verdict::Pass,
            "FAILED" => Verdict::Fail(String::new()),
            s if s.starts_with("ignored") => Verdict::NotRun("ignored".to_owned()),
            _ => continue,
        };
        results.insert(name.to_owned(), verdict);
    }
    let mut current: Option<(String, String)> = None;
    let finish = |current: &mut Option<(String, String)>,
                  results: &mut BTreeMap<String, Verdict>| {
        if let Some((name, text)) = current.take() {
            results.insert(name, Verdict::Fail(clean_failure(&text)));
        }
    };
    for line in out.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            finish(&mut current, &mut results);
            current = Some((name.to_owned(), String::new()));
        } else if line == "failures:" || line.starts_with("test result:") {
            finish(&mut current, &mut results);
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    finish(&mut current, &mut results);
    results
}

/// Keeps what a learner needs from a failure's output: the panic message (and an insta diff),
/// without thread ids, source locations inside dependencies or backtrace notes.
fn clean_failure(text: &str) -> String {
    let mut kept = Vec::new();
    for line in text.lines() {
        if line.starts_with("note: run with `RUST_BACKTRACE") {
            continue;
        }
        if line.starts_with("thread '") && line.contains("panicked at") {
            continue;
        }
        kept.push(line);
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    while kept.first().is_some_and(|l| l.trim().is_empty()) {
        kept.remove(0);
    }
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
running 3 tests
test b ... ok
test a ... FAILED
test c ... ignored, slow

failures:

---- a stdout ----

thread 'a' (123) panicked at exercises/junior/x/tests/checks.rs:28:9:
assertion `left == right` failed: one connection carried three requests
  left: \"1\"
 right: \"3\"
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    a

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.09s
";

    #[test]
    fn parses_verdicts_and_failure_messages() {
        let results = parse_libtest(OUTPUT);
        assert_eq!(results["b"], Verdict::Pass);
        assert_eq!(results["c"], Verdict::NotRun("ignored".to_owned()));
        assert_eq!(
            results["a"],
            Verdict::Fail(
                "assertion `left == right` failed: one connection carried three requests\n  left: \"1\"\n right: \"3\"".to_owned()
            )
        );
    }
}
