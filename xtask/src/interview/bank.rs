//! The interview bank: the questions of
//! `book/src/interview/{junior,middle,senior,professional,staff}.md`.
//!
//! The bank lives once, in the book's markdown, in the format documented at the top of
//! `book/src/interview/index.md`. This module parses it strictly: a question with a missing or
//! misplaced part is an error that names the file and line, never a question silently skipped.
//!
//! It depends on nothing else in xtask (std and anyhow only), so that `tests/interview.rs` can
//! include it with `#[path]` and check the bank with the very parser the runner uses.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where the bank lives, relative to the workshop root.
pub const BANK_DIR: &str = "book/src/interview";

/// The levels that have a page of questions, in course order.
pub const LEVELS: [&str; 5] = ["junior", "middle", "senior", "professional", "staff"];

/// The parts of a question's body, in the order they must appear; the last is optional.
const QUESTION: &str = "**Question.**";
const MODEL_ANSWER: &str = "**Model answer.**";
const WRONG_ANSWERS: &str = "**Wrong answers.**";
const FOLLOW_UPS: &str = "**Follow-ups.**";
const CHECKED_BY: &str = "**Checked by.**";
const MARKERS: [&str; 5] = [
    QUESTION,
    MODEL_ANSWER,
    WRONG_ANSWERS,
    FOLLOW_UPS,
    CHECKED_BY,
];
/// The parts every question has.
const REQUIRED: usize = 4;

/// The line between the metadata and the question: the one fact the question is about.
const CORE_FACT: &str = "**Core fact:** ";

/// A core fact may be the answer to this many questions at most: more, and a random draw
/// keeps asking the same thing (merge the questions, or aim one at another fact).
pub const MAX_QUESTIONS_PER_FACT: usize = 2;
/// A draw of this many questions at any one level must be able to avoid repeating a fact.
pub const DISTINCT_FACTS_PER_LEVEL: usize = 5;

/// A markdown link: `[text](target)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub text: String,
    pub target: String,
}

/// A wrong answer a candidate is likely to give, and why it is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongAnswer {
    pub answer: String,
    pub why: String,
}

/// Whose answer a follow-up separates: what a mid-level, a senior and a staff answer add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Middle,
    Senior,
    Staff,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Middle, Tier::Senior, Tier::Staff];

    /// The word that opens the follow-up: `- **Middle.** ...`.
    pub fn label(self) -> &'static str {
        match self {
            Tier::Middle => "Middle",
            Tier::Senior => "Senior",
            Tier::Staff => "Staff",
        }
    }
}

/// A follow-up probe, with the tier of answer it listens for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    pub tier: Tier,
    /// The probe and its "Listen for:", without the tier's label.
    pub text: String,
}

/// The one fact a question is about: `key` names it (two questions with the same key test
/// the same thing, and the drill never draws both), `text` states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreFact {
    pub key: String,
    pub text: String,
}

/// One question of the bank.
#[derive(Debug, Clone)]
pub struct Question {
    /// `Q1`..`Q33` (the seed questions) or `R1`, `R2`... (Rust-only).
    pub id: String,
    pub title: String,
    pub level: String,
    /// The page it lives on, relative to the workshop root.
    pub file: PathBuf,
    /// 1-based line of its heading.
    pub line: usize,
    /// Chapters and exercises that teach it (links to pages that exist).
    pub teaches: Vec<Link>,
    /// Material that is planned but not written yet, in plain text.
    pub planned: Option<String>,
    pub core_fact: CoreFact,
    pub question: String,
    pub model_answer: String,
    pub wrong_answers: Vec<WrongAnswer>,
    /// In tier order: every tier at least once.
    pub follow_ups: Vec<FollowUp>,
    /// The tests and sources the answer rests on, as written (may be empty).
    pub checked_by: Vec<String>,
}

impl Question {
    /// The heading's anchor: the id in lower case (`q3`).
    pub fn anchor(&self) -> String {
        self.id.to_lowercase()
    }
}

/// The page of a level, relative to the workshop root.
pub fn level_file(level: &str) -> PathBuf {
    Path::new(BANK_DIR).join(format!("{level}.md"))
}

/// Reads every level's page under `root`: the questions in course order (by level, then as
/// they appear on the page). Fails on the first malformed question or on a duplicate id.
pub fn load(root: &Path) -> Result<Vec<Question>> {
    let mut questions = Vec::new();
    for level in LEVELS {
        let file = level_file(level);
        let text = fs::read_to_string(root.join(&file))
            .with_context(|| format!("reading the interview bank: {}", file.display()))?;
        questions.extend(parse(&text, level, &file)?);
    }
    let mut seen = BTreeSet::new();
    for q in &questions {
        if !seen.insert(q.id.clone()) {
            bail!(
                "{}:{}: the id {} is used twice in the interview bank",
                q.file.display(),
                q.line,
                q.id
            );
        }
    }
    Ok(questions)
}

