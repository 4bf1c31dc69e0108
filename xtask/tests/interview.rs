//! The interview bank and `cargo xtask interview`, against the real book.
//!
//! The bank is parsed with the runner's own parser (`src/interview/bank.rs`, included below),
//! so a question that these tests accept is a question the drill can show.

#[allow(dead_code)]
#[path = "../src/interview/bank.rs"]
mod bank;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

use bank::{LEVELS, Question};

/// The workshop checkout this crate lives in.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workshop")
        .to_path_buf()
}

fn load() -> Vec<Question> {
    bank::load(&root()).unwrap_or_else(|e| panic!("the interview bank does not parse: {e:#}"))
}

/// The runner, pointed at this checkout. A generous timeout turns a hang (a drill waiting for
/// input it will never get) into a failure.
fn xtask(args: &[&str]) -> Command {
    let mut command = Command::cargo_bin("xtask").unwrap();
    command
        .args(args)
        .env("WORKSHOP_ROOT", root())
        .timeout(Duration::from_secs(60));
    command
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

#[test]
fn the_bank_parses_and_every_question_has_every_part() {
    let questions = load();
    assert!(
        questions.len() >= 50,
        "the bank must hold at least 50 questions, it holds {}",
        questions.len()
    );
    for q in &questions {
        let at = format!("{}:{} ({})", q.file.display(), q.line, q.id);
        assert!(!q.title.trim().is_empty(), "{at}: empty title");
        assert!(
            LEVELS.contains(&q.level.as_str()),
            "{at}: level {}",
            q.level
        );
        assert!(
            !q.teaches.is_empty(),
            "{at}: links to nothing that teaches it"
        );
        assert!(
            !q.core_fact.key.is_empty() && !q.core_fact.text.is_empty(),
            "{at}: no core fact"
        );
        assert!(!q.question.trim().is_empty(), "{at}: empty question");
        assert!(
            !q.model_answer.trim().is_empty(),
            "{at}: empty model answer"
        );
        assert!(!q.wrong_answers.is_empty(), "{at}: no wrong answers");
        for wrong in &q.wrong_answers {
            assert!(
                !wrong.answer.trim().is_empty() && !wrong.why.trim().is_empty(),
                "{at}: a wrong answer without its reason"
            );
        }
        for tier in bank::Tier::ALL {
            assert!(
                q.follow_ups.iter().any(|f| f.tier == tier),
                "{at}: no {} follow-up",
                tier.label()
            );
        }
    }
}

/// What `verify` checks across questions: no fact asked more than twice, five facts a level.
#[test]
fn core_facts_are_spread_and_every_cited_test_exists() {
    let questions = load();
    let problems: Vec<String> = bank::check(&questions)
        .into_iter()
        .chain(bank::evidence_problems(&root(), &questions))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn ids_are_unique_and_every_seed_and_rust_question_is_present() {
    let questions = load();
    let mut ids = BTreeSet::new();
    for q in &questions {
        assert!(ids.insert(q.id.clone()), "{} appears twice", q.id);
    }
    let expected: Vec<String> = (1..=33)
        .map(|n| format!("Q{n}"))
        .chain((1..=17).map(|n| format!("R{n}")))
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(missing.is_empty(), "missing from the bank: {missing:?}");
}

/// `Q1-Q7, R2` as the ids it names.
fn expand_ids(list: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for part in list.split(", ") {
        match part.split_once('-') {
            Some((from, to)) => {
                let prefix = &from[..1];
                let from: u32 = from[1..].parse().unwrap();
                let to: u32 = to[1..].parse().unwrap();
                ids.extend((from..=to).map(|n| format!("{prefix}{n}")));
            }
            None => {
                ids.insert(part.trim().to_owned());
            }
        }
    }
    ids
}

/// The bank's introduction says how many questions there are, and lists each page's ids: both
/// must be what the pages hold.
#[test]
fn the_banks_introduction_counts_and_lists_the_questions_it_has() {
    let questions = load();
    let index = fs::read_to_string(root().join(bank::BANK_DIR).join("index.md")).unwrap();
    let words = [
        "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
    ];
    let tens = [
        "", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety",
    ];
    let n = questions.len();
    let said = if n <= 10 {
        words[n].to_owned()
    } else if n.is_multiple_of(10) {
        tens[n / 10].to_owned()
    } else {
        format!("{}-{}", tens[n / 10], words[n % 10].to_lowercase())
    };
    assert!(
        index.contains(&format!("\n{said} questions")),
        "the introduction must say \"{said} questions\""
    );
    for level in LEVELS {
        let page = format!("({level}.md) | ");
        let row = index
            .lines()
            .find(|line| line.contains(&page))
            .unwrap_or_else(|| panic!("no row for {level}.md in the table"));
        let listed = row.split(" | ").nth(1).unwrap();
        let held: BTreeSet<String> = questions
            .iter()
            .filter(|q| q.level == level)
            .map(|q| q.id.clone())
            .collect();
        assert_eq!(expand_ids(listed), held, "the {level} row of the table");
    }
}

#[test]
fn seed_questions_sit_at_the_level_the_curriculum_gives_them() {
    let level_of = |n: u32| match n {
        1..=7 => "junior",
        8..=15 => "middle",
        16..=23 => "senior",
        _ => "staff",
    };
    for q in load() {
        if let Some(n) = q.id.strip_prefix('Q') {
            let n: u32 = n.parse().unwrap();
            assert_eq!(q.level, level_of(n), "{} is on the wrong page", q.id);
        }
    }
}

/// Every relative link of the markdown files in `dir` (relative to the root) leads to a file
/// under `book/src`, and an `#anchor` to a heading of that file.
fn broken_links(dir: &str) -> Vec<String> {
    let root = root();
    let mut pages: Vec<PathBuf> = fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("listing {dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| path.strip_prefix(&root).unwrap().to_path_buf())
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "no pages in {dir}");
    let mut broken = Vec::new();
    for page in pages {
        let text = fs::read_to_string(root.join(&page)).unwrap();
        for link in bank::links(&text) {
            if bank::is_external(&link.target) {
                continue;
            }
            let (file, anchor) = bank::resolve(&page, &link.target);
            let at = format!("{}: [{}]({})", page.display(), link.text, link.target);
            if !file.starts_with("book/src") || !root.join(&file).is_file() {
                broken.push(format!("{at}: no file {}", file.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let target = fs::read_to_string(root.join(&file)).unwrap();
                if !bank::heading_ids(&target).contains(&anchor) {
                    broken.push(format!("{at}: no heading #{anchor} in {}", file.display()));
                }
            }
        }
    }
    broken
}

#[test]
fn every_link_in_the_bank_leads_to_an_existing_page_and_heading() {
    let broken = broken_links(bank::BANK_DIR);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_link_in_the_instructor_guide_leads_to_an_existing_page_and_heading() {
    let broken = broken_links("book/src/instructor");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The session plans quote exercise durations as `J08 ... (20 min)`: they must agree with the
/// exercises' `exercise.toml` (beside each solution), which is where durations are decided.
#[test]
fn exercise_minutes_in_the_instructor_guide_match_exercise_toml() {
    let root = root();
    let minutes = exercise_minutes();
    let mut wrong = Vec::new();
    for page in SESSION_PAGES.iter().chain(&["schedules.md"]) {
        let text = fs::read_to_string(root.join("book/src/instructor").join(page)).unwrap();
        for (n, line) in text.lines().enumerate() {
            for (id, quoted) in quoted_minutes(line) {
                match minutes.get(&id) {
                    Some(&real) if i64::from(real) != quoted => wrong.push(format!(
                        "{page}:{}: {id} is quoted at {quoted} min, its exercise.toml says {real}",
                        n + 1
                    )),
                    // An exercise without its exercise.toml yet is checked once it has one.
                    _ => {}
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `(id, minutes)` for every `(NN min)` on a line, paired with the last exercise id (`J05`)
/// written before it on that line.
fn quoted_minutes(line: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut last_id: Option<String> = None;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if LEVEL_LETTERS.contains(&bytes[i])
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_digit()
            && bytes[i + 2].is_ascii_digit()
        {
            last_id = Some(line[i..i + 3].to_owned());
            i += 3;
            continue;
        }
        if bytes[i] == b'(' {
            let rest = &line[i + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty()
                && rest[digits.len()..].starts_with(" min)")
                && let Some(id) = &last_id
            {
                out.push((id.clone(), digits.parse().unwrap()));
            }
        }
        i += 1;
    }
    out
}

#[test]
fn the_senior_handout_is_reproducible_and_snapshotted() {
    let args = [
        "interview",
        "--level",
        "senior",
        "--count",
        "5",
        "--seed",
        "7",
        "--handout",
    ];
    let first = xtask(&args).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    let second = xtask(&args).output().unwrap();
    assert_eq!(
        stdout(&first),
        stdout(&second),
        "the same seed must give the same handout"
    );
    insta::assert_snapshot!("senior_handout_seed_7", stdout(&first));
}

/// The professional level has a page of its own: `--level professional` draws from it, a draw
/// of five asks five facts, and its handout is snapshotted like the senior one.
#[test]
fn the_professional_level_draws_five_facts_from_its_own_page() {
    let args = [
        "interview",
        "--level",
        "professional",
        "--count",
        "5",
        "--seed",
        "7",
        "--handout",
    ];
    let output = xtask(&args).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.starts_with("Interview handout · professional · 5 of "),
        "{text}"
    );
    let titles = text
        .lines()
        .filter(|line| line.ends_with(" [professional]"))
        .count();
    assert_eq!(titles, 5, "five professional questions:\n{text}");
    let facts: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("CORE FACT ("))
        .collect();
    assert_eq!(facts.len(), 5, "{text}");
    insta::assert_snapshot!("professional_handout_seed_7", text);
}

/// The staff level's draw: five facts from its own page, every question with its three tiers of
/// follow-up, snapshotted like the senior and professional handouts.
#[test]
fn the_staff_handout_is_reproducible_and_snapshotted() {
    let args = [
        "interview",
        "--level",
        "staff",
        "--count",
        "5",
        "--seed",
        "7",
        "--handout",
    ];
    let output = xtask(&args).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.starts_with("Interview handout · staff · 5 of "),
        "{text}"
    );
    let titles = text
        .lines()
        .filter(|line| line.ends_with(" [staff]"))
        .count();
    assert_eq!(titles, 5, "five staff questions:\n{text}");
    let again = xtask(&args).output().unwrap();
    assert_eq!(
        stdout(&again),
        text,
        "the same seed must give the same handout"
    );
    insta::assert_snapshot!("staff_handout_seed_7", text);
}

#[test]
fn without_a_terminal_the_drill_prints_the_handout_and_exits() {
    // stdin is a pipe (never a terminal): the drill must not wait for an answer.
    let output = xtask(&["interview", "--level", "junior", "--count", "2"])
        .write_stdin("y\ny\n")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.starts_with("Interview handout · junior · 2 of "),
        "{text}"
    );
    assert_eq!(text.matches("MODEL ANSWER").count(), 2, "{text}");
    assert!(text.contains("WRONG ANSWERS") && text.contains("FOLLOW-UPS"));
    assert!(
        !text.contains("Known?"),
        "no prompt without a terminal:\n{text}"
    );
}

#[test]
fn without_a_seed_the_handout_says_how_to_get_it_again() {
    let output = xtask(&["interview", "--level", "staff", "--count", "1", "--handout"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    let again = text
        .lines()
        .nth(1)
        .and_then(|line| line.strip_prefix("Again: "))
        .expect("a line with the command to run again");
    let args: Vec<&str> = again.split_whitespace().skip(2).collect();
    let replay = xtask(&args).output().unwrap();
    assert_eq!(
        stdout(&replay),
        text,
        "`{again}` must reproduce the handout"
    );
}

#[test]
fn an_unknown_level_is_refused_with_exit_code_2() {
    let output = xtask(&["interview", "--level", "principal", "--handout"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("unknown level `principal`")
            && error.contains("junior, middle, senior, professional, staff"),
        "{error}"
    );
}

#[test]
fn a_count_of_zero_is_refused_with_exit_code_2() {
    let output = xtask(&["interview", "--count", "0", "--handout"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--count must be at least 1"));
}

/// The Done-when of the bank's second edition: a staff draw of five shows five core facts, each
/// question with follow-ups for the three tiers.
#[test]
fn a_staff_draw_of_five_asks_five_different_facts_with_tiered_follow_ups() {
    let output = xtask(&[
        "interview",
        "--level",
        "staff",
        "--count",
        "5",
        "--seed",
        "3",
    ])
    .output()
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    let facts: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("CORE FACT ("))
        .map(|rest| rest.trim_end_matches(')'))
        .collect();
    assert_eq!(facts.len(), 5, "{text}");
    for tier in ["Middle", "Senior", "Staff"] {
        let lines = text
            .lines()
            .filter(|line| line.starts_with(&format!("  - {tier}: ")))
            .count();
        assert!(lines >= 5, "{tier} follow-ups: {lines}\n{text}");
    }
}

/// The pages an instructor reads, with their paths from the root.
fn guide_pages() -> Vec<(String, String)> {
    [
        "book/src/instructor/index.md",
        "book/src/instructor/sessions.md",
        "book/src/instructor/sessions-professional.md",
        "book/src/instructor/sessions-staff.md",
        "book/src/instructor/interview-sessions.md",
        "book/src/instructor/schedules.md",
        "book/src/interview/index.md",
    ]
    .iter()
    .map(|page| {
        let text = fs::read_to_string(root().join(page)).unwrap();
        ((*page).to_owned(), text)
    })
    .collect()
}

/// A plan must never offer a level the drill refuses: every `--level` is one of the bank's
/// levels, or a `<level>` placeholder next to the list of them.
#[test]
fn every_level_the_guides_offer_to_the_drill_exists() {
    let mut wrong = Vec::new();
    for (page, text) in guide_pages() {
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            for (at, _) in line.match_indices("--level ") {
                let value: String = line[at + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '<' || *c == '>')
                    .collect();
                let near = format!("{line} {}", lines.get(n + 1).unwrap_or(&""));
                let ok = if value == "<level>" {
                    near.contains("junior, middle, senior, professional or staff")
                } else {
                    LEVELS.contains(&value.as_str())
                };
                if !ok {
                    wrong.push(format!("{page}:{}: --level {value}", n + 1));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "levels the drill would refuse, or a placeholder without the list: {wrong:?}"
    );
}

/// The pages that hold session plans, hands-on and interview, in the guide's folder.
const SESSION_PAGES: [&str; 4] = [
    "sessions.md",
    "sessions-professional.md",
    "sessions-staff.md",
    "interview-sessions.md",
];

/// `a-b` minutes of a session plan's row.
fn slot(cell: &str) -> Option<(u32, u32)> {
    let (from, to) = cell.trim().split_once('-')?;
    Some((from.parse().ok()?, to.parse().ok()?))
}

/// The first letter of an exercise id at each level: junior, middle, senior, professional, staff.
const LEVEL_LETTERS: &[u8] = b"JMSPX";

/// The exercises' minutes, from their `exercise.toml` (beside each solution), at every level.
fn exercise_minutes() -> std::collections::BTreeMap<String, u32> {
    let mut minutes = std::collections::BTreeMap::new();
    for level in fs::read_dir(root().join("solutions")).unwrap() {
        let level = level.unwrap().path();
        if !level.is_dir() {
            continue;
        }
        for entry in fs::read_dir(level).unwrap() {
            let path = entry.unwrap().path().join("exercise.toml");
            if let Ok(text) = fs::read_to_string(&path) {
                let value: toml::Table = toml::from_str(&text).unwrap();
                minutes.insert(
                    value["id"].as_str().unwrap().to_owned(),
                    value["minutes"].as_integer().unwrap() as u32,
                );
            }
        }
    }
    minutes
}

/// Exercise ids (`J05`, `M11`, `S03`) written on a line.
fn exercise_ids(line: &str) -> Vec<String> {
    let bytes = line.as_bytes();
    let mut ids: Vec<String> = (0..bytes.len().saturating_sub(2))
        .filter(|&i| {
            LEVEL_LETTERS.contains(&bytes[i])
                && bytes[i + 1].is_ascii_digit()
                && bytes[i + 2].is_ascii_digit()
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
        })
        .map(|i| line[i..i + 3].to_owned())
        .collect();
    ids.dedup();
    ids
}

/// The timing rules of the instructor guide, applied to every row of every session plan: the
/// rows of a plan follow each other from 0 to 90, pairs get an exercise's minutes plus five
/// (the hint rule), debriefs five minutes an exercise (three for homework), interview
/// questions eight minutes in pairs, four aloud, twenty-five as a design exercise, and a design
/// review thirty minutes.
#[test]
fn the_session_plans_keep_the_guides_timing_rules() {
    let minutes = exercise_minutes();
    let mut wrong = Vec::new();
    let mut plans = 0;
    let mut end_of_previous: Option<u32> = None;
    let pages = SESSION_PAGES.map(|page| {
        let text = fs::read_to_string(root().join("book/src/instructor").join(page)).unwrap();
        (page, text)
    });
    // A blank line ends every page, so a plan never runs from one page into the next.
    let lines = pages.iter().flat_map(|(page, text)| {
        text.lines()
            .chain([""])
            .enumerate()
            .map(move |(n, l)| (page, n, l))
    });
    for (page, n, line) in lines {
        let at = format!("{page}:{}", n + 1);
        let cells: Vec<&str> = line.split(" | ").collect();
        let Some((from, to)) = line
            .strip_prefix("| ")
            .and_then(|rest| slot(rest.split(" | ").next().unwrap_or_default()))
        else {
            if let Some(end) = end_of_previous.take()
                && end != 90
            {
                wrong.push(format!("{at}: the plan above ends at {end}, not 90"));
            }
            continue;
        };
        match end_of_previous {
            None if from != 0 => wrong.push(format!("{at}: a plan starts at {from}, not 0")),
            None => plans += 1,
            Some(end) if end != from => wrong.push(format!(
                "{at}: starts at {from}, the row before ends at {end}"
            )),
            _ => {}
        }
        end_of_previous = Some(to);
        let length = to - from;
        let segment = cells.get(1).copied().unwrap_or_default();
        let questions = line.matches("](../interview/").count() as u32;
        let ids = exercise_ids(line);
        let exercise_minutes: u32 = ids.iter().filter_map(|id| minutes.get(id)).sum();
        let needed = if segment.starts_with("Pairs fix") {
            exercise_minutes + 5 * ids.len() as u32
        } else if segment.starts_with("Live-fix") {
            exercise_minutes
        } else if segment.starts_with("Debrief") {
            let each = if segment.contains("homework") { 3 } else { 5 };
            each * ids.len() as u32
        } else if segment.contains("in pairs") {
            8 * questions
        } else if segment.contains("aloud") {
            4 * questions
        } else if segment.starts_with("Design exercise") {
            25 * questions
        } else if segment.starts_with("Design review") {
            30
        } else {
            0
        };
        if length < needed {
            wrong.push(format!(
                "{at}: {length} min for `{segment}`, the rules need {needed}"
            ));
        }
        if segment.starts_with("Live") && !line.contains("(live-segments.md#live-") {
            wrong.push(format!(
                "{at}: a live segment links its listing and answer key"
            ));
        }
    }
    assert!(plans >= 16, "found {plans} plans");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every exercise a plan or a schedule uses has a debrief on a debriefs page, and so does
/// every exercise of every level, the staff level's capstone included.
#[test]
fn every_exercise_used_has_a_debrief() {
    let sessions: String = SESSION_PAGES
        .iter()
        .map(|page| fs::read_to_string(root().join("book/src/instructor").join(page)).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let schedules = fs::read_to_string(root().join("book/src/instructor/schedules.md")).unwrap();
    let notes: String = [
        "debriefs.md",
        "debriefs-senior.md",
        "debriefs-professional.md",
        "debriefs-staff.md",
    ]
    .iter()
    .map(|page| fs::read_to_string(root().join("book/src/instructor").join(page)).unwrap())
    .collect();
    let debriefs: BTreeSet<String> = notes
        .lines()
        .filter_map(|line| line.strip_prefix("## Debrief "))
        .map(|rest| rest[..3].to_owned())
        .collect();
    let used: BTreeSet<String> = sessions
        .lines()
        .chain(schedules.lines())
        .flat_map(exercise_ids)
        .collect();
    let missing: Vec<&String> = used.difference(&debriefs).collect();
    assert!(missing.is_empty(), "no debrief for {missing:?}");
    let taught: Vec<String> = exercise_minutes()
        .into_keys()
        .filter(|id| LEVEL_LETTERS.contains(&id.as_bytes()[0]))
        .filter(|id| !debriefs.contains(id))
        .collect();
    assert!(taught.is_empty(), "no debrief for {taught:?}");
    let expected = (1..=8)
        .map(|n| format!("P{n:02}"))
        .chain((1..=5).map(|n| format!("X{n:02}")));
    for id in expected {
        assert!(debriefs.contains(&id), "no debrief for {id}");
    }
}

/// Every question a session plan asks (a link into the bank on a row of the plan) has a row in
/// a table of that page saying what a strong and a weak answer sound like.
#[test]
fn every_question_a_plan_asks_has_its_strong_and_weak_answer() {
    let mut missing = Vec::new();
    for page in SESSION_PAGES {
        let text = fs::read_to_string(root().join("book/src/instructor").join(page)).unwrap();
        let mut asked = BTreeSet::new();
        let mut described = BTreeSet::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("| ") else {
                continue;
            };
            let first = rest.split(" | ").next().unwrap_or_default();
            if slot(first).is_some() {
                for link in bank::links(line) {
                    if let Some((_, anchor)) = link.target.split_once("../interview/")
                        && let Some((_, id)) = anchor.split_once('#')
                    {
                        asked.insert(id.to_owned());
                    }
                }
            } else if let Some(link) = bank::links(first).first()
                && let Some((_, id)) = link.target.split_once('#')
                && link.target.starts_with("../interview/")
            {
                described.insert(id.to_owned());
            }
        }
        missing.extend(
            asked
                .difference(&described)
                .map(|id| format!("{page}: #{id} is asked, with no strong and weak answer")),
        );
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The staff level is written: no question still names staff material as planned, and the
/// staff page links the staff chapters and exercises that teach its questions.
#[test]
fn the_staff_material_is_linked_not_planned() {
    let questions = load();
    for q in &questions {
        if let Some(planned) = &q.planned {
            assert!(
                !planned.contains("staff level") && !planned.contains("X0"),
                "{} ({}) still plans staff material: {planned}",
                q.id,
                q.file.display()
            );
        }
    }
    let staff: Vec<&Question> = questions.iter().filter(|q| q.level == "staff").collect();
    for page in [
        "shutdown-design.md",
        "overload-policy.md",
        "failure-isolation.md",
        "cancellation-contract.md",
        "deadlines-and-retries.md",
        "service-design.md",
    ] {
        let target = format!("../staff/{page}");
        assert!(
            staff
                .iter()
                .any(|q| q.teaches.iter().any(|link| link.target == target)),
            "no staff question links {target}"
        );
    }
    for exercise in 1..=5 {
        let prefix = format!("../staff/exercises/x{exercise:02}-");
        assert!(
            questions.iter().any(|q| q
                .teaches
                .iter()
                .any(|link| link.target.starts_with(&prefix))),
            "no question links X{exercise:02}"
        );
    }
}

/// The answer keys of the live segments quote code from the file they name ("from `path`:"):
/// every line quoted is still a line of that file, so a key cannot drift from the solution it
/// describes.
#[test]
fn answer_keys_quote_their_files() {
    let text = fs::read_to_string(root().join("book/src/instructor/live-segments.md")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = 0;
    let mut wrong = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```rust" {
            i += 1;
            continue;
        }
        let mut paragraph: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .skip_while(|l| l.trim().is_empty())
            .take_while(|l| !l.trim().is_empty())
            .copied()
            .collect();
        paragraph.reverse();
        let before = paragraph.join(" ");
        let file = before
            .rsplit_once("from `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(path, _)| path.to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "live-segments.md:{}: an answer key says which file it quotes",
                    i + 1
                )
            });
        let source = fs::read_to_string(root().join(&file))
            .unwrap_or_else(|_| panic!("live-segments.md:{}: no file {file}", i + 1));
        let source_lines: BTreeSet<&str> = source.lines().map(str::trim).collect();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            let quoted = lines[i].trim();
            if !quoted.is_empty() && !source_lines.contains(quoted) {
                wrong.push(format!(
                    "live-segments.md:{}: `{quoted}` is not in {file}",
                    i + 1
                ));
            }
            i += 1;
        }
        keys += 1;
    }
    assert!(keys >= 4, "found {keys} answer keys");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
