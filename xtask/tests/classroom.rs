//! The classroom autograding workflow (`.github/classroom/classroom.yml`) cannot rot: every
//! command it runs goes through `scripts/classroom.sh`, the commands are run here, exactly as
//! written, against the fixture workshop (as GitHub's command grader runs them, with only PATH
//! and HOME), and the workflow grades exactly the workshop's exercises.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fixture, copy, stdout};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn workflow() -> String {
    fs::read_to_string(repo().join(".github/classroom/classroom.yml")).unwrap()
}

/// A step of the workflow: its lines, from `- name:` to the next step.
struct Step {
    text: String,
}

impl Step {
    fn field(&self, key: &str) -> Option<String> {
        self.text.lines().find_map(|l| {
            let l = l.trim_start().trim_start_matches("- ");
            l.strip_prefix(&format!("{key}: "))
                .map(|v| v.trim().to_owned())
        })
    }
}

fn steps(workflow: &str) -> Vec<Step> {
    workflow
        .split("\n      - ")
        .skip(1)
        .map(|s| Step { text: s.to_owned() })
        .collect()
}

/// Every command the workflow runs: its `run:` steps and its graders' `command:`s.
fn commands(workflow: &str) -> Vec<String> {
    steps(workflow)
        .iter()
        .flat_map(|s| [s.field("run"), s.field("command")])
        .flatten()
        .collect()
}

/// The workshop's exercises in course order, as (id, title).
fn exercises() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for level in ["junior", "middle", "senior", "professional", "staff"] {
        let mut dirs: Vec<PathBuf> = fs::read_dir(repo().join("solutions").join(level))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("exercise.toml"))
            .filter(|p| p.is_file())
            .collect();
        dirs.sort();
        for meta in dirs {
            let value: toml::Value = toml::from_str(&fs::read_to_string(meta).unwrap()).unwrap();
            found.push((
                value["id"].as_str().unwrap().to_owned(),
                value["title"].as_str().unwrap().to_owned(),
            ));
        }
    }
    found
}

#[test]
fn every_command_of_the_workflow_goes_through_the_script() {
    let workflow = workflow();
    let commands = commands(&workflow);
    assert!(commands.len() > 1, "{commands:?}");
    for command in &commands {
        assert!(
            command.starts_with("bash scripts/classroom.sh "),
            "`{command}` bypasses scripts/classroom.sh, so no test runs it"
        );
    }
}

#[test]
fn the_workflow_grades_every_exercise_once() {
    let workflow = workflow();
    let graded: Vec<Step> = steps(&workflow)
        .into_iter()
        .filter(|s| {
            s.field("uses").as_deref() == Some("classroom-resources/autograding-command-grader@v1")
        })
        .collect();
    let expected = exercises();
    let snippet = |id: &str, title: &str| {
        format!(
            "      - name: {id} {title}\n        id: {lower}\n        uses: classroom-resources/autograding-command-grader@v1\n        with:\n          test-name: {id} {title}\n          command: bash scripts/classroom.sh verdict {id}\n          timeout: 5\n          max-score: 10\n",
            lower = id.to_lowercase()
        )
    };
    let found: Vec<(Option<String>, Option<String>, Option<String>)> = graded
        .iter()
        .map(|s| (s.field("id"), s.field("test-name"), s.field("command")))
        .collect();
    let wanted: Vec<(Option<String>, Option<String>, Option<String>)> = expected
        .iter()
        .map(|(id, title)| {
            (
                Some(id.to_lowercase()),
                Some(format!("{id} {title}")),
                Some(format!("bash scripts/classroom.sh verdict {id}")),
            )
        })
        .collect();
    assert_eq!(
        found,
        wanted,
        ".github/classroom/classroom.yml must have one graded step per exercise, in course order; each looks like\n{}",
        expected
            .iter()
            .map(|(id, title)| snippet(id, title))
            .collect::<String>()
    );
    let runners: Vec<String> = expected.iter().map(|(id, _)| id.to_lowercase()).collect();
    assert!(
        workflow.contains(&format!("runners: {}\n", runners.join(","))),
        "the reporter's `runners:` must list {}",
        runners.join(",")
    );
    for id in &runners {
        let env = format!(
            "{}_RESULTS: \"${{{{steps.{id}.outputs.result}}}}\"",
            id.to_uppercase()
        );
        assert!(workflow.contains(&env), "the reporter needs `{env}`");
    }
}

