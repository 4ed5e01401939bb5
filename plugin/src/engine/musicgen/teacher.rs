//! Teacher forcing: the logits a model gives at every step of a generation whose tokens are
//! fixed in advance, so two models (f32 and quantized) can be compared on the same inputs.
//!
//! Comparing free-running generations says little once they diverge (one different token
//! changes everything after it); feeding both models the same codes and comparing their
//! logits step by step measures the arithmetic error alone. The steps run exactly as in
//! [`super::GenerationState::step`] (one position at a time through the KV cache, the melody
//! prefix with the first step, classifier-free guidance on the raw logits), so the matmul
//! shapes are those of a real generation.

use candle_core::Tensor;

use super::conditioning::{ChromaFrame, Conditioning};
use super::delay::DelayPattern;
use super::model::MusicGen;
use crate::engine::error::EngineError;

/// Logits `(N, K, vocab)` f32 of the `N = max_new_tokens` steps of a generation of `codes`
/// (de-delayed `[K][F]`, as `GenerationState::codes` returns them, for the same `N`).
/// Row `t` is what step `t` saw before choosing column `t + 1` of the delayed grid, after
/// guidance when `guidance > 1`.
pub fn teacher_forced_logits(
    model: &MusicGen,
    ids: &[u32],
    melody: Option<&[ChromaFrame]>,
    codes: &[Vec<u32>],
    max_new_tokens: usize,
    guidance: f32,
) -> Result<Tensor, EngineError> {
    let decoder = model.decoder();
    let cfg = decoder.config();
    let pattern = DelayPattern::for_new_tokens(cfg.num_codebooks, cfg.audio_channels, max_new_tokens)
        .ok_or_else(|| EngineError::InvalidRequest(format!("max_new_tokens = {max_new_tokens} is too small for this model")))?;
    if codes.len() != cfg.num_codebooks || codes.iter().any(|row| row.len() != pattern.frames()) {
        return Err(EngineError::InvalidCodes(format!(
            "teacher forcing needs {} rows of {} frames (max_new_tokens {max_new_tokens}); got {} rows of {:?}",
            cfg.num_codebooks,
            pattern.frames(),
            codes.len(),
            codes.iter().map(Vec::len).collect::<std::collections::BTreeSet<_>>()
        )));
    }
    if let Some(bad) = codes.iter().flatten().find(|&&c| c as usize >= cfg.vocab_size) {
        return Err(EngineError::InvalidCodes(format!("code {bad} is outside the codebook (0..{})", cfg.vocab_size)));
    }
    let grid = pattern.delay_frames(codes);
    let cfg_on = guidance > 1.0;
    let rows = if cfg_on { 2 } else { 1 };

    let hidden = model.text_encoder().encode(ids)?;
    let melodies = if model.is_melody() { vec![melody] } else { vec![] };
    let conditioning = model.projections().condition(&[hidden], &melodies, cfg_on)?;
    let needed = conditioning.prefix_len() + pattern.len() - 1;
    let (mut cache, mut prefix) = match conditioning {
        Conditioning::CrossAttention { states, valid } => (decoder.new_cache(Some((&states, &valid)), needed)?, None),
        Conditioning::Prefix { prefix, .. } => (decoder.new_cache(None, needed)?, Some(prefix)),
    };
    let device = decoder.device();
    let mut steps = Vec::with_capacity(max_new_tokens);
    for t in 0..max_new_tokens {
        let column: Vec<u32> = (0..rows).flat_map(|_| grid.iter().map(move |row| row[t])).collect();
        let ids = Tensor::from_vec(column, (rows, cfg.num_codebooks, 1), device)?;
        let mut x = decoder.embed_codes(&ids)?;
        if let Some(p) = prefix.take() {
            x = Tensor::cat(&[&p.to_dtype(x.dtype())?, &x], 1)?;
        }
        let hidden = decoder.forward_embeds(&x, &mut cache)?;
        let logits = decoder.last_logits(&hidden)?; // (rows, K, V)
        let logits = if cfg_on {
            let cond = logits.narrow(0, 0, 1)?;
            let uncond = logits.narrow(0, 1, 1)?;
            (&uncond + ((&cond - &uncond)? * guidance as f64)?)?
        } else {
            logits
        };
        steps.push(logits.squeeze(0)?);
    }
    Ok(Tensor::stack(&steps, 0)?)
}
