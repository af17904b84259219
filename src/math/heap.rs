//! Repairs of the binary heaps that bounded selections keep: the order is
//! the caller's, given as `above(a, b)`, true when `a` belongs nearer the
//! root than `b`. A selection of the best `n` keeps its worst entry at the
//! root, so that a better newcomer replaces the root and sinks.

/// Restores the heap order below `i` (an entry at `i` that may sit too
/// high).
#[inline]
pub(crate) fn sift_down<T: Copy>(heap: &mut [T], mut i: usize, above: impl Fn(T, T) -> bool) {
    let n = heap.len();
    loop {
        let l = 2 * i + 1;
        if l >= n {
            return;
        }
        let r = l + 1;
        let c = if r < n && above(heap[r], heap[l]) { r } else { l };
        if above(heap[c], heap[i]) {
            heap.swap(c, i);
            i = c;
        } else {
            return;
        }
    }
}

/// Restores the heap order above `i` (an entry at `i` that may sit too
/// low, such as one just pushed).
#[inline]
pub(crate) fn sift_up<T: Copy>(heap: &mut [T], mut i: usize, above: impl Fn(T, T) -> bool) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if above(heap[i], heap[parent]) {
            heap.swap(parent, i);
            i = parent;
        } else {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes every value, keeping the smallest at the root, then pops them
    /// all: they come out in ascending order.
    #[test]
    fn a_heap_built_and_drained_with_both_repairs_sorts() {
        let values = [5.0f32, -1.0, 3.5, 3.5, 9.0, 0.0, -7.25, 2.0, 8.0, 1.0];
        let below = |a: f32, b: f32| a < b;
        let mut heap = Vec::new();
        for &x in &values {
            heap.push(x);
            let last = heap.len() - 1;
            sift_up(&mut heap, last, below);
        }
        let mut drained = Vec::new();
        while let Some(&root) = heap.first() {
            drained.push(root);
            let last = heap.pop().unwrap();
            if !heap.is_empty() {
                heap[0] = last;
                sift_down(&mut heap, 0, below);
            }
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(drained, sorted);
    }
}
