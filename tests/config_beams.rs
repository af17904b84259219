//! `generation_config.json` beam-search settings: `num_beams`,
//! `length_penalty`, `early_stopping`, `num_return_sequences`.
#![cfg(feature = "serde")]

use decoding::config::GenerationConfig;
use decoding::{BeamSearch, EarlyStopping, Error};

#[test]
fn the_beam_settings_build_a_beam_search() {
    let config = GenerationConfig::from_json(
        r#"{"num_beams": 4, "length_penalty": 0.6, "early_stopping": "never",
            "num_return_sequences": 3, "max_new_tokens": 12, "eos_token_id": 2,
            "repetition_penalty": 1.2}"#,
    )
    .unwrap();
    let plan = config.build().unwrap();
    let want = BeamSearch::new(4)
        .unwrap()
        .with_length_penalty(0.6)
        .unwrap()
        .with_early_stopping(EarlyStopping::Never)
        .with_num_return_sequences(3)
        .unwrap();
    assert_eq!(plan.beam_search(), Some(&want));
    // One search returns every hypothesis: a single run.
    assert_eq!(plan.n(), 1);
    assert_eq!(
        plan.to_string(),
        "RepetitionPenalty(1.2) => BeamSearch(num_beams=4, length_penalty=0.6, \
         early_stopping=Never, num_return_sequences=3)"
    );
}

#[test]
fn early_stopping_reads_transformers_three_values() {
    for (text, want) in [
        ("false", EarlyStopping::Heuristic),
        ("true", EarlyStopping::Done),
        ("\"never\"", EarlyStopping::Never),
    ] {
        let json = format!(r#"{{"num_beams": 2, "early_stopping": {text}}}"#);
        let config = GenerationConfig::from_json(&json).unwrap();
        assert_eq!(config.early_stopping, Some(want));
        assert_eq!(config.build().unwrap().beam_search().unwrap().early_stopping(), want);
        // Written back as transformers writes it.
        let back = GenerationConfig::from_json(&config.to_json()).unwrap();
        assert_eq!(back, config);
        assert!(
            config.to_json().contains(&format!("\"early_stopping\": {text}")),
            "{}",
            config.to_json()
        );
    }
    let bad = GenerationConfig::from_json(r#"{"early_stopping": "sometimes"}"#);
    assert!(matches!(bad, Err(Error::InvalidParameter { name: "early_stopping", .. })));
}

#[test]
fn defaults_and_one_beam() {
    // num_beams 1 (or unset) is no beam search; the length penalty and the
    // early-stopping rule are then ignored, as in transformers.
    let config = GenerationConfig::from_json(r#"{"num_beams": 1, "length_penalty": 2.0}"#).unwrap();
    assert!(config.build().unwrap().beam_search().is_none());
    let config = GenerationConfig::from_json(r#"{"num_beams": 3}"#).unwrap();
    let search = *config.build().unwrap().beam_search().unwrap();
    assert_eq!(search, BeamSearch::new(3).unwrap());
    assert_eq!(search.num_return_sequences(), 3);
    assert_eq!(search.length_penalty(), 1.0);
    assert_eq!(search.early_stopping(), EarlyStopping::Heuristic);
}

#[test]
fn contradictions_are_errors() {
    let err = |json: &str| GenerationConfig::from_json(json).unwrap().build().unwrap_err();
    assert!(matches!(
        err(r#"{"num_beams": 2, "num_return_sequences": 3}"#),
        Error::InvalidParameter { name: "num_return_sequences", .. }
    ));
    assert!(matches!(
        err(r#"{"num_beams": 0}"#),
        Error::InvalidParameter { name: "num_beams", .. }
    ));
    let nan = GenerationConfig {
        num_beams: Some(2),
        length_penalty: Some(f64::NAN),
        ..Default::default()
    };
    assert!(matches!(nan.build(), Err(Error::InvalidParameter { name: "length_penalty", .. })));
    // Several greedy choices without beams stay an error.
    assert!(matches!(
        err(r#"{"num_return_sequences": 2}"#),
        Error::InvalidParameter { name: "num_return_sequences", .. }
    ));
}

#[path = "common/toy_models.rs"]
mod toy_models;

/// After token t, t + 1 scores 2 and t + 2 scores 1.
fn steps() -> toy_models::Bigram {
    toy_models::Bigram::successor(8, &[2.0, 1.0])
}

#[test]
fn a_plan_runs_its_beam_search() {
    let config = GenerationConfig::from_json(
        r#"{"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 5, "no_repeat_ngram_size": 2}"#,
    )
    .unwrap();
    let plan = config.build().unwrap();
    let search = *plan.beam_search().unwrap();
    let mut generator = plan.into_generator(1).unwrap();
    let out = generator.beam_search(&mut vec![steps(); 3], &[0], &search).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].tokens, [1, 2, 3, 4, 5]);
    assert!(out[0].score > out[1].score);
}

#[test]
fn do_sample_with_beams_is_beam_sampling() {
    // transformers adds the sampling warpers, on the log-probabilities.
    let config = GenerationConfig::from_json(
        r#"{"num_beams": 3, "do_sample": true, "temperature": 0.7, "top_k": 20}"#,
    )
    .unwrap();
    let plan = config.build().unwrap();
    let search = plan.beam_search().unwrap();
    assert!(search.samples());
    assert_eq!(search.num_beams(), 3);
    assert_eq!(
        plan.to_string(),
        "Temperature(0.7) -> TopK(k=20) => BeamSearch(num_beams=3, length_penalty=1, \
         early_stopping=Heuristic, num_return_sequences=3, sampled)"
    );
    let plain = GenerationConfig::from_json(r#"{"num_beams": 3}"#).unwrap().build().unwrap();
    assert!(!plain.beam_search().unwrap().samples());
}
