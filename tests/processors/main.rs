//! Integration tests of the processors: property invariants over arbitrary rows.

mod common;
mod core_processors;
mod history;
mod length_control;
mod modern;
mod reference;
mod truncation;
