//! The demonstration shown when the example runs without generation flags:
//! one prompt decoded four ways side by side, then the first step's
//! candidate probabilities before and after each processor as text bar
//! charts (a narrow and a broad temperature, a top-k and a top-p cut).

use std::fmt::Write as _;

use decoding::processors::{Temperature, TopK, TopP};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Context, GenerateOptions, Generator, LanguageModel, LogitsProcessor, Pipeline, Sampler, TokenId,
};

use crate::cli::{Args, DEFAULT_PROMPT, load};
use crate::tokenizer::END_OF_TEXT;
use crate::{Gpt2, Tokenizer};

/// Tokens generated per strategy in the demonstration.
pub const DEMO_NEW_TOKENS: usize = 24;

/// Candidates shown in each chart.
pub const CHART_ROWS: usize = 10;

/// Width of a bar, in character cells, at the chart's largest probability.
pub const BAR_WIDTH: usize = 24;

type Boxed = Box<dyn LogitsProcessor + Send>;

/// A decoding strategy of the side-by-side run.
struct Strategy {
    label: &'static str,
    processors: Vec<Boxed>,
    samples: bool,
}

/// The strategies run side by side.
fn strategies() -> Result<Vec<Strategy>, decoding::Error> {
    let strategy = |label, processors, samples| Strategy { label, processors, samples };
    Ok(vec![
        strategy("greedy", vec![], false),
        strategy("temperature 0.7", vec![Box::new(Temperature::new(0.7)?)], true),
        strategy("top-k 50", vec![Box::new(TopK::new(50)?)], true),
        strategy("top-p 0.92", vec![Box::new(TopP::new(0.92)?)], true),
    ])
}

/// The processors charted: label, what it does, the processor.
fn charted() -> Result<Vec<(&'static str, &'static str, Boxed)>, decoding::Error> {
    Ok(vec![
        (
            "temperature 0.7",
            "divides the logits by 0.7: a narrower distribution",
            Box::new(Temperature::new(0.7)?),
        ),
        (
            "temperature 1.5",
            "divides the logits by 1.5: a broader distribution",
            Box::new(Temperature::new(1.5)?),
        ),
        ("top-k 50", "keeps the 50 most likely tokens and renormalises", Box::new(TopK::new(50)?)),
        (
            "top-p 0.92",
            "keeps the most likely tokens up to 92% of the mass",
            Box::new(TopP::new(0.92)?),
        ),
    ])
}

/// Runs the demonstration, printing to stdout.
///
/// # Errors
///
/// Any error of loading, encoding, generating or processing, boxed.
pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (located, mut model, tokenizer) = load(args)?;
    let c = model.config().clone();
    println!(
        "model: {} ({} layers, {} wide, {} heads, {:.1}M parameters)",
        located.dir.display(),
        c.n_layer,
        c.n_embd,
        c.n_head,
        c.parameter_count() as f64 / 1e6
    );
    let prompt_text = args.prompt.as_deref().unwrap_or(DEFAULT_PROMPT);
    let prompt = tokenizer.encode(prompt_text)?;
    let pieces: Vec<String> =
        prompt.iter().map(|&id| tokenizer.token_string(id).unwrap_or_default()).collect();
    println!("prompt: {prompt_text:?} = {pieces:?} = {prompt:?}\n");

    let new_tokens = args.max_new_tokens.unwrap_or(DEMO_NEW_TOKENS);
    let seed = args.seed.unwrap_or(crate::cli::DEFAULT_SEED);
    println!("{new_tokens} new tokens each (sampling with seed {seed}):\n");
    let mut rows = Vec::new();
    for Strategy { label, processors, samples } in strategies()? {
        let mut pipeline = Pipeline::new();
        for p in processors {
            pipeline.push_boxed(p);
        }
        let sampler: Box<dyn Sampler + Send> =
            if samples { Box::new(Categorical::new()) } else { Box::new(Greedy::new()) };
        let mut builder =
            GenerateOptions::builder(new_tokens).seed(seed).vocab_size(tokenizer.vocab_size());
        if let Some(eos) =
            model.config().eos_token_id.or_else(|| tokenizer.added_token_id(END_OF_TEXT))
        {
            builder = builder.eos_token(eos);
        }
        let mut generator = Generator::new(pipeline, sampler, builder.build()?);
        let out = generator.generate_text(&mut model, &tokenizer, &prompt)?;
        rows.push((label.to_string(), out.text.unwrap_or_default()));
    }
    print!("{}", side_by_side(&rows, 76));

    let logits = first_step(&mut model, &prompt)?;
    let before = probabilities(&logits);
    let top = top_ids(&before, CHART_ROWS);
    println!(
        "\nThe first step: the {} most likely next tokens after {prompt_text:?}, before and after \
         each processor\n(bars are scaled to the largest probability in each chart).",
        top.len()
    );
    for (label, what, processor) in charted()? {
        let mut row = logits.clone();
        let mut pipeline = Pipeline::new();
        pipeline.push_boxed(processor);
        pipeline.process(&Context::prompt_only(&prompt), &mut row)?;
        let after = probabilities(&row);
        let kept = row.iter().filter(|x| x.is_finite()).count();
        let chart_rows: Vec<ChartRow> = top
            .iter()
            .map(|&id| ChartRow {
                label: token_label(&tokenizer, id),
                before: before[id as usize],
                after: after[id as usize],
            })
            .collect();
        let title = format!("{label}: {what} (kept {kept} of {} tokens)", row.len());
        print!("\n{}", render_chart(&title, &chart_rows, BAR_WIDTH));
    }
    Ok(())
}

