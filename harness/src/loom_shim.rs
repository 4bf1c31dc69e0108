//! The loom exercises keep their concurrent core behind a `sync` shim (`src/sync.rs`) that
//! switches to loom's types under the `loom` feature. loom explores only what it can see: a
//! flag on `std`'s atomics beside the shim's lock is invisible to it, and a model passes code
//! that races on a real server. This module finds such types in a crate's sources, so a check
//! can say so.
//!
//! It reads code, not lines: comments and string literals are set aside, and every path is read
//! whole, however it is split across lines, with its `use` tree expanded (`use std::{\n
//! sync::{atomic::AtomicBool, Arc as Shared},\n};` names `std::sync::atomic::AtomicBool` and
//! `std::sync::Arc`). `src/sync.rs` is read too: only the items gated
//! `#[cfg(not(feature = "loom"))]`, the normal build's side of the switch, may name a `std`
//! lock, since whatever else it holds runs in the loom build, where loom must see it.

use std::fs;
use std::path::Path;

/// What a scan forbids besides the standard library's synchronisation, which every scan
/// forbids (`std`/`core`/`alloc`'s locks, atomics, `OnceLock`s and channels, their spin hints,
/// and the crates built on `std`'s atomics: `parking_lot`, `spin`, `arc_swap`).
///
/// The exercises differ on the rest, and say so with one of the constants below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbid {
    /// tokio's and `futures`' synchronisation too: `tokio::sync`, `futures::lock`,
    /// `futures::channel`, `AtomicWaker`, `futures_util`, `atomic_waker`. Their locks and
    /// wakers sit on `std` atomics, so loom cannot see them either; but the server code of an
    /// exercise (its accept loop, beside the core) may use a tokio channel or semaphore with
    /// nothing to do with the model, and there a tokio type run by the core is caught anyway by
    /// the check's other half (it runs on a plain thread, where loom's types panic).
    pub async_sync: bool,
    /// Counting the handles of a `std` `Arc` (`strong_count`, `weak_count` in a file that names
    /// `std::sync::Arc`): the count is a `std` atomic, so a core that decides on it races
    /// unseen. Only where the shim's `Arc` is not `std`'s in the loom build (and where no
    /// exercise file shares a `std` `Arc` for other reasons).
    pub std_arc_counts: bool,
}

impl Forbid {
    /// The standard library's synchronisation only: the exercises whose core is a data
    /// structure inside a server that may use tokio's own tools elsewhere (J05, J07, M10, M11,
    /// S08).
    pub const STD: Forbid = Forbid {
        async_sync: false,
        std_arc_counts: false,
    };

    /// Every synchronisation loom cannot see, anywhere in `src/`: the staff cores (X01, X02),
    /// built from the standard library's types alone, whose crate is nothing but the core and
    /// a thin server around it.
    pub const WHOLE_CORE: Forbid = Forbid {
        async_sync: true,
        std_arc_counts: true,
    };
}

/// What `std::sync` may still name, because none of it synchronises: `Arc` only shares
/// ownership, and loom's locks return the standard library's lock errors. (So may
/// `std::sync::atomic::Ordering`, the enum loom's atomics take too.)
const NOT_SYNCHRONISATION: &[&str] = &[
    "Arc",
    "LockResult",
    "PoisonError",
    "TryLockError",
    "TryLockResult",
];

/// The crates a path can start from that matter here.
const STD_ROOTS: &[&str] = &["std", "core", "alloc"];
/// Crates built on `std`'s atomics, unseen by loom whatever is taken from them.
const UNSEEN_CRATES: &[&str] = &["parking_lot", "spin", "arc_swap"];
/// The same, for [`Forbid::async_sync`]: whole crates, then paths inside a crate.
const ASYNC_CRATES: &[&str] = &["futures_util", "atomic_waker"];
const ASYNC_PATHS: &[&str] = &[
    "tokio::sync",
    "futures::lock",
    "futures::channel",
    "futures::task::AtomicWaker",
];

/// The attribute that marks the normal build's side of `src/sync.rs` (whitespace removed).
const NORMAL_BUILD_ONLY: &str = "#[cfg(not(feature=\"loom\"))]";

