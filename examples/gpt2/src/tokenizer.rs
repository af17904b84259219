//! GPT-2's byte-level BPE tokenizer, exact and offline.
//!
//! Encoding, as Hugging Face's `tokenizers` does it for GPT-2:
//!
//! 1. Added tokens (`<|endoftext|>`) are cut out of the text first and map
//!    to their ids.
//! 2. The rest is split by GPT-2's pre-tokenizer pattern
//!    `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//!    (contractions, a word with its leading space, numbers, punctuation
//!    runs, whitespace runs that leave the last space to the next word).
//! 3. Each piece's UTF-8 bytes start as single-byte tokens and the
//!    adjacent pair with the lowest merge rank is merged, leftmost first
//!    among equal ranks, until no pair has a rank.
//!
//! Decoding concatenates the tokens' bytes; text is their UTF-8 reading,
//! invalid sequences replaced by U+FFFD (what `bytes.decode("utf-8",
//! "replace")` gives). As a [`Detokenizer`], a tokenizer gives the
//! `decoding` crate's generator the bytes of each token; the generator holds
//! back a character split across tokens when it streams text.
//!
//! The vocabulary and merges come from a model directory's
//! `tokenizer.json` or `vocab.json` + `merges.txt`, or from the built-in
//! copy of GPT-2's ranks (the `r50k_base` table that `tiktoken-rs` ships;
//! the merges are recovered from the ranks).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use decoding::{Detokenizer, TokenId, UnknownToken};
use fancy_regex::Regex;
use serde::Deserialize;

use crate::error::{Gpt2Error, Result, io_error, json_error};

/// GPT-2's pre-tokenizer pattern.
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// GPT-2's end-of-text token.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// A byte-level BPE tokenizer (GPT-2's, or one with the same scheme).
///
/// # Example
///
/// ```
/// use gpt2::Tokenizer;
///
/// let tok = Tokenizer::gpt2()?;
/// let ids = tok.encode("My favourite movie is")?;
/// assert_eq!(ids, [3666, 12507, 3807, 318]);
/// assert_eq!(tok.decode(&ids)?, "My favourite movie is");
/// # Ok::<(), gpt2::Gpt2Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Tokenizer {
    /// Token id → its bytes.
    tokens: Vec<Box<[u8]>>,
    /// Byte → its single-byte token.
    byte_ids: [TokenId; 256],
    /// (left, right) → (rank, merged token).
    merges: HashMap<(TokenId, TokenId), (u32, TokenId)>,
    /// Added tokens cut out before pre-tokenization, longest first.
    added: Vec<(String, TokenId)>,
    pattern: Regex,
    add_prefix_space: bool,
    source: String,
}

/// GPT-2's reversible map from bytes to printable characters: printable
/// Latin-1 bytes stand for themselves, the other 68 (controls, space,
/// 0x7F–0xA0, the soft hyphen) take U+0100 onwards in byte order.
pub fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or_else(|| unreachable!("below U+0200"));
    }
    table
}

fn char_to_byte() -> HashMap<char, u8> {
    byte_to_char().iter().enumerate().map(|(b, &c)| (c, b as u8)).collect()
}

/// An added token from `tokenizer.json`.
#[derive(Debug, Clone, Deserialize)]
struct AddedToken {
    id: TokenId,
    content: String,
}

#[derive(Deserialize)]
struct TokenizerJson {
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    normalizer: Option<serde_json::Value>,
    pre_tokenizer: Option<serde_json::Value>,
    model: BpeJson,
}

#[derive(Deserialize)]
struct BpeJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    vocab: HashMap<String, TokenId>,
    merges: Vec<MergeJson>,
    dropout: Option<f64>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    byte_fallback: bool,
    #[serde(default)]
    ignore_merges: bool,
}

/// A merge is `"left right"` in older files and `["left", "right"]` in newer.
#[derive(Deserialize)]
#[serde(untagged)]
enum MergeJson {
    Line(String),
    Pair(String, String),
}

