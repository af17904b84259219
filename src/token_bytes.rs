//! `TokenBytes`: the bytes every token of a Hugging Face tokenizer adds to
//! the text, read from its `tokenizer.json` (or, with the feature
//! `tokenizers`, from a loaded `tokenizers::Tokenizer`), and the piece →
//! bytes rules they share with the `tokenizers` adapter and the structured
//! outputs' vocabulary.

use serde_json::Value;

use crate::{Detokenizer, TokenId, UnknownToken};

/// The number of ids a tokenizer may describe: every id is below it (2²⁴ −
/// 1, the most the structured outputs' token trie indexes; the largest
/// published vocabularies have a few hundred thousand tokens).
pub const MAX_TOKENIZER_VOCAB: usize = (1 << 24) - 1;

/// A tokenizer whose token bytes cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// The text is not JSON.
    #[error("tokenizer.json is not JSON: {message}")]
    Json {
        /// The parser's message.
        message: String,
    },
    /// A part the table needs is missing or has the wrong type.
    #[error("tokenizer.json: {message}")]
    Malformed {
        /// What is missing or wrong.
        message: String,
    },
    /// The decoder is neither byte-level nor SentencePiece style (WordPiece,
    /// CTC, a BPE suffix decoder, none): a token's text would depend on its
    /// neighbours.
    #[error("the tokenizer's decoder {decoder} is neither byte-level nor SentencePiece style")]
    UnsupportedDecoder {
        /// The decoder's type, as JSON.
        decoder: String,
    },
    /// A piece of a byte-level tokenizer has a character outside GPT-2's
    /// byte alphabet.
    #[error("token {piece:?} has the character {character:?}, outside the byte-level alphabet")]
    OutsideByteAlphabet {
        /// The piece.
        piece: String,
        /// Its first character outside the alphabet.
        character: char,
    },
    /// A token id is not below [`MAX_TOKENIZER_VOCAB`].
    #[error("token id {id} is not below {max}")]
    IdTooLarge {
        /// The id.
        id: u64,
        /// [`MAX_TOKENIZER_VOCAB`].
        max: usize,
    },
}

fn malformed(message: impl Into<String>) -> TokenizerError {
    TokenizerError::Malformed { message: message.into() }
}

/// The bytes each token id adds to the text, for every id of a Hugging Face
/// tokenizer: the [`Detokenizer`] the generator's text output and stop
/// strings need, built once, looked up per token without allocating.
///
/// - **Byte-level BPE** (GPT-2, Llama 3, Qwen, ...): GPT-2's byte alphabet
///   is undone, so a token that holds part of a UTF-8 character holds those
///   bytes and nothing else; the generator releases text only once a
///   character is complete, so a streamed character is never cut and stop
///   strings match across token boundaries.
/// - **SentencePiece style** (Llama 2, Mistral, Gemma: a `Metaspace`
///   decoder, or a decoder sequence with `Replace("▁", " ")` and
///   `ByteFallback`): the replacement character is a space and a
///   `<0xNN>` piece is the byte `NN`. Unlike `tokenizer.decode`, the space
///   of a word-initial piece is kept at the start of the text too (decode's
///   `Strip` removes it): these are the bytes the token adds after a
///   prompt.
/// - **Added tokens** (`<|endoftext|>`, `<s>`, ...) are their text;
///   [`TokenBytes::is_special`] tells the ones marked special. An added
///   token wins over a model piece with the same id.
/// - Ids the tokenizer leaves unused have no bytes: decoding one is
///   [`UnknownToken`].
///
/// # Example
///
/// ```
/// use decoding::{Detokenizer, TokenBytes};
///
/// let json = r#"{
///   "model": {"type": "BPE", "vocab": {"Hello": 0, "Ġworld": 1, "âĤ": 2, "¬": 3}},
///   "decoder": {"type": "ByteLevel"},
///   "added_tokens": [{"id": 4, "content": "<|endoftext|>", "special": true}]
/// }"#;
/// let tokens = TokenBytes::from_tokenizer_json(json)?;
/// assert_eq!(tokens.len(), 5);
/// let mut text = Vec::new();
/// for id in [0, 1, 2, 3] {
///     tokens.decode(id, &mut text)?;
/// }
/// assert_eq!(String::from_utf8(text)?, "Hello world€"); // "€" spans tokens 2 and 3
/// assert_eq!(tokens.get(2), Some(&[0xE2, 0x82][..]));
/// assert!(tokens.is_special(4));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBytes {
    /// The bytes of every id, one after the other.
    bytes: Vec<u8>,
    /// `ends[id]`: where the bytes of `id` end in `bytes` (they start where
    /// those of `id - 1` end).
    ends: Vec<u32>,
    kinds: Vec<Kind>,
}

