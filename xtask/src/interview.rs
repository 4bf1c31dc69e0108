//! `cargo xtask interview`: the interview bank of the book, as a drill or as a handout.
//!
//! In a terminal it is a drill: one question at a time, Enter reveals the model answer, the
//! wrong answers and the follow-ups, and "known? [y/n/q]" keeps a tally per question in
//! `.workshop/progress.toml`. With `--handout`, or when stdin is not a terminal, it prints the
//! selected questions with everything and exits: it never waits for input it cannot get.
//!
//! The order is a shuffle seeded by `--seed` (or the clock), with a small splitmix64 generator,
//! so that a handout can be reproduced exactly. A draw never repeats a core fact while the pool
//! still has questions about another one: questions whose fact was already drawn come last.

mod bank;

use std::fmt::Write as _;
use std::io::{self, BufRead, IsTerminal, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

use crate::progress::Progress;
use crate::workshop::Workshop;

use self::bank::{LEVELS, Question};

/// The options of `cargo xtask interview`.
pub struct Options {
    pub level: Option<String>,
    pub count: Option<usize>,
    pub seed: Option<u64>,
    pub handout: bool,
}

/// Width the handout's paragraphs and list items are wrapped to (code blocks stay as written).
const WIDTH: usize = 96;

pub fn run(workshop: &Workshop, options: &Options) -> Result<()> {
    let level = match options.level.as_deref() {
        None => None,
        Some(level) => {
            let level = level.trim().to_lowercase();
            if !LEVELS.contains(&level.as_str()) {
                bail!(
                    "unknown level `{level}`; choose one of: {}",
                    LEVELS.join(", ")
                );
            }
            Some(level)
        }
    };
    if options.count == Some(0) {
        bail!("--count must be at least 1");
    }

    let bank = bank::load(&workshop.root)?;
    let pool: Vec<&Question> = bank
        .iter()
        .filter(|q| level.as_ref().is_none_or(|level| q.level == *level))
        .collect();
    if pool.is_empty() {
        bail!("the interview bank has no questions at this level yet");
    }
    let seed = options.seed.unwrap_or_else(clock_seed);
    let mut selection = pool.clone();
    shuffle(&mut selection, seed);
    let mut selection = distinct_facts_first(selection);
    let wanted = options.count.unwrap_or(selection.len());
    selection.truncate(wanted);

    let scope = level.as_deref().unwrap_or("all levels");
    let mut header = format!(
        "{scope} · {} of {} questions · seed {seed}",
        selection.len(),
        pool.len()
    );
    if wanted > pool.len() {
        let _ = write!(header, " (asked for {wanted}: that is all there are)");
    }
    let again = again_command(level.as_deref(), options.count, seed);

    if !options.handout && io::stdin().is_terminal() {
        drill(workshop, &selection, &header, &again)
    } else {
        let mut out = format!("Interview handout · {header}\nAgain: {again} --handout\n");
        for (i, q) in selection.iter().enumerate() {
            out.push('\n');
            out.push_str(&title_block(q, i + 1, selection.len()));
            out.push_str(&question_block(q));
            out.push_str(&answer_block(q));
        }
        // A handout piped into `head` is not an error.
        let mut stdout = io::stdout().lock();
        match stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    }
}

/// The interactive drill: question, Enter, answer, "known? [y/n/q]", tally.
fn drill(workshop: &Workshop, selection: &[&Question], header: &str, again: &str) -> Result<()> {
    let mut progress = Progress::load(&workshop.root)?;
    println!("Interview drill · {header}");
    println!("Same questions again: {again}");
    println!("Answer out loud (or on paper) before you look. q stops.\n");
    let stdin = io::stdin();
    let mut input = stdin.lock().lines();
    let mut read = |prompt: &str| -> Result<Option<String>> {
        print!("{prompt}");
        io::stdout().flush()?;
        Ok(match input.next() {
            Some(line) => Some(line?.trim().to_lowercase()),
            None => None,
        })
    };

    let mut known: Vec<&str> = Vec::new();
    let mut unknown: Vec<&Question> = Vec::new();
    'questions: for (i, q) in selection.iter().enumerate() {
        print!("{}", title_block(q, i + 1, selection.len()));
        print!("{}", question_block(q));
        match read("\n[Enter] show the model answer, [q] stop: ")? {
            None => break,
            Some(answer) if answer == "q" => break,
            Some(_) => {}
        }
        print!("{}", answer_block(q));
        let verdict = loop {
            match read("\nKnown? [y/n/q] ")?.as_deref() {
                None | Some("q") => break 'questions,
                Some("y" | "yes") => break true,
                Some("n" | "no") => break false,
                Some(_) => println!("Type y (you knew it), n (review it) or q (stop)."),
            }
        };
        let tally = progress.interview.entry(q.id.clone()).or_default();
        if verdict {
            tally.known += 1;
            known.push(&q.id);
        } else {
            tally.unknown += 1;
            unknown.push(q);
        }
        progress.save()?;
        println!();
    }

    println!(
        "\nThis session: {} known, {} to review.",
        known.len(),
        unknown.len()
    );
    for q in &unknown {
        println!("  review {} · {}", q.id, q.title);
        for link in &q.teaches {
            println!("    {}", link_line(q, &link.text, &link.target));
        }
    }
    let asked: Vec<&Question> = selection
        .iter()
        .copied()
        .filter(|q| progress.interview.contains_key(&q.id))
        .collect();
    if !asked.is_empty() {
        println!("All sessions, these questions:");
        for q in asked {
            let tally = &progress.interview[&q.id];
            println!(
                "  {:<4} known {} · not yet {}",
                q.id, tally.known, tally.unknown
            );
        }
    }
    Ok(())
}

