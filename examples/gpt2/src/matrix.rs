//! Weight matrices in the precision they were stored in.
//!
//! A generation step reads every weight once, so its speed is the number
//! of weight bytes over the memory bandwidth. A checkpoint stored in f16 or
//! bf16 stays in 16 bits here (half the bytes of f32) and the kernels widen
//! each value to f32 as they read it. Widening f16 or bf16 to f32 is exact,
//! so a 16-bit matrix gives the same products as its f32 copy would: the
//! logits of a 16-bit checkpoint kept in 16 bits are bit for bit those of
//! the same checkpoint widened at load (on the same kernel path).

use half::{bf16, f16};
use ndarray::Array2;

/// The element type of a [`Matrix`], and of a conversion with
/// [`Weights::converted`](crate::Weights::converted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 32-bit IEEE floats.
    F32,
    /// IEEE half precision (10-bit mantissa).
    F16,
    /// bfloat16 (f32's exponent, 7-bit mantissa).
    Bf16,
}

impl Dtype {
    /// The name used on the command line and in safetensors (`f32`, `f16`,
    /// `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }

    /// The inverse of [`Dtype::name`] (case-insensitive).
    ///
    /// ```
    /// assert_eq!(gpt2::Dtype::parse("BF16"), Some(gpt2::Dtype::Bf16));
    /// assert_eq!(gpt2::Dtype::parse("f64"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Some(Self::F32),
            "f16" | "float16" | "half" => Some(Self::F16),
            "bf16" | "bfloat16" => Some(Self::Bf16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
        }
    }
}

/// A row-major weight matrix in f32, f16 or bf16.
///
/// ```
/// use gpt2::{Dtype, Matrix};
/// use ndarray::array;
///
/// let m = Matrix::F32(array![[1.0, 2.5], [3.0, -4.0]]).converted(Dtype::F16);
/// assert_eq!(m.dtype(), Dtype::F16);
/// let mut row = [0.0; 2];
/// m.widen_row(1, &mut row);
/// assert_eq!(row, [3.0, -4.0]); // exactly representable in f16
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// f32 values.
    F32(Array2<f32>),
    /// f16 values, widened to f32 by the kernels.
    F16(Array2<f16>),
    /// bf16 values, widened to f32 by the kernels.
    Bf16(Array2<bf16>),
}

/// A borrowed, row-major, contiguous weight matrix: what the kernels read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Bf16(&'a [bf16]),
}

impl Rows<'_> {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::F32(w) => w.len(),
            Rows::F16(w) => w.len(),
            Rows::Bf16(w) => w.len(),
        }
    }

    /// Elements `range` (a whole number of rows, for a split by rows).
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> Self {
        match self {
            Rows::F32(w) => Rows::F32(&w[range]),
            Rows::F16(w) => Rows::F16(&w[range]),
            Rows::Bf16(w) => Rows::Bf16(&w[range]),
        }
    }
}

impl Matrix {
    /// `(rows, columns)`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            Self::F32(m) => m.dim(),
            Self::F16(m) => m.dim(),
            Self::Bf16(m) => m.dim(),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            Self::F32(_) => Dtype::F32,
            Self::F16(_) => Dtype::F16,
            Self::Bf16(_) => Dtype::Bf16,
        }
    }

    /// Bytes held by the values.
    pub fn bytes(&self) -> usize {
        let (r, c) = self.dim();
        r * c * self.dtype().size()
    }

    /// Row `i` widened to f32 into `out` (`out.len()` = columns).
    ///
    /// # Panics
    ///
    /// When `i` is not a row or `out` does not have one value per column.
    pub fn widen_row(&self, i: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim().1, "one value per column");
        match self {
            Self::F32(m) => out.iter_mut().zip(m.row(i)).for_each(|(o, &v)| *o = v),
            Self::F16(m) => out.iter_mut().zip(m.row(i)).for_each(|(o, &v)| *o = v.to_f32()),
            Self::Bf16(m) => out.iter_mut().zip(m.row(i)).for_each(|(o, &v)| *o = v.to_f32()),
        }
    }

    /// The matrix in f32 (exact from f16 and bf16).
    pub fn to_f32(&self) -> Array2<f32> {
        match self {
            Self::F32(m) => m.clone(),
            Self::F16(m) => m.mapv(f16::to_f32),
            Self::Bf16(m) => m.mapv(bf16::to_f32),
        }
    }

    /// The matrix in `dtype`: exact when widening, rounded to nearest
    /// (ties to even) when narrowing.
    #[must_use]
    pub fn converted(self, dtype: Dtype) -> Self {
        if self.dtype() == dtype {
            return self;
        }
        let wide = match self {
            Self::F32(m) => m,
            other => other.to_f32(),
        };
        match dtype {
            Dtype::F32 => Self::F32(wide),
            Dtype::F16 => Self::F16(wide.mapv(f16::from_f32)),
            Dtype::Bf16 => Self::Bf16(wide.mapv(bf16::from_f32)),
        }
    }

    /// The values as one row-major slice.
    pub(crate) fn rows(&self) -> Rows<'_> {
        fn flat<T>(m: &Array2<T>) -> &[T] {
            m.as_slice().unwrap_or_else(|| unreachable!("weights are stored row-major"))
        }
        match self {
            Self::F32(m) => Rows::F32(flat(m)),
            Self::F16(m) => Rows::F16(flat(m)),
            Self::Bf16(m) => Rows::Bf16(flat(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_widen_exactly_and_narrow_to_nearest() {
        let m = Matrix::F32(ndarray::array![[1.0, 1.0 + 1.0 / 1024.0 + 1e-6], [65504.0, -0.1]]);
        let h = m.clone().converted(Dtype::F16);
        let wide = h.to_f32();
        assert_eq!(wide[[0, 0]], 1.0);
        assert_eq!(wide[[0, 1]], 1.0 + 1.0 / 1024.0);
        assert_eq!(wide[[1, 0]], 65504.0);
        assert_eq!(wide[[1, 1]], f16::from_f32(-0.1).to_f32());
        assert_eq!(h.clone().converted(Dtype::F32).converted(Dtype::F16), h);
        let b = m.converted(Dtype::Bf16);
        assert_eq!(b.bytes(), 8);
        assert_eq!(b.to_f32()[[0, 1]], 1.0);
    }
}