/// Parses one level's page. Everything before the first `## ` heading is the page's
/// introduction and is ignored; every `## ` heading after it must be a question.
pub fn parse(text: &str, level: &str, file: &Path) -> Result<Vec<Question>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut starts = Vec::new();
    let mut fence = false;
    for (i, line) in lines.iter().enumerate() {
        if is_fence(line) {
            fence = !fence;
        } else if !fence && line.starts_with("## ") {
            starts.push(i);
        }
    }
    let mut questions = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        questions.push(parse_question(&lines[start..end], start, level, file)?);
    }
    Ok(questions)
}

fn parse_question(lines: &[&str], offset: usize, level: &str, file: &Path) -> Result<Question> {
    let at = |i: usize| format!("{}:{}", file.display(), offset + i + 1);
    let (id, title) = parse_heading(lines[0]).map_err(|e| anyhow::anyhow!("{}: {e}", at(0)))?;

    // The metadata line: the first non-blank line after the heading.
    let meta_index = (1..lines.len())
        .find(|&i| !lines[i].trim().is_empty())
        .ok_or_else(|| anyhow::anyhow!("{}: {id} has nothing under its heading", at(0)))?;
    let (meta_level, teaches, planned) =
        parse_meta(lines[meta_index]).map_err(|e| anyhow::anyhow!("{}: {e}", at(meta_index)))?;
    if meta_level != level {
        bail!(
            "{}: {id} says **Level:** {meta_level} but lives on the {level} page",
            at(meta_index)
        );
    }

    // The core fact: the first non-blank line after the metadata, and the lines joined to it.
    let fact_index = (meta_index + 1..lines.len())
        .find(|&i| !lines[i].trim().is_empty())
        .ok_or_else(|| anyhow::anyhow!("{}: {id} has no {}", at(meta_index), CORE_FACT.trim()))?;
    let fact_end = (fact_index..lines.len())
        .find(|&i| lines[i].trim().is_empty())
        .unwrap_or(lines.len());
    let core_fact = parse_core_fact(&lines[fact_index..fact_end].join(" "))
        .map_err(|e| anyhow::anyhow!("{}: {id}: {e}", at(fact_index)))?;

    // The parts, each opened by its marker at the start of a line, in order.
    let mut sections: Vec<(usize, &str)> = Vec::new();
    let mut fence = false;
    for (i, line) in lines.iter().enumerate().skip(fact_end) {
        if is_fence(line) {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if let Some(marker) = MARKERS.iter().find(|m| line.starts_with(*m)) {
            sections.push((i, marker));
        } else if sections.is_empty() && !line.trim().is_empty() {
            bail!(
                "{}: {id}: expected `{QUESTION}` after the core fact, found `{}`",
                at(i),
                line.trim()
            );
        }
    }
    let found: Vec<&str> = sections.iter().map(|(_, m)| *m).collect();
    if found != MARKERS[..REQUIRED] && found != MARKERS {
        let missing: Vec<&str> = MARKERS[..REQUIRED]
            .iter()
            .filter(|m| !found.contains(m))
            .copied()
            .collect();
        if missing.is_empty() {
            bail!(
                "{}: {id}: its parts must appear once each, in the order {} (the last is optional); found {}",
                at(0),
                MARKERS.join(", "),
                found.join(", ")
            );
        }
        bail!("{}: {id} has no {}", at(0), missing.join(", "));
    }
    let body = |n: usize| -> (usize, Vec<&str>) {
        let (start, marker) = sections[n];
        let end = sections.get(n + 1).map_or(lines.len(), |(i, _)| *i);
        let mut part = vec![lines[start][marker.len()..].trim_start()];
        part.extend_from_slice(&lines[start + 1..end]);
        (start, part)
    };

    let (q_at, q_lines) = body(0);
    let question = paragraph_text(&q_lines);
    if question.is_empty() {
        bail!("{}: {id}: the question is empty", at(q_at));
    }
    let (m_at, m_lines) = body(1);
    let model_answer = paragraph_text(&m_lines);
    if model_answer.is_empty() {
        bail!("{}: {id}: the model answer is empty", at(m_at));
    }

    let (w_at, w_lines) = body(2);
    let mut wrong_answers = Vec::new();
    for (i, item) in
        list_items(&w_lines).map_err(|(i, e)| anyhow::anyhow!("{}: {id}: {e}", at(w_at + i)))?
    {
        let parsed = parse_wrong_answer(&item)
            .map_err(|e| anyhow::anyhow!("{}: {id}: {e}", at(w_at + i)))?;
        wrong_answers.push(parsed);
    }
    if wrong_answers.is_empty() {
        bail!("{}: {id}: no wrong answers listed", at(w_at));
    }

    let (f_at, f_lines) = body(3);
    let mut follow_ups: Vec<FollowUp> = Vec::new();
    for (i, item) in
        list_items(&f_lines).map_err(|(i, e)| anyhow::anyhow!("{}: {id}: {e}", at(f_at + i)))?
    {
        let follow_up =
            parse_follow_up(&item).map_err(|e| anyhow::anyhow!("{}: {id}: {e}", at(f_at + i)))?;
        if let Some(last) = follow_ups.last()
            && last.tier > follow_up.tier
        {
            bail!(
                "{}: {id}: a {} follow-up after a {} one: list them from Middle to Staff",
                at(f_at + i),
                follow_up.tier.label(),
                last.tier.label()
            );
        }
        follow_ups.push(follow_up);
    }
    let missing: Vec<&str> = Tier::ALL
        .iter()
        .filter(|tier| !follow_ups.iter().any(|f| f.tier == **tier))
        .map(|tier| tier.label())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: {id}: no {} follow-up: each question says what a mid-level, a senior and a staff answer add",
            at(f_at),
            missing.join(" or ")
        );
    }

    let checked_by = if sections.len() > REQUIRED {
        let (c_at, c_lines) = body(REQUIRED);
        let items: Vec<String> = list_items(&c_lines)
            .map_err(|(i, e)| anyhow::anyhow!("{}: {id}: {e}", at(c_at + i)))?
            .into_iter()
            .map(|(_, item)| item)
            .collect();
        if items.is_empty() {
            bail!(
                "{}: {id}: {CHECKED_BY} lists nothing: leave it out instead",
                at(c_at)
            );
        }
        for item in &items {
            if !item.starts_with('`') && !item.starts_with('[') {
                bail!(
                    "{}: {id}: a {CHECKED_BY} item starts with the test or source file in backticks, or a link to an advisory, found `{item}`",
                    at(c_at)
                );
            }
        }
        items
    } else {
        Vec::new()
    };

    Ok(Question {
        id,
        title,
        level: meta_level,
        file: file.to_path_buf(),
        line: offset + 1,
        teaches,
        planned,
        core_fact,
        question,
        model_answer,
        wrong_answers,
        follow_ups,
        checked_by,
    })
}

