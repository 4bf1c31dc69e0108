//! `cargo xtask cohort` over recorded reports: `tests/fixtures/cohort/` holds the reports of
//! several learners, made by `cargo xtask check --all --format json` on the workshop itself at
//! different points of the course (and one file that is not a report). The table and the page
//! are pinned by snapshots; the page is also rendered in a browser (`src/cohort/html.rs`).

mod common;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use common::{stderr, stdout};

/// Relative to the workshop's root, where the runner runs: the paths in its notes are the same
/// on every machine.
const FIXTURES: &str = "xtask/tests/fixtures/cohort";

/// The runner, run from the workshop (cohort reads only the reports it is given).
fn xtask(args: &[&str]) -> Command {
    let mut command = Command::cargo_bin("xtask").unwrap();
    command
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env_remove("WORKSHOP_ROOT");
    command
}

#[test]
fn the_table_shows_each_exercise_and_each_learner() {
    let output = xtask(&["cohort", FIXTURES]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    insta::assert_snapshot!("table", stdout(&output));
    insta::assert_snapshot!("notes", stderr(&output));
}

#[test]
fn the_page_holds_the_same_tables_and_a_chart() {
    let dir = std::env::temp_dir().join(format!("xtask-cohort-page-{}", std::process::id()));
    let page = dir.join("cohort.html");
    let output = xtask(&["cohort", FIXTURES, "--html", page.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let html = fs::read_to_string(&page).unwrap();
    let _ = fs::remove_dir_all(&dir);
    // Self-contained: nothing to fetch, nothing to run.
    for outside in ["<script", "src=\"http", "href=\"http", "<link"] {
        assert!(!html.contains(outside), "the page has `{outside}`");
    }
    insta::assert_snapshot!("page", html);
}

#[test]
fn files_and_folders_can_be_mixed_and_a_learner_counts_once() {
    let ada = format!("{FIXTURES}/ada.json");
    let output = xtask(&["cohort", &ada, FIXTURES]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let notes = stderr(&output);
    assert!(
        !notes.contains("ada has"),
        "one file is one report: {notes}"
    );
    let table = stdout(&output);
    assert_eq!(
        table.lines().filter(|l| l.starts_with("ada ")).count(),
        1,
        "{table}"
    );
}

#[test]
fn no_report_is_an_error_that_says_how_to_make_one() {
    let empty = std::env::temp_dir().join(format!("xtask-cohort-empty-{}", std::process::id()));
    fs::create_dir_all(&empty).unwrap();
    let output = xtask(&["cohort", empty.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&empty);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cargo xtask check --all --format json --output FILE"),
        "{}",
        stderr(&output)
    );

    let output = xtask(&["cohort", "no/such/folder"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no/such/folder does not exist"));

    let output = xtask(&["cohort"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "clap asks for the reports");
}
