//! `cargo xtask verify`: everything CI needs, in one command.
//!
//! For every exercise: the untouched crate fails exactly the checks its metadata declares (a
//! compile-fail exercise with exactly the declared diagnostics) and its solution passes every
//! check. Then the lessons: their tests pass and their compile-fail cases still fail with the
//! recorded diagnostics. Then the book builds with every include and link resolving.
//! Each exercise's maintainer variants: every half-fix fails the checks it names, every right
//! fix passes every check. `--repeat N` runs every verdict N times, to expose flaky checks
//! (the variants a tenth as often, rounded up: they are many, and each is built once). Variants
//! run side by side, one per core (`VERIFY_JOBS` overrides).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::book;
use crate::meta::Meta;
use crate::runner::{self, Place, Verdict};
use crate::seal;
use crate::variants::{self, Variants};
use crate::workshop::{Exercise, Workshop};

pub struct Options {
    pub repeat: usize,
    /// Rewrite the compile-fail lessons' `expected.txt` from the compiler.
    pub bless: bool,
    /// Skip the book (for a quick run while writing exercises).
    pub skip_book: bool,
    /// Only these exercises (ids); empty means all.
    pub only: Vec<String>,
}

pub fn verify(workshop: &Workshop, options: &Options) -> Result<()> {
    let started = Instant::now();
    runner::build_each_crate_once();
    let mut tally = Tally::default();

    section("structure");
    tally.unit(structure(workshop)?);

    let exercises: Vec<&Exercise> = if options.only.is_empty() {
        workshop.exercises.iter().collect()
    } else {
        options
            .only
            .iter()
            .map(|id| workshop.find(id))
            .collect::<Result<_>>()?
    };
    // Every exercise's variants are written out, whatever `--only` says: the scratch workspace
    // is then the same for every run, and two runs side by side do not undo each other.
    let declared: Vec<(&Exercise, Variants)> = workshop
        .exercises
        .iter()
        .map(|e| Ok((e, variants::load(workshop, e)?)))
        .collect::<Result<_>>()?;
    let declared_refs: Vec<(&Exercise, &Variants)> =
        declared.iter().map(|(e, v)| (*e, v)).collect();
    let mut built = variants::materialise(workshop, &declared_refs)?;
    built.retain(|(e, _)| exercises.iter().any(|chosen| chosen.meta.id == e.meta.id));
    let scratch = variants::scratch_root(workshop);
    // The main target directory: the variants reuse the dependencies built for the exercises.
    let target = crate::workshop::target_dir(&workshop.root);
    let variant_place = Place {
        root: &workshop.root,
        workspace: &scratch,
        target_dir: Some(&target),
        replay: false,
    };
    let variant_rounds = variant_rounds(options.repeat);

    // One cargo for every crate's checks, before the rounds: cargo then builds them in
    // parallel, where the rounds below build one crate at a time (each holds the target
    // directory's lock). Each unit's own build is then a no-op. Crates that do not compile
    // (compile-fail lessons, half-fixes caught by the build) are expected; their verdicts
    // come from the rounds, so this build's outcome is ignored.
    section("building the checks of every exercise, solution and variant");
    let t = Instant::now();
    let mut packages = Vec::new();
    for exercise in &exercises {
        for package in [exercise.package(), exercise.solution_package()] {
            packages.push((&exercise.meta, package));
        }
    }
    if let Some(free) = runner::free_disk(&target) {
        println!(
            "  {:.1} GB free on the target directory's disk",
            free as f64 / 1e9
        );
    }
    prebuild(&Place::workshop(&workshop.root), &packages)?;
    let variant_packages: Vec<(&Meta, String)> = built
        .iter()
        .flat_map(|(e, variants)| variants.iter().map(|v| (&e.meta, v.package.clone())))
        .collect();
    prebuild(&variant_place, &variant_packages)?;
    println!(
        "  {} crates built ({:.1} s)",
        packages.len() + variant_packages.len(),
        t.elapsed().as_secs_f64()
    );

    for round in 1..=options.repeat {
        section(&format!("exercises, round {round} of {}", options.repeat));
        for exercise in &exercises {
            let t = Instant::now();
            let found = exercise_problems(workshop, exercise)?;
            report_unit(
                &mut tally,
                &exercise.meta.id,
                &exercise.meta.slug,
                round,
                t,
                found,
            );
        }
        if round > variant_rounds {
            continue;
        }
        section(&format!(
            "half-fixes and right fixes, round {round} of {variant_rounds}"
        ));
        let units: Vec<_> = built
            .iter()
            .flat_map(|(exercise, variants)| variants.iter().map(move |v| (*exercise, v)))
            .collect();
        let mut failure = None;
        in_parallel(
            &units,
            |(exercise, variant)| {
                let t = Instant::now();
                let report = runner::run(&variant_place, &exercise.meta, &variant.package);
                (report.map(|r| variants::judge(variant, &r)), t)
            },
            |(exercise, variant), (found, t)| {
                let kind = if variant.caught_by.is_some() {
                    "half"
                } else {
                    "right"
                };
                let label = format!("{kind} {}", variant.name);
                match found {
                    Ok(found) => {
                        report_unit(&mut tally, &exercise.meta.id, &label, round, t, found)
                    }
                    Err(e) => failure = failure.take().or(Some(e)),
                }
            },
        );
        if let Some(e) = failure {
            return Err(e);
        }
    }

    if options.only.is_empty() {
        section("lessons");
        for round in 1..=options.repeat {
            tally.unit(lessons(workshop, round)?);
        }
        section("the template under a slow attack (slowhttptest)");
        tally.unit(crate::attack::run(&workshop.root)?);
        section("compile-fail lessons");
        for found in compile_fail_lessons(workshop, options.bless)? {
            tally.unit(found);
        }
        section("style");
        tally.unit(cargo_ok(
            &workshop.root,
            &["fmt", "--all", "--check"],
            "cargo fmt --check",
        )?);
        tally.unit(cargo_ok(
            &workshop.root,
            &with_runner(&["fmt", "--check"]),
            "cargo fmt --check (runner)",
        )?);
        tally.unit(rustfmt_variants(workshop)?);
        tally.unit(clippy(workshop)?);
        tally.unit(cargo_ok(
            &workshop.root,
            &with_runner(&["clippy", "-q", "--all-targets", "--", "-D", "warnings"]),
            "cargo clippy -D warnings (runner)",
        )?);
        section("runner and harness tests");
        tally.unit(cargo_ok(
            &workshop.root,
            &["test", "-q", "-p", "harness"],
            "tests of the harness",
        )?);
        tally.unit(cargo_ok(
            &workshop.root,
            &with_runner(&["test", "-q"]),
            "tests of the runner",
        )?);
        if !options.skip_book {
            section("book");
            tally.unit(book::build_and_check(workshop)?);
        }
    }

    println!();
    if tally.problems.is_empty() {
        println!(
            "Everything holds ({:.0} s).",
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("verify found {} problem(s):", tally.problems.len());
        for problem in &tally.problems {
            println!("  - {}", problem.replace('\n', "\n    "));
        }
    }
    // The closing line, counted like a test runner's: one unit is an exercise with its
    // solution in one round, a lesson run, a compile-fail case, a style gate, the runner's
    // tests, the book.
    println!("verify: {} passed, {} failed", tally.passed, tally.failed);
    if tally.problems.is_empty() {
        Ok(())
    } else {
        bail!("verify failed")
    }
}

/// How many variants run at once: one per core, at most four. The variants of a round are
/// independent crates whose checks spend most of their time waiting (on the paused clock, on
/// loopback); their builds share one target directory, whose lock cargo takes in turn.
/// `VERIFY_JOBS=1` runs them one after another.
fn jobs() -> usize {
    std::env::var("VERIFY_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4)
        })
}

