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

/// Lowest level the two level parameters reach; at the bottom the signal is muted.
const MIN_LEVEL_DB: f32 = -60.0;
/// Highest level: some headroom for quiet generations.
const MAX_LEVEL_DB: f32 = 12.0;

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
                .with_value_to_string(Arc::new(|on| if on { "Go" } else { "Idle" }.to_string())),
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
    .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
    .with_string_to_value(formatters::s2v_f32_gain_to_db())
}
