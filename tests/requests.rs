//! One plan, many requests: a `DecodingPlan` (and a `Pipeline` of boxed
//! stages) copies itself with its processor state, and a request's seed,
//! length and stop strings are one call each.

use decoding::config::{
    BoxedSampler, DecodingPlan, GenerationConfig, LengthLimit, LlamaCppSampling,
};
use decoding::processors::{AllowedTokens, TokenBitmask, Xtc};
use decoding::{Context, Error, LogitsProcessor, Pipeline, rng_from_seed};

/// Plans that hold every kind of stage the readers build.
fn plans() -> Vec<DecodingPlan> {
    let everything = GenerationConfig {
        do_sample: Some(true),
        temperature: Some(0.8),
        top_k: Some(5),
        top_p: Some(0.9),
        min_p: Some(0.02),
        typical_p: Some(0.95),
        epsilon_cutoff: Some(0.0003),
        eta_cutoff: Some(0.0009),
        top_h: Some(0.9),
        repetition_penalty: Some(1.1),
        no_repeat_ngram_size: Some(2),
        bad_words_ids: Some(vec![vec![3, 4]]),
        sequence_bias: Some(vec![(vec![1], 0.5)]),
        suppress_tokens: Some(vec![6]),
        begin_suppress_tokens: Some(vec![7]),
        min_new_tokens: Some(2),
        eos_token_id: Some(decoding::config::EosTokenId::One(0)),
        renormalize_logits: Some(true),
        ..GenerationConfig::default()
    };
    let llama = LlamaCppSampling {
        repeat_penalty: 1.2,
        top_n_sigma: 2.0,
        xtc_probability: 0.5,
        xtc_threshold: 0.05,
        dynatemp_range: 0.3,
        dry_multiplier: 0.8,
        dry_sequence_breaker_ids: Some(vec![0]),
        logit_bias: vec![(2, 1.0)],
        seed: Some(9),
        ..LlamaCppSampling::default()
    };
    let mirostat = LlamaCppSampling { mirostat: 2, ..llama.clone() };
    let beams = GenerationConfig { num_beams: Some(3), ..everything.clone() };
    [everything.build(), llama.build(), mirostat.build(), beams.build()]
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

const ROW: [f32; 10] = [0.5, 2.0, 1.5, 1.0, 3.0, 2.5, 0.0, 1.2, 2.2, 0.7];

/// Runs `steps` steps of a plan's pipeline and sampler from `history`;
/// returns the processed rows and the drawn tokens.
fn run(
    pipeline: &mut Pipeline,
    sampler: &mut BoxedSampler,
    history: &mut Vec<u32>,
    seed: u64,
) -> Vec<(Vec<u32>, u32)> {
    let mut rng = rng_from_seed(seed);
    let mut out = Vec::new();
    for _ in 0..4 {
        let ctx = Context::new(history, 3).unwrap();
        let mut row = ROW;
        pipeline.process(&ctx, &mut row).unwrap();
        let kept = (0..10).filter(|&i| row[i as usize].is_finite()).collect();
        let mut row = ROW;
        let token = pipeline.sample_token(&ctx, &mut row, sampler, &mut rng).unwrap();
        pipeline.accept(token);
        history.push(token);
        out.push((kept, token));
    }
    out
}

#[test]
fn a_copied_plan_decodes_as_the_original_and_keeps_its_state() {
    for plan in plans() {
        let copy = plan.clone();
        let name = plan.to_string();
        assert_eq!(copy.to_string(), name);
        assert_eq!(copy.stages(), plan.stages());
        let (mut p, mut s, _) = plan.into_parts();
        let (mut q, mut t, _) = copy.into_parts();
        assert_eq!(p.len(), q.len());
        // Fresh copies decode alike.
        let (mut h, mut g) = (vec![1, 2, 1], vec![1, 2, 1]);
        assert_eq!(run(&mut q, &mut t, &mut g, 1), run(&mut p, &mut s, &mut h, 1), "{name}");
        // A copy made mid-run continues from the same state (XTC's random
        // stream, Mirostat's μ).
        let mut later = p.try_clone().unwrap();
        let mut g = h.clone();
        assert_eq!(run(&mut later, &mut t, &mut g, 2), run(&mut p, &mut s, &mut h, 2), "{name}");
    }
}

#[test]
fn a_copied_xtc_continues_the_same_random_stream() {
    let mut a = Xtc::new(0.5, 0.05, 3).unwrap();
    let row = [1.0f32, 0.9, 0.8, 0.7, 0.6];
    let step = |p: &mut Xtc| {
        let mut r = row;
        let mut live = Vec::new();
        let mut scores = decoding::Scores::new(&mut r, &mut live);
        p.process(&Context::empty(), &mut scores).unwrap();
        scores.densify();
        r.map(f32::is_finite)
    };
    for _ in 0..5 {
        step(&mut a);
    }
    let mut b = a.clone();
    let (sa, sb): (Vec<_>, Vec<_>) = (0..32).map(|_| (step(&mut a), step(&mut b))).unzip();
    assert_eq!(sa, sb);
    assert!(sa.iter().any(|k| k.iter().filter(|&&x| x).count() < 5), "XTC never removed");
}

#[test]
fn a_pipeline_of_boxed_stages_copies_unless_a_stage_cannot() {
    let plan = plans().remove(0);
    let (pipeline, _, _) = plan.into_parts();
    let copy = pipeline.try_clone().expect("the crate's processors copy themselves");
    assert_eq!(copy.len(), pipeline.len());
    let nested = Pipeline::new().with(pipeline);
    assert!(nested.try_clone().is_some());
    let constrained = Pipeline::new()
        .with(AllowedTokens::new(|_: &Context<'_>, m: &mut TokenBitmask| m.insert(1)));
    assert!(constrained.try_clone().is_none());
}

#[test]
fn per_request_overrides_are_one_call_each_and_leave_the_shared_plan_alone() {
    let shared = GenerationConfig {
        do_sample: Some(true),
        num_return_sequences: Some(2),
        max_length: Some(100),
        stop_strings: Some(vec!["END".into()]),
        ..GenerationConfig::default()
    }
    .build()
    .unwrap();
    let request = shared.clone().with_seed(42).with_max_new_tokens(16);
    let request = request.with_stop_strings(["\n\n", "###"]).unwrap();
    let options = request.generate_options(10, 1).unwrap();
    assert_eq!(options.seed(), Some(43)); // choice 1
    assert_eq!(options.max_new_tokens(), 16);
    assert_eq!(options.stop_strings(), ["\n\n", "###"]);
    assert_eq!(request.length(), LengthLimit::NewTokens(16));
    // The shared plan is unchanged: no seed (fresh per run), its own limits.
    assert_eq!(shared.options().seed(), None);
    assert_eq!(shared.generate_options(10, 0).unwrap().seed(), None);
    assert_eq!(shared.length(), LengthLimit::Total(100));
    assert_eq!(shared.options().stop_strings(), ["END"]);
    // An empty list removes the stop strings; an empty string is an error.
    assert!(
        shared
            .clone()
            .with_stop_strings(Vec::<String>::new())
            .unwrap()
            .options()
            .stop_strings()
            .is_empty()
    );
    assert!(matches!(shared.clone().with_stop_strings([""]), Err(Error::InvalidParameter { .. })));
}
