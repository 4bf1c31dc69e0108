//! Two connection builders that look configured and are not. The one that works is in
//! `pattern_server.rs`: a timer on the builder.
//!
//! Run it: `cargo run -p lessons-junior --example pitfall_builders` (prints what each does).

use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;

// ANCHOR: no_timer
/// Looks fine, serves fine. But with no timer, hyper has no way to measure the default 30 s
/// header timeout, so it is off: a client may take forever to send its headers.
pub fn builder_without_timer() -> auto::Builder<TokioExecutor> {
    auto::Builder::new(TokioExecutor::new())
}
// ANCHOR_END: no_timer

// ANCHOR: timeout_no_timer
/// A timeout set explicitly, still without a timer: every connection served with this builder
/// panics in its task as soon as the client starts speaking HTTP/1
/// ("timeout `header_read_timeout` set, but no timer set").
pub fn builder_with_timeout_but_no_timer() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().header_read_timeout(Duration::from_secs(5));
    builder
}
// ANCHOR_END: timeout_no_timer

fn main() {
    let _quietly_off = builder_without_timer();
    let _panics_later = builder_with_timeout_but_no_timer();
    println!("both builders were created without complaint; see lessons/junior/tests/pitfalls.rs");
}
