//! A q4k weight matrix kept in our own layout, and its product with a few f32 rows.
//!
//! q4k is ggml's 4-bit "k-quant": super-blocks of 256 weights along a row, in 8 sub-blocks of 32,
//! each sub-block with its own 6-bit scale and 6-bit minimum (themselves scaled by the
//! super-block's two f16 factors), so `w = d·sc·q − dmin·m` with `q` in 0..=15. The blocks come
//! from candle's quantizer (so the weights are exactly candle's q4k weights); at load we expand
//! each sub-block's scale and minimum to f32 (`d·sc`, `dmin·m`, computed as candle computes them)
//! and keep the 4-bit values as they are.
//!
//! Why our own: candle keeps a repacked copy of each q4k matrix beside its blocks (6 bits per
//! weight more), which put q4k's peak memory at 1.39× the weights in use. This layout costs 6.5
//! bits per weight (4 of values, 2.5 of f32 scale and minimum per 32) and nothing beside it.
//!
//! The product uses `x·(d·q − m) = d·(x·q) − m·Σx` per sub-block: the 4-bit values are widened in
//! registers and dotted with the activations in f32, scaled per sub-block; the minimums' part is
//! a small f32 product of the per-sub-block minimums with the activations' per-sub-block sums.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Result;

use super::{f32_rows, group_index, QuantMatrix};

/// Weights per super-block.
pub const SUPER: usize = 256;
/// Weights per sub-block (one scale and one minimum each).
pub const SUB: usize = 32;
/// Bytes of one serialized super-block: d, dmin (f16), 12 bytes of packed scales/minimums, 128
/// bytes of 4-bit values.
const SUPER_BYTES: usize = 2 + 2 + 12 + SUPER / 2;
/// Weights per unit of our layout: 32 bytes whose low nibbles are one sub-block and whose high
/// nibbles are the next (ggml's own pairing).
const UNIT: usize = 64;

/// A q4k matrix `(n, k)`, `k` a multiple of [`SUPER`].
///
/// Layout: rows in groups of [`super::GROUP`] as for q8_0 (`super::group_index`), unit by unit: the
/// product reads one sequential stream of values and one of scales.
#[derive(Debug, Clone)]
pub struct Q4KMatrix {
    n: usize,
    k: usize,
    /// 32 bytes per unit of 64 weights, in the group layout.
    qs: Vec<u8>,
    /// Per unit, the two sub-blocks' scales `d·sc`, in the group layout.
    scales: Vec<[f32; 2]>,
    /// Every sub-block's minimum `dmin·m`, row-major `(n, k/32)`.
    mins: Vec<f32>,
}

/// ggml's unpacking of the 6-bit scale and minimum of sub-block `j` (0..8) from 12 bytes.
fn scale_min(j: usize, packed: &[u8]) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 63, packed[j + 4] & 63)
    } else {
        ((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4), (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4))
    }
}

impl Q4KMatrix {
    /// Takes candle's q4k blocks of a `(n, k)` matrix (its serialized bytes).
    pub fn from_qtensor(q: &QTensor) -> Result<Self> {
        if q.dtype() != GgmlDType::Q4K {
            candle_core::bail!("Q4KMatrix::from_qtensor: expected q4k, got {:?}", q.dtype())
        }
        let (n, k) = q.shape().dims2()?;
        let data = q.data()?;
        if k % SUPER != 0 || data.len() != n * k / SUPER * SUPER_BYTES {
            candle_core::bail!("Q4KMatrix::from_qtensor: {} bytes do not hold ({n}, {k}) in q4k", data.len())
        }
        let units = k / UNIT;
        let mut qs = vec![0u8; n * k / 2];
        let mut scales = vec![[0f32; 2]; n * units];
        let mut mins = vec![0f32; n * k / SUB];
        for (src, block) in data.chunks_exact(SUPER_BYTES).enumerate() {
            let (j, sb) = (src / (k / SUPER), src % (k / SUPER));
            let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            let dmin = half::f16::from_le_bytes([block[2], block[3]]).to_f32();
            let packed = &block[4..16];
            for p in 0..SUPER / UNIT {
                let u = sb * (SUPER / UNIT) + p;
                let dst = group_index(n, units, j, u);
                qs[dst * 32..][..32].copy_from_slice(&block[16 + p * 32..][..32]);
                for h in 0..2 {
                    let (sc, m) = scale_min(2 * p + h, packed);
                    scales[dst][h] = d * sc as f32;
                    mins[j * (k / SUB) + 2 * u + h] = dmin * m as f32;
                }
            }
        }
        Ok(Self { n, k, qs, scales, mins })
    }
}

