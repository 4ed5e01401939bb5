//! f32 weight rows dotted with up to [`super::MAX_ROWS`] activation rows.
//!
//! On x86-64 with AVX2 and FMA (checked at run time; every x86 CPU of the last decade) the
//! rows go through 8-wide fused multiply-adds, several weight rows per pass so each activation
//! vector loaded from L1 serves them all and enough independent sums are in flight to hide the
//! FMA latency. Elsewhere a portable loop with eight lanes of partial sums, which compilers turn
//! into NEON or SSE.

/// `out[r·m + i] = x[i]·w[r]` for every row `r` of `w` (`w.len() / k` rows of `k`) and row `i`
/// of `x` (`m` rows of `k`).
pub(super) fn dot_rows(x: &[f32], m: usize, w: &[f32], k: usize, out: &mut [f32]) {
    if k == 0 {
        out.fill(0.0);
        return;
    }
    let rows = w.len() / k;
    assert!(x.len() == m * k && w.len() == rows * k && out.len() == rows * m, "dot_rows: sizes disagree");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked above); the sizes were checked.
        unsafe {
            match m {
                1 => avx2::dot_rows::<1, 4>(x, w, k, out),
                2 => avx2::dot_rows::<2, 4>(x, w, k, out),
                3 => avx2::dot_rows::<3, 2>(x, w, k, out),
                4 => avx2::dot_rows::<4, 2>(x, w, k, out),
                _ => unreachable!("m is checked by the caller"),
            }
        }
        return;
    }
    portable(x, m, w, k, out)
}

fn portable(x: &[f32], m: usize, w: &[f32], k: usize, out: &mut [f32]) {
    for (row, out) in w.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(&x[i * k..(i + 1) * k], row);
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(p, q)| p * q).sum();
    for (p, q) in a8.zip(b8) {
        for l in 0..8 {
            lanes[l] += p[l] * q[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `R` weight rows per pass against `M` activation rows: `R·M` running sums of 8 lanes.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `x` is `M·k`, `w` a whole number of rows of `k`, `out`
    /// `rows·M`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_rows<const M: usize, const R: usize>(x: &[f32], w: &[f32], k: usize, out: &mut [f32]) {
        let rows = w.len() / k;
        let full = rows / R * R;
        let (x, w, o) = (x.as_ptr(), w.as_ptr(), out.as_mut_ptr());
        // SAFETY: every pointer below stays inside the slices whose sizes the caller checked.
        unsafe {
            for r in (0..full).step_by(R) {
                group::<M, R>(x, w.add(r * k), k, o.add(r * M));
            }
            for r in full..rows {
                group::<M, 1>(x, w.add(r * k), k, o.add(r * M));
            }
        }
    }

    #[inline(always)]
    unsafe fn group<const M: usize, const R: usize>(x: *const f32, w: *const f32, k: usize, out: *mut f32) {
        // SAFETY: the caller guarantees AVX2/FMA and R rows of k at w, M rows of k at x, R·M at out.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); M]; R];
            let main = k & !7;
            let mut l = 0;
            while l < main {
                let mut xv = [_mm256_setzero_ps(); M];
                for (i, v) in xv.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(x.add(i * k + l));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let wv = _mm256_loadu_ps(w.add(r * k + l));
                    for i in 0..M {
                        acc[i] = _mm256_fmadd_ps(wv, xv[i], acc[i]);
                    }
                }
                l += 8;
            }
            for (r, acc) in acc.iter().enumerate() {
                for (i, a) in acc.iter().enumerate() {
                    let mut s = super::super::x86::hsum256(*a);
                    for t in main..k {
                        s += *w.add(r * k + t) * *x.add(i * k + t);
                    }
                    *out.add(r * M + i) = s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_data::{reference, uniform};
    use super::*;

    /// The portable loop (used off x86 or without AVX2) against the f64 reference.
    #[test]
    fn portable_loop_matches_reference() {
        let (m, n, k) = (3, 9, 45);
        let (x, w) = (uniform(m * k, 7), uniform(n * k, 8));
        let mut by_row = vec![0f32; n * m];
        portable(&x, m, &w, k, &mut by_row);
        let want = reference(&x, m, &w, n, k);
        for j in 0..n {
            for i in 0..m {
                assert!((by_row[j * m + i] - want[i * n + j]).abs() < 1e-4);
            }
        }
    }
}
