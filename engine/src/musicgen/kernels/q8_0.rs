//! A q8_0 weight matrix kept in our own layout, and its product with a few f32 rows.
//!
//! q8_0 is ggml's format: blocks of 32 weights along a row, each stored as 32 signed bytes and
//! one f16 scale (`w ≈ d·q`). The blocks come from candle's quantizer, so the weights are exactly
//! those of candle's q8_0; we hold them in the group layout (`super::group_index`) with each
//! scale widened to f32, 36 bytes per 32 weights and no repacked copy beside them.
//!
//! The product dequantizes each block in registers and multiplies it with the activations in
//! f32 (candle instead rounds the activations to 8 bits too): a little more arithmetic per
//! byte, still below what the memory bus delivers, and the only error left is the weights'.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Result;

use super::{group_index, QuantMatrix};

/// Weights per block.
pub const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 2 + BLOCK;

/// A q8_0 matrix `(n, k)`, `k` a multiple of [`BLOCK`], in the group layout: the product
/// reads one sequential stream of bytes and one of scales, and asks for the bytes ahead of use.
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    n: usize,
    k: usize,
    /// One scale per block, in the group layout, widened from f16 to f32: the kernel then
    /// broadcasts it straight from memory instead of converting it (2 more bytes per 32
    /// weights, 6 % of the matrix).
    scales: Vec<f32>,
    /// 32 bytes per block, in the group layout.
    qs: Vec<i8>,
}

impl Q8Matrix {
    /// Takes candle's q8_0 blocks of a `(n, k)` matrix (its serialized bytes: per block the f16
    /// scale, little-endian, then 32 bytes).
    pub fn from_qtensor(q: &QTensor) -> Result<Self> {
        if q.dtype() != GgmlDType::Q8_0 {
            candle_core::bail!("Q8Matrix::from_qtensor: expected q8_0, got {:?}", q.dtype())
        }
        let (n, k) = q.shape().dims2()?;
        let data = q.data()?;
        let (per_row, blocks) = (k / BLOCK, n * k / BLOCK);
        if k % BLOCK != 0 || data.len() != blocks * BLOCK_BYTES {
            candle_core::bail!("Q8Matrix::from_qtensor: {} bytes do not hold ({n}, {k}) in q8_0", data.len())
        }
        let mut scales = vec![0f32; blocks];
        let mut qs = vec![0i8; blocks * BLOCK];
        for (src, bytes) in data.chunks_exact(BLOCK_BYTES).enumerate() {
            let dst = group_index(n, per_row, src / per_row, src % per_row);
            scales[dst] = half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
            for (d, &v) in qs[dst * BLOCK..][..BLOCK].iter_mut().zip(&bytes[2..]) {
                *d = v as i8;
            }
        }
        Ok(Self { n, k, scales, qs })
    }

    /// Where the `src`-th block in row-major order is stored.
    fn row_major(&self, src: usize) -> usize {
        let per_row = self.k / BLOCK;
        group_index(self.n, per_row, src / per_row, src % per_row)
    }
}

impl QuantMatrix for Q8Matrix {
    fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// Bytes held: scales and quantized values.
    fn size_in_bytes(&self) -> usize {
        self.scales.len() * 4 + self.qs.len()
    }

    /// The matrix in f32, `(n, k)` row-major.
    fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.n * self.k);
        for src in 0..self.scales.len() {
            let i = self.row_major(src);
            let d = self.scales[i];
            out.extend(self.qs[i * BLOCK..][..BLOCK].iter().map(|&v| d * v as f32));
        }
        out
    }

    /// `y = x·Wᵀ` for `x` `(m, k)`, `m` in `1..=MAX_ROWS`; returns `(m, n)`.
    fn matmul_t(&self, x: &[f32], m: usize) -> Vec<f32> {
        let k = self.k;
        assert!((1..=super::MAX_ROWS).contains(&m), "kernels take 1..={} rows, got {m}", super::MAX_ROWS);
        assert_eq!(x.len(), m * k, "x is not (m, k)");
        let per_row = k / BLOCK;
        // split_rows hands out ranges starting on a multiple of GROUP, so a range is whole groups.
        super::split_rows(m, self.n, |rows, out| {
            let (first, last) = (rows.start * per_row, rows.end * per_row);
            dot_rows(x, m, &self.scales[first..last], &self.qs[first * BLOCK..last * BLOCK], k, out)
        })
    }
}

/// `out[r·m + i] = x[i]·dequantize(row r)` for the rows (whole groups, in the group layout)
/// given by `scales`/`qs`.
fn dot_rows(x: &[f32], m: usize, scales: &[f32], qs: &[i8], k: usize, out: &mut [f32]) {
    let per_row = k / BLOCK;
    let rows = scales.len() / per_row.max(1);
    assert!(
        k % BLOCK == 0 && x.len() == m * k && qs.len() == rows * k && scales.len() * BLOCK == qs.len() && out.len() == rows * m,
        "q8_0 dot_rows: sizes disagree"
    );
    if k == 0 {
        out.fill(0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above); the sizes were checked.
        unsafe { per_row_count!(m, avx512::dot_rows, (x, scales, qs, k, out)) }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: the CPU has AVX2 and FMA (checked above); the sizes were checked.
        unsafe { per_row_count!(m, avx2::dot_rows, (x, scales, qs, k, out)) }
        return;
    }
    portable(x, m, scales, qs, k, out)
}

