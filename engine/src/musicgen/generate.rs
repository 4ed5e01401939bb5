//! The generation loop as a state you step: one decoder call per step, progress after each, a
//! cancel check before each, so a caller (CLI, plugin worker) stays in control between steps.
//!
//! Layout follows transformers: a `(K, L)` grid per batch row, `L = max_new_tokens + 1`, column 0
//! the BOS/pad column. Step `t` feeds column `t` (the first step also feeds a melody prefix),
//! takes the last position's logits, applies classifier-free guidance on the raw logits, samples
//! one token per codebook and writes column `t + 1` where the delay pattern allows it.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Tensor};

use super::conditioning::Conditioning;
use super::decoder::{Decoder, DecoderCache};
use super::delay::{DelayPattern, PAD_TOKEN};
use super::sampling::{Sampler, SamplingConfig};
use crate::error::EngineError;

/// Where a generation stands: `step` of `total` decoder steps done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Decoder steps done.
    pub step: usize,
    /// Decoder steps in the whole generation (`max_new_tokens`).
    pub total: usize,
}

/// A generation in progress over a batch of `B` prompts (doubled internally for guidance).
pub struct GenerationState<'m> {
    decoder: &'m Decoder,
    pattern: DelayPattern,
    /// `[B][K][L]` token grid of the conditional rows; the unconditional half mirrors it.
    grid: Vec<Vec<Vec<u32>>>,
    cache: DecoderCache,
    /// Melody prefix, consumed by the first step.
    prefix: Option<Tensor>,
    sampler: Sampler,
    /// `Some(scale)` when classifier-free guidance is on (scale > 1).
    guidance: Option<f32>,
    step: usize,
    /// A step was cancelled part-way: the caches are part-filled and no step may follow.
    cancelled: bool,
}

impl<'m> GenerationState<'m> {
    /// Sets up a generation of `max_new_tokens` steps for `batch` prompts. `conditioning` has
    /// `batch` rows, or `2·batch` (conditional then unconditional) when `guidance > 1`.
    pub fn new(
        decoder: &'m Decoder,
        conditioning: Conditioning,
        batch: usize,
        max_new_tokens: usize,
        sampling: SamplingConfig,
        seed: u64,
        guidance: f32,
    ) -> Result<Self, EngineError> {
        let cfg = decoder.config();
        let pattern = DelayPattern::for_new_tokens(cfg.num_codebooks, cfg.audio_channels, max_new_tokens).ok_or_else(|| {
            EngineError::InvalidRequest(format!(
                "max_new_tokens = {max_new_tokens} is too small: this model needs at least {} to produce one frame",
                DelayPattern::min_new_tokens(cfg.num_codebooks, cfg.audio_channels)
            ))
        })?;
        let guidance = (guidance > 1.0).then_some(guidance);
        let rows = if guidance.is_some() { 2 * batch } else { batch };

        let prefix_len = conditioning.prefix_len();
        // Positions used: the prefix, then columns 0..L-1 (the last column is never fed back).
        let needed = prefix_len + pattern.len() - 1;
        let limit = cfg.max_position_embeddings;
        if needed > limit {
            return Err(EngineError::SequenceTooLong {
                prompt_tokens: conditioning.text_len(),
                prefix_positions: prefix_len,
                new_tokens: max_new_tokens,
                needed,
                limit,
            });
        }

        let (cache, prefix) = match conditioning {
            Conditioning::CrossAttention { states, valid } => {
                check_rows(states.dim(0)?, rows)?;
                (decoder.new_cache(Some((&states, &valid)), needed)?, None)
            }
            Conditioning::Prefix { prefix: p, .. } => {
                check_rows(p.dim(0)?, rows)?;
                (decoder.new_cache(None, needed)?, Some(p))
            }
        };
        Ok(Self {
            decoder,
            pattern,
            grid: vec![pattern.empty_grid(); batch],
            cache,
            prefix,
            sampler: Sampler::new(sampling, seed),
            guidance,
            step: 0,
            cancelled: false,
        })
    }

    /// The delay pattern of the token grid being filled.
    pub fn pattern(&self) -> &DelayPattern {
        &self.pattern
    }

    /// Total decoder steps (`max_new_tokens`).
    pub fn total_steps(&self) -> usize {
        self.pattern.len() - 1
    }

