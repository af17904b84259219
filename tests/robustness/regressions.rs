//! Inputs found by `cargo fuzz`, each of which broke a guarantee before the
//! fix named in its comment. The bytes are replayed through the same
//! harness as the fuzz targets.

use crate::harness;

/// The log-probability of a token whose weight `exp(x - max)` is subnormal
/// in f32 was computed from that weight and was off by 0.013; it is now
/// computed from the score (`x - max - ln Σ`).
#[test]
fn pipeline_logprob_of_a_token_with_a_subnormal_weight() {
    harness::pipeline(&[153, 128, 3]);
}

/// An incomplete UTF-8 character pending when the run hit its length limit
/// was flushed as U+FFFD after the stop strings were checked, so the final
/// text held the stop string `"é\u{FFFD}é\u{FFFD}"`. The flushed text is now
/// checked too (and cut; the run then ends on the stop string).
#[test]
fn generator_stop_string_completed_by_the_final_flush() {
    harness::generator(&[1, 140, 92, 86, 2, 2, 13, 5, 169, 0, 9, 0, 29, 0, 186, 18, 0, 22, 5, 14, 69, 0, 157, 0, 0, 0, 0, 50, 129, 9, 0, 39, 0, 2, 27, 5, 48, 0, 0, 24, 9, 0, 2, 35, 156, 129, 0, 144, 109, 0, 205, 96, 212, 114, 42, 76, 34, 26, 72, 2, 2, 6, 103, 1, 43, 29, 0, 0, 0, 0, 0, 0, 0, 0, 56, 44, 70, 1, 112, 54, 71, 31, 0, 58, 185, 56, 51, 0, 188, 33, 69, 0, 0, 119, 78, 1, 0, 1, 0, 0, 191, 0, 1, 0, 0, 1, 0, 0, 65, 0, 0, 199, 70, 232, 128, 3, 25, 0, 0, 0, 108, 65, 45, 0, 138, 104, 7, 25, 133, 137, 0, 5, 0, 0, 1]);
}
