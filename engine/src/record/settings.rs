//! The prompt and every generation setting, and the melody a generation follows: what a clip's
//! sidecar and the project store so that any take can be made again.

pub use crate::musicgen::Quant;
use serde::{Deserialize, Serialize};

/// Model used when neither the project nor `MELODYGEN_MODEL` names one.
pub const DEFAULT_MODEL: &str = "facebook/musicgen-melody";
/// Environment variable that overrides the model choice of new instances (tests point it at a
/// tiny checkpoint folder).
pub const MODEL_ENV: &str = "MELODYGEN_MODEL";

/// Where the melody that conditions a generation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MelodySource {
    /// The track's audio input, as captured.
    #[default]
    Audio,
    /// The notes the track received as MIDI.
    Midi,
    /// No melody: text only.
    None,
}

/// How long the generated clip should be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipLength {
    /// A length in seconds.
    Seconds(f32),
    /// Bars at the host's tempo and time signature; falls back to 4/4 at 120 BPM when the host
    /// does not report them.
    Bars(f32),
}

impl ClipLength {
    /// Length in seconds given what the host reports.
    pub fn seconds(self, tempo: Option<f64>, time_sig: Option<(i32, i32)>) -> f32 {
        match self {
            ClipLength::Seconds(s) => s,
            ClipLength::Bars(bars) => {
                let bpm = tempo.filter(|t| *t > 0.0).unwrap_or(120.0);
                let (num, den) = time_sig.filter(|(n, d)| *n > 0 && *d > 0).unwrap_or((4, 4));
                let quarter_notes_per_bar = num as f64 * 4.0 / den as f64;
                (bars as f64 * quarter_notes_per_bar * 60.0 / bpm) as f32
            }
        }
    }
}

/// The prompt and every generation setting, stored with every clip so it can be reproduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct JobSettings {
    /// The text prompt given to T5.
    pub prompt: String,
    /// Every other setting (flattened into the same JSON object).
    #[serde(flatten)]
    pub params: GenerationParams,
}

/// Every generation setting but the prompt (which the project stores on its own). Persisted with
/// the project; missing fields take their defaults, so older projects still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationParams {
    /// A model folder or a Hugging Face repository id (resolved through the local HF cache).
    pub model: String,
    /// How long the clip should be.
    pub length: ClipLength,
    /// The seed of the next generation. While [`Self::seed_locked`] is off, every job draws a
    /// fresh one and stores it back here (and in the clip's sidecar), so any result can be
    /// reproduced by locking the seed it was made with.
    pub seed: u64,
    /// Reuse [`Self::seed`] for every generation instead of drawing a new one.
    pub seed_locked: bool,
    /// Top-k filter; 0 = off.
    pub top_k: usize,
    /// Nucleus (top-p) mass; 0 (or ≥ 1) = off.
    pub top_p: f32,
    /// Softmax temperature; must be positive.
    pub temperature: f32,
    /// Classifier-free guidance scale.
    pub guidance: f32,
    /// Arg-max decoding; the seed and sampling settings are then ignored.
    pub greedy: bool,
    /// Where the melody comes from (audio input, MIDI notes, or none).
    pub melody_source: MelodySource,
    /// Play the clip while it is being generated, piece by piece as the engine decodes it: the
    /// setting the plugin's preview reads (the engine's part is [`crate::musicgen::StreamingDecoder`]).
    /// On the CPU generation is slower than playback, so a "Play now" preview pauses at the end
    /// of each piece; off, the preview starts with the finished clip. The generated audio is the
    /// same either way.
    pub preview_while_generating: bool,
    /// Weight format of the decoder (f32, q8_0, q4k). A project or clip sidecar written before
    /// this setting existed was generated in f32, so a missing field reads as f32 (reproducing
    /// such a clip needs the same arithmetic).
    ///
    /// New instances start in q8_0: on the CPU it runs the decoder 3-4x faster than f32 and
    /// is close to lossless. Measured against f32 on the same codes (teacher forcing), its
    /// logits differ by 1-2 % RMS of their size on the tiny checkpoints and by 0.035 mean abs
    /// (3 % of the logit spread) on a musicgen-small-sized one; that moves each token's sampling
    /// probability by a few percent of itself, which a listener cannot pick out, while q4k
    /// (about 16 %) changes results audibly. See the README's Performance section.
    #[serde(default = "legacy_quant")]
    pub quant: Quant,
}

