//! `generation_config.json`: the sampling defaults a checkpoint ships with.
//!
//! Only read, never enforced: the engine's own generation settings start from these values so a
//! checkpoint's published defaults (guidance 3, sampling on) are what a producer gets.
use std::path::Path;

use serde::Deserialize;

use crate::error::EngineError;

/// The fields of `generation_config.json` MusicGen uses. Missing fields take the values of
/// the published MusicGen files; `top_k` absent means transformers' default of 50.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GenerationConfig {
    /// Whether the checkpoint samples (true) or decodes greedily.
    #[serde(default = "yes")]
    pub do_sample: bool,
    /// Classifier-free guidance scale (3.0); 1 turns guidance off.
    #[serde(default = "three")]
    pub guidance_scale: f64,
    /// Total length in tokens, BOS column included (1500 = 30 s).
    #[serde(default = "max_length")]
    pub max_length: usize,
    /// Tokens to generate, when set (overrides `max_length`).
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    /// Top-k filter; absent means transformers' default of 50.
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Nucleus (top-p) filter, when set.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Softmax temperature, when set (1.0 otherwise).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Beginning-of-sequence code (2048).
    #[serde(default = "special")]
    pub bos_token_id: u32,
    /// Code filling delayed and padded cells (2048).
    #[serde(default = "special")]
    pub pad_token_id: u32,
    /// The code of the first decoder column (2048).
    #[serde(default = "special")]
    pub decoder_start_token_id: u32,
}

fn yes() -> bool {
    true
}
fn three() -> f64 {
    3.0
}
fn max_length() -> usize {
    1500
}
fn special() -> u32 {
    2048
}

impl Default for GenerationConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all fields have defaults")
    }
}

impl GenerationConfig {
    /// Reads `path`; a missing file gives the defaults (old checkpoints may lack it).
    pub fn from_file_or_default(path: &Path) -> Result<Self, EngineError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| EngineError::Json {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(EngineError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_musicgen_generation_config_parses() {
        // The fields of facebook/musicgen-small's generation_config.json.
        let g: GenerationConfig = serde_json::from_str(
            r#"{"_from_model_config": true, "bos_token_id": 2048, "decoder_start_token_id": 2048,
                "do_sample": true, "guidance_scale": 3.0, "max_length": 1500, "pad_token_id": 2048,
                "transformers_version": "4.31.0.dev0"}"#,
        )
        .unwrap();
        assert!(g.do_sample);
        assert_eq!(g.guidance_scale, 3.0);
        assert_eq!(g.max_length, 1500);
        assert_eq!(g.top_k, None);
        assert_eq!(g, GenerationConfig::default());
    }
}
