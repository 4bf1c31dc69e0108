//! The check report: every verdict of a run of `cargo xtask check`, as data.
//!
//! One format serves three readers: CI systems (`--format junit`, rendered from it), GitHub
//! Classroom's per-exercise points (`check ID --from REPORT`) and the instructor's progress
//! view (`cargo xtask cohort`), which reads many learners' reports. Its JSON shape is
//! documented in `book/src/instructor/cohort.md` and pinned by snapshot tests
//! (`xtask/tests/report.rs`); change it only with both, and bump [`VERSION`] when a field is
//! removed, renamed or changes meaning (adding a field does not: readers ignore what they do
//! not know).

pub mod junit;
mod record;
pub mod text;

pub use record::{not_checked, record};

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a report says it is, so that a reader can tell it from any other JSON file.
pub const SCHEMA: &str = "tokio-hyper-workshop/check-report";
/// The version of the shape below that this runner writes and reads.
pub const VERSION: u32 = 1;

/// One run of the checks of one or more exercises, by one learner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub schema: String,
    pub version: u32,
    /// Who ran it (`--learner`, else git's `user.name`); the cohort view falls back to the
    /// report's file name.
    pub learner: Option<String>,
    /// When the run ended, RFC 3339 in UTC.
    pub created: String,
    /// The commit the checkout was at (`git rev-parse HEAD`), if it is a git checkout.
    pub commit: Option<String>,
    /// In course order.
    pub exercises: Vec<ExerciseRecord>,
}

/// The verdict on one exercise.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExerciseRecord {
    pub id: String,
    pub slug: String,
    pub level: String,
    pub title: String,
    pub verdict: ExerciseVerdict,
    /// Why it is not solved, in one line (`None` when it passed).
    pub reason: Option<String>,
    /// Building and running every check of the exercise, in milliseconds.
    pub duration_ms: u64,
    /// How many times the learner ran this exercise's checks (`check`, `watch`) in this
    /// checkout; `None` where no progress is recorded (a fresh clone, a CI run).
    pub attempts: Option<u32>,
    /// How many hints the learner revealed; `None` like `attempts`.
    pub hints_seen: Option<usize>,
    /// Every check, in the order `cargo xtask check` shows them.
    pub checks: Vec<CheckRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExerciseVerdict {
    /// Every check passed: solved.
    Pass,
    /// It does not compile, or a check failed or did not run.
    Fail,
    /// The checks were edited, so they were not run: a check edited to pass proves nothing.
    Modified,
    /// The runner could not check it (cargo missing, a disk error): not the learner's doing.
    Error,
}

/// The verdict on one check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The `#[test]` function; `compiles` for the compiler's verdict, `lint` for clippy's.
    pub name: String,
    /// `srv vt leak loom snap cf lint`, or `undeclared` for a test the metadata does not list.
    pub kind: String,
    pub verdict: CheckVerdict,
    /// What a failure means in the lesson's terms, or why the check did not run.
    pub reason: Option<String>,
    /// Where a failure came from (a failure outside the check's own assertions says nothing
    /// about the lesson).
    pub origin: Option<FailureOrigin>,
    /// What the check (or the compiler) said, shortened to its last lines.
    pub message: Option<String>,
    /// How long the check's own process ran, in milliseconds; `None` for `compiles`, `lint`
    /// and a check that did not run. Checks run side by side, so durations overlap.
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckVerdict {
    Pass,
    Fail,
    NotRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureOrigin {
    /// An assertion of the check itself: the lesson's reason.
    Check,
    /// The check did not finish.
    Hang,
    /// The test process died before the check's verdict.
    Died,
    /// A panic outside the check's assertions (the harness, a dependency).
    Elsewhere,
    /// The compiler (the `compiles` row).
    Compiler,
}

impl ExerciseRecord {
    pub fn solved(&self) -> bool {
        self.verdict == ExerciseVerdict::Pass
    }

    /// The first check that failed, or did not run, in the order shown.
    pub fn first_failure(&self) -> Option<&CheckRecord> {
        self.checks
            .iter()
            .find(|c| c.verdict == CheckVerdict::Fail)
            .or_else(|| self.checks.iter().find(|c| c.verdict != CheckVerdict::Pass))
    }
}

impl CheckReport {
    /// A report of these records, made now.
    pub fn new(
        learner: Option<String>,
        commit: Option<String>,
        exercises: Vec<ExerciseRecord>,
    ) -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            version: VERSION,
            learner,
            created: rfc3339(SystemTime::now()),
            commit,
            exercises,
        }
    }

    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("a report always serialises");
        json.push('\n');
        json
    }

    /// Reads a report, saying what is wrong with a file that is not one this runner reads.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{} is not a check report", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).context("it is not JSON")?;
        if value["schema"].as_str() != Some(SCHEMA) {
            bail!(
                "its \"schema\" is not \"{SCHEMA}\" (make one with `cargo xtask check --all --format json`)"
            );
        }
        match value["version"].as_u64() {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) if v > u64::from(VERSION) => bail!(
                "it is version {v}, made by a newer runner; this one reads version {VERSION} (update the workshop)"
            ),
            Some(v) => bail!("it is version {v}; this runner reads version {VERSION}"),
            None => bail!("it has no \"version\""),
        }
        let report: Self =
            serde_json::from_value(value).context("a field is missing or has the wrong type")?;
        // A report of nothing would read as "everything solved".
        if report.exercises.is_empty() {
            bail!("it has no exercises");
        }
        Ok(report)
    }
}

/// `git rev-parse HEAD` of the checkout, if it is one.
pub fn commit(root: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let commit = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Some(commit).filter(|c| !c.is_empty())
}

/// `2025-06-01T09:30:00Z`: a UTC time without a date crate.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_are_utc_rfc3339() {
        let at = |secs| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day in a century year) and the second before 2025.
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn other_json_and_other_versions_are_refused_with_a_reason() {
        let error = |text: &str| format!("{:#}", CheckReport::parse(text).unwrap_err());
        assert!(error("[1, 2").contains("not JSON"));
        assert!(error(r#"{"schema": "x", "version": 1}"#).contains("schema"));
        let newer = format!(r#"{{"schema": "{SCHEMA}", "version": 2}}"#);
        assert!(error(&newer).contains("newer runner"), "{}", error(&newer));
        let incomplete = format!(r#"{{"schema": "{SCHEMA}", "version": 1}}"#);
        assert!(
            error(&incomplete).contains("missing"),
            "{}",
            error(&incomplete)
        );
    }
}
