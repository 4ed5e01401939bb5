//! Matrix products for the decoder's per-step shape: a few activation rows (the CFG batch of 2,
//! one position each) against a large weight matrix `W` `(out, in)`, on the CPU.
//!
//! Why our own: a decoder step reads every weight once and does two multiply-adds per weight, so
//! its speed is set by memory bandwidth, not arithmetic. General GEMM libraries are built for the
//! opposite case: candle's f32 product (the `gemm` crate) packs the transposed weight into
//! panels on every call, so each weight is read, written and read again, and measured 45 % of the
//! bandwidth roofline on the 2-core VM (`cargo xtask bench`). candle's quantized product is fast
//! but keeps a repacked copy of every matrix beside its blocks, doubling resident memory. The
//! kernels here stream each weight row once, straight from where it is stored, and dot it with
//! the (cache-resident) activation rows.
//!
//! Only the small-`m` case comes here ([`MAX_ROWS`]); prompts, melody prefixes and the
//! once-per-generation cross-attention projections keep candle's GEMM, which is right for them.
//!
//! Threads: the output rows of `W` are split into one contiguous range per thread of candle's
//! CPU pool, the one its quantized products use: its workers spin briefly between products
//! instead of sleeping, which matters at a few hundred products per step (rayon's wake-ups cost
//! tens of microseconds each on the VM). The plugin sizes that pool to leave cores to the host
//! (`threads.rs`).

/// `match m { 1 => $f::<1>(args), …, 4 => $f::<4>(args) }`: a kernel instantiated per row
/// count (the caller has checked `m` is in `1..=MAX_ROWS`).
macro_rules! per_row_count {
    ($m:expr, $($f:ident)::+, ($($arg:expr),*)) => {
        match $m {
            1 => $($f)::+::<1>($($arg),*),
            2 => $($f)::+::<2>($($arg),*),
            3 => $($f)::+::<3>($($arg),*),
            4 => $($f)::+::<4>($($arg),*),
            _ => unreachable!("m is checked by the caller"),
        }
    };
}

/// The outer loop of a grouped quantized kernel: `$group::<M, R>(x, s, q, k, out)` for each group
/// of [`GROUP`] rows (`R` smaller for the last), with `s`, `q` and `out` advanced by
/// `$s_row`, `$q_row` and `M` per row. A macro, not a function, so that it expands inside each
/// `#[target_feature]` function and inlines that instruction set's `$group`.
macro_rules! for_each_group {
    ($group:ident::<$m:ident>, $rows:expr, $x:expr, ($s:expr, $s_row:expr), ($q:expr, $q_row:expr), $k:expr, $o:expr) => {
        for g in (0..$rows).step_by(GROUP) {
            let (s, q, o) = ($s.add(g * $s_row), $q.add(g * $q_row), $o.add(g * $m));
            match GROUP.min($rows - g) {
                GROUP => $group::<$m, GROUP>($x, s, q, $k, o),
                1 => $group::<$m, 1>($x, s, q, $k, o),
                2 => $group::<$m, 2>($x, s, q, $k, o),
                _ => $group::<$m, 3>($x, s, q, $k, o),
            }
        }
    };
}

/// Helpers the x86 kernels share; `#[inline(always)]` so they take on the caller's instruction set.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// The sum of a vector's 8 lanes.
    ///
    /// # Safety
    /// The CPU must have AVX (every caller is an AVX2 kernel).
    #[inline(always)]
    pub(super) unsafe fn hsum256(v: __m256) -> f32 {
        // SAFETY: AVX per the contract.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
        }
    }
}

mod attention;
mod f32_rows;
mod q4k;
mod q8_0;

pub use attention::attend_one;
pub use q4k::Q4KMatrix;
pub use q8_0::Q8Matrix;

use parking_lot::Mutex;

/// A weight matrix `(n, k)` held in one of our quantized layouts (q8_0, q4k): what a linear layer
/// needs of it, whatever the format.
pub trait QuantMatrix: std::fmt::Debug + Send + Sync {
    /// `(n, k)`.
    fn dims(&self) -> (usize, usize);
    /// Bytes held.
    fn size_in_bytes(&self) -> usize;
    /// The matrix in f32, `(n, k)` row-major: the weights the products use.
    fn dequantize(&self) -> Vec<f32>;
    /// `y = x·Wᵀ` for `x` `(m, k)`, `m` in `1..=MAX_ROWS`; returns `(m, n)`.
    fn matmul_t(&self, x: &[f32], m: usize) -> Vec<f32>;
}

/// Largest number of activation rows the kernels take. More rows than this are a prefill, where
/// re-reading `W` per group of rows would cost more than a GEMM's packing.
pub const MAX_ROWS: usize = 4;

/// Weight rows stored together by the quantized layouts: inside a group, unit `u` (a block) of
/// each of its rows, then unit `u + 1` of each, and so on. The product walks one group at a time,
/// so its reads are one sequential stream with the group's row sums in flight together.
pub(crate) const GROUP: usize = 4;

