//! Batched generation equals single-sequence generation.

use decoding::processors::{Temperature, TopK};
use decoding::sampler::Categorical;
use decoding::{
    BatchInput, BatchLanguageModel, BatchSequence, Error, GenerateError, GenerateOptions,
    Generation, Generator, LanguageModel, LogprobMode, Pipeline, TokenId, generate_batch,
};

use crate::models::{Bigram, FailOn, ModelError, NanFrom};

fn generators() -> Vec<Generator> {
    let table_options = |max, seed| {
        GenerateOptions::builder(max)
            .seed(seed)
            .eos_token(3)
            .stop_string("ba")
            .logprobs(LogprobMode::Both)
            .top_logprobs(2)
            .build()
            .unwrap()
    };
    vec![
        Generator::new(Pipeline::new(), Categorical::new(), table_options(12, 1)),
        Generator::new(
            Pipeline::new().with(Temperature::new(0.6).unwrap()),
            Categorical::new(),
            table_options(20, 2),
        ),
        Generator::new(
            Pipeline::new().with(TopK::new(3).unwrap()),
            Categorical::new(),
            GenerateOptions::builder(7).seed(3).build().unwrap(),
        ),
        // Seeded so that its Generation (which reports the seed) compares equal.
        Generator::new(
            Pipeline::new(),
            Categorical::new(),
            GenerateOptions::builder(0).seed(4).build().unwrap(),
        ),
    ]
}

fn table() -> Vec<Vec<u8>> {
    ["a", "b", "c", "<eos>", "ab", "ba", "d", "e", "f", "g"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

const PROMPTS: [&[TokenId]; 4] = [&[1], &[2, 5], &[0, 0, 7], &[4]];

fn single_runs() -> Vec<Generation> {
    let table = table();
    let mut out = Vec::new();
    for (i, mut g) in generators().into_iter().enumerate() {
        let run = if i < 2 {
            g.generate_text(&mut Bigram::pattern(10), &table, PROMPTS[i])
        } else {
            g.generate(&mut Bigram::pattern(10), PROMPTS[i])
        };
        out.push(run.unwrap());
    }
    out
}

#[test]
fn a_looped_batch_equals_single_runs() {
    let table = table();
    let mut gens = generators();
    let mut models = vec![Bigram::pattern(10); 4];
    let mut seqs: Vec<BatchSequence<'_>> = Vec::new();
    for (i, g) in gens.iter_mut().enumerate() {
        let s = BatchSequence::new(g, PROMPTS[i]);
        seqs.push(if i < 2 { s.with_detokenizer(&table) } else { s });
    }
    let results = generate_batch(&mut models, &mut seqs).unwrap();
    let results: Vec<Generation> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(results, single_runs());
    assert!(results[3].tokens.is_empty());
    assert_eq!(results[2].tokens.len(), 7);
}

/// A batched bigram model that records each call's entries.
#[derive(Debug)]
struct BatchedBigram {
    model: Bigram,
    last: Vec<Option<TokenId>>,
    calls: Vec<Vec<(usize, Vec<TokenId>)>>,
    resets: Vec<usize>,
}

impl BatchLanguageModel for BatchedBigram {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.model.table.len()
    }
    fn max_sequences(&self) -> usize {
        self.last.len()
    }
    fn forward_batch(
        &mut self,
        input: &BatchInput<'_>,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        let v = self.vocab_size();
        assert_eq!(logits.len(), input.len() * v);
        self.calls.push(input.iter().map(|e| (e.sequence, e.tokens.to_vec())).collect());
        for (j, e) in input.iter().enumerate() {
            let last = e.tokens.last().copied().or(self.last[e.sequence]);
            self.last[e.sequence] = last;
            logits[j * v..(j + 1) * v].copy_from_slice(self.model.row(last.unwrap_or(0)));
        }
        Ok(())
    }
    fn reset_sequence(&mut self, sequence: usize) -> Result<(), Self::Error> {
        self.last[sequence] = None;
        self.resets.push(sequence);
        Ok(())
    }
}

#[test]
fn a_batched_model_gets_one_call_per_step_with_only_new_tokens() {
    let table = table();
    let mut gens = generators();
    let mut model = BatchedBigram {
        model: Bigram::pattern(10),
        last: vec![None; 4],
        calls: Vec::new(),
        resets: Vec::new(),
    };
    let mut seqs: Vec<BatchSequence<'_>> = Vec::new();
    for (i, g) in gens.iter_mut().enumerate() {
        let s = BatchSequence::new(g, PROMPTS[i]);
        seqs.push(if i < 2 { s.with_detokenizer(&table) } else { s });
    }
    let results: Vec<Generation> =
        generate_batch(&mut model, &mut seqs).unwrap().into_iter().map(Result::unwrap).collect();
    assert_eq!(results, single_runs());
    assert_eq!(model.resets, [0, 1, 2, 3]);

    // First call: every prompt, except sequence 3 (max_new_tokens = 0).
    assert_eq!(model.calls[0], [(0, vec![1]), (1, vec![2, 5]), (2, vec![0, 0, 7])]);
    // Step k: each sequence still running gets its token of step k - 1.
    let longest = results.iter().map(|r| r.tokens.len()).max().unwrap();
    assert_eq!(model.calls.len(), longest);
    for (k, call) in model.calls.iter().enumerate().skip(1) {
        let expected: Vec<(usize, Vec<TokenId>)> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.tokens.len() > k)
            .map(|(i, r)| (i, vec![r.tokens[k - 1]]))
            .collect();
        assert_eq!(call, &expected, "call {k}");
    }
}