/// Every place in `<crate_dir>/src/` that names synchronisation loom cannot see, one line each:
/// `src/<file>:<line>: <the paths>`, in file and line order. `src/sync.rs` (or `src/sync/mod.rs`)
/// is scanned too, except its items gated `#[cfg(not(feature = "loom"))]`.
pub fn sync_outside_the_shim(crate_dir: &Path, forbid: Forbid) -> Vec<String> {
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
            .expect("found under src/")
            .display()
            .to_string()
            .replace('\\', "/");
        let text =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let is_shim = name == "sync.rs" || name == "sync/mod.rs";
        for (line, what) in unseen_in(&text, is_shim, forbid) {
            found.push((name.clone(), line, what));
        }
    }
    found.sort();
    found
        .into_iter()
        .map(|(name, line, what)| format!("src/{name}:{line}: {what}"))
        .collect()
}

/// The unseen synchronisation in one file's `text`, as (line, what was found).
fn unseen_in(text: &str, is_shim: bool, forbid: Forbid) -> Vec<(usize, String)> {
    let mut code = blanked(text, true);
    if is_shim {
        without_the_normal_build(&blanked(text, false), &mut code);
    }
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut std_arc = false;
    for (at, paths) in path_trees(&code, forbid) {
        std_arc |= paths.iter().any(|path| is_std_arc(path));
        let unseen: Vec<String> = paths
            .into_iter()
            .filter(|path| is_unseen(path, forbid))
            .map(|path| format!("`{path}`"))
            .collect();
        if !unseen.is_empty() {
            let shim = if is_shim {
                " (in the shim, outside its `#[cfg(not(feature = \"loom\"))]` side: the loom \
                 build uses it)"
            } else {
                ""
            };
            found.push((line_of(at), format!("{}{shim}", unseen.join(", "))));
        }
    }
    if forbid.std_arc_counts && std_arc {
        let counts = ["strong_count", "weak_count"]
            .iter()
            .flat_map(|count| words(&code, count))
            .min();
        if let Some(at) = counts {
            found.push((
                line_of(at),
                "counts the handles of a `std::sync::Arc` (`strong_count`, `weak_count`): that \
                 count is a `std` atomic"
                    .to_owned(),
            ));
        }
    }
    found.sort();
    found
}

/// `text` with every comment replaced by spaces and, if `strings`, the inside of every string
/// and character literal too. Newlines and byte offsets are kept, so an offset in the result is
/// one in `text`, on the same line.
fn blanked(text: &str, strings: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, from: usize, to: usize| {
        for c in text[from..to].chars() {
            match c {
                '\n' => out.push('\n'),
                c => out.extend(std::iter::repeat_n(' ', c.len_utf8())),
            }
        }
    };
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut at = 0;
    while at < bytes.len() {
        let rest = &text[at..];
        let before_is_ident = at > 0 && is_ident(bytes[at - 1]);
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(text.len(), |end| at + end);
            blank(&mut out, at, end);
            at = end;
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            let mut end = at;
            while end < bytes.len() {
                if text[end..].starts_with("/*") {
                    depth += 1;
                    end += 2;
                } else if text[end..].starts_with("*/") {
                    depth -= 1;
                    end += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    end += 1;
                }
            }
            let end = end.min(text.len());
            blank(&mut out, at, end);
            at = end;
        } else if let Some(hashes) = raw_string_start(rest).filter(|_| !before_is_ident) {
            // `r"..."`, `r#"..."#`, `br"..."`: no escapes, ends at the quote and its hashes.
            let open = rest.find('"').expect("a raw string's quote") + 1;
            let close = format!("\"{}", "#".repeat(hashes));
            let end = rest[open..]
                .find(&close)
                .map_or(text.len(), |end| at + open + end);
            out.push_str(&text[at..at + open]);
            if strings {
                blank(&mut out, at + open, end);
            } else {
                out.push_str(&text[at + open..end]);
            }
            let after = (end + close.len()).min(text.len());
            out.push_str(&text[end..after]);
            at = after;
        } else if bytes[at] == b'"' {
            let mut end = at + 1;
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(text.len());
            out.push('"');
            if strings {
                blank(&mut out, at + 1, end);
            } else {
                out.push_str(&text[at + 1..end]);
            }
            if end < text.len() {
                out.push('"');
            }
            at = end + 1;
        } else if bytes[at] == b'\'' {
            // A character literal (`'x'`, `'\n'`, `'"'`), or a lifetime (`'a`), left as it is.
            let mut chars = rest[1..].char_indices();
            let end = match chars.next() {
                Some((_, '\\')) => rest
                    .get(3..)
                    .and_then(|r| r.find('\''))
                    .map(|end| at + 3 + end),
                Some((_, c)) if rest[1 + c.len_utf8()..].starts_with('\'') => {
                    Some(at + 1 + c.len_utf8())
                }
                _ => None,
            };
            match end {
                Some(end) if strings => {
                    out.push('\'');
                    blank(&mut out, at + 1, end);
                    out.push('\'');
                    at = end + 1;
                }
                Some(end) => {
                    out.push_str(&text[at..=end]);
                    at = end + 1;
                }
                None => {
                    out.push('\'');
                    at += 1;
                }
            }
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// If `code` starts a raw string (`r"`, `r#"`, `br##"`...), how many `#` close it.
fn raw_string_start(code: &str) -> Option<usize> {
    let rest = code.strip_prefix('b').unwrap_or(code).strip_prefix('r')?;
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    rest[hashes..].starts_with('"').then_some(hashes)
}

/// Blanks in `code` the items that `shim` (the same file, strings kept) gates
/// `#[cfg(not(feature = "loom"))]`: the normal build's side of the switch.
fn without_the_normal_build(shim: &str, code: &mut String) {
    let mut from = 0;
    while let Some(found) = shim[from..].find('#') {
        let at = from + found;
        from = at + 1;
        let after = shim[at + 1..].trim_start();
        if !after.starts_with('[') {
            continue;
        }
        let open = shim.len() - after.len();
        let Some(close) = closing(shim, open) else {
            return;
        };
        let attribute: String = shim[at..=close].split_whitespace().collect();
        if attribute != NORMAL_BUILD_ONLY {
            continue;
        }
        let end = close + 1 + item_len(&code[close + 1..]);
        code.replace_range(at..end, &blanked_range(&code[at..end]));
        from = end;
    }
}

/// Spaces for `code`, its newlines kept (it is ASCII once blanked of strings and comments, or
/// spaces are as long as what they replace).
fn blanked_range(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '\n' {
                "\n".to_owned()
            } else {
                " ".repeat(c.len_utf8())
            }
        })
        .collect()
}

