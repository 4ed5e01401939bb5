//! Multi-head attention of the MusicGen decoder: no biases, scale `hd^-½`, additive masks.
//!
//! Two uses share the projections' shape but not their caching:
//! - self-attention appends each step's keys/values to a [`KvCache`] (it grows by one column per
//!   generated token, after a longer first call for a melody prefix);
//! - cross-attention's keys/values depend only on the text, so [`Attention::cross_kv`] computes
//!   them once per generation and every step reuses them.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::kernels;
use super::qlinear::{QLinear, Quantizer};
use super::quant::Quant;

/// Per-layer self-attention cache: keys and values of every position seen so far,
/// `(B, heads, S, head_dim)`.
pub type KvCache = candle_nn::kv_cache::KvCache;

/// Precomputed cross-attention keys and values `(B, heads, T_enc, head_dim)`.
#[derive(Debug, Clone)]
pub struct CrossKv {
    /// Keys `(B, heads, T_enc, head_dim)`.
    pub k: Tensor,
    /// Values `(B, heads, T_enc, head_dim)`.
    pub v: Tensor,
}

/// One attention block (`q/k/v/out_proj`, `(hidden, hidden)` each), used for the decoder's
/// self-attention and, in text models, its cross-attention on the T5 states.
#[derive(Debug, Clone)]
pub struct Attention {
    q_proj: QLinear,
    k_proj: QLinear,
    v_proj: QLinear,
    out_proj: QLinear,
    num_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    /// Loads `{q,k,v,out}_proj.weight` (all `(hidden, hidden)`, no bias) from `vb`, in f32.
    pub fn new(hidden: usize, num_heads: usize, vb: VarBuilder) -> Result<Self> {
        Self::new_with(hidden, num_heads, &mut Quantizer::new(Quant::F32), vb)
    }

