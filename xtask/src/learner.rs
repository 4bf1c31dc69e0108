//! The learner's verbs: overview, check, watch, hint, list, reset, solution.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use crate::progress::Progress;
use crate::runner::{self, Origin, Place, Report, Verdict};
use crate::seal;
use crate::workshop::{Exercise, LEVELS, Workshop, target_dir};

/// `cargo xtask` with no verb: where the learner stands and what to do next.
pub fn overview(workshop: &Workshop) -> Result<()> {
    let progress = Progress::load(&workshop.root)?;
    let solved = workshop
        .exercises
        .iter()
        .filter(|e| progress.is_solved(&e.meta.id))
        .count();
    println!(
        "HTTP server concurrency with tokio and hyper: {solved} of {} exercises solved\n",
        workshop.exercises.len()
    );
    for level in LEVELS {
        let in_level: Vec<&Exercise> = workshop
            .exercises
            .iter()
            .filter(|e| e.meta.level == *level)
            .collect();
        if in_level.is_empty() {
            continue;
        }
        let done = in_level
            .iter()
            .filter(|e| progress.is_solved(&e.meta.id))
            .count();
        let marks: String = in_level
            .iter()
            .map(|e| {
                if progress.is_solved(&e.meta.id) {
                    '#'
                } else {
                    '.'
                }
            })
            .collect();
        println!("  {level:<13} [{marks}] {done}/{}", in_level.len());
    }
    println!();
    match first_unsolved(workshop, &progress) {
        Some(next) => {
            println!("Next: {} · {}", next.meta.id, next.meta.title);
            println!("  {}", next.meta.summary);
            println!(
                "  Read {}/README.md, then run `cargo xtask check {}` (or `cargo xtask watch`).",
                next.dir.display(),
                next.meta.id
            );
        }
        None => println!(
            "Every exercise is solved. Try `cargo xtask interview` to drill the interview bank."
        ),
    }
    Ok(())
}

/// `cargo xtask list`.
pub fn list(workshop: &Workshop) -> Result<()> {
    let progress = Progress::load(&workshop.root)?;
    let mut level = "";
    for e in &workshop.exercises {
        if e.meta.level != level {
            level = &e.meta.level;
            println!("{level}");
        }
        let mark = if progress.is_solved(&e.meta.id) {
            "solved"
        } else {
            ""
        };
        let row = format!(
            "  {:<4} {:<42} {:<18} {:>3} min  {mark}",
            e.meta.id,
            e.meta.title,
            e.meta.kinds.join(" "),
            e.meta.minutes
        );
        println!("{}", row.trim_end());
    }
    Ok(())
}

pub fn first_unsolved<'a>(workshop: &'a Workshop, progress: &Progress) -> Option<&'a Exercise> {
    workshop
        .exercises
        .iter()
        .find(|e| !progress.is_solved(&e.meta.id))
}

/// Picks the exercise a verb works on: the one named, or the first unsolved.
pub fn pick<'a>(workshop: &'a Workshop, id: Option<&str>) -> Result<&'a Exercise> {
    match id {
        Some(id) => workshop.find(id),
        None => {
            let progress = Progress::load(&workshop.root)?;
            match first_unsolved(workshop, &progress) {
                Some(exercise) => Ok(exercise),
                None => bail!(
                    "every exercise is solved; name one to check it again, e.g. `cargo xtask check J01`"
                ),
            }
        }
    }
}