/// `**Core fact:** `timer-trap` — hyper's timeouts do nothing until the builder has a timer.`
fn parse_core_fact(line: &str) -> Result<CoreFact, String> {
    let form = "the line under the metadata is `**Core fact:** `key` — the fact, in one sentence`";
    let Some(rest) = line.trim().strip_prefix(CORE_FACT) else {
        return Err(format!("{form}, found `{}`", line.trim()));
    };
    let Some((key, text)) = rest
        .strip_prefix('`')
        .and_then(|rest| rest.split_once("` — "))
    else {
        return Err(format!("{form}, found `{}`", line.trim()));
    };
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "a core fact's key is lower-case words joined by dashes, found `{key}`"
        ));
    }
    let text = text.trim();
    if text.is_empty() {
        return Err("the core fact is empty".to_owned());
    }
    Ok(CoreFact {
        key: key.to_owned(),
        text: text.to_owned(),
    })
}

/// `**Senior.** A probe? Listen for: what that tier's answer adds.`
fn parse_follow_up(item: &str) -> Result<FollowUp, String> {
    for tier in Tier::ALL {
        if let Some(text) = item.strip_prefix(&format!("**{}.** ", tier.label())) {
            if !text.contains("Listen for:") {
                return Err(format!(
                    "a follow-up says what to listen for (`Listen for: ...`), found `{item}`"
                ));
            }
            return Ok(FollowUp {
                tier,
                text: text.trim().to_owned(),
            });
        }
    }
    Err(format!(
        "a follow-up starts with its tier, `**Middle.**`, `**Senior.**` or `**Staff.**`, found `{item}`"
    ))
}

