//! Every consumer of a processed row (plain generation, its log-probabilities
//! and top-N alternatives, speculative decoding with either verification,
//! beam search and beam sampling) reads the live set, never stale slots,
//! and checks the processed row as the samplers do. Each defect found in
//! one of them is a named test; each class is run on every path.

use std::convert::Infallible;

use decoding::processors::{AllowedTokens, Temperature, TokenBitmask, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    BatchInput, BatchLanguageModel, BeamLanguageModel, BeamSearch, Context, Error, GenerateError,
    GenerateOptions, Generator, LogitsProcessor, LogprobMode, Pipeline, Scores, SpeculativeOptions,
    TokenId, Verification,
};

use crate::models::{Bigram, FixedRow};

/// A row whose argmax is token 2; tokens 5 and 6 are neither first nor
/// last.
const ROW: [f32; 8] = [0.0, 0.5, 3.0, 0.2, -0.3, 1.0, 0.7, -1.0];

fn allow_5_and_6() -> AllowedTokens<impl FnMut(&Context<'_>, &mut TokenBitmask) -> Result<(), Error>>
{
    AllowedTokens::new(|_: &Context<'_>, mask: &mut TokenBitmask| {
        mask.insert(5)?;
        mask.insert(6)
    })
}

/// `log_softmax(ROW)` at `id`, in f64.
fn log_prob(row: &[f32], id: usize) -> f64 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = row.iter().map(|&x| f64::from(x - m).exp()).sum();
    f64::from(row[id] - m) - z.ln()
}

/// Scores at or below this are transformers' stand-ins for "impossible".
const FILLER: f32 = -1e8;

/// What one decoding path produced: its token sequences (every returned
/// hypothesis for beam search, the one generation otherwise).
type PathResult = Result<Vec<Vec<TokenId>>, GenerateError<Infallible>>;

/// Runs `pipeline` on every path over a model that always writes `row`:
/// plain generation (greedy and categorical), speculative decoding (greedy
/// and sampled verification), beam search and beam sampling (2 beams).
/// Beam hypotheses scored at or below [`FILLER`] (transformers' `-1e9`
/// stand-ins: empty slots, and continuations of `-inf` kept only because
/// too few others existed) are left out.
fn every_path(
    row: &[f32],
    max_new: usize,
    pipeline: impl Fn() -> Pipeline,
) -> Vec<(&'static str, PathResult)> {
    let options = GenerateOptions::builder(max_new).seed(0).build().unwrap();
    let model = FixedRow(row.to_vec());
    let plain = |greedy: bool| -> PathResult {
        let out = if greedy {
            Generator::new(pipeline(), Greedy, options.clone()).generate(&mut model.clone(), &[1])
        } else {
            Generator::new(pipeline(), Categorical::new(), options.clone())
                .generate(&mut model.clone(), &[1])
        };
        out.map(|g| vec![g.tokens])
    };
    let speculative = |verification| -> PathResult {
        let spec = SpeculativeOptions::new(3, verification).unwrap();
        Generator::new(pipeline(), Greedy, options.clone())
            .generate_speculative(&mut model.clone(), &mut model.clone(), &[1], &spec)
            .map(|g| vec![g.tokens])
    };
    let beam = |sampling: bool| -> PathResult {
        let search = BeamSearch::new(2).unwrap().with_sampling(sampling);
        let hypotheses = Generator::new(pipeline(), Greedy, options.clone()).beam_search(
            &mut vec![model.clone(); 2],
            &[1],
            &search,
        )?;
        assert!(hypotheses[0].score > FILLER, "the best hypothesis is a filler");
        Ok(hypotheses.into_iter().filter(|h| h.score > FILLER).map(|h| h.tokens).collect())
    };
    vec![
        ("greedy", plain(true)),
        ("categorical", plain(false)),
        ("speculative greedy", speculative(Verification::Greedy)),
        ("speculative sampled", speculative(Verification::Sampled)),
        ("beam search", beam(false)),
        ("beam sampling", beam(true)),
    ]
}

// ------------------------------------------------------------ the live set

