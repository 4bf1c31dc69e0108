//! The production template under a real slow attack: Debian's `slowhttptest` against the
//! template binary (`lessons/professional`), while this process sends legitimate requests and
//! times each one.
//!
//! Three scenarios, each a claim of the book's attack chapter:
//! - slowloris (headers that never end) against the template as shipped: every attack connection
//!   is closed by the header timeout, and every legitimate request is answered in time;
//! - the same attack against the template with its timer removed (`--no-timer`, the way
//!   `axum::serve` builds a server): the attack holds every connection permit, and legitimate
//!   requests go unanswered;
//! - a slow body (a POST that trickles its body) against the template: the body deadline closes
//!   the attack's connections, and legitimate requests are answered.
//!
//! `slowhttptest` is not a learner's dependency: when it is missing the check is skipped with a
//! note, except on CI, where a skipped attack would prove nothing (`.ci/run` installs it).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::runner;

/// The limits the template runs with in every scenario, so that a verdict never depends on the
/// template's defaults: 256 connection permits and a 1 s header timeout. An attacker opening
/// 100 connections a second then holds about 100 at a time while the timer works, far below
/// 256, and 256 after 2.6 s when it does not.
const TEMPLATE_FLAGS: &[&str] = &[
    "--max-connections",
    "256",
    "--header-timeout-ms",
    "1000",
    "--body-deadline-ms",
    "1000",
];

/// How long each attack lasts, and how long a legitimate request may take.
const ATTACK_SECONDS: u64 = 10;
const PROBE_DEADLINE: Duration = Duration::from_secs(1);
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// What a scenario must show.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Every legitimate request answered in time; no attack connection left open.
    Defended,
    /// Some legitimate requests unanswered; attack connections still open at the end.
    Overwhelmed,
}

struct Scenario {
    name: &'static str,
    /// Extra flags for the template.
    template: &'static [&'static str],
    /// slowhttptest's mode and shape (the URL, duration and report flags are added).
    attack: &'static [&'static str],
    path: &'static str,
    expect: Expect,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "slowloris-vs-template",
        template: &[],
        attack: &["-H", "-c", "400", "-r", "100", "-i", "1", "-t", "GET"],
        path: "/",
        expect: Expect::Defended,
    },
    Scenario {
        name: "slowloris-vs-no-timer",
        template: &["--no-timer"],
        attack: &["-H", "-c", "400", "-r", "100", "-i", "1", "-t", "GET"],
        path: "/",
        expect: Expect::Overwhelmed,
    },
    Scenario {
        name: "slow-body-vs-template",
        template: &[],
        attack: &[
            "-B", "-c", "400", "-r", "100", "-i", "1", "-s", "8192", "-t", "POST",
        ],
        path: "/echo",
        expect: Expect::Defended,
    },
];

/// Where the reports of each run land (slowhttptest's CSV and HTML, the template's log).
pub fn output_dir(root: &Path) -> PathBuf {
    crate::workshop::target_dir(root).join("attack")
}

