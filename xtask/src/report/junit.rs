//! The report as JUnit XML, the format CI systems (GitLab, Jenkins, most test-report actions)
//! read: one `<testsuite>` per exercise, one `<testcase>` per check. A check that failed is a
//! `<failure>`, one that did not run is `<skipped>`; an exercise whose checks were modified,
//! or that the runner could not check, is one failing (or erroring) test case of its own.

use std::fmt::Write as _;

use super::{CheckReport, CheckVerdict, ExerciseRecord, ExerciseVerdict};

pub fn render(report: &CheckReport) -> String {
    let suites: Vec<Suite> = report.exercises.iter().map(suite).collect();
    let total = |f: fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>();
    let time: u64 = report.exercises.iter().map(|e| e.duration_ms).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"tokio-hyper-workshop\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        total(|s| s.cases.len()),
        total(|s| s.count("failure")),
        total(|s| s.count("error")),
        total(|s| s.count("skipped")),
        seconds(time),
        attr(&report.created)
    );
    for (e, s) in report.exercises.iter().zip(&suites) {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{} {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
            attr(&e.id),
            attr(&e.title),
            s.cases.len(),
            s.count("failure"),
            s.count("error"),
            s.count("skipped"),
            seconds(e.duration_ms),
            attr(&report.created)
        );
        let mut properties = vec![("level", e.level.as_str())];
        if let Some(learner) = &report.learner {
            properties.push(("learner", learner));
        }
        if let Some(commit) = &report.commit {
            properties.push(("commit", commit));
        }
        let _ = writeln!(out, "    <properties>");
        for (name, value) in properties {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                attr(value)
            );
        }
        let _ = writeln!(out, "    </properties>");
        for case in &s.cases {
            out.push_str(&case.xml(&format!("{}.{}", e.level, e.id)));
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

struct Suite {
    cases: Vec<Case>,
}

impl Suite {
    fn count(&self, outcome: &str) -> usize {
        self.cases
            .iter()
            .filter(|c| c.outcome.as_ref().is_some_and(|o| o.element == outcome))
            .count()
    }
}

struct Case {
    name: String,
    outcome: Option<Outcome>,
}

/// `<failure>`, `<error>` or `<skipped>`, with its one-line message and its text.
struct Outcome {
    element: &'static str,
    kind: String,
    message: String,
    text: Option<String>,
}

impl Case {
    fn xml(&self, classname: &str) -> String {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            attr(classname),
            attr(&self.name)
        );
        let Some(o) = &self.outcome else {
            return format!("{open}/>\n");
        };
        let head = format!(
            "<{} type=\"{}\" message=\"{}\"",
            o.element,
            attr(&o.kind),
            attr(&o.message)
        );
        match &o.text {
            Some(text) => format!(
                "{open}>\n      {head}>{}</{}>\n    </testcase>\n",
                body(text),
                o.element
            ),
            None => format!("{open}>\n      {head}/>\n    </testcase>\n"),
        }
    }
}

fn suite(e: &ExerciseRecord) -> Suite {
    let reason = e.reason.clone().unwrap_or_default();
    let cases = match e.verdict {
        ExerciseVerdict::Modified => vec![Case {
            name: "checks are unmodified".to_owned(),
            outcome: Some(Outcome {
                element: "failure",
                kind: "modified".to_owned(),
                message: first_line(&reason),
                text: Some(reason),
            }),
        }],
        ExerciseVerdict::Error => vec![Case {
            name: "the runner checked it".to_owned(),
            outcome: Some(Outcome {
                element: "error",
                kind: "runner".to_owned(),
                message: first_line(&reason),
                text: Some(reason),
            }),
        }],
        ExerciseVerdict::Pass | ExerciseVerdict::Fail => e
            .checks
            .iter()
            .map(|c| Case {
                name: c.name.clone(),
                outcome: match c.verdict {
                    CheckVerdict::Pass => None,
                    CheckVerdict::Fail => Some(Outcome {
                        element: "failure",
                        kind: c
                            .origin
                            .map(|o| format!("{o:?}").to_lowercase())
                            .unwrap_or_default(),
                        message: first_line(c.reason.as_deref().unwrap_or("")),
                        text: c.message.clone(),
                    }),
                    CheckVerdict::NotRun => Some(Outcome {
                        element: "skipped",
                        kind: "not-run".to_owned(),
                        message: c.reason.clone().unwrap_or_default(),
                        text: None,
                    }),
                },
            })
            .collect(),
    };
    Suite { cases }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_owned()
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Text as XML 1.0 allows it: escaped, and without the control characters it forbids (a
/// check's output can carry terminal colour codes).
fn body(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// An attribute value: also quotes, and line breaks as references (a parser would turn a
/// literal one into a space).
fn attr(text: &str) -> String {
    body(text)
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}

#[cfg(test)]
mod tests {
    use super::{attr, body};

    #[test]
    fn text_is_escaped_and_forbidden_characters_dropped() {
        assert_eq!(
            body("a < b && \u{1b}[31mred\u{1b}[0m\n"),
            "a &lt; b &amp;&amp; [31mred[0m\n"
        );
        assert_eq!(attr("say \"hi\"\nbye"), "say &quot;hi&quot;&#10;bye");
    }
}
