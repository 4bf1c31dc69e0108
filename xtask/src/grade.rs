//! `cargo xtask check --all` and `--format json|junit`: the checks of many exercises, run once,
//! kept as a report (`report.rs`) that CI, GitHub Classroom and the instructor's progress view
//! read. `--from REPORT` shows what a recorded report says instead of running anything: the
//! classroom workflow grades each exercise from the one run it made.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::learner::CLIPPY_READY;
use crate::progress::Progress;
use crate::report::{self, CheckReport, ExerciseRecord, ExerciseVerdict, junit, text};
use crate::runner::{self, Place, Verdict};
use crate::seal;
use crate::workshop::{Exercise, LEVELS, Workshop, target_dir};

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a person: a line per exercise, or one exercise's checks.
    Human,
    /// The report itself (documented in the instructor guide's "Teaching a cohort").
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

/// The flags of `cargo xtask check` beyond the learner's `check [ID]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check every exercise and report on each (for CI and instructors).
    #[arg(long)]
    pub all: bool,
    /// Check every exercise of this level (junior, middle, senior, professional, staff).
    #[arg(long)]
    pub level: Option<String>,
    /// How to write the report: json and junit are for machines.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the report to this file (and a summary to the terminal).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Who the report is about (default: git's user.name).
    #[arg(long)]
    pub learner: Option<String>,
    /// Show what a recorded JSON report says instead of running the checks.
    #[arg(long)]
    pub from: Option<PathBuf>,
}

impl Args {
    /// Whether the learner's plain `check [ID]` is meant (it prints, hints and moves on).
    pub fn is_plain(&self) -> bool {
        !self.all
            && self.level.is_none()
            && self.format == Format::Human
            && self.output.is_none()
            && self.learner.is_none()
            && self.from.is_none()
    }
}

/// Runs (or, with `--from`, reads) the report and writes it; Ok(false) if an exercise in it is
/// not solved.
pub fn run(workshop: &Workshop, id: Option<&str>, options: &Args) -> Result<bool> {
    if options.output.is_some() && options.format == Format::Human {
        bail!("--output writes a report: add --format json or --format junit");
    }
    let report = match &options.from {
        Some(path) => {
            if options.all || options.level.is_some() || options.learner.is_some() {
                bail!(
                    "--from shows a recorded report as it is: it takes an exercise id and --format, not --all, --level or --learner"
                );
            }
            let mut report = CheckReport::read(path)?;
            if let Some(id) = id {
                report.exercises = vec![recorded(&report, id, path)?];
            }
            report
        }
        None => check(workshop, &selection(workshop, id, options)?, options)?,
    };
    let single = id.is_some();
    let rendered = match options.format {
        Format::Human if single => text::details(&report.exercises[0]),
        Format::Human => text::summary(&report),
        Format::Json => report.to_json(),
        Format::Junit => junit::render(&report),
    };
    match &options.output {
        Some(path) => {
            write(path, &rendered)?;
            print!("{}", text::summary(&report));
            println!("Report written to {}", path.display());
        }
        None => print!("{rendered}"),
    }
    let failed: Vec<&ExerciseRecord> = report
        .exercises
        .iter()
        .filter(|e| e.verdict == ExerciseVerdict::Error)
        .collect();
    if options.from.is_none() && !failed.is_empty() {
        let ids: Vec<&str> = failed.iter().map(|e| e.id.as_str()).collect();
        bail!(
            "the runner could not check {} (the report says why); the report was written all the same",
            ids.join(", ")
        );
    }
    Ok(report.exercises.iter().all(ExerciseRecord::solved))
}