/// What an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unused,
    Text,
    Special,
}

/// One token read from a tokenizer, before the table is laid out.
struct Entry {
    id: u32,
    bytes: Vec<u8>,
    special: bool,
}

impl TokenBytes {
    /// Reads the text of a `tokenizer.json`: the model's vocabulary (a
    /// piece → id map for BPE, WordLevel and WordPiece models, a list of
    /// `[piece, score]` pairs in id order for Unigram), the decoder, and the
    /// added tokens.
    ///
    /// # Errors
    ///
    /// [`TokenizerError::Json`] when the text is not JSON,
    /// [`TokenizerError::Malformed`] when it has no model vocabulary or an
    /// entry of the wrong type, [`TokenizerError::UnsupportedDecoder`],
    /// [`TokenizerError::OutsideByteAlphabet`], and
    /// [`TokenizerError::IdTooLarge`].
    pub fn from_tokenizer_json(text: &str) -> Result<Self, TokenizerError> {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| TokenizerError::Json { message: e.to_string() })?;
        let pieces = PieceDecoding::from_json(&json["decoder"])?;
        let mut entries = Vec::new();
        let mut piece_entry = |id: u64, piece: &str| -> Result<(), TokenizerError> {
            let id = checked_id(id)?;
            let mut bytes = Vec::with_capacity(piece.len());
            pieces.append(piece, &mut bytes)?;
            entries.push(Entry { id, bytes, special: false });
            Ok(())
        };
        match &json["model"]["vocab"] {
            Value::Object(map) => {
                for (piece, id) in map {
                    let id = id.as_u64().ok_or_else(|| {
                        malformed(format!("the id of token {piece:?} is not an integer"))
                    })?;
                    piece_entry(id, piece)?;
                }
            }
            Value::Array(list) => {
                for (id, pair) in list.iter().enumerate() {
                    let piece = pair[0].as_str().ok_or_else(|| {
                        malformed(format!("unigram entry {id} has no piece string"))
                    })?;
                    piece_entry(id as u64, piece)?;
                }
            }
            _ => return Err(malformed("model.vocab is missing")),
        }
        if let Some(added) = json["added_tokens"].as_array() {
            for token in added {
                let (Some(id), Some(content)) = (token["id"].as_u64(), token["content"].as_str())
                else {
                    return Err(malformed("an added token has no id or content"));
                };
                entries.push(Entry {
                    id: checked_id(id)?,
                    bytes: content.as_bytes().to_vec(),
                    special: token["special"].as_bool() == Some(true),
                });
            }
        }
        Self::from_entries(entries)
    }

    /// Reads the token bytes of a loaded `tokenizers::Tokenizer` (feature
    /// `tokenizers`), by the same rules as
    /// [`TokenBytes::from_tokenizer_json`]: the table to build once when a
    /// tokenizer serves many runs (the `Detokenizer` implementation of
    /// `Tokenizer` itself looks each id up on every call).
    ///
    /// # Errors
    ///
    /// [`TokenizerError::UnsupportedDecoder`],
    /// [`TokenizerError::OutsideByteAlphabet`] and
    /// [`TokenizerError::IdTooLarge`].
    #[cfg(feature = "tokenizers")]
    pub fn from_tokenizer(tokenizer: &tokenizers::Tokenizer) -> Result<Self, TokenizerError> {
        let pieces = PieceDecoding::of(tokenizer)?;
        let mut entries = Vec::new();
        for (piece, id) in tokenizer.get_vocab(false) {
            let mut bytes = Vec::with_capacity(piece.len());
            pieces.append(&piece, &mut bytes)?;
            entries.push(Entry { id: checked_id(u64::from(id))?, bytes, special: false });
        }
        for (id, added) in tokenizer.get_added_tokens_decoder() {
            entries.push(Entry {
                id: checked_id(u64::from(id))?,
                bytes: added.content.into_bytes(),
                special: added.special,
            });
        }
        Self::from_entries(entries)
    }

    /// Lays the entries out by id; a later entry of an id wins (the added
    /// tokens come after the model's pieces).
    fn from_entries(mut entries: Vec<Entry>) -> Result<Self, TokenizerError> {
        entries.sort_by_key(|e| e.id); // stable: the order of equal ids stays
        let n = entries.last().map_or(0, |e| e.id as usize + 1);
        let mut table = TokenBytes {
            bytes: Vec::new(),
            ends: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
        };
        let mut entries = entries.into_iter().peekable();
        for id in 0..n as u32 {
            let mut last = None;
            while let Some(entry) = entries.next_if(|e| e.id == id) {
                last = Some(entry);
            }
            if let Some(entry) = last {
                table.bytes.extend_from_slice(&entry.bytes);
                table.kinds.push(if entry.special { Kind::Special } else { Kind::Text });
            } else {
                table.kinds.push(Kind::Unused);
            }
            let end = u32::try_from(table.bytes.len())
                .map_err(|_| malformed("the tokens hold more than 4 GiB of text"))?;
            table.ends.push(end);
        }
        Ok(table)
    }

    /// The number of ids the tokenizer describes: its largest id plus one.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the tokenizer has no token.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of `id`, or `None` for an id the tokenizer does not use.
    pub fn get(&self, id: TokenId) -> Option<&[u8]> {
        let i = id as usize;
        if *self.kinds.get(i)? == Kind::Unused {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.bytes[start..self.ends[i] as usize])
    }

    /// Whether `id` is an added token marked special (`<|endoftext|>`,
    /// `<s>`, ...).
    pub fn is_special(&self, id: TokenId) -> bool {
        self.kinds.get(id as usize) == Some(&Kind::Special)
    }
}

