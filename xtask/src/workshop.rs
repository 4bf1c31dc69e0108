//! The workshop on disk: where it is, and the exercises its metadata describes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::meta::Meta;

/// The levels, in the order the book and the runner walk them.
pub const LEVELS: &[&str] = &["junior", "middle", "senior", "professional", "staff"];

/// The workshop checkout the runner works on.
#[derive(Debug)]
pub struct Workshop {
    pub root: PathBuf,
    /// Every exercise, in course order: by level, then by id.
    pub exercises: Vec<Exercise>,
}

/// One exercise: its metadata and where its parts live.
#[derive(Debug, Clone)]
pub struct Exercise {
    pub meta: Meta,
    /// `exercises/<level>/<id>-<slug>`, relative to the root.
    pub dir: PathBuf,
    /// `solutions/<level>/<id>-<slug>`, relative to the root.
    pub solution_dir: PathBuf,
    /// `book/src/<level>/exercises/<id>-<slug>.md`, relative to the root.
    pub page: PathBuf,
}

/// The metadata's file name. It lives beside the solution, not in the folder the learner
/// edits: it holds every hint and what each check's failure means, which the runner reveals
/// one at a time.
pub const META: &str = "exercise.toml";

impl Exercise {
    /// The cargo package of the exercise the learner edits.
    pub fn package(&self) -> String {
        self.dir_name()
    }

    /// The cargo package of the solution.
    pub fn solution_package(&self) -> String {
        format!("{}-solution", self.dir_name())
    }

    /// `solutions/<level>/<id>-<slug>/exercise.toml`, relative to the root.
    pub fn meta_file(&self) -> PathBuf {
        self.solution_dir.join(META)
    }

    /// `j01-conn-vs-req`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.meta.id.to_lowercase(), self.meta.slug)
    }
}

impl Workshop {
    /// Finds the workshop from `WORKSHOP_ROOT` or by walking up from the current directory.
    pub fn locate() -> Result<Self> {
        let root = match std::env::var_os("WORKSHOP_ROOT") {
            Some(root) => PathBuf::from(root),
            None => {
                let cwd = std::env::current_dir().context("reading the current directory")?;
                match cwd.ancestors().find(|dir| is_workshop(dir)) {
                    Some(dir) => dir.to_path_buf(),
                    None => bail!(
                        "not inside the workshop: no directory from {} upwards has both \
                         Cargo.toml and exercises/.\nRun cargo xtask from your clone of the workshop.",
                        cwd.display()
                    ),
                }
            }
        };
        if !is_workshop(&root) {
            bail!(
                "{} is not a workshop checkout (no Cargo.toml and exercises/)",
                root.display()
            );
        }
        Self::load(root)
    }

    /// Reads every `solutions/<level>/<dir>/exercise.toml` under `root`.
    pub fn load(root: PathBuf) -> Result<Self> {
        let mut exercises = Vec::new();
        for level in LEVELS {
            let level_dir = root.join("solutions").join(level);
            if !level_dir.is_dir() {
                continue;
            }
            let mut dirs: Vec<PathBuf> = fs::read_dir(&level_dir)
                .with_context(|| format!("listing {}", level_dir.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.join(META).is_file())
                .collect();
            dirs.sort();
            for dir in dirs {
                let meta = read_meta(&root, &dir.join(META))?;
                let rel = dir.strip_prefix(&root).unwrap_or(&dir).to_path_buf();
                let name = rel
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let exercise = Exercise {
                    dir: Path::new("exercises").join(level).join(&name),
                    page: Path::new("book/src")
                        .join(level)
                        .join("exercises")
                        .join(format!("{name}.md")),
                    solution_dir: rel,
                    meta,
                };
                if exercise.meta.level != *level {
                    bail!(
                        "{}: it says level = \"{}\" but lives under solutions/{level}/",
                        exercise.meta_file().display(),
                        exercise.meta.level
                    );
                }
                if exercise.dir_name() != name {
                    bail!(
                        "{}: the directory must be named `{}` after its id and slug",
                        exercise.solution_dir.display(),
                        exercise.dir_name()
                    );
                }
                if !root.join(&exercise.dir).is_dir() {
                    bail!(
                        "{} describes an exercise, but {} does not exist",
                        exercise.meta_file().display(),
                        exercise.dir.display()
                    );
                }
                exercises.push(exercise);
            }
        }
        let mut seen = BTreeSet::new();
        for exercise in &exercises {
            if !seen.insert(exercise.meta.id.clone()) {
                bail!("two exercises share the id {}", exercise.meta.id);
            }
        }
        Ok(Self { root, exercises })
    }

    /// Resolves what a learner typed (`J01`, `j01`, `conn-vs-req`, `j01-conn-vs-req`) to an
    /// exercise, or fails with the closest ids.
    pub fn find(&self, query: &str) -> Result<&Exercise> {
        let q = query.trim().to_lowercase();
        let found = self
            .exercises
            .iter()
            .find(|e| e.meta.id.to_lowercase() == q || e.meta.slug == q || e.dir_name() == q);
        match found {
            Some(exercise) => Ok(exercise),
            None => {
                let mut scored: Vec<(usize, &str)> = self
                    .exercises
                    .iter()
                    .map(|e| {
                        let score = [e.meta.id.to_lowercase(), e.meta.slug.clone(), e.dir_name()]
                            .iter()
                            .map(|candidate| distance(&q, candidate))
                            .min()
                            .unwrap_or(usize::MAX);
                        (score, e.meta.id.as_str())
                    })
                    .collect();
                scored.sort();
                let closest: Vec<&str> = scored.iter().take(3).map(|(_, id)| *id).collect();
                bail!(
                    "unknown exercise `{query}`. Closest: {}.\nRun `cargo xtask list` to see them all.",
                    closest.join(", ")
                )
            }
        }
    }

    /// Absolute path of a path relative to the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }
}

/// An exercise's metadata; if the learner's copy no longer parses, the committed one, so that
/// one broken file cannot stop `list`, `hint` or the `reset` that repairs it.
fn read_meta(root: &Path, path: &Path) -> Result<Meta> {
    let error = match Meta::read(path) {
        Ok(meta) => return Ok(meta),
        Err(error) => error,
    };
    let rel = path.strip_prefix(root).unwrap_or(path);
    let committed = std::process::Command::new("git")
        .current_dir(root)
        .arg("show")
        .arg(format!("HEAD:{}", rel.to_string_lossy().replace('\\', "/")))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| Meta::parse(&String::from_utf8_lossy(&out.stdout)).ok());
    match committed {
        Some(meta) => {
            eprintln!(
                "note: {} does not parse ({error:#}); using the committed version. `cargo xtask reset {}` restores it.",
                rel.display(),
                meta.id
            );
            Ok(meta)
        }
        None => Err(error),
    }
}

/// The workshop's cargo target directory (`CARGO_TARGET_DIR` if set).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"))
}

fn is_workshop(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("exercises").is_dir()
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::distance;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("j1", "j01"), 1);
        assert_eq!(distance("conn-vs-req", "conn-vs-req"), 0);
        assert_eq!(distance("", "abc"), 3);
    }
}
