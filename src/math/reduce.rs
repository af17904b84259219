//! Reductions over a row: maxima, the argmax, the row check.

use super::LANES;
use crate::{Error, TokenId};

/// Maximum of a row, `-inf` for an empty row. NaN entries are ignored
/// (rows are validated before this is called).
pub(crate) fn max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &x in acc.iter().chain(chunks.remainder()) {
        if x > m {
            m = x;
        }
    }
    m
}

/// The maximum of the listed entries of a row (`-inf` for none), and
/// whether any of them is NaN or `+inf` (NaN entries are otherwise
/// ignored). Eight independent lanes, so that the pass is not bound by the
/// latency of one chain of comparisons.
pub(crate) fn max_ids(row: &[f32], ids: &[TokenId]) -> (f32, bool) {
    const IDS_LANES: usize = 8;
    let mut acc = [f32::NEG_INFINITY; IDS_LANES];
    let mut bad = [false; IDS_LANES];
    let mut chunks = ids.chunks_exact(IDS_LANES);
    for chunk in &mut chunks {
        for ((a, b), &id) in acc.iter_mut().zip(bad.iter_mut()).zip(chunk) {
            let x = row[id as usize];
            // `!(x <= MAX)` holds for NaN and +inf only.
            *b |= !(x <= f32::MAX);
            *a = if x > *a { x } else { *a };
        }
    }
    let mut m = f32::NEG_INFINITY;
    let mut flagged = bad.iter().any(|&b| b);
    for &x in acc.iter().chain(chunks.remainder().iter().map(|&id| &row[id as usize])) {
        flagged |= !(x <= f32::MAX);
        if x > m {
            m = x;
        }
    }
    (m, flagged)
}

/// The maximum of a row after checking it: one pass computes the maximum
/// and a flag for NaN or `+inf`; only a flagged row is scanned again, to
/// name the first offender. `-inf` for a row of `-inf` only.
///
/// # Errors
///
/// [`Error::EmptyRow`], or [`Error::InvalidLogit`] naming the first NaN or
/// `+inf` entry (exactly as [`check_row`]).
pub(crate) fn max_checked(row: &[f32]) -> Result<f32, Error> {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut flagged = false;
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
        // `!(x <= MAX)` holds for NaN and +inf only.
        let mut bad = false;
        for &x in chunk {
            bad |= !(x <= f32::MAX);
        }
        flagged |= bad;
    }
    let mut m = f32::NEG_INFINITY;
    for &x in acc.iter().chain(chunks.remainder()) {
        flagged |= !(x <= f32::MAX);
        if x > m {
            m = x;
        }
    }
    if flagged || row.is_empty() {
        check_row(row)?;
    }
    Ok(m)
}

/// The first index holding exactly `x` (never a NaN), scanning 64 entries
/// at a time with a vectorizable test and locating the hit only inside the
/// chunk that has one.
pub(crate) fn position_of(row: &[f32], x: f32) -> Option<usize> {
    const CHUNK: usize = 64;
    let mut chunks = row.chunks_exact(CHUNK);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let mut hit = false;
        for &y in chunk {
            hit |= y == x;
        }
        if hit {
            return chunk.iter().position(|&y| y == x).map(|i| c * CHUNK + i);
        }
    }
    let base = row.len() - chunks.remainder().len();
    chunks.remainder().iter().position(|&y| y == x).map(|i| base + i)
}

/// The highest entry that is not NaN and above `-inf`, and the lowest index
/// holding it: a maximum pass, then a scan that stops at the first match.
pub(crate) fn argmax(row: &[f32]) -> Option<(usize, f32)> {
    let m = max(row);
    if m == f32::NEG_INFINITY {
        return None;
    }
    position_of(row, m).map(|i| (i, m))
}

/// The largest `|x|` over the entries above `-inf` (0 for none; NaN
/// entries are ignored).
pub(crate) fn max_abs_finite(row: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            let y = if x > f32::NEG_INFINITY { x.abs() } else { 0.0 };
            *a = if y > *a { y } else { *a };
        }
    }
    let mut m = 0.0f32;
    for &x in acc.iter().chain(chunks.remainder()) {
        let y = if x > f32::NEG_INFINITY { x.abs() } else { 0.0 };
        if y > m {
            m = y;
        }
    }
    m
}

