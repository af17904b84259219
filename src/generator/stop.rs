//! Stop-sequence and stop-string matching, and how much text to hold back.
//!
//! Everything here works on the *generated* part only (ids or text), never
//! on the prompt. The functions are linear in the total length of the stop
//! conditions (times their length for the hold-back), independent of how
//! long the generated text already is.

use crate::TokenId;

/// The stop sequence that `generated` ends with, as `(index, start)` where
/// `start` is the position of its first id in `generated`. When several
/// match, the longest (the one that starts first) wins, then the one listed
/// first.
pub(crate) fn match_sequence(
    generated: &[TokenId],
    seqs: &[Vec<TokenId>],
) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for (i, s) in seqs.iter().enumerate() {
        if generated.ends_with(s) {
            let start = generated.len() - s.len();
            if best.is_none_or(|(_, b)| start < b) {
                best = Some((i, start));
            }
        }
    }
    best
}

/// The length of the longest suffix of `generated` that is a proper prefix
/// of some stop sequence: ids that may still become a stop sequence.
pub(crate) fn pending_sequence(generated: &[TokenId], seqs: &[Vec<TokenId>]) -> usize {
    let mut best = 0;
    for s in seqs {
        let max = s.len().saturating_sub(1).min(generated.len());
        for k in (best + 1..=max).rev() {
            if generated.ends_with(&s[..k]) {
                best = k;
                break;
            }
        }
    }
    best
}

/// The earliest stop string occurrence in `text` that ends after byte
/// `from` (where this step's new text begins), as `(start, index)`. Ties on
/// the start go to the string listed first.
///
/// Occurrences that end at or before `from` were already looked for at an
/// earlier step, so only a window of `len - 1` bytes before `from` is
/// searched again.
pub(crate) fn find_string(text: &str, from: usize, strings: &[String]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for (i, s) in strings.iter().enumerate() {
        let mut lo = from.min(text.len()).saturating_sub(s.len().saturating_sub(1));
        while !text.is_char_boundary(lo) {
            lo -= 1;
        }
        if let Some(p) = text[lo..].find(s.as_str()) {
            let start = lo + p;
            if best.is_none_or(|(b, _)| start < b) {
                best = Some((start, i));
            }
        }
    }
    best
}

/// The length in bytes of the longest suffix of `text` that is a proper
/// prefix of some stop string: text that may still become a stop string and
/// must not be streamed yet.
pub(crate) fn string_holdback(text: &str, strings: &[String]) -> usize {
    let mut best = 0;
    for s in strings {
        let max = s.len().saturating_sub(1).min(text.len());
        for k in (best + 1..=max).rev() {
            if s.is_char_boundary(k) && text.as_bytes().ends_with(&s.as_bytes()[..k]) {
                best = k;
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn earliest_start_wins() {
        // "xab" with stops ["b", "ab"], all new: "ab" starts first.
        assert_eq!(find_string("xab", 0, &strings(&["b", "ab"])), Some((1, 1)));
        // Same start: the one listed first.
        assert_eq!(find_string("xab", 0, &strings(&["ab", "a"])), Some((1, 0)));
    }

    #[test]
    fn window_reaches_back_across_the_boundary() {
        // "DEFGHI" was seen; "J" is new: the match starts 6 bytes back.
        assert_eq!(find_string("DEFGHIJ", 6, &strings(&["DEFGHIJ"])), Some((0, 0)));
        // A match entirely in old text is not searched again.
        assert_eq!(find_string("ab--", 3, &strings(&["ab"])), None);
    }

    #[test]
    fn window_start_is_moved_to_a_char_boundary() {
        // "é" is two bytes; from = 2 and a 3-byte stop reaches into it.
        assert_eq!(find_string("éab", 2, &strings(&["éab"])), Some((0, 0)));
    }

    #[test]
    fn holdback_is_the_longest_proper_prefix_suffix() {
        let s = strings(&["DEFGHIJ"]);
        assert_eq!(string_holdback("xxDEF", &s), 3);
        assert_eq!(string_holdback("xxDEFGHI", &s), 6);
        assert_eq!(string_holdback("xxDEFX", &s), 0);
        // A complete stop string is not a proper prefix of itself.
        assert_eq!(string_holdback("ab", &strings(&["ab"])), 0);
        assert_eq!(string_holdback("a", &strings(&["ab", "aab"])), 1);
        assert_eq!(string_holdback("aa", &strings(&["ab", "aab"])), 2);
    }

    #[test]
    fn holdback_respects_char_boundaries() {
        // The stop "€x" starts with a 3-byte character: a 1- or 2-byte
        // prefix is not text, so nothing shorter than the character counts.
        assert_eq!(string_holdback("a€", &strings(&["€x"])), 3);
    }

    #[test]
    fn sequences() {
        let seqs = vec![vec![1, 2, 3], vec![2, 3]];
        assert_eq!(match_sequence(&[9, 1, 2, 3], &seqs), Some((0, 1)));
        assert_eq!(match_sequence(&[9, 2, 3], &seqs), Some((1, 1)));
        assert_eq!(match_sequence(&[9, 2], &seqs), None);
        assert_eq!(pending_sequence(&[9, 1, 2], &seqs), 2);
        assert_eq!(pending_sequence(&[1, 1], &[vec![1, 1, 2]]), 2);
        assert_eq!(pending_sequence(&[1, 1, 1], &[vec![1, 1, 2]]), 2);
        assert_eq!(pending_sequence(&[5], &seqs), 0);
    }
}
