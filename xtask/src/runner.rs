//! Building a crate's checks and running them, one verdict per check.
//!
//! A check run is one `cargo test --no-run --message-format=json` per test target (which tells
//! us the compiler's diagnostics and the test binary's path), then the test binary itself, once
//! per check, each run under a time limit in its own process group. Running the binary
//! ourselves instead of through `cargo test` saves a second cargo start-up on the learner's
//! edit-check loop and lets us stop a check that hangs, with whatever it started. The loop is
//! what a learner waits for, so nothing in it waits needlessly: test targets build side by side,
//! a target's checks start the moment cargo names its binary, and for `check` and `watch` a save
//! is rebuilt by rerunning cargo's last compiler commands while nothing else changed (`replay`).
//!
//! A verdict is only as trustworthy as what it is read from: passes come from libtest's log
//! file, never from what the process printed, and a process that died is named as such.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::meta::Meta;
use crate::replay;

/// What one check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The check ran and failed.
    Fail(Failure),
    /// Never ran, and why (the crate does not compile, no test of that name).
    NotRun(String),
}

/// A failed check: what it printed, and where the panic that failed it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The panic message (and an insta diff), cleaned of noise.
    pub message: String,
    pub origin: Origin,
}

/// Where a failure came from decides what the runner may say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An assertion of the check itself: the check's `means` applies.
    Check,
    /// The check did not finish: its watchdog, or the process limit, stopped it.
    Hang,
    /// The test process died (a crash, `exit()`, a signal) before the check's verdict.
    Died,
    /// A panic somewhere else (the harness could not start a server, a dependency): the check
    /// never judged the lesson, so its `means` may not apply.
    Elsewhere(String),
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    pub fn failed(&self) -> bool {
        matches!(self, Verdict::Fail(_))
    }

    fn fail(message: impl Into<String>, origin: Origin) -> Self {
        Verdict::Fail(Failure {
            message: message.into(),
            origin,
        })
    }
}

/// A failure that must be the lesson's, described as a problem when it is not: a check that
/// fails because the harness broke proves nothing about the code under test.
pub fn off_lesson(failure: &Failure) -> Option<String> {
    match &failure.origin {
        Origin::Check | Origin::Hang => None,
        Origin::Died => Some(format!(
            "the test process died instead of a check failing: {}",
            failure.message
        )),
        Origin::Elsewhere(at) => Some(format!(
            "the check failed outside its own assertions (at {at}), not for the lesson's reason:\n{}",
            failure.message
        )),
    }
}

/// The outcome of running every check of one crate.
#[derive(Debug, Default)]
pub struct Report {
    /// `error[CODE]: message` lines of the first build that failed.
    pub diagnostics: Vec<String>,
    /// Why the build failed, for the learner: the compiler's rendered errors, or cargo's own
    /// reason when there is no compiler error (a broken manifest, a missing dependency).
    pub build_error: Option<String>,
    /// Verdicts by check name, for every check the metadata declares, plus `lint`.
    pub verdicts: BTreeMap<String, Verdict>,
    /// Tests the binaries ran that the metadata does not declare.
    pub undeclared: Vec<String>,
    /// How long each check's own process ran, by check name (checks run side by side, so
    /// these overlap; the build is not in them).
    pub durations: BTreeMap<String, Duration>,
    /// Cargo's own output, for `--verbose`.
    pub cargo_output: String,
}

impl Report {
    pub fn compiled(&self) -> bool {
        self.build_error.is_none()
    }

    /// The compiler's (or cargo's) account of a failed build.
    pub fn rendered(&self) -> &str {
        self.build_error.as_deref().unwrap_or_default()
    }

    pub fn all_passed(&self) -> bool {
        self.compiled() && self.verdicts.values().all(Verdict::passed)
    }

    /// One problem per test the binaries ran that the metadata does not declare.
    pub fn undeclared_problems(&self) -> Vec<String> {
        self.undeclared
            .iter()
            .map(|name| format!("test `{name}` is not declared in exercise.toml"))
            .collect()
    }
}

