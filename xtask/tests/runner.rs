//! The runner's own checks, against a tiny fixture workshop built in a temporary directory.
//!
//! The fixture's crates depend on nothing, so building them costs about a second; the runner
//! under test is the real binary, driven like a learner drives it.

mod common;

use std::fs;

use assert_cmd::Command;

use common::{Fixture, copy, stderr, stdout};

#[test]
fn overview_shows_progress_and_the_next_exercise() {
    let fixture = Fixture::new();
    let output = fixture.xtask(&[]).output().unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn list_shows_every_exercise() {
    let fixture = Fixture::new();
    let output = fixture.xtask(&["list"]).output().unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn failing_check_explains_the_first_failure() {
    let fixture = Fixture::new();
    let output = fixture.xtask(&["check", "J01"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "a failing check exits 1");
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn copying_the_solution_over_makes_the_check_pass_and_restoring_fails_again() {
    let fixture = Fixture::new();
    let exercise = fixture.path("exercises/junior/j01-doubler/src/lib.rs");
    let original = fs::read_to_string(&exercise).unwrap();
    copy(
        &fixture.path("solutions/junior/j01-doubler/src/lib.rs"),
        &exercise,
    );

    let output = fixture.xtask(&["check", "J01"]).output().unwrap();
    assert!(output.status.success(), "{}", stdout(&output));
    insta::assert_snapshot!(stdout(&output));

    // Solved exercises are skipped by the default `check`: the next one is J02.
    let overview = stdout(&fixture.xtask(&[]).output().unwrap());
    assert!(overview.contains("1 of 2 exercises solved"), "{overview}");
    assert!(overview.contains("Next: J02"), "{overview}");

    fs::write(&exercise, original).unwrap();
    fixture.xtask(&["check", "J01"]).assert().code(1);
}

#[test]
fn hints_are_revealed_one_at_a_time() {
    let fixture = Fixture::new();
    let first = stdout(&fixture.xtask(&["hint", "j01"]).output().unwrap());
    assert!(
        first.contains("hint 1 of 2") && !first.contains("adding a number"),
        "{first}"
    );
    let output = fixture.xtask(&["hint", "doubler"]).output().unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn the_hint_a_failure_points_at_can_be_read_directly() {
    let fixture = Fixture::new();
    let output = stdout(&fixture.xtask(&["hint", "J01", "2"]).output().unwrap());
    assert!(output.contains("hint 2 of 2"), "{output}");
    assert!(output.contains("1. Try the checks with 3."), "{output}");
    assert!(
        output.contains("2. Doubling is adding a number to itself."),
        "{output}"
    );
    let out_of_range = fixture.xtask(&["hint", "J01", "3"]).output().unwrap();
    assert_eq!(
        out_of_range.status.code(),
        Some(2),
        "{}",
        stderr(&out_of_range)
    );
}

#[test]
fn unknown_id_names_the_closest_ones() {
    let fixture = Fixture::new();
    let output = fixture.xtask(&["check", "J2"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "bad input exits 2");
    insta::assert_snapshot!(stderr(&output));
}

/// After a first build through cargo, a save is rebuilt by rerunning cargo's rustc commands
/// (xtask/src/replay.rs), and every verdict is still the one cargo's build would give: the
/// fixed code passes, code that does not compile says so, the bug restored fails again. A
/// change outside the exercise (here the workspace's manifest) sends the build back to cargo.
#[test]
fn a_save_is_rebuilt_without_cargo_and_judged_as_a_cargo_build_would_be() {
    let fixture = Fixture::new();
    let exercise = fixture.path("exercises/junior/j01-doubler/src/lib.rs");
    let check = |expected: i32| {
        let output = fixture
            .xtask(&["--verbose", "check", "J01"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(expected), "{}", stdout(&output));
        let out = stdout(&output);
        (out.contains("xtask: rebuilt"), out)
    };
    // The workshop's lockfile is committed; a first build that writes one is not recorded.
    std::process::Command::new(env!("CARGO"))
        .args(["generate-lockfile", "--offline"])
        .current_dir(&fixture.root)
        .status()
        .unwrap();
    let (replayed, _) = check(1);
    assert!(!replayed, "the first build is cargo's");

    let buggy = fs::read_to_string(&exercise).unwrap();
    fs::write(&exercise, buggy.replace("x * x", "x + x")).unwrap();
    let (replayed, out) = check(0);
    assert!(replayed, "{out}");

    fs::write(&exercise, buggy.replace("x * x", "x +")).unwrap();
    let (replayed, out) = check(1);
    assert!(replayed, "{out}");
    assert!(out.contains("does not compile"), "{out}");
    assert!(out.contains("expected expression"), "{out}");

    fs::write(&exercise, &buggy).unwrap();
    let (replayed, out) = check(1);
    assert!(replayed, "{out}");
    assert!(out.contains("3 doubled"), "{out}");

    let manifest = fixture.path("Cargo.toml");
    let mut text = fs::read_to_string(&manifest).unwrap();
    text.push_str("# a comment cargo reads\n");
    fs::write(&manifest, text).unwrap();
    let (replayed, out) = check(1);
    assert!(!replayed, "a changed manifest is cargo's to read: {out}");

    // The build cargo just did was recorded: the next save is replayed again.
    fs::write(&exercise, format!("{buggy}// a comment\n")).unwrap();
    let (replayed, out) = check(1);
    assert!(replayed, "{out}");

    // cargo runs a `build.rs` it finds, with no line in the manifest to say so.
    fs::write(
        fixture.path("exercises/junior/j01-doubler/build.rs"),
        "fn main() {}\n",
    )
    .unwrap();
    let (replayed, out) = check(1);
    assert!(!replayed, "a new build script is cargo's to run: {out}");
}

#[test]
fn edited_checks_are_reported_instead_of_run() {
    let fixture = Fixture::new();
    let checks = fixture.path("exercises/junior/j01-doubler/tests/checks.rs");
    let edited = fs::read_to_string(&checks)
        .unwrap()
        .replace("6, \"3 doubled\"", "9, \"3 doubled\"");
    fs::write(&checks, edited).unwrap();
    let output = fixture.xtask(&["check", "J01"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(stderr(&output));
}

#[test]
fn a_hung_check_fails_with_a_message_instead_of_hanging_the_runner() {
    let fixture = Fixture::new();
    let output = fixture
        .xtask(&["check", "J02"])
        .env("XTASK_BINARY_TIMEOUT_SECS", "3")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn outside_the_workshop_says_so() {
    let dir = std::env::temp_dir().join(format!("xtask-nowhere-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let output = Command::cargo_bin("xtask")
        .unwrap()
        .current_dir(&dir)
        .env_remove("WORKSHOP_ROOT")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not inside the workshop"),
        "{}",
        stderr(&output)
    );
    let _ = fs::remove_dir(&dir);
}
