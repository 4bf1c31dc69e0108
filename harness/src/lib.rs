//! Shared support for the workshop's checks.
//!
//! Every check in `exercises/*/*/tests/` is written against this crate, so the rules that keep
//! checks deterministic live here once instead of in forty test files:
//!
//! - [`server`]: a real hyper server on `127.0.0.1:0`, and a real HTTP/1 client connection to it.
//! - [`duplex`]: a service driven over an in-memory connection, for checks on the paused clock;
//!   [`counting`]: the same pipe with a count of the bytes the server read.
//! - [`leak`]: a gauge of live resources built from drop guards, to catch work that outlives
//!   its request.
//! - [`transcript`]: an HTTP transcript with nothing in it that varies between runs, for insta.
//! - [`watchdog`]: turns a hang into a failure that says what the hang means for the lesson.
//! - [`loom_shim`]: finds synchronisation a loom model cannot see beside an exercise's shim.
//!
//! A typical check:
//!
//! ```no_run
//! use harness::{server::TestServer, watchdog::check};
//!
//! #[test]
//! fn counts_every_request() {
//!     check("the server never answered; is the accept loop awaiting the connection?").real(
//!         || async {
//!             let server = TestServer::start(|listener| async move { drop(listener) }).await;
//!             let _ = server.addr();
//!         },
//!     );
//! }
//! ```
#![deny(missing_docs)]

pub mod counting;
pub mod duplex;
pub mod heap;
pub mod leak;
pub mod loom_shim;
pub mod response;
pub mod server;
pub mod transcript;
pub mod watchdog;

pub use response::TestResponse;

/// A boxed future, as the harness's async functions return them.
///
/// Boxed rather than `async fn` for the learner's edit-check loop: the body of a future the
/// harness boxes is compiled once, into this crate, while an `async fn`'s body is compiled
/// again into every checks crate that awaits it, on every one-line edit of the exercise.
/// Awaiting it reads the same.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