fn checked_id(id: u64) -> Result<u32, TokenizerError> {
    u32::try_from(id)
        .ok()
        .filter(|&id| (id as usize) < MAX_TOKENIZER_VOCAB)
        .ok_or(TokenizerError::IdTooLarge { id, max: MAX_TOKENIZER_VOCAB })
}

impl Detokenizer for TokenBytes {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        out.extend_from_slice(self.get(token).ok_or(UnknownToken(token))?);
        Ok(())
    }
}

/// A `tokenizers::Tokenizer` streams text straight into the generator
/// (feature `tokenizers`): each id's bytes as [`TokenBytes`] computes them,
/// looked up per call (a string for the piece and a read of the decoder;
/// for many tokens, build a [`TokenBytes`] once with
/// [`TokenBytes::from_tokenizer`], which also checks the decoder up front).
/// With a decoder that is neither byte-level nor SentencePiece style, every
/// id is an [`UnknownToken`].
///
/// The generator's text methods take a `&dyn Detokenizer`: pass
/// `&tokenizer`, no import needed. `Tokenizer` has a `decode` of its own
/// (ids to a `String`, reached through `Deref`); where `Detokenizer` is
/// imported, method-call syntax finds the trait's first, so call the
/// tokenizer's as `(*tokenizer).decode(&ids, false)` there, and the
/// trait's as `Detokenizer::decode(&tokenizer, id, &mut out)`.
///
/// ```
/// use decoding::sampler::Greedy;
/// use decoding::{Detokenizer, GenerateOptions, Generator, Pipeline};
///
/// let json = r#"{
///   "model": {"type": "BPE", "vocab": {"Hi": 0, "Ġthere": 1, "âĤ": 2, "¬": 3}, "merges": []},
///   "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}
/// }"#;
/// let tokenizer: tokenizers::Tokenizer = json.parse()?;
/// let mut text = Vec::new();
/// for id in [0, 1, 2, 3] {
///     Detokenizer::decode(&tokenizer, id, &mut text)?;
/// }
/// assert_eq!(String::from_utf8(text)?, "Hi there€");
///
/// // The generator streams whole characters: "€" (tokens 2 and 3) comes
/// // out once its last byte has arrived.
/// # struct Model(std::vec::IntoIter<u32>);
/// # impl decoding::LanguageModel for Model {
/// #     type Error = std::convert::Infallible;
/// #     fn vocab_size(&self) -> usize { 4 }
/// #     fn forward(&mut self, _: &[u32], _: usize, row: &mut [f32]) -> Result<(), Self::Error> {
/// #         row.fill(0.0);
/// #         row[self.0.next().unwrap_or(0) as usize] = 1.0;
/// #         Ok(())
/// #     }
/// #     fn reset(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # let mut model = Model(vec![1, 2, 3].into_iter());
/// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(3));
/// let chunks: Vec<String> = generator
///     .stream_text(&mut model, &tokenizer, &[0])?
///     .map(|step| step.map(|s| s.text))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(chunks, [" there", "", "€"]);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[cfg(feature = "tokenizers")]
impl Detokenizer for tokenizers::Tokenizer {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        let unknown = UnknownToken(token);
        if let Some(content) = self.get_added_vocabulary().simple_id_to_token(token) {
            out.extend_from_slice(content.as_bytes());
            return Ok(());
        }
        let piece = self.id_to_token(token).ok_or(unknown)?;
        let pieces = PieceDecoding::of(self).map_err(|_| unknown)?;
        pieces.append(&piece, out).map_err(|_| unknown)
    }
}