fn portable(x: &[f32], m: usize, scales: &[f32], qs: &[i8], k: usize, out: &mut [f32]) {
    let per_row = k / BLOCK;
    let rows = scales.len() / per_row;
    for (j, out) in out.chunks_exact_mut(m).enumerate() {
        for (i, o) in out.iter_mut().enumerate() {
            let xi = &x[i * k..(i + 1) * k];
            let mut s = 0f32;
            for b in 0..per_row {
                let blk = group_index(rows, per_row, j, b);
                let d = scales[blk];
                let mut lanes = [0f32; 8];
                for (qc, xc) in qs[blk * BLOCK..][..BLOCK].chunks_exact(8).zip(xi[b * BLOCK..][..BLOCK].chunks_exact(8)) {
                    for l in 0..8 {
                        lanes[l] += qc[l] as f32 * xc[l];
                    }
                }
                s += d * lanes.iter().sum::<f32>();
            }
            *o = s;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::super::GROUP;
    use super::BLOCK;
    use std::arch::x86_64::*;

    /// How many bytes ahead of the block being read the group's bytes are requested.
    const PREFETCH: usize = 4096;

    /// One group of rows at a time against `M` activation rows. Per block and row, the 32 bytes
    /// become four vectors of 8 floats, dotted with each activation row's matching 32 values
    /// (from L1), and the block's sum is scaled into that pair's running sum.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; sizes as checked by `super::dot_rows`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_rows<const M: usize>(x: &[f32], scales: &[f32], qs: &[i8], k: usize, out: &mut [f32]) {
        let per_row = k / BLOCK;
        let rows = scales.len() / per_row;
        let (x, s, q, o) = (x.as_ptr(), scales.as_ptr(), qs.as_ptr(), out.as_mut_ptr());
        // SAFETY: every offset stays inside the slices the caller checked.
        unsafe { for_each_group!(group::<M>, rows, x, (s, per_row), (q, k), k, o) }
    }

    #[inline(always)]
    unsafe fn group<const M: usize, const R: usize>(x: *const f32, s: *const f32, q: *const i8, k: usize, out: *mut f32) {
        let per_row = k / BLOCK;
        // SAFETY: R rows of blocks (group layout) at s/q, M rows of k at x, R·M at out.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); M]; R];
            for b in 0..per_row {
                // The group's bytes are one sequential stream; ask for them well ahead (the
                // hardware prefetcher alone leaves this loop waiting on memory, measured at less
                // than half the bandwidth).
                let ahead = q.wrapping_add(b * R * BLOCK + PREFETCH);
                for line in (0..R * BLOCK).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let blk = b * R + r;
                    let d = _mm256_broadcast_ss(&*s.add(blk));
                    let qb = q.add(blk * BLOCK);
                    let mut wv = [_mm256_setzero_ps(); 4];
                    for (c, v) in wv.iter_mut().enumerate() {
                        let bytes = _mm_loadl_epi64(qb.add(c * 8) as *const __m128i);
                        *v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
                    }
                    for (i, a) in acc.iter_mut().enumerate() {
                        let xb = x.add(i * k + b * BLOCK);
                        let mut t = _mm256_mul_ps(wv[0], _mm256_loadu_ps(xb));
                        t = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(xb.add(8)), t);
                        t = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(xb.add(16)), t);
                        t = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(xb.add(24)), t);
                        *a = _mm256_fmadd_ps(t, d, *a);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (i, a) in acc.iter().enumerate() {
                    *out.add(r * M + i) = super::super::x86::hsum256(*a);
                }
            }
        }
    }
}

