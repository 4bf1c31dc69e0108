//! The limiter that admits too many: replace this with the exercise's small service.

/// What the service answers.
pub fn greeting() -> &'static str {
    "hello"
}
