//! `TokenVocabulary`: the bytes of every token, as the grammar engine needs
//! them, built from a `tokenizer.json` file or from any `Detokenizer`.

use std::sync::Arc;

use llguidance::ParserFactory;
use llguidance::toktrie::{ApproximateTokEnv, TokEnv, TokRxInfo, TokTrie};
use serde_json::Value;

use super::{Constraint, Grammar, StructuredError};
use crate::{Detokenizer, TokenId};

/// The largest vocabulary the engine's token trie can index.
pub const MAX_VOCAB_SIZE: usize = (1 << 24) - 1;

/// The marker byte that starts the bytes of a special token, so that no
/// text the grammar allows can spell it.
const SPECIAL: u8 = TokTrie::SPECIAL_TOKEN_MARKER;

/// A tokenizer's vocabulary as the grammar engine sees it: the bytes of
/// every token id `0..n` and the end-of-sequence id(s).
///
/// Built once per tokenizer (it precomputes the engine's token trie and
/// lexer slices, tens of milliseconds for 50k tokens) and shared:
/// [`TokenVocabulary::constraint`] compiles a [`Grammar`] into a
/// [`Constraint`] for one sequence, and cloning a vocabulary is cheap (an
/// `Arc`).
///
/// # Tokens and bytes
///
/// - A token's bytes are what it adds to the text (byte-level BPE with the
///   GPT-2 byte alphabet undone; SentencePiece with `▁` turned into a space
///   and `<0xNN>` byte-fallback tokens as the byte `NN`).
/// - Special tokens (the end-of-sequence ids, and `tokenizer.json`'s added
///   tokens marked `special`) can never be spelled by the grammar's text;
///   the end-of-sequence ids are allowed exactly where the grammar may end.
/// - A token without bytes (an id the tokenizer leaves unused, or one the
///   detokenizer does not know) is never allowed.
/// - Ids from `n` up to a model's padded vocabulary size are never allowed.
///
/// # Example
///
/// ```
/// use decoding::structured::{Grammar, TokenVocabulary};
///
/// // A toy tokenizer: four text tokens and an end-of-sequence token.
/// let tokens = ["a", "b", "ab", " ", "<eos>"];
/// let vocab = TokenVocabulary::from_detokenizer(&tokens, tokens.len(), &[4])?;
/// assert_eq!(vocab.vocab_size(), 5);
/// let constraint = vocab.constraint(&Grammar::regex("(ab)+")?)?;
/// # let _ = constraint;
/// # Ok::<(), decoding::structured::StructuredError>(())
/// ```
#[derive(Clone)]
pub struct TokenVocabulary {
    factory: Arc<ParserFactory>,
    vocab_size: usize,
    eos: Vec<TokenId>,
}

impl std::fmt::Debug for TokenVocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVocabulary")
            .field("vocab_size", &self.vocab_size)
            .field("eos", &self.eos)
            .finish_non_exhaustive()
    }
}

