//! The interview bank's evidence: each test in `tests/` backs a claim a model answer makes.
