//! MelodyGen: text- and melody-conditioned music generation (Meta's MusicGen, run locally on
//! Candle) as a VST3/CLAP plugin.
//!
//! The model is the headless [`melodygen_engine`] crate; this crate is what runs inside the
//! host, laid out by thread:
//!
//! - [`audio`]: the host's audio thread (`process()`: capture rings, clip player). Realtime-safe
//!   throughout.
//! - [`dispatch`]: one non-realtime thread per instance: turns "Generate" into a job, receives
//!   the clip, does the library's file work and prepares clips for the audio thread.
//! - [`editor`]: the egui window, on the host's GUI thread, and the drag source.
//! - [`worker`]: one thread per process, shared by every instance, that owns the loaded models
//!   and runs the engine.
//! - [`params`] (host parameters and persisted fields), [`state`] (the project's clip list),
//!   [`shared`] (what one instance's threads share).
//!
//! This file is the host-facing shell: the plugin type, what the host calls on its own threads
//! (`activate()`, `editor()`, `reset()`), and the CLAP/VST3 exports.

pub mod audio;
pub mod dispatch;
pub mod editor;
pub mod params;
pub mod shared;
pub mod state;
pub mod threads;
pub mod worker;

/// Dragging clip files out of the editor (used by the editor and by the X11 drag tests).
pub use editor::drag;
pub use params::MelodyGenParams;

use audio::playback::{self, PlayerRemote};
use audio::capture::Capture;
use audio::AudioThread;
use dispatch::Dispatcher;
use nice_plug::prelude::*;
use shared::SharedState;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub struct MelodyGen {
    params: Arc<MelodyGenParams>,
    shared: Arc<SharedState>,
    /// What `process()` runs (the audio thread's state).
    audio: AudioThread,
    /// The dispatcher's end of the clip rings, until the dispatcher starts.
    remote: Option<PlayerRemote>,
    /// Dropped with the plugin: that only tells the thread to stop (see [`Dispatcher`]), so the
    /// host's thread is never held when it removes an instance or unloads the library.
    dispatcher: Option<Dispatcher>,
}

impl Default for MelodyGen {
    /// Cheap by design: hosts construct plugins while scanning, so nothing is loaded here and no
    /// thread starts (the dispatcher starts in `activate()`, the worker with the first job).
    fn default() -> Self {
        let (player, remote) = playback::player();
        let params = Arc::new(MelodyGenParams::default());
        let shared = SharedState {
            progress: params.diagnostics.progress.clone(),
            playback: remote.state.clone(),
            ..Default::default()
        };
        Self {
            params,
            shared: Arc::new(shared),
            audio: AudioThread::new(player),
            remote: Some(remote),
            dispatcher: None,
        }
    }
}

impl Plugin for MelodyGen {
    const NAME: &'static str = "MelodyGen";
    const VENDOR: &'static str = "MelodyGen";
    const URL: &'static str = "https://example.invalid/melodygen";
    const EMAIL: &'static str = "melodygen@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
        main_input_channels: NonZeroU32::new(2),
        main_output_channels: NonZeroU32::new(2),
        ..AudioIOLayout::const_default()
    }];

    /// Note input, so a melody can be captured from the track's MIDI as well as its audio.
    const MIDI_INPUT: MidiConfig = MidiConfig::Basic;
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type Editor = nice_plug_egui::EguiEditor<editor::EditorApp>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(self.params.clone(), self.shared.clone())
    }

    /// Not realtime: allocates the capture buffers for the host rate (anew when it changed) and
    /// starts the dispatcher on the first activation. Returns false, with the reason in the
    /// window's status line, when the dispatcher thread cannot be started (the host then keeps
    /// the plugin inactive; a later activation tries again).
    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let rate = buffer_config.sample_rate.round() as u32;
        self.shared.host_rate.store(rate, Ordering::Relaxed);
        if self.audio.capture_rate() != Some(rate) {
            let capture = Arc::new(Capture::new(rate));
            *self.shared.capture.lock() = Some(capture.clone());
            self.audio.set_capture(capture);
        }
        if self.dispatcher.is_none() {
            match Dispatcher::start(self.params.clone(), self.shared.clone(), &mut self.remote) {
                Ok(d) => self.dispatcher = Some(d),
                Err(e) => {
                    let message = format!("MelodyGen could not start its background thread ({e}); try again, or restart the host.");
                    nice_error!("{message}");
                    self.shared.set_message(&message);
                    return false;
                }
            }
        }
        true
    }

    /// Realtime-safe like `process()`: no allocation, no lock, no blocking call (hosts may call
    /// it on the audio thread, and nice-plug calls it after every activation). It reads the two
    /// trigger parameters as the baseline of their edge detectors and forgets the transport
    /// edges (see [`AudioThread::reset`]).
    fn reset(&mut self) {
        self.audio.reset(&self.params);
    }

    /// A loaded state never moves the momentary triggers ("Generate", "Cancel"): they are
    /// actions, not settings, so a project or preset saved while one was on must not press it
    /// again, and a host that loads a state while processing must not look like a press to the
    /// audio thread. Dropping them here (nice-plug calls this before it applies any value)
    /// leaves both as they are. Not realtime-safe in general, but only removes two map entries;
    /// nice-plug calls it inside its own `permit_alloc` when a GUI state load lands on the audio
    /// thread.
    fn filter_state(state: &mut PluginState) {
        for id in params::TRIGGER_IDS {
            state.params.remove(id);
        }
    }

    /// Realtime-safe: the audio thread's work is all in [`AudioThread::process`].
    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        self.audio.process(&self.params, &self.shared, buffer, context)
    }
}

impl ClapPlugin for MelodyGen {
    const CLAP_ID: &'static str = "dev.melodygen.melodygen";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Generates music from a text prompt and the track's melody with MusicGen");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::Stereo,
        ClapFeature::Utility,
    ];
}

impl Vst3Plugin for MelodyGen {
    const VST3_CLASS_ID: [u8; 16] = *b"MelodyGenMsGen01";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Fx, Vst3SubCategory::Generator];
}

nice_plug::nice_export_clap!(MelodyGen);
nice_plug::nice_export_vst3!(MelodyGen);