/// Index of unit `u` of row `j` in the group layout of `n` rows of `units` units (the last group
/// may have fewer than [`GROUP`] rows).
pub(crate) fn group_index(n: usize, units: usize, j: usize, u: usize) -> usize {
    let g = j / GROUP * GROUP;
    let size = GROUP.min(n - g);
    g * units + u * size + (j - g)
}

/// Weight rows given to one task at least: below this a thread costs more to wake than it saves.
const MIN_ROWS_PER_TASK: usize = 64;

/// `y = x·Wᵀ` for f32 `x` `(m, k)` and `W` `(n, k)`, both row-major; returns `y` `(m, n)`.
///
/// Panics if `m` is 0 or above [`MAX_ROWS`] or a slice is not its stated size (callers check
/// shapes; a wrong size here is a bug).
pub fn matmul_t_f32(x: &[f32], m: usize, w: &[f32], n: usize, k: usize) -> Vec<f32> {
    assert!((1..=MAX_ROWS).contains(&m), "kernels take 1..={MAX_ROWS} rows, got {m}");
    assert_eq!(x.len(), m * k, "x is not (m, k)");
    assert_eq!(w.len(), n * k, "W is not (n, k)");
    split_rows(m, n, |rows, out| f32_rows::dot_rows(x, m, &w[rows.start * k..rows.end * k], k, out))
}

/// Runs `kernel(rows, out)` over ranges of `W`'s rows, one range per thread of candle's CPU pool
/// (the calling thread is one of them), where `out` is `(rows.len(), m)` (one weight row's `m`
/// results together), then lays the results out as `(m, n)`.
fn split_rows(m: usize, n: usize, kernel: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync) -> Vec<f32> {
    // Whole groups of rows per task (harmless for f32).
    let by_row = for_ranges(n, m, MIN_ROWS_PER_TASK, GROUP, kernel);
    if m == 1 {
        return by_row;
    }
    let mut y = vec![0f32; m * n];
    for (j, r) in by_row.chunks_exact(m).enumerate() {
        for (i, v) in r.iter().enumerate() {
            y[i * n + j] = *v;
        }
    }
    y
}

/// Splits `0..n` into one range per thread of candle's CPU pool (at least `min_per_task` items
/// each, starting on multiples of `align`) and runs `kernel(range, out)` on each, `out` being that
/// range's part of the `(n, width)` result.
fn for_ranges(
    n: usize,
    width: usize,
    min_per_task: usize,
    align: usize,
    kernel: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let pool = candle_core::utils::barrier_pool();
    let threads = pool.n_workers() + 1;
    let per_task = n.div_ceil(threads).max(min_per_task).next_multiple_of(align);
    let mut out = vec![0f32; n * width];
    if per_task >= n {
        kernel(0..n, &mut out);
    } else {
        // One uncontended lock per task hands each thread its own part of the output.
        let parts: Vec<Mutex<&mut [f32]>> = out.chunks_mut(per_task * width).map(Mutex::new).collect();
        pool.execute(|t| {
            if let Some(part) = parts.get(t) {
                let mut part = part.lock();
                let start = t * per_task;
                kernel(start..start + part.len() / width, &mut part)
            }
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod test_data {
    /// Deterministic values uniform in [-1, 1].
    pub fn uniform(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Asserts every `got[i]` is within `tol` of `want[i]`.
    pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (idx, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "{what}: [{idx}] {g} vs {w}");
        }
    }

    /// `x·Wᵀ` summed in f64, the reference the kernels are checked against.
    pub fn reference(x: &[f32], m: usize, w: &[f32], n: usize, k: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|l| x[i * k + l] as f64 * w[j * k + l] as f64).sum();
                y[i * n + j] = s as f32;
            }
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::test_data::{assert_close, reference, uniform};
    use super::*;

    /// Every row count, sizes that are and are not multiples of the SIMD width and of the
    /// rows-per-pass, and a size large enough to be split across threads.
    #[test]
    fn f32_product_matches_f64_reference() {
        for &(n, k) in &[(1, 1), (3, 7), (5, 8), (13, 33), (64, 1024), (300, 72), (1031, 96)] {
            for m in 1..=MAX_ROWS {
                let x = uniform(m * k, 1 + m as u64);
                let w = uniform(n * k, 2 + n as u64);
                let got = matmul_t_f32(&x, m, &w, n, k);
                let want = reference(&x, m, &w, n, k);
                // f32 accumulation of k terms of size ≤ 1: error well under k·ε.
                let tol = 4.0 * k as f32 * f32::EPSILON;
                assert_close(&got, &want, tol, &format!("m={m} n={n} k={k}"));
            }
        }
    }

    #[test]
    #[should_panic(expected = "kernels take")]
    fn too_many_rows_is_refused() {
        matmul_t_f32(&[0.0; 5], 5, &[0.0; 1], 1, 1);
    }
}
