//! Finds synchronisation loom cannot see in the crate's `src/`: whole paths and `use` trees,
//! however they are split across lines, so `use std::{\n sync::Mutex,\n};` is found too.
//!
//! Outside `src/sync.rs`, no file may name a `std` (or `core`, `alloc`) lock, atomic or spin
//! hint, nor tokio's or `futures`' synchronisation, nor count the handles of a `std` `Arc`. In
//! `src/sync.rs` the same holds everywhere but the items gated `#[cfg(not(feature = "loom"))]`,
//! the normal build's side of the switch: whatever the loom build runs must be loom's.

use std::fs;
use std::path::Path;

/// What may follow `std::sync::` outside the shim: none of it synchronises (`Arc` only shares
/// ownership, and loom's locks return the standard library's lock errors).
const NOT_SYNCHRONISATION: &[&str] = &[
    "Arc",
    "LockResult",
    "PoisonError",
    "TryLockError",
    "TryLockResult",
];

/// Paths whose every item synchronises in a way loom cannot see.
const UNSEEN_ROOTS: &[&str] = &[
    "std::hint",
    "core::hint",
    "tokio::sync",
    "futures::lock",
    "futures::task::AtomicWaker",
    "futures_util",
    "atomic_waker",
    "parking_lot",
    "spin",
];

/// Every place in `<crate_dir>/src/` that uses synchronisation loom cannot see, as
/// `src/<file>: <what>`, sorted.
pub fn unseen_sync(crate_dir: &Path) -> Vec<String> {
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
        let name = path.strip_prefix(&src).expect("under src/").display();
        let text =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut code = without_comments(&text);
        if name.to_string() == "sync.rs" {
            code = without_the_normal_build(&code);
        }
        let code = code.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut std_arc = false;
        for path in paths(&code) {
            if is_std_arc(&path) {
                std_arc = true;
            } else if is_unseen(&path) {
                found.push(format!("src/{name}: `{path}`"));
            }
        }
        if std_arc && (code.contains("strong_count") || code.contains("weak_count")) {
            found.push(format!(
                "src/{name}: counts the handles of a `std::sync::Arc` (`strong_count`): that \
                 count is a `std` atomic, and a drain that decides on it races unseen"
            ));
        }
    }
    found.sort();
    found.dedup();
    found
}

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `code` without the items gated `#[cfg(not(feature = "loom"))]`.
fn without_the_normal_build(code: &str) -> String {
    let mut kept = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[") {
        kept.push_str(&rest[..at]);
        let Some(end) = rest[at..].find(']') else {
            return kept + &rest[at..];
        };
        let attribute: String = rest[at..=at + end].split_whitespace().collect();
        rest = &rest[at + end + 1..];
        if attribute.replace("( ", "(") == r#"#[cfg(not(feature="loom"))]"# {
            rest = &rest[item_len(rest)..];
        } else {
            kept.push_str(&attribute);
        }
    }
    kept + rest
}

/// The length of the item at the start of `code`: up to its `;`, or to the `}` that closes a
/// `mod`'s or `fn`'s body.
fn item_len(code: &str) -> usize {
    let is_use = code
        .trim_start()
        .trim_start_matches("pub ")
        .starts_with("use ");
    let mut depth = 0usize;
    for (at, c) in code.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && !is_use {
                    return at + 1;
                }
            }
            ';' if depth == 0 => return at + 1,
            _ => {}
        }
    }
    code.len()
}

/// Every path rooted at `std`, `core`, `alloc` or a root of `UNSEEN_ROOTS` in `code`, with its
/// `use` trees expanded: `std::{sync::Mutex, hint}` gives `std::sync::Mutex` and `std::hint`.
fn paths(code: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let roots = ["std", "core", "alloc", "tokio", "futures", "futures_util"]
        .into_iter()
        .chain(["atomic_waker", "parking_lot", "spin"]);
    let mut found = Vec::new();
    for root in roots {
        for (at, _) in code.match_indices(root) {
            let before = code[..at].chars().next_back();
            let after = &code[at + root.len()..];
            if before.is_some_and(is_ident) || !after.starts_with("::") {
                continue;
            }
            expand(root, &tree(&after[2..]), &mut found);
        }
    }
    found
}

/// The use tree (or path) at the start of `code`: path segments, and braces with what is inside.
fn tree(code: &str) -> String {
    let mut depth = 0usize;
    for (at, c) in code.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return code[..at].to_owned(),
            '}' => depth -= 1,
            c if c.is_alphanumeric() || "_:*".contains(c) => {}
            ' ' | ',' if depth > 0 => {}
            _ => return code[..at].to_owned(),
        }
    }
    code.to_owned()
}

/// Expands a use tree under `prefix` into flat paths.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        // `Arc as Token` is still `Arc`.
        let path = tree.split(" as ").next().unwrap_or_default();
        let path = path.trim().trim_end_matches("::");
        out.push(match path {
            "" => prefix.to_owned(),
            _ => format!("{prefix}::{path}"),
        });
        return;
    };
    let head = tree[..open].trim_end_matches("::");
    let prefix = match head {
        "" => prefix.to_owned(),
        _ => format!("{prefix}::{head}"),
    };
    let inside = tree[open + 1..]
        .strip_suffix('}')
        .unwrap_or(&tree[open + 1..]);
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in inside.char_indices().chain([(inside.len(), ',')]) {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                let item = inside[start..at].trim();
                match item {
                    "" => {}
                    "self" => out.push(prefix.clone()),
                    _ => expand(&prefix, item, out),
                }
                start = at + 1;
            }
            _ => {}
        }
    }
}

fn is_std_arc(path: &str) -> bool {
    ["std::sync::Arc", "alloc::sync::Arc"].contains(&path)
}

fn is_unseen(path: &str) -> bool {
    for root in ["std::sync", "core::sync", "alloc::sync"] {
        if let Some(rest) = path.strip_prefix(root) {
            let item = rest
                .trim_start_matches("::")
                .split("::")
                .next()
                .unwrap_or_default();
            return !NOT_SYNCHRONISATION.contains(&item);
        }
    }
    UNSEEN_ROOTS
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}::")))
}