/// `cargo xtask check [ID]`: returns whether every check passed.
pub fn check(workshop: &Workshop, exercise: &Exercise, verbose: bool) -> Result<bool> {
    let modified = seal::modified(workshop, exercise)?;
    if !modified.is_empty() {
        eprintln!(
            "The checks of {} were modified:\n{}\n\nA check edited to pass proves nothing. Restore them with\n  git checkout -- {}\nand make the exercise pass as the checks are.",
            exercise.meta.id,
            modified
                .iter()
                .map(|m| format!("  {m}"))
                .collect::<Vec<_>>()
                .join("\n"),
            modified.join(" ")
        );
        if modified.iter().any(|m| m.ends_with("Cargo.toml")) {
            eprintln!(
                "Of Cargo.toml only what decides the checks is recorded (test targets, features, \
                 dev-dependencies, lints, edition): adding a [dependencies] line is fine."
            );
        }
        return Ok(false);
    }
    println!(
        "{} · {}  ({}, {}, ~{} min)",
        exercise.meta.id,
        exercise.meta.title,
        exercise.meta.level,
        exercise.meta.kinds.join(" "),
        exercise.meta.minutes
    );
    let loom = exercise.meta.targets().iter().any(|t| t == "loom");
    if first_build(&workshop.root, "debug") {
        println!(
            "  building the workshop's dependencies once (about a minute), then the checks..."
        );
    } else if loom && first_build(&workshop.root, "loom") {
        println!(
            "  loom models run optimised: building their dependencies once more, optimised (about a minute)..."
        );
    } else {
        println!("  building and running the checks...");
    }
    if exercise.meta.lint.is_some() && !clippy_ready(&workshop.root) {
        println!("  then clippy, whose first run checks every dependency once (about a minute)...");
    }
    let report = runner::run(
        &Place::learner(&workshop.root),
        &exercise.meta,
        &exercise.package(),
    )?;
    if verbose {
        println!("{}", report.cargo_output);
    }
    if report
        .verdicts
        .get("lint")
        .is_some_and(|v| !matches!(v, Verdict::NotRun(_)))
    {
        let _ = fs::write(target_dir(&workshop.root).join(CLIPPY_READY), "");
    }
    print!("{}", render(exercise, &report));
    let passed = report.all_passed();
    let mut progress = Progress::load(&workshop.root)?;
    let entry = progress.entry(&exercise.meta.id);
    entry.solved = passed;
    entry.attempts += 1;
    progress.save_or_warn();
    if passed {
        match first_unsolved(workshop, &progress) {
            Some(next) => println!(
                "Next: {} · {}: `cargo xtask check {}`",
                next.meta.id, next.meta.title, next.meta.id
            ),
            None => println!("That was the last one: every exercise is solved."),
        }
    }
    Ok(passed)
}

/// Left in the target directory once clippy has run, so only its first run is announced.
pub(crate) const CLIPPY_READY: &str = "debug/.xtask-clippy-ready";

fn clippy_ready(root: &Path) -> bool {
    target_dir(root).join(CLIPPY_READY).exists()
}

/// Whether the dependencies have never been built, so the learner knows why the first check
/// takes a minute instead of a second.
fn first_build(root: &Path, profile: &str) -> bool {
    let lock = fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    if !lock.contains("name = \"tokio\"") {
        return false;
    }
    let built = fs::read_dir(target_dir(root).join(profile).join(".fingerprint"))
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("tokio-"))
        })
        .unwrap_or(false);
    !built
}

