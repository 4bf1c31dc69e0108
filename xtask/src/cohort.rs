//! `cargo xtask cohort REPORTS...`: where a cohort stands, from its learners' check reports.
//!
//! Each learner's `cargo xtask check --all --format json` (on their machine, or from the
//! classroom workflow's artifact) is one file; the instructor points this at the files or the
//! folders that hold them. Per exercise: how many solved it, how many are working on it now,
//! the check that fails most often, the median number of attempts. Per learner: how far they
//! are, and which check stops them. `--html` writes the same as a page with a chart.

mod html;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::report::{CheckReport, CheckVerdict, ExerciseRecord, ExerciseVerdict};
use crate::workshop::LEVELS;

/// `cargo xtask cohort`: prints the tables, and writes the page when asked.
pub fn run(inputs: &[PathBuf], page: Option<&Path>) -> Result<bool> {
    let cohort = Cohort::load(inputs)?;
    for note in &cohort.notes {
        eprintln!("note: {note}");
    }
    print!("{}", cohort.table());
    if let Some(path) = page {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(path, html::page(&cohort))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nThe page is in {}", path.display());
    }
    Ok(true)
}

/// Every learner's latest report, and what they add up to.
pub struct Cohort {
    /// Sorted by how far they are (furthest behind first), then by name.
    pub learners: Vec<Learner>,
    /// Every exercise any report mentions, in course order.
    pub exercises: Vec<ExerciseStats>,
    /// Files that were skipped, and learners with more than one report.
    pub notes: Vec<String>,
}

pub struct Learner {
    pub name: String,
    pub report: CheckReport,
    pub solved: usize,
    /// The first exercise they have not solved, in course order (`None`: all solved).
    pub at: Option<String>,
    /// What stops them there: its first failing check, or why it was not checked.
    pub stuck_on: Option<String>,
}

pub struct ExerciseStats {
    pub id: String,
    pub title: String,
    /// Learners whose report has this exercise.
    pub reported: usize,
    pub solved: usize,
    /// Learners for whom this is the first unsolved exercise: working on it now.
    pub current: usize,
    /// The check that fails for the most learners who reached it and have not solved it, and
    /// for how many.
    pub failing: Option<(String, usize)>,
    /// Over the learners who ran its checks at least once on their machine.
    pub median_attempts: Option<f64>,
}

