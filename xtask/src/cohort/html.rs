//! The cohort as one self-contained page: the chart and both tables, with its style inline
//! and no script, so it can be mailed, projected or opened from a USB stick. Everything that
//! comes from a report (a learner's name, a check's name) is escaped: a report is a file a
//! learner made.

use std::fmt::Write as _;

use super::Cohort;

/// Pixels of the chart's bars for all of a cohort.
const BAR: usize = 480;
/// Height of one exercise's row in the chart.
const ROW: usize = 28;
/// Room left of the bars for the exercise's id.
const LABEL: usize = 60;

const STYLE: &str = "
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #1d2430; }
h1 { margin-bottom: .2rem; }
.summary { color: #5a6473; margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #dde2e8; vertical-align: top; }
th { background: #f2f4f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 90%; }
.done { color: #1e7d3a; font-weight: 600; }
svg text { font: 13px system-ui, sans-serif; fill: #1d2430; }
.legend span { display: inline-block; width: .9rem; height: .9rem; margin: 0 .3rem 0 1rem; vertical-align: -.1rem; }
footer { color: #5a6473; font-size: 90%; margin-top: 2rem; }
";

pub fn page(cohort: &Cohort) -> String {
    let mut out = String::new();
    let learners = cohort.learners.len();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Cohort progress: {learners} learner(s)</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    let _ = writeln!(out, "<h1>Cohort progress</h1>");
    let _ = writeln!(
        out,
        "<p class=\"summary\">{learners} learner(s) · {} exercise(s) · {}</p>",
        cohort.exercises.len(),
        span_of_reports(cohort)
    );
    let _ = writeln!(out, "<h2>Progress by exercise</h2>");
    out.push_str(&chart(cohort));
    let _ = writeln!(
        out,
        "<p class=\"legend\"><span style=\"background:#2f9e55\"></span>solved\
         <span style=\"background:#f0a830\"></span>working on it now\
         <span style=\"background:#e3e7ec\"></span>not there yet</p>"
    );

    let _ = writeln!(out, "<h2>By exercise</h2>\n<table id=\"exercises\">");
    let _ = writeln!(
        out,
        "<tr><th>Exercise</th><th>Solved</th><th>Working on it</th><th>Most common failing check</th><th>Median attempts</th></tr>"
    );
    for e in &cohort.exercises {
        let failing = match &e.failing {
            Some((name, count)) => format!("<code>{}</code> ({count})", escape(name)),
            None => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{} {}</td><td class=\"num\">{}/{}</td><td class=\"num\">{}</td><td>{failing}</td><td class=\"num\">{}</td></tr>",
            escape(&e.id),
            escape(&e.title),
            e.solved,
            e.reported,
            e.current,
            e.median_text()
        );
    }
    let _ = writeln!(out, "</table>");

    let _ = writeln!(out, "<h2>By learner</h2>\n<table id=\"learners\">");
    let _ = writeln!(
        out,
        "<tr><th>Learner</th><th>Solved</th><th>At</th><th>Stopped by</th><th>Report</th></tr>"
    );
    for l in &cohort.learners {
        let at = match &l.at {
            Some(id) => escape(id),
            None => "<span class=\"done\">done</span>".to_owned(),
        };
        let stuck = l
            .stuck_on
            .as_deref()
            .map(|s| format!("<code>{}</code>", escape(s)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}/{}</td><td>{at}</td><td>{stuck}</td><td>{}</td></tr>",
            escape(&l.name),
            l.solved,
            l.report.exercises.len(),
            escape(&l.when())
        );
    }
    let _ = writeln!(out, "</table>");
    for note in &cohort.notes {
        let _ = writeln!(out, "<p class=\"summary\">Note: {}</p>", escape(note));
    }
    let _ = writeln!(
        out,
        "<footer>Made by <code>cargo xtask cohort</code> from each learner's newest \
         <code>cargo xtask check --all --format json</code> report.</footer>\n</body>\n</html>"
    );
    out
}

/// A horizontal bar per exercise: solved, then working on it now, over everyone reported.
fn chart(cohort: &Cohort) -> String {
    let most = cohort
        .exercises
        .iter()
        .map(|e| e.reported)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = LABEL + BAR + 200;
    let height = ROW * cohort.exercises.len() + 8;
    let mut out = format!(
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Learners who solved each exercise\">\n"
    );
    for (i, e) in cohort.exercises.iter().enumerate() {
        let y = 4 + i * ROW;
        let scale = |n: usize| n * BAR / most;
        let (all, solved, current) = (scale(e.reported), scale(e.solved), scale(e.current));
        let _ = writeln!(
            out,
            "<g class=\"bar\" data-exercise=\"{id}\" data-solved=\"{}\" data-current=\"{}\" data-learners=\"{}\">\
             <title>{id} {}: {} of {} solved, {} working on it</title>\
             <text x=\"0\" y=\"{}\">{id}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{all}\" height=\"20\" fill=\"#e3e7ec\"/>\
             <rect class=\"solved\" x=\"{LABEL}\" y=\"{y}\" width=\"{solved}\" height=\"20\" fill=\"#2f9e55\"/>\
             <rect class=\"current\" x=\"{}\" y=\"{y}\" width=\"{current}\" height=\"20\" fill=\"#f0a830\"/>\
             <text x=\"{}\" y=\"{}\">{}/{} solved</text></g>",
            e.solved,
            e.current,
            e.reported,
            escape(&e.title),
            e.solved,
            e.reported,
            e.current,
            y + 15,
            LABEL + solved,
            LABEL + all + 8,
            y + 15,
            e.solved,
            e.reported,
            id = escape(&e.id),
        );
    }
    out.push_str("</svg>\n");
    out
}

/// "reports from 2025-06-01 09:00 UTC to 2025-06-02 10:14 UTC"
fn span_of_reports(cohort: &Cohort) -> String {
    let mut times: Vec<String> = cohort.learners.iter().map(|l| l.when()).collect();
    times.sort();
    match (times.first(), times.last()) {
        (Some(first), Some(last)) if first != last => {
            format!("reports from {} to {}", escape(first), escape(last))
        }
        (Some(only), _) => format!("report of {}", escape(only)),
        _ => String::new(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page in a real browser: headless Chromium renders the tables and the chart's bars from
/// the recorded reports of `xtask/tests/fixtures/cohort/`.
#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::{Cohort, page};
    use crate::browser;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cohort")
    }

    #[test]
    fn the_page_renders_its_tables_and_chart_in_a_browser() {
        let cohort = Cohort::load(&[fixtures()]).unwrap();
        let Some(chromium) = browser::chromium() else {
            // On CI a skipped browser test would be a green light that proves nothing.
            assert!(
                std::env::var_os("CI").is_none(),
                "no chromium on CI (.ci/run installs it)"
            );
            eprintln!("cohort page browser test: skipped (no chromium)");
            return;
        };
        // Where a person can look at it, as the book's screenshots are in target/.
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cohort-page");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("index.html"), page(&cohort)).unwrap();
        let base = browser::serve(dir.clone()).unwrap();
        let dom = browser::dump_dom(&chromium, &format!("{base}/index.html")).unwrap();

        assert!(dom.contains("<title>Cohort progress"), "{dom}");
        // One bar per exercise, each with the counts the statistics give.
        for e in &cohort.exercises {
            let bar = format!(
                "data-exercise=\"{}\" data-solved=\"{}\" data-current=\"{}\" data-learners=\"{}\"",
                e.id, e.solved, e.current, e.reported
            );
            assert!(dom.contains(&bar), "no bar `{bar}` in the page");
        }
        assert_eq!(
            dom.matches("<g class=\"bar\"").count(),
            cohort.exercises.len()
        );
        // A header row, then one row per exercise and per learner.
        let rows = |id: &str| {
            let table = dom
                .split(&format!("<table id=\"{id}\">"))
                .nth(1)
                .unwrap_or("");
            table
                .split("</table>")
                .next()
                .unwrap_or("")
                .matches("<tr>")
                .count()
        };
        assert_eq!(rows("exercises"), cohort.exercises.len() + 1);
        assert_eq!(rows("learners"), cohort.learners.len() + 1);
        // A learner's name is text, never markup: the fixture's name has an e-mail in `<>`.
        assert!(dom.contains("erin &lt;erin@example.com&gt;"), "{dom}");
        assert!(!dom.contains("<erin@example.com>"));

        let shot = dir.join("cohort.png");
        browser::screenshot(&chromium, &format!("{base}/index.html"), &shot).unwrap();
        let size = fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "the screenshot {} is blank", shot.display());
    }
}