/// Checks that no entry is NaN or `+inf`, naming the first offender.
pub(crate) fn check_row(row: &[f32]) -> Result<(), Error> {
    if row.is_empty() {
        return Err(Error::EmptyRow);
    }
    // Vectorizable scan, one flag per 64 entries (`!(x <= MAX)` holds for
    // NaN and +inf only); the offender is located only in a flagged chunk.
    const CHUNK: usize = 64;
    let mut chunks = row.chunks_exact(CHUNK);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut bad = false;
        for &x in chunk {
            bad |= !(x <= f32::MAX);
        }
        if bad {
            if let Some(e) = first_invalid(chunk, base) {
                return Err(e);
            }
        }
        base += CHUNK;
    }
    match first_invalid(chunks.remainder(), base) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn first_invalid(chunk: &[f32], base: usize) -> Option<Error> {
    chunk
        .iter()
        .position(|&x| x.is_nan() || x == f32::INFINITY)
        .map(|i| Error::InvalidLogit { index: base + i, value: chunk[i] })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn max_checked_finds_the_maximum_and_the_first_offender() {
        for n in [1usize, 15, 16, 17, 100, 1000] {
            let mut row: Vec<f32> = (0..n).map(|i| (i * 37 % 101) as f32 - 50.0).collect();
            let want = row.iter().copied().fold(NEG, f32::max);
            assert_eq!(max_checked(&row), Ok(want));
            for bad in [f32::NAN, f32::INFINITY] {
                for at in [0, n / 2, n - 1] {
                    row[at] = bad;
                    if at + 1 < n {
                        row[n - 1] = f32::NAN; // a later offender is not reported
                    }
                    assert!(
                        matches!(max_checked(&row), Err(Error::InvalidLogit { index, .. }) if index == at),
                        "n = {n}, at = {at}"
                    );
                    row = (0..n).map(|i| (i * 37 % 101) as f32 - 50.0).collect();
                }
            }
        }
        assert_eq!(max_checked(&[]), Err(Error::EmptyRow));
        assert_eq!(max_checked(&[NEG; 40]), Ok(NEG));
        assert_eq!(max_checked(&[NEG, -3e38, NEG]), Ok(-3e38));
    }

    #[test]
    fn argmax_returns_the_lowest_index_of_the_maximum() {
        for n in [1usize, 63, 64, 65, 200, 5000] {
            for at in [0, n / 3, n - 1] {
                let mut row: Vec<f32> = (0..n).map(|i| (i % 17) as f32).collect();
                row[at] = 100.0;
                row[n - 1] = 100.0; // a later tie
                assert_eq!(argmax(&row), Some((at, 100.0)), "n = {n}, at = {at}");
                row[at] = f32::NAN; // NaN is skipped, never chosen
                let mut want: Option<(usize, f32)> = None;
                for (i, &x) in row.iter().enumerate() {
                    if x > want.map_or(NEG, |w| w.1) {
                        want = Some((i, x));
                    }
                }
                assert_eq!(argmax(&row), want, "n = {n}, NaN at {at}");
            }
        }
        assert_eq!(argmax(&[NEG, NEG]), None);
        assert_eq!(argmax(&[]), None);
        assert_eq!(position_of(&[1.0, 2.0, 2.0], 2.0), Some(1));
        assert_eq!(position_of(&[1.0, 2.0], 3.0), None);
    }

    #[test]
    fn max_ids_reads_the_listed_entries_only() {
        let row: Vec<f32> = (0..100).map(|i| (i * 37 % 101) as f32).collect();
        for n in [0usize, 1, 7, 8, 9, 50] {
            let ids: Vec<TokenId> = (0..n as TokenId).map(|i| i * 2).collect();
            let want = ids.iter().map(|&i| row[i as usize]).fold(NEG, f32::max);
            assert_eq!(max_ids(&row, &ids), (want, false), "n = {n}");
        }
        let mut row = row;
        row[20] = f32::NAN;
        assert!(max_ids(&row, &[1, 20, 3]).1);
        assert!(!max_ids(&row, &[1, 3]).1);
        row[21] = f32::INFINITY;
        assert_eq!(max_ids(&row, &[0, 2, 4, 6, 8, 10, 12, 14, 21]), (f32::INFINITY, true));
    }

    #[test]
    fn max_abs_finite_ignores_masks() {
        assert_eq!(max_abs_finite(&[NEG, -5.0, 3.0]), 5.0);
        assert_eq!(max_abs_finite(&[NEG; 33]), 0.0);
        let mut row = vec![1.0f32; 100];
        row[77] = -3e38;
        row[78] = NEG;
        assert_eq!(max_abs_finite(&row), 3e38);
    }
}
