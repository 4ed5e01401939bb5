//! Attention of one new position to the cached keys and values, on the CPU.
//!
//! Why: after the weights, a step's largest read is the self-attention cache, which grows by one
//! position per step: for a 10 s clip (500 steps) musicgen-small reads on average ~100 MB of keys
//! and values per step, and for 30 s ~300 MB, more than the q8_0 weights. candle runs `q·Kᵀ` and
//! `p·V` as 32 small batched GEMMs per layer on a strided view of the cache; measured, the step
//! slowed from 37 to 24 steps/s (q8_0) between 0.4 s and 10 s clips. Here each (row, head) pair
//! streams its keys once for the scores and its values once for the output, straight from the
//! cache's storage, split over candle's pool.

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

use super::{f32_rows, for_ranges};

/// (row, head) pairs given to one task at least.
const MIN_HEADS_PER_TASK: usize = 8;

/// `softmax(q·Kᵀ + mask)·V` for a single query position: `q` `(B, H, 1, d)`, `k`/`v`
/// `(B, H, T, d)` (contiguous, or the cache's view of its first `T` positions), `mask` additive
/// `(B or 1, 1, 1, T)`. Returns `(B, H, 1, d)`, or `None` when the inputs are not f32 CPU tensors
/// of those shapes and layouts (the caller then takes candle's path).
pub fn attend_one(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
    let (b, h, one, d) = q.dims4()?;
    let t = k.dim(2)?;
    if one != 1 || t == 0 || d == 0 || !q.device().is_cpu() || k.dims() != [b, h, t, d] || v.dims() != k.dims() {
        return Ok(None);
    }
    let mask_rows = match mask.map(|m| m.dims()) {
        None => 0,
        Some(&[mb, 1, 1, mt]) if mt == t && (mb == b || mb == 1) => mb,
        Some(_) => return Ok(None),
    };
    let (qg, ql) = q.storage_and_layout();
    let (kg, kl) = k.storage_and_layout();
    let (vg, vl) = v.storage_and_layout();
    let (Some(qa), Some(ka), Some(va)) = (f32_data(&qg), f32_data(&kg), f32_data(&vg)) else { return Ok(None) };
    let (Some(qo), Some(ko), Some(vo)) = (head_offsets(ql, d, 1), head_offsets(kl, d, t), head_offsets(vl, d, t)) else {
        return Ok(None);
    };
    let mask_guard = mask.map(|m| m.storage_and_layout());
    let mask_data = match &mask_guard {
        None => None,
        Some((g, l)) => match (f32_data(g), l.contiguous_offsets()) {
            (Some(a), Some((start, end))) => Some(&a[start..end]),
            _ => return Ok(None),
        },
    };
    let out = for_ranges(b * h, d, MIN_HEADS_PER_TASK, 1, |pairs, out| {
        let mut scores = vec![0f32; t];
        for (p, out) in pairs.zip(out.chunks_exact_mut(d)) {
            let (bi, hi) = (p / h, p % h);
            let qs = &qa[qo(bi, hi)..][..d];
            let ks = &ka[ko(bi, hi)..][..t * d];
            let vs = &va[vo(bi, hi)..][..t * d];
            f32_rows::dot_rows(qs, 1, ks, d, &mut scores);
            if let Some(m) = mask_data {
                let row = if mask_rows == 1 { 0 } else { bi };
                for (s, add) in scores.iter_mut().zip(&m[row * t..(row + 1) * t]) {
                    *s += add;
                }
            }
            softmax_in_place(&mut scores);
            out.fill(0.0);
            for (pw, vrow) in scores.iter().zip(vs.chunks_exact(d)) {
                for (o, x) in out.iter_mut().zip(vrow) {
                    *o += pw * x;
                }
            }
        }
    });
    Tensor::from_vec(out, (b, h, 1, d), q.device()).map(Some)
}

fn f32_data(s: &Storage) -> Option<&[f32]> {
    match s {
        Storage::Cpu(CpuStorage::F32(v)) => Some(v),
        _ => None,
    }
}

