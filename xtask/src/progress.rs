//! The learner's progress, kept per stable exercise id in `.workshop/progress.toml`.
//!
//! It lives outside git (the directory is ignored) so that pulling a new version of the
//! workshop never conflicts with it, and it is keyed by id, not by directory, so renaming an
//! exercise's slug keeps its progress.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub exercises: BTreeMap<String, ExerciseProgress>,
    /// Interview drill tallies, by question id.
    #[serde(default)]
    pub interview: BTreeMap<String, Tally>,
    #[serde(skip)]
    path: PathBuf,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ExerciseProgress {
    /// The last check of this exercise passed.
    #[serde(default)]
    pub solved: bool,
    /// How many hints the learner has revealed.
    #[serde(default)]
    pub hints_seen: usize,
    /// How many times the learner ran this exercise's checks (`check`, `watch`), for the
    /// instructor's progress view (`check --format json`, `cohort`).
    #[serde(default)]
    pub attempts: u32,
}

/// How often a question was answered as known or not known.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Tally {
    #[serde(default)]
    pub known: u32,
    #[serde(default)]
    pub unknown: u32,
}

impl Progress {
    pub fn file(root: &Path) -> PathBuf {
        root.join(".workshop").join("progress.toml")
    }

    pub fn load(root: &Path) -> Result<Self> {
        let path = Self::file(root);
        let mut progress: Progress = match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!("{} is damaged; delete it to start over", path.display())
            })?,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Progress::default()
            }
            // Never start over silently: the learner's record of solved exercises is in there.
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "reading {} (it must be UTF-8 text; fix or delete it to start over)",
                        path.display()
                    )
                });
            }
        };
        progress.path = path;
        Ok(progress)
    }

    pub fn save(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = toml::to_string(self).context("serialising progress")?;
        fs::write(&self.path, text).with_context(|| format!("writing {}", self.path.display()))
    }

    /// Saves, or warns that it could not (a read-only checkout): what the learner asked for
    /// was shown already and matters more than the record of it.
    pub fn save_or_warn(&self) {
        if let Err(error) = self.save() {
            eprintln!("note: your progress was not saved: {error:#}");
        }
    }

    pub fn get(&self, id: &str) -> ExerciseProgress {
        self.exercises.get(id).cloned().unwrap_or_default()
    }

    pub fn entry(&mut self, id: &str) -> &mut ExerciseProgress {
        self.exercises.entry(id.to_owned()).or_default()
    }

    pub fn is_solved(&self, id: &str) -> bool {
        self.get(id).solved
    }
}