impl TokenVocabulary {
    /// A vocabulary from the bytes of each token id (`tokens[id]`) and the
    /// end-of-sequence ids. Entries of `tokens` that start with the byte
    /// `0xFF` are special tokens (as in the engine's convention).
    ///
    /// # Errors
    ///
    /// [`StructuredError::VocabSize`] for an empty or oversized vocabulary,
    /// [`StructuredError::NoEosToken`] when `eos` is empty,
    /// [`StructuredError::EosOutOfRange`] when an id of `eos` is not below
    /// `tokens.len()`.
    pub fn from_token_bytes(
        mut tokens: Vec<Vec<u8>>,
        eos: &[TokenId],
    ) -> Result<Self, StructuredError> {
        let n = tokens.len();
        if n == 0 || n > MAX_VOCAB_SIZE {
            return Err(StructuredError::VocabSize { vocab_size: n, max: MAX_VOCAB_SIZE });
        }
        let Some(&first) = eos.first() else {
            return Err(StructuredError::NoEosToken);
        };
        for &id in eos {
            if id as usize >= n {
                return Err(StructuredError::EosOutOfRange { id, vocab_size: n });
            }
        }
        for &id in eos {
            let bytes = &mut tokens[id as usize];
            if bytes.first() != Some(&SPECIAL) {
                if bytes.is_empty() {
                    bytes.extend_from_slice(b"<eos>");
                }
                bytes.insert(0, SPECIAL);
            }
        }
        let info = TokRxInfo::new(n as u32, first);
        let trie = TokTrie::from(&info, &tokens).with_eos_tokens(eos);
        let env: TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|e| StructuredError::Tokenizer { message: e.to_string() })?;
        factory.quiet();
        Ok(TokenVocabulary { factory: Arc::new(factory), vocab_size: n, eos: eos.to_vec() })
    }

    /// A vocabulary from any [`Detokenizer`] the crate knows (the GPT-2
    /// example's built-in tokenizer, a list of strings, ...): the bytes of
    /// ids `0..vocab_size` as it decodes them. Ids it does not know are
    /// never allowed; the `eos` ids are special.
    ///
    /// # Errors
    ///
    /// As [`TokenVocabulary::from_token_bytes`].
    pub fn from_detokenizer(
        detokenizer: &dyn Detokenizer,
        vocab_size: usize,
        eos: &[TokenId],
    ) -> Result<Self, StructuredError> {
        if vocab_size == 0 || vocab_size > MAX_VOCAB_SIZE {
            return Err(StructuredError::VocabSize { vocab_size, max: MAX_VOCAB_SIZE });
        }
        let tokens = (0..vocab_size as TokenId)
            .map(|id| {
                let mut bytes = Vec::new();
                if detokenizer.decode(id, &mut bytes).is_err() {
                    bytes.clear();
                }
                bytes
            })
            .collect();
        Self::from_token_bytes(tokens, eos)
    }

    /// A vocabulary from the text of a Hugging Face `tokenizer.json`:
    /// byte-level BPE (GPT-2, Llama 3, Qwen, ...) or SentencePiece-style
    /// models with byte fallback (Llama 2, Mistral, ...), BPE or Unigram
    /// vocabularies, and the added tokens (those marked `special` are
    /// special). The vocabulary size is the largest id plus one.
    ///
    /// # Errors
    ///
    /// [`StructuredError::Tokenizer`] when the text is not JSON, has no
    /// model vocabulary, or its decoder is neither byte-level nor byte
    /// fallback; then as [`TokenVocabulary::from_token_bytes`].
    pub fn from_tokenizer_json(text: &str, eos: &[TokenId]) -> Result<Self, StructuredError> {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| StructuredError::Tokenizer { message: e.to_string() })?;
        Self::from_token_bytes(token_bytes(&json)?, eos)
    }

    /// The number of token ids `n` the vocabulary describes.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The end-of-sequence ids.
    pub fn eos_tokens(&self) -> &[TokenId] {
        &self.eos
    }

    /// Checks that a model with `model_vocab` scores per position can be
    /// constrained with this vocabulary: it needs at least `n` (padded ids
    /// past `n` are allowed and never chosen).
    ///
    /// # Errors
    ///
    /// [`StructuredError::VocabMismatch`] when `model_vocab < n`.
    pub fn check_model_vocab(&self, model_vocab: usize) -> Result<(), StructuredError> {
        if model_vocab < self.vocab_size {
            return Err(StructuredError::VocabMismatch {
                model: model_vocab,
                tokenizer: self.vocab_size,
            });
        }
        Ok(())
    }

    /// Compiles `grammar` into a [`Constraint`] for one sequence.
    ///
    /// # Errors
    ///
    /// [`StructuredError::InvalidSchema`], [`StructuredError::Unsupported`],
    /// [`StructuredError::InvalidRegex`] or [`StructuredError::InvalidGrammar`]
    /// when the engine rejects the grammar, and
    /// [`StructuredError::Unsatisfiable`] when no token of this vocabulary
    /// can start an output.
    pub fn constraint(&self, grammar: &Grammar) -> Result<Constraint, StructuredError> {
        let parser = self
            .factory
            .create_parser(grammar.to_engine())
            .map_err(|e| grammar.classify(format!("{e:#}")))?;
        Constraint::new(llguidance::Matcher::new(Ok(parser)), self.vocab_size, &self.eos)
    }
}

