//! `cargo xtask book`: the generated parts of the book, mdBook itself, and the quality gates
//! that `verify` runs on the built site.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::workshop::Workshop;

/// The mdBook version the book is written for; installed on demand, never on the learner's
/// critical path.
pub const MDBOOK_VERSION: &str = "0.5.4";

/// Writes `book/src/generated/`: one card per exercise, made from its `exercise.toml`, so the
/// book never restates metadata by hand.
pub fn generate(workshop: &Workshop) -> Result<()> {
    let dir = workshop.path("book/src/generated/exercises");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let taught_by = crate::interview::taught_by(&workshop.root)?;
    for e in &workshop.exercises {
        let m = &e.meta;
        let mut card = String::new();
        let _ = writeln!(card, "| | |\n|---|---|");
        let _ = writeln!(card, "| **Run** | `cargo xtask check {}` |", m.id);
        let _ = writeln!(card, "| **Edit** | `{}/src/` |", e.dir.display());
        let _ = writeln!(
            card,
            "| **Level** | {} · about {} minutes |",
            m.level, m.minutes
        );
        let _ = writeln!(card, "| **Checks** | {} |", m.kinds.join(", "));
        // The card is included by `book/src/<level>/exercises/<page>.md`: two levels below
        // `book/src`, where the bank's pages are `interview/<level>.md`.
        if let Some(questions) = taught_by.get(&e.page) {
            let links: Vec<String> = questions
                .iter()
                .map(|(id, _, file)| {
                    let page = file.file_name().unwrap_or_default().to_string_lossy();
                    format!("[{id}](../../interview/{page}#{})", id.to_lowercase())
                })
                .collect();
            let _ = writeln!(card, "| **Interview** | {} |", links.join(", "));
        }
        let _ = writeln!(card, "\n> {}\n", m.summary);
        let _ = writeln!(
            card,
            "<details>\n<summary>Hints ({}), one at a time with <code>cargo xtask hint {}</code></summary>\n",
            m.hints.len(),
            m.id
        );
        for (i, hint) in m.hints.iter().enumerate() {
            let _ = writeln!(card, "{}. {hint}", i + 1);
        }
        let _ = writeln!(card, "\n</details>");
        fs::write(dir.join(format!("{}.md", m.id)), card)
            .with_context(|| format!("writing the card of {}", m.id))?;
    }
    reading_times(workshop)
}

/// Writes `book/src/generated/<level>-reading-times.md`: the level's chapters in the sidebar's
/// order with the minutes each states, and the totals, so the level's figure is always the sum
/// of its pages (each held honest by the reading-time gate).
fn reading_times(workshop: &Workshop) -> Result<()> {
    let src = workshop.path("book/src");
    let summary = fs::read_to_string(src.join("SUMMARY.md")).context("reading SUMMARY.md")?;
    for level in crate::workshop::LEVELS {
        let mut table = String::from("| chapter | minutes |\n|---|--:|\n");
        let mut total = 0;
        for line in summary.lines() {
            let Some((title, target)) = line
                .trim_start()
                .strip_prefix("- [")
                .and_then(|rest| rest.split_once("]("))
            else {
                continue;
            };
            let target = target.trim_end_matches(')');
            let Some(page) = target.strip_prefix(&format!("{level}/")) else {
                continue;
            };
            // The whole course's closing pages live beside the staff level's but are not
            // part of its reading.
            if page.starts_with("exercises/") || page.starts_with("course-") {
                continue;
            }
            let text = fs::read_to_string(src.join(target)).unwrap_or_default();
            if let Some(minutes) = crate::pages::stated_minutes(&text) {
                total += minutes;
                let _ = writeln!(table, "| [{title}](../{level}/{page}) | {minutes} |");
            }
        }
        if total == 0 {
            continue;
        }
        let exercises: u32 = workshop
            .exercises
            .iter()
            .filter(|e| e.meta.level == *level)
            .map(|e| e.meta.minutes)
            .sum();
        let _ = writeln!(
            table,
            "| **Reading, in all** | **{total}** (about {:.1} hours) |",
            f64::from(total) / 60.0
        );
        if exercises > 0 {
            let _ = writeln!(
                table,
                "| **The exercises** | **{exercises}** (about {:.1} hours) |",
                f64::from(exercises) / 60.0
            );
        }
        let file = src.join(format!("generated/{level}-reading-times.md"));
        fs::write(&file, table).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// The mdBook binary: on PATH at the right version, or installed into `target/tools`.
pub fn mdbook(workshop: &Workshop) -> Result<PathBuf> {
    if let Ok(output) = Command::new("mdbook").arg("--version").output()
        && String::from_utf8_lossy(&output.stdout).contains(MDBOOK_VERSION)
    {
        return Ok(PathBuf::from("mdbook"));
    }
    let tools = workshop.path("target/tools");
    let local = tools.join("bin").join("mdbook");
    if local.is_file() {
        return Ok(local);
    }
    eprintln!("Installing mdBook {MDBOOK_VERSION} into target/tools (once; a few minutes)...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "install",
            "mdbook",
            "--locked",
            "--version",
            MDBOOK_VERSION,
            "--root",
        ])
        .arg(&tools)
        .stdin(Stdio::null())
        .status()
        .context("running cargo install mdbook")?;
    if !status.success() || !local.is_file() {
        bail!(
            "could not install mdBook {MDBOOK_VERSION}; install it yourself with `cargo install mdbook --version {MDBOOK_VERSION}`"
        );
    }
    Ok(local)
}

/// Generates, then builds the site into `book/build`.
pub fn build(workshop: &Workshop) -> Result<PathBuf> {
    generate(workshop)?;
    let mdbook = mdbook(workshop)?;
    let output = Command::new(&mdbook)
        .current_dir(workshop.path("book"))
        .arg("build")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} build", mdbook.display()))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("mdbook build failed:\n{log}");
    }
    // mdBook reports some problems (a missing include file) as errors but still succeeds.
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("[ERROR]"))
        .collect();
    if !errors.is_empty() {
        bail!("mdbook build reported errors:\n{}", errors.join("\n"));
    }
    Ok(workshop.path("book/build"))
}

