//! The book in a real browser: headless Chromium loads the built site from a local static
//! server, and each page must render its title, the navigation, highlighted code and working
//! search. Screenshots land in `target/book-screenshots/` for a human to look at.
//!
//! Chromium is not a learner's dependency: when it is missing the test is skipped with a note
//! (CI installs it first, see `.ci/run`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use anyhow::{Context, Result};

/// A page to load, and what must be on it once its scripts have run.
struct Expectation {
    path: &'static str,
    /// Must contain highlighted Rust (highlight.js spans).
    code: bool,
    /// Text the rendered page must contain.
    text: &'static str,
    /// Must have a "Coming from Go" note and speaker notes, styled by `theme/workshop.css`.
    notes: bool,
}

const PAGES: &[Expectation] = &[
    Expectation {
        path: "index.html",
        code: false,
        text: "cargo xtask",
        notes: false,
    },
    Expectation {
        path: "junior/futures.html",
        code: true,
        text: "Pending",
        notes: true,
    },
    Expectation {
        path: "glossary.html",
        code: false,
        text: "RST_STREAM",
        notes: false,
    },
    Expectation {
        path: "junior/first-server.html",
        code: true,
        text: "accept",
        notes: true,
    },
    Expectation {
        path: "junior/cancellation.html",
        code: true,
        text: "drop",
        notes: true,
    },
    Expectation {
        path: "junior/exercises/j01-conn-vs-req.html",
        code: false,
        text: "cargo xtask check J01",
        notes: false,
    },
    Expectation {
        path: "print.html",
        code: true,
        text: "Connections are not requests",
        notes: false,
    },
];

/// Finds a Chromium binary, if one is installed.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok()
                .filter(|s| s.success())
                .map(|_| PathBuf::from(name))
        })
}

/// Runs the browser test on the built site; returns the problems found, each naming its page.
/// `diagrams` names each built page (site-relative) that includes diagrams, and how many.
pub fn test_site(
    site: &Path,
    screenshots: &Path,
    diagrams: &BTreeMap<String, usize>,
) -> Result<Vec<String>> {
    let Some(chromium) = chromium() else {
        // On CI a skipped browser test would be a green light that proves nothing.
        if std::env::var_os("CI").is_some() {
            return Ok(vec![
                "browser test: no chromium on CI (.ci/run installs it)".to_owned(),
            ]);
        }
        println!("  browser test: skipped (no chromium; `apt-get install chromium` to run it)");
        return Ok(vec![]);
    };
    fs::create_dir_all(screenshots)
        .with_context(|| format!("creating {}", screenshots.display()))?;
    let base = serve(site.to_path_buf())?;
    let mut problems = Vec::new();
    for page in PAGES {
        let url = format!("{base}/{}", page.path);
        let dom = dump_dom(&chromium, &url)?;
        let name = page.path;
        if !dom.contains("<title>") || dom.contains("<title></title>") {
            problems.push(format!("{name}: no title"));
        }
        if !dom.contains("class=\"chapter\"") {
            problems.push(format!(
                "{name}: the navigation (sidebar chapter list) did not render"
            ));
        }
        if page.code && !dom.contains("hljs-") {
            problems.push(format!("{name}: no highlighted code"));
        }
        // Listings show their anchor and hide the rest of the program behind a toggle.
        if page.code && name != "print.html" && !dom.contains("class=\"boring\"") {
            problems.push(format!(
                "{name}: no hidden boilerplate lines in its listings"
            ));
        }
        if page.notes
            && !(dom.contains("class=\"coming-from-go\"")
                && dom.contains("class=\"speaker-notes\""))
        {
            problems.push(format!(
                "{name}: its Coming-from-Go note or speaker notes did not render"
            ));
        }
        if !dom.contains(page.text) {
            problems.push(format!(
                "{name}: the text `{}` is not on the page",
                page.text
            ));
        }
        let shot = screenshots.join(format!("{}.png", name.replace(['/', '.'], "_")));
        screenshot(&chromium, &url, &shot)?;
        if fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) < 10_000 {
            problems.push(format!(
                "{name}: the screenshot {} is missing or blank",
                shot.display()
            ));
        }
    }
    // `theme/diagrams.js` marks each inline diagram the browser laid out with a real size.
    // On a loaded machine a dump can be taken before the page's scripts ran (no mark at all);
    // a drawing that is really broken is marked "no" or missing on every try.
    for (page, expected) in diagrams {
        let mut shown = 0;
        for _ in 0..3 {
            let dom = dump_dom(&chromium, &format!("{base}/{page}"))?;
            shown = dom.matches("data-rendered=\"yes\"").count();
            if shown == *expected {
                break;
            }
        }
        if shown != *expected {
            problems.push(format!(
                "{page}: {shown} of its {expected} diagram(s) displayed"
            ));
        }
    }
    // A glossary term is found by search, and the glossary is among the results.
    let glossary = dump_dom(&chromium, &format!("{base}/index.html?search=keep-alive"))?;
    if !search_results(&glossary).contains("glossary.html") {
        problems
            .push("index.html?search=keep-alive: the glossary is not among the results".to_owned());
    }
    let search = dump_dom(&chromium, &format!("{base}/index.html?search=JoinSet"))?;
    fs::write(screenshots.join("search_JoinSet.html"), &search)?;
    if !search_results(&search).contains("<li") {
        problems.push("index.html?search=JoinSet: the search returned no results".to_owned());
    }
    screenshot(
        &chromium,
        &format!("{base}/index.html?search=JoinSet"),
        &screenshots.join("search_JoinSet.png"),
    )?;
    println!(
        "  browser test: {} page(s), {} page(s) with diagrams, and search: {} problem(s); screenshots in {}",
        PAGES.len(),
        diagrams.len(),
        problems.len(),
        screenshots.display()
    );
    Ok(problems)
}