/// How a `tokenizer.json` maps token strings to bytes.
#[derive(Debug, Clone, Copy)]
enum Decoding {
    /// GPT-2's byte alphabet.
    ByteLevel,
    /// SentencePiece: `space` stands for a space; `<0xNN>` is a byte.
    ByteFallback { space: char },
}

fn tokenizer_error(message: impl Into<String>) -> StructuredError {
    StructuredError::Tokenizer { message: message.into() }
}

fn decoding(decoder: &Value) -> Option<Decoding> {
    let kind = decoder["type"].as_str()?;
    match kind {
        "ByteLevel" => Some(Decoding::ByteLevel),
        "ByteFallback" => Some(Decoding::ByteFallback { space: '▁' }),
        "Metaspace" => {
            let space = decoder["replacement"].as_str().and_then(|s| s.chars().next());
            Some(Decoding::ByteFallback { space: space.unwrap_or('▁') })
        }
        "Sequence" => {
            let parts = decoder["decoders"].as_array()?;
            let mut found = None;
            let mut space = '▁';
            for part in parts {
                match part["type"].as_str() {
                    Some("ByteLevel") => return Some(Decoding::ByteLevel),
                    Some("ByteFallback") => found = Some(()),
                    Some("Metaspace") => {
                        if let Some(c) = part["replacement"].as_str().and_then(|s| s.chars().next())
                        {
                            space = c;
                        }
                        found = Some(());
                    }
                    Some("Replace") if part["content"].as_str() == Some(" ") => {
                        let pattern = part["pattern"]["String"].as_str().unwrap_or_default();
                        let mut chars = pattern.chars();
                        if let (Some(c), None) = (chars.next(), chars.next()) {
                            space = c;
                        }
                    }
                    _ => {}
                }
            }
            found.map(|()| Decoding::ByteFallback { space })
        }
        _ => None,
    }
}

/// The inverse of GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand
/// for themselves, the other 68 bytes for U+0100.. in byte order.
fn byte_alphabet() -> [Option<u8>; 0x144] {
    let mut map = [None; 0x144];
    let mut next = 0x100;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        if printable {
            map[b as usize] = Some(b);
        } else {
            map[next] = Some(b);
            next += 1;
        }
    }
    map
}

