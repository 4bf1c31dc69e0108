//! The report for a person: one line per exercise, or one exercise's checks and what its first
//! failure means, as `cargo xtask check` shows them. No durations: they differ from run to run,
//! and the JSON has them.

use std::fmt::Write as _;

use super::{CheckReport, CheckVerdict, ExerciseRecord, ExerciseVerdict};

/// One line per exercise, then how many are solved.
pub fn summary(report: &CheckReport) -> String {
    let mut out = String::new();
    let width = report
        .exercises
        .iter()
        .map(|e| e.title.chars().count())
        .max()
        .unwrap_or(0);
    for e in &report.exercises {
        let passed = e
            .checks
            .iter()
            .filter(|c| c.verdict == CheckVerdict::Pass)
            .count();
        let status = match e.verdict {
            ExerciseVerdict::Pass => format!("{passed}/{} checks", e.checks.len()),
            ExerciseVerdict::Fail => format!(
                "{passed}/{} checks, {}",
                e.checks.len(),
                e.reason.as_deref().unwrap_or("not solved")
            ),
            ExerciseVerdict::Modified => {
                "its checks were modified, so they were not run".to_owned()
            }
            ExerciseVerdict::Error => format!(
                "could not be checked: {}",
                first_line(e.reason.as_deref().unwrap_or(""))
            ),
        };
        let title = format!("{:<width$}", e.title);
        let _ = writeln!(out, "  {} {:<4} {title}  {status}", mark(e.verdict), e.id);
    }
    let solved = report.exercises.iter().filter(|e| e.solved()).count();
    let _ = writeln!(
        out,
        "\n{solved} of {} exercises solved.",
        report.exercises.len()
    );
    out
}

/// One exercise: every check, then its first failure and what it means.
pub fn details(e: &ExerciseRecord) -> String {
    let mut out = String::new();
    let state = match e.verdict {
        ExerciseVerdict::Pass => "solved",
        ExerciseVerdict::Fail => "not solved yet",
        ExerciseVerdict::Modified => "its checks were modified, so they were not run",
        ExerciseVerdict::Error => "it could not be checked",
    };
    let _ = writeln!(out, "{} · {} ({}): {state}", e.id, e.title, e.level);
    let width = e.checks.iter().map(|c| c.name.len()).max().unwrap_or(8);
    for c in &e.checks {
        let line = match c.verdict {
            CheckVerdict::Pass => format!("  ✓ {:<width$}  {}", c.name, c.kind),
            CheckVerdict::Fail => format!("  ✗ {:<width$}  {}", c.name, c.kind),
            CheckVerdict::NotRun => format!(
                "  · {:<width$}  {}  (not run: {})",
                c.name,
                c.kind,
                c.reason.as_deref().unwrap_or("")
            ),
        };
        let _ = writeln!(out, "{line}");
    }
    match (e.verdict, e.first_failure()) {
        (ExerciseVerdict::Fail, Some(first)) if first.verdict == CheckVerdict::Fail => {
            let _ = writeln!(out, "\nFirst failure: {}", first.name);
            if let Some(reason) = &first.reason {
                let _ = writeln!(out, "  What it means: {reason}");
            }
            if let Some(message) = &first.message {
                let _ = writeln!(out, "  It said:");
                for line in message.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            let _ = writeln!(
                out,
                "  Next: `cargo xtask check {}` shows it on your machine, with the hint to read.",
                e.id
            );
        }
        (ExerciseVerdict::Pass, _) => {}
        _ => {
            if let Some(reason) = &e.reason {
                let _ = writeln!(out, "\n  {}", reason.replace('\n', "\n  "));
            }
        }
    }
    out
}

fn mark(verdict: ExerciseVerdict) -> char {
    match verdict {
        ExerciseVerdict::Pass => '✓',
        ExerciseVerdict::Fail => '✗',
        ExerciseVerdict::Modified => '!',
        ExerciseVerdict::Error => '?',
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