/// The AVX2 kernel's loop with 16-wide vectors: a block is two vectors instead of four, so
/// half the conversions and multiply-adds per byte.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::super::GROUP;
    use super::BLOCK;
    use std::arch::x86_64::*;

    /// How far ahead the group's bytes are requested, into L2 (T2): measured 20 GB/s on two
    /// cores against 18 with T0, whose requests hold L1's few fill buffers.
    const PREFETCH: usize = 4096;

    /// # Safety
    /// The CPU must have AVX-512F; sizes as checked by `super::dot_rows`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_rows<const M: usize>(x: &[f32], scales: &[f32], qs: &[i8], k: usize, out: &mut [f32]) {
        let per_row = k / BLOCK;
        let rows = scales.len() / per_row;
        let (x, s, q, o) = (x.as_ptr(), scales.as_ptr(), qs.as_ptr(), out.as_mut_ptr());
        // SAFETY: every offset stays inside the slices the caller checked.
        unsafe { for_each_group!(group::<M>, rows, x, (s, per_row), (q, k), k, o) }
    }

    #[inline(always)]
    unsafe fn group<const M: usize, const R: usize>(x: *const f32, s: *const f32, q: *const i8, k: usize, out: *mut f32) {
        let per_row = k / BLOCK;
        // SAFETY: R rows of blocks (group layout) at s/q, M rows of k at x, R·M at out.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); M]; R];
            for b in 0..per_row {
                let ahead = q.wrapping_add(b * R * BLOCK + PREFETCH);
                for line in (0..R * BLOCK).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T2>(ahead.wrapping_add(line));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let blk = b * R + r;
                    let d = _mm512_set1_ps(*s.add(blk));
                    let qb = q.add(blk * BLOCK);
                    let w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qb as *const __m128i)));
                    let w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qb.add(16) as *const __m128i)));
                    for (i, a) in acc.iter_mut().enumerate() {
                        let xb = x.add(i * k + b * BLOCK);
                        let t = _mm512_mul_ps(w0, _mm512_loadu_ps(xb));
                        let t = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb.add(16)), t);
                        *a = _mm512_fmadd_ps(t, d, *a);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (i, a) in acc.iter().enumerate() {
                    *out.add(r * M + i) = _mm512_reduce_add_ps(*a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_data::{assert_close, reference, uniform};
    use super::*;
    use candle_core::{Device, Tensor};

    fn matrix(n: usize, k: usize, seed: u64) -> (QTensor, Q8Matrix) {
        let w = Tensor::from_vec(uniform(n * k, seed), (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let ours = Q8Matrix::from_qtensor(&q).unwrap();
        (q, ours)
    }

    /// The blocks are candle's, value for value: each block's scale is the f16 scale candle
    /// stored for it, and scale × byte gives candle's own dequantization of every weight.
    #[test]
    fn same_weights_as_candle() {
        let (n, k) = (7, 96);
        let (q, ours) = matrix(n, k, 11);
        let candle: Vec<f32> = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(ours.dequantize(), candle);
        assert_eq!(ours.size_in_bytes(), n * k / 32 * 36);
        let bytes = q.data().unwrap();
        for (src, block) in bytes.chunks_exact(BLOCK_BYTES).enumerate() {
            let i = ours.row_major(src);
            let scale = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            assert_eq!(ours.scales[i], scale, "scale of block {src}");
            let weights = &candle[src * BLOCK..][..BLOCK];
            for (j, (&v, &want)) in ours.qs[i * BLOCK..][..BLOCK].iter().zip(weights).enumerate() {
                assert_eq!(scale * f32::from(v), want, "block {src}, weight {j}");
            }
        }
    }

    /// The product equals the exact product with the dequantized weights, up to f32 summation,
    /// for every row count and for sizes that split across threads.
    #[test]
    fn product_matches_dequantized_reference() {
        for &(n, k) in &[(1, 32), (5, 64), (33, 96), (1030, 256)] {
            let (_, w) = matrix(n, k, 3 + n as u64);
            let wd = w.dequantize();
            for m in 1..=super::super::MAX_ROWS {
                let x = uniform(m * k, 9 + m as u64);
                let got = w.matmul_t(&x, m);
                let want = reference(&x, m, &wd, n, k);
                let tol = 4.0 * k as f32 * f32::EPSILON;
                assert_close(&got, &want, tol, &format!("m={m} n={n} k={k}"));
                let mut by_row = vec![0f32; n * m];
                portable(&x, m, &w.scales, &w.qs, k, &mut by_row);
                for j in 0..n {
                    for i in 0..m {
                        assert!((by_row[j * m + i] - want[i * n + j]).abs() <= tol, "portable m={m} n={n}");
                    }
                }
            }
        }
    }

    /// The run-time dispatch picks one instruction set; each one this CPU has is checked here
    /// against the portable loop (AVX2 would otherwise go untested on an AVX-512 machine).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_instruction_set_agrees() {
        let (n, k, m) = (9, 128, 2);
        let (_, w) = matrix(n, k, 17);
        let x = uniform(m * k, 19);
        let mut want = vec![0f32; n * m];
        portable(&x, m, &w.scales, &w.qs, k, &mut want);
        let mut got = vec![0f32; n * m];
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: features checked; sizes as dot_rows checks them.
            unsafe { avx2::dot_rows::<2>(&x, &w.scales, &w.qs, k, &mut got) };
            assert_close(&got, &want, 1e-4, "avx2");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: as above.
            unsafe { avx512::dot_rows::<2>(&x, &w.scales, &w.qs, k, &mut got) };
            assert_close(&got, &want, 1e-4, "avx512");
        }
    }

    #[test]
    fn other_formats_are_refused() {
        let w = Tensor::from_vec(uniform(256, 1), (1, 256), &Device::Cpu).unwrap();
        let q4 = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
        assert!(Q8Matrix::from_qtensor(&q4).unwrap_err().to_string().contains("expected q8_0"));
    }
}
