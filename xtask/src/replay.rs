//! The learner's loop without cargo's start-up: after a save, the exercise's library and its
//! checks are rebuilt by running the two `rustc` commands cargo ran for them last time.
//!
//! A save changes one file of one crate, yet `cargo test --no-run` spends 120-180 ms (on the
//! 2-core machine, with the workshop's hundred packages) loading every manifest and resolving
//! the whole workspace before it decides to rebuild exactly those two crates. `check` and
//! `watch` record what cargo ran (its `-vv` output names each `rustc` command with the
//! environment cargo gave it) and, while nothing cargo would read has changed since, run those
//! commands themselves: the same compiler, arguments, environment and output files, so the same
//! test binary. Whenever anything else has changed, or a command is missing, cargo builds as
//! before, and its new commands are recorded.
//!
//! What "nothing cargo would read" covers (the `World`): every manifest and `Cargo.lock`, cargo's
//! configuration files, the toolchain file and the compiler itself, the sources of the
//! workspace's path dependencies (the harness), and the environment variables that steer cargo
//! or rustc. A unit is rebuilt when a file its last compilation read (rustc's dep-info) or a
//! library it links has changed since that compilation started, as cargo decides. Only `check`
//! and `watch` take this path; `verify` and grading always build through cargo.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One `rustc` command cargo ran, and when it started (nanoseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unit {
    cwd: PathBuf,
    env: Vec<(String, String)>,
    program: PathBuf,
    args: Vec<String>,
    started: u128,
}

/// A file's identity as cargo would notice a change: its length and modification time.
type Stamp = Option<(u64, u128)>;

/// Everything outside the recorded units that could make cargo build differently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct World {
    env: Vec<(String, String)>,
    files: Vec<(PathBuf, Stamp)>,
}

/// What one test target of one package needs: its units in build order (the library, then the
/// test binary), as recorded, and the world they were recorded in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plan {
    world: World,
    /// Keyed by each unit's main output (the `.rlib` or the test executable).
    units: BTreeMap<PathBuf, Unit>,
    /// The test executable, last in the build order.
    executable: PathBuf,
}

/// A build this module did in cargo's place.
pub struct Rebuilt {
    /// The compiler's messages, shaped as cargo's `compiler-message` JSON lines.
    pub messages: Vec<Value>,
    /// The test binary, when every unit compiled.
    pub executable: Option<PathBuf>,
    /// What was rebuilt, for `--verbose`.
    pub log: String,
}

/// Where the plan of `package`'s test target `target` (built with `flags`) is kept.
fn plan_path(target_dir: &Path, package: &str, target: &str, flags: &[&str]) -> PathBuf {
    let profile = if flags.contains(&"loom") {
        "loom"
    } else {
        "dev"
    };
    target_dir
        .join("xtask-replay")
        .join(format!("{package}.{target}.{profile}.json"))
}

pub fn now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn stamp(path: &Path) -> Stamp {
    let meta = fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), modified.as_nanos()))
}

/// Whether a file modified at `at` may have been saved after `started`. A file system that
/// keeps whole seconds (its times end in nine zeros) cannot tell within the second, so a file
/// of that second counts as saved after.
fn not_before(at: u128, started: u128) -> bool {
    const SECOND: u128 = 1_000_000_000;
    at >= started || (at.is_multiple_of(SECOND) && at >= started - started % SECOND)
}

fn modified(path: &Path) -> Option<u128> {
    stamp(path).map(|(_, at)| at)
}

/// The current world, seen from the workspace at `root` and the package at `package_dir`.
fn world(root: &Path, package_dir: &Path, rustc: &Path) -> World {
    let env = std::env::vars_os()
        .map(|(key, value)| {
            let text = |s: std::ffi::OsString| s.to_string_lossy().into_owned();
            (text(key), text(value))
        })
        .filter(|(key, _)| {
            ["CARGO", "RUST"].iter().any(|p| key.starts_with(p))
                && !["CARGO_MAKEFLAGS", "RUST_BACKTRACE"].contains(&key.as_str())
        })
        .collect();
    let mut paths = vec![
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("rust-toolchain"),
        root.join("rust-toolchain.toml"),
        package_dir.join("Cargo.toml"),
        // A build script cargo finds by its name alone, with no line in the manifest.
        package_dir.join("build.rs"),
        rustc.to_owned(),
    ];
    // cargo's configuration: `.cargo/config.toml` in the workspace and every folder above it,
    // then `config.toml` in cargo's home (each also without its extension, an older name).
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let config_dirs = root.ancestors().map(|dir| dir.join(".cargo"));
    for dir in config_dirs.chain(cargo_home) {
        paths.push(dir.join("config.toml"));
        paths.push(dir.join("config"));
    }
    for dir in path_dependencies(root, package_dir) {
        files_under(&dir, &mut paths);
    }
    let mut files: Vec<(PathBuf, Stamp)> = paths
        .into_iter()
        .map(|path| {
            let stamp = stamp(&path);
            (path, stamp)
        })
        .collect();
    files.sort();
    files.dedup();
    World { env, files }
}

