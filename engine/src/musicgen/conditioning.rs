//! Conditioning: the T5 text encoder, the projections into the decoder's width, and the two ways
//! MusicGen consumes them.
//!
//! - MusicGen (text): cross-attention to `enc_to_dec_proj(T5(text))`. Prompts of a batch are
//!   encoded one at a time (candle's T5 takes no mask; transformers' masked T5 equals encoding each
//!   prompt alone), then padded with zero rows and a key mask.
//! - MusicGen-Melody: no cross-attention; a prefix `[chroma projected and tiled to 235 frames,
//!   projected text]` (audio first) is fed in front of the codes on the first step.
//!
//! Classifier-free guidance doubles the batch: rows `0..B` conditional, rows `B..2B`
//! unconditional (text states all zero; melody: the "null chroma", one-hot on bin 0).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use candle_transformers::models::t5::{Config as T5Config, T5EncoderModel};
use tokenizers::Tokenizer;

use crate::error::EngineError;

/// One chroma frame: 12 pitch-class weights (one-hot from the chroma extractor), C first.
pub type ChromaFrame = [f32; 12];

/// The T5 encoder (always f32: t5-base overflows in f16) and its tokenizer.
#[derive(Clone)]
pub struct TextEncoder {
    t5: T5EncoderModel,
    tokenizer: Tokenizer,
    vocab_size: usize,
}

impl TextEncoder {
    /// `vb` must point at the checkpoint's `text_encoder` prefix and be f32; `tokenizer` is the
    /// checkpoint's (see [`crate::checkpoint::Checkpoint::tokenizer`]).
    pub fn new(cfg: &T5Config, tokenizer: Tokenizer, vb: VarBuilder) -> Result<Self, EngineError> {
        Ok(Self { t5: T5EncoderModel::load(vb, cfg)?, tokenizer, vocab_size: cfg.vocab_size })
    }

    /// Token ids for `text`, with T5's trailing `</s>` (the tokenizer's post-processor adds it).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EngineError::InvalidRequest(format!("cannot tokenize the prompt: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// T5 hidden states `(1, T, d_model)` f32 for one prompt.
    pub fn encode(&self, ids: &[u32]) -> Result<Tensor, EngineError> {
        if ids.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt has no tokens".into()));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(EngineError::InvalidRequest(format!(
                "token id {bad} is outside the text encoder's vocabulary (0..{})",
                self.vocab_size
            )));
        }
        let input = Tensor::new(ids, self.t5.device())?.unsqueeze(0)?;
        // T5EncoderModel::forward needs `&mut` (a cache it does not use in the encoder); a clone
        // shares the weights (Arc'd tensors), so `&self` stays usable from several threads.
        Ok(self.t5.clone().forward(&input)?)
    }
}

/// The conditioning the decoder consumes, already in the decoder's dtype.
#[derive(Debug, Clone)]
pub enum Conditioning {
    /// Cross-attention states `(B', T, H)` and the real length of each row (0 = all-zero row).
    CrossAttention {
        /// Projected T5 states `(B', T, H)`, zero past each row's length.
        states: Tensor,
        /// Real (unpadded) positions per row; 0 for the unconditional rows.
        valid: Vec<usize>,
    },
    /// A prefix `(B', P, H)` fed in front of the first decoder input; `text_len` of its `P`
    /// positions are the (padded) prompt, the rest the tiled chroma.
    Prefix {
        /// The prefix `(B', P, H)`.
        prefix: Tensor,
        /// Positions of the prefix that are the (padded) prompt.
        text_len: usize,
    },
}

impl Conditioning {
    /// Number of decoder positions the conditioning occupies (the prefix length, or 0).
    pub fn prefix_len(&self) -> usize {
        match self {
            Conditioning::Prefix { prefix, .. } => prefix.dim(1).unwrap_or(0),
            Conditioning::CrossAttention { .. } => 0,
        }
    }

    /// Length of the (padded) prompt in tokens.
    pub fn text_len(&self) -> usize {
        match self {
            Conditioning::Prefix { text_len, .. } => *text_len,
            Conditioning::CrossAttention { states, .. } => states.dim(1).unwrap_or(0),
        }
    }
}

