//! The interview bank's evidence: each test in `tests/` backs a claim a model answer makes, and
//! the examples below are the claims that are about the compiler rather than about behaviour.

pub mod compiler;
pub mod frames;
pub mod overload;