fn title_block(q: &Question, n: usize, total: usize) -> String {
    let rule = "=".repeat(WIDTH);
    format!(
        "{rule}\n{n}/{total} · {} · {} [{}]\n{rule}\n",
        q.id, q.title, q.level
    )
}

fn question_block(q: &Question) -> String {
    format!("\nQUESTION\n{}", reflow(&plain(q, &q.question), "  "))
}

/// The fact the question is about: shown with the answer, not before (it would give it away).
fn core_fact_block(q: &Question) -> String {
    format!(
        "\nCORE FACT ({})\n{}",
        q.core_fact.key,
        reflow(&plain(q, &q.core_fact.text), "  ")
    )
}

fn answer_block(q: &Question) -> String {
    let mut out = core_fact_block(q);
    out.push_str(&format!(
        "\nMODEL ANSWER\n{}",
        reflow(&plain(q, &q.model_answer), "  ")
    ));
    out.push_str("\nWRONG ANSWERS\n");
    for wrong in &q.wrong_answers {
        out.push_str(&item(&format!(
            "\"{}\" — {}",
            plain(q, &wrong.answer),
            plain(q, &wrong.why)
        )));
    }
    out.push_str("\nFOLLOW-UPS (what each level's answer adds)\n");
    for follow_up in &q.follow_ups {
        out.push_str(&item(&format!(
            "{}: {}",
            follow_up.tier.label(),
            plain(q, &follow_up.text)
        )));
    }
    if !q.checked_by.is_empty() {
        out.push_str("\nCHECKED BY\n");
        for evidence in &q.checked_by {
            out.push_str(&item(&plain(q, evidence)));
        }
    }
    out.push_str("\nTEACHES\n");
    for link in &q.teaches {
        out.push_str(&format!("  - {}\n", link_line(q, &link.text, &link.target)));
    }
    if let Some(planned) = &q.planned {
        out.push_str(&wrap(&format!("planned: {planned}"), "  - ", "    "));
    }
    let _ = writeln!(
        out,
        "  - in the bank: {}#{}",
        q.file.display().to_string().replace('\\', "/"),
        q.anchor()
    );
    out
}

/// `Drop is cancellation: book/src/junior/cancellation.md`.
fn link_line(q: &Question, text: &str, target: &str) -> String {
    format!("{}: {}", unmark(text), book_path(q, target))
}