/// How long one check's process may run before it is stopped. Each check has its own
/// watchdog (`harness::watchdog`, 20 s by default) that fires first; this is the backstop
/// for a process that hangs outside the check.
fn process_limit() -> Duration {
    let secs = std::env::var("XTASK_BINARY_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80);
    Duration::from_secs(secs)
}

/// Where a crate is built and its checks run.
pub struct Place<'a> {
    /// The workshop (the checks run from here, and snapshots are found from here).
    pub root: &'a Path,
    /// The cargo workspace that holds the package: the workshop, or the variants' scratch one.
    pub workspace: &'a Path,
    /// The target directory to build into, when not the workspace's own.
    pub target_dir: Option<&'a Path>,
    /// Whether a rebuild may skip cargo by running the compiler commands cargo ran last time
    /// (`replay`): the learner's loop. `verify` and grading always build through cargo.
    pub replay: bool,
}

impl<'a> Place<'a> {
    /// A package of the workshop itself.
    pub fn workshop(root: &'a Path) -> Self {
        Self {
            root,
            workspace: root,
            target_dir: None,
            replay: false,
        }
    }

    /// A package of the workshop, checked for a learner: rebuilds may skip cargo's start-up,
    /// unless `XTASK_REPLAY=0` asks for cargo every time.
    pub fn learner(root: &'a Path) -> Self {
        Self {
            replay: std::env::var_os("XTASK_REPLAY").is_none_or(|v| v != "0"),
            ..Self::workshop(root)
        }
    }

    fn target_dir(&self) -> PathBuf {
        match self.target_dir {
            Some(dir) => dir.to_owned(),
            None => crate::workshop::target_dir(self.workspace),
        }
    }

    /// A `cargo` command that works in this place's workspace and target directory.
    pub fn cargo(&self) -> Command {
        let mut command = cargo();
        command.current_dir(self.workspace).stdin(Stdio::null());
        if let Some(dir) = self.target_dir {
            command.env("CARGO_TARGET_DIR", dir);
        }
        command
    }
}

/// Builds and runs the checks of `package` (the exercise, its solution or a variant).
pub fn run(place: &Place, meta: &Meta, package: &str) -> Result<Report> {
    let mut report = Report::default();
    let targets = meta.targets();
    // Each test target builds and runs beside the others: loom's models build in the `loom`
    // profile and the other checks in the dev one, so neither waits for the other's cargo.
    let done: Vec<Result<(Build, Option<BinaryOutcome>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|target| {
                scope.spawn(move || {
                    build_and_run(place, package, target, &check_names(meta, target))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a check target's thread panicked"))
            .collect()
    });
    // Read in the targets' order, so the first build error reported is always the same one.
    for (target, done) in targets.iter().zip(done) {
        let (build, outcome) = done?;
        let names = check_names(meta, target);
        report.cargo_output.push_str(&build.cargo_output);
        let Some(outcome) = outcome else {
            let why = if build.diagnostics.is_empty() {
                format!("the test target `{target}` could not be built")
            } else {
                "the crate does not compile".to_owned()
            };
            if report.build_error.is_none() {
                report.diagnostics = build.diagnostics;
                report.build_error = Some(build.rendered);
            }
            for name in names {
                report
                    .verdicts
                    .insert(name.to_owned(), Verdict::NotRun(why.clone()));
            }
            continue;
        };
        report.cargo_output.push_str(&outcome.raw);
        for name in &names {
            let verdict = outcome.results.get(*name).cloned().unwrap_or_else(|| {
                Verdict::NotRun(format!("no test named `{name}` in the `{target}` target"))
            });
            report.verdicts.insert((*name).to_owned(), verdict);
            if let Some(elapsed) = outcome.durations.get(*name) {
                report.durations.insert((*name).to_owned(), *elapsed);
            }
        }
        for (name, verdict) in &outcome.results {
            if names.contains(&name.as_str()) {
                continue;
            }
            report.undeclared.push(format!("{target}::{name}"));
            // A failing test nobody declared still means the crate's checks do not all pass.
            if !verdict.passed() {
                report.verdicts.insert(
                    format!("{target}::{name}"),
                    Verdict::fail(
                        "a test the exercise does not declare failed (were the checks edited?)",
                        Origin::Elsewhere(String::new()),
                    ),
                );
            }
        }
    }
    if let Some(lint) = &meta.lint {
        let verdict = if report.compiled() {
            clippy(place, package, &lint.deny, &mut report.cargo_output)?
        } else {
            Verdict::NotRun("the crate does not compile".to_owned())
        };
        report.verdicts.insert("lint".to_owned(), verdict);
    }
    Ok(report)
}

/// The checks the metadata declares in test target `target`.
fn check_names<'m>(meta: &'m Meta, target: &str) -> Vec<&'m str> {
    meta.checks
        .iter()
        .filter(|c| c.target == target)
        .map(|c| c.name.as_str())
        .collect()
}