/// Problems that no single question shows: a fact asked too often, a level whose draw of five
/// would have to repeat a fact. (`load` has already checked each question.)
pub fn check(questions: &[Question]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_fact: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for q in questions {
        by_fact.entry(&q.core_fact.key).or_default().push(&q.id);
    }
    for (fact, ids) in &by_fact {
        if ids.len() > MAX_QUESTIONS_PER_FACT {
            problems.push(format!(
                "the core fact `{fact}` is the answer to {} questions ({}): at most {MAX_QUESTIONS_PER_FACT}; merge them or aim one at another fact",
                ids.len(),
                ids.join(", ")
            ));
        }
    }
    for level in LEVELS {
        let facts: BTreeSet<&str> = questions
            .iter()
            .filter(|q| q.level == level)
            .map(|q| q.core_fact.key.as_str())
            .collect();
        if facts.len() < DISTINCT_FACTS_PER_LEVEL {
            problems.push(format!(
                "the {level} questions test {} distinct core facts: a draw of {DISTINCT_FACTS_PER_LEVEL} would repeat one",
                facts.len()
            ));
        }
    }
    problems
}

/// Checks that each `**Checked by.**` item names something that exists: a lesson test
/// (`lessons/<crate>/tests/<file>.rs::<test>`), a lesson file (`lessons/<crate>/src/<file>.rs`),
/// a crate's source (`<crate>-<version>/<path>`, as in cargo's registry), or, as a link, an
/// advisory or documentation page outside the book.
pub fn evidence_problems(root: &Path, questions: &[Question]) -> Vec<String> {
    let mut problems = Vec::new();
    for q in questions {
        for item in &q.checked_by {
            let at = format!("{}:{} ({})", q.file.display(), q.line, q.id);
            if item.starts_with('[') {
                match links(item).first() {
                    Some(link) if is_external(&link.target) && item.starts_with(&format!("[{}]", link.text)) => {}
                    _ => problems.push(format!("{at}: `{item}`: an item that starts with a link links an advisory or a page outside the book")),
                }
                continue;
            }
            let cited = item[1..].split('`').next().unwrap_or_default();
            if let Some(path) = cited.strip_prefix("lessons/").map(|_| cited) {
                let (file, test) = match path.split_once("::") {
                    Some((file, test)) => (file, Some(test)),
                    None => (path, None),
                };
                let Ok(text) = fs::read_to_string(root.join(file)) else {
                    problems.push(format!(
                        "{at}: checked by `{cited}`, but {file} does not exist"
                    ));
                    continue;
                };
                if let Some(test) = test
                    && !text.contains(&format!("fn {test}("))
                {
                    problems.push(format!(
                        "{at}: checked by `{cited}`, but {file} has no `fn {test}`"
                    ));
                }
            } else if !is_crate_source(cited) {
                problems.push(format!(
                    "{at}: checked by `{cited}`: name a lesson test (`lessons/.../tests/x.rs::name`), a lesson file, or a crate source (`hyper-1.12.0/src/...`)"
                ));
            }
        }
    }
    problems
}

/// `hyper-1.12.0/src/proto/h2/server.rs`: a crate name, a dash, a version, then a path.
fn is_crate_source(cited: &str) -> bool {
    let Some((crate_version, path)) = cited.split_once('/') else {
        return false;
    };
    let Some((name, version)) = crate_version.rsplit_once('-') else {
        return false;
    };
    !name.is_empty()
        && !path.is_empty()
        && version.split('.').count() == 3
        && version
            .split('.')
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// `## Q3 · How does a handler learn that the client left? {#q3}`.
fn parse_heading(line: &str) -> Result<(String, String), String> {
    let rest = line.strip_prefix("## ").unwrap_or(line);
    let Some((id, rest)) = rest.split_once(" · ") else {
        return Err(format!(
            "a question heading is `## <ID> · <title> {{#<id>}}`, found `{line}`"
        ));
    };
    if !is_question_id(id) {
        return Err(format!(
            "`{id}` is not a question id (Q1..Q33 for the seed questions, R1.. for Rust-only ones)"
        ));
    }
    let anchor = format!("{{#{}}}", id.to_lowercase());
    let Some(title) = rest.strip_suffix(&anchor) else {
        return Err(format!(
            "the heading of {id} must end with its anchor `{anchor}`"
        ));
    };
    let title = title.trim();
    if title.is_empty() {
        return Err(format!("{id} has an empty title"));
    }
    Ok((id.to_owned(), title.to_owned()))
}

/// `Q` or `R` followed by a number without leading zero.
pub fn is_question_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('Q' | 'R')) && {
        let digits = chars.as_str();
        !digits.is_empty() && !digits.starts_with('0') && digits.chars().all(|c| c.is_ascii_digit())
    }
}

