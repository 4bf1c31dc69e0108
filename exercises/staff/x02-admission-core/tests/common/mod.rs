//! The scan behind `loom_can_see_the_admission`: the code in `src/` that names synchronisation
//! loom cannot see. It reads whole `use` statements (however many lines they take, with their
//! groups and renames expanded into full paths) as well as paths written inline, and holds
//! `src/sync.rs` to its one job: a `std` atomic, lock or hint may appear there only in a
//! statement marked `#[cfg(not(feature = "loom"))]`, the normal build's side of the switch.

use std::fs;
use std::path::Path;

/// Paths that name synchronisation loom cannot see.
const UNSEEN: &[&str] = &[
    "std::sync",
    "core::sync",
    "alloc::sync",
    "std::hint",
    "core::hint",
    "parking_lot",
    "spin::",
];

/// What `std::sync` may still name, because none of it synchronises: `Arc` only shares
/// ownership, and loom's locks return the standard library's lock errors.
const NOT_SYNCHRONISATION: &[&str] = &[
    "Arc",
    "LockResult",
    "PoisonError",
    "TryLockError",
    "TryLockResult",
];

/// The attribute that marks the normal build's side of `src/sync.rs` (whitespace removed).
const NORMAL_BUILD_ONLY: &str = "#[cfg(not(feature=\"loom\"))]";

/// Every statement of `<crate_dir>/src/` that names synchronisation loom cannot see, as
/// `src/<file>:<line>: <code>`, sorted.
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
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let name = path
            .strip_prefix(&src)
            .expect("under src/")
            .display()
            .to_string();
        let text =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        for (at, code) in unseen_in(&text, name == "sync.rs") {
            let line = text[..at].matches('\n').count() + 1;
            found.push(format!("src/{name}:{line}: {code}"));
        }
    }
    found.sort();
    found
}

/// The unseen synchronisation in one file: (byte offset, the code that names it). In the
/// shim, statements marked for the normal build only are allowed.
pub fn unseen_in(text: &str, is_shim: bool) -> Vec<(usize, String)> {
    // Comments cut, every byte kept in place so that offsets still give line numbers.
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(cut) => format!("{}{}\n", &line[..cut], " ".repeat(line.len() - cut)),
            None => format!("{line}\n"),
        })
        .collect();
    let allowed = |at: usize| {
        let start = code[..at].rfind([';', '{', '}']).map_or(0, |sep| sep + 1);
        let before: String = code[start..at].split_whitespace().collect();
        is_shim && before.contains(NORMAL_BUILD_ONLY)
    };
    let mut found = Vec::new();
    // Whole `use` statements, however many lines they take; blanked once read, so that the
    // inline pass below does not read them again.
    let mut rest = code.clone();
    for at in use_keywords(&code) {
        let end = code[at..].find(';').map_or(code.len(), |end| at + end + 1);
        let statement = &code[at..end];
        let mut paths = Vec::new();
        expand(statement[3..end - at - 1].trim(), &mut paths);
        if paths.iter().any(|path| path_is_unseen(path)) && !allowed(at) {
            found.push((at, squeeze(statement)));
        }
        rest.replace_range(at..end, &" ".repeat(end - at));
    }
    // Paths written inline, in code: `std::sync::atomic::AtomicUsize::new(0)`.
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        for unseen in UNSEEN {
            for (at, _) in line.match_indices(unseen) {
                let synchronises = !unseen.ends_with("::sync")
                    || !only_not_synchronisation(&line[at + unseen.len()..]);
                if synchronises && !allowed(offset + at) {
                    found.push((offset + at, squeeze(line)));
                }
            }
        }
        offset += line.len();
    }
    found.sort();
    found.dedup_by(|a, b| text[..a.0].matches('\n').count() == text[..b.0].matches('\n').count());
    found
}

/// Byte offsets of every `use` keyword (a word of its own followed by a space or newline).
fn use_keywords(code: &str) -> Vec<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices("use")
        .map(|(at, _)| at)
        .filter(|&at| {
            let before = code[..at].chars().next_back();
            let after = code[at + 3..].chars().next();
            before.is_none_or(|c| !is_ident(c)) && after.is_some_and(char::is_whitespace)
        })
        .collect()
}

/// The full paths a use tree imports: `std::{sync::{Arc, Mutex}, hint}` gives
/// `std::sync::Arc`, `std::sync::Mutex`, `std::hint` (a rename `as x` dropped).
fn expand(tree: &str, paths: &mut Vec<String>) {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree.replace(" ::", "::").replace(":: ", "::");
    match (tree.find('{'), tree.rfind('}')) {
        (Some(open), Some(close)) if open < close => {
            let head = tree[..open].trim();
            let mut depth = 0;
            let mut part = String::new();
            for c in tree[open + 1..close].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !part.trim().is_empty() {
                            expand(&format!("{head}{}", part.trim()), paths);
                        }
                        part.clear();
                        continue;
                    }
                    _ => {}
                }
                part.push(c);
            }
        }
        _ => paths.push(
            tree.split(" as ")
                .next()
                .unwrap_or_default()
                .trim()
                .trim_start_matches("::")
                .trim_end_matches("::self")
                .to_owned(),
        ),
    }
}

/// Whether an imported path is synchronisation loom cannot see (or `std` itself, renamed).
fn path_is_unseen(path: &str) -> bool {
    if ["std", "core", "alloc"].contains(&path) {
        return true;
    }
    UNSEEN.iter().any(|unseen| {
        path.starts_with(unseen)
            && (!unseen.ends_with("::sync") || !only_not_synchronisation(&path[unseen.len()..]))
    })
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

/// A statement on one line, for the report.
fn squeeze(code: &str) -> String {
    code.split_whitespace().collect::<Vec<_>>().join(" ")
}