#[test]
fn beam_search_keeps_to_the_allowed_tokens() {
    // Two beams, AllowedTokens {5, 6}, a model whose argmax is 2: the search
    // once returned [2, 2, 2] with a finite score.
    let mut generator =
        Generator::new(Pipeline::new().with(allow_5_and_6()), Greedy, GenerateOptions::new(3));
    let mut beams = vec![FixedRow(ROW.to_vec()); 2];
    let hypotheses = generator.beam_search(&mut beams, &[1], &BeamSearch::new(2).unwrap()).unwrap();
    assert_eq!(hypotheses.len(), 2);
    for h in &hypotheses {
        assert!(h.tokens.iter().all(|&t| t == 5 || t == 6), "{:?}", h.tokens);
        assert!(h.score.is_finite());
    }
    assert_eq!(hypotheses[0].tokens, [5, 5, 5]);
    // Allowed tokens keep their log-probabilities (transformers' order:
    // log_softmax, then the processors); length penalty 1.
    let expected = log_prob(&ROW, 5);
    assert!((f64::from(hypotheses[0].score) - expected).abs() < 1e-5, "{hypotheses:?}");
}

#[test]
fn beam_search_with_temperature_zero_keeps_only_the_argmax() {
    let mut generator = Generator::new(
        Pipeline::new().with(Temperature::new(0.0).unwrap()),
        Greedy,
        GenerateOptions::new(3),
    );
    let mut beams = vec![FixedRow(ROW.to_vec()); 2];
    let hypotheses = generator.beam_search(&mut beams, &[1], &BeamSearch::new(2).unwrap()).unwrap();
    for h in &hypotheses {
        assert_eq!(h.tokens, [2, 2, 2], "{hypotheses:?}");
        assert!(h.token_scores.iter().all(|x| x.is_finite()));
    }
    let expected = log_prob(&ROW, 2);
    assert!((f64::from(hypotheses[0].score) - expected).abs() < 1e-5, "{hypotheses:?}");
}

#[test]
fn beam_sampling_with_top_k_1_draws_only_the_top_token() {
    // Seed 0 once drew [3, 0, 2]: tokens of probability 0 read from stale
    // slots.
    let row = [2.0, 0.3, 1.0, 1.5];
    let options = GenerateOptions::builder(3).seed(0).build().unwrap();
    let mut generator =
        Generator::new(Pipeline::new().with(TopK::new(1).unwrap()), Greedy, options);
    let mut beams = vec![FixedRow(row.to_vec()); 2];
    let search = BeamSearch::new(2).unwrap().with_sampling(true);
    let hypotheses = generator.beam_search(&mut beams, &[1], &search).unwrap();
    assert_eq!(hypotheses[0].tokens, [0, 0, 0], "{hypotheses:?}");
    let expected = log_prob(&row, 0);
    assert!((f64::from(hypotheses[0].score) - expected).abs() < 1e-5, "{hypotheses:?}");
    for h in hypotheses.iter().filter(|h| h.score > FILLER) {
        assert!(h.tokens.iter().all(|&t| t == 0), "{hypotheses:?}");
    }
}

#[test]
fn every_path_keeps_to_the_allowed_tokens() {
    for (path, result) in every_path(&ROW, 6, || Pipeline::new().with(allow_5_and_6())) {
        let sequences = result.unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert!(!sequences.is_empty(), "{path}");
        for tokens in sequences {
            assert_eq!(tokens.len(), 6, "{path}");
            assert!(tokens.iter().all(|&t| t == 5 || t == 6), "{path}: {tokens:?}");
        }
    }
}

#[test]
fn every_path_with_temperature_zero_emits_only_the_argmax() {
    let zero = || Pipeline::new().with(Temperature::new(0.0).unwrap());
    for (path, result) in every_path(&ROW, 5, zero) {
        for tokens in result.unwrap_or_else(|e| panic!("{path}: {e:?}")) {
            assert_eq!(tokens, [2; 5], "{path}");
        }
    }
}

#[test]
fn processed_log_probabilities_and_alternatives_see_only_the_live_set() {
    let options =
        GenerateOptions::builder(4).logprobs(LogprobMode::Both).top_logprobs(5).build().unwrap();
    let mut generator = Generator::new(Pipeline::new().with(allow_5_and_6()), Greedy, options);
    let out = generator.generate(&mut FixedRow(ROW.to_vec()), &[1]).unwrap();
    // Under the processed distribution only 5 and 6 are possible: exactly
    // two alternatives, normalized over the two.
    let (p5, p6) = (f64::from(ROW[5]).exp(), f64::from(ROW[6]).exp());
    for step in out.logprobs.unwrap() {
        assert_eq!(step.token, 5);
        let top: Vec<TokenId> = step.processed_top.iter().map(|t| t.token).collect();
        assert_eq!(top, [5, 6]);
        let lp5 = f64::from(step.processed_top[0].logprob);
        assert!((lp5 - (p5 / (p5 + p6)).ln()).abs() < 1e-5, "{lp5}");
        assert!((f64::from(step.processed.unwrap()) - lp5).abs() < 1e-6);
        // The raw alternatives are the model's: the argmax first.
        assert_eq!(step.raw_top[0].token, 2);
    }
}

