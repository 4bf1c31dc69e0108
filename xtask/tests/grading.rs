//! The ways a review found to be marked solved without a fix, to hang the runner, or to break
//! it with one bad file: each is reproduced against the fixture workshop and must fail to fool
//! the runner.

mod common;

use std::fs;
use std::time::Duration;

use common::{Fixture, stderr, stdout};

const SOLVED: &str = "is solved";

/// The fixture's J01 is solved only by doubling; every test below starts from its wrong code.
fn check(fixture: &Fixture) -> (Option<i32>, String, String) {
    let output = fixture.xtask(&["check", "J01"]).output().unwrap();
    (output.status.code(), stdout(&output), stderr(&output))
}

#[test]
fn deleting_check_blocks_from_exercise_toml_is_reported() {
    let fixture = Fixture::new();
    let meta = fixture.read("solutions/junior/j01-doubler/exercise.toml");
    let first_check = meta.find("[[check]]").unwrap();
    // Keep one check, the one that passes on the bug, so the rest would look solved.
    let second = meta[first_check + 1..].find("[[check]]").unwrap() + first_check + 1;
    let edited = format!("{}{}", &meta[..first_check], &meta[second..]);
    fixture.write("solutions/junior/j01-doubler/exercise.toml", &edited);
    let (code, out, err) = check(&fixture);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("exercise.toml"), "names the file: {err}");
    assert!(!out.contains(SOLVED), "{out}");
}

#[test]
fn pointing_the_test_target_at_empty_tests_is_reported() {
    let fixture = Fixture::new();
    fixture.write("exercises/junior/j01-doubler/tests/empty.rs", "");
    let manifest = fixture.read("exercises/junior/j01-doubler/Cargo.toml");
    fixture.write(
        "exercises/junior/j01-doubler/Cargo.toml",
        &format!("{manifest}\n[[test]]\nname = \"checks\"\npath = \"tests/empty.rs\"\n"),
    );
    let (code, out, err) = check(&fixture);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("Cargo.toml"), "names the file: {err}");
    assert!(
        err.contains("tests/empty.rs"),
        "an added test file too: {err}"
    );
}

#[test]
fn adding_a_dependency_is_not_an_edit_of_the_checks() {
    let fixture = Fixture::new();
    let manifest = fixture.read("exercises/junior/j01-doubler/Cargo.toml");
    // An empty [dependencies] table changes the file, not what decides the checks.
    fixture.write(
        "exercises/junior/j01-doubler/Cargo.toml",
        &format!("{manifest}\n[dependencies]\n"),
    );
    let (code, out, err) = check(&fixture);
    assert_eq!(code, Some(1), "the bug is still there: {out}{err}");
    assert!(out.contains("doubles_three"), "the checks ran: {out}{err}");
}

#[test]
fn printing_passes_and_exiting_zero_from_the_code_does_not_pass() {
    let fixture = Fixture::new();
    fixture.write_doubler(
        "pub fn double(x: u32) -> u32 {\n    println!(\"test doubles_three ... ok\");\n    println!(\"test doubles_two ... ok\");\n    println!(\"test result: ok. 2 passed; 0 failed\");\n    std::process::exit(0);\n    #[allow(unreachable_code)]\n    x\n}\n",
    );
    let (code, out, err) = check(&fixture);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(!out.contains(SOLVED), "{out}");
    assert!(
        out.contains("std::process::exit(0)"),
        "the crash is named: {out}"
    );
}

#[test]
fn insta_and_test_variables_do_not_reach_the_checks() {
    let fixture = Fixture::new();
    // Code that is right only when the environment tells the checks to let everything pass.
    fixture.write_doubler(
        "pub fn double(x: u32) -> u32 {\n    if std::env::var_os(\"INSTA_FORCE_PASS\").is_some() || std::env::var_os(\"LOOM_MAX_PREEMPTIONS\").is_some() { x + x } else { x * x }\n}\n",
    );
    let output = fixture
        .xtask(&["check", "J01"])
        .env("INSTA_FORCE_PASS", "1")
        .env("LOOM_MAX_PREEMPTIONS", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
}

#[test]
fn a_process_the_code_leaves_behind_neither_hangs_the_runner_nor_survives_it() {
    let fixture = Fixture::new();
    // The child inherits the test binary's stdout; a runner reading a pipe would wait for it.
    fixture.write_doubler(
        "pub fn double(x: u32) -> u32 {\n    let _ = std::process::Command::new(\"sleep\").arg(\"617\").spawn();\n    x * x\n}\n",
    );
    let output = fixture
        .xtask(&["check", "J01"])
        .timeout(Duration::from_secs(90))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 617"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the left-behind process was stopped with the test binary"
    );
}

