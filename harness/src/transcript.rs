//! HTTP transcripts for snapshot checks.
//!
//! A snapshot is only useful if it changes exactly when behaviour changes. A transcript
//! therefore leaves out what varies between runs and machines: the `date` header, addresses
//! and ports, timings. Headers are lower-cased and sorted so that the order hyper happens to
//! write them in does not matter.

use std::fmt::Write;

use crate::TestResponse;

/// Headers left out of every transcript because their values vary from run to run.
pub const VARYING_HEADERS: &[&str] = &["date"];

/// An ordered record of requests and responses, rendered as plain text.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    text: String,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a request line, e.g. `transcript.request("GET", "/hello")`.
    pub fn request(&mut self, method: &str, path: &str) -> &mut Self {
        let _ = writeln!(self.text, "> {method} {path}");
        self
    }

    /// Records a response: status, stable headers, then the body (as text when it is UTF-8).
    pub fn response(&mut self, response: &TestResponse) -> &mut Self {
        self.text.push_str(&format_response(response));
        self
    }

    /// Records a free-form line, e.g. an event the check observed: `connection closed`.
    pub fn note(&mut self, line: &str) -> &mut Self {
        let _ = writeln!(self.text, "# {line}");
        self
    }

    /// The transcript so far.
    pub fn render(&self) -> &str {
        &self.text
    }
}

/// Formats one response without any varying part.
pub fn format_response(response: &TestResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "< {}", response.status);
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(name, _)| !VARYING_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or("<binary>").to_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    for (name, value) in headers {
        let _ = writeln!(out, "< {name}: {value}");
    }
    if !response.body.is_empty() {
        let _ = writeln!(out, "<");
        match std::str::from_utf8(&response.body) {
            Ok(text) => {
                for line in text.lines() {
                    let _ = writeln!(out, "< {line}");
                }
            }
            Err(_) => {
                let _ = writeln!(out, "< <{} bytes of binary data>", response.body.len());
            }
        }
    }
    out
}