// ------------------------------------------------------------ row checks

/// Writes `value` into token `at`'s slot.
#[derive(Debug, Clone, Copy)]
struct Writes {
    at: TokenId,
    value: f32,
}

impl LogitsProcessor for Writes {
    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        scores.values_mut()[self.at as usize] = self.value;
        Ok(())
    }
}

#[test]
fn beam_search_reports_a_nan_written_by_a_processor() {
    // It once returned Ok with placeholder hypotheses scored -1e9.
    let mut generator = Generator::new(
        Pipeline::new().with(Writes { at: 3, value: f32::NAN }),
        Greedy,
        GenerateOptions::new(3),
    );
    let mut beams = vec![FixedRow(ROW.to_vec()); 2];
    let err = generator.beam_search(&mut beams, &[1], &BeamSearch::new(2).unwrap()).unwrap_err();
    match err {
        GenerateError::Decoding { step: 0, source: Error::InvalidLogit { index: 3, value } } => {
            assert!(value.is_nan())
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_path_reports_a_nan_or_infinity_written_by_a_processor() {
    for value in [f32::NAN, f32::INFINITY] {
        let writes = || Pipeline::new().with(Writes { at: 3, value });
        for (path, result) in every_path(&ROW, 4, writes) {
            match result {
                Err(GenerateError::Decoding {
                    step: 0,
                    source: Error::InvalidLogit { index: 3, value: got },
                }) => assert_eq!(got.to_bits(), value.to_bits(), "{path}"),
                other => panic!("{path}: {value} gave {other:?}"),
            }
        }
    }
}

#[test]
fn a_nan_written_into_a_removed_slot_is_not_read_by_any_path() {
    // Top-k keeps tokens 2 and 5; token 3 is removed, so what its stale slot
    // holds is nobody's business.
    let pipeline =
        || Pipeline::new().with(TopK::new(2).unwrap()).with(Writes { at: 3, value: f32::NAN });
    for (path, result) in every_path(&ROW, 4, pipeline) {
        for tokens in result.unwrap_or_else(|e| panic!("{path}: {e:?}")) {
            assert!(tokens.iter().all(|&t| t == 2 || t == 5), "{path}: {tokens:?}");
        }
    }
}

/// Names an id past the vocabulary as a survivor.
#[derive(Debug)]
struct LivePastTheVocabulary;

impl LogitsProcessor for LivePastTheVocabulary {
    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let v = scores.vocab_size() as TokenId;
        scores.set_live([1, v + 3], false);
        Ok(())
    }
}

#[test]
fn set_live_with_an_id_past_the_vocabulary_is_an_error_on_every_path() {
    let expected = Error::TokenOutOfRange { id: 11, vocab_size: 8 };
    for (path, result) in every_path(&ROW, 4, || Pipeline::new().with(LivePastTheVocabulary)) {
        match result {
            Err(GenerateError::Decoding { step: 0, source }) => {
                assert_eq!(source, expected, "{path}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let mut pipeline = Pipeline::new().with(LivePastTheVocabulary);
    let mut row = ROW.to_vec();
    assert_eq!(pipeline.process(&Context::empty(), &mut row), Err(expected.clone()));
    let mut row = ROW.to_vec();
    let mut rng = decoding::rng_from_seed(0);
    for sampler in [&mut Greedy as &mut dyn decoding::Sampler, &mut Categorical::new()] {
        let got = pipeline.sample(&Context::empty(), &mut row, sampler, &mut rng);
        assert_eq!(got, Err(expected.clone()));
    }
}

#[test]
fn allowed_tokens_callback_that_resizes_the_mask_is_an_error() {
    // It once panicked with an index out of bounds in `Scores`.
    let resizing = || {
        AllowedTokens::new(|_: &Context<'_>, mask: &mut TokenBitmask| {
            mask.reset(20);
            mask.insert(15)
        })
    };
    let expected = Error::VocabSizeMismatch { expected: 8, actual: 20 };
    let mut row = ROW.to_vec();
    let mut live = Vec::new();
    let got = resizing().process(&Context::empty(), &mut Scores::new(&mut row, &mut live));
    assert_eq!(got, Err(expected.clone()));
    for (path, result) in every_path(&ROW, 3, || Pipeline::new().with(resizing())) {
        match result {
            Err(GenerateError::Decoding { step: 0, source }) => {
                assert_eq!(source, expected, "{path}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}

// ------------------------------------------------------------ sizes

/// A beam model without a bound on the sequences it holds: every sequence
/// scores [`ROW`] shifted so that token `(last + 1) % 8` leads.
#[derive(Debug, Default)]
struct Unbounded;

impl BatchLanguageModel for Unbounded {
    type Error = Infallible;
    fn vocab_size(&self) -> usize {
        ROW.len()
    }
    fn max_sequences(&self) -> usize {
        usize::MAX
    }
    fn forward_batch(
        &mut self,
        input: &BatchInput<'_>,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        for (entry, row) in input.iter().zip(logits.chunks_mut(ROW.len())) {
            let last = entry.tokens.last().map_or(0, |&t| t as usize);
            for (i, x) in row.iter_mut().enumerate() {
                *x = ROW[(i + 2 + 8 - (last + 1) % 8) % 8];
            }
        }
        Ok(())
    }
    fn reset_sequence(&mut self, _sequence: usize) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl BeamLanguageModel for Unbounded {
    fn reorder(&mut self, _parents: &[usize]) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn a_huge_number_of_beams_is_refused_at_construction() {
    // It once overflowed a capacity on a model with unbounded capacity.
    for n in [usize::MAX / 2 + 1, usize::MAX, BeamSearch::MAX_BEAMS + 1] {
        assert!(
            matches!(BeamSearch::new(n), Err(Error::InvalidParameter { name: "num_beams", .. })),
            "{n}"
        );
    }
    assert!(BeamSearch::new(BeamSearch::MAX_BEAMS).is_ok());
}

#[test]
fn beam_search_with_unbounded_length_sizes_its_buffers_by_what_it_generates() {
    // max_new_tokens = usize::MAX, ended by an EOS id, on a model that
    // holds any number of sequences.
    let options = GenerateOptions::builder(usize::MAX).eos_token(7).build().unwrap();
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    let search = BeamSearch::new(3).unwrap();
    let hypotheses = generator.beam_search(&mut Unbounded, &[1], &search).unwrap();
    assert_eq!(hypotheses.len(), 3);
    // The model leads with last + 1: 2, 3, ..., 7 (EOS).
    assert_eq!(hypotheses[0].tokens, [2, 3, 4, 5, 6, 7]);
}

/// After token `t`, token `t + 1` (mod 8) scores 3, the rest 0.
fn next() -> Bigram {
    Bigram::successor(8, &[3.0])
}

#[test]
fn speculative_decoding_with_unbounded_draft_and_length_sizes_its_buffers_lazily() {
    // k = usize::MAX and max_new_tokens = usize::MAX once sized a
    // (k + 1) · V buffer up front and overflowed.
    let options = GenerateOptions::builder(usize::MAX).eos_token(7).build().unwrap();
    for verification in [Verification::Greedy, Verification::Sampled] {
        let spec = SpeculativeOptions::new(usize::MAX, verification).unwrap();
        let mut generator = Generator::new(Pipeline::new(), Greedy, options.clone());
        let out = generator.generate_speculative(&mut next(), &mut next(), &[1], &spec).unwrap();
        assert_eq!(out.tokens.last(), Some(&7), "{verification:?}");
        if verification == Verification::Greedy {
            assert_eq!(out.tokens, [2, 3, 4, 5, 6, 7]);
        }
    }
    // More drafted tokens per round than are sized up front (256): the
    // buffers grow as the draft proposes. A 600-token cycle without EOS.
    let options = GenerateOptions::builder(600).build().unwrap();
    let spec = SpeculativeOptions::new(usize::MAX, Verification::Greedy).unwrap();
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    let out = generator.generate_speculative(&mut next(), &mut next(), &[1], &spec).unwrap();
    let expected: Vec<TokenId> = (0..600).map(|i| ((i + 2) % 8) as TokenId).collect();
    assert_eq!(out.tokens, expected);
    assert_eq!(generator.speculative_stats().rounds, 1);
}

// ------------------------------------------------------------ detokenizers

/// Replaces its output buffer instead of appending to it.
struct Replacing;

impl decoding::Detokenizer for Replacing {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), decoding::UnknownToken> {
        *out = vec![b'a' + token as u8];
        Ok(())
    }
}

#[test]
fn a_detokenizer_that_replaces_its_buffer_gives_the_same_text() {
    // It once panicked slicing the generator's text buffer.
    let options = GenerateOptions::builder(5).stop_string("ef").build().unwrap();
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    let out = generator.generate_text(&mut next(), &Replacing, &[1]).unwrap();
    // Tokens 2, 3, 4, 5 read "cdef"; the stop string cuts "ef".
    assert_eq!(out.tokens, [2, 3, 4, 5]);
    assert_eq!(out.text.as_deref(), Some("cd"));
}
