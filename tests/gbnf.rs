//! GBNF grammars (llama.cpp's format) as constraints (feature
//! `structured`): hand grammars whose outputs are checked by a validator
//! of their own (`regex` for regular ones, serde_json for JSON), random
//! regular grammars against an equivalent regex, and malformed grammars.
#![cfg(feature = "structured")]

use decoding::sampler::Categorical;
use decoding::structured::{GbnfErrorKind, Grammar, StructuredError, TokenVocabulary};
use decoding::{FinishReason, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
use proptest::prelude::*;

/// Printable ASCII one character per token, a newline, some longer
/// tokens, and the end-of-sequence token last.
fn toy_tokens() -> Vec<String> {
    let mut t: Vec<String> = (32u8..127).map(|b| (b as char).to_string()).collect();
    for s in ["\n", "{\"", "\":", "\",\"", "\"}", "true", "null", "ab", "abc", "12", "\"a\"", "é"]
    {
        t.push(s.to_string());
    }
    t.push("<eos>".to_string());
    t
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A model whose row is a pseudo-random function of the history, with the
/// end-of-sequence id (last) favoured by `eos_bias`.
struct Hashed {
    vocab: usize,
    salt: u64,
    eos_bias: f32,
    history: Vec<TokenId>,
}

impl LanguageModel for Hashed {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.history.extend_from_slice(tokens);
        let mut h = self.salt;
        for &t in &self.history {
            h = mix(h ^ u64::from(t).wrapping_add(0x9e37_79b9_7f4a_7c15));
        }
        for (i, x) in logits.iter_mut().enumerate() {
            let r = mix(h ^ (i as u64) << 20);
            *x = (r >> 11) as f32 / (1u64 << 53) as f32 * 8.0 - 4.0;
        }
        logits[self.vocab - 1] += self.eos_bias;
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.history.clear();
        Ok(())
    }
}

/// The outputs of `runs` seeded constrained runs of at most `max_new`
/// tokens, with whether each completed.
fn outputs(gbnf: &str, runs: u64, max_new: usize, eos_bias: f32) -> Vec<(String, bool)> {
    let tokens = toy_tokens();
    let eos = tokens.len() as TokenId - 1;
    let vocab = TokenVocabulary::from_detokenizer(&tokens, tokens.len(), &[eos]).unwrap();
    let grammar = Grammar::gbnf(gbnf).unwrap_or_else(|e| panic!("{e}"));
    let constraint = vocab.constraint(&grammar).unwrap_or_else(|e| panic!("{e}"));
    (0..runs)
        .map(|seed| {
            let options =
                GenerateOptions::builder(max_new).eos_token(eos).seed(seed).build().unwrap();
            let pipeline = Pipeline::new().with(constraint.clone());
            let mut g = Generator::new(pipeline, Categorical::new(), options);
            let mut model =
                Hashed { vocab: tokens.len(), salt: seed, eos_bias, history: Vec::new() };
            let out = g.generate(&mut model, &[0]).unwrap();
            let text: String = out
                .tokens
                .iter()
                .filter(|&&t| t != eos)
                .map(|&t| tokens[t as usize].as_str())
                .collect();
            (text, out.finish_reason != FinishReason::Length)
        })
        .collect()
}

/// Every completed output satisfies `valid`; at least `min_complete` runs
/// complete.
fn check(
    gbnf: &str,
    runs: u64,
    max_new: usize,
    eos_bias: f32,
    min_complete: usize,
    valid: impl Fn(&str) -> bool,
) {
    let outs = outputs(gbnf, runs, max_new, eos_bias);
    let complete: Vec<&String> = outs.iter().filter(|(_, c)| *c).map(|(t, _)| t).collect();
    for text in &complete {
        assert!(valid(text), "{text:?} is not valid under\n{gbnf}");
    }
    assert!(complete.len() >= min_complete, "only {} of {runs} runs completed", complete.len());
}

const JSON: &str = r#"
# JSON values, with bounded whitespace.
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9]{1,2})? ws

ws ::= | " " | "\n" [ \t]{0,20}
"#;

#[test]
fn json_grammar_outputs_parse_as_json_objects() {
    check(JSON, 40, 120, 2.0, 10, |text| {
        serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_object())
    });
}