/// The exercises asked for: one, a level's, or all of them.
fn selection<'a>(
    workshop: &'a Workshop,
    id: Option<&str>,
    options: &Args,
) -> Result<Vec<&'a Exercise>> {
    if let Some(id) = id {
        if options.all || options.level.is_some() {
            bail!("name one exercise or use --all / --level, not both");
        }
        return Ok(vec![workshop.find(id)?]);
    }
    if !options.all && options.level.is_none() {
        bail!(
            "--format {} reports on exercises: name one, or add --all (or --level LEVEL)",
            match options.format {
                Format::Json => "json",
                Format::Junit => "junit",
                Format::Human => "human",
            }
        );
    }
    let chosen: Vec<&Exercise> = workshop
        .exercises
        .iter()
        .filter(|e| options.level.as_ref().is_none_or(|l| e.meta.level == *l))
        .collect();
    if chosen.is_empty() {
        let level = options.level.as_deref().unwrap_or("");
        let with: Vec<&str> = LEVELS
            .iter()
            .copied()
            .filter(|l| workshop.exercises.iter().any(|e| e.meta.level == *l))
            .collect();
        if LEVELS.contains(&level) {
            bail!(
                "no exercise is at level `{level}` yet (levels with exercises: {})",
                with.join(", ")
            );
        }
        bail!(
            "unknown level `{level}`: the levels are {} (with exercises: {})",
            LEVELS.join(", "),
            with.join(", ")
        );
    }
    Ok(chosen)
}

/// Runs the checks of every chosen exercise, one after the other, and records each verdict.
/// The learner's record of solved exercises is updated (a check is a check) but not their
/// attempts: a grading run is not an attempt.
fn check(workshop: &Workshop, chosen: &[&Exercise], options: &Args) -> Result<CheckReport> {
    let mut progress = Progress::load(&workshop.root)?;
    // A checkout with no progress file has recorded nothing (a fresh clone, CI): its attempts
    // are unknown, not zero.
    let recorded = Progress::file(&workshop.root).is_file();
    eprintln!(
        "Checking {} exercise(s); a fresh clone first builds the workshop's dependencies (minutes)...",
        chosen.len()
    );
    let mut records = Vec::new();
    for exercise in chosen {
        let started = Instant::now();
        let entry = recorded.then(|| progress.get(&exercise.meta.id));
        let modified = seal::modified(workshop, exercise)?;
        let record = if !modified.is_empty() {
            report::not_checked(
                exercise,
                ExerciseVerdict::Modified,
                format!("the checks were modified: {}", modified.join(", ")),
                started.elapsed(),
                entry.as_ref(),
            )
        } else {
            let place = Place::workshop(&workshop.root);
            match runner::run(&place, &exercise.meta, &exercise.package()) {
                Ok(run) => {
                    if run
                        .verdicts
                        .get("lint")
                        .is_some_and(|v| !matches!(v, Verdict::NotRun(_)))
                    {
                        let _ = fs::write(target_dir(&workshop.root).join(CLIPPY_READY), "");
                    }
                    progress.entry(&exercise.meta.id).solved = run.all_passed();
                    report::record(exercise, &run, started.elapsed(), entry.as_ref())
                }
                Err(error) => report::not_checked(
                    exercise,
                    ExerciseVerdict::Error,
                    format!("{error:#}"),
                    started.elapsed(),
                    entry.as_ref(),
                ),
            }
        };
        eprintln!(
            "  {:<4} {:<9} ({:.1} s)",
            record.id,
            format!("{:?}", record.verdict).to_lowercase(),
            started.elapsed().as_secs_f64()
        );
        records.push(record);
    }
    progress.save_or_warn();
    let learner = options.learner.clone().or_else(|| git_user(&workshop.root));
    Ok(CheckReport::new(
        learner,
        report::commit(&workshop.root),
        records,
    ))
}

/// One exercise of a recorded report, or why it is not there.
fn recorded(report: &CheckReport, id: &str, path: &Path) -> Result<ExerciseRecord> {
    report
        .exercises
        .iter()
        .find(|e| e.id.eq_ignore_ascii_case(id) || e.slug == id)
        .cloned()
        .with_context(|| {
            let ids: Vec<&str> = report.exercises.iter().map(|e| e.id.as_str()).collect();
            format!(
                "{} has no exercise `{id}` (it has {})",
                path.display(),
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            )
        })
}

/// git's `user.name`: who a learner's machine says they are.
fn git_user(root: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .current_dir(root)
        .args(["config", "user.name"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Some(name).filter(|n| !n.is_empty())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
