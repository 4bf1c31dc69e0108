//! `exercises/CHECKSUMS`: a record of everything that decides an exercise's verdict, so the
//! runner can tell a learner which of it was modified (a check edited to pass proves nothing).
//!
//! Recorded per exercise: every file under `tests/` (checks and snapshots), its `exercise.toml`
//! beside the solution (which checks exist and what they must do), and the parts of `Cargo.toml` that decide what
//! runs as a check (test targets, features, dev-dependencies, lints, edition). The learner's own
//! `[dependencies]` are not recorded: adding one the workspace already has is allowed.
//!
//! The hash is FNV-1a over the text with line endings normalised (a Windows checkout with
//! `core.autocrlf` has the same checks). It detects accidents and shortcuts; it is not a defence
//! against someone determined to cheat themselves.

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
/// pending files and the files editors leave behind, then `Cargo.toml` and the metadata.
fn check_files(root: &Path, exercise: &Exercise) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect(&root.join(&exercise.dir).join("tests"), &mut files);
    files.retain(|f| !ignored(f));
    files.sort();
    files.push(root.join(exercise.meta_file()));
    files.push(root.join(&exercise.dir).join(MANIFEST));
    files
        .into_iter()
        .map(|f| f.strip_prefix(root).map(Path::to_path_buf).unwrap_or(f))
        .collect()
}

const MANIFEST: &str = "Cargo.toml";

/// insta's pending snapshots and editors' swap, backup and metadata files.
pub fn ignored(path: &Path) -> bool {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    name.ends_with(".snap.new")
        || name.ends_with(".pending-snap")
        || name.ends_with(".swp")
        || name.ends_with(".swo")
        || name.ends_with('~')
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || name == ".DS_Store"
}

/// What is hashed of a file: its text with CRLF line endings as LF, and of a manifest only
/// the tables that decide what runs as a check. `None` when there is nothing to compare (a
/// manifest that does not parse: cargo reports that itself, and nothing builds).
fn hashed_text(path: &Path, bytes: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    if path.file_name().is_some_and(|n| n == MANIFEST) {
        let manifest: toml::Table = toml::from_str(&text).ok()?;
        let mut kept = toml::Table::new();
        for key in [
            "lib",
            "test",
            "bench",
            "features",
            "dev-dependencies",
            "build-dependencies",
            "target",
            "lints",
        ] {
            if let Some(value) = manifest.get(key) {
                kept.insert(key.to_owned(), value.clone());
            }
        }
        if let Some(toml::Value::Table(package)) = manifest.get("package") {
            for key in ["edition", "build", "autotests", "autolib", "links"] {
                if let Some(value) = package.get(key) {
                    kept.insert(format!("package.{key}"), value.clone());
                }
            }
        }
        return toml::to_string(&kept).ok().map(String::into_bytes);
    }
    Some(text.into_bytes())
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
            let key = file.to_string_lossy().replace('\\', "/");
            let bytes = match fs::read(workshop.path(&file)) {
                Ok(bytes) => bytes,
                // A file that is gone is a difference to report, not an error.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(error).with_context(|| format!("reading {}", file.display()));
                }
            };
            match hashed_text(&file, &bytes) {
                Some(text) => sums.insert(key, format!("{:016x}", fnv1a(&text))),
                None => sums.insert(key, UNREADABLE.to_owned()),
            };
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
        "# Hashes of what decides each exercise's verdict, so `cargo xtask check` can tell when it was edited.\n\
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
    let slash = |path: &Path| path.to_string_lossy().replace('\\', "/");
    let prefix = format!("{}/", slash(&exercise.dir));
    let meta = slash(&exercise.meta_file());
    // Only this exercise's files are hashed: this runs on every learner check.
    let now = current(workshop, [exercise])?;
    let mut then = recorded(workshop);
    then.retain(|path, _| path.starts_with(&prefix) || *path == meta);
    Ok(differences(&now, &then))
}

/// Every check file that differs from the record, across the workshop (for `verify`).
pub fn stale(workshop: &Workshop) -> Result<Vec<String>> {
    let now = current(workshop, &workshop.exercises)?;
    Ok(differences(&now, &recorded(workshop)))
}

/// Stands for a manifest that does not parse: cargo says why, so it is not reported as edited.
const UNREADABLE: &str = "unreadable";

/// Paths whose hash changed, that are new, or that are gone.
fn differences(now: &BTreeMap<String, String>, then: &BTreeMap<String, String>) -> Vec<String> {
    let mut changed: Vec<String> = now
        .iter()
        .filter(|(_, hash)| *hash != UNREADABLE)
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