/// The offset of the bracket that closes the one at `open` in `code`.
fn closing(code: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in code[open..].char_indices() {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + at);
                }
            }
            _ => {}
        }
    }
    None
}

/// The length of the item at the start of `code` (after its attribute): up to its `;`, or to
/// the `}` that closes its body (a `mod`'s, `fn`'s, `impl`'s or `struct`'s); a `use` runs to its
/// `;` whatever braces its tree has.
fn item_len(code: &str) -> usize {
    let head = &code[..code.find(['{', ';']).unwrap_or(code.len())];
    let is_use = head.split_whitespace().any(|word| word == "use");
    let mut depth = 0usize;
    for (at, c) in code.char_indices() {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
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

/// Every path in `code` rooted at a crate that matters here, with its `use` tree expanded:
/// (the offset of its first segment, the full paths). `std::{sync::Mutex, hint}` gives
/// `std::sync::Mutex` and `std::hint`.
fn path_trees(code: &str, forbid: Forbid) -> Vec<(usize, Vec<String>)> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let async_roots = ["tokio", "futures"].iter().chain(ASYNC_CRATES);
    let roots = STD_ROOTS
        .iter()
        .chain(UNSEEN_CRATES)
        .chain(async_roots.filter(|_| forbid.async_sync));
    let mut found = Vec::new();
    for root in roots {
        for at in words(code, root) {
            // `crate::spin::...` is the crate's own module, not the `spin` crate.
            let before = code[..at].trim_end();
            if before.ends_with("::") && before[..before.len() - 2].ends_with(is_ident) {
                continue;
            }
            let after = code[at + root.len()..].trim_start();
            if let Some(tree) = after.strip_prefix("::") {
                let mut paths = Vec::new();
                expand(root, &tree_at(tree.trim_start()), &mut paths);
                found.push((at, paths));
            } else if STD_ROOTS.contains(root) && after.starts_with("as ") {
                // `use std as s;` or `extern crate std as s;`: `s::sync::Mutex` hides.
                found.push((at, vec![(*root).to_owned()]));
            }
        }
    }
    found.sort();
    found
}

/// Offsets in `code` where `word` stands as a word of its own.
fn words(code: &str, word: &str) -> Vec<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word)
        .map(|(at, _)| at)
        .filter(|&at| {
            !code[..at].ends_with(is_ident) && !code[at + word.len()..].starts_with(is_ident)
        })
        .collect()
}

