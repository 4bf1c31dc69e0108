//! `cargo xtask new`: every file of a new exercise, consistent with the conventions, so a
//! maintainer starts from a pair that already verifies (the untouched exercise fails its one
//! check, the solution passes it) and replaces the service with the lesson's.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::seal;
use crate::workshop::{LEVELS, Workshop};

pub struct NewExercise {
    pub level: String,
    pub id: String,
    pub slug: String,
    pub title: String,
}

pub fn scaffold(workshop: &Workshop, new: &NewExercise) -> Result<()> {
    if !LEVELS.contains(&new.level.as_str()) {
        bail!(
            "unknown level `{}` (levels: {})",
            new.level,
            LEVELS.join(", ")
        );
    }
    let id = new.id.to_uppercase();
    if workshop.exercises.iter().any(|e| e.meta.id == id) {
        bail!("the id {id} is taken");
    }
    if !new
        .slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("a slug is lower-case words joined by dashes, e.g. `late-write`");
    }
    let name = format!("{}-{}", id.to_lowercase(), new.slug);
    let lib = name.replace('-', "_");
    let level = &new.level;
    let title = &new.title;
    let exercise = workshop.path(format!("exercises/{level}/{name}"));
    let solution = workshop.path(format!("solutions/{level}/{name}"));
    if exercise.exists() || solution.exists() {
        bail!("{} or its solution already exists", exercise.display());
    }

    let cargo = |package: &str, extra: &str| {
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition.workspace = true\npublish.workspace = true\n{extra}\n[dependencies]\ntokio.workspace = true\nhyper.workspace = true\nhyper-util.workspace = true\nhttp-body-util.workspace = true\nbytes.workspace = true\n\n[dev-dependencies]\nharness.workspace = true\n\n[lints]\nworkspace = true\n"
        )
    };
    let lib_rs = |greeting: &str| {
        format!(
            "//! {title}: replace this with the exercise's small service.\n\n/// What the service answers.\npub fn greeting() -> &'static str {{\n    \"{greeting}\"\n}}\n"
        )
    };
    write(&exercise.join("Cargo.toml"), &cargo(&name, ""))?;
    write(&exercise.join("src/lib.rs"), &lib_rs("hello"))?;
    write(
        &exercise.join("tests/checks.rs"),
        &format!(
            "//! Checks for {id}.\n\nuse harness::watchdog::check;\n\n#[test]\nfn greets_the_world() {{\n    check(\"the greeting never came back\").run(|| {{\n        assert_eq!({lib}::greeting(), \"hello, world\", \"the service must greet the world\");\n    }});\n}}\n"
        ),
    )?;
    write(
        &solution.join(crate::workshop::META),
        &format!(
            "id = \"{id}\"\nslug = \"{}\"\nlevel = \"{level}\"\ntitle = \"{title}\"\nminutes = 15\nkinds = [\"srv\"]\nsummary = \"One line for the list and the book.\"\nhints = [\n    \"A first, gentle hint.\",\n    \"A closer hint.\",\n]\n\n[[check]]\nname = \"greets_the_world\"\nkind = \"srv\"\nfails_on_bug = true\nmeans = \"What this failure means, in the lesson's terms.\"\nhint = 1\n",
            new.slug
        ),
    )?;
    write(
        &exercise.join("README.md"),
        &format!(
            "## The service\n\nWhat it does and who relies on it.\n\n## The report\n\nWhat went wrong in production.\n\n## Your task\n\n```console\ncargo xtask check {id}\n```\n\n## What the checks do\n\n- `greets_the_world`: what it drives and what it expects.\n"
        ),
    )?;
    let extra = format!(
        "\n[lib]\nname = \"{lib}\"\n\n[[test]]\nname = \"checks\"\npath = \"../../../exercises/{level}/{name}/tests/checks.rs\"\n"
    );
    write(
        &solution.join("Cargo.toml"),
        &cargo(&format!("{name}-solution"), &extra),
    )?;
    write(&solution.join("src/lib.rs"), &lib_rs("hello, world"))?;
    // The grader's own tests, so the new exercise verifies from the start: replace them with
    // the half-fixes and right fixes of the lesson (book: contributing, "Half-fixes").
    let variants = [
        (
            "half_fix",
            "no-comma",
            "hello world",
            "wrong = \"Drops the comma: close, but not the greeting the checks expect.\"\ncaught_by = [\"greets_the_world\"]",
        ),
        (
            "half_fix",
            "capital",
            "Hello, world",
            "wrong = \"Capitalises the greeting.\"\ncaught_by = [\"greets_the_world\"]",
        ),
        (
            "half_fix",
            "newline",
            "hello, world\\n",
            "wrong = \"Ends the greeting with a newline.\"\ncaught_by = [\"greets_the_world\"]",
        ),
        (
            "right_fix",
            "literal",
            "hello, world",
            "style = \"The solution's text again: replace with a right fix in another style.\"",
        ),
        (
            "right_fix",
            "escaped",
            "hello,\\x20world",
            "style = \"The space written as an escape.\"",
        ),
    ];
    let mut toml = String::from(
        "# Plausible wrong fixes a learner writes, and right fixes in other styles than the\n# solution's: `cargo xtask verify` proves each half-fix fails the checks it names and each\n# right fix passes every check.\n",
    );
    for (table, name, greeting, fields) in variants {
        toml.push_str(&format!("\n[[{table}]]\nname = \"{name}\"\n{fields}\n"));
        write(
            &solution.join("variants").join(name).join("src/lib.rs"),
            &lib_rs(greeting),
        )?;
    }
    write(&solution.join("variants.toml"), &toml)?;
    write(
        &solution.join("WHY.md"),
        "Why the fix is right, and which half-fixes fail.\n",
    )?;
    write(
        &workshop.path(format!("book/src/{level}/exercises/{name}.md")),
        &format!(
            "# {id} · {title}\n\n{{{{#include ../../generated/exercises/{id}.md}}}}\n\n{{{{#include ../../../../exercises/{level}/{name}/README.md}}}}\n\n## Background\n\nThe concept, with links to the chapters that teach it.\n\n## Solution\n\n<details>\n<summary>Why the fix works (spoiler)</summary>\n\n{{{{#include ../../../../solutions/{level}/{name}/WHY.md}}}}\n\n</details>\n"
        ),
    )?;

    let workshop = Workshop::load(workshop.root.clone())?;
    seal::seal(&workshop)?;
    println!("Created {id} ({name}):");
    for path in [
        format!("exercises/{level}/{name}/"),
        format!("solutions/{level}/{name}/"),
        format!("book/src/{level}/exercises/{name}.md"),
    ] {
        println!("  {path}");
    }
    println!(
        "Add the page to book/src/SUMMARY.md, write the lesson and its half-fixes and right fixes\n(solutions/{level}/{name}/variants.toml), then `cargo xtask seal` and `cargo xtask verify --only {id}`."
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