/// The folders of the path dependencies the package can reach: the workspace's
/// `[workspace.dependencies]` with a `path`, the package's own `path` dependencies, and
/// theirs in turn.
fn path_dependencies(root: &Path, package_dir: &Path) -> Vec<PathBuf> {
    let manifest = |dir: &Path| -> Option<toml::Table> {
        fs::read_to_string(dir.join("Cargo.toml"))
            .ok()?
            .parse()
            .ok()
    };
    let paths = |table: Option<&toml::Value>, base: &Path| -> Vec<PathBuf> {
        let specs = table.and_then(toml::Value::as_table);
        specs
            .into_iter()
            .flat_map(|t| t.values())
            .filter_map(|spec| spec.get("path")?.as_str())
            .map(|path| fs::canonicalize(base.join(path)).unwrap_or_else(|_| base.join(path)))
            .collect()
    };
    let mut found = manifest(root).map_or_else(Vec::new, |m| {
        paths(m.get("workspace").and_then(|w| w.get("dependencies")), root)
    });
    let mut queue = found.clone();
    queue.push(package_dir.to_owned());
    while let Some(dir) = queue.pop() {
        let Some(m) = manifest(&dir) else {
            continue;
        };
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for dep in paths(m.get(section), &dir) {
                if !found.contains(&dep) {
                    found.push(dep.clone());
                    queue.push(dep);
                }
            }
        }
    }
    found
}

/// Every file under `dir`, its own `target` folder aside.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_none_or(|n| n != "target") {
                    stack.push(path);
                }
            } else {
                out.push(path);
            }
        }
    }
}

impl Unit {
    fn arg_after(&self, flag: &str) -> Option<&str> {
        let at = self.args.iter().position(|a| a == flag)?;
        self.args.get(at + 1).map(String::as_str)
    }

    /// `-C name=value`'s value.
    fn codegen(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.args
            .windows(2)
            .find(|w| w[0] == "-C" && w[1].starts_with(&prefix))
            .map(|w| &w[1][prefix.len()..])
    }

    fn out_dir(&self) -> Option<PathBuf> {
        self.arg_after("--out-dir").map(|d| self.cwd.join(d))
    }

    /// `crate-name` plus `extra-filename`, as rustc names the outputs.
    fn stem(&self) -> Option<String> {
        Some(format!(
            "{}{}",
            self.arg_after("--crate-name")?,
            self.codegen("extra-filename").unwrap_or_default()
        ))
    }

    fn is_test(&self) -> bool {
        self.args.iter().any(|a| a == "--test")
    }

    /// The output cargo links against or runs: `lib<stem>.rlib`, or the test executable.
    fn output(&self) -> Option<PathBuf> {
        let (dir, stem) = (self.out_dir()?, self.stem()?);
        if self.is_test() {
            Some(dir.join(stem))
        } else if self.arg_after("--crate-type") == Some("lib") {
            Some(dir.join(format!("lib{stem}.rlib")))
        } else {
            None
        }
    }

    fn dep_info(&self) -> Option<PathBuf> {
        Some(self.out_dir()?.join(format!("{}.d", self.stem()?)))
    }

    /// The libraries it links, from `--extern name=path`.
    fn externs(&self) -> Vec<PathBuf> {
        self.args
            .windows(2)
            .filter(|w| w[0] == "--extern")
            .filter_map(|w| w[1].split_once('=').map(|(_, p)| self.cwd.join(p)))
            .collect()
    }