/// `text` is a sum of products of integers and parenthesized sums.
fn arithmetic(text: &str) -> bool {
    fn expr(s: &[u8], i: &mut usize) -> bool {
        term(s, i) && {
            while *i < s.len() && (s[*i] == b'+' || s[*i] == b'-') {
                *i += 1;
                if !term(s, i) {
                    return false;
                }
            }
            true
        }
    }
    fn term(s: &[u8], i: &mut usize) -> bool {
        factor(s, i) && {
            while *i < s.len() && (s[*i] == b'*' || s[*i] == b'/') {
                *i += 1;
                if !factor(s, i) {
                    return false;
                }
            }
            true
        }
    }
    fn factor(s: &[u8], i: &mut usize) -> bool {
        if *i < s.len() && s[*i] == b'(' {
            *i += 1;
            let ok = expr(s, i) && *i < s.len() && s[*i] == b')';
            *i += 1;
            return ok;
        }
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    }
    let mut i = 0;
    expr(text.as_bytes(), &mut i) && i == text.len()
}

#[test]
fn arithmetic_grammar_outputs_are_expressions() {
    let gbnf = r#"
root   ::= expr
expr   ::= term (("+" | "-") term)*
term   ::= factor (("*" | "/") factor)*
factor ::= [0-9]+ | "(" expr ")"
"#;
    check(gbnf, 40, 40, 1.0, 10, arithmetic);
    // The validator rejects what the grammar rejects.
    assert!(arithmetic("(1+2)*3") && !arithmetic("(1+2") && !arithmetic("1+") && !arithmetic(""));
}

#[test]
fn list_grammar_outputs_match_its_regex() {
    let gbnf = r#"
root  ::= "[" (item ("," " "? item)*)? "]"
item  ::= "\"" [a-c]{1,3} "\"" | [0-9]{1,2}
"#;
    let re = regex::Regex::new(
        r#"^\[((?:"[a-c]{1,3}"|[0-9]{1,2})(?:, ?(?:"[a-c]{1,3}"|[0-9]{1,2}))*)?\]$"#,
    )
    .unwrap();
    check(gbnf, 40, 40, 1.0, 20, |t| re.is_match(t));
}

#[test]
fn classes_and_repetitions_match_their_regex() {
    // Negated classes, escapes in classes, `.`, dashes in names, bounded
    // and open repetitions, a newline after `|` and comments.
    let gbnf = "root ::= Word-1 sep{1,2} (num | # a number\n  \"x\"+) tail?\n\
                Word-1 ::= [A-Z] [a-z]{2,4}\n\
                sep ::= [\\-_] | \"\\t\"\n\
                num ::= [0-9]{3,}\n\
                tail ::= \".\" [^a-z\\n] .";
    let re = regex::Regex::new(
        r"(?s)^[A-Z][a-z]{2,4}(?:[\-_]|\t){1,2}(?:[0-9]{3,}|x+)(?:\.[^a-z\n].)?$",
    )
    .unwrap();
    check(gbnf, 60, 30, 1.0, 20, |t| re.is_match(t));
}

#[test]
fn nullable_pieces_inside_recursive_rules() {
    // `ws` matches the empty string and sits between recursive items.
    let gbnf = "root ::= \"(\" ws (root ws)* \")\"\nws ::= \" \"?";
    let balanced = |t: &str| {
        let mut depth = 0i32;
        t.chars().all(|c| match c {
            '(' => {
                depth += 1;
                true
            }
            ')' => {
                depth -= 1;
                depth >= 0
            }
            ' ' => true,
            _ => false,
        }) && depth == 0
            && !t.contains("  ")
            && t.starts_with('(')
    };
    check(gbnf, 40, 30, 1.0, 10, balanced);
}

#[test]
fn llguidance_header_means_lark() {
    let outs = outputs("%llguidance {}\nstart: \"ab\" | \"c\"", 10, 10, 0.0);
    assert!(outs.iter().all(|(t, c)| *c && (t == "ab" || t == "c")), "{outs:?}");
}

