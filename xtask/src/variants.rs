//! The grader's own tests: maintainer half-fixes and alternative right fixes.
//!
//! A check is only as good as the wrong fixes it has been shown to reject. Next to each
//! solution, `variants.toml` lists plausible wrong fixes a learner writes (each with the checks
//! that must catch it) and right fixes in other styles than the solution's (each must pass every
//! check). Each variant is a folder `variants/<name>/` holding only the source files that differ
//! from the untouched exercise.
//!
//! To build a variant without touching the learner's folder, `verify` writes it out as a crate of
//! its own in a scratch workspace under `target/variants/`: the exercise's sources with the
//! variant's files laid over them, and the solution's manifest pointing at the exercise's checks.
//! The scratch workspace shares the main target directory, so the dependencies are built once.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::workshop::{Exercise, Workshop};

/// `caught_by` entry meaning "the crate must not compile".
pub const BUILD: &str = "build";
/// `caught_by` entry meaning "the clippy check must fail".
pub const LINT: &str = "lint";

/// The variants of one exercise, as `variants.toml` lists them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variants {
    #[serde(default, rename = "half_fix")]
    pub half_fixes: Vec<HalfFix>,
    #[serde(default, rename = "right_fix")]
    pub right_fixes: Vec<RightFix>,
}

/// A plausible wrong fix, and the checks that must reject it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalfFix {
    pub name: String,
    /// What it gets wrong, in the lesson's terms.
    pub wrong: String,
    /// Checks that must fail on it, every run (`build`: it must not compile; `lint`: clippy).
    pub caught_by: Vec<String>,
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// A right fix in another style than the solution's: it must pass every check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RightFix {
    pub name: String,
    /// How it differs from the solution.
    pub style: String,
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// One variant ready to build: which crate it became and what it must prove.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    /// The scratch crate's package name.
    pub package: String,
    /// `None` for a right fix; the checks that must fail for a half-fix.
    pub caught_by: Option<Vec<String>>,
    /// What a half-fix gets wrong, or how a right fix differs: said when a verdict is wrong.
    pub about: String,
}

/// At least this many of each, so no exercise ships with a grader nobody tried to fool.
pub const MIN_HALF_FIXES: usize = 3;
pub const MIN_RIGHT_FIXES: usize = 2;

pub fn file(exercise: &Exercise) -> PathBuf {
    exercise.solution_dir.join("variants.toml")
}

/// Reads `variants.toml` (an exercise without one has no variants).
pub fn load(workshop: &Workshop, exercise: &Exercise) -> Result<Variants> {
    let path = workshop.path(file(exercise));
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Variants::default());
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// What is wrong with an exercise's variants as declared, before anything is built.
pub fn problems(workshop: &Workshop, exercise: &Exercise, variants: &Variants) -> Vec<String> {
    let mut problems = Vec::new();
    let id = &exercise.meta.id;
    let where_ = file(exercise);
    if variants.half_fixes.len() < MIN_HALF_FIXES {
        problems.push(format!(
            "{id}: {} has {} half-fix(es); every exercise needs at least {MIN_HALF_FIXES}",
            where_.display(),
            variants.half_fixes.len()
        ));
    }
    if variants.right_fixes.len() < MIN_RIGHT_FIXES {
        problems.push(format!(
            "{id}: {} has {} right fix(es) besides the solution; every exercise needs at least {MIN_RIGHT_FIXES}",
            where_.display(),
            variants.right_fixes.len()
        ));
    }
    let mut names = BTreeSet::new();
    let declared = |name: &str| {
        name == BUILD
            || (name == LINT && exercise.meta.lint.is_some())
            || exercise.meta.checks.iter().any(|c| c.name == name)
    };
    let all = variants
        .half_fixes
        .iter()
        .map(|h| (&h.name, &h.wrong))
        .chain(variants.right_fixes.iter().map(|r| (&r.name, &r.style)));
    for (name, about) in all {
        if about.trim().is_empty() || about.contains('\n') {
            problems.push(format!(
                "{id}: variant `{name}` needs one line on what it gets wrong (half-fix) or how it differs (right fix)"
            ));
        }
        if !names.insert(name.clone()) {
            problems.push(format!("{id}: two variants are named `{name}`"));
        }
        if !workshop.path(source(exercise, name)).is_dir() {
            problems.push(format!(
                "{id}: variant `{name}` has no folder {}",
                source(exercise, name).display()
            ));
        }
    }
    for half in &variants.half_fixes {
        if half.caught_by.is_empty() {
            problems.push(format!(
                "{id}: half-fix `{}` names no check that catches it",
                half.name
            ));
        }
        for check in half.caught_by.iter().filter(|c| !declared(c)) {
            problems.push(format!(
                "{id}: half-fix `{}` is caught_by `{check}`, which is not a check of {id}",
                half.name
            ));
        }
    }
    // Every folder is listed: a variant nobody runs proves nothing.
    let dir = workshop.path(exercise.solution_dir.join("variants"));
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !names.contains(&name) {
            problems.push(format!(
                "{id}: {} is not listed in variants.toml",
                source(exercise, &name).display()
            ));
        }
    }
    problems
}

