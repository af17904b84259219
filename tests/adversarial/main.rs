//! Adversarial inputs, one test per case of the reliability catalogue
//! (NaN and infinite logits, empty and fully masked rows, parameters at and
//! past their limits, the edges of the uniform draw, determinism, and the
//! generator's stop, vocabulary and length edges). Each case asserts the
//! exact error or value. Test names start with the catalogue's failure-mode
//! id (`f01` ... `f56`) where one applies.

mod categorical;
mod common;
mod determinism;
mod generator;
mod logits;
mod min_p_typical;
mod penalties;
mod temperature;
mod top_k;
mod top_p;