    /// Whether every step has run (the grid is complete and [`Self::codes`] final).
    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps()
    }

    /// Runs one decoder step and fills the next column. Calling it after the last step is an
    /// error.
    pub fn step(&mut self) -> Result<Progress, EngineError> {
        self.step_cancellable(&AtomicBool::new(false))
    }

    /// [`Self::step`], checking `cancel` after every decoder layer: a set flag returns
    /// [`EngineError::Cancelled`] within one layer's work, even in the middle of the first step's
    /// prefill. A cancelled step leaves the state unusable (its caches are part-filled): every
    /// later step returns `Cancelled` too.
    pub fn step_cancellable(&mut self, cancel: &AtomicBool) -> Result<Progress, EngineError> {
        if self.cancelled {
            return Err(EngineError::Cancelled);
        }
        let t = self.step;
        let logits = match self.next_logits(&|| cancel.load(Ordering::Relaxed))? {
            Some(l) => l,
            None => {
                self.cancelled = true;
                return Err(EngineError::Cancelled);
            }
        };
        let logits: Vec<Vec<Vec<f32>>> = logits.to_vec3()?;
        for (b, per_book) in logits.iter().enumerate() {
            for (kk, row) in per_book.iter().enumerate() {
                let j = t + 1;
                // Cells outside the pattern are forced to the pad token: no draw is spent on them.
                self.grid[b][kk][j] = if self.pattern.is_valid(kk, j) { self.sampler.sample(row) } else { PAD_TOKEN };
            }
        }
        self.step += 1;
        Ok(Progress { step: self.step, total: self.total_steps() })
    }

    /// Teacher forcing: one step like [`Self::step`], except that the next column gets
    /// `forced[b][k]` instead of a sampled token. Returns the logits the step saw, `(B, K, V)`
    /// f32 after guidance, so two models fed the same codes can be compared step by step.
    pub fn step_forced(&mut self, forced: &[Vec<u32>]) -> Result<Tensor, EngineError> {
        let k = self.pattern.num_codebooks();
        if forced.len() != self.grid.len() || forced.iter().any(|col| col.len() != k) {
            return Err(EngineError::InvalidCodes(format!("a forced column is {} rows of {k} codes", self.grid.len())));
        }
        if self.cancelled {
            return Err(EngineError::Cancelled);
        }
        let logits = self.next_logits(&|| false)?.expect("never stopped");
        let j = self.step + 1;
        for (rows, col) in self.grid.iter_mut().zip(forced) {
            for (row, &tok) in rows.iter_mut().zip(col) {
                row[j] = tok;
            }
        }
        self.step += 1;
        Ok(logits)
    }

    /// Feeds column `t` (and, on the first step, the melody prefix) through the decoder and
    /// returns the last position's logits `(B, K, V)` f32, after classifier-free guidance; `None`
    /// when `stop` (asked after every decoder layer) said so.
    fn next_logits(&mut self, stop: &dyn Fn() -> bool) -> Result<Option<Tensor>, EngineError> {
        if self.is_done() {
            return Err(EngineError::InvalidRequest("generation already finished".into()));
        }
        let t = self.step;
        let batch = self.grid.len();
        let k = self.pattern.num_codebooks();
        let dev = self.decoder.device();

        let mut column: Vec<u32> = self.grid.iter().flat_map(|rows| rows.iter().map(move |r| r[t])).collect();
        if self.guidance.is_some() {
            column.extend_from_within(..);
        }
        let rows = column.len() / k;
        let ids = Tensor::from_vec(column, (rows, k, 1), dev)?;
        let mut x = self.decoder.embed_codes(&ids)?;
        if let Some(prefix) = self.prefix.take() {
            x = Tensor::cat(&[&prefix.to_dtype(x.dtype())?, &x], 1)?;
        }
        let Some(hidden) = self.decoder.forward_embeds_until(&x, &mut self.cache, stop)? else {
            return Ok(None);
        };
        let mut logits = self.decoder.last_logits(&hidden)?; // (rows, K, V)
        if let Some(scale) = self.guidance {
            let cond = logits.narrow(0, 0, batch)?;
            let uncond = logits.narrow(0, batch, batch)?;
            logits = (&uncond + ((&cond - &uncond)? * scale as f64)?)?;
        }
        Ok(Some(logits.to_dtype(DType::F32)?))
    }

    /// Steps to the end, reporting progress after every step and checking `cancel` before every
    /// step and after every decoder layer. A cancelled run returns [`EngineError::Cancelled`] (never partial codes).
    pub fn run(&mut self, progress: &mut dyn FnMut(Progress), cancel: &AtomicBool) -> Result<(), EngineError> {
        while !self.is_done() {
            if cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Cancelled);
            }
            let p = self.step_cancellable(cancel)?;
            progress(p);
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(EngineError::Cancelled);
        }
        Ok(())
    }

    /// Audio frames whose codes are final in every codebook after the steps done so far.
    ///
    /// Frame `f` of row `k` sits in column `d_k + 1 + f` and step `s` fills column `s`, so with
    /// the largest delay `Kc − 1` frame `f` is complete once `s ≥ f + Kc`: that is what lets the
    /// EnCodec decode start while later frames are still being generated.
    pub fn complete_frames(&self) -> usize {
        (self.step + 1).saturating_sub(self.pattern.codebooks_per_channel()).min(self.pattern.frames())
    }

    /// The de-delayed codes `[K][n]` of batch item `item` for frames `frames` (in model
    /// codebook order). Only frames below [`Self::complete_frames`] are final.
    pub fn frame_codes(&self, item: usize, frames: std::ops::Range<usize>) -> Vec<Vec<u32>> {
        self.grid[item]
            .iter()
            .enumerate()
            .map(|(k, row)| {
                let start = self.pattern.delay(k) + 1;
                row[start + frames.start..start + frames.end].to_vec()
            })
            .collect()
    }

    /// The raw `[B][K][L]` grid (delayed, with pad cells), as far as generated.
    pub fn grid(&self) -> &[Vec<Vec<u32>>] {
        &self.grid
    }

    /// The de-delayed codes `[B][K][F]` in model codebook order. Only complete once
    /// [`Self::is_done`].
    pub fn codes(&self) -> Vec<Vec<Vec<u32>>> {
        self.grid.iter().map(|g| self.pattern.undelay(g)).collect()
    }
}

fn check_rows(got: usize, expected: usize) -> Result<(), EngineError> {
    if got != expected {
        return Err(EngineError::InvalidRequest(format!(
            "conditioning has {got} rows, the generation needs {expected}"
        )));
    }
    Ok(())
}
