//! The plugin's automatable parameters and its persisted, non-parameter state.

use crate::audio::capture::CaptureMode;
use crate::audio::playback::PreviewMode;
use crate::state::{ClipList, Diagnostics};
use melodygen_engine::record::GenerationParams;
use nice_plug::prelude::*;
use nice_plug_egui::EguiEditorState;
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::Arc;

/// Initial editor size in logical pixels.
pub const EDITOR_WIDTH: u32 = 960;
pub const EDITOR_HEIGHT: u32 = 640;

/// Lowest level the two level parameters reach (a gain of 0.001, shown as "-60.0 dB").
const MIN_LEVEL_DB: f32 = -60.0;
/// Highest level: some headroom for quiet generations.
const MAX_LEVEL_DB: f32 = 12.0;
/// Decimals of a level's text. Text → value is exact only up to this: a level parsed back from
/// its text is within half a step (0.05 dB) of the level shown, a host that round-trips the text
/// lands on the value shown, not on the hidden digits.
const LEVEL_DECIMALS: usize = 1;

/// Ids of the momentary trigger parameters, which a loaded state never sets (see
/// `MelodyGen::filter_state` in lib.rs).
pub const TRIGGER_IDS: [&str; 2] = ["generate", "cancel"];

/// The text of the "Generate" trigger: "Go" while pressed, "Idle" otherwise.
const GENERATE_ON: &str = "Go";
const GENERATE_OFF: &str = "Idle";

#[derive(Params)]
pub struct MelodyGenParams {
    /// Level of the generated clip in the output (linear gain, shown in dB).
    #[id = "clip_level"]
    pub clip_level: FloatParam,

    /// Level of the track's own (dry) input in the output (linear gain, shown in dB).
    #[id = "dry_level"]
    pub dry_level: FloatParam,

    /// Momentary trigger: a rising edge (off → on) starts a generation. It is a parameter so that
    /// automation or a MIDI controller mapped by the host can start a job, not only the window.
    #[id = "generate"]
    pub generate: BoolParam,

    /// Momentary trigger: a rising edge cancels this instance's job (queued or running).
    #[id = "cancel"]
    pub cancel: BoolParam,

    /// How the clip is previewed (read on the audio thread).
    #[id = "preview"]
    pub preview: EnumParam<PreviewMode>,

    /// Whether the preview loops the clip.
    #[id = "loop"]
    pub loop_preview: BoolParam,

    /// When the melody is captured: following the transport, or while "Capture armed" is on.
    #[id = "capture_mode"]
    pub capture_mode: EnumParam<CaptureMode>,

    /// In manual capture mode, switching this on starts a new take and switching it off ends it.
    #[id = "capture_armed"]
    pub capture_armed: BoolParam,

    /// The text prompt. Not a parameter (hosts cannot automate text) but saved with the project.
    /// Written by the editor, read by whoever submits a job; never touched on the audio thread.
    #[persist = "prompt"]
    pub prompt: RwLock<String>,

    /// Every other generation setting (model, length, seed, sampling, melody source). Read by
    /// the dispatcher when it submits a job; never touched on the audio thread.
    #[persist = "settings"]
    pub settings: RwLock<GenerationParams>,

    /// The melody of a clip recalled by "Use these settings again": while set, Generate follows
    /// it instead of the live capture (the melody view says so and can clear it).
    #[persist = "recalled_melody"]
    pub recalled_melody: RwLock<Option<crate::dispatch::library::RecalledMelody>>,

    /// Clip folder chosen for this project; `None`: [`crate::worker::clip::default_clip_dir`].
    #[persist = "clip_dir"]
    pub clip_dir: RwLock<Option<PathBuf>>,

    /// The project's clips (paths and metadata).
    #[persist = "clips"]
    pub clips: ClipList,

    /// Read-only counters saved with the state (see [`Diagnostics`]).
    #[persist = "diagnostics"]
    pub diagnostics: Diagnostics,

    /// Editor window state shared with nice-plug-egui (size, whether it is open).
    pub editor_state: Arc<EguiEditorState>,
}

impl Default for MelodyGenParams {
    fn default() -> Self {
        Self {
            clip_level: level_param("Clip Level", 0.0),
            dry_level: level_param("Dry Level", 0.0),
            generate: BoolParam::new("Generate", false)
                .with_value_to_string(Arc::new(|on| if on { GENERATE_ON } else { GENERATE_OFF }.to_string()))
                .with_string_to_value(Arc::new(parse_generate)),
            cancel: BoolParam::new("Cancel", false),
            preview: EnumParam::new("Preview", PreviewMode::FollowTransport),
            loop_preview: BoolParam::new("Loop Preview", false),
            capture_mode: EnumParam::new("Capture Mode", CaptureMode::FollowTransport),
            capture_armed: BoolParam::new("Capture Armed", false),
            prompt: RwLock::new(String::new()),
            settings: RwLock::new(GenerationParams::default()),
            recalled_melody: RwLock::new(None),
            clip_dir: RwLock::new(None),
            clips: ClipList::default(),
            diagnostics: Diagnostics::default(),
            editor_state: EguiEditorState::from_size(
                nice_plug::editor::dpi::LogicalSize::new(EDITOR_WIDTH as f32, EDITOR_HEIGHT as f32),
                1.0,
            ),
        }
    }
}