#[test]
fn malformed_grammars_are_typed_errors() {
    for (text, line, column) in [
        ("root ::= \"a\" undefined-rule", 1, 14),
        ("root ::= [a-", 1, 13),
        ("root ::= \"a\"\nitem ::= (\"b\"", 2, 14),
        ("root ::= \"a\"{5,1}", 1, 17),
        ("", 1, 1),
        ("root ::= \"\\z\"", 1, 11),
    ] {
        match Grammar::gbnf(text) {
            Err(StructuredError::InvalidGbnf { line: l, column: c, .. }) => {
                assert_eq!((l, c), (line, column), "{text:?}")
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(matches!(
        Grammar::gbnf("a ::= \"x\""),
        Err(StructuredError::InvalidGbnf { kind: GbnfErrorKind::NoRoot, .. })
    ));
}

/// A regular grammar over `a`, `b`, `c`.
#[derive(Debug, Clone)]
enum Node {
    Lit(&'static str),
    Class(&'static str, &'static str),
    Seq(Vec<Node>),
    Alt(Vec<Node>, bool),
    Rep(Box<Node>, usize),
    Named(Box<Node>),
}

const REPS: [(&str, &str); 7] = [
    ("*", "*"),
    ("+", "+"),
    ("?", "?"),
    ("{2}", "{2}"),
    ("{1,}", "{1,}"),
    ("{0,2}", "{0,2}"),
    ("{1,3}", "{1,3}"),
];

/// `node` as GBNF (named parts appended to `rules`) and as a regex.
fn render(node: &Node, rules: &mut Vec<String>) -> (String, String) {
    match node {
        Node::Lit(s) => (format!("\"{s}\""), regex::escape(s)),
        Node::Class(g, r) => (g.to_string(), r.to_string()),
        Node::Seq(items) => {
            let parts: Vec<(String, String)> = items.iter().map(|i| render(i, rules)).collect();
            let g = parts.iter().map(|(g, _)| g.as_str()).collect::<Vec<_>>().join(" ");
            let r = parts.iter().map(|(_, r)| format!("(?:{r})")).collect::<String>();
            (g, r)
        }
        Node::Alt(alts, empty) => {
            let mut parts: Vec<(String, String)> = alts.iter().map(|a| render(a, rules)).collect();
            if *empty {
                parts.push((String::new(), String::new()));
            }
            let g = parts.iter().map(|(g, _)| g.as_str()).collect::<Vec<_>>().join(" |\n ");
            let r = parts.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join("|");
            (format!("( {g} )"), format!("(?:{r})"))
        }
        Node::Rep(inner, k) => {
            let (g, r) = render(inner, rules);
            (format!("({g}){}", REPS[*k].0), format!("(?:{r}){}", REPS[*k].1))
        }
        Node::Named(inner) => {
            let (g, r) = render(inner, rules);
            let name = format!("Part-{}", rules.len());
            rules.push(format!("{name} ::= {g}"));
            (name, format!("(?:{r})"))
        }
    }
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        Just(Node::Lit("a")),
        Just(Node::Lit("b")),
        Just(Node::Lit("c")),
        Just(Node::Lit("ab")),
        Just(Node::Class("[ab]", "[ab]")),
        Just(Node::Class("[b-c]", "[b-c]")),
        Just(Node::Class("[^a-b]", "[^a-b]")),
        Just(Node::Class(".", "(?s:.)")),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Node::Seq),
            (prop::collection::vec(inner.clone(), 1..3), any::<bool>())
                .prop_map(|(alts, empty)| Node::Alt(alts, empty)),
            (inner.clone(), 0..REPS.len()).prop_map(|(n, k)| Node::Rep(Box::new(n), k)),
            inner.prop_map(|n| Node::Named(Box::new(n))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_regular_grammars_give_outputs_matching_their_regex(
        node in node_strategy(),
        seed in any::<u64>(),
    ) {
        let mut rules = Vec::new();
        let (root, pattern) = render(&node, &mut rules);
        rules.insert(0, format!("root ::= {root}"));
        let gbnf = rules.join("\n");
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        // A grammar of the empty string only has no output to check.
        let grammar = match Grammar::gbnf(&gbnf) {
            Err(StructuredError::InvalidGbnf { kind: GbnfErrorKind::EmptyRoot, .. }) => {
                prop_assert!(re.is_match(""));
                return Ok(());
            }
            other => other.unwrap(),
        };
        let tokens = toy_tokens();
        let eos = tokens.len() as TokenId - 1;
        let vocab = TokenVocabulary::from_detokenizer(&tokens, tokens.len(), &[eos]).unwrap();
        let constraint = vocab.constraint(&grammar).unwrap();
        let options = GenerateOptions::builder(24).eos_token(eos).seed(seed).build().unwrap();
        let mut g = Generator::new(Pipeline::new().with(constraint), Categorical::new(), options);
        let mut model = Hashed { vocab: tokens.len(), salt: seed, eos_bias: 1.0, history: Vec::new() };
        let out = g.generate(&mut model, &[0]).unwrap();
        if out.finish_reason != FinishReason::Length {
            let text: String =
                out.tokens.iter().filter(|&&t| t != eos).map(|&t| tokens[t as usize].as_str()).collect();
            prop_assert!(re.is_match(&text), "{text:?} does not match {pattern}\n{gbnf}");
        }
    }
}
