//! Classifier-free guidance on the tiny GPT-2: two instances of the model
//! (conditional and unconditional) wrapped in `ClassifierFreeGuidance`
//! generate transformers' greedy ids with `guidance_scale` and
//! `negative_prompt_ids` (fixture from `scripts/make_guidance_fixtures.py`).

use std::path::{Path, PathBuf};

use decoding::sampler::Greedy;
use decoding::{ClassifierFreeGuidance, GenerateOptions, Generator, TokenId};
use gpt2::Gpt2;
use serde::Deserialize;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[derive(Deserialize)]
struct Fixture {
    max_new_tokens: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    prompt_ids: Vec<TokenId>,
    guidance_scale: f32,
    negative_prompt_ids: Option<Vec<TokenId>>,
    generated_ids: Vec<TokenId>,
    top2_gaps: Vec<f32>,
}

#[test]
fn guided_greedy_generation_gives_transformers_ids() {
    let text = std::fs::read_to_string(data().join("guidance.json")).unwrap();
    let fixture: Fixture = serde_json::from_str(&text).unwrap();
    let dir = data().join("tiny-gpt2");
    let load = || Gpt2::from_dir(&dir).unwrap();
    let mut guided = None;
    for case in &fixture.cases {
        // The fixture's steps are far from ties, so f32 rounding cannot
        // flip a token.
        assert!(case.top2_gaps.iter().all(|&g| g > 1e-3), "{:?}", case.top2_gaps);
        let model =
            guided.take().map_or_else(|| (load(), load()), ClassifierFreeGuidance::into_inner);
        let (conditional, unconditional) = model;
        let mut model = ClassifierFreeGuidance::new(
            conditional,
            unconditional,
            case.guidance_scale,
            case.negative_prompt_ids.clone(),
        )
        .unwrap();
        let options = GenerateOptions::new(fixture.max_new_tokens);
        let out =
            Generator::new((), Greedy, options).generate(&mut model, &case.prompt_ids).unwrap();
        assert_eq!(
            out.tokens, case.generated_ids,
            "scale {}, negative {:?}",
            case.guidance_scale, case.negative_prompt_ids
        );
        guided = Some(model);
    }
    // Guidance changes the output: scale 1.5 and 3 differ from plain greedy.
    let plain = Generator::new((), Greedy, GenerateOptions::new(fixture.max_new_tokens))
        .generate(&mut load(), &fixture.cases[2].prompt_ids)
        .unwrap();
    assert_ne!(plain.tokens, fixture.cases[2].generated_ids);
}
