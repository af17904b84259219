//! Prompt log-probabilities (vLLM's `prompt_logprobs`): each prompt token's
//! log-probability under the model given the tokens before it, against a
//! direct computation (the model fed each prefix alone), in chunks of rows.

use decoding::sampler::{Categorical, Greedy};
use decoding::{
    BatchSequence, BeamSearch, GenerateError, GenerateOptions, Generator, LanguageModel, Pipeline,
    RewindableModel, SpeculativeOptions, TokenId, TokenLogprobs, Verification, generate_batch,
};

use crate::models::{Bigram, NanFrom};

/// Scores that depend on the whole history: row `j` after a history is a
/// hash of the history and `j`, with ties. Records its `forward_all` calls
/// as `(tokens, position)`.
#[derive(Debug, Clone)]
struct Hist {
    vocab: usize,
    held: Vec<TokenId>,
    all_calls: Vec<(usize, usize)>,
}

impl Hist {
    fn new(vocab: usize) -> Self {
        Hist { vocab, held: Vec::new(), all_calls: Vec::new() }
    }
}

fn row_after(history: &[TokenId], vocab: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &t in history {
        h = (h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..vocab as u64)
        .map(|j| ((h ^ j.wrapping_mul(0x9E37_79B9)) % 23) as f32 * 0.75 - 8.0)
        .collect()
}

impl LanguageModel for Hist {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        assert_eq!(position, self.held.len());
        self.held.extend_from_slice(tokens);
        logits.copy_from_slice(&row_after(&self.held, self.vocab));
        Ok(())
    }
    fn forward_all(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        assert_eq!(position, self.held.len());
        assert_eq!(logits.len(), tokens.len() * self.vocab);
        self.all_calls.push((tokens.len(), position));
        for (&t, row) in tokens.iter().zip(logits.chunks_exact_mut(self.vocab)) {
            self.held.push(t);
            row.copy_from_slice(&row_after(&self.held, self.vocab));
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.held.clear();
        Ok(())
    }
}

impl RewindableModel for Hist {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        self.held.truncate(len);
        Ok(())
    }
}

/// The log-probability of `prompt[i]` after `prompt[..i]`, and the `top`
/// best `(id, logprob)` of that position, computed in f64 from the rows
/// of each prefix alone, over the first `n` ids.
fn direct(
    prompt: &[TokenId],
    vocab: usize,
    n: usize,
    top: usize,
) -> Vec<(f64, Vec<(TokenId, f64)>)> {
    (1..prompt.len())
        .map(|i| {
            let row = &row_after(&prompt[..i], vocab)[..n];
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            let mut ranked: Vec<(TokenId, f64)> =
                row.iter().enumerate().map(|(id, &x)| (id as TokenId, x as f64 - lse)).collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked.truncate(top);
            (row[prompt[i] as usize] as f64 - lse, ranked)
        })
        .collect()
}

fn prompt(len: usize, vocab: usize) -> Vec<TokenId> {
    (0..len).map(|i| ((i * 7 + 3) % vocab) as TokenId).collect()
}

fn check(got: &[TokenLogprobs], prompt: &[TokenId], vocab: usize, n: usize, top: usize) {
    assert_eq!(got.len(), prompt.len());
    assert_eq!(got[0].token, prompt[0]);
    assert_eq!((got[0].raw, got[0].raw_top.len()), (None, 0));
    for (i, ((lp, best), entry)) in direct(prompt, vocab, n, top).iter().zip(&got[1..]).enumerate()
    {
        assert_eq!(entry.token, prompt[i + 1]);
        let raw = entry.raw.expect("a prompt token after the first has a log-probability");
        assert!((f64::from(raw) - lp).abs() < 1e-5, "position {}: {raw} vs {lp}", i + 1);
        let ids: Vec<TokenId> = entry.raw_top.iter().map(|t| t.token).collect();
        let want: Vec<TokenId> = best.iter().map(|b| b.0).collect();
        assert_eq!(ids, want, "position {}", i + 1);
        for (t, b) in entry.raw_top.iter().zip(best) {
            assert!((f64::from(t.logprob) - b.1).abs() < 1e-5);
        }
        assert!(entry.processed.is_none() && entry.processed_top.is_empty());
    }
}