/// A gain parameter stored as linear amplitude and shown in dB, smoothed so that automation
/// never clicks.
fn level_param(name: &str, default_db: f32) -> FloatParam {
    FloatParam::new(
        name,
        util::db_to_gain(default_db),
        FloatRange::Skewed {
            min: util::db_to_gain(MIN_LEVEL_DB),
            max: util::db_to_gain(MAX_LEVEL_DB),
            factor: FloatRange::gain_skew_factor(MIN_LEVEL_DB, MAX_LEVEL_DB),
        },
    )
    .with_smoother(SmoothingStyle::Logarithmic(20.0))
    .with_unit(" dB")
    .with_value_to_string(formatters::v2s_f32_gain_to_db(LEVEL_DECIMALS))
    .with_string_to_value(formatters::s2v_f32_gain_to_db())
}

/// Parses the text of "Generate" back: its own "Go" / "Idle", and the "On" / "Off" / "true" /
/// "false" / "1" / "0" a host or a user may type. Not realtime-safe in principle (hosts call it
/// on their main thread); it allocates nothing.
fn parse_generate(text: &str) -> Option<bool> {
    let text = text.trim();
    let is = |words: &[&str]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
    if is(&[GENERATE_ON, "on", "true", "1"]) {
        Some(true)
    } else if is(&[GENERATE_OFF, "off", "false", "0"]) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Normalized values to try: every step of a discrete parameter, a fine sweep of a float.
    fn values(steps: Option<usize>) -> Vec<f32> {
        match steps {
            Some(n) => (0..=n).map(|i| i as f32 / n as f32).collect(),
            None => (0..=1000).map(|i| i as f32 / 1000.0).collect(),
        }
    }

    #[test]
    fn every_parameter_value_survives_its_text() {
        let params = MelodyGenParams::default();
        let map = params.param_map();
        assert!(map.len() >= 8, "all parameters are listed: {}", map.len());
        for (id, ptr, _) in &map {
            // SAFETY: the pointers point into `params`, which outlives the loop.
            let (name, steps) = unsafe { (ptr.name().to_string(), ptr.step_count()) };
            for v in values(steps) {
                for with_unit in [true, false] {
                    let text = unsafe { ptr.normalized_value_to_string(v, with_unit) };
                    let back = unsafe { ptr.string_to_normalized_value(&text) }
                        .unwrap_or_else(|| panic!("{id} ({name}): {text:?} (from {v}) does not parse"));
                    match steps {
                        Some(_) => assert_eq!(back, v, "{id} ({name}): {v} → {text:?} → {back}"),
                        None => {
                            // Levels: the same value up to the text's precision, the -60 dB
                            // bottom and the +12 dB top included.
                            let (plain, parsed) = unsafe { (ptr.preview_plain(v), ptr.preview_plain(back)) };
                            let (db, db_back) = (util::gain_to_db(plain), util::gain_to_db(parsed));
                            let tolerance = 0.5 / 10f32.powi(LEVEL_DECIMALS as i32) + 1e-3;
                            assert!(
                                (db - db_back).abs() <= tolerance,
                                "{id} ({name}): {db} dB → {text:?} → {db_back} dB"
                            );
                            // What a host shows again after the round trip is the same text.
                            let again = unsafe { ptr.normalized_value_to_string(back, with_unit) };
                            assert_eq!(again, text, "{id} ({name}) at {v}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn generate_reads_its_own_text_and_the_usual_words() {
        for (text, on) in [("Go", true), ("Idle", false), (" on ", true), ("OFF", false), ("1", true), ("false", false)] {
            assert_eq!(parse_generate(text), Some(on), "{text:?}");
        }
        assert_eq!(parse_generate("maybe"), None);
    }

    #[test]
    fn a_loaded_state_leaves_the_triggers_alone() {
        use crate::MelodyGen;
        use nice_plug::plugin::ParamValue;
        use std::collections::BTreeMap;
        let mut state = PluginState {
            version: String::new(),
            params: BTreeMap::from([
                ("generate".to_string(), ParamValue::Bool(true)),
                ("cancel".to_string(), ParamValue::Bool(true)),
                ("dry_level".to_string(), ParamValue::F32(0.5)),
            ]),
            fields: BTreeMap::new(),
        };
        <MelodyGen as Plugin>::filter_state(&mut state);
        assert_eq!(state.params.keys().collect::<Vec<_>>(), ["dry_level"], "the levels still load");
        let params = MelodyGenParams::default();
        let ids: Vec<String> = params.param_map().into_iter().map(|(id, _, _)| id).collect();
        for id in TRIGGER_IDS {
            assert!(ids.iter().any(|i| i == id), "{id} is a parameter id");
        }
    }
}
