//! `cargo xtask`: the workshop's runner, for learners, instructors and CI.
//!
//! Learners: `cargo xtask` (where am I?), `check`, `watch`, `hint`, `list`, `reset`,
//! `solution`. Maintainers: `verify`, `seal`, `new`, `book`. Instructors: `interview`,
//! `cohort`, `prepare`; CI: `check --all --format json|junit`.

mod attack;
mod book;
mod browser;
mod cohort;
mod grade;
mod interview;
mod learner;
mod meta;
mod pages;
mod prepare;
mod progress;
mod replay;
mod report;
mod runner;
mod scaffold;
mod seal;
mod variants;
mod verify;
mod workshop;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::workshop::Workshop;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "The runner of the tokio + hyper concurrency workshop",
    version
)]
struct Cli {
    /// Show cargo's and the test binaries' raw output as well.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Option<Verb>,
}

#[derive(Subcommand)]
enum Verb {
    /// Run the checks of an exercise (default: the first unsolved one).
    Check {
        id: Option<String>,
        #[command(flatten)]
        report: grade::Args,
    },
    /// Re-run the checks on every save; moves on when an exercise passes.
    Watch { id: Option<String> },
    /// Reveal the next hint of an exercise (default: the first unsolved one).
    Hint {
        id: Option<String>,
        /// Reveal every hint up to this one at once (e.g. the one a failing check points at).
        upto: Option<usize>,
    },
    /// List every exercise with its level, kinds, minutes and status.
    List,
    /// Restore an exercise's code to the last committed version and clear its progress.
    Reset { id: String },
    /// Show where the solution is and why it works.
    Solution { id: String },
    /// Prove every exercise fails as declared, every solution passes, every half-fix in
    /// solutions/*/*/variants.toml fails the checks it names and every right fix passes;
    /// then that the lessons and the book hold.
    Verify {
        /// Run every verdict N times, to expose flaky checks.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Rewrite the compile-fail lessons' expected diagnostics from the compiler.
        #[arg(long)]
        bless: bool,
        /// Skip building the book.
        #[arg(long)]
        skip_book: bool,
        /// Verify only these exercises (skips lessons and book).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Record the hashes of every exercise's checks (after changing checks).
    Seal,
    /// Attack the production template with slowhttptest (slowloris and slow body) while
    /// timing legitimate requests; verify runs this too.
    Attack,
    /// Scaffold a new exercise: crate, checks, solution, metadata and book page.
    New {
        #[arg(long)]
        level: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        title: String,
    },
    /// Build the book into book/build (mdBook is installed on demand).
    Book {
        /// Serve it on localhost and rebuild on change.
        #[arg(long)]
        serve: bool,
        /// Open it in a browser (implies --serve).
        #[arg(long)]
        open: bool,
        /// Also run verify's quality gates: includes, links, anchors, pages, browser test.
        #[arg(long)]
        check: bool,
    },
    /// Instructors: a cohort's progress from the learners' JSON reports (files or folders).
    Cohort {
        /// Report files (`check --all --format json`), or folders searched for `*.json`.
        #[arg(required = true)]
        reports: Vec<std::path::PathBuf>,
        /// Also write a self-contained HTML page with the tables and a chart.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
    },
    /// Build everything a session needs, so that the room works without a network.
    Prepare,
    /// Drill the interview bank one question at a time, or print it as a handout.
    Interview {
        /// junior, middle, senior, professional or staff (default: every level).
        #[arg(long)]
        level: Option<String>,
        /// How many questions (default: every question of the level).
        #[arg(long)]
        count: Option<usize>,
        /// Seed of the shuffle, to get the same questions in the same order again.
        #[arg(long)]
        seed: Option<u64>,
        /// Print the questions with their answers and exit (also when stdin is not a terminal).
        #[arg(long)]
        handout: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Ok(false): the command ran and its verdict is "not yet" (a failing check).
fn run(cli: Cli) -> anyhow::Result<bool> {
    let workshop = Workshop::locate()?;
    let verbose = cli.verbose;
    match cli.command {
        None => learner::overview(&workshop).map(|()| true),
        Some(Verb::List) => learner::list(&workshop).map(|()| true),
        Some(Verb::Check { id, report }) => {
            if !report.is_plain() {
                return grade::run(&workshop, id.as_deref(), &report);
            }
            let exercise = learner::pick(&workshop, id.as_deref())?;
            learner::check(&workshop, exercise, verbose)
        }
        Some(Verb::Cohort { reports, html }) => cohort::run(&reports, html.as_deref()),
        Some(Verb::Prepare) => prepare::prepare(&workshop).map(|()| true),
        Some(Verb::Watch { id }) => {
            learner::watch(&workshop, id.as_deref(), verbose).map(|()| true)
        }
        Some(Verb::Hint { id, upto }) => {
            let exercise = learner::pick(&workshop, id.as_deref())?;
            learner::hint(&workshop, exercise, upto).map(|()| true)
        }
        Some(Verb::Reset { id }) => learner::reset(&workshop, workshop.find(&id)?).map(|()| true),
        Some(Verb::Solution { id }) => {
            learner::solution(&workshop, workshop.find(&id)?).map(|()| true)
        }
        Some(Verb::Verify {
            repeat,
            bless,
            skip_book,
            only,
        }) => {
            let options = verify::Options {
                repeat: repeat.max(1),
                bless,
                skip_book,
                only,
            };
            verify::verify(&workshop, &options).map(|()| true)
        }
        Some(Verb::Attack) => {
            let problems = attack::run(&workshop.root)?;
            for problem in &problems {
                eprintln!("{problem}");
            }
            Ok(problems.is_empty())
        }
        Some(Verb::Seal) => {
            let files = seal::seal(&workshop)?;
            println!("exercises/CHECKSUMS: {files} check files recorded.");
            Ok(true)
        }
        Some(Verb::New {
            level,
            id,
            slug,
            title,
        }) => scaffold::scaffold(
            &workshop,
            &scaffold::NewExercise {
                level,
                id,
                slug,
                title,
            },
        )
        .map(|()| true),
        Some(Verb::Book { serve, open, check }) => {
            if serve || open {
                book::serve(&workshop, open)?;
            } else if check {
                let problems = book::build_and_check(&workshop)?;
                for problem in &problems {
                    println!("  - {problem}");
                }
                return Ok(problems.is_empty());
            } else {
                let site = book::build(&workshop)?;
                println!("The book is in {}/index.html", site.display());
            }
            Ok(true)
        }
        Some(Verb::Interview {
            level,
            count,
            seed,
            handout,
        }) => interview::run(
            &workshop,
            &interview::Options {
                level,
                count,
                seed,
                handout,
            },
        )
        .map(|()| true),
    }
}