/// Runs one of the workflow's commands in the fixture, with the runner under test.
fn run(fixture: &Fixture, command: &str, grader: bool) -> (Option<i32>, String) {
    let mut shell = Command::new("bash");
    shell
        .arg("-c")
        .arg(command)
        .current_dir(&fixture.root)
        .env("XTASK", assert_cmd::cargo::cargo_bin("xtask"));
    if grader {
        // classroom-resources/autograding-command-grader runs commands with only these.
        shell
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("XTASK", assert_cmd::cargo::cargo_bin("xtask"));
    } else {
        shell
            .env("CARGO_TARGET_DIR", fixture.path("target"))
            .env("XTASK_BINARY_TIMEOUT_SECS", "3")
            .env("GITHUB_REPOSITORY", "cohort-2025/workshop-ada")
            .env_remove("LEARNER")
            .env_remove("WORKSHOP_ROOT");
    }
    let output = shell.output().unwrap();
    let text = format!(
        "{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn the_workflow_commands_grade_a_workshop() {
    let fixture = Fixture::new();
    let script = fixture.path("scripts/classroom.sh");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    copy(&repo().join("scripts/classroom.sh"), &script);
    let workflow = workflow();
    let commands = commands(&workflow);
    let grade: Vec<&String> = commands.iter().filter(|c| c.ends_with(" grade")).collect();
    assert_eq!(grade.len(), 1, "one grading run: {commands:?}");
    // The fixture has J01 and J02; the workflow's steps for them are run as they are written.
    let verdict = |id: &str| {
        commands
            .iter()
            .find(|c| c.ends_with(&format!(" verdict {id}")))
            .cloned()
            .unwrap_or_else(|| format!("bash scripts/classroom.sh verdict {id}"))
    };

    let (code, out) = run(&fixture, grade[0], false);
    assert_eq!(
        code,
        Some(0),
        "unsolved exercises are a grade, not an error:\n{out}"
    );
    let report: Value =
        serde_json::from_str(&fixture.read("target/classroom/report.json")).unwrap();
    assert_eq!(
        report["learner"], "workshop-ada",
        "named after the repository"
    );
    assert_eq!(report["exercises"].as_array().unwrap().len(), 2);
    let junit = fixture.read("target/classroom/junit.xml");
    assert!(
        junit.contains("<testsuites name=\"tokio-hyper-workshop\" tests=\"3\" failures=\"2\""),
        "{junit}"
    );

    let (code, out) = run(&fixture, &verdict("J01"), true);
    assert_eq!(code, Some(1), "no points for J01 yet:\n{out}");
    assert!(out.contains("First failure: doubles_three"), "{out}");
    let (code, out) = run(&fixture, &verdict("J02"), true);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the check hung"), "{out}");

    // The learner fixes J01 and pushes: J01 earns its points, J02 still does not.
    copy(
        &fixture.path("solutions/junior/j01-doubler/src/lib.rs"),
        &fixture.path("exercises/junior/j01-doubler/src/lib.rs"),
    );
    let (code, out) = run(&fixture, grade[0], false);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&fixture, &verdict("J01"), true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("J01 · Double it (junior): solved"), "{out}");
    assert_eq!(run(&fixture, &verdict("J02"), true).0, Some(1));
}

#[test]
fn a_verdict_without_a_report_says_what_to_run() {
    let fixture = Fixture::new();
    let script = fixture.path("scripts/classroom.sh");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    copy(&repo().join("scripts/classroom.sh"), &script);
    let (code, out) = run(&fixture, "bash scripts/classroom.sh verdict J01", true);
    assert_eq!(code, Some(2));
    assert!(
        out.contains("run `scripts/classroom.sh grade` first"),
        "{out}"
    );
    let (code, out) = run(&fixture, "bash scripts/classroom.sh", true);
    assert_eq!(code, Some(2));
    assert!(out.contains("usage"), "{out}");
}
