//! The production server template of the professional part of the book: hyper-util's auto
//! builder (HTTP/1 and HTTP/2) with every timeout and limit set, a tower stack for the
//! per-request policy, metrics, an upgrade registry, one outbound client and an ordered
//! graceful shutdown. `src/main.rs` runs it as the `template` binary; tests run
//! [`Server::run`] in-process.
//!
//! ```no_run
//! # async fn demo() {
//! use lessons_professional::{Config, Server};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let server = Server::new(Config::default()).unwrap();
//! let report = server.run(listener, shutdown).await;
//! # let _ = report;
//! # }
//! ```

pub mod admission;
pub mod config;
pub mod first_bytes;
pub mod metrics;
pub mod outbound;
pub mod routes;
pub mod serve;
pub mod upgrade;

pub use config::{Command, Config, USAGE, parse_args};
pub use metrics::{InFlightLayer, Metrics};
pub use serve::{Drain, Server, ShutdownReport, Step};
