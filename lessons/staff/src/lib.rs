//! Lessons of the staff level: every design claim the book's staff part makes about behaviour
//! (shutdown across a fleet, overload policy, failure isolation, cancellation contracts,
//! deadlines and retry budgets across hops) is shown by a test or a loom model in `tests/`,
//! and the programs the book shows live in `examples/`.
//!
//! Run one: `cargo run -p lessons-staff --example <name>`.