/// Serves the book for authors, rebuilding on change.
pub fn serve(workshop: &Workshop, open: bool) -> Result<()> {
    generate(workshop)?;
    let mdbook = mdbook(workshop)?;
    let mut command = Command::new(&mdbook);
    command.current_dir(workshop.path("book")).arg("serve");
    if open {
        command.arg("--open");
    }
    let status = command
        .status()
        .with_context(|| format!("running {} serve", mdbook.display()))?;
    if !status.success() {
        bail!("mdbook serve failed");
    }
    Ok(())
}

/// Builds the book and returns every broken include, link, anchor, empty page and exercise
/// page without an exercise.
pub fn build_and_check(workshop: &Workshop) -> Result<Vec<String>> {
    generate(workshop)?;
    let mut problems = check_sources(workshop)?;
    match build(workshop) {
        Ok(site) => {
            problems.extend(check_site(&site)?);
            problems.extend(crate::browser::test_site(
                &site,
                &workshop.path("target/book-screenshots"),
                &diagram_counts(workshop)?,
            )?);
        }
        Err(error) => problems.push(format!("{error:#}")),
    }
    println!("  book: {} problem(s)", problems.len());
    Ok(problems)
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "md") {
            out.push(path);
        }
    }
}

/// Checks the markdown sources: every include resolves to a file and anchor, and the
/// exercise pages match the metadata one to one.
fn check_sources(workshop: &Workshop) -> Result<Vec<String>> {
    let src = workshop.path("book/src");
    let mut files = Vec::new();
    markdown_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let rel = file
            .strip_prefix(&workshop.root)
            .unwrap_or(file)
            .display()
            .to_string();
        for directive in includes(&text) {
            if let Err(problem) = resolve_include(file, &directive) {
                problems.push(format!("{rel}: {{{{#{directive}}}}}: {problem}"));
            }
        }
        problems.extend(crate::pages::check_page(&workshop.root, &rel, &text));
    }
    for (svg, shown_on) in diagram_pages(workshop)? {
        let rel = svg
            .strip_prefix(&workshop.root)
            .unwrap_or(&svg)
            .display()
            .to_string();
        let text = fs::read_to_string(&svg).with_context(|| format!("reading {rel}"))?;
        problems.extend(crate::pages::check_diagram(&rel, &text));
        if shown_on.is_empty() {
            problems.push(format!("{rel}: a diagram no page includes"));
        }
    }
    let pages: BTreeSet<PathBuf> = files
        .iter()
        .filter(|f| {
            // Exercise pages are `book/src/<level>/exercises/*.md`; generated cards are not.
            let level = f.parent().and_then(Path::parent).and_then(Path::file_name);
            f.parent().is_some_and(|p| p.ends_with("exercises"))
                && level.is_some_and(|l| crate::workshop::LEVELS.iter().any(|x| l == *x))
        })
        .filter_map(|f| f.strip_prefix(&workshop.root).ok().map(Path::to_path_buf))
        .collect();
    let expected: BTreeSet<PathBuf> = workshop.exercises.iter().map(|e| e.page.clone()).collect();
    for page in pages.difference(&expected) {
        problems.push(format!(
            "{}: an exercise page with no exercise in the metadata",
            page.display()
        ));
    }
    for page in expected.difference(&pages) {
        problems.push(format!("{}: the exercise has no book page", page.display()));
    }
    // The sidebar restates each exercise's title; keep it equal to the metadata.
    let summary = fs::read_to_string(src.join("SUMMARY.md")).unwrap_or_default();
    for e in &workshop.exercises {
        let entry = format!(
            "[{} · {}]({}/exercises/{}.md)",
            e.meta.id,
            e.meta.title,
            e.meta.level,
            e.dir_name()
        );
        if !summary.contains(&entry) {
            problems.push(format!("book/src/SUMMARY.md: no entry `{entry}`"));
        }
    }
    Ok(problems)
}