/// Runs every scenario; returns the problems found (empty when every scenario showed what it
/// must).
pub fn run(root: &Path) -> Result<Vec<String>> {
    if !installed() {
        if std::env::var_os("CI").is_some() {
            return Ok(vec![
                "attack: slowhttptest is not installed on CI (.ci/run installs it)".to_owned(),
            ]);
        }
        println!("  attack: skipped (no slowhttptest; `apt-get install slowhttptest` to run it)");
        return Ok(vec![]);
    }
    let template = build_template(root)?;
    let out = output_dir(root);
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut problems = Vec::new();
    for scenario in SCENARIOS {
        let t = Instant::now();
        let outcome = attack(&template, scenario, &out)?;
        let verdict = outcome.judge(scenario.expect);
        println!(
            "  {:<24} {} ({:.0} s): {}",
            scenario.name,
            if verdict.is_none() { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64(),
            outcome.summary()
        );
        if let Some(why) = verdict {
            problems.push(format!(
                "attack {}: {why} (reports in {})",
                scenario.name,
                out.display()
            ));
        }
    }
    Ok(problems)
}

fn installed() -> bool {
    Command::new("slowhttptest")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Builds the template binary and returns its path.
fn build_template(root: &Path) -> Result<PathBuf> {
    let output = runner::cargo()
        .current_dir(root)
        .args([
            "build",
            "-p",
            "lessons-professional",
            "--bin",
            "template",
            "--message-format=json",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running cargo build --bin template")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    runner::bail_if_disk_full(&stderr)?;
    if !output.status.success() {
        bail!("the template does not build:\n{stderr}");
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["target"]["name"] == "template")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built the template but named no executable")
}

/// What one attack showed.
struct Outcome {
    probes: usize,
    missed: Vec<String>,
    /// The last second of slowhttptest's report: connections closed, and still connected.
    closed: u64,
    connected: u64,
    most_connected: u64,
}

impl Outcome {
    /// None when the outcome is what the scenario expects, else why not.
    fn judge(&self, expect: Expect) -> Option<String> {
        match expect {
            Expect::Defended if !self.missed.is_empty() => Some(format!(
                "{} of {} legitimate requests missed their {} s deadline during the attack \
                 (first: {})",
                self.missed.len(),
                self.probes,
                PROBE_DEADLINE.as_secs(),
                self.missed[0]
            )),
            Expect::Defended if self.connected > 0 => Some(format!(
                "{} attack connections were still open when the attack ended: the server's \
                 timeouts did not close them",
                self.connected
            )),
            Expect::Overwhelmed if self.missed.is_empty() => Some(
                "every legitimate request was answered: the attack no longer shows what a \
                 server without a timer suffers (were the scenario's limits changed?)"
                    .to_owned(),
            ),
            Expect::Overwhelmed if self.connected == 0 => Some(
                "no attack connection was left open: without a timer the header timeout \
                 should be inert"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} of {} legitimate requests answered within {} s; attack connections: at most \
             {} open at once, {} closed by the server, {} still open at the end",
            self.probes - self.missed.len(),
            self.probes,
            PROBE_DEADLINE.as_secs(),
            self.most_connected,
            self.closed,
            self.connected
        )
    }
}

/// Starts the template, attacks it for `ATTACK_SECONDS` while probing it, then stops both.
fn attack(template: &Path, scenario: &Scenario, out: &Path) -> Result<Outcome> {
    let log = out.join(format!("{}.template.log", scenario.name));
    let mut server = Command::new(template)
        .args(["--addr", "127.0.0.1:0"])
        .args(TEMPLATE_FLAGS)
        .args(scenario.template)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {}", template.display()))?;
    let addr = match listening_on(&mut server) {
        Ok(addr) => addr,
        Err(e) => {
            let _ = server.kill();
            let _ = server.wait();
            return Err(e.context(format!("the template's log is {}", log.display())));
        }
    };
    let report = out.join(scenario.name);
    let mut attacker = Command::new("slowhttptest")
        .args(scenario.attack)
        .args(["-l", &ATTACK_SECONDS.to_string(), "-p", "1", "-x", "10"])
        .args(["-u", &format!("http://{addr}{}", scenario.path)])
        .arg("-g")
        .arg("-o")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(fs::File::create(
            out.join(format!("{}.attacker.txt", scenario.name)),
        )?)
        .stderr(Stdio::null())
        .spawn()
        .context("starting slowhttptest")?;

    // Legitimate requests from the second second to the second before the end: the attack's
    // connections are open by then, and it has not started letting go of them.
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let mut probes = 0;
    let mut missed = Vec::new();
    while started.elapsed() < Duration::from_secs(ATTACK_SECONDS - 1) {
        let t = Instant::now();
        probes += 1;
        if let Err(why) = probe(addr, scenario.path) {
            missed.push(format!(
                "at {:.1} s: {why}",
                started.elapsed().as_secs_f64()
            ));
        }
        std::thread::sleep(PROBE_EVERY.saturating_sub(t.elapsed()));
    }

    let attacker_done = wait_at_most(&mut attacker, Duration::from_secs(ATTACK_SECONDS + 20));
    stop(&mut server);
    if !attacker_done? {
        bail!("slowhttptest did not end within 20 s of its test length; it was killed");
    }
    let csv = report.with_extension("csv");
    let rows = read_report(&csv)?;
    let last = rows
        .last()
        .with_context(|| format!("{} has no rows", csv.display()))?;
    Ok(Outcome {
        probes,
        missed,
        closed: last.closed,
        connected: last.connected,
        most_connected: rows.iter().map(|r| r.connected).max().unwrap_or(0),
    })
}

/// Reads the template's `listening on ADDR` line (its contract with this check).
fn listening_on(server: &mut Child) -> Result<SocketAddr> {
    let stdout = server.stdout.take().context("the template's stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .context("the template printed no `listening on` line within 30 s")?;
    line.trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("the template's first line is not `listening on ADDR`: {line:?}"))
}

/// One legitimate request on a fresh connection: answered with a status line within the
/// deadline, or why not.
fn probe(addr: SocketAddr, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + PROBE_DEADLINE;
    let mut stream =
        TcpStream::connect_timeout(&addr, PROBE_DEADLINE).map_err(|e| format!("connect: {e}"))?;
    let (method, body) = if path == "/echo" {
        ("POST", "hello")
    } else {
        ("GET", "")
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no answer within the deadline".to_owned());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => return Err("closed without an answer".to_owned()),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => return Err("no answer within the deadline".to_owned()),
        }
    }
    let status = String::from_utf8_lossy(&answer);
    let status = status.lines().next().unwrap_or_default();
    if status.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("answered `{status}`"))
    }
}

fn wait_at_most(child: &mut Child, limit: Duration) -> Result<bool> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if child.try_wait()?.is_some() {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(false)
}

/// SIGTERM, as a deploy sends it; killed if it has not exited 10 s later.
fn stop(server: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    if !matches!(wait_at_most(server, Duration::from_secs(10)), Ok(true)) {
        let _ = server.kill();
        let _ = server.wait();
    }
}

/// One second of slowhttptest's CSV report.
struct Row {
    closed: u64,
    connected: u64,
}

fn read_report(csv: &Path) -> Result<Vec<Row>> {
    let text = fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    // Seconds,Closed,Pending,Connected,Service Available
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<u64> = line
                .split(',')
                .map(|f| f.trim().parse().unwrap_or(0))
                .collect();
            match fields[..] {
                [_, closed, _, connected, ..] => Ok(Row { closed, connected }),
                _ => bail!("{}: an unexpected line {line:?}", csv.display()),
            }
        })
        .collect()
}
