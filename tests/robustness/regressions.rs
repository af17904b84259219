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
    harness::generator(&[
        1, 140, 92, 86, 2, 2, 13, 5, 169, 0, 9, 0, 29, 0, 186, 18, 0, 22, 5, 14, 69, 0, 157, 0, 0,
        0, 0, 50, 129, 9, 0, 39, 0, 2, 27, 5, 48, 0, 0, 24, 9, 0, 2, 35, 156, 129, 0, 144, 109, 0,
        205, 96, 212, 114, 42, 76, 34, 26, 72, 2, 2, 6, 103, 1, 43, 29, 0, 0, 0, 0, 0, 0, 0, 0, 56,
        44, 70, 1, 112, 54, 71, 31, 0, 58, 185, 56, 51, 0, 188, 33, 69, 0, 0, 119, 78, 1, 0, 1, 0,
        0, 191, 0, 1, 0, 0, 1, 0, 0, 65, 0, 0, 199, 70, 232, 128, 3, 25, 0, 0, 0, 108, 65, 45, 0,
        138, 104, 7, 25, 133, 137, 0, 5, 0, 0, 1,
    ]);
}

/// Scores `-3.4e38` and `3e38` in one row, flattened by two temperatures of
/// 5.5e37, made a token of raw probability `e^(-6.4e38)` likely. Its raw
/// log-probability, `-6.4e38`, is beyond f32's range and is reported as
/// `-inf`, which is right; the harness had asserted a finite value.
#[test]
fn generator_raw_logprob_beyond_the_f32_range() {
    harness::generator(&[0x32, 0x26, 0x7e, 0x26, 0x7e, 0x27]);
}

/// `GenerationConfig::to_json` left out the unsupported settings it had
/// read (here `assistant_early_exit`), so a config that refuses to build
/// was written as one that builds and decodes differently. They are now
/// written back.
#[cfg(feature = "serde")]
#[test]
fn config_unsupported_setting_survives_a_round_trip() {
    harness::config(
        br#"{"do_sample": true, "temperature": 0.7, "top_p": 0.9, "min_p": 0.02, "typical_p": 0.95, "epsilogin_suppress_tokens": [8], "min_new_totop_logprobsos_token_id": [0, 8], "max_new_tokens": 32, "assistant_early_exit": true}
"#,
    );
    harness::config(br#"{"constraints": [[1, 2]], "num_beam_groups": 2, "token_healing": true}"#);
}

/// serde_json's default float parser is not correctly rounded: a
/// `typical_p` written by `to_json` as `1.6666666666666665` read back one
/// ulp lower. The crate now enables serde_json's `float_roundtrip`, so a
/// number reads as the nearest f64 and a written config reads back equal.
#[cfg(feature = "serde")]
#[test]
fn config_float_reads_back_exactly() {
    harness::config(
        br#"{"do_sample": true, "top_p": 0.9, "typical_p": 1.666666666666666666666666666666666666666666666666666666695, "epsilon_cutoff": 0.0003}"#,
    );
    let c =
        decoding::config::GenerationConfig::from_json(r#"{"top_p": 1.6666666666666665}"#).unwrap();
    assert_eq!(c.top_p, Some(1.6666666666666665));
}

/// Beam sampling subtracted each drawn weight from a running total; when
/// one continuation held nearly all the mass, the total reached 0 in f64
/// while tiny weights were left, the draws stopped early, and beams
/// continued from stale states (a one-token hypothesis scored at step 3).
/// The total is now summed again when a scan runs out.
#[test]
fn strategies_beam_sampling_total_drift() {
    harness::strategies(&[31, 50, 255, 255, 255, 255, 255, 255, 255, 255, 2]);
}

/// Beam sampling where every running beam scores -inf (continuations kept
/// only because too few others existed): the weights `exp(x - max)` were
/// `exp(-inf - -inf)` = NaN, nothing was drawn, and no beam could continue.
/// Such weights are now 0, and the draws fall back to the first
/// continuations in order.
#[test]
fn strategies_beam_sampling_when_every_beam_scores_minus_infinity() {
    harness::strategies(&[
        199, 244, 251, 235, 235, 235, 235, 235, 20, 199, 244, 251, 235, 235, 235, 235, 235, 20, 95,
    ]);
}
