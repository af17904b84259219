//! The watermark on a real model: 100 sampled generations of the bundled
//! GPT-2 with transformers' default watermark (γ = 0.25, δ = 2, lefthash)
//! and 100 without it, told apart by the detector from the tokens alone;
//! the same with the selfhash scheme.

use decoding::processors::Watermark;
use decoding::sampler::Categorical;
use decoding::watermark::{SeedingScheme, WatermarkConfig, WatermarkDetector};
use decoding::{GenerateOptions, Generator, LanguageModel, TokenId};
use gpt2::lookup::bundled_dir;
use gpt2::{Gpt2, Tokenizer};

const PROMPTS: [&str; 10] = [
    "First Citizen: Before we proceed any further, hear me speak.",
    "ROMEO: But, soft! what light through yonder window breaks?",
    "KING HENRY: Once more unto the breach, dear friends, once more;",
    "HAMLET: To be, or not to be, that is the question:",
    "MACBETH: Is this a dagger which I see before me,",
    "JULIET: O Romeo, Romeo! wherefore art thou Romeo?",
    "PORTIA: The quality of mercy is not strain'd,",
    "LEAR: Blow, winds, and crack your cheeks! rage! blow!",
    "OTHELLO: It is the cause, it is the cause, my soul,",
    "PROSPERO: Our revels now are ended. These our actors,",
];

/// The area under the ROC curve: the chance that a watermarked text scores
/// above a plain one (ties count one half).
fn auc(marked: &[f64], plain: &[f64]) -> f64 {
    let mut wins = 0.0;
    for &m in marked {
        for &p in plain {
            wins += if m > p {
                1.0
            } else if m == p {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (marked.len() * plain.len()) as f64
}

fn rate(scores: &[f64], threshold: f64) -> f64 {
    scores.iter().filter(|&&z| z > threshold).count() as f64 / scores.len() as f64
}

#[test]
fn the_detector_separates_watermarked_from_plain_generations() {
    let tokenizer = Tokenizer::gpt2().unwrap();
    let mut model = Gpt2::from_dir(&bundled_dir()).expect("the bundled model loads");
    let vocab = model.vocab_size();
    for scheme in [SeedingScheme::LeftHash, SeedingScheme::SelfHash] {
        let config = WatermarkConfig::new(vocab).unwrap().with_seeding_scheme(scheme);
        // Each distinct n-gram counted once: this small model repeats
        // itself, and repeats are not independent draws (counted every
        // time, they push plain texts' mean z above 0).
        let detector = WatermarkDetector::new(config.clone()).with_ignore_repeated_ngrams(true);
        let every = WatermarkDetector::new(config.clone());
        let (mut marked, mut plain) = (Vec::new(), Vec::new());
        let (mut marked_all, mut plain_all) = (Vec::new(), Vec::new());
        for (p, prompt) in PROMPTS.iter().enumerate() {
            let prompt: Vec<TokenId> = tokenizer.encode(prompt).unwrap();
            for s in 0..10u64 {
                let seed = 1000 * p as u64 + s;
                let options = GenerateOptions::builder(40).seed(seed).build().unwrap();
                let watermark = Watermark::new(config.clone());
                let mut generator = Generator::new(watermark, Categorical::new(), options.clone());
                let out = generator.generate(&mut model, &prompt).unwrap();
                marked.push(detector.detect(&out.tokens).unwrap().z_score);
                marked_all.push(every.detect(&out.tokens).unwrap().z_score);
                let mut generator = Generator::new((), Categorical::new(), options);
                let out = generator.generate(&mut model, &prompt).unwrap();
                plain.push(detector.detect(&out.tokens).unwrap().z_score);
                plain_all.push(every.detect(&out.tokens).unwrap().z_score);
            }
        }
        let area = auc(&marked, &plain);
        // The threshold of a 1% false-positive rate on these plain texts:
        // the second highest of the 100 plain scores.
        let mut sorted = plain.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let at_1pct = sorted[1];
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        // Printed for the record (the figures the docs quote).
        eprintln!(
            "{}: AUC {area:.4}; z > 4: TPR {:.2}, FPR {:.2}; FPR 1% (z > {at_1pct:.2}): TPR {:.2}; \
             mean z {:.2} watermarked, {:.2} plain",
            scheme.name(),
            rate(&marked, 4.0),
            rate(&plain, 4.0),
            rate(&marked, at_1pct),
            mean(&marked),
            mean(&plain),
        );
        eprintln!(
            "{} counting repeats: AUC {:.4}; z > 4: TPR {:.2}, FPR {:.2}; mean z {:.2} plain",
            scheme.name(),
            auc(&marked_all, &plain_all),
            rate(&marked_all, 4.0),
            rate(&plain_all, 4.0),
            mean(&plain_all),
        );
        // No plain text reaches z = 4 (a 3e-5 false-positive rate under
        // the null hypothesis); lefthash separates the two nearly
        // perfectly. Selfhash is weaker on a model this peaked: only the 40
        // best tokens of a row can turn green, and they hold most of the
        // mass already.
        assert!(rate(&plain, 4.0) <= 0.02, "{}: {plain:?}", scheme.name());
        match scheme {
            SeedingScheme::LeftHash => {
                assert!(area > 0.99, "lefthash: AUC {area}");
                assert!(rate(&marked, at_1pct) >= 0.9, "lefthash: {marked:?}");
            }
            SeedingScheme::SelfHash => assert!(area > 0.95, "selfhash: AUC {area}"),
        }
    }
}