fn piece_bytes(
    piece: &str,
    decoding: Decoding,
    alphabet: &[Option<u8>; 0x144],
) -> Result<Vec<u8>, StructuredError> {
    match decoding {
        Decoding::ByteLevel => piece
            .chars()
            .map(|c| {
                alphabet.get(c as usize).copied().flatten().ok_or_else(|| {
                    tokenizer_error(format!(
                        "token {piece:?} has the character {c:?}, outside the byte-level alphabet"
                    ))
                })
            })
            .collect(),
        Decoding::ByteFallback { space } => {
            let hex = piece
                .strip_prefix("<0x")
                .and_then(|rest| rest.strip_suffix('>'))
                .filter(|h| h.len() == 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            Ok(match hex {
                Some(b) => vec![b],
                None => piece.replace(space, " ").into_bytes(),
            })
        }
    }
}

/// The bytes of every token id of a parsed `tokenizer.json`.
fn token_bytes(json: &Value) -> Result<Vec<Vec<u8>>, StructuredError> {
    let decoding = decoding(&json["decoder"]).ok_or_else(|| {
        tokenizer_error(format!(
            "the decoder {} is neither byte-level nor byte fallback",
            json["decoder"]["type"]
        ))
    })?;
    let alphabet = byte_alphabet();
    let mut entries: Vec<(usize, Vec<u8>)> = Vec::new();
    match &json["model"]["vocab"] {
        // BPE and WordPiece: piece -> id.
        Value::Object(map) => {
            for (piece, id) in map {
                let id = id.as_u64().ok_or_else(|| {
                    tokenizer_error(format!("the id of token {piece:?} is not an integer"))
                })?;
                entries.push((id as usize, piece_bytes(piece, decoding, &alphabet)?));
            }
        }
        // Unigram: [piece, score] pairs in id order.
        Value::Array(list) => {
            for (id, pair) in list.iter().enumerate() {
                let piece = pair[0].as_str().ok_or_else(|| {
                    tokenizer_error(format!("unigram entry {id} has no piece string"))
                })?;
                entries.push((id, piece_bytes(piece, decoding, &alphabet)?));
            }
        }
        _ => return Err(tokenizer_error("model.vocab is missing")),
    }
    let mut specials: Vec<(usize, Vec<u8>)> = Vec::new();
    if let Some(added) = json["added_tokens"].as_array() {
        for t in added {
            let (Some(id), Some(content)) = (t["id"].as_u64(), t["content"].as_str()) else {
                return Err(tokenizer_error("an added token has no id or content"));
            };
            let mut bytes = content.as_bytes().to_vec();
            if t["special"].as_bool() == Some(true) {
                bytes.insert(0, SPECIAL);
            }
            specials.push((id as usize, bytes));
        }
    }
    let n = entries.iter().chain(&specials).map(|(id, _)| id + 1).max().unwrap_or(0);
    if n > MAX_VOCAB_SIZE {
        return Err(StructuredError::VocabSize { vocab_size: n, max: MAX_VOCAB_SIZE });
    }
    let mut tokens = vec![Vec::new(); n];
    // Added tokens win over a model piece of the same id.
    for (id, bytes) in entries.into_iter().chain(specials) {
        tokens[id] = bytes;
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_a_bijection() {
        let map = byte_alphabet();
        let mut seen = [false; 256];
        for b in map.iter().flatten() {
            assert!(!seen[*b as usize]);
            seen[*b as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        // 'Ġ' (U+0120) is the space, 'Ċ' (U+010A) the newline.
        assert_eq!(map[0x120], Some(b' '));
        assert_eq!(map[0x10A], Some(b'\n'));
        assert_eq!(map['a' as usize], Some(b'a'));
    }

    #[test]
    fn byte_level_and_byte_fallback_pieces() {
        let json: Value = serde_json::from_str(
            r#"{"decoder": {"type": "ByteLevel"},
                "model": {"vocab": {"Hello": 0, "Ġworld": 1, "Ċ": 2}},
                "added_tokens": [{"id": 3, "content": "<|endoftext|>", "special": true}]}"#,
        )
        .unwrap();
        let t = token_bytes(&json).unwrap();
        assert_eq!(t[0], b"Hello");
        assert_eq!(t[1], b" world");
        assert_eq!(t[2], b"\n");
        assert_eq!(t[3], b"\xFF<|endoftext|>");

        let json: Value = serde_json::from_str(
            r#"{"decoder": {"type": "Sequence", "decoders": [
                    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                    {"type": "ByteFallback"}, {"type": "Fuse"}]},
                "model": {"vocab": {"<unk>": 0, "<0x0A>": 1, "▁the": 2, "<0xE2>": 4}},
                "added_tokens": [{"id": 0, "content": "<unk>", "special": true}]}"#,
        )
        .unwrap();
        let t = token_bytes(&json).unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(t[0], b"\xFF<unk>");
        assert_eq!(t[1], b"\n");
        assert_eq!(t[2], b" the");
        assert!(t[3].is_empty());
        assert_eq!(t[4], [0xE2]);
    }

    #[test]
    fn unknown_decoders_and_characters_are_errors() {
        let json: Value =
            serde_json::from_str(r#"{"decoder": {"type": "WordPiece"}, "model": {"vocab": {}}}"#)
                .unwrap();
        assert!(matches!(token_bytes(&json), Err(StructuredError::Tokenizer { .. })));
        let json: Value = serde_json::from_str(
            r#"{"decoder": {"type": "ByteLevel"}, "model": {"vocab": {"€": 0}}}"#,
        )
        .unwrap();
        let err = token_bytes(&json).unwrap_err();
        assert!(err.to_string().contains("outside the byte-level alphabet"), "{err}");
    }
}
