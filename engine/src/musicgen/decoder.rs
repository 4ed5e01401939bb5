//! The MusicGen decoder: summed codebook embeddings + sinusoidal positions, pre-LayerNorm
//! transformer layers (causal self-attention, optional cross-attention to the text, exact-GELU
//! feed-forward), a final LayerNorm and one LM head per codebook.
//!
//! The decoder is stateless; everything that changes during a generation lives in
//! [`DecoderCache`], so one loaded decoder can serve several generations (and threads).

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use super::attention::{causal_mask, key_padding_mask, Attention, CrossKv, KvCache};
use super::position::sinusoidal_table;
use super::qlinear::{QLinear, QuantReport, Quantizer};
use super::quant::Quant;
use crate::checkpoint::DecoderConfig;

/// LayerNorm epsilon of every decoder norm (transformers' `nn.LayerNorm` default).
const LN_EPS: f64 = 1e-5;

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    cross: Option<(Attention, LayerNorm)>,
    fc1: QLinear,
    fc2: QLinear,
    final_layer_norm: LayerNorm,
}

impl DecoderLayer {
    fn new(cfg: &DecoderConfig, cross_attention: bool, qz: &mut Quantizer, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let cross = if cross_attention {
            Some((
                Attention::new_with(h, heads, qz, vb.pp("encoder_attn"))?,
                layer_norm(h, LN_EPS, vb.pp("encoder_attn_layer_norm"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            self_attn: Attention::new_with(h, heads, qz, vb.pp("self_attn"))?,
            self_attn_layer_norm: layer_norm(h, LN_EPS, vb.pp("self_attn_layer_norm"))?,
            cross,
            fc1: qz.linear(h, cfg.ffn_dim, vb.pp("fc1"))?,
            fc2: qz.linear(cfg.ffn_dim, h, vb.pp("fc2"))?,
            final_layer_norm: layer_norm(h, LN_EPS, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&self, x: &Tensor, cache: &mut LayerCache, self_mask: Option<&Tensor>, cross_mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.self_attn_layer_norm.forward(x)?;
        let mut x = (x + self.self_attn.forward_self(&h, &mut cache.self_kv, self_mask)?)?;
        if let (Some((attn, norm)), Some(kv)) = (&self.cross, &cache.cross_kv) {
            let h = norm.forward(&x)?;
            x = (x + attn.forward_cross(&h, kv, cross_mask)?)?;
        }
        let h = self.final_layer_norm.forward(&x)?;
        let h = self.fc2.forward(&self.fc1.forward(&h)?.gelu_erf()?)?;
        x + h
    }
}

/// What one layer remembers between steps.
#[derive(Debug, Clone)]
struct LayerCache {
    self_kv: KvCache,
    /// Computed once from the encoder states when the cache is created.
    cross_kv: Option<CrossKv>,
}

/// The per-generation state of the decoder: self-attention KV caches that grow each step, the
/// cross-attention K/V and key mask computed once, and the number of positions consumed.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    layers: Vec<LayerCache>,
    cross_mask: Option<Tensor>,
    past: usize,
}

/// The MusicGen decoder: summed codebook embeddings + sinusoidal positions, pre-LN transformer
/// layers (self-attention, cross-attention in text models, GELU feed-forward) and one LM head per
/// codebook. Stepped with a [`DecoderCache`]; generation drives it through
/// [`super::GenerationState`].
#[derive(Debug, Clone)]
pub struct Decoder {
    cfg: DecoderConfig,
    cross_attention: bool,
    embed_tokens: Vec<Embedding>,
    layers: Vec<DecoderLayer>,
    layer_norm: LayerNorm,
    lm_heads: Vec<QLinear>,
    quant: QuantReport,
    positions: Tensor,
    dtype: DType,
    device: Device,
}

impl Decoder {
    /// Loads from the `decoder.` prefix of a MusicGen checkpoint (`vb` already at `decoder`).
    /// `cross_attention` is false for MusicGen-Melody, which conditions through a prefix.
    pub fn new(cfg: &DecoderConfig, cross_attention: bool, vb: VarBuilder) -> Result<Self> {
        Self::new_with(cfg, cross_attention, Quant::F32, vb)
    }

    /// As [`Self::new`], with the linear layers (attention projections, feed-forward, LM heads)
    /// stored in `quant`; embeddings, norms and positions stay in `vb`'s dtype.
    pub fn new_with(cfg: &DecoderConfig, cross_attention: bool, quant: Quant, vb: VarBuilder) -> Result<Self> {
        let mut qz = Quantizer::new(quant);
        let inner = vb.pp("model").pp("decoder");
        let embed_tokens = (0..cfg.num_codebooks)
            .map(|k| embedding(cfg.vocab_size + 1, cfg.hidden_size, inner.pp("embed_tokens").pp(k)))
            .collect::<Result<Vec<_>>>()?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::new(cfg, cross_attention, &mut qz, inner.pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let layer_norm = layer_norm(cfg.hidden_size, LN_EPS, inner.pp("layer_norm"))?;
        let lm_heads = (0..cfg.num_codebooks)
            .map(|k| qz.linear(cfg.hidden_size, cfg.vocab_size, vb.pp("lm_heads").pp(k)))
            .collect::<Result<Vec<_>>>()?;
        let positions = sinusoidal_table(cfg.max_position_embeddings, cfg.hidden_size, vb.device(), vb.dtype())?;
        Ok(Self {
            cfg: cfg.clone(),
            cross_attention,
            embed_tokens,
            layers,
            layer_norm,
            lm_heads,
            quant: qz.finish(),
            positions,
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    /// The `decoder` section of config.json it was built from.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// The format of the linear layers, with any per-layer fallbacks.
    pub fn quant_report(&self) -> &QuantReport {
        &self.quant
    }

    /// Dtype of its embeddings, activations and logits (f32 on the CPU; f16/bf16 on a GPU).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device its weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A fresh cache for one generation of up to `max_len` positions (prefix included).
    ///
    /// `encoder`: the projected text states `(B, T_enc, H)` and the number of real (unpadded)
    /// positions per row; required exactly when the decoder has cross-attention. Their keys and
    /// values are computed here, once.
    pub fn new_cache(&self, encoder: Option<(&Tensor, &[usize])>, max_len: usize) -> Result<DecoderCache> {
        let (cross_mask, cross_kv): (Option<Tensor>, Vec<Option<CrossKv>>) = match (self.cross_attention, encoder) {
            (true, Some((enc, valid))) => {
                let enc = enc.to_dtype(self.dtype)?;
                let len = enc.dim(1)?;
                let needs_mask = valid.iter().any(|&n| n != 0 && n < len);
                let mask = if needs_mask { Some(key_padding_mask(valid, len, self.dtype, &self.device)?) } else { None };
                let kvs = self
                    .layers
                    .iter()
                    .map(|l| l.cross.as_ref().map(|(a, _)| a.cross_kv(&enc)).transpose())
                    .collect::<Result<Vec<_>>>()?;
                (mask, kvs)
            }
            (true, None) => candle_core::bail!("this MusicGen decoder needs encoder states (cross-attention)"),
            (false, Some(_)) => candle_core::bail!("this MusicGen decoder has no cross-attention; pass the conditioning as a prefix"),
            (false, None) => (None, vec![None; self.layers.len()]),
        };
        Ok(DecoderCache {
            layers: cross_kv
                .into_iter()
                .map(|cross_kv| LayerCache { self_kv: KvCache::new(2, max_len.max(1)), cross_kv })
                .collect(),
            cross_mask,
            past: 0,
        })
    }

    /// Sum of the codebook embeddings: `ids` `(B, K, T)` u32 → `(B, T, H)`.
    pub fn embed_codes(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, k, _) = ids.dims3()?;
        if k != self.cfg.num_codebooks {
            candle_core::bail!("expected {} codebooks, got {k}", self.cfg.num_codebooks);
        }
        let mut sum = self.embed_tokens[0].forward(&ids.narrow(1, 0, 1)?.squeeze(1)?)?;
        for (i, emb) in self.embed_tokens.iter().enumerate().skip(1) {
            sum = (sum + emb.forward(&ids.narrow(1, i, 1)?.squeeze(1)?)?)?;
        }
        Ok(sum)
    }

    /// Runs `x` `(B, T, H)` (embeddings, possibly with a conditioning prefix in front) through the
    /// layers at positions `past..past + T`, updating the cache. Returns the final-normed hidden
    /// states `(B, T, H)`.
    pub fn forward_embeds(&self, x: &Tensor, cache: &mut DecoderCache) -> Result<Tensor> {
        Ok(self.forward_embeds_until(x, cache, &|| false)?.expect("never stopped"))
    }

    /// As [`Self::forward_embeds`], calling `stop` after every layer and returning `None` as soon
    /// as it says so. Why per layer: the first step of a melody model runs its whole conditioning
    /// prefix through every layer (about 10 s on the large model), and a cancelled job must stop
    /// within a fraction of a second. A stopped call leaves `cache` part-filled: the generation
    /// it belongs to cannot go on.
    pub fn forward_embeds_until(&self, x: &Tensor, cache: &mut DecoderCache, stop: &dyn Fn() -> bool) -> Result<Option<Tensor>> {
        let (_, t, _) = x.dims3()?;
        let past = cache.past;
        let limit = self.cfg.max_position_embeddings;
        if past + t > limit {
            candle_core::bail!("sequence of {} positions exceeds the position table ({limit})", past + t);
        }
        let pos = self.positions.narrow(0, past, t)?;
        let mut h = x.to_dtype(self.dtype)?.broadcast_add(&pos)?;
        let self_mask = causal_mask(t, past, self.dtype, &self.device)?;
        for (i, (layer, lc)) in self.layers.iter().zip(cache.layers.iter_mut()).enumerate() {
            h = layer.forward(&h, lc, self_mask.as_ref(), cache.cross_mask.as_ref())?;
            #[cfg(test)]
            test_hook::after_layer(i);
            #[cfg(not(test))]
            let _ = i;
            if stop() {
                return Ok(None);
            }
        }
        cache.past += t;
        self.layer_norm.forward(&h).map(Some)
    }

    /// LM heads: hidden `(B, T, H)` → logits `(B, K, T, vocab)` in f32.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let per_book = self
            .lm_heads
            .iter()
            .map(|head| head.forward(hidden))
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&per_book, 1)?.to_dtype(DType::F32)
    }

    /// Convenience for teacher forcing and tests: codes `(B, K, T)` with an optional prefix
    /// `(B, P, H)` → logits of the code positions `(B, K, T, vocab)`.
    pub fn forward_codes(&self, ids: &Tensor, prefix: Option<&Tensor>, cache: &mut DecoderCache) -> Result<Tensor> {
        let x = self.embed_codes(ids)?;
        let (x, p) = match prefix {
            Some(p) => (Tensor::cat(&[&p.to_dtype(x.dtype())?, &x], 1)?, p.dim(1)?),
            None => (x, 0),
        };
        let hidden = self.forward_embeds(&x, cache)?;
        let t = hidden.dim(1)? - p;
        self.logits(&hidden.narrow(1, p, t)?)
    }

    /// Logits of the last position only, `(B, K, vocab)` f32 (what a generation step needs).
    pub fn last_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let t = hidden.dim(1)?;
        self.logits(&hidden.narrow(1, t - 1, 1)?)?.squeeze(D::Minus2)
    }
}

/// A per-layer hook for tests (this thread's decoder calls only): lets a test act between layers,
/// e.g. set a cancel flag from another thread after N layers.
#[cfg(test)]
pub(crate) mod test_hook {
    use std::cell::RefCell;

    thread_local! {
        static HOOK: RefCell<Option<Box<dyn FnMut(usize)>>> = RefCell::new(None);
    }

    /// Calls `hook(layer)` after every decoder layer run on this thread until [`clear`].
    pub fn set(hook: impl FnMut(usize) + 'static) {
        HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    }

    pub fn clear() {
        HOOK.with(|h| *h.borrow_mut() = None);
    }

    pub(super) fn after_layer(layer: usize) {
        HOOK.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(layer)
            }
        });
    }
}
