//! The rank order of live tokens, and walks along it that sort as little
//! as they can.

use std::cmp::Ordering;

use crate::TokenId;

/// A live entry, `(score, id)`, as the truncations sort them.
pub(crate) type Entry = (f32, TokenId);

/// The crate's rank order of live tokens (see [`Scores`]): score
/// descending, the higher id first among equal scores. Scores compare as
/// IEEE numbers (as transformers' sort compares them): `-0.0` and `0.0` are
/// equal scores, and the tie rule decides between them.
#[inline]
pub(crate) fn rank_desc(a: &Entry, b: &Entry) -> Ordering {
    // `x + 0.0` turns `-0.0` into `0.0` and leaves every other score as it
    // is; the total order then agrees with `<` (scores are never NaN here).
    (b.0 + 0.0).total_cmp(&(a.0 + 0.0)).then(b.1.cmp(&a.1))
}

/// [`rank_desc`] on ids, their scores read from `values`.
#[inline]
pub(crate) fn rank_ids_desc(values: &[f32], a: TokenId, b: TokenId) -> Ordering {
    rank_desc(&(values[a as usize], a), &(values[b as usize], b))
}

/// A key whose ascending order is the order of [`f32::total_cmp`]: the
/// sign bit set for a positive float, every bit flipped for a negative one.
#[inline]
pub(crate) fn order_key(x: f32) -> u32 {
    let b = x.to_bits();
    b ^ ((((b as i32) >> 31) as u32) | 0x8000_0000)
}

/// Sorts entries in rank order ([`rank_desc`]) by one integer key per
/// entry (score, then id, packed into 64 bits), which sorts several times
/// faster than comparing floats and ids one field at a time. The score is
/// keyed as `x + 0.0`, so that `-0.0` ties with `0.0` as in [`rank_desc`].
pub(crate) fn sort_ranked(entries: &mut [Entry]) {
    entries.sort_unstable_by_key(|e| {
        std::cmp::Reverse((u64::from(order_key(e.0 + 0.0)) << 32) | u64::from(e.1))
    });
}

/// Extends a sorted prefix: given `buf[..start]` already holding, in order,
/// the `start` first elements of `buf` under `cmp`, makes `buf[..end]` hold
/// the `end` first. Costs a selection over `buf[start..]` and a sort of
/// `end - start` elements, so a walk that stops early never sorts the rest.
pub(crate) fn sort_next<T>(
    buf: &mut [T],
    start: usize,
    end: usize,
    mut cmp: impl FnMut(&T, &T) -> Ordering,
) {
    let len = buf.len();
    let end = end.min(len);
    if start >= end {
        return;
    }
    if end < len {
        buf[start..].select_nth_unstable_by(end - start - 1, &mut cmp);
    }
    buf[start..end].sort_unstable_by(cmp);
}