/// Where a link of the bank leads, as a path from the workshop root (or the URL).
fn book_path(q: &Question, target: &str) -> String {
    if bank::is_external(target) {
        return target.to_owned();
    }
    let (file, anchor) = bank::resolve(&q.file, target);
    let file = file.display().to_string().replace('\\', "/");
    match anchor {
        Some(anchor) => format!("{file}#{anchor}"),
        None => file,
    }
}

/// Markdown made readable in a terminal: links become `text (path)`.
fn plain(q: &Question, text: &str) -> String {
    let mut out = text.to_owned();
    for link in bank::links(text) {
        let written = format!("[{}]({})", link.text, link.target);
        let shown = format!("{} ({})", link.text, book_path(q, &link.target));
        out = out.replace(&written, &shown);
    }
    out
}

/// Emphasis markers dropped from a short label.
fn unmark(text: &str) -> String {
    text.replace("**", "").replace('*', "")
}

/// Markdown text re-wrapped to `WIDTH` under `indent`: paragraphs and list items are joined and
/// wrapped again (the marker removed from the first line leaves it short otherwise), fenced
/// code is kept as it is.
fn reflow(text: &str, indent: &str) -> String {
    let mut out = String::new();
    // The block being gathered: first-line prefix, continuation prefix, words.
    let mut block: Option<(String, String, String)> = None;
    let mut fence = false;
    let flush = |block: &mut Option<(String, String, String)>, out: &mut String| {
        if let Some((first, rest, text)) = block.take() {
            out.push_str(&wrap(&text, &first, &rest));
        }
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if fence || trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            flush(&mut block, &mut out);
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                fence = !fence;
            }
            let _ = writeln!(out, "{indent}{line}");
        } else if trimmed.is_empty() {
            flush(&mut block, &mut out);
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push('\n');
            }
        } else if let Some(marker) = list_marker(line) {
            flush(&mut block, &mut out);
            let first = format!("{indent}{marker}");
            let rest = format!("{indent}{}", " ".repeat(marker.chars().count()));
            block = Some((first, rest, line[marker.len()..].to_owned()));
        } else if let Some((_, _, text)) = block.as_mut() {
            text.push(' ');
            text.push_str(trimmed);
        } else {
            block = Some((indent.to_owned(), indent.to_owned(), trimmed.to_owned()));
        }
    }
    flush(&mut block, &mut out);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// `- ` or `12. ` at the start of a line.
fn list_marker(line: &str) -> Option<&str> {
    if line.starts_with("- ") || line.starts_with("* ") {
        return Some(&line[..2]);
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    (digits > 0 && line[digits..].starts_with(". ")).then(|| &line[..digits + 2])
}

fn item(text: &str) -> String {
    wrap(text, "  - ", "    ")
}

/// Greedy word wrap to `WIDTH` columns.
fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

fn again_command(level: Option<&str>, count: Option<usize>, seed: u64) -> String {
    let mut command = "cargo xtask interview".to_owned();
    if let Some(level) = level {
        let _ = write!(command, " --level {level}");
    }
    if let Some(count) = count {
        let _ = write!(command, " --count {count}");
    }
    let _ = write!(command, " --seed {seed}");
    command
}

/// The shuffled pool reordered so that no core fact comes twice while another fact is still
/// waiting: the first question of each fact, in shuffled order, then the rest, in shuffled
/// order. A draw of `n` therefore repeats a fact only if the pool has fewer than `n` facts.
fn distinct_facts_first(shuffled: Vec<&Question>) -> Vec<&Question> {
    let mut seen = std::collections::BTreeSet::new();
    let (first, repeats): (Vec<&Question>, Vec<&Question>) = shuffled
        .into_iter()
        .partition(|q| seen.insert(q.core_fact.key.clone()));
    first.into_iter().chain(repeats).collect()
}

/// What `verify` checks about the bank beyond what loading it checks: how often each core fact
/// is asked, and that every cited test and source exists. Loading errors come back as one
/// problem.
pub fn problems(root: &std::path::Path) -> Vec<String> {
    match bank::load(root) {
        Err(error) => vec![format!("interview bank: {error:#}")],
        Ok(questions) => bank::check(&questions)
            .into_iter()
            .chain(bank::evidence_problems(root, &questions))
            .map(|problem| format!("interview bank: {problem}"))
            .collect(),
    }
}

/// A question as a page of the book names it: its id, its title and the bank's page it is on.
pub type QuestionRef = (String, String, std::path::PathBuf);

/// For every page of the book that some question says it is taught by (its **Teaches:**
/// links), the questions that say so, paths relative to the root. The book shows them on each
/// exercise's card, so the link goes both ways.
pub fn taught_by(
    root: &std::path::Path,
) -> Result<std::collections::BTreeMap<std::path::PathBuf, Vec<QuestionRef>>> {
    let mut pages = std::collections::BTreeMap::new();
    for q in bank::load(root)? {
        for link in &q.teaches {
            let (page, _) = bank::resolve(&q.file, &link.target);
            pages.entry(page).or_insert_with(Vec::new).push((
                q.id.clone(),
                q.title.clone(),
                q.file.clone(),
            ));
        }
    }
    Ok(pages)
}

/// A seed from the clock, for a different order every run; shown so it can be reused.
fn clock_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Keep it short enough to type: the generator mixes it anyway.
    (nanos % 1_000_000) as u64
}