impl Cohort {
    /// Reads every report under `inputs` (files, or folders searched for `*.json`).
    pub fn load(inputs: &[PathBuf]) -> Result<Self> {
        let mut notes = Vec::new();
        let mut latest: BTreeMap<String, (CheckReport, PathBuf, usize)> = BTreeMap::new();
        for (path, fallback) in files(inputs)? {
            let report = match CheckReport::read(&path) {
                Ok(report) => report,
                Err(error) => {
                    notes.push(format!("{error:#}; skipped it"));
                    continue;
                }
            };
            let name = report
                .learner
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(fallback);
            // RFC 3339 times in UTC compare as text.
            match latest.get_mut(&name) {
                Some((kept, kept_path, count)) => {
                    *count += 1;
                    if report.created > kept.created {
                        *kept = report;
                        *kept_path = path;
                    }
                }
                None => {
                    latest.insert(name, (report, path, 1));
                }
            }
        }
        if latest.is_empty() {
            bail!(
                "no check report in {}: each learner makes one with `cargo xtask check --all --format json --output FILE`",
                inputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (name, (_, path, count)) in &latest {
            if *count > 1 {
                notes.push(format!(
                    "{name} has {count} reports; the newest is used ({})",
                    path.display()
                ));
            }
        }
        let order = course_order(latest.values().map(|(r, _, _)| r));
        let mut learners: Vec<Learner> = latest
            .into_iter()
            .map(|(name, (report, _, _))| Learner::new(name, report, &order))
            .collect();
        let position = |l: &Learner| {
            l.at.as_ref()
                .and_then(|id| order.iter().position(|(o, _)| o == id))
                .unwrap_or(order.len())
        };
        learners.sort_by(|a, b| position(a).cmp(&position(b)).then(a.name.cmp(&b.name)));
        let exercises = order
            .iter()
            .map(|(id, title)| ExerciseStats::new(id, title, &learners, &order))
            .collect();
        Ok(Self {
            learners,
            exercises,
            notes,
        })
    }

    /// The two tables, for the terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Cohort: {} learner(s), {} exercise(s)\n",
            self.learners.len(),
            self.exercises.len()
        );
        let rows: Vec<Vec<String>> = self
            .exercises
            .iter()
            .map(|e| {
                vec![
                    format!("{} {}", e.id, e.title),
                    format!("{}/{}", e.solved, e.reported),
                    e.current.to_string(),
                    e.failing_text(),
                    e.median_text(),
                ]
            })
            .collect();
        out.push_str(&columns(
            &[
                "Exercise",
                "Solved",
                "Working on it",
                "Most common failing check",
                "Median attempts",
            ],
            &rows,
        ));
        let rows: Vec<Vec<String>> = self
            .learners
            .iter()
            .map(|l| {
                vec![
                    l.name.clone(),
                    format!("{}/{}", l.solved, l.report.exercises.len()),
                    l.at.clone().unwrap_or_else(|| "done".to_owned()),
                    l.stuck_on.clone().unwrap_or_default(),
                    l.when(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&columns(
            &["Learner", "Solved", "At", "Stopped by", "Report"],
            &rows,
        ));
        out
    }
}

impl Learner {
    fn new(name: String, report: CheckReport, order: &[(String, String)]) -> Self {
        let solved = report.exercises.iter().filter(|e| e.solved()).count();
        let first_unsolved = order
            .iter()
            .filter_map(|(id, _)| report.exercises.iter().find(|e| e.id == *id))
            .find(|e| !e.solved());
        let at = first_unsolved.map(|e| e.id.clone());
        let stuck_on = first_unsolved.map(stopped_by);
        Self {
            name,
            report,
            solved,
            at,
            stuck_on,
        }
    }

    /// `2025-06-02 10:14 UTC`, from the report's RFC 3339 time.
    pub fn when(&self) -> String {
        let created = &self.report.created;
        match (created.get(..10), created.get(11..16)) {
            (Some(day), Some(time)) if created.len() >= 16 => format!("{day} {time} UTC"),
            _ => created.clone(),
        }
    }
}

/// Whether a learner has got to an exercise: it is the first they have not solved, they solved
/// a later one, or they ran its checks or read its hints on their machine.
fn reached(learner: &Learner, e: &ExerciseRecord, order: &[(String, String)]) -> bool {
    let index = |id: &str| order.iter().position(|(o, _)| o == id);
    let here = index(&e.id);
    learner.at.as_deref() == Some(e.id.as_str())
        || e.attempts.is_some_and(|a| a > 0)
        || e.hints_seen.is_some_and(|h| h > 0)
        || learner
            .report
            .exercises
            .iter()
            .any(|later| later.solved() && index(&later.id) > here)
}

/// What stops a learner at an exercise: its first failing check, or why it was not checked.
fn stopped_by(e: &ExerciseRecord) -> String {
    match e.verdict {
        ExerciseVerdict::Modified => "checks modified".to_owned(),
        ExerciseVerdict::Error => "not checked (runner error)".to_owned(),
        _ => e
            .first_failure()
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "not solved".to_owned()),
    }
}

impl ExerciseStats {
    fn new(id: &str, title: &str, learners: &[Learner], order: &[(String, String)]) -> Self {
        let records: Vec<(&Learner, &ExerciseRecord)> = learners
            .iter()
            .filter_map(|l| {
                l.report
                    .exercises
                    .iter()
                    .find(|e| e.id == id)
                    .map(|e| (l, e))
            })
            .collect();
        // Counted per learner, in the order the checks are shown, so that a tie goes to the
        // check a learner meets first. Only learners who reached the exercise count: on an
        // exercise nobody has touched, every check of the planted bug fails, which says nothing.
        let mut failing: Vec<(String, usize)> = Vec::new();
        for (_, e) in records
            .iter()
            .filter(|(l, e)| !e.solved() && reached(l, e, order))
        {
            for check in e.checks.iter().filter(|c| c.verdict == CheckVerdict::Fail) {
                match failing.iter_mut().find(|(n, _)| *n == check.name) {
                    Some((_, count)) => *count += 1,
                    None => failing.push((check.name.clone(), 1)),
                }
            }
        }
        let most = failing.iter().map(|(_, c)| *c).max();
        let attempts: Vec<u32> = records
            .iter()
            .filter_map(|(_, e)| e.attempts)
            .filter(|a| *a > 0)
            .collect();
        Self {
            id: id.to_owned(),
            title: title.to_owned(),
            reported: records.len(),
            solved: records.iter().filter(|(_, e)| e.solved()).count(),
            current: learners
                .iter()
                .filter(|l| l.at.as_deref() == Some(id))
                .count(),
            failing: failing.into_iter().find(|(_, c)| Some(*c) == most),
            median_attempts: median(attempts),
        }
    }

    pub fn failing_text(&self) -> String {
        match &self.failing {
            Some((name, count)) => format!("{name} ({count})"),
            None => "-".to_owned(),
        }
    }

    pub fn median_text(&self) -> String {
        match self.median_attempts {
            Some(m) if m.fract() == 0.0 => format!("{m:.0}"),
            Some(m) => format!("{m:.1}"),
            None => "-".to_owned(),
        }
    }
}

fn median(mut values: Vec<u32>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        f64::from(values[mid])
    } else {
        (f64::from(values[mid - 1]) + f64::from(values[mid])) / 2.0
    })
}