#[derive(Default)]
struct Build {
    diagnostics: Vec<String>,
    rendered: String,
    cargo_output: String,
}

impl Build {
    /// Keeps a compiler error (cargo's `compiler-message`) for the learner.
    fn note(&mut self, message: &Value) {
        if let Some(line) = diagnostic_line(&message["message"]) {
            self.diagnostics.push(line);
            if let Some(rendered) = message["message"]["rendered"].as_str() {
                self.rendered.push_str(rendered);
            }
        }
    }
}

/// Cargo flags for a test target: loom models run optimised (the workspace's `loom` profile,
/// release plus incremental) with the crate's `loom` feature.
fn target_flags(target: &str) -> Vec<&'static str> {
    if target == "loom" {
        vec!["--profile", "loom", "--features", "loom"]
    } else {
        vec![]
    }
}

/// Builds test target `target` and runs its checks, `names` first. The checks start the moment
/// cargo reports the test binary, while cargo still finishes its own bookkeeping; their
/// verdicts count only if cargo then says the build succeeded.
fn build_and_run(
    place: &Place,
    package: &str,
    target: &str,
    names: &[&str],
) -> Result<(Build, Option<BinaryOutcome>)> {
    let unit = (package, target, &target_flags(target)[..]);
    if place.replay
        && let Some(rebuilt) = replay::rebuild(&place.target_dir(), place.workspace, unit)?
    {
        let mut build = Build {
            cargo_output: rebuilt.log,
            ..Build::default()
        };
        for message in &rebuilt.messages {
            build.note(message);
        }
        let Some(executable) = rebuilt.executable else {
            bail_if_disk_full(&format!("{}{}", build.cargo_output, build.rendered))?;
            if build.rendered.is_empty() {
                build.rendered = build.cargo_output.clone();
            }
            return Ok((build, None));
        };
        let outcome = run_binary(place.root, &executable, names, process_limit())?;
        return Ok((build, Some(outcome)));
    }
    let started = replay::now();
    let mut cargo = place
        .cargo()
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "-p",
            package,
            "--test",
            target,
        ])
        .args(target_flags(target))
        // What cargo ran, for `replay` to run again: `-vv` names each rustc command with the
        // environment cargo gave it.
        .args(place.replay.then_some("-vv"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running cargo test --no-run -p {package}"))?;
    let stdout = cargo.stdout.take().expect("cargo's stdout is piped");
    let mut stderr = cargo.stderr.take().expect("cargo's stderr is piped");
    std::thread::scope(|scope| {
        // Read beside stdout: a cargo that fills its stderr pipe would otherwise stop for good.
        let stderr = scope.spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        let mut build = Build::default();
        let mut checks = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match message["reason"].as_str() {
                Some("compiler-message") => build.note(&message),
                Some("compiler-artifact") => {
                    let is_target = message["target"]["name"].as_str() == Some(target)
                        && message["profile"]["test"].as_bool() == Some(true);
                    if let (true, Some(exe)) = (is_target, message["executable"].as_str()) {
                        let exe = PathBuf::from(exe);
                        checks =
                            Some(scope.spawn(move || {
                                run_binary(place.root, &exe, names, process_limit())
                            }));
                    }
                }
                _ => {}
            }
        }
        let status = cargo
            .wait()
            .with_context(|| format!("waiting for cargo test --no-run -p {package}"))?;
        build.cargo_output = stderr.join().expect("the stderr reader panicked");
        if place.replay {
            replay::record(
                &place.target_dir(),
                place.workspace,
                unit,
                &build.cargo_output,
                started,
            );
        }
        let outcome = checks
            .map(|run| run.join().expect("a check runner panicked"))
            .transpose()?;
        if status.success() {
            return Ok((build, outcome));
        }
        bail_if_disk_full(&build.cargo_output)?;
        if build.rendered.is_empty() {
            // No compiler error to show (a broken manifest, an unknown dependency): cargo's
            // own reason is the only account of what went wrong.
            build.rendered = cargo_errors(&build.cargo_output);
        }
        Ok((build, None))
    })
}