fn source(exercise: &Exercise, name: &str) -> PathBuf {
    exercise.solution_dir.join("variants").join(name)
}

/// The scratch workspace the variants are built in.
pub fn scratch_root(workshop: &Workshop) -> PathBuf {
    workshop.path("target").join("variants")
}

/// Writes every variant of `exercises` as a crate of the scratch workspace, and returns them by
/// exercise. Files are only rewritten when their content changed, so cargo rebuilds only what
/// a maintainer edited.
pub fn materialise<'a>(
    workshop: &Workshop,
    exercises: &[(&'a Exercise, &Variants)],
) -> Result<Vec<(&'a Exercise, Vec<Built>)>> {
    let root = scratch_root(workshop);
    let mut members = Vec::new();
    let mut out = Vec::new();
    for (exercise, variants) in exercises {
        let mut built = Vec::new();
        let half = variants.half_fixes.iter().map(|h| {
            (
                &h.name,
                &h.dependencies,
                Some(h.caught_by.clone()),
                &h.wrong,
            )
        });
        let right = variants
            .right_fixes
            .iter()
            .map(|r| (&r.name, &r.dependencies, None, &r.style));
        for (name, dependencies, caught_by, about) in half.chain(right) {
            let package = format!("{}-variant-{name}", exercise.dir_name());
            write_crate(
                workshop,
                exercise,
                name,
                dependencies,
                &package,
                &root.join(&package),
            )?;
            members.push(package.clone());
            built.push(Built {
                name: name.clone(),
                package,
                caught_by,
                about: about.clone(),
            });
        }
        out.push((*exercise, built));
    }
    write_workspace(workshop, &root, &members)?;
    Ok(out)
}

/// The scratch workspace's manifest: the main one's dependencies, lints and profiles (so the
/// variants build exactly like the exercise), with path dependencies made absolute.
fn write_workspace(workshop: &Workshop, root: &Path, members: &[String]) -> Result<()> {
    let manifest_path = workshop.path("Cargo.toml");
    let text = fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let mut manifest: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", manifest_path.display()))?;
    let Some(toml::Value::Table(ws)) = manifest.get_mut("workspace") else {
        bail!("{} has no [workspace] table", manifest_path.display());
    };
    ws.remove("default-members");
    ws.remove("exclude");
    ws.insert(
        "members".to_owned(),
        toml::Value::Array(members.iter().cloned().map(toml::Value::String).collect()),
    );
    if let Some(toml::Value::Table(deps)) = ws.get_mut("dependencies") {
        for (_, dep) in deps.iter_mut() {
            absolutise(dep, &workshop.root);
        }
    }
    write_if_changed(&root.join("Cargo.toml"), &toml::to_string(&manifest)?)?;
    // The same versions as the workshop: a variant must not pass because it resolved newer ones.
    let lock = fs::read_to_string(workshop.path("Cargo.lock")).unwrap_or_default();
    if !root.join("Cargo.lock").exists() {
        write_if_changed(&root.join("Cargo.lock"), &lock)?;
    }
    // Crates of variants that were renamed or removed would otherwise linger as stray folders.
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && name != "target" && !members.contains(&name) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

fn absolutise(value: &mut toml::Value, base: &Path) {
    if let toml::Value::Table(table) = value
        && let Some(toml::Value::String(path)) = table.get_mut("path")
        && Path::new(path.as_str()).is_relative()
    {
        *path = base.join(&*path).to_string_lossy().into_owned();
    }
}

/// One variant as a crate: the solution's manifest (library name, check targets) renamed, the
/// exercise's sources, the variant's files laid over them.
fn write_crate(
    workshop: &Workshop,
    exercise: &Exercise,
    name: &str,
    dependencies: &[String],
    package: &str,
    dir: &Path,
) -> Result<()> {
    let solution = workshop.path(&exercise.solution_dir);
    let manifest_path = solution.join("Cargo.toml");
    let text = fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let mut manifest: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", manifest_path.display()))?;
    if let Some(toml::Value::Table(pkg)) = manifest.get_mut("package") {
        pkg.insert("name".to_owned(), toml::Value::String(package.to_owned()));
    }
    if let Some(toml::Value::Array(tests)) = manifest.get_mut("test") {
        for test in tests {
            absolutise(test, &solution);
        }
    }
    let deps = manifest
        .entry("dependencies")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(deps) = deps {
        for dep in dependencies {
            let mut inherit = toml::Table::new();
            inherit.insert("workspace".to_owned(), toml::Value::Boolean(true));
            deps.insert(dep.clone(), toml::Value::Table(inherit));
        }
    }
    write_if_changed(&dir.join("Cargo.toml"), &toml::to_string(&manifest)?)?;

    let mut wanted = Vec::new();
    copy_tree(
        &workshop.path(exercise.dir.join("src")),
        &dir.join("src"),
        &mut wanted,
    )?;
    copy_tree(
        &workshop.path(source(exercise, name)).join("src"),
        &dir.join("src"),
        &mut wanted,
    )?;
    remove_others(&dir.join("src"), &wanted);
    Ok(())
}

fn copy_tree(from: &Path, to: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target, written)?;
        } else {
            let text = fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            write_if_changed(&target, &text)?;
            written.push(target);
        }
    }
    Ok(())
}