/// Runs `work` on every unit, `jobs()` at a time, and hands each result to `done` on this
/// thread as soon as it is ready (so verdicts print as they come, not in the units' order).
fn in_parallel<T: Sync, R: Send>(
    units: &[T],
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(&T, R),
) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..jobs().min(units.len()) {
            let (tx, next, work) = (tx.clone(), &next, &work);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(unit) = units.get(i) else { break };
                    if tx.send((i, work(unit))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, result) in rx {
            done(&units[i], result);
        }
    });
}

/// Builds every test target of `packages` (each with the metadata that names its targets), one
/// cargo invocation per target, going on past the crates that do not compile
/// (`--no-fail-fast`). The loom models build in their own profile with their crate's feature,
/// as the runner builds them. Only an optimisation: nothing is judged from it, but a full disk
/// stops verify here, where every verdict after it would fail for that one reason.
fn prebuild(place: &Place, packages: &[(&Meta, String)]) -> Result<()> {
    let mut targets: Vec<String> = Vec::new();
    for (meta, _) in packages {
        for target in meta.targets() {
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    for target in &targets {
        let chosen: Vec<&String> = packages
            .iter()
            .filter(|(meta, _)| meta.targets().contains(target))
            .map(|(_, package)| package)
            .collect();
        let mut args: Vec<String> = ["test", "--no-run", "--no-fail-fast", "-q", "--test"]
            .map(String::from)
            .to_vec();
        args.push(target.clone());
        if target == "loom" {
            // `--features loom` would ask every chosen crate for the feature by that name;
            // `<crate>/loom` names each one, as a build of one crate with `--features` does.
            args.extend(["--profile", "loom"].map(String::from));
            let features: Vec<String> = chosen.iter().map(|p| format!("{p}/loom")).collect();
            args.extend(["--features".to_string(), features.join(",")]);
        }
        for package in chosen {
            args.extend(["-p".to_string(), package.clone()]);
        }
        let output = place
            .cargo()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("running cargo test --no-run for every crate")?;
        runner::bail_if_disk_full(&String::from_utf8_lossy(&output.stderr))?;
    }
    Ok(())
}

/// Variants run a tenth as many rounds as the exercises, rounded up, and never fewer than
/// one: CI's `--repeat 10` proves each of the 600-odd variants once, and every exercise and
/// solution ten times. With two rounds a fresh clone's run took 50 minutes on the 2-core
/// machine, past CI's 45 (the staff level's loom variants are the dearest); the first round is
/// most of the cost (it builds each variant), a later one about four minutes.
fn variant_rounds(repeat: usize) -> usize {
    repeat.div_ceil(10).max(1)
}

/// Prints one line of verdict and counts it.
fn report_unit(
    tally: &mut Tally,
    id: &str,
    label: &str,
    round: usize,
    started: Instant,
    found: Vec<String>,
) {
    let verdict = if found.is_empty() { "ok" } else { "FAILED" };
    println!(
        "  {id:<4} {label:<40} {verdict} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    tally.unit(
        found
            .into_iter()
            .map(|p| format!("{id} (round {round}): {p}"))
            .collect(),
    );
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    problems: Vec<String>,
}

impl Tally {
    /// Records one unit of proof and the problems it found.
    fn unit(&mut self, problems: Vec<String>) {
        if problems.is_empty() {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.problems.extend(problems);
        }
    }
}

fn section(name: &str) {
    println!("\n== {name}");
}

/// Metadata that must agree with the files on disk.
fn structure(workshop: &Workshop) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for e in &workshop.exercises {
        for (what, path) in [
            ("task statement", e.dir.join("README.md")),
            ("solution", e.solution_dir.join("src")),
            ("solution note", e.solution_dir.join("WHY.md")),
            ("book page", e.page.clone()),
        ] {
            if !workshop.path(&path).exists() {
                problems.push(format!(
                    "{}: its {what} {} is missing",
                    e.meta.id,
                    path.display()
                ));
            }
        }
    }
    for e in &workshop.exercises {
        // The hints must not sit in the folder the learner edits, a file away from the code.
        let stray = e.dir.join(crate::workshop::META);
        if workshop.path(&stray).exists() {
            problems.push(format!(
                "{}: {} belongs beside the solution, at {}",
                e.meta.id,
                stray.display(),
                e.meta_file().display()
            ));
        }
        let declared = variants::load(workshop, e)?;
        problems.extend(variants::problems(workshop, e, &declared));
    }
    // The interview bank's fields (core facts, tiered follow-ups) and the tests it cites.
    problems.extend(crate::interview::problems(&workshop.root));
    let stale = seal::stale(workshop)?;
    if !stale.is_empty() {
        problems.push(format!(
            "exercises/CHECKSUMS is out of date for: {}. Run `cargo xtask seal` after changing checks.",
            stale.join(", ")
        ));
    }
    println!(
        "  {} exercises, {} problem(s)",
        workshop.exercises.len(),
        problems.len()
    );
    Ok(problems)
}

/// Everything wrong with one exercise and its solution, as sentences.
pub fn exercise_problems(workshop: &Workshop, e: &Exercise) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let place = Place::workshop(&workshop.root);
    let given = runner::run(&place, &e.meta, &e.package())?;
    problems.extend(given.undeclared_problems());
    match &e.meta.compile_fail {
        Some(cf) => {
            if given.compiled() {
                problems.push(
                    "the untouched exercise compiles, but it is a compile-fail lesson".to_owned(),
                );
            } else if given.diagnostics != cf.diagnostics {
                problems.push(format!(
                    "the untouched exercise fails with\n{}\nbut exercise.toml declares\n{}",
                    given.diagnostics.join("\n"),
                    cf.diagnostics.join("\n")
                ));
            }
        }
        None => {
            if !given.compiled() {
                problems.push(format!(
                    "the untouched exercise does not compile:\n{}",
                    given.rendered()
                ));
            }
            for check in &e.meta.checks {
                match (check.fails_on_bug, given.verdicts.get(&check.name)) {
                    (true, Some(Verdict::Fail(f))) => problems.extend(runner::off_lesson(f)),
                    (false, Some(Verdict::Pass)) => {}
                    (true, Some(Verdict::Pass)) => problems.push(format!(
                        "`{}` passes on the planted bug; it must fail",
                        check.name
                    )),
                    (false, Some(Verdict::Fail(f))) => problems.push(format!(
                        "`{}` fails on the untouched exercise but is declared to pass:\n{}",
                        check.name, f.message
                    )),
                    (_, other) => problems.push(format!(
                        "`{}` did not run on the exercise: {other:?}",
                        check.name
                    )),
                }
            }
            if let Some(lint) = &e.meta.lint {
                let failed = matches!(given.verdicts.get("lint"), Some(Verdict::Fail(_)));
                if failed != lint.fails_on_bug {
                    problems.push(format!(
                        "the lint check {} on the untouched exercise",
                        if failed { "fails" } else { "passes" }
                    ));
                }
            }
        }
    }

    let solved = runner::run(&place, &e.meta, &e.solution_package())?;
    problems.extend(solved.undeclared_problems());
    if !solved.compiled() {
        problems.push(format!(
            "the solution does not compile:\n{}",
            solved.rendered()
        ));
    } else {
        for (name, verdict) in &solved.verdicts {
            match verdict {
                Verdict::Pass => {}
                Verdict::Fail(f) => {
                    problems.push(format!("the solution fails `{name}`:\n{}", f.message))
                }
                Verdict::NotRun(why) => {
                    problems.push(format!("`{name}` did not run on the solution: {why}"))
                }
            }
        }
    }
    Ok(problems)
}

