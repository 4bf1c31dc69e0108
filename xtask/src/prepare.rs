//! `cargo xtask prepare`: everything a session needs, built once, so that a room of machines
//! works without a network and no learner waits minutes for their first verdict.
//!
//! It builds what the runner would build on a learner's first checks, with the same cargo
//! flags: the solutions (which share every exercise's dependencies) in the debug and `loom`
//! profiles, clippy's first pass over the dependencies, each exercise's own crate, the lesson
//! programs an instructor runs live, and mdBook with the book. Each step says what it did.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::book;
use crate::learner::CLIPPY_READY;
use crate::workshop::{Exercise, Workshop, target_dir};

pub fn prepare(workshop: &Workshop) -> Result<()> {
    let started = Instant::now();
    let root = &workshop.root;
    let exercises = &workshop.exercises;
    println!(
        "Preparing this checkout for a session without a network (the first time takes a while)."
    );

    step("download every dependency (cargo fetch)", || {
        cargo(root, &["fetch"], "cargo fetch needs the network, once")?;
        Ok("every crate in Cargo.lock is in cargo's cache".to_owned())
    })?;

    step("build the checks of every solution", || {
        let mut args = vec!["test", "--no-run"];
        let packages: Vec<String> = exercises.iter().map(Exercise::solution_package).collect();
        for package in &packages {
            args.extend(["-p", package]);
        }
        cargo(root, &args, "a solution does not build")?;
        Ok(format!(
            "{} solutions and the dependencies every exercise shares (debug profile)",
            packages.len()
        ))
    })?;

    let loom: Vec<&Exercise> = exercises
        .iter()
        .filter(|e| e.meta.targets().iter().any(|t| t == "loom"))
        .collect();
    if !loom.is_empty() {
        step("build the loom models, optimised", || {
            let packages: Vec<String> = loom.iter().map(|e| e.solution_package()).collect();
            let features: Vec<String> = packages.iter().map(|p| format!("{p}/loom")).collect();
            let mut args = vec!["test", "--no-run", "--profile", "loom", "--test", "loom"];
            for package in &packages {
                args.extend(["-p", package]);
            }
            let features = features.join(",");
            args.extend(["--features", &features]);
            cargo(root, &args, "a loom model does not build")?;
            Ok(format!("{} ({} profile)", ids(&loom), "loom"))
        })?;
    }

    let lint: Vec<&Exercise> = exercises.iter().filter(|e| e.meta.lint.is_some()).collect();
    if !lint.is_empty() {
        step("run clippy once", || {
            for e in &lint {
                let package = e.solution_package();
                let mut args = vec!["clippy", "--all-targets", "-p", &package, "--"];
                let deny = &e.meta.lint.as_ref().expect("filtered on lint").deny;
                for lint in deny {
                    args.extend(["-D", lint]);
                }
                cargo(
                    root,
                    &args,
                    "clippy failed on a solution (is it installed? `rustup component add clippy`)",
                )?;
            }
            // `cargo xtask check` announces clippy's slow first run until it has happened.
            let _ = std::fs::write(target_dir(root).join(CLIPPY_READY), "");
            Ok(format!(
                "its first pass over the dependencies, for {}",
                ids(&lint)
            ))
        })?;
    }

    step("build each exercise as the learner gets it", || {
        // As `cargo xtask check` builds them. Some do not compile until they are fixed: that is
        // their lesson, and their dependencies are built all the same.
        let mut not_yet = Vec::new();
        for e in exercises {
            let package = e.package();
            for target in e.meta.targets() {
                let mut args = vec!["test", "--no-run", "-p", &package, "--test", &target];
                if target == "loom" {
                    args.extend(["--profile", "loom", "--features", "loom"]);
                }
                if !quiet_cargo(root, &args)? && !not_yet.contains(&e.meta.id) {
                    not_yet.push(e.meta.id.clone());
                }
            }
        }
        Ok(if not_yet.is_empty() {
            format!("{} exercises", exercises.len())
        } else {
            format!(
                "{} exercises; {} do not compile yet (their first fix is the learner's)",
                exercises.len(),
                not_yet.join(", ")
            )
        })
    })?;

    let lessons = lesson_packages(root)?;
    if !lessons.is_empty() {
        step("build the lesson programs and their tests", || {
            let mut test = vec!["test", "--no-run"];
            let mut examples = vec!["build", "--examples"];
            for package in &lessons {
                test.extend(["-p", package]);
                examples.extend(["-p", package]);
            }
            cargo(root, &test, "a lesson does not build")?;
            cargo(root, &examples, "a lesson program does not build")?;
            Ok(format!(
                "{} (`cargo run -p ... --example ...`)",
                lessons.join(", ")
            ))
        })?;
    }

    step("install mdBook and build the book", || {
        let site = book::build(workshop)?;
        Ok(format!(
            "mdBook {} in target/tools; open {}/index.html",
            book::MDBOOK_VERSION,
            site.strip_prefix(root).unwrap_or(&site).display()
        ))
    })?;

    step("check that nothing is left to download", || {
        let mut args = vec!["test", "--no-run", "--offline"];
        let packages: Vec<String> = exercises.iter().map(Exercise::solution_package).collect();
        for package in &packages {
            args.extend(["-p", package]);
        }
        cargo(root, &args, "a build still needs the network")?;
        Ok("the solutions build with --offline".to_owned())
    })?;

    println!(
        "\nReady ({:.0} s). This checkout now works without a network:\n\
         \x20 - set CARGO_NET_OFFLINE=true in the learners' shell, so cargo never tries;\n\
         \x20 - `cargo xtask check J01` should answer in seconds; do not run `cargo clean`.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs one step, printing what it is, what it did and how long it took.
fn step(what: &str, run: impl FnOnce() -> Result<String>) -> Result<()> {
    println!("\n- {what}...");
    let started = Instant::now();
    let did = run().with_context(|| format!("prepare could not {what}"))?;
    println!("  done in {:.0} s: {did}", started.elapsed().as_secs_f64());
    Ok(())
}

/// A cargo command that must succeed; its errors, if not.
fn cargo(root: &Path, args: &[&str], why: &str) -> Result<()> {
    let output = command(root, args)
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Without cargo's progress lines (`   Compiling x`), which say nothing about the error.
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| !(l.starts_with("  ") && l.trim_start().starts_with(char::is_uppercase)))
            .collect();
        let tail = errors[errors.len().saturating_sub(30)..].join("\n");
        bail!("{why}: `cargo {}` failed:\n{tail}", args.join(" "));
    }
    Ok(())
}

/// A cargo command whose failure is an answer, not an error.
fn quiet_cargo(root: &Path, args: &[&str]) -> Result<bool> {
    let status = command(root, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    Ok(status.success())
}

fn command(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root).args(args).stdin(Stdio::null());
    command
}

/// The lesson crates: `lessons/<folder>/Cargo.toml`'s package names.
fn lesson_packages(root: &Path) -> Result<Vec<String>> {
    let mut packages = Vec::new();
    for entry in std::fs::read_dir(root.join("lessons"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let value: toml::Value =
            toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
        if let Some(name) = value
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        {
            packages.push(name.to_owned());
        }
    }
    packages.sort();
    Ok(packages)
}

fn ids(exercises: &[&Exercise]) -> String {
    exercises
        .iter()
        .map(|e| e.meta.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