impl QuantMatrix for Q4KMatrix {
    fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// Bytes held: values, scales and minimums.
    fn size_in_bytes(&self) -> usize {
        self.qs.len() + self.scales.len() * 8 + self.mins.len() * 4
    }

    /// The matrix in f32, `(n, k)` row-major, value for value what candle's dequantization gives.
    fn dequantize(&self) -> Vec<f32> {
        let units = self.k / UNIT;
        let mut out = Vec::with_capacity(self.n * self.k);
        for j in 0..self.n {
            for u in 0..units {
                let i = group_index(self.n, units, j, u);
                let q = &self.qs[i * 32..][..32];
                for h in 0..2 {
                    let (d, m) = (self.scales[i][h], self.mins[j * (self.k / SUB) + 2 * u + h]);
                    out.extend(q.iter().map(|&b| d * ((b >> (4 * h)) & 0xF) as f32 - m));
                }
            }
        }
        out
    }

    /// `y = x·Wᵀ` for `x` `(m, k)`, `m` in `1..=MAX_ROWS`; returns `(m, n)`.
    fn matmul_t(&self, x: &[f32], m: usize) -> Vec<f32> {
        let k = self.k;
        assert!((1..=super::MAX_ROWS).contains(&m), "kernels take 1..={} rows, got {m}", super::MAX_ROWS);
        assert_eq!(x.len(), m * k, "x is not (m, k)");
        // Σx per sub-block, `(m, k/32)`: the minimums' part is then an f32 product.
        let sums: Vec<f32> = x.chunks_exact(SUB).map(|c| c.iter().sum()).collect();
        let (units, subs) = (k / UNIT, k / SUB);
        super::split_rows(m, self.n, |rows, out| {
            let (first, last) = (rows.start * units, rows.end * units);
            dot_rows(x, m, &self.qs[first * 32..last * 32], &self.scales[first..last], k, out);
            // out −= minimums · sums, row by row of this range.
            let mut corr = vec![0f32; out.len()];
            f32_rows::dot_rows(&sums, m, &self.mins[rows.start * subs..rows.end * subs], subs, &mut corr);
            for (o, c) in out.iter_mut().zip(&corr) {
                *o -= c;
            }
        })
    }
}

/// `out[r·m + i] = Σ_sub scale·(x[i]·q)` for the rows (whole groups, group layout) given.
fn dot_rows(x: &[f32], m: usize, qs: &[u8], scales: &[[f32; 2]], k: usize, out: &mut [f32]) {
    let units = k / UNIT;
    let rows = scales.len() / units.max(1);
    assert!(
        k % SUPER == 0 && x.len() == m * k && qs.len() == rows * k / 2 && scales.len() == rows * units && out.len() == rows * m,
        "q4k dot_rows: sizes disagree"
    );
    if k == 0 {
        out.fill(0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above); the sizes were checked.
        unsafe { per_row_count!(m, simd::dot_rows_avx512, (x, qs, scales, k, out)) }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked above); the sizes were checked.
        unsafe { per_row_count!(m, simd::dot_rows_avx2, (x, qs, scales, k, out)) }
        return;
    }
    portable(x, m, qs, scales, k, out)
}