/// The verdict table and, for the first failure, what it means and what to do.
pub fn render(exercise: &Exercise, report: &Report) -> String {
    let mut out = String::new();
    let mut rows: Vec<(String, &str)> = exercise
        .meta
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.kind.as_str()))
        .collect();
    if exercise.meta.lint.is_some() {
        rows.push(("lint".to_owned(), "lint"));
    }
    // A verdict the metadata does not list (a test someone added to the checks, failing)
    // still counts: a run is solved only if everything in it passed.
    for name in report.verdicts.keys() {
        if !rows.iter().any(|(row, _)| row == name) {
            rows.push((name.clone(), "?"));
        }
    }
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(8).max(8);
    // The compile-fail lesson's first check is the compiler's: it counts like any other row.
    let compiles_row = exercise.meta.compile_fail.is_some() || !report.compiled();
    if compiles_row {
        let mark = if report.compiled() { "✓" } else { "✗" };
        let _ = writeln!(out, "  {mark} {:<width$}  cf", "compiles");
    }
    for (name, kind) in &rows {
        let line = match report.verdicts.get(name) {
            Some(Verdict::Pass) => format!("  ✓ {name:<width$}  {kind}"),
            Some(Verdict::Fail(_)) => format!("  ✗ {name:<width$}  {kind}"),
            Some(Verdict::NotRun(why)) => format!("  · {name:<width$}  {kind}  (not run: {why})"),
            None => format!("  · {name:<width$}  {kind}  (not run)"),
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);

    let source = exercise.dir.join("src");
    let id = &exercise.meta.id;
    if !report.compiled() {
        let _ = writeln!(out, "First failure: the crate does not compile");
        match &exercise.meta.compile_fail {
            Some(cf) if !report.diagnostics.is_empty() => {
                let _ = writeln!(out, "  What it means: {}", cf.explain);
            }
            _ => {}
        }
        let said = if report.diagnostics.is_empty() {
            "cargo said"
        } else {
            "The compiler said"
        };
        let _ = writeln!(out, "  {said}:");
        let _ = writeln!(out, "{}", indent(&cut(report.rendered()), "    "));
        if report.diagnostics.is_empty() {
            // Not the code: a manifest or the build itself is broken.
            let _ = writeln!(
                out,
                "  Next: fix what cargo reports (often a line added to a Cargo.toml), or restore the exercise with `cargo xtask reset {id}` (it discards your changes to it)."
            );
        } else {
            let _ = writeln!(
                out,
                "  Next: read hint 1 (`cargo xtask hint {id} 1`), edit {}, and run `cargo xtask check {id}` again.",
                source.display()
            );
        }
        return out;
    }
    let total = rows.len() + usize::from(compiles_row);
    let passed = rows
        .iter()
        .filter(|(n, _)| report.verdicts.get(n).is_some_and(Verdict::passed))
        .count()
        + usize::from(compiles_row);
    let failing = rows
        .iter()
        .find_map(|(name, _)| match report.verdicts.get(name) {
            Some(Verdict::Fail(failure)) => Some((name.as_str(), failure)),
            _ => None,
        });
    match failing {
        Some((name, failure)) => {
            let check = exercise.meta.checks.iter().find(|c| c.name == name);
            let lint = exercise.meta.lint.as_ref().filter(|_| name == "lint");
            let means = match (check, lint) {
                (Some(check), _) => check.means.clone(),
                (None, Some(lint)) => lint.means.clone().unwrap_or_else(|| {
                    "clippy found a lint this lesson is about; read its message below.".to_owned()
                }),
                (None, None) => String::new(),
            };
            let hint = check
                .map(|c| c.hint)
                .or_else(|| lint.and_then(|l| l.hint))
                .unwrap_or(1);
            let _ = writeln!(out, "First failure: {name}");
            // Only a failed assertion of the check itself is the verdict its `means` explains;
            // a hang, a crash or a broken harness must not be described as the planted bug.
            let what = match &failure.origin {
                Origin::Check if !means.is_empty() => means,
                Origin::Check => "a test the exercise does not declare failed.".to_owned(),
                Origin::Hang => "the check hung and never reached a verdict; the message below says what a hang usually means here.".to_owned(),
                Origin::Died => "the test process died before the check reached a verdict; the message below says how.".to_owned(),
                Origin::Elsewhere(at) => format!(
                    "the check stopped before reaching its verdict (at {at}), so it says nothing yet about the lesson; read the message below."
                ),
            };
            let _ = writeln!(out, "  What it means: {what}");
            if !failure.message.is_empty() {
                let _ = writeln!(out, "  The check said:");
                let _ = writeln!(out, "{}", indent(&cut(&failure.message), "    "));
            }
            if check.is_some_and(|c| c.kind == "snap") {
                let _ = writeln!(
                    out,
                    "  The snapshot is the conversation the lesson expects: change the code, not the snapshot."
                );
            }
            let _ = writeln!(
                out,
                "  Next: read hint {hint} (`cargo xtask hint {id} {hint}`), edit {}, and run `cargo xtask check {id}` again.",
                source.display()
            );
            let _ = writeln!(out, "\n{passed} of {total} checks pass.");
        }
        None if passed == total => {
            let _ = writeln!(out, "All {total} checks pass: {id} is solved.");
        }
        None => {
            let _ = writeln!(
                out,
                "{passed} of {total} checks pass; the others did not run (see above)."
            );
        }
    }
    out
}

