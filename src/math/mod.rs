//! Numeric kernels shared by processors and samplers.
//!
//! Reductions are written over fixed-width lanes so that the compiler can
//! vectorize them on the baseline target (SSE2 on x86-64, no
//! `target-cpu=native`); each one documents its summation order, because the
//! order decides the last bits of a result.
//!
//! Every softmax in the crate takes its exponentials from [`exp`], a
//! branch-free polynomial that the compiler vectorizes, instead of the
//! scalar `f32::exp` of the platform's libm.

mod exp;
pub(crate) mod heap;
mod histogram;
mod rank;
mod reduce;
mod select;
mod softmax;
#[cfg(test)]
pub(crate) mod testing;

pub(crate) use exp::exp;
pub(crate) use histogram::{MassHistogram, mask_after_bucket, split_at_bucket, wide_before};
pub(crate) use rank::{Entry, first_stop, rank_desc, rank_ids_desc, sort_ranked};
pub(crate) use reduce::{
    argmax, check_row, max, max_abs_finite, max_checked, max_ids, position_of,
};
pub(crate) use select::{finite_ids, gather_between, mostly_masked, top_candidates, top_n};
pub(crate) use softmax::{
    EXP_LANES, ProbFloor, Softmax, VisitWeights, normalizer, softmax_entropy, sum_exp, sum_exp_ids,
    sum_exp_ids_visit, sum_exp_visit,
};

/// Lanes of the maxima and of the selection scans.
const LANES: usize = 16;
