//! Lessons of the senior level: the programs the book shows live in `examples/`, and every
//! claim the book makes about HTTP/2 in hyper, cancel-safety, blocking, upgrades, streaming or
//! loom is demonstrated by a test in `tests/`.
//!
//! Run one: `cargo run -p lessons-senior --example <name>`.
