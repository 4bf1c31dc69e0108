//! The style gates of the book's pages, which keep the book easy to read as it grows:
//!
//! - **Citations**: a claim is backed by a test, named in a footnote that starts "Checked by"
//!   (`[^label]: Checked by `lessons/junior/tests/x.rs::name`.`), never in the middle of a
//!   sentence; every cited test exists.
//! - **Diagrams**: SVG files in `book/src/**/diagrams/`, inlined with `{{#include}}` so they
//!   render offline and follow the theme's colours; each has a title for screen readers, no
//!   blank line (which would end the HTML block in Markdown), and is shown on some page.
//! - **Length**: a level's page is read in one sitting.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A level's page longer than this is two pages.
pub const MAX_PAGE_LINES: usize = 300;

/// Checks one Markdown page; `rel` is its path from the workshop's root.
pub fn check_page(root: &Path, rel: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let level_page = crate::workshop::LEVELS
        .iter()
        .any(|level| rel.starts_with(&format!("book/src/{level}/")));
    if level_page && text.lines().count() > MAX_PAGE_LINES {
        problems.push(format!(
            "{rel}: {} lines; a page is read in one sitting (at most {MAX_PAGE_LINES}): split it",
            text.lines().count()
        ));
    }
    if level_page && let Some(problem) = reading_time_problem(text) {
        problems.push(format!("{rel}: {problem}"));
    }
    let mut in_code = false;
    let mut in_footnote = false;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if trimmed.is_empty() {
            in_footnote = false;
            continue;
        }
        if line.starts_with("[^") && line.contains("]:") {
            in_footnote = true;
        }
        for citation in test_paths(line) {
            let at = format!("{rel}:{}", number + 1);
            if level_page && !in_footnote {
                problems.push(format!(
                    "{at}: `{citation}` is cited in the text; name a test in a footnote \
                     (`[^label]: Checked by `{citation}`.`)"
                ));
            }
            if let Err(problem) = resolve_test(root, &citation) {
                problems.push(format!("{at}: `{citation}`: {problem}"));
            }
        }
        if in_footnote && line.starts_with("[^") && !line.contains("Checked by") {
            // Footnotes are the book's citation marker; other asides belong in the text.
            if !test_paths(line).is_empty() {
                problems.push(format!(
                    "{rel}:{}: a citation footnote starts with \"Checked by\"",
                    number + 1
                ));
            }
        }
    }
    problems
}

/// The `*About N minutes.*` a chapter states under its title, if any.
pub fn stated_minutes(text: &str) -> Option<u32> {
    let line = text.lines().take(6).find(|l| l.starts_with("*About "))?;
    line.trim_start_matches("*About ")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A stated reading time must be one a reader can keep to: at least most of the time the prose
/// and listings take at 200 words a minute (half a minute a listing), and at most twice that
/// plus ten minutes for a demo or a question to the room.
fn reading_time_problem(text: &str) -> Option<String> {
    let stated = stated_minutes(text)?;
    let mut in_code = false;
    let (mut words, mut listings) = (0usize, 0usize);
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            listings += usize::from(!in_code);
            in_code = !in_code;
        } else if !in_code {
            words += line.split_whitespace().count();
        }
    }
    let estimate = words as f64 / 200.0 + listings as f64 * 0.5;
    let (low, high) = (estimate * 0.75, estimate * 2.0 + 10.0);
    let stated_f = f64::from(stated);
    (stated_f < low || stated_f > high).then(|| {
        format!(
            "states about {stated} minutes, but its {words} words and {listings} listings read in \
             about {estimate:.0}: say between {} and {}",
            low.ceil(),
            high.floor()
        )
    })
}

/// `lessons/.../tests/x.rs` and `lessons/.../tests/x.rs::name` paths in `line`, and short
/// `file.rs::name` citations, which must name the whole path to be checked.
fn test_paths(line: &str) -> Vec<String> {
    let mut found: Vec<String> = path_tokens(line, "tests/")
        .into_iter()
        .filter(|token| token.contains(".rs") && !token.starts_with("tests/"))
        .collect();
    found.extend(
        path_tokens(line, ".rs::")
            .into_iter()
            .filter(|token| !token.contains("tests/")),
    );
    found
}

/// Every path-like token of `line` that contains `needle`, without trailing `:` or `.`.
fn path_tokens(line: &str, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find(needle) {
        let start = rest[..at]
            .rfind(|c: char| !is_path_char(c))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| !is_path_char(c))
            .map_or(rest.len(), |i| at + i);
        found.push(rest[start..end].trim_end_matches([':', '.']).to_owned());
        rest = &rest[end.max(at + needle.len())..];
    }
    found
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.' | ':')
}