/// How a tokenizer's pieces spell bytes: the one set of rules behind
/// [`TokenBytes`], the `tokenizers` adapter and the structured outputs'
/// vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceDecoding {
    /// GPT-2's byte alphabet.
    ByteLevel,
    /// SentencePiece: `space` stands for a space; `<0xNN>` is the byte `NN`.
    SentencePiece { space: char },
}

impl PieceDecoding {
    /// The rules a `tokenizer.json` decoder describes.
    fn from_json(decoder: &Value) -> Result<Self, TokenizerError> {
        let unsupported = || TokenizerError::UnsupportedDecoder {
            decoder: decoder.get("type").unwrap_or(decoder).to_string(),
        };
        let replacement = |d: &Value| d["replacement"].as_str().and_then(|s| s.chars().next());
        match decoder["type"].as_str().ok_or_else(unsupported)? {
            "ByteLevel" => Ok(Self::ByteLevel),
            "ByteFallback" => Ok(Self::SentencePiece { space: '▁' }),
            "Metaspace" => Ok(Self::SentencePiece { space: replacement(decoder).unwrap_or('▁') }),
            "Sequence" => {
                let mut found = false;
                let mut space = '▁';
                for part in decoder["decoders"].as_array().ok_or_else(unsupported)? {
                    match part["type"].as_str() {
                        Some("ByteLevel") => return Ok(Self::ByteLevel),
                        Some("ByteFallback") => found = true,
                        Some("Metaspace") => {
                            space = replacement(part).unwrap_or(space);
                            found = true;
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
                if found { Ok(Self::SentencePiece { space }) } else { Err(unsupported()) }
            }
            _ => Err(unsupported()),
        }
    }

    /// The rules of a loaded tokenizer's decoder, read through its
    /// serialized form (the JSON of `tokenizer.json`).
    #[cfg(feature = "tokenizers")]
    fn of(tokenizer: &tokenizers::Tokenizer) -> Result<Self, TokenizerError> {
        let decoder = match tokenizer.get_decoder() {
            Some(d) => serde_json::to_value(d)
                .map_err(|e| TokenizerError::Json { message: e.to_string() })?,
            None => Value::Null,
        };
        Self::from_json(&decoder)
    }

    /// Appends the bytes of one piece to `out`; on error `out` is as it was.
    fn append(self, piece: &str, out: &mut Vec<u8>) -> Result<(), TokenizerError> {
        match self {
            Self::ByteLevel => {
                let start = out.len();
                for c in piece.chars() {
                    match byte_of_char(c) {
                        Some(b) => out.push(b),
                        None => {
                            out.truncate(start);
                            return Err(TokenizerError::OutsideByteAlphabet {
                                piece: piece.to_owned(),
                                character: c,
                            });
                        }
                    }
                }
            }
            Self::SentencePiece { space } => {
                let byte = piece
                    .strip_prefix("<0x")
                    .and_then(|rest| rest.strip_suffix('>'))
                    .filter(|hex| hex.len() == 2)
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match byte {
                    Some(b) => out.push(b),
                    None => {
                        for (i, part) in piece.split(space).enumerate() {
                            if i > 0 {
                                out.push(b' ');
                            }
                            out.extend_from_slice(part.as_bytes());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// GPT-2's `bytes_to_unicode`, inverted: the printable Latin-1 bytes stand
/// for themselves, the other 68 bytes for U+0100.. in byte order. `NONE`
/// marks a character outside the alphabet.
const BYTE_OF_CHAR: [u16; 0x144] = {
    let mut map = [NONE; 0x144];
    let mut next = 0x100;
    let mut b = 0;
    while b < 256 {
        if matches!(b as u8, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF) {
            map[b] = b as u16;
        } else {
            map[next] = b as u16;
            next += 1;
        }
        b += 1;
    }
    map
};
const NONE: u16 = 0x100;

/// The byte a character of the byte-level alphabet stands for.
fn byte_of_char(c: char) -> Option<u8> {
    let code = *BYTE_OF_CHAR.get(c as usize)?;
    u8::try_from(code).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GPT-2's `bytes_to_unicode`, as its Python source writes it.
    fn bytes_to_unicode() -> Vec<(u8, char)> {
        let mut bs: Vec<u32> =
            (u32::from(b'!')..=u32::from(b'~')).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
        let mut cs = bs.clone();
        let mut n = 0;
        for b in 0..256 {
            if !bs.contains(&b) {
                bs.push(b);
                cs.push(256 + n);
                n += 1;
            }
        }
        bs.iter().zip(&cs).map(|(&b, &c)| (b as u8, char::from_u32(c).unwrap())).collect()
    }

    #[test]
    fn the_byte_alphabet_inverts_gpt2s_bytes_to_unicode() {
        let pairs = bytes_to_unicode();
        assert_eq!(pairs.len(), 256);
        for (b, c) in pairs {
            assert_eq!(byte_of_char(c), Some(b), "{c:?}");
        }
        let in_alphabet = (0..0x200u32).filter_map(char::from_u32).filter_map(byte_of_char);
        assert_eq!(in_alphabet.count(), 256);
        assert_eq!(byte_of_char('Ġ'), Some(b' '));
        assert_eq!(byte_of_char('Ċ'), Some(b'\n'));
        assert_eq!(byte_of_char(' '), None);
        assert_eq!(byte_of_char('\u{144}'), None);
        assert_eq!(byte_of_char('€'), None);
    }

    #[test]
    fn sentencepiece_pieces_with_byte_fallback() {
        let json = r#"{
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}
            ]},
            "model": {"type": "BPE", "vocab": {"<unk>": 0, "<0x0A>": 1, "▁the": 2, "<0xE2>": 4, "<0xZZ>": 5, "a▁▁b": 6}},
            "added_tokens": [{"id": 7, "content": "</s>", "special": true}, {"id": 0, "content": "<unk>", "special": true}]
        }"#;
        let t = TokenBytes::from_tokenizer_json(json).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(t.get(0), Some(&b"<unk>"[..]));
        assert_eq!(t.get(1), Some(&b"\n"[..]));
        assert_eq!(t.get(2), Some(&b" the"[..]));
        assert_eq!(t.get(3), None);
        assert_eq!(t.get(4), Some(&[0xE2][..]));
        assert_eq!(t.get(5), Some(&b"<0xZZ>"[..]));
        assert_eq!(t.get(6), Some(&b"a  b"[..]));
        assert_eq!(t.get(7), Some(&b"</s>"[..]));
        assert_eq!(t.get(8), None);
        assert!(t.is_special(0) && t.is_special(7) && !t.is_special(2) && !t.is_special(3));
        let mut out = b"x".to_vec();
        assert_eq!(t.decode(3, &mut out), Err(UnknownToken(3)));
        assert_eq!(out, b"x");
    }

    #[test]
    fn unigram_lists_and_metaspace_replacements() {
        let json = r#"{
            "decoder": {"type": "Metaspace", "replacement": "_"},
            "model": {"type": "Unigram", "vocab": [["<unk>", 0.0], ["_a", -1.0], ["b", -2.0]]}
        }"#;
        let t = TokenBytes::from_tokenizer_json(json).unwrap();
        let mut out = Vec::new();
        for id in [1, 2, 1] {
            t.decode(id, &mut out).unwrap();
        }
        assert_eq!(out, b" ab a");
    }

    #[test]
    fn an_added_token_wins_over_a_piece_of_the_same_id() {
        let json = r#"{
            "decoder": {"type": "ByteLevel"},
            "model": {"vocab": {"a": 0, "b": 1}},
            "added_tokens": [{"id": 1, "content": "<|x|>", "special": false}]
        }"#;
        let t = TokenBytes::from_tokenizer_json(json).unwrap();
        assert_eq!(t.get(1), Some(&b"<|x|>"[..]));
        assert!(!t.is_special(1));
        let empty = TokenBytes::from_tokenizer_json(
            r#"{"decoder": {"type": "ByteLevel"}, "model": {"vocab": {}}}"#,
        )
        .unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.get(0), None);
    }

    #[test]
    fn malformed_files_are_typed_errors() {
        let max = MAX_TOKENIZER_VOCAB as u64;
        for (json, expected) in [
            (r#"{"decoder": {"type": "WordPiece"}, "model": {"vocab": {}}}"#, "\"WordPiece\""),
            (r#"{"decoder": null, "model": {"vocab": {}}}"#, "null"),
            (r#"{"model": {"vocab": {}}}"#, "null"),
            (
                r#"{"decoder": {"type": "Sequence", "decoders": [{"type": "Fuse"}]}, "model": {"vocab": {}}}"#,
                "\"Sequence\"",
            ),
        ] {
            let err = TokenBytes::from_tokenizer_json(json).unwrap_err();
            assert_eq!(
                err,
                TokenizerError::UnsupportedDecoder { decoder: expected.into() },
                "{json}"
            );
        }
        assert!(matches!(
            TokenBytes::from_tokenizer_json("not json"),
            Err(TokenizerError::Json { .. })
        ));
        assert_eq!(
            TokenBytes::from_tokenizer_json(
                r#"{"decoder": {"type": "ByteLevel"}, "model": {"vocab": {"a€": 0}}}"#
            ),
            Err(TokenizerError::OutsideByteAlphabet { piece: "a€".into(), character: '€' })
        );
        for id in [max, u64::from(u32::MAX) + 1] {
            let json = format!(
                r#"{{"decoder": {{"type": "ByteLevel"}}, "model": {{"vocab": {{"a": {id}}}}}}}"#
            );
            assert_eq!(
                TokenBytes::from_tokenizer_json(&json),
                Err(TokenizerError::IdTooLarge { id, max: MAX_TOKENIZER_VOCAB })
            );
        }
        for (json, what) in [
            (r#"{"decoder": {"type": "ByteLevel"}}"#, "model.vocab"),
            (r#"{"decoder": {"type": "ByteLevel"}, "model": {"vocab": {"a": -1}}}"#, "integer"),
            (r#"{"decoder": {"type": "Metaspace"}, "model": {"vocab": [[1, 0.0]]}}"#, "unigram"),
            (
                r#"{"decoder": {"type": "ByteLevel"}, "model": {"vocab": {}}, "added_tokens": [{"id": 1}]}"#,
                "no id or content",
            ),
        ] {
            let err = TokenBytes::from_tokenizer_json(json).unwrap_err();
            assert!(matches!(err, TokenizerError::Malformed { .. }), "{json}: {err:?}");
            assert!(err.to_string().contains(what), "{json}: {err}");
        }
    }
}
