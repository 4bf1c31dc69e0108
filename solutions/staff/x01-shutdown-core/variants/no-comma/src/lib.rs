//! The drain that never wakes: replace this with the exercise's small service.

/// What the service answers.
pub fn greeting() -> &'static str {
    "hello world"
}