/// Every diagram and the Markdown pages (relative to `book/src`) that include it.
fn diagram_pages(workshop: &Workshop) -> Result<BTreeMap<PathBuf, Vec<PathBuf>>> {
    let src = workshop.path("book/src");
    let mut files = Vec::new();
    markdown_files(&src, &mut files);
    let pages: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text =
                fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            Ok((f, text))
        })
        .collect::<Result<_>>()?;
    Ok(crate::pages::diagrams(&src, &pages)
        .into_iter()
        .map(|(svg, shown)| {
            let shown = shown
                .into_iter()
                .filter_map(|p| p.strip_prefix(&src).ok().map(Path::to_path_buf))
                .collect();
            (svg, shown)
        })
        .collect())
}

/// The built pages that show diagrams, and how many each shows: the browser test checks that
/// each one is displayed.
fn diagram_counts(workshop: &Workshop) -> Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for (_, shown_on) in diagram_pages(workshop)? {
        for page in shown_on {
            let html = page.with_extension("html").display().to_string();
            *counts.entry(html).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// `include path:anchor` directives (also `rustdoc_include`) found in `text`.
pub(crate) fn includes(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{#") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else { break };
        let directive = after[..end].trim();
        // `\{{#include ...}}` is mdBook's escape: shown as text, never resolved.
        let escaped = rest[..start].ends_with('\\');
        if !escaped
            && (directive.starts_with("include ") || directive.starts_with("rustdoc_include "))
        {
            found.push(directive.to_owned());
        }
        rest = &after[end..];
    }
    found
}

fn resolve_include(page: &Path, directive: &str) -> Result<(), String> {
    let spec = directive
        .split_once(' ')
        .map(|(_, s)| s.trim())
        .unwrap_or_default();
    let (path, selector) = match spec.split_once(':') {
        Some((path, selector)) => (path, Some(selector)),
        None => (spec, None),
    };
    let target = page.parent().unwrap_or(Path::new(".")).join(path);
    let text = fs::read_to_string(&target).map_err(|_| format!("no file {}", target.display()))?;
    let Some(selector) = selector else {
        return Ok(());
    };
    if selector.chars().next().is_some_and(|c| c.is_ascii_digit()) || selector.starts_with(':') {
        let lines = text.lines().count();
        let bounds: Vec<usize> = selector.split(':').filter_map(|n| n.parse().ok()).collect();
        if bounds.iter().any(|n| *n > lines) {
            return Err(format!(
                "line range {selector} is past the end ({lines} lines)"
            ));
        }
        return Ok(());
    }
    let open = format!("ANCHOR: {selector}");
    let close = format!("ANCHOR_END: {selector}");
    let has = |marker: &str| text.lines().any(|l| l.trim_end().ends_with(marker));
    if !has(&open) || !has(&close) {
        return Err(format!("no anchor `{selector}` in {}", target.display()));
    }
    Ok(())
}

/// Checks the built site: every relative link leads to a page and, with a `#fragment`, to an
/// element with that id; no page renders without text.
fn check_site(site: &Path) -> Result<Vec<String>> {
    let mut pages = Vec::new();
    html_files(site, &mut pages);
    let mut ids: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut texts: BTreeMap<PathBuf, String> = BTreeMap::new();
    for page in &pages {
        let html =
            fs::read_to_string(page).with_context(|| format!("reading {}", page.display()))?;
        ids.insert(
            page.clone(),
            attribute_values(&html, "id").into_iter().collect(),
        );
        texts.insert(page.clone(), html);
    }
    let mut problems = Vec::new();
    for (page, html) in &texts {
        let rel = page
            .strip_prefix(site)
            .unwrap_or(page)
            .display()
            .to_string();
        if ["print.html", "404.html", "toc.html"].contains(&rel.as_str()) {
            continue;
        }
        let main = html
            .split("<main>")
            .nth(1)
            .and_then(|m| m.split("</main>").next())
            .unwrap_or("");
        if visible_text(main).trim().len() < 40 {
            problems.push(format!("book page {rel} renders (nearly) empty"));
        }
        for href in attribute_values(main, "href") {
            if href.starts_with("http://")
                || href.starts_with("https://")
                || href.starts_with("mailto:")
            {
                continue;
            }
            let (path, fragment) = match href.split_once('#') {
                Some((p, f)) => (p.to_owned(), Some(f.to_owned())),
                None => (href.clone(), None),
            };
            let target = if path.is_empty() {
                page.clone()
            } else {
                normalize(&page.parent().unwrap_or(site).join(&path))
            };
            let target = if target.is_dir() {
                target.join("index.html")
            } else {
                target
            };
            if !target.is_file() {
                problems.push(format!("book page {rel}: broken link `{href}`"));
                continue;
            }
            if let Some(fragment) = fragment
                && target.extension().is_some_and(|x| x == "html")
                && !fragment.is_empty()
                && !ids.get(&target).is_some_and(|set| set.contains(&fragment))
            {
                problems.push(format!(
                    "book page {rel}: link `{href}` points at a missing anchor"
                ));
            }
        }
    }
    Ok(problems)
}

fn html_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            html_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "html") {
            out.push(path);
        }
    }
}

pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Values of `name="..."` attributes, good enough for the HTML mdBook writes.
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    let mut values = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&needle) {
        let after = &rest[start + needle.len()..];
        let Some(end) = after.find('"') else { break };
        values.push(after[..end].replace("&amp;", "&"));
        rest = &after[end..];
    }
    values
}

fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_include_directives() {
        let text = "a {{#include ../x.rs:main}} b {{#title T}} {{#rustdoc_include y.rs}} \\{{#include z.rs}}";
        assert_eq!(
            includes(text),
            vec!["include ../x.rs:main", "rustdoc_include y.rs"]
        );
    }

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("xtask-book-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_broken_include_is_reported() {
        let dir = Scratch::new("include");
        dir.write(
            "code.rs",
            "// ANCHOR: main\nfn main() {}\n// ANCHOR_END: main\n",
        );
        let page = dir.write("book/page.md", "");
        assert!(resolve_include(&page, "include ../code.rs:main").is_ok());
        assert!(resolve_include(&page, "include ../code.rs").is_ok());
        let missing_anchor = resolve_include(&page, "include ../code.rs:setup").unwrap_err();
        assert!(
            missing_anchor.contains("no anchor `setup`"),
            "{missing_anchor}"
        );
        let missing_file = resolve_include(&page, "include ../nowhere.rs:main").unwrap_err();
        assert!(missing_file.contains("no file"), "{missing_file}");
    }

    #[test]
    fn broken_links_missing_anchors_and_empty_pages_are_reported() {
        let dir = Scratch::new("site");
        let body = "a page with enough words in it to count as a real page of the book";
        dir.write(
            "a.html",
            &format!(r#"<main><p>{body}</p><a href="b.html#there">ok</a><a href="b.html#gone">anchor</a><a href="missing.html">file</a><a href="https://example.org/">external</a></main>"#),
        );
        dir.write(
            "b.html",
            &format!(r#"<main><h2 id="there">{body}</h2></main>"#),
        );
        dir.write("c.html", "<main><p>short</p></main>");
        let problems = check_site(&dir.0).unwrap();
        assert_eq!(
            problems,
            [
                "book page a.html: link `b.html#gone` points at a missing anchor",
                "book page a.html: broken link `missing.html`",
                "book page c.html renders (nearly) empty",
            ]
        );
    }

    #[test]
    fn exercise_pages_must_match_the_metadata() {
        let dir = Scratch::new("pages");
        dir.write("Cargo.toml", "[workspace]\n");
        fs::create_dir_all(dir.0.join("exercises/junior")).unwrap();
        dir.write("book/src/SUMMARY.md", "# Summary\n");
        dir.write("book/src/junior/exercises/j42-ghost.md", "# J42\n");
        let workshop = Workshop::load(dir.0.clone()).unwrap();
        let problems = check_sources(&workshop).unwrap();
        assert_eq!(
            problems,
            [
                "book/src/junior/exercises/j42-ghost.md: an exercise page with no exercise in the metadata"
            ]
        );
    }

    #[test]
    fn reads_attribute_values() {
        let html = r#"<a href="a.html#x">A</a><h2 id="x">X</h2>"#;
        assert_eq!(attribute_values(html, "href"), vec!["a.html#x"]);
        assert_eq!(attribute_values(html, "id"), vec!["x"]);
    }
}