#[test]
fn a_stack_overflow_is_named() {
    let fixture = Fixture::new();
    fixture.write_doubler(
        "pub fn double(x: u32) -> u32 {\n    if std::hint::black_box(true) { double(x) + 1 } else { x }\n}\n",
    );
    let (code, out, err) = check(&fixture);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("stack overflow"), "{out}");
    assert!(!out.contains("no test named"), "{out}");
}

#[test]
fn a_panic_in_the_learners_code_shows_where() {
    let fixture = Fixture::new();
    fixture.write_doubler("pub fn double(x: u32) -> u32 {\n    x.checked_sub(7).unwrap()\n}\n");
    let (code, out, _) = check(&fixture);
    assert_eq!(code, Some(1));
    assert!(out.contains("your code panicked at src/lib.rs:2"), "{out}");
}

#[test]
fn a_broken_manifest_stops_neither_the_runner_nor_its_reset() {
    let fixture = Fixture::new();
    fixture.commit();
    let manifest = "exercises/junior/j01-doubler/Cargo.toml";
    let good = fixture.read(manifest);
    fixture.write(
        manifest,
        &format!("{good}\n[dependencies]\nno-such-crate-here = {{ path = \"nowhere\" }}\n"),
    );
    fixture.xtask(&["list"]).assert().success();
    fixture.xtask(&["hint", "J02"]).assert().success();
    // The other exercise cannot build either (one workspace), but the learner is told why.
    let (code, out, err) = check(&fixture);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("cargo said"), "cargo's own reason: {out}");
    assert!(out.contains("nowhere"), "{out}");
    fixture.write("exercises/junior/j01-doubler/tests/mine.rs", "");
    fixture.xtask(&["reset", "J01"]).assert().success();
    assert_eq!(fixture.read(manifest), good);
    assert!(
        !fixture
            .path("exercises/junior/j01-doubler/tests/mine.rs")
            .exists(),
        "reset removes files the learner added"
    );
}

#[test]
fn a_broken_exercise_toml_falls_back_to_the_committed_one() {
    let fixture = Fixture::new();
    fixture.commit();
    fixture.write("solutions/junior/j01-doubler/exercise.toml", "id = \"J01\n");
    let output = fixture.xtask(&["list"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("does not parse"));
    fixture.xtask(&["reset", "J01"]).assert().success();
    fixture.xtask(&["list"]).assert().success();
}

#[test]
fn windows_line_endings_and_editor_files_are_not_edits() {
    let fixture = Fixture::new();
    let checks = "exercises/junior/j01-doubler/tests/checks.rs";
    let crlf = fixture.read(checks).replace('\n', "\r\n");
    fixture.write(checks, &crlf);
    fixture.write("exercises/junior/j01-doubler/tests/.checks.rs.swp", "x");
    fixture.write("exercises/junior/j01-doubler/tests/checks.rs~", "x");
    fixture.write("exercises/junior/j01-doubler/tests/.DS_Store", "x");
    let (code, out, err) = check(&fixture);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(!err.contains("modified"), "{err}");
    assert!(out.contains("doubles_three"), "the checks ran: {out}");
}

#[test]
fn progress_that_is_not_utf8_is_reported_not_reset() {
    let fixture = Fixture::new();
    fs::create_dir_all(fixture.path(".workshop")).unwrap();
    fs::write(fixture.path(".workshop/progress.toml"), [0xff, 0xfe, 0x00]).unwrap();
    let output = fixture.xtask(&[]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("UTF-8"), "{}", stderr(&output));
    assert_eq!(
        fs::read(fixture.path(".workshop/progress.toml")).unwrap(),
        [0xff, 0xfe, 0x00],
        "left as it was"
    );
}

#[test]
fn hints_show_even_where_progress_cannot_be_written() {
    let fixture = Fixture::new();
    // A file where the progress directory should be: nothing can be saved (as read-only would,
    // and unlike permissions it holds for root too).
    fs::write(fixture.path(".workshop"), "").unwrap();
    let output = fixture.xtask(&["hint", "J01"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("Try the checks with 3."));
    assert!(stderr(&output).contains("not saved"));
}