/// Lines of a failure shown: its end, where the assertion and the diff's last lines are.
const MAX_FAILURE_LINES: usize = 40;
/// Characters of one line shown: a response body or a debug dump can be one huge line. A
/// check's own explanation is often one long sentence too, so a line up to this long is
/// wrapped rather than cut.
const MAX_LINE: usize = 800;
/// Width a long line is wrapped to, at spaces.
const WRAP: usize = 100;

fn cut(text: &str) -> String {
    let lines: Vec<String> = text
        .trim_end()
        .lines()
        .flat_map(|line| {
            let line = match line.char_indices().nth(MAX_LINE) {
                Some((at, _)) => format!("{} ... (line cut)", &line[..at]),
                None => line.to_owned(),
            };
            wrap(&line)
        })
        .collect();
    if lines.len() <= MAX_FAILURE_LINES {
        return lines.join("\n");
    }
    format!(
        "... ({} lines above: run with --verbose)\n{}",
        lines.len() - MAX_FAILURE_LINES,
        lines[lines.len() - MAX_FAILURE_LINES..].join("\n")
    )
}

/// Breaks a line longer than `WRAP` at spaces; a word longer than that stays whole.
fn wrap(line: &str) -> Vec<String> {
    if line.chars().count() <= WRAP {
        return vec![line.to_owned()];
    }
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > WRAP {
            lines.push(std::mem::take(&mut current));
        } else if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `cargo xtask hint [ID] [N]`: reveals one more hint each time, or every hint up to N.
pub fn hint(workshop: &Workshop, exercise: &Exercise, upto: Option<usize>) -> Result<()> {
    let mut progress = Progress::load(&workshop.root)?;
    let hints = &exercise.meta.hints;
    if upto.is_some_and(|n| n == 0 || n > hints.len()) {
        bail!(
            "{} has hints 1 to {}; `cargo xtask hint {}` shows the next one",
            exercise.meta.id,
            hints.len(),
            exercise.meta.id
        );
    }
    let entry = progress.entry(&exercise.meta.id);
    entry.hints_seen = match upto {
        Some(n) => entry.hints_seen.max(n),
        None => (entry.hints_seen + 1).min(hints.len()),
    };
    let seen = entry.hints_seen;
    progress.save_or_warn();
    println!(
        "{} · {}: hint {seen} of {}\n",
        exercise.meta.id,
        exercise.meta.title,
        hints.len()
    );
    for (i, hint) in hints.iter().take(seen).enumerate() {
        println!("  {}. {hint}\n", i + 1);
    }
    if seen < hints.len() {
        println!(
            "Run `cargo xtask hint {}` again for the next one.",
            exercise.meta.id
        );
    } else {
        println!(
            "That was the last hint. The solution and why it works: `cargo xtask solution {}`.",
            exercise.meta.id
        );
    }
    Ok(())
}

/// `cargo xtask reset ID`: the exercise's folder as last committed (files the learner added
/// removed too), and its progress cleared.
pub fn reset(workshop: &Workshop, exercise: &Exercise) -> Result<()> {
    for args in [
        &["checkout", "HEAD", "--"][..],
        &["clean", "-fdq", "--"][..],
    ] {
        let status = Command::new("git")
            .current_dir(&workshop.root)
            .args(args)
            .arg(&exercise.dir)
            .status()
            .with_context(|| format!("running git {} (is git installed?)", args[0]))?;
        if !status.success() {
            bail!(
                "git {} could not restore {}; is this a git clone of the workshop?",
                args[0],
                exercise.dir.display()
            );
        }
    }
    let mut progress = Progress::load(&workshop.root)?;
    progress.exercises.remove(&exercise.meta.id);
    progress.save_or_warn();
    println!(
        "{} restored to the last committed version; its hints and status are reset.",
        exercise.dir.display()
    );
    Ok(())
}

/// `cargo xtask solution ID`: where the solution is and why it works.
pub fn solution(workshop: &Workshop, exercise: &Exercise) -> Result<()> {
    let why_path = exercise.solution_dir.join("WHY.md");
    let why = fs::read_to_string(workshop.path(&why_path))
        .with_context(|| format!("reading {}", why_path.display()))?;
    println!(
        "{} · {}: the solution\n",
        exercise.meta.id, exercise.meta.title
    );
    println!("{}\n", why.trim());
    println!("Code: {}", exercise.solution_dir.join("src").display());
    println!(
        "Compare with yours: git diff --no-index {} {}",
        exercise.dir.join("src").display(),
        exercise.solution_dir.join("src").display()
    );
    Ok(())
}

/// `cargo xtask watch`: re-checks on every save, and moves on once an exercise passes.
///
/// Every verdict is followed by one line ending in `Press Ctrl-C to stop.`:
/// scripts/bench-learner-loop.sh times a save by when that line appears.
pub fn watch(workshop: &Workshop, id: Option<&str>, verbose: bool) -> Result<()> {
    let mut exercise = pick(workshop, id)?.clone();
    loop {
        // Stamped before the check: a save while it runs is a change to check again.
        let before = stamp(&workshop.path(&exercise.dir));
        let passed = check(workshop, &exercise, verbose)?;
        if passed {
            let progress = Progress::load(&workshop.root)?;
            match first_unsolved(workshop, &progress) {
                Some(next) => {
                    println!("\nWatching {} next. Press Ctrl-C to stop.", next.meta.id);
                    exercise = next.clone();
                    continue;
                }
                None => return Ok(()),
            }
        }
        println!(
            "\nWatching {} for changes. Press Ctrl-C to stop.",
            exercise.dir.join("src").display()
        );
        wait_for_change(&workshop.path(&exercise.dir), before)?;
        println!("\n--- change detected ---\n");
    }
}

/// Blocks until a file of the exercise differs from `before`: its sources, its checks (restored
/// after an edit) or its manifest. Polling keeps the runner free of a file-watching
/// dependency. A hundred looks a second (a dozen file stats each) cost about 1% of one core,
/// and a save is noticed within 10 ms, not the 200 ms on average that twice a second added to
/// every verdict: the learner's loop is the watcher's whole point.
fn wait_for_change(dir: &Path, before: Vec<(PathBuf, Option<SystemTime>)>) -> Result<()> {
    loop {
        std::thread::sleep(Duration::from_millis(10));
        if stamp(dir) != before {
            return Ok(());
        }
    }
}

fn stamp(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mut files = vec![dir.join("Cargo.toml")];
    let mut stack = vec![dir.join("src"), dir.join("tests")];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if !seal::ignored(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let modified = fs::metadata(&f).and_then(|m| m.modified()).ok();
            (f, modified)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{MAX_FAILURE_LINES, MAX_LINE, WRAP, cut};

    #[test]
    fn a_long_failure_keeps_its_end_where_the_assertion_is() {
        let text: Vec<String> = (1..=100).map(|i| format!("line {i}")).collect();
        let shown = cut(&text.join("\n"));
        assert!(shown.starts_with("... (60 lines above"), "{shown}");
        assert!(shown.ends_with("line 100"), "{shown}");
        assert_eq!(shown.lines().count(), MAX_FAILURE_LINES + 1);
    }

    #[test]
    fn a_long_sentence_is_wrapped_not_cut() {
        let sentence = vec!["word"; 100].join(" ");
        let shown = cut(&sentence);
        assert_eq!(shown.replace('\n', " "), sentence, "every word is kept");
        assert!(shown.lines().all(|l| l.len() <= WRAP), "{shown}");
    }

    #[test]
    fn a_long_line_is_cut() {
        let shown = cut(&"x".repeat(5 * MAX_LINE));
        assert_eq!(shown.len(), MAX_LINE + " ... (line cut)".len());
    }
}
