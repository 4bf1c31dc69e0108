//! The fixture workshop the runner's tests drive: two tiny exercises whose crates depend on
//! nothing, so building them costs about a second.

#![allow(dead_code)] // each test file uses its own part of it

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assert_cmd::Command;

/// A fixture workshop: two exercises, one with a wrong answer, one whose check hangs.
pub struct Fixture {
    pub root: PathBuf,
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
    pub fn new() -> Self {
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
            ("solutions/junior/j01-doubler/exercise.toml", EXERCISE_TOML),
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
            ("solutions/junior/j02-sleeper/exercise.toml", HANG_TOML),
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
    pub fn xtask(&self, args: &[&str]) -> Command {
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

    pub fn path(&self, rel: &str) -> PathBuf {
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

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn copy(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap();
}

impl Fixture {
    /// Makes the fixture a git repository with everything committed, for `reset`.
    pub fn commit(&self) {
        for args in [
            &["init", "-q"][..],
            &["add", "-A"][..],
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "fixture",
            ][..],
        ] {
            let status = std::process::Command::new("git")
                .current_dir(&self.root)
                .args(args)
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        }
    }

    /// Replaces the doubler's code (the learner's edit).
    pub fn write_doubler(&self, code: &str) {
        fs::write(self.path("exercises/junior/j01-doubler/src/lib.rs"), code).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}