    /// Whether a file its last compilation read changed after that compilation started, or a
    /// library it links after its output was written (or an output is missing).
    fn stale(&self) -> bool {
        let (Some(output), Some(dep_info)) = (self.output(), self.dep_info()) else {
            return true;
        };
        let Ok(text) = fs::read_to_string(&dep_info) else {
            return true;
        };
        let Some(built) = modified(&output) else {
            return true;
        };
        // A source saved while the compiler ran may or may not be in the output, so sources
        // are compared with the start; a library is only rebuilt under the build lock, never
        // while this unit compiles, so it is compared with the output, as cargo does.
        let saved = |path: &Path| modified(path).is_none_or(|at| not_before(at, self.started));
        let rebuilt = |path: &Path| modified(path).is_none_or(|at| at > built);
        let (inputs, env) = parse_dep_info(&text);
        inputs.iter().any(|p| saved(&self.cwd.join(p)))
            || self.externs().iter().any(|p| rebuilt(p))
            || env.iter().any(|(key, value)| self.env_value(key) != *value)
    }

    /// What a compile-time `env!` of `key` sees: cargo's variable, or the environment's.
    fn env_value(&self, key: &str) -> Option<String> {
        match self.env.iter().find(|(k, _)| k == key) {
            Some((_, value)) => Some(value.clone()),
            None => std::env::var(key).ok(),
        }
    }
}

/// The files and `env!` values a dep-info file lists.
fn parse_dep_info(text: &str) -> (Vec<PathBuf>, Vec<(String, Option<String>)>) {
    let mut files = Vec::new();
    let mut env = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# env-dep:") {
            let (key, value) = match rest.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (rest, None),
            };
            env.push((key.to_owned(), value));
            continue;
        }
        let Some((_, deps)) = split_rule(line) else {
            continue;
        };
        files.extend(make_words(deps).into_iter().map(PathBuf::from));
    }
    files.sort();
    files.dedup();
    (files, env)
}

/// `target: deps`, split at the first colon that ends a word (a path's `\:` does not).
fn split_rule(line: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (at, c) in line.char_indices() {
        let ends_word = line[at + 1..].is_empty() || line[at + 1..].starts_with(' ');
        if c == ':' && !escaped && ends_word {
            return Some((&line[..at], &line[at + 1..]));
        }
        escaped = c == '\\' && !escaped;
    }
    None
}

/// Make's words: spaces separate them, `\ ` is a space inside one.
fn make_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => word.push(chars.next().unwrap_or(' ')),
            ' ' => words.extend((!word.is_empty()).then(|| std::mem::take(&mut word))),
            _ => word.push(c),
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    words
}

