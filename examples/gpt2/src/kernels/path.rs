//! Which kernels run: chosen at run time from the CPU's features.

use std::fmt;

/// The instruction set the matrix products and attention run with.
///
/// [`KernelPath::best`] picks the widest one the CPU has, at run time (the
/// binary is built for the portable baseline, so one build runs everywhere
/// and still uses AVX-512 where it exists). Every path computes each dot
/// product with its own fixed sequence of operations, so within a path
/// prompts and cached steps stay bit-identical; across paths the logits
/// differ by rounding only (the tests hold every path within 1e-5 of the
/// portable one, relative to the row's scale).
///
/// ```
/// use gpt2::KernelPath;
///
/// let best = KernelPath::best();
/// assert!(best.is_available());
/// assert!(KernelPath::Portable.is_available());
/// assert_eq!(KernelPath::parse(best.name()), Some(best));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelPath {
    /// Plain Rust loops, vectorised by the compiler for the build target
    /// (SSE2 on the x86-64 baseline, NEON on AArch64).
    Portable,
    /// x86-64 with AVX2, FMA and F16C: 8-lane fused multiply-adds (Intel
    /// since Haswell, AMD since Zen 1).
    Avx2Fma,
    /// x86-64 with AVX-512F: 16-lane fused multiply-adds (Intel Xeon since
    /// Skylake-SP, AMD since Zen 4).
    Avx512,
}

impl KernelPath {
    /// Every path, from the most portable to the widest.
    pub const ALL: [KernelPath; 3] = [Self::Portable, Self::Avx2Fma, Self::Avx512];

    /// The widest path this CPU supports.
    pub fn best() -> Self {
        Self::ALL.into_iter().rev().find(|p| p.is_available()).unwrap_or(Self::Portable)
    }

    /// Whether this CPU can run the path (detected at run time).
    pub fn is_available(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma => super::x86::avx2::available(),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => super::x86::avx512::available(),
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2Fma | Self::Avx512 => false,
        }
    }

    /// `portable`, `avx2` or `avx512`: the name `--kernels` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2Fma => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// The inverse of [`KernelPath::name`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Portable => "portable (compiler-vectorised, build target's baseline)",
            Self::Avx2Fma => "AVX2+FMA",
            Self::Avx512 => "AVX-512",
        })
    }
}
