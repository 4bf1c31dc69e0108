//! Go's "a new http.Client per request" in Rust: a new `reqwest::Client` per call. Each client
//! has its own connection pool, so each call opens a new connection (and, with TLS, a new
//! handshake). Build one client, with a timeout (reqwest has none by default), and share it.
//!
//! Run it: `cargo run -p lessons-junior --example anti_client_per_request` (needs a server on
//! 127.0.0.1:3000, for instance `cargo run -p lessons-junior --example pattern_server`).

use std::time::Duration;

// ANCHOR: per_request
/// Wrong: a fresh client, so a fresh pool and a fresh connection, on every call.
pub async fn fetch_with_new_client(url: &str) -> reqwest::Result<String> {
    let client = reqwest::Client::new();
    client.get(url).send().await?.text().await
}
// ANCHOR_END: per_request

// ANCHOR: shared
/// Right: one client for the whole program, built once, with a deadline per request.
pub fn upstream_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client with no TLS configuration to get wrong")
}

pub async fn fetch(client: &reqwest::Client, url: &str) -> reqwest::Result<String> {
    client.get(url).send().await?.text().await
}
// ANCHOR_END: shared

#[tokio::main]
async fn main() {
    let client = upstream_client();
    for _ in 0..3 {
        match fetch(&client, "http://127.0.0.1:3000/stats").await {
            Ok(text) => print!("shared client: {text}"),
            Err(error) => println!("is a server running on 127.0.0.1:3000? {error}"),
        }
    }
    match fetch_with_new_client("http://127.0.0.1:3000/stats").await {
        Ok(text) => print!("new client:    {text}"),
        Err(error) => println!("is a server running on 127.0.0.1:3000? {error}"),
    }
}