/// splitmix64: a tiny, good-enough generator for shuffling a few dozen questions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (rejection sampling, so no modulo bias).
    fn below(&mut self, bound: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % bound;
        loop {
            let x = self.next();
            if x < zone {
                return x % bound;
            }
        }
    }
}

/// Fisher-Yates.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first outputs for seed 0 of the reference implementation (Vigna).
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn the_same_seed_gives_the_same_order() {
        let mut a: Vec<u32> = (0..42).collect();
        let mut b = a.clone();
        shuffle(&mut a, 7);
        shuffle(&mut b, 7);
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..42).collect();
        shuffle(&mut c, 8);
        assert_ne!(a, c);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..42).collect::<Vec<_>>());
    }

    fn question(id: &str, fact: &str) -> Question {
        Question {
            id: id.to_owned(),
            title: String::new(),
            level: "staff".to_owned(),
            file: Default::default(),
            line: 1,
            teaches: Vec::new(),
            planned: None,
            core_fact: bank::CoreFact {
                key: fact.to_owned(),
                text: String::new(),
            },
            question: String::new(),
            model_answer: String::new(),
            wrong_answers: Vec::new(),
            follow_ups: Vec::new(),
            checked_by: Vec::new(),
        }
    }

    #[test]
    fn a_draw_repeats_a_fact_only_once_every_fact_has_been_drawn() {
        let pool = [
            question("Q1", "a"),
            question("Q2", "a"),
            question("Q3", "b"),
            question("Q4", "a"),
            question("Q5", "c"),
        ];
        let ids = |order: Vec<&Question>| order.iter().map(|q| q.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(distinct_facts_first(pool.iter().collect())),
            ["Q1", "Q3", "Q5", "Q2", "Q4"]
        );
        // Whatever the shuffle, the first three are three different facts.
        for seed in 0..50 {
            let mut shuffled: Vec<&Question> = pool.iter().collect();
            shuffle(&mut shuffled, seed);
            let drawn = distinct_facts_first(shuffled);
            let facts: std::collections::BTreeSet<&str> = drawn[..3]
                .iter()
                .map(|q| q.core_fact.key.as_str())
                .collect();
            assert_eq!(facts.len(), 3, "seed {seed}");
        }
    }

    #[test]
    fn reflow_joins_paragraphs_and_items_and_keeps_code() {
        let text = "Short first line.\nThen a second\nline.\n\n- item one\n  continued\n1. numbered\n\n```rust\nlet  x = 1;\n```\nAfter.";
        assert_eq!(
            reflow(text, "  "),
            "  Short first line. Then a second line.\n\n  - item one continued\n  1. numbered\n\n  ```rust\n  let  x = 1;\n  ```\n  After.\n"
        );
    }

    #[test]
    fn wrap_breaks_long_items_with_a_hanging_indent() {
        let text = "word ".repeat(40);
        let wrapped = wrap(&text, "  - ", "    ");
        let lines: Vec<&str> = wrapped.lines().collect();
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH));
        assert!(lines[0].starts_with("  - word") && lines[1].starts_with("    word"));
    }
}