/// Walks `buf` in the order `cmp` to the first rank at which a monotone
/// stopping rule holds, sorting as little of `buf` as it can.
///
/// `stop(i, before, through)` is asked about rank `i`, where `before` is the
/// total `weight` of the ranks above `i` and `through = before + weight(i)`;
/// once it holds for a rank it must hold for every later one. Returns the
/// first rank where it holds, or `buf.len()` when none does.
///
/// Afterwards `buf[..r]` holds exactly the `r` first ranks, for the returned
/// `r`, and `buf[..head.min(r)]` holds them in order; nothing is promised
/// about the order after `head`.
///
/// The first `head` ranks are selected, sorted and walked one by one (most
/// walks end there). Beyond them, the boundary is bracketed by galloping
/// (pivots 4, 16, 64, ... times `head` further) and then bisected, with a
/// selection at each pivot and the weights of the ranks above it summed, so
/// a boundary far down the ranking costs a few selections, not a sort; the
/// last `head` ranks of the bracket are sorted and walked.
pub(crate) fn first_stop<T>(
    buf: &mut [T],
    head: usize,
    cmp: impl Fn(&T, &T) -> Ordering + Copy,
    weight: impl Fn(&T) -> f64,
    stop: impl Fn(usize, f64, f64) -> bool,
) -> usize {
    let len = buf.len();
    let head = head.max(1);
    let walk = |buf: &[T], from: usize, to: usize, mut before: f64| {
        for (i, entry) in buf.iter().enumerate().take(to).skip(from) {
            let through = before + weight(entry);
            if stop(i, before, through) {
                return (Some(i), before);
            }
            before = through;
        }
        (None, before)
    };
    let first = head.min(len);
    sort_next(buf, 0, first, cmp);
    let (found, mut before) = walk(buf, 0, first, 0.0);
    if let Some(i) = found {
        return i;
    }
    // The answer lies in [lo, hi]: everything in buf[..lo] ranks above
    // buf[lo..hi], which ranks above buf[hi..]; `before` weighs buf[..lo].
    let (mut lo, mut hi) = (first, len);
    let mut step = Some(4 * head);
    while hi - lo > head {
        let mid = match step {
            Some(s) => (lo + s).min(hi - 1),
            None => lo + (hi - lo) / 2,
        };
        buf[lo..hi].select_nth_unstable_by(mid - lo, cmp);
        let above = before + buf[lo..mid].iter().map(&weight).sum::<f64>();
        let through = above + weight(&buf[mid]);
        if stop(mid, above, through) {
            hi = mid;
            step = None;
        } else {
            before = through;
            lo = mid + 1;
            step = step.map(|s| s.saturating_mul(4));
        }
    }
    buf[lo..hi].sort_unstable_by(cmp);
    walk(buf, lo, hi, before).0.unwrap_or(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_ranked_is_rank_desc() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::NEG_INFINITY,
            f32::MAX,
            -f32::MAX,
            1e-40,
            -1e-40,
            f32::MIN_POSITIVE,
            2.5,
        ];
        let mut entries: Vec<Entry> =
            (0..200u32).map(|i| (values[(i * 7) as usize % values.len()], i)).collect();
        let mut want = entries.clone();
        want.sort_by(rank_desc);
        sort_ranked(&mut entries);
        assert_eq!(
            entries.iter().map(|e| (e.0.to_bits(), e.1)).collect::<Vec<_>>(),
            want.iter().map(|e| (e.0.to_bits(), e.1)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        // Equal scores as IEEE numbers: the tie rule (higher id first)
        // decides, not the sign bit.
        assert_eq!(rank_desc(&(0.0, 1), &(-0.0, 2)), Ordering::Greater);
        assert_eq!(rank_desc(&(-0.0, 2), &(0.0, 1)), Ordering::Less);
        assert_eq!(rank_desc(&(-0.0, 3), &(-0.0, 3)), Ordering::Equal);
        assert_eq!(rank_desc(&(1e-45, 0), &(0.0, 9)), Ordering::Less);
        assert_eq!(rank_desc(&(-1e-45, 9), &(-0.0, 0)), Ordering::Greater);
        let values = [0.0, -0.0, 0.0];
        let mut ids = [0, 1, 2];
        ids.sort_by(|&a, &b| rank_ids_desc(&values, a, b));
        assert_eq!(ids, [2, 1, 0]);
    }

    #[test]
    fn first_stop_finds_the_boundary_a_full_walk_finds() {
        // Weights 1..=n in a scrambled order, ranked by weight descending;
        // stop where the mass before a rank reaches a target.
        for n in [1usize, 5, 300, 2000, 20_000] {
            let items: Vec<u32> = (0..n as u32).map(|i| (i * 7919 + 13) % n as u32 + 1).collect();
            let total = n as f64 * (n as f64 + 1.0) / 2.0;
            for frac in [0.0, 0.01, 0.3, 0.9, 0.999, 1.0, 2.0] {
                let target = total * frac;
                // Naive: sort everything, walk.
                let mut sorted = items.clone();
                sorted.sort_unstable_by(|a, b| b.cmp(a));
                let mut before = 0.0;
                let mut expected = n;
                for (i, &w) in sorted.iter().enumerate() {
                    if before >= target {
                        expected = i;
                        break;
                    }
                    before += f64::from(w);
                }
                let mut buf = items.clone();
                let got = first_stop(
                    &mut buf,
                    16,
                    |a, b| b.cmp(a),
                    |&w| f64::from(w),
                    |_, before, _| before >= target,
                );
                assert_eq!(got, expected, "n = {n}, frac = {frac}");
                let mut head = buf[..got].to_vec();
                head.sort_unstable_by(|a, b| b.cmp(a));
                assert_eq!(head, sorted[..got], "the first ranks, n = {n}, frac = {frac}");
                assert_eq!(buf[..got.min(16)], sorted[..got.min(16)], "the head in order");
            }
        }
    }

    #[test]
    fn sort_next_extends_a_sorted_prefix() {
        let mut buf: Vec<u32> = (0..1000).map(|i| (i * 7919) % 1000).collect();
        sort_next(&mut buf, 0, 10, |a, b| a.cmp(b));
        assert_eq!(buf[..10], (0..10).collect::<Vec<_>>()[..]);
        sort_next(&mut buf, 10, 50, |a, b| a.cmp(b));
        assert_eq!(buf[..50], (0..50).collect::<Vec<_>>()[..]);
        sort_next(&mut buf, 50, 5000, |a, b| a.cmp(b));
        assert_eq!(buf, (0..1000).collect::<Vec<_>>());
    }
}
