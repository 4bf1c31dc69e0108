//! `exercises/CHECKSUMS`: a record of every check file, so the runner can tell a learner that
//! the checks of an exercise were modified (a check that was edited to pass proves nothing).
//!
//! The hash is FNV-1a over the file's bytes: this detects accidents and shortcuts, it is not a
//! defence against someone determined to cheat themselves.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::workshop::{Exercise, Workshop};

const FILE: &str = "exercises/CHECKSUMS";

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The files that make up an exercise's checks: everything under `tests/` except insta's
/// pending files.
fn check_files(root: &Path, exercise: &Exercise) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect(&root.join(&exercise.dir).join("tests"), &mut files);
    files.retain(|f| {
        let name = f.to_string_lossy();
        !name.ends_with(".snap.new") && !name.ends_with(".pending-snap")
    });
    files.sort();
    files
        .into_iter()
        .map(|f| f.strip_prefix(root).map(Path::to_path_buf).unwrap_or(f))
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// `path -> hash` for every check file of `exercises`, as they are on disk now.
fn current<'a>(
    workshop: &Workshop,
    exercises: impl IntoIterator<Item = &'a Exercise>,
) -> Result<BTreeMap<String, String>> {
    let mut sums = BTreeMap::new();
    for exercise in exercises {
        for file in check_files(&workshop.root, exercise) {
            let bytes = fs::read(workshop.path(&file))
                .with_context(|| format!("reading {}", file.display()))?;
            sums.insert(
                file.to_string_lossy().replace('\\', "/"),
                format!("{:016x}", fnv1a(&bytes)),
            );
        }
    }
    Ok(sums)
}

fn recorded(workshop: &Workshop) -> BTreeMap<String, String> {
    fs::read_to_string(workshop.path(FILE))
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once("  "))
        .map(|(hash, path)| (path.to_owned(), hash.to_owned()))
        .collect()
}

/// Rewrites the record from the files on disk.
pub fn seal(workshop: &Workshop) -> Result<usize> {
    let sums = current(workshop, &workshop.exercises)?;
    let mut text = String::from(
        "# Hashes of every check file, so `cargo xtask check` can tell when checks were edited.\n\
         # Maintainers: regenerate with `cargo xtask seal` after changing checks.\n",
    );
    for (path, hash) in &sums {
        text.push_str(&format!("{hash}  {path}\n"));
    }
    fs::write(workshop.path(FILE), text).with_context(|| format!("writing {FILE}"))?;
    Ok(sums.len())
}

/// The check files of `exercise` that differ from the record (changed, added or removed).
pub fn modified(workshop: &Workshop, exercise: &Exercise) -> Result<Vec<String>> {
    let prefix = format!("{}/", exercise.dir.to_string_lossy().replace('\\', "/"));
    // Only this exercise's files are hashed: this runs on every learner check.
    let now = current(workshop, [exercise])?;
    let mut then = recorded(workshop);
    then.retain(|path, _| path.starts_with(&prefix));
    Ok(differences(&now, &then))
}

/// Every check file that differs from the record, across the workshop (for `verify`).
pub fn stale(workshop: &Workshop) -> Result<Vec<String>> {
    let now = current(workshop, &workshop.exercises)?;
    Ok(differences(&now, &recorded(workshop)))
}

/// Paths whose hash changed, that are new, or that are gone.
fn differences(now: &BTreeMap<String, String>, then: &BTreeMap<String, String>) -> Vec<String> {
    let mut changed: Vec<String> = now
        .iter()
        .filter(|(path, hash)| then.get(*path) != Some(*hash))
        .map(|(path, _)| path.clone())
        .collect();
    changed.extend(then.keys().filter(|path| !now.contains_key(*path)).cloned());
    changed
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