/// A build that failed because the disk is full says nothing about the code: every check
/// after it would fail the same way, so it stops the run with the one reason.
pub fn bail_if_disk_full(cargo_stderr: &str) -> Result<()> {
    if cargo_stderr.contains("No space left on device") {
        let line = cargo_stderr
            .lines()
            .find(|l| l.contains("No space left on device"))
            .unwrap_or_default();
        bail!(
            "the disk is full, so cargo cannot build the checks:\n  {}\n\
             Free some space (`cargo clean` removes every build in target/) and run again.",
            line.trim()
        );
    }
    Ok(())
}

/// Bytes free on the disk that holds `path`, as `df` reports them (None where `df` is missing
/// or says something else).
pub fn free_disk(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let output = Command::new("df").arg("-Pk").arg(existing).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// cargo's account of a failure: its stderr from the first `error` line, without the
/// progress lines (`   Compiling x`) and warnings around it.
fn cargo_errors(stderr: &str) -> String {
    let progress = |line: &str| {
        let trimmed = line.trim_start();
        line.starts_with("  ") && trimmed.starts_with(|c: char| c.is_ascii_uppercase())
    };
    let kept: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("error"))
        .filter(|line| !progress(line))
        .collect();
    if kept.is_empty() {
        stderr.trim_end().to_owned()
    } else {
        kept.join("\n").trim_end().to_owned()
    }
}

/// `error[E0382]: use of moved value: `x``, or `error: message` when there is no code; `None`
/// for warnings and for the summary lines ("aborting due to ...") that carry no span.
pub fn diagnostic_line(message: &Value) -> Option<String> {
    if message["level"].as_str() != Some("error") {
        return None;
    }
    if message["spans"]
        .as_array()
        .is_none_or(|spans| spans.is_empty())
    {
        return None;
    }
    let text = message["message"].as_str()?;
    Some(match message["code"]["code"].as_str() {
        Some(code) => format!("error[{code}]: {text}"),
        None => format!("error: {text}"),
    })
}

/// What the compiler says about a crate that must not compile.
pub struct CompileErrors {
    /// One headline per error (`error[E0382]: use of moved value: ...`).
    pub headlines: Vec<String>,
    /// The full diagnostics as a learner sees them, with the paths that differ from machine
    /// to machine trimmed: the crate's own folder and the registry's.
    pub rendered: String,
}

/// Compiles `package` (a crate that must not compile) and returns its errors.
pub fn compile_errors(root: &Path, package: &str, folder: &str) -> Result<CompileErrors> {
    let output = cargo()
        .current_dir(root)
        .args(["build", "--message-format=json", "-p", package])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running cargo build -p {package}"))?;
    let mut errors = CompileErrors {
        headlines: Vec::new(),
        rendered: String::new(),
    };
    for message in String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-message")
    {
        let Some(headline) = diagnostic_line(&message["message"]) else {
            continue;
        };
        errors.headlines.push(headline);
        let rendered = message["message"]["rendered"].as_str().unwrap_or_default();
        errors.rendered.push_str(&trim_paths(rendered, folder));
    }
    Ok(errors)
}

/// `lessons/junior/compile-fail/x/src/lib.rs` becomes `src/lib.rs`, and
/// `/home/me/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/...`
/// becomes `tokio-1.54.1/src/...`.
fn trim_paths(rendered: &str, folder: &str) -> String {
    let own = format!("{}/", folder.trim_end_matches('/'));
    rendered
        .lines()
        // rustc writes a long type's full name to a file in the target directory, named with
        // hashes that differ from build to build; the note adds nothing a reader can use.
        .filter(|line| {
            !line.contains("the full name for the type has been written to")
                && !line.contains("to print the full type name to the console")
        })
        .map(|line| {
            let line = line.replace(&own, "");
            match (line.find("--> /"), line.find("/registry/src/")) {
                (Some(arrow), Some(registry)) => {
                    let after = &line[registry + "/registry/src/".len()..];
                    let after = after.split_once('/').map_or(after, |(_, rest)| rest);
                    format!("{}--> {after}", &line[..arrow])
                }
                _ => line,
            }
        })
        .map(|line| line + "\n")
        .collect()
}

