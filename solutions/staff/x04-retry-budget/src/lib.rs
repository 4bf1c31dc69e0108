//! Retries that multiply an outage: replace this with the exercise's small service.

/// What the service answers.
pub fn greeting() -> &'static str {
    "hello, world"
}
