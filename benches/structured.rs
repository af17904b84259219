//! What a structured-output constraint adds to a decoding step (feature
//! `structured`).
//!
//! For each vocabulary size (50257 and 128256) and three points of a JSON
//! Schema output (a key to open, inside a string value where most tokens
//! are allowed, an integer value where few are), in one run:
//!
//! - `floor`: the floor `F` (max + Σexp with libm over the row);
//! - `unconstrained`: `Categorical` on the row (what an empty pipeline
//!   does);
//! - `constrained`: the constraint stage then `Categorical`, the whole step;
//! - `stage`: the constraint stage alone (the engine's mask and the crate's
//!   masking);
//! - `masking`: the crate's part alone: loading the engine's 32-bit mask
//!   words into the `TokenBitmask` and restricting the live set to it.
//!
//! The engine's part is `stage - masking`. Each iteration runs on a fresh
//! copy of the constraint and of the row (copied outside the timing), so
//! no engine cache from an earlier iteration is measured and every
//! iteration masks the same row.
//!
//! The vocabulary is synthetic (no tokenizer file is downloaded): the 256
//! single bytes, then distinct pieces of 2 to 9 bytes (lower-case words
//! with and without a leading space, capitalized words, digit runs, JSON
//! punctuation runs), and an end-of-sequence token.
//!
//! Run with `cargo bench --features structured --bench structured`.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use decoding::processors::TokenBitmask;
use decoding::sampler::Categorical;
use decoding::structured::{Constraint, Grammar, TokenVocabulary};
use decoding::{Context, LogitsProcessor, Sampler, Scores, TokenId, rng_from_seed};

#[path = "common/data.rs"]
mod data;
#[path = "common/floor.rs"]
mod floor;

use data::{SplitMix, logits};

/// The bytes of a synthetic vocabulary of `v` tokens; the last is EOS.
fn vocabulary(v: usize) -> Vec<Vec<u8>> {
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut seen: HashSet<Vec<u8>> = tokens.iter().cloned().collect();
    let mut g = SplitMix(v as u64);
    let letters = b"etaoinshrdlucmfwypvbgkjqxz";
    while tokens.len() < v - 1 {
        let len = 2 + (g.next() % 8) as usize;
        let mut piece = Vec::with_capacity(len + 1);
        match g.next() % 8 {
            0 => piece.extend((0..len).map(|_| b'0' + (g.next() % 10) as u8)),
            1 => piece.extend((0..len.min(3)).map(|_| b"{}[]\":, "[(g.next() % 8) as usize])),
            kind => {
                if kind < 5 {
                    piece.push(b' ');
                }
                for i in 0..len {
                    // Frequent letters more often.
                    let r = (g.next() % 26) as usize * (g.next() % 26) as usize / 26;
                    let c = letters[r];
                    piece.push(if i == 0 && kind == 7 { c.to_ascii_uppercase() } else { c });
                }
            }
        }
        if seen.insert(piece.clone()) {
            tokens.push(piece);
        }
    }
    tokens.push(b"<eos>".to_vec());
    tokens
}

const SCHEMA: &str = r#"{
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": false
}"#;

/// The points of the output the step is measured at: the bytes generated so
/// far (one single-byte token each).
const POINTS: [(&str, &[u8]); 3] =
    [("key", b"{"), ("string", b"{\"name\":\"Jo"), ("integer", b"{\"name\":\"Jo\",\"age\":")];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("structured");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for v in [50_257, 128_256] {
        let eos = (v - 1) as TokenId;
        let vocab = TokenVocabulary::from_token_bytes(vocabulary(v), &[eos]).unwrap();
        let grammar = Grammar::json_schema_str(SCHEMA).unwrap();
        let mut row = logits(v);
        let mut live: Vec<TokenId> = Vec::with_capacity(v);
        let mut rng = rng_from_seed(1);
        let mut sampler = Categorical::new();

        group.bench_function(format!("floor/{v}"), |b| b.iter(|| floor::floor(black_box(&row))));
        let prompt = [0];
        group.bench_function(format!("unconstrained/{v}"), |b| {
            b.iter(|| {
                let scores = Scores::new(&mut row, &mut live);
                sampler.sample(&scores, &mut rng).unwrap().token
            })
        });

        for (name, generated) in POINTS {
            let mut constraint: Constraint = vocab.constraint(&grammar).unwrap();
            let mut history = prompt.to_vec();
            for &byte in generated {
                constraint.accept(TokenId::from(byte));
                history.push(TokenId::from(byte));
            }
            let ctx = Context::new(&history, prompt.len()).unwrap();

            // The allowed set at this point, as the engine's 32-bit words.
            let mut processed = row.clone();
            let mut scores = Scores::new(&mut processed, &mut live);
            constraint.clone().process(&ctx, &mut scores).unwrap();
            let mut words = vec![0u32; v.div_ceil(32)];
            let mut allowed = 0;
            for id in 0..v as TokenId {
                if scores.get(id).is_some_and(|x| x > f32::NEG_INFINITY) {
                    words[id as usize / 32] |= 1 << (id % 32);
                    allowed += 1;
                }
            }
            println!("structured/{name}/{v}: {allowed} tokens allowed");

            // Each iteration gets a fresh constraint and a fresh row (a
            // mask that allows most tokens bans the others in the row).
            let fresh = || (constraint.clone(), row.clone());
            group.bench_function(format!("constrained/{name}/{v}"), |b| {
                b.iter_batched_ref(
                    fresh,
                    |(constraint, row)| {
                        let mut scores = Scores::new(row, &mut live);
                        constraint.process(&ctx, &mut scores).unwrap();
                        sampler.sample(&scores, &mut rng).unwrap().token
                    },
                    BatchSize::LargeInput,
                )
            });
            group.bench_function(format!("stage/{name}/{v}"), |b| {
                b.iter_batched_ref(
                    fresh,
                    |(constraint, row)| {
                        let mut scores = Scores::new(row, &mut live);
                        constraint.process(&ctx, &mut scores).unwrap();
                        scores.live_len()
                    },
                    BatchSize::LargeInput,
                )
            });
            let mut mask = TokenBitmask::new(v);
            group.bench_function(format!("masking/{name}/{v}"), |b| {
                b.iter_batched_ref(
                    || row.clone(),
                    |row| {
                        mask.reset(v);
                        mask.load_u32_words(black_box(&words), v);
                        let mut scores = Scores::new(row, &mut live);
                        mask.restrict(&mut scores).unwrap();
                        scores.live_len()
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
