//! The loom exercises keep their concurrent core behind a `sync` shim (`src/sync.rs`) that
//! switches to loom's types under the `loom` feature. loom explores only what it can see: a
//! flag on `std`'s atomics beside the shim's lock is invisible to it, and a model passes code
//! that races on a real server. This module finds such types in a crate's sources, so a check
//! can say so.

use std::fs;
use std::path::Path;

/// Paths that name synchronisation loom cannot see.
const UNSEEN: &[&str] = &[
    "std::sync",
    "core::sync",
    "std::hint",
    "core::hint",
    "parking_lot",
    "spin::",
];

/// What `std::sync` may still name outside the shim, because none of it synchronises: `Arc`
/// only shares ownership, and loom's locks return the standard library's lock errors.
const NOT_SYNCHRONISATION: &[&str] = &[
    "Arc",
    "LockResult",
    "PoisonError",
    "TryLockError",
    "TryLockResult",
];

/// Every line of `<crate_dir>/src/` outside `src/sync.rs` that names a synchronisation type
/// loom cannot see (comments aside), as `src/<file>:<line>: <code>`, sorted.
pub fn sync_outside_the_shim(crate_dir: &Path) -> Vec<String> {
    let src = crate_dir.join("src");
    let mut files = vec![src.clone()];
    let mut found = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            let entries =
                fs::read_dir(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            files.extend(entries.map(|entry| entry.expect("a directory entry").path()));
            continue;
        }
        let name = path
            .strip_prefix(&src)
            .expect("found under src/")
            .display()
            .to_string();
        if name == "sync.rs" || path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        for (number, line) in text.lines().enumerate() {
            if names_unseen(line.split("//").next().unwrap_or_default()) {
                found.push(format!("src/{name}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    found.sort();
    found
}

/// Whether a line of code names one of `UNSEEN` (`std::{sync::..}` included).
fn names_unseen(code: &str) -> bool {
    let named = UNSEEN.iter().any(|unseen| {
        code.match_indices(unseen).any(|(at, _)| {
            *unseen != "std::sync" || !only_not_synchronisation(&code[at + unseen.len()..])
        })
    });
    named || (code.contains("std::{") && (code.contains("sync") || code.contains("hint")))
}

/// Whether what follows a `std::sync` names only items of `NOT_SYNCHRONISATION`, as in
/// `::Arc`, `::PoisonError::into_inner` or `::{Arc, PoisonError}`.
fn only_not_synchronisation(rest: &str) -> bool {
    let Some(rest) = rest.strip_prefix("::") else {
        return false;
    };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let items: Vec<&str> = match rest.strip_prefix('{') {
        Some(group) => match group.split_once('}') {
            Some((inside, _)) => inside.split(',').map(str::trim).collect(),
            None => return false,
        },
        None => vec![
            rest.split(|c: char| !is_ident(c))
                .next()
                .unwrap_or_default(),
        ],
    };
    items
        .iter()
        .filter(|item| !item.is_empty())
        .all(|item| NOT_SYNCHRONISATION.contains(item))
}

#[cfg(test)]
mod tests {
    use super::names_unseen;

    #[test]
    fn synchronisation_loom_cannot_see_is_found() {
        for line in [
            "use std::sync::atomic::AtomicBool;",
            "use std::sync::{Arc, Mutex};",
            "static BUSY: std::sync::atomic::AtomicBool = AtomicBool::new(false);",
            "use std::{hint, sync::Arc};",
            "core::sync::atomic::fence(Ordering::SeqCst);",
            "std::hint::spin_loop();",
            "let lock = parking_lot::Mutex::new(0);",
            "let lock = spin::Mutex::new(0);",
        ] {
            assert!(names_unseen(line), "{line}");
        }
    }

    #[test]
    fn sharing_and_lock_errors_are_allowed() {
        for line in [
            "use std::sync::Arc;",
            "use std::sync::{Arc, PoisonError};",
            "let guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);",
            "use crate::sync::{Mutex, hint};",
            "let counts = Arc::new(Views::default());",
        ] {
            assert!(!names_unseen(line), "{line}");
        }
    }
}
