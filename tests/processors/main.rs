//! Integration tests of the processors: property invariants over arbitrary rows.

mod common;
mod history;
mod truncation;
