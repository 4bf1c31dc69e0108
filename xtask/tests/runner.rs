//! The runner's own checks, against a tiny fixture workshop built in a temporary directory.
//!
//! The fixture's crates depend on nothing, so building them costs about a second; the runner
//! under test is the real binary, driven like a learner drives it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assert_cmd::Command;

/// A fixture workshop: two exercises, one with a wrong answer, one whose check hangs.
struct Fixture {
    root: PathBuf,
}

const EXERCISE_TOML: &str = r#"id = "J01"
slug = "doubler"
level = "junior"
title = "Double it"
minutes = 5
kinds = ["srv"]
summary = "The doubler squares instead of doubling."
hints = ["Try the checks with 3.", "Doubling is adding a number to itself."]

[[check]]
name = "doubles_three"
kind = "srv"
fails_on_bug = true
means = "3 doubled is 6: the doubler does something else."
hint = 2

[[check]]
name = "doubles_two"
kind = "srv"
fails_on_bug = false
means = "2 doubled is 4."
hint = 1
"#;

const HANG_TOML: &str = r#"id = "J02"
slug = "sleeper"
level = "junior"
title = "Wake up"
minutes = 5
kinds = ["vt"]
summary = "The answer never comes."
hints = ["It waits for nothing.", "Return the answer."]

[[check]]
name = "answers"
kind = "vt"
fails_on_bug = true
means = "The answer never came: something waits forever."
hint = 1
"#;

const CHECKS: &str = r#"#[test]
fn doubles_three() {
    assert_eq!(j01_doubler::double(3), 6, "3 doubled");
}

#[test]
fn doubles_two() {
    assert_eq!(j01_doubler::double(2), 4, "2 doubled");
}
"#;

const HANG_CHECKS: &str = r#"#[test]
fn answers() {
    assert_eq!(j02_sleeper::answer(), 42);
}
"#;

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Fixture {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!(
            "xtask-fixture-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&root);
        let files: &[(&str, &str)] = &[
            (
                "Cargo.toml",
                "[workspace]\nresolver = \"3\"\nmembers = [\"exercises/*/*\", \"solutions/*/*\"]\n",
            ),
            (
                "exercises/junior/j01-doubler/Cargo.toml",
                &package("j01-doubler", ""),
            ),
            ("exercises/junior/j01-doubler/exercise.toml", EXERCISE_TOML),
            ("exercises/junior/j01-doubler/README.md", "Double it.\n"),
            (
                "exercises/junior/j01-doubler/src/lib.rs",
                "pub fn double(x: u32) -> u32 {\n    x * x\n}\n",
            ),
            ("exercises/junior/j01-doubler/tests/checks.rs", CHECKS),
            (
                "solutions/junior/j01-doubler/Cargo.toml",
                &package("j01-doubler-solution", &solution_targets("j01-doubler")),
            ),
            (
                "solutions/junior/j01-doubler/src/lib.rs",
                "pub fn double(x: u32) -> u32 {\n    x + x\n}\n",
            ),
            (
                "solutions/junior/j01-doubler/WHY.md",
                "Doubling is adding a number to itself.\n",
            ),
            (
                "exercises/junior/j02-sleeper/Cargo.toml",
                &package("j02-sleeper", ""),
            ),
            ("exercises/junior/j02-sleeper/exercise.toml", HANG_TOML),
            ("exercises/junior/j02-sleeper/README.md", "Wake up.\n"),
            (
                "exercises/junior/j02-sleeper/src/lib.rs",
                "pub fn answer() -> u32 {\n    loop {\n        std::thread::park();\n    }\n}\n",
            ),
            ("exercises/junior/j02-sleeper/tests/checks.rs", HANG_CHECKS),
            (
                "solutions/junior/j02-sleeper/Cargo.toml",
                &package("j02-sleeper-solution", &solution_targets("j02-sleeper")),
            ),
            (
                "solutions/junior/j02-sleeper/src/lib.rs",
                "pub fn answer() -> u32 {\n    42\n}\n",
            ),
            (
                "solutions/junior/j02-sleeper/WHY.md",
                "Return the answer.\n",
            ),
        ];
        for (path, text) in files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let fixture = Self { root };
        fixture.xtask(&["seal"]).assert().success();
        fixture
    }

    /// The runner, pointed at the fixture, with its own target directory.
    fn xtask(&self, args: &[&str]) -> Command {
        let mut command = Command::cargo_bin("xtask").unwrap();
        command
            .args(args)
            .current_dir(&self.root)
            .env("WORKSHOP_ROOT", &self.root)
            .env("CARGO_TARGET_DIR", self.root.join("target"))
            .env_remove("CARGO_TERM_COLOR")
            .timeout(Duration::from_secs(120));
        command
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn package(name: &str, extra: &str) -> String {
    format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n{extra}")
}

fn solution_targets(dir: &str) -> String {
    format!(
        "\n[lib]\nname = \"{}\"\n\n[[test]]\nname = \"checks\"\npath = \"../../../exercises/junior/{dir}/tests/checks.rs\"\n",
        dir.replace('-', "_")
    )
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap();
}

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