fn clippy(place: &Place, package: &str, deny: &[String], log: &mut String) -> Result<Verdict> {
    let mut command = place.cargo();
    command.args([
        "clippy",
        "--message-format=json",
        "--all-targets",
        "-p",
        package,
        "--",
    ]);
    for lint in deny {
        command.args(["-D", lint]);
    }
    let output = command.output().with_context(|| {
        format!(
            "running cargo clippy -p {package} (is clippy installed? `rustup component add clippy`)"
        )
    })?;
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    let mut rendered = String::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-message" && diagnostic_line(&message["message"]).is_some()
        {
            rendered.push_str(message["message"]["rendered"].as_str().unwrap_or_default());
        }
    }
    Ok(if output.status.success() {
        Verdict::Pass
    } else if rendered.is_empty() {
        Verdict::fail(
            cargo_errors(&String::from_utf8_lossy(&output.stderr)),
            Origin::Elsewhere(String::new()),
        )
    } else {
        Verdict::fail(rendered, Origin::Check)
    })
}

struct BinaryOutcome {
    results: BTreeMap<String, Verdict>,
    durations: BTreeMap<String, Duration>,
    raw: String,
}

/// Runs every test of a binary, each in a process of its own, and reads each verdict from
/// libtest's log file, which the code under test cannot print into: a service that writes
/// `test x ... ok` to stdout, or calls `exit(0)` halfway, does not pass.
///
/// One process per check, run side by side: a `static` in the code under test (a global
/// counter, a shared `Notify`) cannot carry one check's traffic into another check's verdict,
/// and a crash or a hang is pinned on the check that caused it.
fn run_binary(
    root: &Path,
    executable: &Path,
    names: &[&str],
    limit: Duration,
) -> Result<BinaryOutcome> {
    let mut group_kills = Vec::new();
    // The listing runs beside the declared checks rather than before them, off the learner's
    // wait: it only says which declared checks do not exist and which undeclared tests to run.
    let (listed, mut done) = std::thread::scope(|scope| {
        let listing = scope.spawn(|| list_tests(root, executable));
        let done = run_side_by_side(root, executable, names, limit, &mut group_kills);
        let listed = listing.join().expect("the listing thread panicked");
        Ok::<_, anyhow::Error>((listed?, done?))
    })?;
    // Tests nobody declared run too: a failing one means the checks were edited.
    let undeclared: Vec<&str> = listed
        .iter()
        .map(String::as_str)
        .filter(|t| !names.contains(t))
        .collect();
    done.extend(run_side_by_side(
        root,
        executable,
        &undeclared,
        limit,
        &mut group_kills,
    )?);
    for mut kill in group_kills {
        let _ = kill.wait();
    }
    let mut results = BTreeMap::new();
    let mut durations = BTreeMap::new();
    let mut raw = String::new();
    for (name, verdict, output, elapsed) in done {
        if listed.iter().any(|t| t == name) {
            results.insert(name.to_owned(), verdict);
            durations.insert(name.to_owned(), elapsed);
            raw.push_str(&output);
        } else {
            let why = format!("no test named `{name}` in this target");
            results.insert(name.to_owned(), Verdict::NotRun(why));
        }
    }
    Ok(BinaryOutcome {
        results,
        durations,
        raw,
    })
}

/// Runs `queue`'s checks, a few processes at a time; returns them in `queue`'s order, and adds
/// the `kill` processes that stop what each check left behind to `group_kills`.
fn run_side_by_side<'a>(
    root: &Path,
    executable: &Path,
    queue: &[&'a str],
    limit: Duration,
    group_kills: &mut Vec<Child>,
) -> Result<Vec<(&'a str, Verdict, String, Duration)>> {
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4);
    type Ran = (usize, Verdict, String, Duration, Option<Child>);
    let mut done: Vec<Ran> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<Vec<Ran>> {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = queue.get(i) else {
                            return Ok(mine);
                        };
                        let (process, kill) = run_process(root, executable, name, limit)?;
                        let verdict = process.verdict(name);
                        mine.push((i, verdict, process.raw, process.elapsed, kill));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.join().expect("a check worker panicked")?);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    done.sort_by_key(|(i, ..)| *i);
    Ok(done
        .into_iter()
        .map(|(i, verdict, raw, elapsed, kill)| {
            group_kills.extend(kill);
            (queue[i], verdict, raw, elapsed)
        })
        .collect())
}

