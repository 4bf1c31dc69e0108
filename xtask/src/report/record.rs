//! A report's records, from the runner's verdicts: the same rows, reasons and first failure
//! that `cargo xtask check` shows a learner.

use std::time::Duration;

use super::{CheckRecord, CheckVerdict, ExerciseRecord, ExerciseVerdict, FailureOrigin};
use crate::progress::ExerciseProgress;
use crate::runner::{self, Origin, Verdict};
use crate::workshop::Exercise;

/// Lines of a message kept: its end, where the assertion and a diff's last lines are.
const MESSAGE_LINES: usize = 40;
/// Characters of one line kept: a response body or a debug dump can be one huge line.
const LINE_CHARS: usize = 200;

/// The record of a run of the runner on one exercise.
pub fn record(
    exercise: &Exercise,
    report: &runner::Report,
    duration: Duration,
    progress: Option<&ExerciseProgress>,
) -> ExerciseRecord {
    let meta = &exercise.meta;
    let mut checks = Vec::new();
    // The compile-fail lesson's first check is the compiler's, as `cargo xtask check` shows it.
    if meta.compile_fail.is_some() || !report.compiled() {
        checks.push(compiles(exercise, report));
    }
    let mut rows: Vec<(String, String)> = meta
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.kind.clone()))
        .collect();
    if meta.lint.is_some() {
        rows.push(("lint".to_owned(), "lint".to_owned()));
    }
    // A failing test the metadata does not list (someone added it to the checks) still
    // counts, as it does for `cargo xtask check`.
    for name in report.verdicts.keys() {
        if !rows.iter().any(|(row, _)| row == name) {
            rows.push((name.clone(), "undeclared".to_owned()));
        }
    }
    for (name, kind) in rows {
        let means = meta
            .checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.means.clone())
            .or_else(|| {
                let lint = meta.lint.as_ref().filter(|_| name == "lint")?;
                Some(
                    lint.means
                        .clone()
                        .unwrap_or_else(|| "clippy found a lint this lesson is about.".to_owned()),
                )
            })
            .unwrap_or_else(|| "a test the exercise does not declare failed.".to_owned());
        let verdict = report.verdicts.get(&name);
        let duration = report.durations.get(&name).copied();
        let mut record = check_record(name, kind, verdict, &means);
        record.duration_ms = duration.map(millis);
        checks.push(record);
    }
    let (verdict, reason) = if report.all_passed() {
        (ExerciseVerdict::Pass, None)
    } else if !report.compiled() {
        (
            ExerciseVerdict::Fail,
            Some(compile_failure(report).to_owned()),
        )
    } else {
        let reason = match checks.iter().find(|c| c.verdict == CheckVerdict::Fail) {
            Some(first) => format!("first failure: {}", first.name),
            None => "some checks did not run".to_owned(),
        };
        (ExerciseVerdict::Fail, Some(reason))
    };
    ExerciseRecord {
        verdict,
        reason,
        checks,
        ..without_checks(exercise, duration, progress)
    }
}

/// The record of an exercise whose checks did not run: they were edited, or the runner failed.
pub fn not_checked(
    exercise: &Exercise,
    verdict: ExerciseVerdict,
    reason: String,
    duration: Duration,
    progress: Option<&ExerciseProgress>,
) -> ExerciseRecord {
    ExerciseRecord {
        verdict,
        reason: Some(reason),
        ..without_checks(exercise, duration, progress)
    }
}

fn without_checks(
    exercise: &Exercise,
    duration: Duration,
    progress: Option<&ExerciseProgress>,
) -> ExerciseRecord {
    let meta = &exercise.meta;
    ExerciseRecord {
        id: meta.id.clone(),
        slug: meta.slug.clone(),
        level: meta.level.clone(),
        title: meta.title.clone(),
        verdict: ExerciseVerdict::Fail,
        reason: None,
        duration_ms: millis(duration),
        attempts: progress.map(|p| p.attempts),
        hints_seen: progress.map(|p| p.hints_seen),
        checks: Vec::new(),
    }
}

