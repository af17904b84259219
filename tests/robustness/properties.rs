//! The fuzz targets' inputs, drawn by proptest: arbitrary bytes decoded
//! into a pipeline case (arbitrary parameters, arbitrary f32 bit patterns,
//! a sampler), a generator case (a model returning arbitrary rows and
//! errors) or configuration text. None may panic or break a guarantee.

use proptest::prelude::*;

use crate::harness;

/// Text that is mostly a JSON object of known keys with values of every
/// type and range (or a sampler list), sometimes glued fragments, sometimes
/// arbitrary bytes.
#[cfg(feature = "serde")]
fn config_text() -> impl Strategy<Value = Vec<u8>> {
    const KEYS: &[&str] = &[
        "do_sample",
        "temperature",
        "top_k",
        "top_p",
        "min_p",
        "typical_p",
        "top_h",
        "repetition_penalty",
        "eos_token_id",
        "max_new_tokens",
        "max_length",
        "min_new_tokens",
        "min_length",
        "bad_words_ids",
        "suppress_tokens",
        "begin_suppress_tokens",
        "sequence_bias",
        "no_repeat_ngram_size",
        "renormalize_logits",
        "num_beams",
        "epsilon_cutoff",
        "eta_cutoff",
        "logit_bias",
        "stop",
        "stop_strings",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "n",
        "max_tokens",
        "num_return_sequences",
        "pad_token_id",
        "bos_token_id",
        "unknown_key",
        "assistant_early_exit",
        "constraints",
        "num_beam_groups",
        "guidance_scale",
        "token_healing",
        "remove_invalid_values",
    ];
    const VALUES: &[&str] = &[
        "true",
        "false",
        "null",
        "0",
        "1",
        "-1",
        "2",
        "0.5",
        "1.5",
        "0.95",
        "-0.0",
        "1e308",
        "1e-320",
        "-1e308",
        "50",
        "50256",
        "4294967295",
        "4294967296",
        "18446744073709551616",
        "\"x\"",
        "\"\"",
        "\"\\u0000\"",
        "[]",
        "[0]",
        "[50256]",
        "[1, 2, 3]",
        "[[]]",
        "[[1, 2], [3]]",
        "[[4294967296]]",
        "{}",
        "{\"3\": -100}",
        "{\"x\": 1}",
        "{\"50256\": 1e40}",
        "[\"a\", \"\"]",
        "[[[1], 2.5]]",
        "[[[1, 2], -1e39]]",
    ];
    let object =
        prop::collection::vec((prop::sample::select(KEYS), prop::sample::select(VALUES)), 0..8)
            .prop_map(|pairs| {
                let body: Vec<String> =
                    pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", body.join(", ")).into_bytes()
            });
    const STAGES: &[&str] = &[
        "penalties",
        "dry",
        "top_n_sigma",
        "top_k",
        "typical",
        "top_p",
        "min_p",
        "xtc",
        "temperature",
        "k",
        "p",
        "m",
        "y",
        "t",
        "x",
        ";",
        "",
        " ",
    ];
    let list = prop::collection::vec(prop::sample::select(STAGES), 0..10)
        .prop_map(|v| v.join(";").into_bytes());
    prop_oneof![
        6 => object,
        2 => list,
        1 => prop::collection::vec(prop::sample::select(VALUES), 0..10)
            .prop_map(|v| v.concat().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn a_pipeline_on_arbitrary_parameters_and_bits_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        harness::pipeline(&data);
    }

    #[test]
    fn beam_search_and_speculative_decoding_on_an_arbitrary_model_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        harness::strategies(&data);
    }

    #[test]
    fn the_generator_on_an_arbitrary_model_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        harness::generator(&data);
    }
}

proptest! {
    // Fewer cases: each runs generation, beam search (up to 4096 beams) and
    // speculative decoding; the fuzz target runs it at length.
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn every_size_a_user_passes_huge_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        harness::sizes(&data);
    }
}

#[cfg(feature = "serde")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn the_config_readers_on_arbitrary_text_never_panic(data in config_text()) {
        harness::config(&data);
    }
}