/// Removes files a previous materialisation wrote that this one did not.
fn remove_others(dir: &Path, wanted: &[PathBuf]) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_others(&path, wanted);
        } else if !wanted.contains(&path) {
            let _ = fs::remove_file(&path);
        }
    }
}

fn write_if_changed(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    if fs::read(path).ok().as_deref() == Some(contents.as_ref()) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// What is wrong with one run of one variant, judged from its report.
pub fn judge(variant: &Built, report: &crate::runner::Report) -> Vec<String> {
    use crate::runner::Verdict;
    let mut problems = report.undeclared_problems();
    let name = &variant.name;
    let about = &variant.about;
    match &variant.caught_by {
        None => {
            if !report.compiled() {
                problems.push(format!(
                    "right fix `{name}` ({about}) does not compile:\n{}",
                    report.rendered()
                ));
            } else {
                for (check, verdict) in &report.verdicts {
                    match verdict {
                        Verdict::Pass => {}
                        Verdict::Fail(f) => problems.push(format!(
                            "right fix `{name}` ({about}) fails `{check}`:\n{}",
                            f.message
                        )),
                        Verdict::NotRun(why) => problems.push(format!(
                            "`{check}` did not run on right fix `{name}`: {why}"
                        )),
                    }
                }
            }
        }
        Some(caught_by) => {
            let must_build = !caught_by.iter().any(|c| c == BUILD);
            if must_build && !report.compiled() {
                problems.push(format!(
                    "half-fix `{name}` does not compile, so no check judged it (list `build` in caught_by if that is the lesson):\n{}",
                    report.rendered()
                ));
            }
            for check in caught_by {
                let caught = if check == BUILD {
                    !report.compiled()
                } else if let Some(Verdict::Fail(f)) = report.verdicts.get(check) {
                    problems.extend(crate::runner::off_lesson(f));
                    true
                } else {
                    false
                };
                if !caught {
                    let got = match report.verdicts.get(check) {
                        _ if check == BUILD => "it compiles".to_owned(),
                        Some(Verdict::Pass) => "it passes".to_owned(),
                        Some(Verdict::NotRun(why)) => format!("not run: {why}"),
                        _ => "no verdict".to_owned(),
                    };
                    problems.push(format!(
                        "half-fix `{name}` ({about}) is not caught by `{check}` ({got})"
                    ));
                }
            }
        }
    }
    problems
}