/// `**Level:** junior · **Teaches:** [a](a.md), [b](b.md) · **Planned:** free text`.
fn parse_meta(line: &str) -> Result<(String, Vec<Link>, Option<String>), String> {
    let Some(rest) = line.strip_prefix("**Level:** ") else {
        return Err(format!(
            "the line under a question's heading is `**Level:** <level> · **Teaches:** <links>`, found `{line}`"
        ));
    };
    let mut fields = rest.split(" · **");
    let level = fields.next().unwrap_or_default().trim().to_owned();
    if !LEVELS.contains(&level.as_str()) {
        return Err(format!(
            "unknown level `{level}`: the bank's levels are {}",
            LEVELS.join(", ")
        ));
    }
    let mut teaches = None;
    let mut planned = None;
    for field in fields {
        if let Some(value) = field.strip_prefix("Teaches:** ") {
            let parsed = parse_link_list(value)?;
            if parsed.is_empty() {
                return Err("**Teaches:** needs at least one link".to_owned());
            }
            teaches = Some(parsed);
        } else if let Some(value) = field.strip_prefix("Planned:** ") {
            let value = value.trim();
            if value.is_empty() {
                return Err("**Planned:** is empty: leave the field out instead".to_owned());
            }
            if !links(value).is_empty() {
                return Err(
                    "**Planned:** is plain text: planned material has no page to link to yet"
                        .to_owned(),
                );
            }
            planned = Some(value.to_owned());
        } else {
            return Err(format!(
                "unknown field `**{field}`: the fields are Level, Teaches and Planned"
            ));
        }
    }
    let Some(teaches) = teaches else {
        return Err(
            "**Teaches:** is missing: link the chapter and exercise that teach it".to_owned(),
        );
    };
    Ok((level, teaches, planned))
}

/// `[a](a.md), [b](b.md)`: links separated by commas, and nothing else.
fn parse_link_list(value: &str) -> Result<Vec<Link>, String> {
    let mut out = Vec::new();
    for part in value.split("), ") {
        let part = part.trim();
        let part = if part.ends_with(')') {
            part.to_owned()
        } else {
            format!("{part})")
        };
        let found = links(&part);
        match found.as_slice() {
            [link] if part == format!("[{}]({})", link.text, link.target) => {
                out.push(link.clone());
            }
            _ => {
                return Err(format!(
                    "**Teaches:** holds links separated by `, `, found `{part}`"
                ));
            }
        }
    }
    Ok(out)
}

/// `*"It uses a thread pool."* — why it is wrong.`
fn parse_wrong_answer(item: &str) -> Result<WrongAnswer, String> {
    let form = "a wrong answer is `- *\"the answer\"* — why it is wrong`";
    let Some(rest) = item.strip_prefix("*\"") else {
        return Err(format!("{form}, found `{item}`"));
    };
    let Some((answer, why)) = rest.split_once("\"* — ") else {
        return Err(format!("{form}, found `{item}`"));
    };
    let (answer, why) = (answer.trim(), why.trim());
    if answer.is_empty() || why.is_empty() {
        return Err(format!("{form}: both parts must be non-empty"));
    }
    Ok(WrongAnswer {
        answer: answer.to_owned(),
        why: why.to_owned(),
    })
}

/// The items of a `- ` list: continuation lines are indented; blank lines are allowed between
/// items. The first line (the rest of the marker's line) must be empty. Items are returned
/// joined into one line each, with the index of their first line.
fn list_items(lines: &[&str]) -> Result<Vec<(usize, String)>, (usize, String)> {
    if !lines[0].trim().is_empty() {
        return Err((
            0,
            format!("text after the list's marker: `{}`", lines[0].trim()),
        ));
    }
    let mut items: Vec<(usize, String)> = Vec::new();
    let mut after_blank = false;
    for (i, line) in lines.iter().enumerate().skip(1) {
        if line.trim().is_empty() {
            after_blank = true;
        } else if let Some(item) = line.strip_prefix("- ") {
            items.push((i, item.trim().to_owned()));
            after_blank = false;
        } else if line.starts_with("  ") && !after_blank && !items.is_empty() {
            let last = items.last_mut().map(|(_, text)| text);
            if let Some(text) = last {
                text.push(' ');
                text.push_str(line.trim());
            }
        } else {
            return Err((
                i,
                format!(
                    "only `- ` items (and indented continuation lines) belong here, found `{}`",
                    line.trim()
                ),
            ));
        }
    }
    if items.iter().any(|(_, text)| text.is_empty()) {
        return Err((0, "an empty list item".to_owned()));
    }
    Ok(items)
}

/// A part's text as written, without leading and trailing blank lines.
fn paragraph_text(lines: &[&str]) -> String {
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last]
            .iter()
            .map(|l| l.trim_end())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn is_fence(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.starts_with("```") || trimmed.starts_with("~~~")
}