/// For a `(B, H, T, d)` layout whose `(T, d)` slices are each contiguous (strides `(_, _, d, 1)`:
/// any row and head strides, so the cache's view of its first `T` positions qualifies), the
/// storage offset of slice `(b, h)`; `None` for any other layout.
fn head_offsets(l: &Layout, d: usize, t: usize) -> Option<impl Fn(usize, usize) -> usize + Sync> {
    let st = l.stride();
    if st.len() != 4 || (d > 1 && st[3] != 1) || (t > 1 && st[2] != d) {
        return None;
    }
    let (start, bs, hs) = (l.start_offset(), st[0], st[1]);
    Some(move |b: usize, h: usize| start + b * bs + h * hs)
}

/// `exp(s − max)/Σ`; all −∞ (a fully masked row) gives zeros rather than NaN.
fn softmax_in_place(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        s.fill(0.0);
        return;
    }
    let mut sum = 0f32;
    for x in s.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in s.iter_mut() {
        *x *= inv;
    }
}


#[cfg(test)]
mod tests {
    use super::super::test_data::uniform;
    use super::*;
    use candle_core::{Device, D};

    fn tensor(dims: &[usize], seed: u64) -> Tensor {
        Tensor::from_vec(uniform(dims.iter().product(), seed), dims, &Device::Cpu).unwrap()
    }

    /// candle's ops, the path this replaces.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let s = q.matmul(&k.t().unwrap()).unwrap();
        let s = match mask {
            Some(m) => s.broadcast_add(m).unwrap(),
            None => s,
        };
        candle_nn::ops::softmax(&s, D::Minus1).unwrap().matmul(v).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    /// Contiguous keys, the cache's prefix view of a longer buffer, and both mask shapes.
    #[test]
    fn matches_candle_ops() {
        let (b, h, t, d) = (2, 5, 37, 16);
        let q = tensor(&[b, h, 1, d], 1);
        let k = tensor(&[b, h, t, d], 2);
        let v = tensor(&[b, h, t, d], 3);
        let got = attend_one(&q, &k, &v, None).unwrap().expect("contiguous inputs are taken");
        assert!(max_diff(&got, &reference(&q, &k, &v, None)) < 1e-5);

        // The cache layout: a (B, H, 64, d) buffer of which the first t positions are used.
        let (kb, vb) = (tensor(&[b, h, 64, d], 4), tensor(&[b, h, 64, d], 5));
        let (kp, vp) = (kb.narrow(2, 0, t).unwrap(), vb.narrow(2, 0, t).unwrap());
        assert!(!kp.is_contiguous());
        let got = attend_one(&q, &kp, &vp, None).unwrap().expect("the cache's prefix view is taken");
        let want = reference(&q, &kp.contiguous().unwrap(), &vp.contiguous().unwrap(), None);
        assert!(max_diff(&got, &want) < 1e-5);

        // Key padding per row (the second row sees only 20 keys), and one mask for all rows.
        let pad: Vec<f32> = (0..b * t).map(|i| if i / t == 1 && i % t >= 20 { f32::NEG_INFINITY } else { 0.0 }).collect();
        for mask in [Tensor::from_vec(pad, (b, 1, 1, t), &Device::Cpu).unwrap(), tensor(&[1, 1, 1, t], 6)] {
            let got = attend_one(&q, &k, &v, Some(&mask)).unwrap().unwrap();
            assert!(max_diff(&got, &reference(&q, &k, &v, Some(&mask))) < 1e-5);
        }
    }

    /// Other shapes go back to the caller's path instead of computing something else.
    #[test]
    fn declines_what_it_does_not_handle() {
        let k = tensor(&[1, 2, 8, 4], 1);
        assert!(attend_one(&tensor(&[1, 2, 3, 4], 2), &k, &k, None).unwrap().is_none(), "more than one query");
        let kt = tensor(&[1, 2, 4, 8], 3).transpose(2, 3).unwrap();
        assert!(attend_one(&tensor(&[1, 2, 1, 4], 4), &kt, &kt, None).unwrap().is_none(), "transposed keys");
        let causal = tensor(&[1, 1, 2, 8], 5);
        assert!(attend_one(&tensor(&[1, 2, 1, 4], 6), &k, &k, Some(&causal)).unwrap().is_none(), "mask shape");
    }

    #[test]
    fn fully_masked_row_gives_zeros() {
        let mut s = [f32::NEG_INFINITY; 4];
        softmax_in_place(&mut s);
        assert_eq!(s, [0.0; 4]);
    }
}