impl Tokenizer {
    /// The built-in GPT-2 tokenizer: GPT-2's 50257 tokens (the `r50k_base`
    /// ranks bundled by `tiktoken-rs`, 50256 = `<|endoftext|>`), no files
    /// needed.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Tokenizer`] if the bundled table is inconsistent (a
    /// token whose bytes are not the merge of two earlier tokens).
    pub fn gpt2() -> Result<Self> {
        let path = PathBuf::from("<built-in r50k_base>");
        let err = |message: String| Gpt2Error::Tokenizer { path: path.clone(), message };
        let bpe = tiktoken_rs::r50k_base().map_err(|e| err(e.to_string()))?;
        let end_of_text: TokenId = 50256;
        let mut tokens = Vec::with_capacity(end_of_text as usize + 1);
        for rank in 0..end_of_text {
            let bytes = bpe.decode_bytes(&[rank]).map_err(|e| err(e.to_string()))?;
            tokens.push(bytes.into_boxed_slice());
        }
        tokens.push(END_OF_TEXT.as_bytes().into());
        let added = vec![(END_OF_TEXT.to_string(), end_of_text)];
        Self::from_ranked_tokens(tokens, end_of_text as usize, added, path, "built-in GPT-2")
    }

    /// Builds a tokenizer from tokens listed in rank order (the first 256
    /// are the single bytes, each later one the merge of two earlier ones)
    /// followed by added tokens from `ordinary` on. The merges are recovered
    /// from the ranks: token `r`'s pair is what BPE with the merges below
    /// `r` makes of its bytes.
    fn from_ranked_tokens(
        tokens: Vec<Box<[u8]>>,
        ordinary: usize,
        added: Vec<(String, TokenId)>,
        path: PathBuf,
        source: &str,
    ) -> Result<Self> {
        let err = |message: String| Gpt2Error::Tokenizer { path: path.clone(), message };
        let mut byte_ids = [TokenId::MAX; 256];
        for (id, bytes) in tokens.iter().enumerate().take(ordinary) {
            if let [b] = **bytes {
                byte_ids[b as usize] = id as TokenId;
            }
        }
        if let Some(b) = byte_ids.iter().position(|&id| id == TokenId::MAX) {
            return Err(err(format!("no single-byte token for byte {b:#04x}")));
        }
        let mut tok = Self {
            tokens,
            byte_ids,
            merges: HashMap::with_capacity(ordinary),
            added: Vec::new(),
            pattern: gpt2_pattern(&path)?,
            add_prefix_space: false,
            source: source.to_string(),
        };
        let mut rank = 0u32;
        let mut scratch = Vec::new();
        for id in 0..ordinary {
            if tok.tokens[id].len() < 2 {
                continue;
            }
            scratch.clear();
            let bytes = tok.tokens[id].clone();
            tok.bpe(&bytes, &mut scratch);
            let &[left, right] = &scratch[..] else {
                return Err(err(format!(
                    "token {id} ({:?}) is not the merge of two earlier tokens",
                    String::from_utf8_lossy(&bytes)
                )));
            };
            tok.merges.insert((left, right), (rank, id as TokenId));
            rank += 1;
        }
        tok.set_added(added);
        Ok(tok)
    }

