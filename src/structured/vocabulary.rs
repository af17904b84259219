//! `TokenVocabulary`: the bytes of every token, as the grammar engine needs
//! them, built from a tokenizer's `TokenBytes` or from any `Detokenizer`.

use std::sync::Arc;

use super::{Constraint, Grammar, StructuredError};
use crate::{Detokenizer, TokenBytes, TokenId, TokenizerError};
use llguidance::ParserFactory;
use llguidance::toktrie::{ApproximateTokEnv, TokEnv, TokRxInfo, TokTrie};

fn tokenizer_error(e: TokenizerError) -> StructuredError {
    StructuredError::Tokenizer { message: e.to_string() }
}

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

    /// A vocabulary from the bytes of every token of a Hugging Face
    /// tokenizer ([`TokenBytes`]: byte-level BPE, SentencePiece style with
    /// byte fallback, added tokens). Added tokens marked `special` are
    /// special; unused ids are never allowed. The vocabulary size is the
    /// largest id plus one.
    ///
    /// # Errors
    ///
    /// As [`TokenVocabulary::from_token_bytes`].
    pub fn from_token_table(tokens: &TokenBytes, eos: &[TokenId]) -> Result<Self, StructuredError> {
        Self::from_token_bytes(engine_bytes(tokens), eos)
    }

    /// A vocabulary from the text of a Hugging Face `tokenizer.json`, read
    /// as [`TokenBytes::from_tokenizer_json`] reads it.
    ///
    /// # Errors
    ///
    /// [`StructuredError::Tokenizer`] when [`TokenBytes`] cannot read the
    /// text (not JSON, no model vocabulary, a decoder neither byte-level
    /// nor SentencePiece style, ...); then as
    /// [`TokenVocabulary::from_token_bytes`].
    pub fn from_tokenizer_json(text: &str, eos: &[TokenId]) -> Result<Self, StructuredError> {
        Self::from_token_table(
            &TokenBytes::from_tokenizer_json(text).map_err(tokenizer_error)?,
            eos,
        )
    }

    /// A vocabulary from a loaded `tokenizers::Tokenizer` (feature
    /// `tokenizers`), read as [`TokenBytes::from_tokenizer`] reads it.
    ///
    /// # Errors
    ///
    /// As [`TokenVocabulary::from_tokenizer_json`].
    #[cfg(feature = "tokenizers")]
    pub fn from_tokenizer(
        tokenizer: &tokenizers::Tokenizer,
        eos: &[TokenId],
    ) -> Result<Self, StructuredError> {
        Self::from_token_table(
            &TokenBytes::from_tokenizer(tokenizer).map_err(tokenizer_error)?,
            eos,
        )
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

/// The bytes the engine reads for each id of `tokens`: special tokens
/// start with the marker byte, unused ids have none.
fn engine_bytes(tokens: &TokenBytes) -> Vec<Vec<u8>> {
    (0..tokens.len() as TokenId)
        .map(|id| match tokens.get(id) {
            None => Vec::new(),
            Some(bytes) if tokens.is_special(id) => {
                let mut marked = Vec::with_capacity(bytes.len() + 1);
                marked.push(SPECIAL);
                marked.extend_from_slice(bytes);
                marked
            }
            Some(bytes) => bytes.to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_tokens_are_marked_and_unused_ids_are_empty() {
        let tokens = TokenBytes::from_tokenizer_json(
            r#"{"decoder": {"type": "ByteLevel"},
                "model": {"vocab": {"Hello": 0, "Ġworld": 1, "Ċ": 3}},
                "added_tokens": [{"id": 4, "content": "<|endoftext|>", "special": true},
                                 {"id": 5, "content": "<tool>", "special": false}]}"#,
        )
        .unwrap();
        let bytes = engine_bytes(&tokens);
        assert_eq!(bytes.len(), 6);
        assert_eq!(bytes[0], b"Hello");
        assert_eq!(bytes[1], b" world");
        assert!(bytes[2].is_empty());
        assert_eq!(bytes[3], b"\n");
        assert_eq!(bytes[4], b"\xFF<|endoftext|>");
        assert_eq!(bytes[5], b"<tool>");
    }

    #[test]
    fn tokenizer_errors_keep_their_message() {
        let err = TokenVocabulary::from_tokenizer_json(
            r#"{"decoder": {"type": "ByteLevel"}, "model": {"vocab": {"€": 0}}}"#,
            &[0],
        )
        .unwrap_err();
        assert!(matches!(err, StructuredError::Tokenizer { .. }));
        assert!(err.to_string().contains("outside the byte-level alphabet"), "{err}");
    }
}