#[test]
fn a_sequence_error_ends_only_that_sequence() {
    let mut a = Generator::new(
        Pipeline::new(),
        Categorical::new(),
        GenerateOptions::builder(6).seed(8).build().unwrap(),
    );
    let mut b = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(6));
    let mut c = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(6));
    let alone = Generator::new(
        Pipeline::new(),
        Categorical::new(),
        GenerateOptions::builder(6).seed(8).build().unwrap(),
    )
    .generate(&mut NanFrom::new(5, 100), &[1])
    .unwrap();
    // Sequence 1 turns NaN at its third call; sequence 2 has an empty prompt.
    let mut models = vec![NanFrom::new(5, 100), NanFrom::new(5, 2), NanFrom::new(5, 100)];
    let results = generate_batch(
        &mut models,
        &mut [
            BatchSequence::new(&mut a, &[1]),
            BatchSequence::new(&mut b, &[1]),
            BatchSequence::new(&mut c, &[]),
        ],
    )
    .unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &alone);
    assert!(matches!(
        results[1],
        Err(GenerateError::Decoding { step: 2, source: Error::InvalidLogit { .. } })
    ));
    assert!(matches!(results[2], Err(GenerateError::EmptyPrompt)));
    assert_eq!(b.generated().len(), 2);
}

#[test]
fn a_model_error_ends_the_batch_and_keeps_partial_tokens() {
    let mut a = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(8));
    let mut b = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(8));
    let mut models = vec![FailOn::new(6, 100), FailOn::new(6, 4)];
    let err = generate_batch(
        &mut models,
        &mut [BatchSequence::new(&mut a, &[1]), BatchSequence::new(&mut b, &[2])],
    )
    .unwrap_err();
    assert!(matches!(err, GenerateError::Model { step: 3, source: ModelError { call: 4 } }));
    assert_eq!(b.generated().len(), 3);
    // Sequence 0's model was called before sequence 1's failed in that step,
    // but its step was not completed: it keeps its 3 tokens too.
    assert_eq!(a.generated().len(), 3);
}

#[test]
fn a_batch_larger_than_the_model_is_an_error() {
    let mut a = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(2));
    let mut b = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(2));
    let mut models = vec![Bigram::pattern(4)];
    let err = generate_batch(
        &mut models,
        &mut [BatchSequence::new(&mut a, &[1]), BatchSequence::new(&mut b, &[2])],
    )
    .unwrap_err();
    assert!(matches!(err, GenerateError::BatchTooLarge { sequences: 2, capacity: 1 }));
    // An empty batch is fine.
    let none: &mut [BatchSequence<'_>] = &mut [];
    assert!(generate_batch(&mut models, none).unwrap().is_empty());
}

#[test]
fn same_seed_same_tokens_different_seed_different_tokens() {
    let make = |seed| {
        Generator::new(
            Pipeline::new(),
            Categorical::new(),
            GenerateOptions::builder(24).seed(seed).build().unwrap(),
        )
    };
    let (mut a, mut b, mut c) = (make(5), make(5), make(6));
    let mut models = vec![Bigram::pattern(10); 3];
    let r = generate_batch(
        &mut models,
        &mut [
            BatchSequence::new(&mut a, &[1]),
            BatchSequence::new(&mut b, &[1]),
            BatchSequence::new(&mut c, &[1]),
        ],
    )
    .unwrap();
    let tokens: Vec<Vec<TokenId>> = r.into_iter().map(|g| g.unwrap().tokens).collect();
    assert_eq!(tokens[0], tokens[1]);
    assert_ne!(tokens[0], tokens[2]);
}

#[test]
fn a_slice_of_models_is_a_batched_model() {
    let models = [Bigram::pattern(7), Bigram::pattern(7)];
    assert_eq!(BatchLanguageModel::vocab_size(&models[..]), 7);
    assert_eq!(models[..].max_sequences(), 2);
    assert_eq!(LanguageModel::vocab_size(&models[0]), 7);
}

#[test]
fn boxed_samplers_mix_in_one_batch() {
    use decoding::Sampler;
    use decoding::sampler::Greedy;
    let boxed = |s: Box<dyn Sampler>, seed| {
        Generator::new(Pipeline::new(), s, GenerateOptions::builder(9).seed(seed).build().unwrap())
    };
    let mut a = boxed(Box::new(Greedy), 1);
    let mut b = boxed(Box::new(Categorical::new()), 2);
    let mut models = vec![Bigram::pattern(10); 2];
    let r = generate_batch(
        &mut models,
        &mut [BatchSequence::new(&mut a, &[1]), BatchSequence::new(&mut b, &[1])],
    )
    .unwrap();
    let greedy_alone = Generator::new(
        Pipeline::new(),
        Greedy,
        GenerateOptions::builder(9).seed(1).build().unwrap(),
    )
    .generate(&mut Bigram::pattern(10), &[1])
    .unwrap();
    let sampled_alone = Generator::new(
        Pipeline::new(),
        Categorical::new(),
        GenerateOptions::builder(9).seed(2).build().unwrap(),
    )
    .generate(&mut Bigram::pattern(10), &[1])
    .unwrap();
    assert_eq!(r[0].as_ref().unwrap(), &greedy_alone);
    assert_eq!(r[1].as_ref().unwrap(), &sampled_alone);
}
