//! Prompt log-probabilities on GPT-2: the generator scores the prompt
//! through `forward_all` in chunks; each prompt token's log-probability
//! equals the log-softmax of the row `forward` writes for its prefix alone.

use decoding::sampler::Greedy;
use decoding::{GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
use gpt2::lookup::bundled_dir;
use gpt2::{Gpt2, Tokenizer};

#[test]
fn prompt_logprobs_equal_the_log_softmax_of_each_prefix() {
    let mut model = Gpt2::from_dir(&bundled_dir()).expect("the bundled model loads");
    let v = model.vocab_size();
    let text =
        "The quick brown fox jumps over the lazy dog, and then it runs far away into the woods.";
    let prompt: Vec<TokenId> = Tokenizer::gpt2().unwrap().encode(text).unwrap();
    assert!(prompt.len() > 16, "more than one chunk of rows: {}", prompt.len());

    let options = GenerateOptions::builder(4).prompt_logprobs(3).build().unwrap();
    let out =
        Generator::new(Pipeline::new(), Greedy, options).generate(&mut model, &prompt).unwrap();
    let got = out.prompt_logprobs.unwrap();
    assert_eq!(got.len(), prompt.len());
    assert_eq!(got[0].raw, None);

    let mut row = vec![0.0f32; v];
    for i in 1..prompt.len() {
        model.reset().unwrap();
        model.forward(&prompt[..i], 0, &mut row).unwrap();
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        let want = row[prompt[i] as usize] as f64 - lse;
        let entry = &got[i];
        assert_eq!(entry.token, prompt[i]);
        let raw = f64::from(entry.raw.unwrap());
        assert!((raw - want).abs() < 1e-4, "token {i}: {raw} vs {want}");
        let mut ranked: Vec<usize> = (0..v).collect();
        ranked.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let top: Vec<TokenId> = entry.raw_top.iter().map(|t| t.token).collect();
        assert_eq!(top, ranked[..3].iter().map(|&id| id as TokenId).collect::<Vec<_>>());
    }

    // The same tokens as a run that does not score the prompt.
    let plain = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(4))
        .generate(&mut model, &prompt)
        .unwrap();
    assert_eq!(out.tokens, plain.tokens);
}