fn compile_failure(report: &runner::Report) -> &'static str {
    if report.diagnostics.is_empty() {
        // No compiler error: a manifest or the build itself is broken.
        "cargo could not build the exercise"
    } else {
        "the crate does not compile"
    }
}

/// The `compiles` row: the compiler's verdict, with what it said.
fn compiles(exercise: &Exercise, report: &runner::Report) -> CheckRecord {
    if report.compiled() {
        return CheckRecord {
            name: "compiles".to_owned(),
            kind: "cf".to_owned(),
            verdict: CheckVerdict::Pass,
            reason: None,
            origin: None,
            message: None,
            duration_ms: None,
        };
    }
    let reason = match &exercise.meta.compile_fail {
        Some(cf) if !report.diagnostics.is_empty() => cf.explain.clone(),
        _ => compile_failure(report).to_owned(),
    };
    CheckRecord {
        name: "compiles".to_owned(),
        kind: "cf".to_owned(),
        verdict: CheckVerdict::Fail,
        reason: Some(reason),
        origin: Some(FailureOrigin::Compiler),
        message: Some(excerpt(report.rendered())),
        duration_ms: None,
    }
}

fn check_record(name: String, kind: String, verdict: Option<&Verdict>, means: &str) -> CheckRecord {
    let (verdict, reason, origin, message) = match verdict {
        Some(Verdict::Pass) => (CheckVerdict::Pass, None, None, None),
        Some(Verdict::NotRun(why)) => (CheckVerdict::NotRun, Some(why.clone()), None, None),
        None => (CheckVerdict::NotRun, Some("not run".to_owned()), None, None),
        Some(Verdict::Fail(failure)) => {
            // Only a failed assertion of the check itself is the verdict its `means` explains.
            let (origin, reason) = match &failure.origin {
                Origin::Check => (FailureOrigin::Check, means.to_owned()),
                Origin::Hang => (
                    FailureOrigin::Hang,
                    "the check hung and never reached a verdict".to_owned(),
                ),
                Origin::Died => (
                    FailureOrigin::Died,
                    "the test process died before the check reached a verdict".to_owned(),
                ),
                Origin::Elsewhere(at) if at.is_empty() => (
                    FailureOrigin::Elsewhere,
                    "the check failed outside its own assertions".to_owned(),
                ),
                Origin::Elsewhere(at) => (
                    FailureOrigin::Elsewhere,
                    format!("the check stopped outside its own assertions (at {at})"),
                ),
            };
            let message = Some(excerpt(&failure.message)).filter(|m| !m.is_empty());
            (CheckVerdict::Fail, Some(reason), Some(origin), message)
        }
    };
    CheckRecord {
        name,
        kind,
        verdict,
        reason,
        origin,
        message,
        duration_ms: None,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The end of a long message, with long lines cut: enough to see what failed, small enough
/// that two hundred reports stay small.
fn excerpt(text: &str) -> String {
    let lines: Vec<String> = text
        .trim_end()
        .lines()
        .map(|line| match line.char_indices().nth(LINE_CHARS) {
            Some((at, _)) => format!("{} ... (line cut)", &line[..at]),
            None => line.to_owned(),
        })
        .collect();
    if lines.len() <= MESSAGE_LINES {
        return lines.join("\n");
    }
    format!(
        "... ({} lines above)\n{}",
        lines.len() - MESSAGE_LINES,
        lines[lines.len() - MESSAGE_LINES..].join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::{LINE_CHARS, excerpt};

    #[test]
    fn a_long_message_keeps_its_end_and_cuts_long_lines() {
        let text: Vec<String> = (1..=100).map(|i| format!("line {i}")).collect();
        let kept = excerpt(&text.join("\n"));
        assert!(kept.starts_with("... (60 lines above)"), "{kept}");
        assert!(kept.ends_with("line 100"), "{kept}");
        assert_eq!(
            excerpt(&"x".repeat(500)).len(),
            LINE_CHARS + " ... (line cut)".len()
        );
    }
}