#[test]
fn prompt_logprobs_are_the_models_log_softmax_after_each_prefix() {
    let v = 29;
    let p = prompt(40, v);
    for top in [0, 1, 4] {
        let options = GenerateOptions::builder(5).prompt_logprobs(top).seed(7).build().unwrap();
        let mut generator = Generator::new(Pipeline::new(), Categorical::new(), options);
        let mut model = Hist::new(v);
        let out = generator.generate(&mut model, &p).unwrap();
        check(out.prompt_logprobs.as_ref().unwrap(), &p, v, v, top);
        // Chunks of 16 rows, at their positions; then one token a call.
        assert_eq!(model.all_calls, [(16, 0), (16, 16), (8, 32)]);
        // The run samples the same tokens as one without them.
        let plain = Generator::new(
            Pipeline::new(),
            Categorical::new(),
            GenerateOptions::builder(5).seed(7).build().unwrap(),
        )
        .generate(&mut Hist::new(v), &p)
        .unwrap();
        assert_eq!(out.tokens, plain.tokens);
        assert!(plain.prompt_logprobs.is_none());
    }
}

#[test]
fn a_one_token_prompt_has_one_empty_entry_and_a_padded_vocabulary_is_cut() {
    let v = 29;
    let options = GenerateOptions::builder(2).prompt_logprobs(2).build().unwrap();
    let out =
        Generator::new(Pipeline::new(), Greedy, options).generate(&mut Hist::new(v), &[5]).unwrap();
    let entries = out.prompt_logprobs.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].token, entries[0].raw, entries[0].raw_top.len()), (5, None, 0));

    // Only ids below the tokenizer's 20 are tokens: normalized over them.
    let p: Vec<TokenId> = prompt(20, 20);
    let options = GenerateOptions::builder(2).prompt_logprobs(3).vocab_size(20).build().unwrap();
    let out =
        Generator::new(Pipeline::new(), Greedy, options).generate(&mut Hist::new(v), &p).unwrap();
    check(out.prompt_logprobs.as_ref().unwrap(), &p, v, 20, 3);
}

#[test]
fn a_stream_has_them_after_its_first_step() {
    let v = 29;
    let p = prompt(20, v);
    let options = GenerateOptions::builder(3).prompt_logprobs(2).seed(1).build().unwrap();
    let mut generator = Generator::new(Pipeline::new(), Categorical::new(), options);
    let whole = generator.generate(&mut Hist::new(v), &p).unwrap();
    let mut model = Hist::new(v);
    let mut stream = generator.stream(&mut model, &p).unwrap();
    assert!(stream.prompt_logprobs().is_none());
    let mut tokens = vec![stream.next().unwrap().unwrap().token];
    assert_eq!(stream.prompt_logprobs(), whole.prompt_logprobs.as_deref());
    tokens.extend(stream.map(|s| s.unwrap().token));
    assert_eq!(tokens, whole.tokens);
}

#[test]
fn a_nan_in_a_prompt_row_is_an_error_of_the_first_step() {
    // The default forward_all feeds one token a call: the third row is NaN.
    let options = GenerateOptions::builder(2).prompt_logprobs(0).build().unwrap();
    let err = Generator::new(Pipeline::new(), Greedy, options)
        .generate(&mut NanFrom::new(6, 2), &[1, 2, 3, 4])
        .unwrap_err();
    assert!(matches!(err, GenerateError::Decoding { step: 0, .. }), "{err:?}");
}

#[test]
fn drivers_that_feed_the_prompt_their_own_way_refuse_them() {
    let options = GenerateOptions::builder(2).prompt_logprobs(0).build().unwrap();
    let unsupported = |e: &GenerateError<std::convert::Infallible>| matches!(e, GenerateError::Unsupported { what } if what.contains("prompt log-probabilities"));
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    assert!(unsupported(&generator.begin(8, &[1], false).unwrap_err()));
    let spec = SpeculativeOptions::new(2, Verification::Greedy).unwrap();
    let err = generator.generate_speculative(&mut Hist::new(8), &mut Hist::new(8), &[1], &spec);
    assert!(unsupported(&err.unwrap_err()));
    let search = BeamSearch::new(2).unwrap();
    let err = generator.beam_search(&mut vec![Bigram::pattern(8); 2], &[1], &search);
    assert!(unsupported(&err.unwrap_err()));
    let mut models = vec![Bigram::pattern(8)];
    let results =
        generate_batch(&mut models, &mut [BatchSequence::new(&mut generator, &[1])]).unwrap();
    assert!(unsupported(results[0].as_ref().unwrap_err()));
}
