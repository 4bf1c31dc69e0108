//! Lessons of the middle level: the programs the book shows live in `examples/`, and every
//! claim the book makes about hyper, tower or tokio behaviour is demonstrated by a test in
//! `tests/`.
//!
//! Run one: `cargo run -p lessons-middle --example <name>`.
