//! Lessons of the junior level: the programs the book shows live in `examples/`, and every
//! claim the book makes about tokio or hyper behaviour is demonstrated by a test in `tests/`.
//!
//! Run one: `cargo run -p lessons-junior --example <name>`.