/// The use tree (or path) at the start of `code`, whitespace squeezed out: path segments,
/// `*`, and braces with everything inside them (renames included). Outside braces a path may
/// break across lines only around a `::`.
fn tree_at(code: &str) -> String {
    let mut depth = 0usize;
    let mut end = code.len();
    for (at, c) in code.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                end = at;
                break;
            }
            '}' => depth -= 1,
            c if c.is_alphanumeric() || "_:*".contains(c) => {}
            ',' if depth > 0 => {}
            c if c.is_whitespace() => {
                let joins = code[..at].trim_end().ends_with("::")
                    || code[at..].trim_start().starts_with("::");
                if depth == 0 && !joins {
                    end = at;
                    break;
                }
            }
            _ => {
                end = at;
                break;
            }
        }
    }
    let tree = code[..end].split_whitespace().collect::<Vec<_>>().join(" ");
    tree.replace(" ::", "::").replace(":: ", "::")
}

/// Expands a use tree under `prefix` into full paths (`Arc as Shared` is still `Arc`; `self`
/// is the prefix itself).
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default();
        let path = path.trim().trim_end_matches("::");
        out.push(match path {
            "" => return,
            "self" => prefix.to_owned(),
            _ => format!("{prefix}::{}", path.trim_end_matches("::self")),
        });
        return;
    };
    let head = tree[..open].trim().trim_end_matches("::");
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
                if !item.is_empty() {
                    expand(&prefix, item, out);
                }
                start = at + 1;
            }
            _ => {}
        }
    }
}

/// Whether `path` is a `std` `Arc` (or a function of it, such as `std::sync::Arc::strong_count`).
fn is_std_arc(path: &str) -> bool {
    ["std::sync::Arc", "alloc::sync::Arc"]
        .iter()
        .any(|arc| path == *arc || path.starts_with(&format!("{arc}::")))
}

/// Whether an expanded path names synchronisation loom cannot see, under `forbid`.
fn is_unseen(path: &str, forbid: Forbid) -> bool {
    let under = |root: &str| path == root || path.starts_with(&format!("{root}::"));
    for root in STD_ROOTS {
        let Some(rest) = path.strip_prefix(root) else {
            continue;
        };
        // `std` itself (renamed, `self`) or a glob of it can reach `std::sync` unseen.
        if rest.is_empty() || rest == "::*" {
            return true;
        }
        if under(&format!("{root}::hint")) {
            return true;
        }
        if let Some(item) = rest.strip_prefix("::sync") {
            let item = item.trim_start_matches("::");
            // `atomic::Ordering` only names an ordering (loom's is the same enum).
            if item == "atomic::Ordering" || item.starts_with("atomic::Ordering::") {
                return false;
            }
            let item = item.split("::").next().unwrap_or_default();
            return !NOT_SYNCHRONISATION.contains(&item);
        }
        return false;
    }
    UNSEEN_CRATES.iter().any(|root| under(root))
        || forbid.async_sync
            && ASYNC_CRATES
                .iter()
                .chain(ASYNC_PATHS)
                .any(|root| under(root))
}

#[cfg(test)]
mod tests {
    use super::{Forbid, unseen_in};

    /// What the scan finds in `code` (as a file outside the shim), one entry per finding.
    fn found(code: &str, forbid: Forbid) -> Vec<String> {
        unseen_in(code, false, forbid)
            .into_iter()
            .map(|(line, what)| format!("{line}: {what}"))
            .collect()
    }

    fn in_shim(code: &str) -> Vec<String> {
        unseen_in(code, true, Forbid::STD)
            .into_iter()
            .map(|(line, what)| format!("{line}: {what}"))
            .collect()
    }

    #[test]
    fn single_line_paths_are_found() {
        for code in [
            "use std::sync::atomic::AtomicBool;",
            "use std::sync::{Arc, Mutex};",
            "static BUSY: std::sync::atomic::AtomicBool = AtomicBool::new(false);",
            "use std::{hint, sync::Arc};",
            "core::sync::atomic::fence(Ordering::SeqCst);",
            "std::hint::spin_loop();",
            "let lock = parking_lot::Mutex::new(0);",
            "let lock = spin::Mutex::new(0);",
            "use arc_swap::ArcSwap;",
            "use alloc::sync::Weak;",
            "use std::sync::OnceLock;",
            "use std::sync;",
            "use std::sync::atomic;",
            "use std::sync::*;",
        ] {
            assert_eq!(found(code, Forbid::STD).len(), 1, "{code}");
        }
    }

