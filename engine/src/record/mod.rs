//! The reproducibility record of a generation: the prompt, the seed and every setting
//! ([`JobSettings`]), the melody the model followed ([`MelodyRecord`]) and what is stored beside
//! the audio ([`ClipMeta`], a clip's JSON sidecar).
//!
//! The plugin saves these with the project and beside every clip; the CLI's `--from-clip` reads
//! them back. [`JobSettings::request`] is the one place saved settings become a
//! [`GenerationRequest`], so the plugin and the CLI make the same clip from the same record.

mod clip_meta;
mod melody;
mod settings;

pub use clip_meta::{CaptureAnchor, ClipMeta, SidecarError};
pub use melody::{note_events, MelodyError, MelodyRecord, FRAME_RATE};
pub use settings::{
    ClipLength, GenerationParams, JobSettings, Melody, MelodySource, Note, Quant, DEFAULT_MODEL, MODEL_ENV,
};

use crate::error::EngineError;
use crate::musicgen::{max_new_tokens_for_seconds, GenerationRequest, Prompt};

impl JobSettings {
    /// The engine request these settings make for a clip of `seconds`: the text prompt, the
    /// seed and the sampling settings, nothing else. Validated, so a bad saved value is named.
    pub fn request(&self, seconds: f32) -> Result<GenerationRequest, EngineError> {
        let p = &self.params;
        let request = GenerationRequest {
            text: Prompt::Text(self.prompt.clone()),
            max_new_tokens: max_new_tokens_for_seconds(seconds as f64)?,
            seed: p.seed,
            top_k: p.top_k,
            top_p: p.top_p,
            temperature: p.temperature,
            guidance: p.guidance,
            greedy: p.greedy,
        };
        request.validate()?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every saved setting reaches the request; a bad saved value is refused by name.
    #[test]
    fn saved_settings_make_their_request() {
        let settings = JobSettings {
            prompt: "lofi".into(),
            params: GenerationParams { seed: 9, top_k: 50, top_p: 0.5, temperature: 0.8, guidance: 2.0, greedy: false, ..Default::default() },
        };
        let r = settings.request(2.0).unwrap();
        assert_eq!(r.text, Prompt::Text("lofi".into()));
        assert_eq!(r.max_new_tokens, max_new_tokens_for_seconds(2.0).unwrap());
        assert_eq!((r.seed, r.top_k, r.top_p, r.temperature, r.guidance, r.greedy), (9, 50, 0.5, 0.8, 2.0, false));
        let bad = JobSettings { params: GenerationParams { temperature: 0.0, ..settings.params.clone() }, ..settings };
        assert!(bad.request(2.0).unwrap_err().to_string().contains("temperature"));
    }
}