    /// Reads the tokenizer of a model directory: `tokenizer.json` if
    /// present, else `vocab.json` + `merges.txt`; `Ok(None)` when it has
    /// neither.
    ///
    /// # Errors
    ///
    /// Those of [`Tokenizer::from_tokenizer_json`] and
    /// [`Tokenizer::from_vocab_merges`].
    pub fn from_dir(dir: &Path) -> Result<Option<Self>> {
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            return Self::from_tokenizer_json(&json).map(Some);
        }
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        if vocab.is_file() && merges.is_file() {
            return Self::from_vocab_merges(&vocab, &merges).map(Some);
        }
        Ok(None)
    }

    /// Reads a Hugging Face `tokenizer.json` of the GPT-2 kind: a `BPE`
    /// model over the byte-level alphabet, a `ByteLevel` pre-tokenizer, no
    /// normalizer.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Io`] / [`Gpt2Error::Json`] when the file cannot be read
    /// or parsed; [`Gpt2Error::Tokenizer`] when it uses features outside
    /// GPT-2's scheme (another model type, a normalizer, dropout, byte
    /// fallback, ...) or its vocabulary and merges disagree.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let file: TokenizerJson = serde_json::from_str(&text).map_err(json_error(path))?;
        let err = |message: String| Gpt2Error::Tokenizer { path: path.to_path_buf(), message };
        let m = &file.model;
        let unsupported = if m.kind.as_deref().is_some_and(|k| k != "BPE") {
            Some(format!("model type {:?} (only BPE)", m.kind))
        } else if m.dropout.is_some_and(|p| p > 0.0) {
            Some("BPE dropout".into())
        } else if m.byte_fallback {
            Some("byte_fallback".into())
        } else if m.ignore_merges {
            Some("ignore_merges".into())
        } else if m.continuing_subword_prefix.as_deref().is_some_and(|s| !s.is_empty())
            || m.end_of_word_suffix.as_deref().is_some_and(|s| !s.is_empty())
        {
            Some("subword prefixes or suffixes".into())
        } else if file.normalizer.as_ref().is_some_and(|n| !n.is_null()) {
            Some("a normalizer".into())
        } else {
            None
        };
        if let Some(what) = unsupported {
            return Err(err(format!(
                "{what} is not supported: this reads GPT-2-style byte-level BPE"
            )));
        }
        let add_prefix_space = match &file.pre_tokenizer {
            Some(p) if p.get("type").and_then(|t| t.as_str()) == Some("ByteLevel") => {
                if p.get("use_regex").and_then(|v| v.as_bool()) == Some(false) {
                    return Err(err(
                        "a ByteLevel pre-tokenizer without its regex is not supported".into(),
                    ));
                }
                p.get("add_prefix_space").and_then(|v| v.as_bool()).unwrap_or(false)
            }
            other => {
                return Err(err(format!(
                    "pre_tokenizer {} is not supported: GPT-2 uses ByteLevel",
                    other.as_ref().map_or("null".to_string(), |v| v.to_string())
                )));
            }
        };
        let merges = file
            .model
            .merges
            .into_iter()
            .enumerate()
            .map(|(i, m)| match m {
                MergeJson::Pair(a, b) => Ok((a, b)),
                MergeJson::Line(line) => split_merge(&line)
                    .ok_or_else(|| err(format!("merge {i} ({line:?}) is not two tokens"))),
            })
            .collect::<Result<Vec<_>>>()?;
        let added = file.added_tokens.into_iter().map(|t| (t.content, t.id)).collect();
        let mut tok =
            Self::from_parts(&file.model.vocab, &merges, added, path, &path.display().to_string())?;
        tok.add_prefix_space = add_prefix_space;
        Ok(tok)
    }

    /// Reads GPT-2's original pair of files: `vocab.json` (token → id, in
    /// the byte-level alphabet) and `merges.txt` (one `left right` per line,
    /// highest priority first, after an optional `#version` line).
    /// `<|endoftext|>`, when in the vocabulary, is an added token.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Io`] / [`Gpt2Error::Json`] for unreadable files,
    /// [`Gpt2Error::Tokenizer`] for a malformed merge line or a merge whose
    /// parts or result are not in the vocabulary.
    pub fn from_vocab_merges(vocab_path: &Path, merges_path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(vocab_path).map_err(io_error(vocab_path))?;
        let vocab: HashMap<String, TokenId> =
            serde_json::from_str(&text).map_err(json_error(vocab_path))?;
        let text = std::fs::read_to_string(merges_path).map_err(io_error(merges_path))?;
        let mut merges = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() || (i == 0 && line.starts_with("#version")) {
                continue;
            }
            merges.push(split_merge(line).ok_or_else(|| Gpt2Error::Tokenizer {
                path: merges_path.to_path_buf(),
                message: format!("line {} ({line:?}) is not two tokens", i + 1),
            })?);
        }
        let added: Vec<_> =
            vocab.get(END_OF_TEXT).map(|&id| (END_OF_TEXT.to_string(), id)).into_iter().collect();
        Self::from_parts(&vocab, &merges, added, merges_path, &vocab_path.display().to_string())
    }

    fn from_parts(
        vocab: &HashMap<String, TokenId>,
        merges: &[(String, String)],
        added: Vec<(String, TokenId)>,
        path: &Path,
        source: &str,
    ) -> Result<Self> {
        let err = |message: String| Gpt2Error::Tokenizer { path: path.to_path_buf(), message };
        let decode_char = char_to_byte();
        let size = vocab
            .values()
            .chain(added.iter().map(|(_, id)| id))
            .max()
            .map_or(0, |&m| m as usize + 1);
        let mut tokens: Vec<Option<Box<[u8]>>> = vec![None; size];
        for (text, &id) in vocab {
            let bytes: Option<Vec<u8>> =
                text.chars().map(|c| decode_char.get(&c).copied()).collect();
            let bytes = match bytes {
                Some(b) => b,
                None if added.iter().any(|(t, i)| t == text && *i == id) => {
                    text.as_bytes().to_vec()
                }
                None => {
                    return Err(err(format!(
                        "token {text:?} (id {id}) is not in the byte-level alphabet"
                    )));
                }
            };
            tokens[id as usize] = Some(bytes.into_boxed_slice());
        }
        for (text, id) in &added {
            let slot = &mut tokens[*id as usize];
            if slot.is_none() {
                *slot = Some(text.as_bytes().into());
            }
        }
        let tokens: Vec<Box<[u8]>> = tokens
            .into_iter()
            .enumerate()
            .map(|(id, t)| {
                t.ok_or_else(|| err(format!("no token has id {id} (ids must be 0..{size})")))
            })
            .collect::<Result<_>>()?;
        let mut byte_ids = [0; 256];
        let table = byte_to_char();
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = *vocab
                .get(&table[b].to_string())
                .ok_or_else(|| err(format!("no single-byte token for byte {b:#04x}")))?;
        }
        let mut merge_map = HashMap::with_capacity(merges.len());
        for (rank, (a, b)) in merges.iter().enumerate() {
            let id = |t: &str| {
                vocab.get(t).copied().ok_or_else(|| {
                    err(format!("merge {rank} ({a} {b}): {t:?} is not in the vocabulary"))
                })
            };
            let pair = (id(a)?, id(b)?);
            let merged = id(&format!("{a}{b}"))?;
            merge_map.entry(pair).or_insert((rank as u32, merged));
        }
        let mut tok = Self {
            tokens,
            byte_ids,
            merges: merge_map,
            added: Vec::new(),
            pattern: gpt2_pattern(path)?,
            add_prefix_space: false,
            source: source.to_string(),
        };
        tok.set_added(added);
        Ok(tok)
    }

    fn set_added(&mut self, mut added: Vec<(String, TokenId)>) {
        added.retain(|(t, _)| !t.is_empty());
        added.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        self.added = added;
    }

    /// Number of tokens (ids `0..vocab_size()`).
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Where the vocabulary came from (a file path or "built-in GPT-2").
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The id of an added token such as `<|endoftext|>`.
    pub fn added_token_id(&self, text: &str) -> Option<TokenId> {
        self.added.iter().find(|(t, _)| t == text).map(|&(_, id)| id)
    }

    /// The merges in rank order, each as `(left, right)` token bytes.
    pub fn merges(&self) -> Vec<(&[u8], &[u8])> {
        let mut list: Vec<_> =
            self.merges.iter().map(|(&(a, b), &(rank, _))| (rank, a, b)).collect();
        list.sort_unstable();
        list.into_iter()
            .map(|(_, a, b)| (&*self.tokens[a as usize], &*self.tokens[b as usize]))
            .collect()
    }

    /// Encodes text: added tokens (`<|endoftext|>`) become their ids, the
    /// rest is pre-tokenized and merged.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Tokenizer`] only if the pattern engine gives up (its
    /// backtracking limit), which GPT-2's pattern does not reach in
    /// practice.
    pub fn encode(&self, text: &str) -> Result<Vec<TokenId>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        let mut rest = text;
        while !rest.is_empty() {
            let hit = self
                .added
                .iter()
                .filter_map(|(t, id)| rest.find(t.as_str()).map(|at| (at, t.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, Reverse(len)));
            let (plain, next) = match hit {
                Some((at, len, id)) => (&rest[..at], Some((id, &rest[at + len..]))),
                None => (rest, None),
            };
            if !plain.is_empty() {
                // As the ByteLevel pre-tokenizer does, per piece between added tokens.
                if self.add_prefix_space && !plain.starts_with(' ') {
                    self.encode_plain(&format!(" {plain}"), &mut out)?;
                } else {
                    self.encode_plain(plain, &mut out)?;
                }
            }
            match next {
                Some((id, after)) => {
                    out.push(id);
                    rest = after;
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Encodes arbitrary bytes: valid UTF-8 runs as [`Tokenizer::encode`]
    /// does (without added tokens), each invalid sequence as its own piece
    /// of single bytes merged by BPE. Decoding gives the bytes back.
    ///
    /// # Errors
    ///
    /// As [`Tokenizer::encode`].
    pub fn encode_bytes(&self, bytes: &[u8]) -> Result<Vec<TokenId>> {
        let mut out = Vec::with_capacity(bytes.len() / 3 + 1);
        for chunk in bytes.utf8_chunks() {
            self.encode_plain(chunk.valid(), &mut out)?;
            if !chunk.invalid().is_empty() {
                self.bpe(chunk.invalid(), &mut out);
            }
        }
        Ok(out)
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<TokenId>) -> Result<()> {
        for piece in self.pattern.find_iter(text) {
            let piece = piece.map_err(|e| Gpt2Error::Tokenizer {
                path: PathBuf::from(&self.source),
                message: format!("pre-tokenizer: {e}"),
            })?;
            self.bpe(piece.as_str().as_bytes(), out);
        }
        Ok(())
    }

    /// BPE on one piece: single-byte tokens, then repeatedly the adjacent
    /// pair of lowest rank (leftmost on ties) is merged.
    fn bpe(&self, piece: &[u8], out: &mut Vec<TokenId>) {
        let n = piece.len();
        if n == 1 {
            out.push(self.byte_ids[piece[0] as usize]);
            return;
        }
        const NONE: usize = usize::MAX;
        let mut ids: Vec<TokenId> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let rank_of =
            |ids: &[TokenId], i: usize, j: usize| self.merges.get(&(ids[i], ids[j])).copied();
        for i in 0..n - 1 {
            if let Some((rank, _)) = rank_of(&ids, i, i + 1) {
                heap.push(Reverse((rank, i)));
            }
        }
        while let Some(Reverse((rank, i))) = heap.pop() {
            let j = next[i];
            if !alive[i] || j == NONE {
                continue;
            }
            // Entries go stale when a neighbour merges; the pair must still
            // be the one that was queued.
            let Some((now, merged)) = rank_of(&ids, i, j) else { continue };
            if now != rank {
                continue;
            }
            ids[i] = merged;
            alive[j] = false;
            next[i] = next[j];
            if next[j] != NONE {
                prev[next[j]] = i;
            }
            if prev[i] != NONE
                && let Some((r, _)) = rank_of(&ids, prev[i], i)
            {
                heap.push(Reverse((r, prev[i])));
            }
            if next[i] != NONE
                && let Some((r, _)) = rank_of(&ids, i, next[i])
            {
                heap.push(Reverse((r, i)));
            }
        }
        let mut i = 0;
        while i != NONE {
            out.push(ids[i]);
            i = next[i];
        }
    }

    /// The bytes of one token, or `None` outside the vocabulary.
    pub fn token_bytes(&self, id: TokenId) -> Option<&[u8]> {
        self.tokens.get(id as usize).map(|b| &**b)
    }

    /// The bytes of a token sequence.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::TokenOutOfRange`] for an id outside the vocabulary.
    pub fn decode_bytes(&self, ids: &[TokenId]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for &id in ids {
            out.extend_from_slice(
                self.token_bytes(id)
                    .ok_or(Gpt2Error::TokenOutOfRange { token: id, vocab: self.vocab_size() })?,
            );
        }
        Ok(out)
    }

    /// The text of a token sequence; invalid UTF-8 becomes U+FFFD.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::TokenOutOfRange`] for an id outside the vocabulary.
    pub fn decode(&self, ids: &[TokenId]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.decode_bytes(ids)?).into_owned())
    }

    /// A token in the byte-level alphabet, as `vocab.json` writes it
    /// (`"Ġmovie"` for `" movie"`); added tokens as they are.
    pub fn token_string(&self, id: TokenId) -> Option<String> {
        let bytes = self.token_bytes(id)?;
        if self.added.iter().any(|&(_, a)| a == id) {
            return Some(String::from_utf8_lossy(bytes).into_owned());
        }
        let table = byte_to_char();
        Some(bytes.iter().map(|&b| table[b as usize]).collect())
    }
}

fn gpt2_pattern(path: &Path) -> Result<Regex> {
    Regex::new(GPT2_PATTERN).map_err(|e| Gpt2Error::Tokenizer {
        path: path.to_path_buf(),
        message: format!("pre-tokenizer pattern: {e}"),
    })
}

/// `"left right"` → the two parts (a merges line holds exactly one space).
fn split_merge(line: &str) -> Option<(String, String)> {
    let (a, b) = line.split_once(' ')?;
    (!a.is_empty() && !b.is_empty() && !b.contains(' ')).then(|| (a.to_string(), b.to_string()))
}

impl Detokenizer for Tokenizer {
    /// Appends the token's bytes (GPT-2's byte-level mapping undone).
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        out.extend_from_slice(self.token_bytes(token).ok_or(UnknownToken(token))?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_gpt2s() {
        let table = byte_to_char();
        assert_eq!(table[b'!' as usize], '!');
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[0], 'Ā');
        assert_eq!(table[0xAD], 'Ń');
        let mut sorted: Vec<char> = table.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }

    #[test]
    fn merge_lines() {
        assert_eq!(split_merge("Ġ t"), Some(("Ġ".into(), "t".into())));
        assert_eq!(split_merge("Ġt"), None);
        assert_eq!(split_merge("a b c"), None);
        assert_eq!(split_merge(" a"), None);
    }
}
