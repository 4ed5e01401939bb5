//! Teacher forcing: the logits a model gives at every step of a generation whose tokens are
//! fixed in advance, so two models (f32 and quantized) can be compared on the same inputs.
//!
//! Comparing free-running generations says little once they diverge (one different token
//! changes everything after it); feeding both models the same codes and comparing their
//! logits step by step measures the arithmetic error alone. The steps are
//! [`GenerationState::step_forced`]: a real generation's steps (one position at a time through
//! the KV cache, the melody prefix with the first step, guidance on the raw logits, the same
//! length checks) with the given codes in place of sampled ones.

use candle_core::Tensor;

use super::conditioning::ChromaFrame;
use super::generate::GenerationState;
use super::model::MusicGen;
use super::sampling::SamplingConfig;
use crate::error::EngineError;

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
    let hidden = model.text_encoder().encode(ids)?;
    let melodies = if model.is_melody() { vec![melody] } else { vec![] };
    let conditioning = model.projections().condition(&[hidden], &melodies, guidance > 1.0)?;
    // The sampler is never drawn from: every column is forced.
    let greedy = SamplingConfig { top_k: 0, top_p: 1.0, temperature: 1.0, greedy: true };
    let mut state = GenerationState::new(decoder, conditioning, 1, max_new_tokens, greedy, 0, guidance)?;
    let pattern = state.pattern();
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
    let mut steps = Vec::with_capacity(max_new_tokens);
    for t in 0..max_new_tokens {
        let column: Vec<u32> = grid.iter().map(|row| row[t + 1]).collect();
        steps.push(state.step_forced(&[column])?.squeeze(0)?);
    }
    Ok(Tensor::stack(&steps, 0)?)
}