/// The binary's tests, from `--list`, which runs none of the code under test.
fn list_tests(root: &Path, executable: &Path) -> Result<Vec<String>> {
    let output = Command::new(executable)
        .current_dir(root)
        .args(["--list", "--format", "terse"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("listing the tests of {}", executable.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

/// One run of a test binary, for one check.
struct Process {
    status: Option<std::process::ExitStatus>,
    /// Stopped at the time limit.
    stopped: bool,
    limit: Duration,
    /// From the start of the process to its end (or to its stop at the limit).
    elapsed: Duration,
    log: String,
    stdout: String,
    raw: String,
}

impl Process {
    /// The binary ran to its end and exited as libtest does: 0, or 101 for failures.
    fn completed(&self) -> bool {
        !self.stopped
            && self
                .status
                .and_then(|s| s.code())
                .is_some_and(|c| c == 0 || c == 101)
            && self.stdout.lines().any(|l| l.starts_with("test result: "))
    }

    /// The check's verdict from the log file (libtest writes a line when a test finishes; the
    /// code under test cannot print into it), with its failure message from stdout. A process
    /// that did not end as a test binary ends has no verdict but its death, whatever it logged.
    fn verdict(&self, name: &str) -> Verdict {
        let logged = self
            .log
            .lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(_, test)| *test == name)
            .map(|(status, _)| status);
        match logged {
            Some("failed") => parse_libtest(&self.stdout)
                .remove(name)
                .filter(Verdict::failed)
                .unwrap_or_else(|| Verdict::fail("", Origin::Check)),
            _ if !self.completed() => self.death(name),
            Some("ok") => Verdict::Pass,
            Some("ignored") => Verdict::NotRun("ignored".to_owned()),
            _ => Verdict::NotRun(format!("no test named `{name}` ran")),
        }
    }

    /// What to say about a check that has no verdict because the process died or was stopped.
    fn death(&self, name: &str) -> Verdict {
        if self.stopped {
            return Verdict::fail(
                format!(
                    "this check did not finish: the test process was stopped after {} s. A hang \
                     outside the check's own watchdog usually means a thread that never yields \
                     (a blocking loop, a lock that is never released).",
                    self.limit.as_secs()
                ),
                Origin::Hang,
            );
        }
        let tail = last_lines(&self.raw, 6);
        let how = describe_exit(self.status, &self.raw);
        Verdict::fail(
            format!("the test process {how} while `{name}` was running.\n{tail}"),
            Origin::Died,
        )
    }
}

/// Runs one check in a process of its own. Also returns the `kill` that stops whatever the
/// check left behind in its process group, still running: the caller reaps it later, so that
/// no check waits for it.
fn run_process(
    root: &Path,
    executable: &Path,
    name: &str,
    limit: Duration,
) -> Result<(Process, Option<Child>)> {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let scratch = std::env::temp_dir().join(format!(
        "xtask-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let log = scratch.join("log");
    // Files, not pipes: a process the checked code started and left behind may hold its
    // parent's stdout open forever, and a pipe would keep us reading until it exits.
    let stdout_path = scratch.join("stdout");
    let stderr_path = scratch.join("stderr");
    let mut command = Command::new(executable);
    command
        .current_dir(root)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path)?)
        .stderr(fs::File::create(&stderr_path)?);
    command.args(["--exact", name]);
    clean_environment(&mut command, root);
    own_process_group(&mut command);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", executable.display()))?;
    let started = Instant::now();
    let mut stopped = false;
    // Most checks end within a few milliseconds: look again soon, then less and less often.
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > limit {
            stopped = true;
            break None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    // Whatever the checked code started dies with the binary: nothing may outlive a check.
    let group_kill = kill_group(&mut child, stopped);
    let read =
        |path: &Path| String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    let stdout = read(&stdout_path);
    let process = Process {
        status,
        stopped,
        limit,
        elapsed,
        log: read(&log),
        raw: format!("{stdout}{}", read(&stderr_path)),
        stdout,
    };
    let _ = fs::remove_dir_all(&scratch);
    Ok((process, group_kill))
}

/// Variables that change how tests behave are the checks' business, not the environment's:
/// `INSTA_FORCE_PASS` would pass every snapshot, `LOOM_MAX_PREEMPTIONS=0` would blind loom,
/// `RUST_TEST_THREADS` or `TOKIO_WORKER_THREADS` would change the schedules the checks rely on.
fn clean_environment(command: &mut Command, root: &Path) {
    const PREFIXES: &[&str] = &["INSTA_", "RUST_TEST_", "LOOM_", "TOKIO_", "RUST_MIN_STACK"];
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if PREFIXES.iter().any(|p| key_text.starts_with(p)) || key_text == "CI" {
            command.env_remove(&key);
        }
    }
    command
        // Snapshots are compared, never written: a learner's run must not change the checks.
        .env("INSTA_UPDATE", "no")
        .env("INSTA_WORKSPACE_ROOT", root)
        .env("RUST_BACKTRACE", "0");
}

#[cfg(unix)]
fn own_process_group(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(not(unix))]
fn own_process_group(_command: &mut Command) {}

/// Stops the test binary and every process in its group. For a binary that has ended, the
/// `kill` of the rest of its group is returned still running (it takes a few milliseconds to
/// start); for one stopped at its limit, it is waited for.
fn kill_group(child: &mut Child, stopped: bool) -> Option<Child> {
    #[cfg(unix)]
    let kill = Command::new("kill")
        // The group's id is the binary's pid (`process_group(0)`); `kill` is in every unix.
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
    #[cfg(not(unix))]
    let kill: Option<Child> = None;
    if !stopped {
        return kill;
    }
    if let Some(mut kill) = kill {
        let _ = kill.wait();
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// "crashed with a stack overflow", "called exit(3)", ...: how a test process ended early.
fn describe_exit(status: Option<std::process::ExitStatus>, output: &str) -> String {
    if output.contains("has overflowed its stack") {
        return "crashed with a stack overflow (unbounded recursion?)".to_owned();
    }
    if output.contains("memory allocation of") && output.contains("failed") {
        return "ran out of memory".to_owned();
    }
    let Some(status) = status else {
        return "was stopped".to_owned();
    };
    if let Some(code) = status.code() {
        return format!("exited with code {code} (something called `std::process::exit({code})`)");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => "SIGABRT: the process aborted (a panic while panicking, or `abort()`)",
                9 => "SIGKILL: killed from outside, often by the out-of-memory killer",
                11 => "SIGSEGV: a segmentation fault",
                15 => "SIGTERM",
                _ => "a signal",
            };
            return format!("was killed by signal {signal} ({name})");
        }
    }
    format!("ended abnormally ({status})")
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Set by `verify`, which builds hundreds of crates exactly once each: incremental caches would
/// only cost time, and half the disk a fresh clone needs (8 of 16 GB with 29 exercises).
static NOT_INCREMENTAL: AtomicBool = AtomicBool::new(false);

/// Every cargo this process starts from now on builds without incremental caches.
pub fn build_each_crate_once() {
    NOT_INCREMENTAL.store(true, Ordering::Relaxed);
}

/// The cargo that runs this xtask, as a command.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    if NOT_INCREMENTAL.load(Ordering::Relaxed) {
        command.env("CARGO_INCREMENTAL", "0");
    }
    command
}

/// Reads the failures out of libtest's plain output: the captured output of each failed test
/// between `---- NAME stdout ----` markers. (Which tests passed comes from the log file.)
pub fn parse_libtest(out: &str) -> BTreeMap<String, Verdict> {
    let mut results = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let finish = |current: &mut Option<(String, String)>,
                  results: &mut BTreeMap<String, Verdict>| {
        if let Some((name, text)) = current.take() {
            results.insert(name, Verdict::Fail(clean_failure(&text)));
        }
    };
    for line in out.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            finish(&mut current, &mut results);
            current = Some((name.to_owned(), String::new()));
        } else if line == "failures:" || line.starts_with("test result:") {
            finish(&mut current, &mut results);
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    finish(&mut current, &mut results);
    results
}

/// Where a panic happened, from libtest's `thread 'x' (12) panicked at PATH:LINE:COL:` line.
fn panic_location(line: &str) -> Option<&str> {
    if !line.starts_with("thread '") {
        return None;
    }
    let at = line.split_once(" panicked at ")?.1;
    Some(at.strip_suffix(':').unwrap_or(at))
}

/// The learner's own code: an exercise's (or a variant's) `src/`.
fn is_learner_code(location: &str) -> bool {
    let path = location.replace('\\', "/");
    path.contains("/src/")
        && (path.starts_with("exercises/")
            || path.starts_with("src/")
            || path.contains("/variants/")
            || path.contains("/exercises/"))
}

/// Keeps what a learner needs from a failure's output: the check's message (and an insta diff),
/// where the learner's own code panicked, and nothing of thread ids, backtrace notes or insta's
/// advice to run its own tool (a snapshot here is the lesson's expectation, never updated).
fn clean_failure(text: &str) -> Failure {
    let mut kept = Vec::new();
    let mut last_panic: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("note: run with `RUST_BACKTRACE")
            || line.contains("cargo insta")
            || line.contains("INSTA_")
            || line.starts_with("Stopped on the first failure")
        {
            continue;
        }
        if let Some(location) = panic_location(line) {
            if is_learner_code(location) {
                kept.push(format!("your code panicked at {}:", short_path(location)));
            }
            last_panic = Some(location.to_owned());
            continue;
        }
        kept.push(line.to_owned());
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    while kept.first().is_some_and(|l| l.trim().is_empty()) {
        kept.remove(0);
    }
    let origin = match last_panic {
        None => Origin::Check,
        Some(at) if at.contains("watchdog.rs") => Origin::Hang,
        // insta's assertion panics inside insta: a snapshot that differs is the check's verdict.
        Some(at) if at.contains("/insta-") => Origin::Check,
        Some(at) if at.replace('\\', "/").contains("/tests/") => Origin::Check,
        Some(at) => Origin::Elsewhere(short_path(&at)),
    };
    Failure {
        message: kept.join("\n"),
        origin,
    }
}

/// `src/lib.rs:12:5` rather than an absolute path into a scratch crate.
fn short_path(location: &str) -> String {
    let path = location.replace('\\', "/");
    match path.rfind("/src/") {
        Some(i) if is_learner_code(&path) => path[i + 1..].to_owned(),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
running 3 tests
test b ... ok
test a ... FAILED
test c ... ignored, slow

failures:

---- a stdout ----

thread 'a' (123) panicked at exercises/junior/x/tests/checks.rs:28:9:
assertion `left == right` failed: one connection carried three requests
  left: \"1\"
 right: \"3\"
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    a

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.09s
";

    #[test]
    fn parses_failure_messages() {
        let results = parse_libtest(OUTPUT);
        assert_eq!(
            results.len(),
            1,
            "passes come from the log file, not stdout"
        );
        assert_eq!(
            results["a"],
            Verdict::fail(
                "assertion `left == right` failed: one connection carried three requests\n  left: \"1\"\n right: \"3\"",
                Origin::Check
            )
        );
    }

    #[test]
    fn a_panic_in_the_learners_code_is_located_and_the_origin_is_the_last_panic() {
        let text =
            "thread 'tokio-runtime-worker' (9) panicked at exercises/junior/x/src/lib.rs:40:18:
called `Option::unwrap()` on a `None` value
thread 'a' (8) panicked at harness/src/server.rs:12:5:
the server did not start
";
        let failure = clean_failure(text);
        assert_eq!(
            failure.message,
            "your code panicked at src/lib.rs:40:18:\ncalled `Option::unwrap()` on a `None` value\nthe server did not start"
        );
        assert_eq!(
            failure.origin,
            Origin::Elsewhere("harness/src/server.rs:12:5".to_owned())
        );
    }

    #[test]
    fn a_full_disk_stops_the_run_with_its_reason() {
        let stderr = "   Compiling tokio v1.54.0\nerror: failed to write `target/x.rlib`: \
                      No space left on device (os error 28)\n";
        let why = bail_if_disk_full(stderr).unwrap_err().to_string();
        assert!(why.contains("the disk is full"), "{why}");
        assert!(why.contains("os error 28"), "{why}");
        assert!(bail_if_disk_full("error[E0382]: borrow of moved value: `body`").is_ok());
    }

    #[test]
    fn insta_advice_is_dropped() {
        let failure = clean_failure(
            "Snapshot: transcript\n-old\n+new\nTo update snapshots run `cargo insta review`\n",
        );
        assert_eq!(failure.message, "Snapshot: transcript\n-old\n+new");
    }
}
