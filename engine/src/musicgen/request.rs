//! What a caller asks for, and what it gets back. Plain serde data, so the plugin can store the
//! request with each generated clip and regenerate it bit for bit.

use serde::{Deserialize, Serialize};

use super::sampling::SamplingConfig;
use crate::error::EngineError;
use crate::wav::Audio;

/// EnCodec 32 kHz frames per second of audio.
pub const FRAMES_PER_SECOND: usize = 50;
/// The longest single generation (audiocraft's limit; longer needs windowed continuation).
pub const MAX_SECONDS: f64 = 30.0;

/// The text condition, as text or as already-tokenised T5 ids (`</s>` included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// A prompt to tokenise with the checkpoint's tokenizer.json.
    Text(String),
    /// T5 token ids, `</s>` (1) included.
    TokenIds(Vec<u32>),
}

/// One generation. Defaults ([`GenerationRequest::new`]) follow audiocraft: top-k 250, top-p off,
/// temperature 1, guidance 3, 10 s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    /// The text condition.
    pub text: Prompt,
    /// Decoder steps, as transformers' `max_new_tokens` (frames = this + 1 − codebooks per channel).
    pub max_new_tokens: usize,
    /// Seed of the sampler: the same seed and settings give the same take.
    pub seed: u64,
    /// 0 = off.
    pub top_k: usize,
    /// Nucleus mass in (0, 1); 0 (or ≥ 1) = off.
    pub top_p: f32,
    /// Softmax temperature; must be positive.
    pub temperature: f32,
    /// Classifier-free guidance scale; ≤ 1 switches guidance off (a batch of one).
    pub guidance: f32,
    /// Arg-max decoding; ignores top-k/top-p/temperature/seed.
    pub greedy: bool,
}

impl GenerationRequest {
    /// A request with audiocraft's defaults for 10 seconds.
    pub fn new(text: Prompt, seed: u64) -> Self {
        Self {
            text,
            max_new_tokens: max_new_tokens_for_seconds(10.0).expect("10 s is valid"),
            seed,
            top_k: 250,
            top_p: 0.0,
            temperature: 1.0,
            guidance: 3.0,
            greedy: false,
        }
    }

    /// Arg-max decoding for `max_new_tokens` steps: deterministic, what parity checks against
    /// transformers and quality checks between weight formats compare.
    pub fn greedy(text: Prompt, max_new_tokens: usize, guidance: f32) -> Self {
        Self { max_new_tokens, top_k: 0, guidance, greedy: true, ..Self::new(text, 0) }
    }

    /// The token-picking part of the request.
    pub fn sampling(&self) -> SamplingConfig {
        SamplingConfig { top_k: self.top_k, top_p: self.top_p, temperature: self.temperature, greedy: self.greedy }
    }

    /// Rejects settings that would produce garbage or panic, naming the setting.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |m: String| Err(EngineError::InvalidRequest(m));
        let temperature_ok = self.temperature > 0.0 && self.temperature.is_finite();
        if !self.greedy && !temperature_ok {
            return bad(format!("temperature must be a positive number, got {}", self.temperature));
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad(format!("top_p must be between 0 and 1, got {}", self.top_p));
        }
        if !self.guidance.is_finite() {
            return bad(format!("guidance must be a finite number, got {}", self.guidance));
        }
        match &self.text {
            Prompt::Text(t) if t.trim().is_empty() => bad("the prompt is empty".into()),
            Prompt::TokenIds(ids) if ids.is_empty() => bad("the prompt has no token ids".into()),
            _ => Ok(()),
        }
    }
}

/// `max_new_tokens` for exactly `seconds` of audio: `50·N + 3` (audiocraft's rule, exactly `50·N`
/// frames with 4 codebooks per channel). Fractional seconds round to the nearest frame.
pub fn max_new_tokens_for_seconds(seconds: f64) -> Result<usize, EngineError> {
    if !(seconds > 0.0 && seconds <= MAX_SECONDS) {
        return Err(EngineError::InvalidRequest(format!(
            "duration must be more than 0 and at most {MAX_SECONDS} seconds, got {seconds}"
        )));
    }
    let frames = (seconds * FRAMES_PER_SECOND as f64).round().max(1.0) as usize;
    Ok(frames + 3)
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// 32 kHz, one channel per model channel.
    pub audio: Audio,
    /// De-delayed codes, one row per codebook in model order (stereo: L0, R0, L1, R1, …).
    pub codes: Vec<Vec<u32>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_rule() {
        assert_eq!(max_new_tokens_for_seconds(10.0).unwrap(), 503);
        assert_eq!(max_new_tokens_for_seconds(30.0).unwrap(), 1503);
        assert_eq!(max_new_tokens_for_seconds(0.5).unwrap(), 28);
        assert!(max_new_tokens_for_seconds(30.5).is_err());
        assert!(max_new_tokens_for_seconds(0.0).is_err());
        assert!(max_new_tokens_for_seconds(f64::NAN).is_err());
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let r = GenerationRequest::new(Prompt::Text("lofi beat".into()), 7);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"text\":{\"text\":\"lofi beat\"}"), "{json}");
        assert_eq!(serde_json::from_str::<GenerationRequest>(&json).unwrap(), r);
        assert!(r.validate().is_ok());
        assert!(GenerationRequest { temperature: 0.0, ..r.clone() }.validate().is_err());
        assert!(GenerationRequest { temperature: 0.0, greedy: true, ..r.clone() }.validate().is_ok());
        assert!(GenerationRequest { top_p: 1.5, ..r.clone() }.validate().is_err());
        assert!(GenerationRequest { text: Prompt::Text("  ".into()), ..r }.validate().is_err());
    }
}