/// A cargo command for the runner's own workspace (`xtask/`), built where `cargo xtask` builds.
fn with_runner<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let mut full = args[..split].to_vec();
    full.extend(["--manifest-path", "xtask/Cargo.toml"]);
    if args[0] != "fmt" {
        full.extend(["--target-dir", "target/xtask"]);
    }
    full.extend(&args[split..]);
    full
}

/// The variants are not part of any crate that `cargo fmt` walks: format-check them one by one.
/// Each file goes through rustfmt's stdin, so its `mod sync;` is not followed to a file that
/// only the exercise has.
fn rustfmt_variants(workshop: &Workshop) -> Result<Vec<String>> {
    use std::io::Write as _;
    let mut files = Vec::new();
    for exercise in &workshop.exercises {
        collect_rs(
            &workshop.path(exercise.solution_dir.join("variants")),
            &mut files,
        );
    }
    let mut unformatted = Vec::new();
    for file in &files {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut child = Command::new("rustfmt")
            .args(["--edition", "2024", "--emit", "stdout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running rustfmt (`rustup component add rustfmt`)")?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())?;
        let output = child.wait_with_output()?;
        if !output.status.success() || output.stdout != text.as_bytes() {
            let rel = file.strip_prefix(&workshop.root).unwrap_or(file);
            unformatted.push(rel.display().to_string());
        }
    }
    if unformatted.is_empty() {
        println!("  rustfmt --check (variants): ok");
        Ok(vec![])
    } else {
        println!("  rustfmt --check (variants): FAILED");
        Ok(vec![format!(
            "variants not formatted (rustfmt --edition 2024 FILE):\n{}",
            unformatted.join("\n")
        )])
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Clippy with warnings denied on everything that is meant to be right: the harness, the
/// lessons and the solutions (the runner is linted in its own workspace). Exercises are left out: they plant the bugs (and
/// sometimes the lints) that the lessons are about.
fn clippy(workshop: &Workshop) -> Result<Vec<String>> {
    let mut packages = vec!["harness".to_owned()];
    packages.extend(lesson_packages(workshop));
    packages.extend(workshop.exercises.iter().map(Exercise::solution_package));
    let mut args = vec![
        "clippy".to_owned(),
        "-q".to_owned(),
        "--all-targets".to_owned(),
    ];
    for package in packages {
        args.push("-p".to_owned());
        args.push(package);
    }
    args.extend(["--".to_owned(), "-D".to_owned(), "warnings".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cargo_ok(&workshop.root, &args, "cargo clippy -D warnings")
}

/// Every crate in `lessons/` (one per level, and the interview bank's): `lessons-<folder>`.
fn lesson_packages(workshop: &Workshop) -> Vec<String> {
    let mut packages: Vec<String> = fs::read_dir(workshop.path("lessons"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| format!("lessons-{}", entry.file_name().to_string_lossy()))
        .collect();
    packages.sort();
    packages
}

fn lessons(workshop: &Workshop, round: usize) -> Result<Vec<String>> {
    let mut args = vec!["test".to_owned(), "-q".to_owned()];
    for package in lesson_packages(workshop) {
        args.push("-p".to_owned());
        args.push(package);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cargo_ok(
        &workshop.root,
        &args,
        &format!("lesson tests (round {round})"),
    )
}

/// Every `lessons/<level>/compile-fail/<case>/` must fail with its `expected.txt`.
/// Every `lessons/<level>/compile-fail/<case>/` must fail with its `expected.txt`; one list
/// of problems per case.
fn compile_fail_lessons(workshop: &Workshop, bless: bool) -> Result<Vec<Vec<String>>> {
    let mut results = Vec::new();
    for level in crate::workshop::LEVELS {
        let dir = workshop.path(format!("lessons/{level}/compile-fail"));
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut cases: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("Cargo.toml").is_file())
            .collect();
        cases.sort();
        for case in cases {
            let name = case
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let package = format!("cf-{level}-{name}");
            let folder = format!("lessons/{level}/compile-fail/{name}");
            let errors = runner::compile_errors(&workshop.root, &package, &folder)?;
            let got = errors.headlines;
            let expected_path = case.join("expected.txt");
            // The whole diagnostic, as the book shows it; a snapshot kept current here.
            let diagnostic_path = case.join("diagnostic.txt");
            if bless {
                fs::write(&expected_path, got.join("\n") + "\n")
                    .with_context(|| format!("writing {}", expected_path.display()))?;
                fs::write(&diagnostic_path, &errors.rendered)
                    .with_context(|| format!("writing {}", diagnostic_path.display()))?;
                println!("  {package}: blessed");
                results.push(vec![]);
                continue;
            }
            let expected = fs::read_to_string(&expected_path).unwrap_or_default();
            let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
            let diagnostic = fs::read_to_string(&diagnostic_path).unwrap_or_default();
            let problem = if got.is_empty() {
                Some(format!(
                    "{package} compiles, but it is a compile-fail listing"
                ))
            } else if got != expected {
                Some(format!(
                    "{package}: the compiler now says\n{}\nbut expected.txt has\n{}\n(run `cargo xtask verify --bless` if the change is intended)",
                    got.join("\n"),
                    expected.join("\n")
                ))
            } else if diagnostic != errors.rendered {
                Some(format!(
                    "{package}: the full diagnostic differs from diagnostic.txt, which the book shows; it is now\n{}\n(run `cargo xtask verify --bless` if the change is intended)",
                    errors.rendered
                ))
            } else {
                None
            };
            println!(
                "  {package}: {}",
                if problem.is_some() { "FAILED" } else { "ok" }
            );
            results.push(problem.into_iter().collect());
        }
    }
    Ok(results)
}

/// Runs cargo with `args`; a failure becomes one problem carrying cargo's output.
pub fn cargo_ok(root: &Path, args: &[&str], what: &str) -> Result<Vec<String>> {
    let t = Instant::now();
    let output = runner::cargo()
        .current_dir(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if output.status.success() {
        println!("  {what}: ok ({:.1} s)", t.elapsed().as_secs_f64());
        Ok(vec![])
    } else {
        println!("  {what}: FAILED");
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let tail: Vec<&str> = text
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Ok(vec![format!(
            "{what} failed (`cargo {}`):\n{}",
            args.join(" "),
            tail.join("\n")
        )])
    }
}