    /// As [`Self::new`], storing the projections in the quantizer's format.
    pub fn new_with(hidden: usize, num_heads: usize, qz: &mut Quantizer, vb: VarBuilder) -> Result<Self> {
        if num_heads == 0 || !hidden.is_multiple_of(num_heads) {
            candle_core::bail!("hidden size {hidden} is not divisible by {num_heads} heads");
        }
        let head_dim = hidden / num_heads;
        Ok(Self {
            q_proj: qz.linear(hidden, hidden, vb.pp("q_proj"))?,
            k_proj: qz.linear(hidden, hidden, vb.pp("k_proj"))?,
            v_proj: qz.linear(hidden, hidden, vb.pp("v_proj"))?,
            out_proj: qz.linear(hidden, hidden, vb.pp("out_proj"))?,
            num_heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    /// `(B, T, H)` → `(B, heads, T, head_dim)`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    /// Self-attention over the cached past plus `x` `(B, T, H)`. `mask` is additive, broadcastable
    /// to `(B, heads, T, past + T)`; pass `None` when every query may see every key (a single new
    /// position).
    pub fn forward_self(&self, x: &Tensor, cache: &mut KvCache, mask: Option<&Tensor>) -> Result<Tensor> {
        let q = self.split_heads(&(self.q_proj.forward(x)? * self.scale)?)?;
        let k = self.split_heads(&self.k_proj.forward(x)?)?;
        let v = self.split_heads(&self.v_proj.forward(x)?)?;
        let (k, v) = cache.append(&k, &v)?;
        self.attend(&q, &k, &v, mask)
    }

    /// The cross-attention keys/values of the (projected) encoder states `(B, T_enc, H)`.
    pub fn cross_kv(&self, encoder: &Tensor) -> Result<CrossKv> {
        Ok(CrossKv {
            k: self.split_heads(&self.k_proj.forward_once(encoder)?)?,
            v: self.split_heads(&self.v_proj.forward_once(encoder)?)?,
        })
    }

    /// Cross-attention of `x` `(B, T, H)` to precomputed keys/values; `mask` is additive,
    /// broadcastable to `(B, heads, T, T_enc)`.
    pub fn forward_cross(&self, x: &Tensor, kv: &CrossKv, mask: Option<&Tensor>) -> Result<Tensor> {
        let q = self.split_heads(&(self.q_proj.forward(x)? * self.scale)?)?;
        self.attend(&q, &kv.k, &kv.v, mask)
    }

    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, _, t, _) = q.dims4()?;
        // A decoder step (one query per row) on the CPU reads the cache directly.
        let out = match kernels::attend_one(q, k, v, mask)? {
            Some(out) => out,
            None => {
                let scores = q.matmul(&k.t()?)?;
                let scores = match mask {
                    Some(m) => scores.broadcast_add(m)?,
                    None => scores,
                };
                let probs = candle_nn::ops::softmax_last_dim(&scores)?;
                probs.matmul(v)?
            }
        };
        let out = out.transpose(1, 2)?.reshape((b, t, self.num_heads * self.head_dim))?;
        self.out_proj.forward(&out)
    }
}

/// The additive causal mask `(1, 1, T, past + T)` for `T` new positions after `past` cached ones:
/// query `i` sees keys `0..=past + i`. Returns `None` for `T == 1` (nothing to hide).
pub fn causal_mask(t: usize, past: usize, dtype: DType, device: &Device) -> Result<Option<Tensor>> {
    if t <= 1 {
        return Ok(None);
    }
    let s = past + t;
    let values: Vec<f32> = (0..t)
        .flat_map(|i| (0..s).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Some(Tensor::from_vec(values, (1, 1, t, s), device)?.to_dtype(dtype)?))
}

/// The additive key mask `(B, 1, 1, T_enc)` hiding padded encoder positions (`valid[b]` real
/// positions at the start of row `b`). A row with no valid position is left unmasked: its values
/// are zero (the unconditional branch), so attention returns exactly zero either way, while a
/// fully masked row would give NaN.
pub fn key_padding_mask(valid: &[usize], len: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = valid
        .iter()
        .flat_map(|&n| (0..len).map(move |j| if n == 0 || j < n { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Tensor::from_vec(values, (valid.len(), 1, 1, len), device)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    fn attention(hidden: usize, heads: usize) -> Attention {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        // VarMap initialises missing variables randomly (Kaiming-like) on first access.
        Attention::new(hidden, heads, vb).unwrap()
    }

    fn input(b: usize, t: usize, h: usize, seed: u64) -> Tensor {
        let mut s = seed;
        let v: Vec<f32> = (0..b * t * h)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, (b, t, h), &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Feeding a sequence one position at a time through the cache must equal one causal pass.
    #[test]
    fn incremental_cache_equals_full_causal_pass() {
        let (b, t, h) = (2, 9, 16);
        let attn = attention(h, 4);
        let x = input(b, t, h, 1);
        let mut full_cache = KvCache::new(2, 32);
        let mask = causal_mask(t, 0, DType::F32, &Device::Cpu).unwrap();
        let full = attn.forward_self(&x, &mut full_cache, mask.as_ref()).unwrap();

        // Prefix of 4 in one call, then one at a time (the melody-prefix shape of generation).
        let mut cache = KvCache::new(2, 4);
        let mut outs = vec![];
        let first = x.narrow(1, 0, 4).unwrap();
        let mask = causal_mask(4, 0, DType::F32, &Device::Cpu).unwrap();
        outs.push(attn.forward_self(&first, &mut cache, mask.as_ref()).unwrap());
        for i in 4..t {
            outs.push(attn.forward_self(&x.narrow(1, i, 1).unwrap(), &mut cache, None).unwrap());
        }
        let stepped = Tensor::cat(&outs, 1).unwrap();
        assert!(max_diff(&full, &stepped) < 1e-5, "diff {}", max_diff(&full, &stepped));
        assert_eq!(cache.current_seq_len(), t);
    }

    /// Padded keys must not change the result, and a zero-valued row must give exactly zero.
    #[test]
    fn key_padding_hides_padded_positions() {
        let h = 16;
        let attn = attention(h, 2);
        let q = input(1, 3, h, 2);
        let enc_short = input(1, 5, h, 3);
        let enc_padded = Tensor::cat(&[&enc_short, &Tensor::zeros((1, 3, h), DType::F32, &Device::Cpu).unwrap()], 1).unwrap();
        let short = attn.forward_cross(&q, &attn.cross_kv(&enc_short).unwrap(), None).unwrap();
        let mask = key_padding_mask(&[5], 8, DType::F32, &Device::Cpu).unwrap();
        let padded = attn.forward_cross(&q, &attn.cross_kv(&enc_padded).unwrap(), Some(&mask)).unwrap();
        assert!(max_diff(&short, &padded) < 1e-6);
        // Without the mask the zero keys do take weight: the mask matters.
        let unmasked = attn.forward_cross(&q, &attn.cross_kv(&enc_padded).unwrap(), None).unwrap();
        assert!(max_diff(&short, &unmasked) > 1e-4);

        let zeros = Tensor::zeros((1, 8, h), DType::F32, &Device::Cpu).unwrap();
        let mask = key_padding_mask(&[0], 8, DType::F32, &Device::Cpu).unwrap();
        let out = attn.forward_cross(&q, &attn.cross_kv(&zeros).unwrap(), Some(&mask)).unwrap();
        assert_eq!(max_diff(&out, &Tensor::zeros_like(&out).unwrap()), 0.0);
    }

    #[test]
    fn causal_mask_shape_and_values() {
        assert!(causal_mask(1, 5, DType::F32, &Device::Cpu).unwrap().is_none());
        let m = causal_mask(3, 2, DType::F32, &Device::Cpu).unwrap().unwrap();
        assert_eq!(m.dims(), &[1, 1, 3, 5]);
        let v: Vec<Vec<f32>> = m.squeeze(0).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
        for (i, row) in v.iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                assert_eq!(x == 0.0, j <= 2 + i);
            }
        }
    }
}