fn first_step(model: &mut Gpt2, prompt: &[TokenId]) -> Result<Vec<f32>, crate::Gpt2Error> {
    model.reset()?;
    let mut logits = vec![0.0; model.vocab_size()];
    model.forward(prompt, 0, &mut logits)?;
    Ok(logits)
}

/// Softmax in f64; `-inf` scores get probability 0.
pub fn probabilities(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return vec![0.0; logits.len()];
    }
    let exp: Vec<f64> = logits.iter().map(|&x| (f64::from(x) - f64::from(max)).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The ids of the `n` largest probabilities, largest first (lower id first
/// among ties), by selection rather than a full sort.
pub fn top_ids(probs: &[f64], n: usize) -> Vec<TokenId> {
    let mut ids: Vec<TokenId> = (0..probs.len() as TokenId).collect();
    let order =
        |a: &TokenId, b: &TokenId| probs[*b as usize].total_cmp(&probs[*a as usize]).then(a.cmp(b));
    let n = n.min(ids.len());
    if n == 0 {
        return Vec::new();
    }
    if n < ids.len() {
        ids.select_nth_unstable_by(n - 1, order);
        ids.truncate(n);
    }
    ids.sort_unstable_by(order);
    ids
}

/// A token as a quoted, escaped label: `" The"`, `"\n"`, and the bytes
/// of a partial UTF-8 character in hex (`"\xe3\x81"`).
pub fn token_label(tokenizer: &Tokenizer, id: TokenId) -> String {
    let Some(bytes) = tokenizer.token_bytes(id) else {
        return format!("<id {id}>");
    };
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.extend(c.escape_debug());
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// One candidate of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRow {
    /// The token, as shown.
    pub label: String,
    /// Probability before the processor.
    pub before: f64,
    /// Probability after it (0 when it removed the token).
    pub after: f64,
}

/// A horizontal bar of `fraction` (clamped to [0, 1]) of `width` cells,
/// drawn with eighth blocks and padded with spaces to `width`.
pub fn bar(fraction: f64, width: usize) -> String {
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = (fraction.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let (full, part) = (eighths / 8, eighths % 8);
    let mut out = "█".repeat(full);
    out.push_str(EIGHTHS[part]);
    let cells = full + usize::from(part > 0);
    out.push_str(&" ".repeat(width.saturating_sub(cells)));
    out
}

/// A chart: a title line, a header, then one line per candidate with its
/// before and after bars and percentages. Bars are scaled to the largest
/// probability in the chart.
pub fn render_chart(title: &str, rows: &[ChartRow], width: usize) -> String {
    let scale = rows.iter().flat_map(|r| [r.before, r.after]).fold(0.0, f64::max);
    let label_width = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0).clamp(5, 16);
    let mut out = format!("{title}\n");
    let header = format!("  {:<label_width$}  {:<w$}  after", "token", "before", w = width + 7);
    let _ = writeln!(out, "{header}");
    for r in rows {
        let label: String = if r.label.chars().count() > label_width {
            r.label.chars().take(label_width - 1).chain(['…']).collect()
        } else {
            r.label.clone()
        };
        let pct =
            |p: f64| if p > 0.0 { format!("{:5.1}%", 100.0 * p) } else { "  cut ".to_string() };
        let fraction = |p: f64| if scale > 0.0 { p / scale } else { 0.0 };
        let line = format!(
            "  {label:<label_width$}  {} {}  {} {}",
            bar(fraction(r.before), width),
            pct(r.before),
            bar(fraction(r.after), width),
            pct(r.after)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Labelled texts side by side: the label column, then the text wrapped to
/// `width` characters, continuation lines indented under it. Newlines show
/// as `⏎`.
pub fn side_by_side(rows: &[(String, String)], width: usize) -> String {
    let label_width = rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, text) in rows {
        let flat: String = text.replace("\r\n", "⏎").replace(['\n', '\r'], "⏎");
        let lines = wrap(&flat, width.max(8));
        for (i, line) in lines.iter().enumerate() {
            let head = if i == 0 { label.as_str() } else { "" };
            let _ = writeln!(out, "{head:<label_width$} │ {line}");
        }
    }
    out
}

/// Greedy word wrap on spaces; words longer than `width` are cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_inclusive(' ') {
        let mut word = word;
        loop {
            let line = lines.last_mut().unwrap_or_else(|| unreachable!("never empty"));
            let room = width
                .saturating_sub(line.trim_end().chars().count() + usize::from(line.ends_with(" ")));
            let len = word.trim_end().chars().count();
            if len <= room {
                line.push_str(word);
                break;
            }
            if line.is_empty() {
                let cut: String = word.chars().take(width).collect();
                word = &word[cut.len()..];
                line.push_str(&cut);
            }
            lines.push(String::new());
            if word.is_empty() {
                break;
            }
        }
    }
    let mut lines: Vec<String> = lines.into_iter().map(|l| l.trim_end().to_string()).collect();
    while lines.len() > 1 && lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_use_eighth_blocks_and_pad() {
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██  ");
        assert_eq!(bar(0.0, 3), "   ");
        assert_eq!(bar(1.0 / 32.0, 4), "▏   ");
        assert_eq!(bar(3.0 / 16.0, 2), "▍ ");
        assert_eq!(bar(0.25, 2), "▌ ");
        assert_eq!(bar(7.0, 2), "██");
        assert_eq!(bar(f64::NAN, 2).chars().count(), 2);
    }

    #[test]
    fn probabilities_and_top_ids() {
        let p = probabilities(&[0.0, f32::NEG_INFINITY, 3f32.ln(), 0.0]);
        assert!((p[2] - 0.6).abs() < 1e-7 && p[1] == 0.0 && (p[0] - 0.2).abs() < 1e-7);
        assert_eq!(top_ids(&p, 3), [2, 0, 3]);
        assert_eq!(top_ids(&p, 10), [2, 0, 3, 1]);
        assert!(top_ids(&p, 0).is_empty());
        assert_eq!(probabilities(&[f32::NEG_INFINITY; 2]), [0.0, 0.0]);
    }

    #[test]
    fn charts_show_both_columns_and_cut_tokens() {
        let rows = [
            ChartRow { label: "\" The\"".into(), before: 0.2, after: 0.4 },
            ChartRow { label: "\" a\"".into(), before: 0.1, after: 0.0 },
        ];
        let chart = render_chart("top-k 1", &rows, 8);
        let lines: Vec<&str> = chart.lines().collect();
        assert_eq!(lines[0], "top-k 1");
        assert!(lines[1].contains("before") && lines[1].contains("after"));
        assert_eq!(lines[2], "  \" The\"  ████      20.0%  ████████  40.0%");
        // The cut token's bar is empty: 8 blank cells between the columns.
        assert_eq!(lines[3], format!("  \" a\"    ██        10.0%  {}   cut", " ".repeat(8)));
    }

    #[test]
    fn token_labels_escape_controls_and_partial_characters() {
        let tok = Tokenizer::gpt2().unwrap();
        let id = |text: &str| tok.encode(text).unwrap()[0];
        assert_eq!(token_label(&tok, 383), "\" The\"");
        assert_eq!(token_label(&tok, id("\n")), "\"\\n\"");
        // The first token of an emoji is a partial UTF-8 sequence.
        let first = tok.encode("🙂").unwrap()[0];
        let bytes = tok.token_bytes(first).unwrap();
        assert!(std::str::from_utf8(bytes).is_err());
        let hex: String = bytes.iter().map(|b| format!("\\x{b:02x}")).collect();
        assert_eq!(token_label(&tok, first), format!("\"{hex}\""));
        assert_eq!(token_label(&tok, 99_999), "<id 99999>");
    }

    #[test]
    fn texts_are_wrapped_under_their_label() {
        let rows = vec![
            ("greedy".to_string(), "The Matrix,\nand I".to_string()),
            ("top-p 0.9".to_string(), "one two three four".to_string()),
        ];
        assert_eq!(
            side_by_side(&rows, 9),
            "greedy    │ The\n          │ Matrix,⏎a\n          │ nd I\ntop-p 0.9 │ one two\n          │ three\n          │ four\n"
        );
        assert_eq!(wrap("", 5), [""]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
    }
}