    #[test]
    fn a_use_tree_over_several_lines_is_found() {
        let code =
            "use std::collections::HashMap;\nuse std::{\n    sync::atomic::AtomicBool,\n};\n";
        assert_eq!(
            found(code, Forbid::STD),
            ["2: `std::sync::atomic::AtomicBool`"]
        );
        let code = "use std::\n    sync::Mutex;\n";
        assert_eq!(found(code, Forbid::STD), ["1: `std::sync::Mutex`"]);
    }

    #[test]
    fn nested_groups_are_expanded() {
        let code = "use std::{\n    collections::HashMap,\n    sync::{\n        Arc,\n        \
                    atomic::{AtomicBool, AtomicU64, Ordering},\n    },\n};";
        assert_eq!(
            found(code, Forbid::STD),
            ["1: `std::sync::atomic::AtomicBool`, `std::sync::atomic::AtomicU64`"]
        );
    }

    #[test]
    fn renames_are_seen_through() {
        assert_eq!(
            found("use std::sync::{Arc, Mutex as Lock};", Forbid::STD),
            ["1: `std::sync::Mutex`"]
        );
        assert_eq!(
            found("use std::sync::atomic as gauge;", Forbid::STD),
            ["1: `std::sync::atomic`"]
        );
        // A renamed `std` reaches `std::sync` under another name.
        assert_eq!(found("use std as s;", Forbid::STD), ["1: `std`"]);
        assert_eq!(
            found("use std::{self as s, collections::HashMap};", Forbid::STD),
            ["1: `std`"]
        );
    }

    #[test]
    fn a_fully_qualified_path_in_an_expression_is_found() {
        let code = "fn busy() -> bool {\n    let flag = ::std::sync::atomic::AtomicBool::new(false);\n    \
                    flag.swap(true, Ordering::AcqRel);\n    std::hint::spin_loop();\n    true\n}";
        assert_eq!(
            found(code, Forbid::STD),
            [
                "2: `std::sync::atomic::AtomicBool::new`",
                "4: `std::hint::spin_loop`"
            ]
        );
        let code = "let lock: std::sync::Mutex<\n    u64,\n> = Default::default();";
        assert_eq!(found(code, Forbid::STD), ["1: `std::sync::Mutex`"]);
    }

    #[test]
    fn comments_and_strings_that_mention_std_sync_are_not_flagged() {
        for code in [
            "// Not a `std::sync::Mutex`: loom must see it.\nuse crate::sync::Mutex;",
            "/// Built on `std::sync::atomic`, loom could not see it.\nfn f() {}",
            "/* use std::sync::Mutex; */ fn f() {}",
            "/* outer /* use std::sync::Mutex; */ still a comment std::hint */ fn f() {}",
            "let why = \"a std::sync::Mutex is invisible to loom\";",
            "let why = r#\"a \"std::sync::Mutex\" is invisible\"#;",
            "let link = \"https://eu.mirror.example\"; let c = '\"'; let s = \"std::hint\";",
            "fn first<'a>(s: &'a str) -> &'a str { s } // std::sync::Mutex",
        ] {
            assert_eq!(found(code, Forbid::STD), Vec::<String>::new(), "{code}");
        }
        // Code after a string with `//` in it is still read.
        let code = "let link = \"https://eu.mirror.example\"; let m = std::sync::Mutex::new(0);";
        assert_eq!(found(code, Forbid::STD), ["1: `std::sync::Mutex::new`"]);
    }

    #[test]
    fn sharing_and_lock_errors_are_allowed() {
        for code in [
            "use std::sync::Arc;",
            "use std::sync::{Arc, PoisonError};",
            "use std::{\n    collections::HashMap,\n    sync::{Arc as Shared, LockResult, TryLockError},\n};",
            "let guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);",
            "fn f(r: std::sync::TryLockResult<()>) {}",
            "use std::sync::atomic::Ordering;",
            "counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);",
            "use crate::sync::{Mutex, hint};",
            "use crate::sync::atomic::{AtomicBool, Ordering};",
            "let counts = Arc::new(Views::default());",
            "hint::spin_loop();",
            "mod spin; use crate::spin::Backoff; use self::spin::Backoff as B;",
            "let stdout = std::io::stdout(); let n = core::cmp::max(1, 2);",
            "use loom::sync::Mutex;",
            "use tokio::sync::Notify; use futures::lock::Mutex;",
        ] {
            assert_eq!(found(code, Forbid::STD), Vec::<String>::new(), "{code}");
        }
    }