/// What a project or sidecar without a `quant` field was generated with.
fn legacy_quant() -> Quant {
    Quant::F32
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            model: std::env::var(MODEL_ENV).unwrap_or_else(|_| DEFAULT_MODEL.to_string()),
            length: ClipLength::Seconds(8.0),
            seed: 0,
            seed_locked: false,
            top_k: 250,
            top_p: 0.0,
            temperature: 1.0,
            guidance: 3.0,
            greedy: false,
            melody_source: MelodySource::Audio,
            preview_while_generating: true,
            quant: Quant::Q8_0,
        }
    }
}

/// One note received as MIDI, in samples from the start of the capture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Note {
    /// First sample of the note, from the start of the capture.
    pub start: u64,
    /// Sample after the note's last (`[start, end)`).
    pub end: u64,
    /// MIDI note number (60 = middle C).
    pub key: u8,
    /// Velocity as the host reports it, 0..1.
    pub velocity: f32,
}

/// The captured melody, copied off the audio thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Melody {
    /// No melody was captured (or none is wanted): the generation follows the text only.
    None,
    /// Mono audio at `sample_rate`.
    Audio {
        /// The captured samples, mono.
        samples: Vec<f32>,
        /// Their sample rate in Hz (the host rate).
        sample_rate: u32,
    },
    /// Notes over `frames` samples at `sample_rate`.
    Notes {
        /// The notes, in capture order.
        notes: Vec<Note>,
        /// Length of the capture in samples (notes still held end here).
        frames: u64,
        /// The host sample rate in Hz the positions count in.
        sample_rate: u32,
    },
    /// The conditioning a clip was made with, replayed exactly ("Use these settings again",
    /// `melodygen generate --from-clip`).
    Recorded(super::MelodyRecord),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_follow_tempo_and_time_signature() {
        // 2 bars of 4/4 at 120 BPM = 8 beats of 0.5 s.
        assert_eq!(
            ClipLength::Bars(2.0).seconds(Some(120.0), Some((4, 4))),
            4.0
        );
        // 1 bar of 6/8 at 90 BPM = 3 quarter notes of 2/3 s.
        assert!((ClipLength::Bars(1.0).seconds(Some(90.0), Some((6, 8))) - 2.0).abs() < 1e-6);
        // Unknown host tempo: 4/4 at 120.
        assert_eq!(ClipLength::Bars(1.0).seconds(None, None), 2.0);
        assert_eq!(ClipLength::Seconds(3.5).seconds(Some(60.0), None), 3.5);
    }

    #[test]
    fn settings_survive_json_and_fill_missing_fields() {
        let s = JobSettings {
            prompt: "lofi".into(),
            params: GenerationParams {
                seed: 7,
                length: ClipLength::Bars(4.0),
                ..Default::default()
            },
        };
        let back: JobSettings = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let partial: JobSettings =
            serde_json::from_str(r#"{"prompt":"x","melody_source":"midi"}"#).unwrap();
        assert_eq!(
            (
                partial.prompt.as_str(),
                partial.params.melody_source,
                partial.params.top_k
            ),
            ("x", MelodySource::Midi, 250)
        );
    }

    /// Settings saved before the quant choice existed were generated in f32 and must reload as
    /// f32, whatever new instances default to.
    #[test]
    fn missing_quant_reads_as_f32_and_names_round_trip() {
        let old: JobSettings = serde_json::from_str(r#"{"prompt":"x","seed":3}"#).unwrap();
        assert_eq!(old.params.quant, Quant::F32);
        assert_eq!(GenerationParams::default().quant, Quant::Q8_0, "new instances");
        for q in Quant::ALL {
            let s = JobSettings { prompt: "y".into(), params: GenerationParams { quant: q, ..Default::default() } };
            let json = serde_json::to_string(&s).unwrap();
            assert!(json.contains(&format!("\"quant\":\"{q:#}\"")), "{json}");
            assert_eq!(serde_json::from_str::<JobSettings>(&json).unwrap().params.quant, q);
        }
    }
}