/// The `rustc` commands in cargo's `-vv` output: `Running \`KEY=value ... /path/rustc args\``.
fn units_in(cargo_stderr: &str, cwd: &Path, started: u128) -> Vec<Unit> {
    cargo_stderr
        .lines()
        .filter_map(|line| {
            let command = line.trim().strip_prefix("Running `")?.strip_suffix('`')?;
            let words = shell_words(command)?;
            let program_at = words.iter().position(|w| !is_assignment(w))?;
            let program = PathBuf::from(&words[program_at]);
            if program.file_stem().is_none_or(|s| s != "rustc") {
                return None;
            }
            let env = words[..program_at]
                .iter()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Some(Unit {
                cwd: cwd.to_owned(),
                env,
                program,
                args: words[program_at + 1..].to_vec(),
                started,
            })
        })
        .collect()
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Splits a command line as a POSIX shell would for the quoting cargo writes (single quotes,
/// and backslash escapes outside them); `None` for anything else.
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            '"' | '`' | '$' => return None,
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// Records what cargo's `-vv` run (started at `started`) compiled for `package`'s test target,
/// merged with what the last record holds for units cargo found fresh this time. A record that
/// cannot be made whole is removed, so the next build goes through cargo again.
pub fn record(
    target_dir: &Path,
    root: &Path,
    (package, target, flags): (&str, &str, &[&str]),
    cargo_stderr: &str,
    started: u128,
) {
    let path = plan_path(target_dir, package, target, flags);
    let last = read_plan(&path);
    let _ = fs::remove_file(&path);
    let fresh = units_in(cargo_stderr, root, started);
    let crate_name = target.replace('-', "_");
    let is_ours = |u: &Unit| u.is_test() && u.arg_after("--crate-name") == Some(&crate_name);
    let last_test = last
        .as_ref()
        .and_then(|plan| plan.units.get(&plan.executable))
        .filter(|u| is_ours(u));
    let Some(test) = fresh.iter().find(|u| is_ours(u)).or(last_test).cloned() else {
        return;
    };
    let package_dir = match test.env.iter().find(|(k, _)| k == "CARGO_MANIFEST_DIR") {
        Some((_, dir)) => PathBuf::from(dir),
        None => return,
    };
    let world = world(root, &package_dir, &test.program);
    // A manifest or harness file saved while cargo built may or may not be in what it built.
    if world
        .files
        .iter()
        .any(|(_, s)| s.is_some_and(|(_, at)| not_before(at, started)))
    {
        return;
    }
    let previous: BTreeMap<PathBuf, Unit> = last
        .filter(|plan| plan.world == world)
        .map(|plan| plan.units)
        .unwrap_or_default();
    let lib_name = lib_name(&package_dir, package);
    let lib_output = test
        .args
        .windows(2)
        .find(|w| w[0] == "--extern" && w[1].starts_with(&format!("{lib_name}=")))
        .and_then(|w| w[1].split_once('='))
        .map(|(_, p)| root.join(p));
    let mut units = BTreeMap::new();
    for wanted in lib_output.iter().chain(test.output().as_ref()) {
        let unit = fresh
            .iter()
            .find(|u| u.output().as_ref() == Some(wanted))
            .or_else(|| previous.get(wanted));
        let Some(unit) = unit else {
            return;
        };
        units.insert(wanted.clone(), unit.clone());
    }
    let Some(executable) = test.output() else {
        return;
    };
    let plan = Plan {
        world,
        units,
        executable,
    };
    if let (Some(dir), Ok(text)) = (path.parent(), serde_json::to_string(&plan)) {
        let _ = fs::create_dir_all(dir).and_then(|()| fs::write(&path, text));
    }
}

/// The package's library crate name: its manifest's `[lib] name`, or the package's name.
fn lib_name(package_dir: &Path, package: &str) -> String {
    fs::read_to_string(package_dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|manifest| {
            let name = manifest.get("lib")?.get("name")?.as_str()?;
            Some(name.to_owned())
        })
        .unwrap_or_else(|| package.replace('-', "_"))
}

fn read_plan(path: &Path) -> Option<Plan> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

/// Builds `package`'s test target as cargo would, without cargo, when the recorded plan still
/// holds; `None` when it does not (cargo must build).
pub fn rebuild(
    target_dir: &Path,
    root: &Path,
    (package, target, flags): (&str, &str, &[&str]),
) -> Result<Option<Rebuilt>> {
    let Some(plan) = read_plan(&plan_path(target_dir, package, target, flags)) else {
        return Ok(None);
    };
    let Some(test) = plan.units.get(&plan.executable) else {
        return Ok(None);
    };
    let Some((_, package_dir)) = test.env.iter().find(|(k, _)| k == "CARGO_MANIFEST_DIR") else {
        return Ok(None);
    };
    if world(root, Path::new(package_dir), &test.program) != plan.world {
        return Ok(None);
    }
    // A library linked from outside the plan that is gone (`cargo clean -p tokio`) is cargo's
    // to build again.
    let outside = |path: &PathBuf| !plan.units.contains_key(path);
    let linked = plan.units.values().flat_map(Unit::externs);
    if linked.filter(outside).any(|path| !path.exists()) {
        return Ok(None);
    }
    // The library first, then the checks: the map's order is by output path, so sort by role.
    let mut order: Vec<(&PathBuf, &Unit)> = plan.units.iter().collect();
    order.sort_by_key(|(_, unit)| unit.is_test());
    let Some(profile_dir) = test
        .out_dir()
        .and_then(|d| d.parent().map(Path::to_path_buf))
    else {
        return Ok(None);
    };
    // cargo's own lock on this profile's build folder: a cargo building here meanwhile (the
    // learner's own `cargo test`, an editor's) waits for us, and we for it.
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(profile_dir.join(".cargo-lock"))
        .with_context(|| format!("opening {}", profile_dir.join(".cargo-lock").display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", profile_dir.display()))?;
    let mut rebuilt = Rebuilt {
        messages: Vec::new(),
        executable: None,
        log: String::new(),
    };
    let mut updated = plan.clone();
    let mut upstream_rebuilt = false;
    let mut failed = false;
    for (output, unit) in order {
        if !upstream_rebuilt && !unit.stale() {
            continue;
        }
        upstream_rebuilt = true;
        let started = now();
        let finished = Command::new(&unit.program)
            .args(&unit.args)
            .envs(unit.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&unit.cwd)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", unit.program.display()))?;
        rebuilt.log.push_str(&format!(
            "xtask: rebuilt {} with the command cargo ran last time (cargo's start-up skipped)\n",
            output.display()
        ));
        for line in String::from_utf8_lossy(&finished.stderr).lines() {
            match serde_json::from_str::<Value>(line) {
                Ok(message) if message["$message_type"] == "diagnostic" => {
                    rebuilt.messages.push(compiler_message(message));
                }
                Ok(_) => {}
                Err(_) => rebuilt.log.push_str(&format!("{line}\n")),
            }
        }
        if !finished.status.success() {
            // This unit keeps its last start: still stale, it is compiled again next time.
            failed = true;
            break;
        }
        if let Some(unit) = updated.units.get_mut(output) {
            unit.started = started;
        }
    }
    drop(lock);
    if updated != plan {
        let path = plan_path(target_dir, package, target, flags);
        let _ = fs::write(&path, serde_json::to_string(&updated)?);
    }
    if !failed {
        rebuilt.executable = Some(plan.executable);
    }
    Ok(Some(rebuilt))
}

/// A rustc diagnostic as cargo passes it on with `--message-format=json`: wrapped, and its
/// rendered text without colours.
fn compiler_message(mut message: Value) -> Value {
    if let Some(rendered) = message["rendered"].as_str() {
        message["rendered"] = Value::String(without_ansi(rendered));
    }
    serde_json::json!({ "reason": "compiler-message", "message": message })
}

fn without_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_s_verbose_line_becomes_a_command() {
        let stderr = "   Compiling j01 v0.1.0 (/w/j01)\n     Running `CARGO_CRATE_NAME=checks CARGO_PKG_AUTHORS='' LD_LIBRARY_PATH='/w/target/debug/deps:/x y' /tc/bin/rustc --crate-name checks --edition=2024 j01/tests/checks.rs --check-cfg 'cfg(feature, values())' --test -C extra-filename=-abc --out-dir /w/target/debug/deps --extern j01=/w/target/debug/deps/libj01-def.rlib`\n     Running `/w/target/debug/build/x/build-script-build`\n";
        let units = units_in(stderr, Path::new("/w"), 7);
        assert_eq!(units.len(), 1, "{units:?}");
        let unit = &units[0];
        assert_eq!(unit.program, PathBuf::from("/tc/bin/rustc"));
        assert_eq!(
            unit.env,
            [
                ("CARGO_CRATE_NAME".to_owned(), "checks".to_owned()),
                ("CARGO_PKG_AUTHORS".to_owned(), String::new()),
                (
                    "LD_LIBRARY_PATH".to_owned(),
                    "/w/target/debug/deps:/x y".to_owned()
                ),
            ]
        );
        assert!(unit.args.contains(&"cfg(feature, values())".to_owned()));
        assert_eq!(
            unit.output(),
            Some(PathBuf::from("/w/target/debug/deps/checks-abc"))
        );
        assert_eq!(
            unit.externs(),
            [PathBuf::from("/w/target/debug/deps/libj01-def.rlib")]
        );
    }

    #[test]
    fn quoting_cargo_does_not_write_is_refused() {
        assert_eq!(
            shell_words("a 'it'\\''s' b\\ c"),
            Some(vec!["a".into(), "it's".into(), "b c".into()])
        );
        assert_eq!(shell_words("a \"b\""), None);
        assert_eq!(shell_words("a 'open"), None);
    }

    #[test]
    fn dep_info_lists_files_and_compile_time_variables() {
        let text = "/t/deps/j01-abc.d: j01/src/lib.rs j01/src/a\\ b.rs\n\n/t/deps/libj01-abc.rlib: j01/src/lib.rs\n\nj01/src/lib.rs:\n\n# env-dep:CARGO_PKG_NAME=j01\n# env-dep:UNSET\n";
        let (files, env) = parse_dep_info(text);
        assert_eq!(
            files,
            [
                PathBuf::from("j01/src/a b.rs"),
                PathBuf::from("j01/src/lib.rs")
            ]
        );
        assert_eq!(
            env,
            [
                ("CARGO_PKG_NAME".to_owned(), Some("j01".to_owned())),
                ("UNSET".to_owned(), None)
            ]
        );
    }

    #[test]
    fn a_save_in_the_second_a_build_started_counts_on_a_coarse_file_system() {
        let started = 5_300_000_000;
        assert!(not_before(5_300_000_001, started));
        assert!(
            !not_before(5_299_999_999, started),
            "fine-grained and before"
        );
        assert!(
            not_before(5_000_000_000, started),
            "whole seconds: same second"
        );
        assert!(!not_before(4_000_000_000, started));
    }

    #[test]
    fn colours_are_removed() {
        assert_eq!(
            without_ansi("\x1b[0m\x1b[1m\x1b[38;5;9merror\x1b[0m: x"),
            "error: x"
        );
    }
}