/// The file exists and, with `::name`, declares `fn name`.
fn resolve_test(root: &Path, citation: &str) -> Result<(), String> {
    let (file, name) = match citation.split_once("::") {
        Some((file, name)) => (file, Some(name)),
        None => (citation, None),
    };
    let text = fs::read_to_string(root.join(file)).map_err(|_| {
        "no such file (name the test by its path from the workshop's root)".to_owned()
    })?;
    if let Some(name) = name
        && !text.contains(&format!("fn {name}("))
    {
        return Err(format!("no test `{name}` in {file}"));
    }
    Ok(())
}

/// Every diagram under `book/src`, with the pages that show it (`book/src`-relative Markdown
/// paths), found through their `{{#include}}` directives.
pub fn diagrams(src: &Path, pages: &[(PathBuf, String)]) -> BTreeMap<PathBuf, Vec<PathBuf>> {
    let mut svgs = Vec::new();
    svg_files(src, &mut svgs);
    let mut shown: BTreeMap<PathBuf, Vec<PathBuf>> =
        svgs.into_iter().map(|svg| (svg, Vec::new())).collect();
    for (page, text) in pages {
        for directive in crate::book::includes(text) {
            let Some(path) = directive.split_whitespace().nth(1) else {
                continue;
            };
            let target = crate::book::normalize(&page.parent().unwrap_or(src).join(path));
            if let Some(pages) = shown.get_mut(&target) {
                pages.push(page.clone());
            }
        }
    }
    shown
}

/// What a diagram file must be to render inline on every theme and be read out.
pub fn check_diagram(rel: &str, svg: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let first = svg.lines().next().unwrap_or("");
    if !first.starts_with("<svg") {
        problems.push(format!("{rel}: the first line must open the <svg> element"));
    }
    for needle in ["class=\"diagram\"", "role=\"img\"", "viewBox=", "<title"] {
        if !svg.contains(needle) {
            problems.push(format!(
                "{rel}: no {needle} (see the contributor page, Diagrams)"
            ));
        }
    }
    if svg.lines().any(|l| l.trim().is_empty()) {
        problems.push(format!(
            "{rel}: a blank line ends Markdown's HTML block and breaks the drawing"
        ));
    }
    problems
}

fn svg_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            svg_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "svg") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_paths_and_ignores_examples() {
        let line = "as `lessons/junior/tests/a.rs::b_c` shows, and `lessons/junior/examples/x.rs`.";
        assert_eq!(test_paths(line), vec!["lessons/junior/tests/a.rs::b_c"]);
        assert_eq!(test_paths("| `a.rs::b` |"), vec!["a.rs::b"]);
        assert_eq!(
            test_paths("[^x]: Checked by `lessons/junior/tests/a.rs`."),
            vec!["lessons/junior/tests/a.rs"]
        );
    }

    #[test]
    fn a_citation_in_a_sentence_is_reported_and_a_footnote_is_not() {
        let root = std::env::temp_dir().join(format!("xtask-pages-{}", std::process::id()));
        fs::create_dir_all(root.join("lessons/junior/tests")).unwrap();
        fs::write(
            root.join("lessons/junior/tests/a.rs"),
            "#[test]\nfn real() {}\n",
        )
        .unwrap();
        let page = "Claim (`lessons/junior/tests/a.rs::real`).\n\nClaim.[^a]\n\n\
                    [^a]: Checked by `lessons/junior/tests/a.rs::real`.\n\n\
                    [^b]: Checked by `lessons/junior/tests/a.rs::gone`.\n\n\
                    ```rust\n// lessons/junior/tests/a.rs::in_code\n```\n";
        let problems = check_page(&root, "book/src/junior/p.md", page);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].contains("p.md:1") && problems[0].contains("cited in the text"));
        assert!(problems[1].contains("p.md:7") && problems[1].contains("no test `gone`"));
    }

    #[test]
    fn a_long_level_page_is_reported() {
        let long = "line\n".repeat(MAX_PAGE_LINES + 1);
        let problems = check_page(Path::new("."), "book/src/junior/long.md", &long);
        assert!(problems[0].contains("split it"), "{problems:?}");
        assert!(check_page(Path::new("."), "book/src/contributing.md", &long).is_empty());
    }

    #[test]
    fn a_reading_time_must_fit_the_page() {
        let page = |minutes: u32, words: usize| {
            format!(
                "# T\n\n*About {minutes} minutes.*\n\n{}\n",
                "word ".repeat(words)
            )
        };
        assert_eq!(stated_minutes(&page(7, 1)), Some(7));
        assert!(reading_time_problem(&page(10, 2000)).is_none());
        assert!(
            reading_time_problem(&page(5, 2000))
                .unwrap()
                .contains("between 8 and 30")
        );
        assert!(reading_time_problem(&page(35, 2000)).is_some());
    }

    #[test]
    fn a_diagram_needs_a_title_and_no_blank_line() {
        let good = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\" class=\"diagram\" role=\"img\">\n<title>t</title>\n</svg>\n";
        assert!(check_diagram("d.svg", good).is_empty());
        let bad = "<svg viewBox=\"0 0 1 1\">\n\n</svg>\n";
        let problems = check_diagram("d.svg", bad);
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }
}