/// The linear maps from the encoders' widths to the decoder's.
#[derive(Debug, Clone)]
pub struct Projections {
    text: Linear,
    /// Melody models only: `audio_enc_to_dec_proj` (12 → H) and the prefix length (235).
    chroma: Option<(Linear, usize)>,
    dtype: DType,
    device: Device,
}

impl Projections {
    /// `vb` at the checkpoint root, in the decoder's dtype. `melody`: `(num_chroma,
    /// chroma_length)` for MusicGen-Melody.
    pub fn new(text_dim: usize, hidden: usize, melody: Option<(usize, usize)>, vb: VarBuilder) -> Result<Self, EngineError> {
        let text = linear(text_dim, hidden, vb.pp("enc_to_dec_proj"))?;
        let chroma = match melody {
            Some((num_chroma, len)) => Some((linear(num_chroma, hidden, vb.pp("audio_enc_to_dec_proj"))?, len)),
            None => None,
        };
        Ok(Self { text, chroma, dtype: vb.dtype(), device: vb.device().clone() })
    }

    /// Whether it has the chroma projection (MusicGen-Melody).
    pub fn is_melody(&self) -> bool {
        self.chroma.is_some()
    }

    /// Prefix length of a melody model for a text of `text_len` tokens (0 for text models).
    pub fn prefix_len(&self, text_len: usize) -> usize {
        self.chroma.as_ref().map_or(0, |(_, len)| len + text_len)
    }

    /// `enc_to_dec_proj(hidden)`: `(1, T, d)` → `(1, T, H)`.
    pub fn project_text(&self, t5_hidden: &Tensor) -> Result<Tensor, EngineError> {
        Ok(self.text.forward(&t5_hidden.to_dtype(self.dtype)?)?)
    }

    /// `audio_enc_to_dec_proj(chroma)` tiled (whole sequence repeated) and cut to 235 frames:
    /// `(1, 235, H)`. `None` means the null chroma (one frame, one-hot on bin 0).
    pub fn project_chroma(&self, chroma: Option<&[ChromaFrame]>) -> Result<Tensor, EngineError> {
        let (proj, len) = self
            .chroma
            .as_ref()
            .ok_or_else(|| EngineError::InvalidRequest("this model does not take a melody".into()))?;
        let null = [[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]];
        let frames: &[ChromaFrame] = match chroma {
            Some([]) => return Err(EngineError::InvalidRequest("the melody has no chroma frames".into())),
            Some(c) => c,
            None => &null,
        };
        if frames.iter().flatten().any(|v| !v.is_finite()) {
            return Err(EngineError::InvalidRequest("the melody chroma contains non-finite values".into()));
        }
        let flat: Vec<f32> = frames.iter().flatten().copied().collect();
        let x = Tensor::from_vec(flat, (1, frames.len(), 12), &self.device)?.to_dtype(self.dtype)?;
        let x = proj.forward(&x)?;
        let reps = len.div_ceil(frames.len());
        let tiled = if reps > 1 { Tensor::cat(&vec![&x; reps], 1)? } else { x };
        Ok(tiled.narrow(1, 0, *len)?)
    }