fn portable(x: &[f32], m: usize, qs: &[u8], scales: &[[f32; 2]], k: usize, out: &mut [f32]) {
    let units = k / UNIT;
    let rows = scales.len() / units;
    for (j, out) in out.chunks_exact_mut(m).enumerate() {
        for (i, o) in out.iter_mut().enumerate() {
            let mut s = 0f32;
            for u in 0..units {
                let idx = group_index(rows, units, j, u);
                let q = &qs[idx * 32..][..32];
                for h in 0..2 {
                    let xs = &x[i * k + u * UNIT + h * SUB..][..SUB];
                    let t: f32 = q.iter().zip(xs).map(|(&b, &xv)| ((b >> (4 * h)) & 0xF) as f32 * xv).sum();
                    s += scales[idx][h] * t;
                }
            }
            *o = s;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::super::GROUP;
    use super::UNIT;
    use std::arch::x86_64::*;

    /// How far ahead of the unit being read the group's values are requested.
    const PREFETCH: usize = 4096;

    /// 16 bytes (their low 16 for AVX-512, low 8 for AVX2) widened to floats.
    macro_rules! widen512 {
        ($v:expr) => {
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32($v))
        };
    }
    macro_rules! widen256 {
        ($v:expr) => {
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32($v))
        };
    }

    /// Rows group by group, as the q8_0 kernels do; one unit (64 weights) per step: its 32 bytes
    /// split into low and high nibbles and widened to floats.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; sizes as checked by `super::dot_rows`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_rows_avx512<const M: usize>(x: &[f32], qs: &[u8], scales: &[[f32; 2]], k: usize, out: &mut [f32]) {
        let units = k / UNIT;
        let rows = scales.len() / units;
        let (x, q, s, o) = (x.as_ptr(), qs.as_ptr(), scales.as_ptr(), out.as_mut_ptr());
        // SAFETY: every offset stays inside the slices the caller checked.
        unsafe { for_each_group!(group512::<M>, rows, x, (s, units), (q, k / 2), k, o) }
    }

    /// The same with 8-wide vectors.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; sizes as checked by `super::dot_rows`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_rows_avx2<const M: usize>(x: &[f32], qs: &[u8], scales: &[[f32; 2]], k: usize, out: &mut [f32]) {
        let units = k / UNIT;
        let rows = scales.len() / units;
        let (x, q, s, o) = (x.as_ptr(), qs.as_ptr(), scales.as_ptr(), out.as_mut_ptr());
        // SAFETY: every offset stays inside the slices the caller checked.
        unsafe { for_each_group!(group256::<M>, rows, x, (s, units), (q, k / 2), k, o) }
    }

    #[inline(always)]
    unsafe fn group512<const M: usize, const R: usize>(x: *const f32, s: *const [f32; 2], q: *const u8, k: usize, out: *mut f32) {
        let units = k / UNIT;
        // SAFETY: R rows of units (group layout) at q/s, M rows of k at x, R·M at out.
        unsafe {
            let low = _mm_set1_epi8(0x0F);
            let mut acc = [[_mm512_setzero_ps(); M]; R];
            for u in 0..units {
                _mm_prefetch::<_MM_HINT_T2>(q.wrapping_add(u * R * 32 + PREFETCH) as *const i8);
                _mm_prefetch::<_MM_HINT_T2>(q.wrapping_add(u * R * 32 + PREFETCH + 64) as *const i8);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let idx = u * R + r;
                    let qb = q.add(idx * 32);
                    let [s0, s1] = *s.add(idx);
                    let (s0, s1) = (_mm512_set1_ps(s0), _mm512_set1_ps(s1));
                    let b0 = _mm_loadu_si128(qb as *const __m128i);
                    let b1 = _mm_loadu_si128(qb.add(16) as *const __m128i);
                    // Low nibbles: weights 0..32 of the unit; high: 32..64.
                    let w = [
                        widen512!(_mm_and_si128(b0, low)),
                        widen512!(_mm_and_si128(b1, low)),
                        widen512!(_mm_and_si128(_mm_srli_epi16::<4>(b0), low)),
                        widen512!(_mm_and_si128(_mm_srli_epi16::<4>(b1), low)),
                    ];
                    for (i, a) in acc.iter_mut().enumerate() {
                        let xb = x.add(i * k + u * UNIT);
                        let lo = _mm512_fmadd_ps(w[1], _mm512_loadu_ps(xb.add(16)), _mm512_mul_ps(w[0], _mm512_loadu_ps(xb)));
                        let hi = _mm512_fmadd_ps(w[3], _mm512_loadu_ps(xb.add(48)), _mm512_mul_ps(w[2], _mm512_loadu_ps(xb.add(32))));
                        *a = _mm512_fmadd_ps(hi, s1, _mm512_fmadd_ps(lo, s0, *a));
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

    #[inline(always)]
    unsafe fn group256<const M: usize, const R: usize>(x: *const f32, s: *const [f32; 2], q: *const u8, k: usize, out: *mut f32) {
        let units = k / UNIT;
        // SAFETY: R rows of units (group layout) at q/s, M rows of k at x, R·M at out.
        unsafe {
            let low = _mm_set1_epi8(0x0F);
            let mut acc = [[_mm256_setzero_ps(); M]; R];
            for u in 0..units {
                _mm_prefetch::<_MM_HINT_T0>(q.wrapping_add(u * R * 32 + PREFETCH) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(q.wrapping_add(u * R * 32 + PREFETCH + 64) as *const i8);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let idx = u * R + r;
                    let qb = q.add(idx * 32);
                    let [s0, s1] = *s.add(idx);
                    let (s0, s1) = (_mm256_set1_ps(s0), _mm256_set1_ps(s1));
                    let b0 = _mm_loadu_si128(qb as *const __m128i);
                    let b1 = _mm_loadu_si128(qb.add(16) as *const __m128i);
                    let (l0, l1) = (_mm_and_si128(b0, low), _mm_and_si128(b1, low));
                    let (h0, h1) = (_mm_and_si128(_mm_srli_epi16::<4>(b0), low), _mm_and_si128(_mm_srli_epi16::<4>(b1), low));
                    let w = [
                        widen256!(l0), widen256!(_mm_srli_si128::<8>(l0)), widen256!(l1), widen256!(_mm_srli_si128::<8>(l1)),
                        widen256!(h0), widen256!(_mm_srli_si128::<8>(h0)), widen256!(h1), widen256!(_mm_srli_si128::<8>(h1)),
                    ];
                    for (i, a) in acc.iter_mut().enumerate() {
                        let xb = x.add(i * k + u * UNIT);
                        let mut lo = _mm256_mul_ps(w[0], _mm256_loadu_ps(xb));
                        let mut hi = _mm256_mul_ps(w[4], _mm256_loadu_ps(xb.add(32)));
                        for c in 1..4 {
                            lo = _mm256_fmadd_ps(w[c], _mm256_loadu_ps(xb.add(8 * c)), lo);
                            hi = _mm256_fmadd_ps(w[4 + c], _mm256_loadu_ps(xb.add(32 + 8 * c)), hi);
                        }
                        *a = _mm256_fmadd_ps(hi, s1, _mm256_fmadd_ps(lo, s0, *a));
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

#[cfg(test)]
mod tests {
    use super::super::test_data::{assert_close, reference, uniform};
    use super::*;
    use candle_core::{Device, Tensor};

    fn matrix(n: usize, k: usize, seed: u64) -> (QTensor, Q4KMatrix) {
        let w = Tensor::from_vec(uniform(n * k, seed), (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
        let ours = Q4KMatrix::from_qtensor(&q).unwrap();
        (q, ours)
    }

    /// The weights are candle's q4k weights, value for value.
    #[test]
    fn same_weights_as_candle() {
        let (q, ours) = matrix(7, 512, 21);
        let candle: Vec<f32> = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(ours.dequantize(), candle);
        // 4 bits of value and 2 × 32 bits per 32 weights.
        assert_eq!(ours.size_in_bytes(), 7 * 512 / 2 + 7 * 512 / 32 * 8);
    }

    /// The product equals the exact product with the dequantized weights, up to f32 summation,
    /// for every row count, a group remainder and sizes that split across threads.
    #[test]
    fn product_matches_dequantized_reference() {
        for &(n, k) in &[(1, 256), (6, 512), (1030, 256)] {
            let (_, w) = matrix(n, k, 5 + n as u64);
            let wd = w.dequantize();
            for m in 1..=super::super::MAX_ROWS {
                let x = uniform(m * k, 13 + m as u64);
                let got = w.matmul_t(&x, m);
                let want = reference(&x, m, &wd, n, k);
                // Values up to ~1, k terms, plus the minimums' part computed apart.
                let tol = 8.0 * k as f32 * f32::EPSILON;
                assert_close(&got, &want, tol, &format!("m={m} n={n} k={k}"));
                let mut by_row = vec![0f32; n * m];
                portable(&x, m, &w.qs, &w.scales, k, &mut by_row);
                let sums: Vec<f32> = x.chunks_exact(SUB).map(|c| c.iter().sum()).collect();
                let mut corr = vec![0f32; n * m];
                f32_rows::dot_rows(&sums, m, &w.mins, k / SUB, &mut corr);
                for j in 0..n {
                    for i in 0..m {
                        let p = by_row[j * m + i] - corr[j * m + i];
                        assert!((p - want[i * n + j]).abs() <= tol, "portable m={m} n={n}");
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
        let (n, k, m) = (9, 512, 2);
        let (_, w) = matrix(n, k, 17);
        let x = uniform(m * k, 19);
        let mut want = vec![0f32; n * m];
        portable(&x, m, &w.qs, &w.scales, k, &mut want);
        let mut got = vec![0f32; n * m];
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: features checked; sizes as dot_rows checks them.
            unsafe { simd::dot_rows_avx2::<2>(&x, &w.qs, &w.scales, k, &mut got) };
            assert_close(&got, &want, 1e-4, "avx2");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: as above.
            unsafe { simd::dot_rows_avx512::<2>(&x, &w.qs, &w.scales, k, &mut got) };
            assert_close(&got, &want, 1e-4, "avx512");
        }
    }

    #[test]
    fn other_formats_are_refused() {
        let w = Tensor::from_vec(uniform(256, 1), (1, 256), &Device::Cpu).unwrap();
        let q8 = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        assert!(Q4KMatrix::from_qtensor(&q8).unwrap_err().to_string().contains("expected q4k"));
    }
}
