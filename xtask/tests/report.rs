//! The check report (`check --all --format json|junit`, `check --from`), against the fixture
//! workshop: J01 fails one of its two checks, J02 hangs. Its JSON shape is pinned by a
//! snapshot, and the instructor guide's table of fields must name exactly the fields it has.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::{Fixture, stderr, stdout};
use serde_json::Value;

/// The fixture's report, as JSON text, with J02's hang cut short.
fn report(fixture: &Fixture, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["check", "--all", "--format", "json", "--learner", "ada"];
    args.extend(extra);
    let output = fixture
        .xtask(&args)
        .env("XTASK_BINARY_TIMEOUT_SECS", "3")
        .output()
        .unwrap();
    (output.status.code(), stdout(&output))
}

/// The report's own text, with what differs from run to run replaced: when, how long, which
/// commit. Line by line, so that the snapshot pins the fields' order too.
fn stable(json: &str) -> String {
    json.lines()
        .map(|line| {
            let key = line.trim_start().split(':').next().unwrap_or("");
            let indent = &line[..line.len() - line.trim_start().len()];
            let comma = if line.ends_with(',') { "," } else { "" };
            match key {
                "\"created\"" => format!("{indent}\"created\": \"<created>\"{comma}"),
                "\"commit\"" => format!("{indent}\"commit\": \"<commit>\"{comma}"),
                "\"duration_ms\"" => format!("{indent}\"duration_ms\": 0{comma}"),
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_json_report_has_every_exercise_and_check() {
    let fixture = Fixture::new();
    let (code, json) = report(&fixture, &[]);
    assert_eq!(code, Some(1), "an unsolved exercise exits 1:\n{json}");
    let value: Value = serde_json::from_str(&json).expect("the report is JSON");
    assert_eq!(value["version"], 1);
    assert!(value["exercises"][0]["duration_ms"].as_u64().is_some());
    // Every check that ran has its own process's time; `compiles` has none.
    for check in value["exercises"][0]["checks"].as_array().unwrap() {
        let ran = check["verdict"] != "not-run" && check["name"] != "compiles";
        assert_eq!(check["duration_ms"].as_u64().is_some(), ran, "{check}");
    }
    insta::assert_snapshot!(stable(&json));
}

#[test]
fn junit_and_the_recorded_verdict_of_one_exercise_come_from_the_report() {
    let fixture = Fixture::new();
    let (_, json) = report(&fixture, &[]);
    let file = fixture.path("report.json");
    fs::write(&file, &json).unwrap();
    let from = file.to_str().unwrap();

    let junit = fixture
        .xtask(&["check", "--from", from, "--format", "junit"])
        .output()
        .unwrap();
    assert_eq!(junit.status.code(), Some(1), "{}", stderr(&junit));
    let xml = stdout(&junit);
    let created = serde_json::from_str::<Value>(&json).unwrap()["created"]
        .as_str()
        .unwrap()
        .to_owned();
    // Times are the report's own: its creation and its durations.
    let xml = xml.replace(&created, "<created>");
    let xml = regex_free_times(&xml);
    insta::assert_snapshot!("junit", xml);

    let one = fixture
        .xtask(&["check", "j01", "--from", from])
        .output()
        .unwrap();
    assert_eq!(one.status.code(), Some(1), "J01 is not solved");
    insta::assert_snapshot!("from_one_exercise", stdout(&one));
}

/// `time="1.234"` becomes `time="<s>"`.
fn regex_free_times(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(at) = rest.find(" time=\"") {
        let (head, tail) = rest.split_at(at + " time=\"".len());
        out.push_str(head);
        out.push_str("<s>");
        rest = &tail[tail.find('"').unwrap()..];
    }
    out.push_str(rest);
    out
}

#[test]
fn attempts_count_the_learners_checks_not_the_grading_runs() {
    let fixture = Fixture::new();
    let (_, fresh) = report(&fixture, &["--level", "junior"]);
    let fresh: Value = serde_json::from_str(&fresh).unwrap();
    assert_eq!(
        fresh["exercises"][0]["attempts"],
        Value::Null,
        "a checkout that recorded nothing does not know"
    );
    for _ in 0..2 {
        fixture.xtask(&["check", "J01"]).assert().code(1);
    }
    let (_, after) = report(&fixture, &[]);
    let after: Value = serde_json::from_str(&after).unwrap();
    assert_eq!(after["exercises"][0]["attempts"], 2);
    assert_eq!(after["exercises"][1]["attempts"], 0);
    // The two grading runs above counted for nothing.
    let (_, again) = report(&fixture, &[]);
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["exercises"][0]["attempts"], 2);
}

#[test]
fn edited_checks_are_recorded_as_modified_not_run() {
    let fixture = Fixture::new();
    let checks = fixture.read("exercises/junior/j01-doubler/tests/checks.rs");
    fixture.write(
        "exercises/junior/j01-doubler/tests/checks.rs",
        &checks.replace("6, \"3 doubled\"", "9, \"3 doubled\""),
    );
    // The solution passes the original checks; with edited ones it must not count as solved.
    fixture.write(
        "exercises/junior/j01-doubler/src/lib.rs",
        "pub fn double(x: u32) -> u32 {\n    x + x\n}\n",
    );
    let (code, json) = report(&fixture, &[]);
    assert_eq!(code, Some(1));
    let value: Value = serde_json::from_str(&json).unwrap();
    let j01 = &value["exercises"][0];
    assert_eq!(j01["verdict"], "modified");
    assert!(
        j01["reason"].as_str().unwrap().contains("tests/checks.rs"),
        "{j01}"
    );
    assert_eq!(j01["checks"], Value::Array(vec![]));
}

#[test]
fn a_report_is_written_to_a_file_with_a_summary_on_the_terminal() {
    let fixture = Fixture::new();
    fixture.write(
        "exercises/junior/j01-doubler/src/lib.rs",
        "pub fn double(x: u32) -> u32 {\n    x + x\n}\n",
    );
    let out = fixture.path("reports/ada.xml");
    let output = fixture
        .xtask(&[
            "check",
            "J01",
            "--format",
            "junit",
            "--output",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(
        summary.contains("✓ J01  Double it  2/2 checks"),
        "{summary}"
    );
    assert!(summary.contains("1 of 1 exercises solved."), "{summary}");
    let xml = fs::read_to_string(out).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"0\""), "{xml}");
}

#[test]
fn bad_requests_get_a_message_and_exit_2() {
    let fixture = Fixture::new();
    let not_a_report = fixture.path("other.json");
    fs::write(&not_a_report, "{\"name\": \"not a report\"}").unwrap();
    let other = not_a_report.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "--all", "--level", "middle"],
            "no exercise is at level `middle` yet",
        ),
        (&["check", "--level", "guru"], "unknown level `guru`"),
        (&["check", "--format", "json"], "name one, or add --all"),
        (
            &["check", "--all", "--output", "x.txt"],
            "add --format json",
        ),
        (&["check", "J01", "--all", "--format", "json"], "not both"),
        (&["check", "--from", "missing.json"], "reading missing.json"),
        (&["check", "--from", other], "is not a check report"),
        (&["check", "--all", "--from", other], "not --all"),
    ];
    for (args, says) in cases {
        let output = fixture.xtask(args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let (_, json) = report(&fixture, &[]);
    fs::write(fixture.path("report.json"), json).unwrap();
    let output = fixture
        .xtask(&["check", "J09", "--from", "report.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("has no exercise `J09` (it has J01, J02)"),
        "{}",
        stderr(&output)
    );
}

/// The instructor guide documents the format field by field; it must name exactly the fields
/// a report has, at each of its three levels.
#[test]
fn the_guide_documents_every_field_of_the_report() {
    let fixture = Fixture::new();
    let (_, json) = report(&fixture, &[]);
    let value: Value = serde_json::from_str(&json).unwrap();
    let mut actual = BTreeSet::new();
    let keys = |v: &Value, prefix: &str, out: &mut BTreeSet<String>| {
        for key in v.as_object().unwrap().keys() {
            out.insert(format!("{prefix}{key}"));
        }
    };
    keys(&value, "", &mut actual);
    for e in value["exercises"].as_array().unwrap() {
        keys(e, "exercises[].", &mut actual);
        for c in e["checks"].as_array().unwrap() {
            keys(c, "exercises[].checks[].", &mut actual);
        }
    }
    let guide = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src/instructor/cohort.md"),
    )
    .unwrap();
    // Rows of the field table, between its markers: "| `exercises[].verdict` | ... |".
    let table = guide
        .split("<!-- report-fields -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- /report-fields -->").next())
        .expect("the guide marks its table of fields with <!-- report-fields -->");
    let documented: BTreeSet<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(field, _)| field.to_owned()))
        .collect();
    assert_eq!(
        documented, actual,
        "book/src/instructor/cohort.md's field table"
    );
}