    /// Builds the decoder conditioning for a batch. `texts[b]`: T5 hidden `(1, T_b, d)` of prompt
    /// `b`; `melodies[b]`: its chroma (melody models; `None` = text only, the null chroma).
    /// With `guidance`, the unconditional half is appended.
    pub fn condition(
        &self,
        texts: &[Tensor],
        melodies: &[Option<&[ChromaFrame]>],
        guidance: bool,
    ) -> Result<Conditioning, EngineError> {
        let projected = texts.iter().map(|t| self.project_text(t)).collect::<Result<Vec<_>, _>>()?;
        let lens = projected.iter().map(|t| t.dim(1)).collect::<Result<Vec<_>, _>>()?;
        let max_len = lens.iter().copied().max().unwrap_or(0);
        let hidden = self.text.weight().dim(0)?;
        let zeros = |n: usize| Tensor::zeros((1, n, hidden), self.dtype, &self.device);
        // Pad every row to the longest prompt with zero vectors (what projection × mask gives).
        let mut text_rows = projected
            .iter()
            .zip(&lens)
            .map(|(t, &n)| if n < max_len { Tensor::cat(&[t, &zeros(max_len - n)?], 1) } else { Ok(t.clone()) })
            .collect::<candle_core::Result<Vec<_>>>()?;
        if guidance {
            for _ in 0..texts.len() {
                text_rows.push(zeros(max_len)?);
            }
        }
        let text = Tensor::cat(&text_rows, 0)?;
        if !self.is_melody() {
            let mut valid = lens.clone();
            if guidance {
                valid.extend(std::iter::repeat_n(0, texts.len()));
            }
            return Ok(Conditioning::CrossAttention { states: text, valid });
        }
        if melodies.len() != texts.len() {
            return Err(EngineError::InvalidRequest(format!(
                "{} melodies for {} prompts",
                melodies.len(),
                texts.len()
            )));
        }
        let mut audio_rows = melodies.iter().map(|m| self.project_chroma(*m)).collect::<Result<Vec<_>, _>>()?;
        if guidance {
            let null = self.project_chroma(None)?;
            for _ in 0..texts.len() {
                audio_rows.push(null.clone());
            }
        }
        let audio = Tensor::cat(&audio_rows, 0)?;
        Ok(Conditioning::Prefix { prefix: Tensor::cat(&[&audio, &text], 1)?, text_len: max_len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    fn projections(chroma_length: usize) -> Projections {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        Projections::new(6, 8, Some((12, chroma_length)), vb).unwrap()
    }

    fn frames(n: usize) -> Vec<ChromaFrame> {
        (0..n)
            .map(|i| {
                let mut f = [0.0; 12];
                f[(i * 5) % 12] = 1.0;
                f
            })
            .collect()
    }

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        t.squeeze(0).unwrap().to_vec2().unwrap()
    }

    #[test]
    fn short_chroma_is_tiled_whole_and_long_chroma_truncated() {
        let p = projections(235);
        let short = frames(50);
        let tiled = rows(&p.project_chroma(Some(&short)).unwrap());
        assert_eq!(tiled.len(), 235);
        // Periodic with the input's length (the whole sequence repeats, not the last frame)...
        for (i, row) in tiled.iter().enumerate() {
            assert_eq!(row, &tiled[i % 50], "frame {i} is not frame {} repeated", i % 50);
        }
        // ...and the first period is the input itself, frame by frame.
        for (i, f) in short.iter().take(5).enumerate() {
            let single = rows(&p.project_chroma(Some(std::slice::from_ref(f))).unwrap());
            assert_eq!(tiled[i], single[0], "frame {i}");
        }
        let long = frames(300);
        let cut = rows(&p.project_chroma(Some(&long)).unwrap());
        let head = rows(&p.project_chroma(Some(&long[..235])).unwrap());
        assert_eq!(cut, head);
        // The null chroma is one-hot bin 0 in every frame.
        let null = rows(&p.project_chroma(None).unwrap());
        let bin0 = rows(&p.project_chroma(Some(&vec![frames(1)[0]; 3])).unwrap());
        assert_eq!(null, bin0);
        assert!(p.project_chroma(Some(&[])).is_err());
    }

    #[test]
    fn melody_prefix_is_audio_then_text_and_guidance_appends_the_null_branch() {
        let p = projections(10);
        let text = [Tensor::ones((1, 3, 6), DType::F32, &Device::Cpu).unwrap()];
        let melody = frames(4);
        let Conditioning::Prefix { prefix, text_len } = p.condition(&text, &[Some(&melody)], true).unwrap() else {
            panic!("melody models condition through a prefix");
        };
        assert_eq!((prefix.dims(), text_len), (&[2, 13, 8][..], 3));
        let audio = p.project_chroma(Some(&melody)).unwrap();
        let null = p.project_chroma(None).unwrap();
        let text_proj = p.project_text(&text[0]).unwrap();
        let cond: Vec<Vec<f32>> = prefix.get(0).unwrap().to_vec2().unwrap();
        let uncond: Vec<Vec<f32>> = prefix.get(1).unwrap().to_vec2().unwrap();
        assert_eq!(&cond[..10], &rows(&audio)[..]);
        assert_eq!(&cond[10..], &rows(&text_proj)[..]);
        assert_eq!(&uncond[..10], &rows(&null)[..]);
        assert!(uncond[10..].iter().flatten().all(|&v| v == 0.0), "unconditional text must be zeros");
    }
}