/// The search results list of a dumped page.
fn search_results(dom: &str) -> &str {
    // mdBook 0.5 names the list `mdbook-searchresults` (0.4: `searchresults`).
    let results = dom.split("searchresults\">").nth(1).unwrap_or("");
    results.split("</ul>").next().unwrap_or("")
}

/// Flags for a headless Chromium on a machine with no network but loopback.
fn headless(chromium: &Path) -> Command {
    let mut command = Command::new(chromium);
    let profile = std::env::temp_dir().join(format!("xtask-chromium-{}", std::process::id()));
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(Stdio::null());
    command
}

pub(crate) fn dump_dom(chromium: &Path, url: &str) -> Result<String> {
    let output = headless(chromium)
        .arg("--dump-dom")
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("running {} on {url}", chromium.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

pub(crate) fn screenshot(chromium: &Path, url: &str, file: &Path) -> Result<()> {
    headless(chromium)
        .arg(format!("--screenshot={}", file.display()))
        .arg("--window-size=1280,1000")
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("taking a screenshot of {url}"))?;
    Ok(())
}

/// Serves `root` on `127.0.0.1:0` from a background thread for the rest of the process, and
/// returns its base URL. GET only, files only: all a static site needs.
pub(crate) fn serve(root: PathBuf) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 for the book")?;
    let base = format!("http://{}", listener.local_addr()?);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            thread::spawn(move || {
                let _ = answer(&root, stream);
            });
        }
    });
    Ok(base)
}

fn answer(root: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Read the rest of the head: closing a socket with unread input makes the kernel send a
    // reset, which can cut a large response (the search index) short.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let mut file = root.join(path.trim_start_matches('/'));
    if file.is_dir() {
        file = file.join("index.html");
    }
    let inside = file
        .canonicalize()
        .map(|f| f.starts_with(root.canonicalize().unwrap_or_default()));
    match (inside, fs::read(&file)) {
        (Ok(true), Ok(body)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                content_type(&file),
                body.len()
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body)
        }
        _ => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|x| x.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" => "application/javascript",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff" | "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