/// Every exercise in the reports, by level (in the course's order), then id; titles from the
/// newest report that has the exercise.
fn course_order<'a>(reports: impl Iterator<Item = &'a CheckReport>) -> Vec<(String, String)> {
    let mut seen: BTreeMap<(usize, String), (String, String)> = BTreeMap::new();
    for report in reports {
        for e in &report.exercises {
            let level = LEVELS
                .iter()
                .position(|l| *l == e.level)
                .unwrap_or(LEVELS.len());
            let key = (level, e.id.clone());
            let newer = seen
                .get(&key)
                .is_none_or(|(created, _)| report.created > *created);
            if newer {
                seen.insert(key, (report.created.clone(), e.title.clone()));
            }
        }
    }
    seen.into_iter()
        .map(|((_, id), (_, title))| (id, title))
        .collect()
}

/// The report files under the inputs, each with the learner name to use when the report has
/// none: its path under the folder given, without `.json`.
fn files(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut paths = Vec::new();
            walk(input, &mut paths)
                .with_context(|| format!("listing the reports in {}", input.display()))?;
            paths.sort();
            for path in paths {
                let rel = path.strip_prefix(input).unwrap_or(&path).with_extension("");
                found.push((path.clone(), rel.to_string_lossy().replace('\\', "/")));
            }
        } else if input.is_file() {
            let stem = input.file_stem().unwrap_or_default().to_string_lossy();
            found.push((input.clone(), stem.into_owned()));
        } else {
            bail!("{} does not exist", input.display());
        }
    }
    // A file named twice (on its own and in its folder) is one report.
    let mut seen = std::collections::BTreeSet::new();
    found.retain(|(path, _)| seen.insert(path.canonicalize().unwrap_or_else(|_| path.clone())));
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Left-aligned columns two spaces apart, with a header.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", text.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![7, 1, 3]), Some(3.0));
        assert_eq!(median(vec![4, 1, 2, 9]), Some(3.0));
        assert_eq!(median(vec![1, 2]), Some(1.5));
    }
}