/// Every inline markdown link (`[text](target)`, images too) in `text`, outside code spans and
/// fenced code blocks.
pub fn links(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut fence = false;
    for line in text.lines() {
        if is_fence(line) {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let mut in_code = false;
        while i < chars.len() {
            match chars[i] {
                '`' => in_code = !in_code,
                '[' if !in_code => {
                    if let Some((link, next)) = link_at(&chars, i) {
                        out.push(link);
                        i = next;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// The link starting at `chars[open] == '['`, and the index after it.
fn link_at(chars: &[char], open: usize) -> Option<(Link, usize)> {
    let mut depth = 0;
    let mut close = None;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    if chars.get(close + 1) != Some(&'(') {
        return None;
    }
    let end = (close + 2..chars.len()).find(|&j| chars[j] == ')')?;
    let text: String = chars[open + 1..close].iter().collect();
    let target: String = chars[close + 2..end].iter().collect();
    if target.is_empty() || target.contains(' ') {
        return None;
    }
    Some((Link { text, target }, end + 1))
}

/// Whether a link leaves the book (a URL) rather than pointing at one of its pages.
pub fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// Resolves a relative link found in `page` (relative to the root) to the file it names
/// (relative to the root) and its `#anchor`, if any.
pub fn resolve(page: &Path, target: &str) -> (PathBuf, Option<String>) {
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor.to_owned())),
        None => (target, None),
    };
    if path.is_empty() {
        return (page.to_path_buf(), anchor);
    }
    let joined = page.parent().unwrap_or(Path::new("")).join(path);
    let mut normal = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    (normal, anchor)
}

/// The ids mdBook gives the headings of a markdown page: an explicit `{#id}`, or the heading's
/// text in lower case with spaces as dashes and punctuation dropped. (Used by the link checks
/// of `tests/interview.rs`.)
#[allow(dead_code)]
pub fn heading_ids(markdown: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut fence = false;
    for line in markdown.lines() {
        if is_fence(line) {
            fence = !fence;
            continue;
        }
        if fence || !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#');
        if !text.starts_with(' ') {
            continue;
        }
        let text = text.trim();
        if let Some(start) = text.rfind("{#")
            && text.ends_with('}')
        {
            ids.push(text[start + 2..text.len() - 1].to_owned());
            continue;
        }
        let id: String = text
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_ascii_lowercase())
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        ids.push(id);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"# Junior questions

Some introduction, ignored, with a [link](../junior/index.md).

## Q3 · How does a handler learn that the client left? {#q3}

**Level:** junior · **Teaches:** [Drop is cancellation](../junior/cancellation.md), [J08 · The client left](../junior/exercises/j08-disconnect.md) · **Planned:** Exercise M01 unread-body, middle level (planned)

**Core fact:** `cancel-by-drop` — a handler is not told the client left:
its future is dropped.

**Question.** A handler awaits a slow query and the client hangs up.
What happens?

**Model answer.** It is dropped.

```rust
// ## not a heading
**Question.** not a marker either
```

**Wrong answers.**
- *"It gets an error on its next write."* — it never writes:
  it returns a response.
- *"Always, at once."* — not with an unread body.

**Follow-ups.**
- **Middle.** What runs on drop? Listen for: `Drop`, nothing after the `.await`.
- **Senior.** And with an unread body? Listen for: not dropped.
- **Staff.** A metric of cancelled requests? Listen for: a guard
  with a "finished" flag.

**Checked by.**
- `lessons/interview/tests/x.rs::name`: what it shows.
- `hyper-1.12.0/src/proto/h1/dispatch.rs`: where.

## R2 · Which mutex? {#r2}

**Level:** junior · **Teaches:** [Shared state](../junior/shared-state.md)

**Core fact:** `std-mutex-first` — a std mutex, held briefly.

**Question.** std or tokio?

**Model answer.** Usually std.

**Wrong answers.**
- *"Always tokio."* — slower, and rarely needed.

**Follow-ups.**
- **Middle.** Why? Listen for: short sections.
- **Senior.** When tokio's? Listen for: held across an `.await`.
- **Staff.** And poisoning? Listen for: a choice.
"#;

    fn parse_good() -> Vec<Question> {
        parse(GOOD, "junior", Path::new("book/src/interview/junior.md")).expect("parses")
    }

    #[test]
    fn parses_every_part_of_a_question() {
        let questions = parse_good();
        assert_eq!(questions.len(), 2);
        let q = &questions[0];
        assert_eq!(q.id, "Q3");
        assert_eq!(q.anchor(), "q3");
        assert_eq!(q.title, "How does a handler learn that the client left?");
        assert_eq!(q.level, "junior");
        assert_eq!(q.line, 5);
        assert_eq!(q.teaches.len(), 2);
        assert_eq!(q.teaches[1].target, "../junior/exercises/j08-disconnect.md");
        assert_eq!(
            q.planned.as_deref(),
            Some("Exercise M01 unread-body, middle level (planned)")
        );
        assert_eq!(
            q.question,
            "A handler awaits a slow query and the client hangs up.\nWhat happens?"
        );
        assert!(q.model_answer.starts_with("It is dropped."));
        assert!(q.model_answer.contains("// ## not a heading"));
        assert_eq!(q.wrong_answers.len(), 2);
        assert_eq!(
            q.wrong_answers[0].answer,
            "It gets an error on its next write."
        );
        assert_eq!(
            q.wrong_answers[0].why,
            "it never writes: it returns a response."
        );
        assert_eq!(q.core_fact.key, "cancel-by-drop");
        assert_eq!(
            q.core_fact.text,
            "a handler is not told the client left: its future is dropped."
        );
        assert_eq!(q.follow_ups.len(), 3);
        assert_eq!(q.follow_ups[0].tier, Tier::Middle);
        assert_eq!(
            q.follow_ups[0].text,
            "What runs on drop? Listen for: `Drop`, nothing after the `.await`."
        );
        assert_eq!(q.follow_ups[2].tier, Tier::Staff);
        assert_eq!(
            q.follow_ups[2].text,
            "A metric of cancelled requests? Listen for: a guard with a \"finished\" flag."
        );
        assert_eq!(q.checked_by.len(), 2);
        assert!(q.checked_by[0].starts_with("`lessons/interview/tests/x.rs::name`"));
        assert_eq!(questions[1].id, "R2");
        assert_eq!(questions[1].planned, None);
        assert!(questions[1].checked_by.is_empty());
    }

    fn error_of(text: &str) -> String {
        match parse(text, "junior", Path::new("j.md")) {
            Ok(_) => panic!("parsed, but should not have:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_missing_part_is_named() {
        let text = GOOD.replace(
            "**Follow-ups.**\n- **Middle.** Why? Listen for: short sections.\n- **Senior.** When tokio's? Listen for: held across an `.await`.\n- **Staff.** And poisoning? Listen for: a choice.\n",
            "",
        );
        assert!(
            error_of(&text).contains("R2 has no **Follow-ups.**"),
            "{}",
            error_of(&text)
        );
    }

    #[test]
    fn parts_out_of_order_are_refused() {
        let text = GOOD.replace(
            "**Question.** std or tokio?",
            "**Model answer.** x\n\n**Question.** std or tokio?",
        );
        assert!(
            error_of(&text).contains("in the order"),
            "{}",
            error_of(&text)
        );
    }

    #[test]
    fn a_level_that_does_not_match_the_page_is_refused() {
        let text = GOOD.replace(
            "**Level:** junior · **Teaches:** [Shared",
            "**Level:** senior · **Teaches:** [Shared",
        );
        assert!(error_of(&text).contains("lives on the junior page"));
    }

    #[test]
    fn a_heading_without_its_anchor_is_refused() {
        let text = GOOD.replace("Which mutex? {#r2}", "Which mutex?");
        assert!(error_of(&text).contains("must end with its anchor `{#r2}`"));
        let text = GOOD.replace("## R2 · Which mutex? {#r2}", "## Notes");
        assert!(error_of(&text).contains("a question heading is"));
    }

    #[test]
    fn a_malformed_wrong_answer_is_refused() {
        let text = GOOD.replace("- *\"Always tokio.\"* — slower", "- Always tokio, slower");
        assert!(error_of(&text).contains("a wrong answer is"));
    }

    #[test]
    fn teaches_is_required_and_planned_has_no_links() {
        let text = GOOD.replace(
            " · **Teaches:** [Shared state](../junior/shared-state.md)",
            "",
        );
        assert!(error_of(&text).contains("**Teaches:** is missing"));
        let text = GOOD.replace(
            "**Planned:** Exercise M01 unread-body, middle level (planned)",
            "**Planned:** [M01](../middle/m01.md)",
        );
        assert!(error_of(&text).contains("plain text"));
    }

    #[test]
    fn stray_text_between_list_items_is_refused() {
        let text = GOOD.replace("a choice.", "a choice.\nA paragraph.");
        assert!(error_of(&text).contains("only `- ` items"));
    }

    #[test]
    fn a_core_fact_is_required_with_a_key_and_a_sentence() {
        let text = GOOD.replace(
            "**Core fact:** `std-mutex-first` — a std mutex, held briefly.\n\n",
            "",
        );
        assert!(
            error_of(&text).contains("**Core fact:**"),
            "{}",
            error_of(&text)
        );
        let text = GOOD.replace("`std-mutex-first` — a std", "std-mutex-first — a std");
        assert!(
            error_of(&text).contains("`key` — the fact"),
            "{}",
            error_of(&text)
        );
        let text = GOOD.replace("`std-mutex-first`", "`Std Mutex`");
        assert!(
            error_of(&text).contains("lower-case words"),
            "{}",
            error_of(&text)
        );
    }

    #[test]
    fn every_tier_has_a_follow_up_in_order_with_what_to_listen_for() {
        let text = GOOD.replace("- **Staff.** And poisoning? Listen for: a choice.\n", "");
        assert!(
            error_of(&text).contains("no Staff follow-up"),
            "{}",
            error_of(&text)
        );
        let text = GOOD.replace(
            "- **Middle.** Why? Listen for: short sections.",
            "- Why? Listen for: short sections.",
        );
        assert!(
            error_of(&text).contains("starts with its tier"),
            "{}",
            error_of(&text)
        );
        let text = GOOD.replace(
            "**Middle.** Why? Listen for: short sections.",
            "**Middle.** Why?",
        );
        assert!(
            error_of(&text).contains("Listen for:"),
            "{}",
            error_of(&text)
        );
        let text = GOOD.replace(
            "- **Middle.** Why? Listen for: short sections.\n- **Senior.** When tokio's? Listen for: held across an `.await`.",
            "- **Senior.** When tokio's? Listen for: held across an `.await`.\n- **Middle.** Why? Listen for: short sections.",
        );
        assert!(
            error_of(&text).contains("from Middle to Staff"),
            "{}",
            error_of(&text)
        );
    }

    #[test]
    fn checked_by_names_files_in_backticks() {
        let text = GOOD.replace(
            "- `hyper-1.12.0/src/proto/h1/dispatch.rs`: where.",
            "- the dispatcher",
        );
        assert!(
            error_of(&text).contains("in backticks"),
            "{}",
            error_of(&text)
        );
    }

    #[test]
    fn a_fact_asked_three_times_or_a_level_without_five_facts_is_reported() {
        let mut questions = parse_good();
        let problems = check(&questions);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("the junior questions test 2 distinct core facts")),
            "{problems:?}"
        );
        let mut copy = questions[1].clone();
        copy.id = "R3".to_owned();
        let mut again = copy.clone();
        again.id = "R4".to_owned();
        questions.extend([copy, again]);
        let problems = check(&questions);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("`std-mutex-first` is the answer to 3 questions (R2, R3, R4)")),
            "{problems:?}"
        );
    }

    #[test]
    fn evidence_must_exist() {
        let mut questions = parse_good();
        questions[0].checked_by = vec![
            "`lessons/nowhere/tests/x.rs::name`: gone.".to_owned(),
            "`hyper/src/lib.rs`: no version.".to_owned(),
        ];
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let problems = evidence_problems(&root, &questions);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("does not exist"));
        assert!(problems[1].contains("name a lesson test"));
        assert!(is_crate_source("tower-http-0.7.1/src/timeout/body.rs"));
        assert!(!is_crate_source("tower-http/src/timeout/body.rs"));
    }

    #[test]
    fn ids_are_q_or_r_with_a_number() {
        assert!(is_question_id("Q1") && is_question_id("Q33") && is_question_id("R9"));
        assert!(!is_question_id("Q") && !is_question_id("Q01") && !is_question_id("X1"));
    }

    #[test]
    fn links_skip_code_and_resolve_relative_to_their_page() {
        let found =
            links("see [a](../junior/a.md#x) and `[b](b.md)`, ![c](img.png)\n```\n[d](d.md)\n```");
        let targets: Vec<&str> = found.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, ["../junior/a.md#x", "img.png"]);
        let page = Path::new("book/src/interview/junior.md");
        assert_eq!(
            resolve(page, "../junior/a.md#x"),
            (PathBuf::from("book/src/junior/a.md"), Some("x".to_owned()))
        );
        assert_eq!(
            resolve(page, "#q3"),
            (page.to_path_buf(), Some("q3".to_owned()))
        );
    }

    #[test]
    fn heading_ids_follow_mdbook() {
        let ids = heading_ids(
            "# Drop is cancellation\n## Q3 · Who? {#q3}\n```\n# not\n```\n### `JoinSet`, abort & drop",
        );
        assert_eq!(ids, ["drop-is-cancellation", "q3", "joinset-abort--drop"]);
    }
}