    #[test]
    fn the_whole_core_forbids_tokio_and_futures_synchronisation() {
        for code in [
            "use tokio::sync::Notify;",
            "use tokio::{\n    net::TcpListener,\n    sync::Semaphore,\n};",
            "use futures::lock::Mutex;",
            "use futures::task::AtomicWaker;",
            "use futures::channel::oneshot;",
            "use atomic_waker::AtomicWaker;",
        ] {
            assert_eq!(found(code, Forbid::WHOLE_CORE).len(), 1, "{code}");
        }
        for code in [
            "use tokio::net::TcpListener;",
            "tokio::spawn(async move {});",
            "use futures::task::{Context, Poll};",
            "use std::task::Waker;",
        ] {
            assert_eq!(
                found(code, Forbid::WHOLE_CORE),
                Vec::<String>::new(),
                "{code}"
            );
        }
    }

    #[test]
    fn the_whole_core_forbids_counting_a_std_arc() {
        let code = "use std::sync::Arc as Token;\n\nfn in_flight(t: &Token<()>) -> usize {\n    \
                    Token::strong_count(t) - 1\n}";
        assert_eq!(
            found(code, Forbid::WHOLE_CORE),
            [
                "4: counts the handles of a `std::sync::Arc` (`strong_count`, `weak_count`): that \
              count is a `std` atomic"
            ]
        );
        assert_eq!(found(code, Forbid::STD), Vec::<String>::new());
        // The shim's `Arc` is loom's in the loom build: its count is seen.
        let code = "use crate::sync::Arc;\nfn n(a: &Arc<()>) -> usize { Arc::strong_count(a) }";
        assert_eq!(found(code, Forbid::WHOLE_CORE), Vec::<String>::new());
    }

    /// The shim as every exercise has it: each build's side gated, `std` on the normal one.
    const SHIM: &str = r#"//! The synchronisation types (`std::sync` normally).

#[cfg(feature = "loom")]
pub use loom::{
    hint,
    sync::{Arc, Mutex, atomic},
};

#[cfg(not(feature = "loom"))]
pub use std::{
    hint,
    sync::{Arc, Mutex, atomic},
};
"#;

    #[test]
    fn the_shims_normal_build_side_is_allowed() {
        assert_eq!(in_shim(SHIM), Vec::<String>::new());
        let code = format!(
            "{SHIM}\n#[cfg( not( feature = \"loom\" ) )]\n#[allow(unused)]\nmod normal {{\n    \
             pub use std::sync::RwLock;\n    pub fn f() {{ let _ = std::hint::spin_loop(); }}\n}}\n\
             #[cfg(not(feature = \"loom\"))]\npub type Lock<T> = std::sync::Mutex<T>;\n"
        );
        assert_eq!(in_shim(&code), Vec::<String>::new());
    }

    #[test]
    fn a_std_type_re_exported_through_the_shim_is_found() {
        // Without any cfg: both builds get `std`'s.
        let code = format!("{SHIM}\npub use std::sync::atomic::AtomicBool;\n");
        assert_eq!(in_shim(&code).len(), 1);
        assert!(in_shim(&code)[0].starts_with("15: `std::sync::atomic::AtomicBool` (in the shim"));
        // On the loom side.
        let code = SHIM.replace("pub use loom::{", "pub use std::{");
        assert_eq!(
            in_shim(&code),
            [
                "4: `std::hint`, `std::sync::Mutex`, `std::sync::atomic` (in the shim, outside its \
              `#[cfg(not(feature = \"loom\"))]` side: the loom build uses it)"
            ]
        );
        // In a module of the shim that no cfg gates.
        let code =
            format!("{SHIM}\npub mod list {{\n    pub use std::sync::{{Mutex, atomic}};\n}}\n");
        assert_eq!(in_shim(&code).len(), 1);
        // Renamed, without a cfg.
        let code = format!("{SHIM}\npub use std::sync::atomic as gauge;\n");
        assert_eq!(in_shim(&code).len(), 1);
        // A gated item ends where it ends: the next one is read.
        let code = format!(
            "{SHIM}\n#[cfg(not(feature = \"loom\"))]\npub use arc_swap::ArcSwap;\npub use \
             parking_lot::Mutex as Fast;\n"
        );
        assert_eq!(in_shim(&code).len(), 1);
    }

    #[test]
    fn a_loom_stand_in_may_share_a_std_arc() {
        let code = format!(
            "{SHIM}\n#[cfg(feature = \"loom\")]\nmod model {{\n    use std::sync::Arc;\n    pub \
             struct ArcSwap<T>(loom::sync::Mutex<Arc<T>>);\n}}\n"
        );
        assert_eq!(in_shim(&code), Vec::<String>::new());
    }
}
