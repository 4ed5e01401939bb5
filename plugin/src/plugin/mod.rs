//! The plugin side: the nice-plug `Plugin` implementation, its parameters and its editor.
//!
//! Data flow: `process()` captures the track (capture.rs) and plays the current clip
//! (playback.rs); the per-instance dispatcher (dispatcher.rs) turns "Generate" into a job for the
//! process-wide worker (`crate::worker`) and hands finished clips back to the audio thread.

pub mod capture;
pub mod clip_view;
mod dispatcher;
pub mod drag;
pub mod editor;
pub mod library;
pub mod melody_preview;
pub mod melody_view;
pub mod model_panel;
pub mod params;
mod partial_preview;
pub mod playback;
pub mod prompt_panel;
pub mod sampling_panel;
pub mod settings_panel;
pub mod state;
pub mod ui_rects;

use capture::{Capture, CaptureMode, HostTime};
use dispatcher::Dispatcher;
use nice_plug::midi::Key;
use nice_plug::prelude::*;
use params::MelodyGenParams;
use playback::{Player, PlayerRemote, TransportView};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// State shared between the audio thread, the editor and the dispatcher. The audio thread only
/// touches the atomics; the locks are for the non-realtime threads.
pub struct SharedState {
    /// How many generation requests were raised (rising edges of the "Generate" parameter seen
    /// by the audio thread, or presses of the editor's button). The dispatcher compares against
    /// the last value it handled.
    pub generate_requests: AtomicU64,
    /// Like `generate_requests`, for cancelling the instance's job.
    pub cancel_requests: AtomicU64,
    /// Progress of this instance's job, written by the worker.
    pub progress: Arc<crate::worker::progress::Progress>,
    /// The host's sample rate, set in `activate()`; shared with the job so a rate change while it
    /// runs is honoured.
    pub host_rate: Arc<AtomicU32>,
    /// Host tempo as `f64` bits (NaN: unknown) and time signature (0: unknown), written by the
    /// audio thread, for clip lengths in bars.
    pub tempo_bits: AtomicU64,
    pub time_sig_num: AtomicI32,
    pub time_sig_den: AtomicI32,
    /// The capture buffers of the current activation (replaced when the rate changes).
    pub capture: parking_lot::Mutex<Option<Arc<Capture>>>,
    /// Status or error line for the editor.
    pub message: parking_lot::Mutex<String>,
    /// The captured melody's preview for the editor's melody view, made off the GUI thread by
    /// the dispatcher (see `melody_preview`).
    pub melody_preview: melody_preview::PreviewSlot,
    /// Play / Stop / seek and the playhead, shared with the audio thread's player.
    pub playback: Arc<playback::PlayState>,
    /// The clip the instance plays now, with its waveform (published by the dispatcher).
    pub current_clip: parking_lot::Mutex<Option<Arc<clip_view::CurrentClip>>>,
    /// The library's commands (editor → dispatcher), undo list and messages.
    pub library: library::LibraryShared,
    /// Keeps model downloads running while this instance exists (see `worker::download`). Never
    /// read: it works through its `Drop`, which lets the last instance stop the downloads.
    #[allow(dead_code)]
    pub downloads: crate::worker::download::InstanceRegistration,
}

impl Default for SharedState {
    fn default() -> Self {
        Self {
            generate_requests: AtomicU64::new(0),
            cancel_requests: AtomicU64::new(0),
            progress: Arc::default(),
            host_rate: Arc::new(AtomicU32::new(0)),
            tempo_bits: AtomicU64::new(f64::NAN.to_bits()),
            time_sig_num: AtomicI32::new(0),
            time_sig_den: AtomicI32::new(0),
            capture: parking_lot::Mutex::new(None),
            message: parking_lot::Mutex::new(String::new()),
            melody_preview: Default::default(),
            playback: Arc::default(),
            current_clip: parking_lot::Mutex::new(None),
            library: Default::default(),
            downloads: Default::default(),
        }
    }
}

pub struct MelodyGen {
    params: Arc<MelodyGenParams>,
    shared: Arc<SharedState>,
    /// Last value of the "Generate" trigger seen by `process()`, for edge detection.
    generate_was_on: bool,
    /// Same for "Cancel".
    cancel_was_on: bool,
    /// The capture buffers (allocated in `activate()`).
    capture: Option<Arc<Capture>>,
    /// Transport / arm state of the previous block, for take edges.
    was_playing: bool,
    was_armed: bool,
    player: Player,
    /// The dispatcher's end of the clip rings, until the dispatcher starts.
    remote: Option<PlayerRemote>,
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
            generate_was_on: false,
            cancel_was_on: false,
            capture: None,
            was_playing: false,
            was_armed: false,
            player,
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
    /// starts the dispatcher on the first activation.
    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let rate = buffer_config.sample_rate.round() as u32;
        self.shared.host_rate.store(rate, Ordering::Relaxed);
        if self.capture.as_ref().map(|c| c.sample_rate) != Some(rate) {
            let capture = Arc::new(Capture::new(rate));
            *self.shared.capture.lock() = Some(capture.clone());
            self.capture = Some(capture);
        }
        if let Some(remote) = self.remote.take() {
            self.dispatcher = Some(Dispatcher::start(self.params.clone(), self.shared.clone(), remote));
        }
        true
    }

    fn reset(&mut self) {
        self.generate_was_on = false;
        self.cancel_was_on = false;
        self.was_playing = false;
    }

    /// Realtime-safe: no allocation, no lock, no blocking call. Captures the track's input and
    /// notes, turns rising edges of "Generate" into requests, and writes
    /// dry input × dry level + clip × clip level.
    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let generate_on = self.params.generate.value();
        if generate_on && !self.generate_was_on {
            self.shared.generate_requests.fetch_add(1, Ordering::Relaxed);
        }
        self.generate_was_on = generate_on;
        let cancel_on = self.params.cancel.value();
        if cancel_on && !self.cancel_was_on {
            self.shared.cancel_requests.fetch_add(1, Ordering::Relaxed);
        }
        self.cancel_was_on = cancel_on;

        let t = context.transport();
        let view = TransportView {
            playing: t.playing,
            pos_samples: t.pos_samples(),
            reported: t.pos_samples().is_some() || t.tempo.is_some(),
        };
        let now = HostTime { seconds: t.pos_seconds(), beats: t.pos_beats(), bar: t.bar_number(), tempo: t.tempo };
        self.shared.tempo_bits.store(t.tempo.unwrap_or(f64::NAN).to_bits(), Ordering::Relaxed);
        let (num, den) = (t.time_sig_numerator.unwrap_or(0), t.time_sig_denominator.unwrap_or(0));
        self.shared.time_sig_num.store(num, Ordering::Relaxed);
        self.shared.time_sig_den.store(den, Ordering::Relaxed);
        let playing = t.playing;

        if let Some(capture) = &self.capture {
            update_take(&self.params, self.was_playing, &mut self.was_armed, capture, view, now);
            while let Some(event) = context.next_event() {
                if capture.is_capturing() {
                    match event {
                        NoteEvent::NoteOn { timing, key: Key::Number(key), velocity, .. } => {
                            capture.note(timing, key, velocity, true)
                        }
                        NoteEvent::NoteOff { timing, key: Key::Number(key), .. } => capture.note(timing, key, 0.0, false),
                        _ => {}
                    }
                }
            }
            if capture.is_capturing() {
                capture.write_block(buffer.as_slice_immutable());
            }
        } else {
            while context.next_event().is_some() {}
        }
        self.was_playing = playing;

        self.player.poll();
        let rate = self.shared.host_rate.load(Ordering::Relaxed);
        let looping = self.params.loop_preview.value();
        let start = self.player.block_start(buffer.samples(), self.params.preview.value(), view, rate, looping);
        let dry = &self.params.dry_level.smoothed;
        let clip_gain = &self.params.clip_level.smoothed;
        match start {
            Some(start) => {
                for (i, mut frame) in buffer.iter_samples().enumerate() {
                    let (gd, gc) = (dry.next(), clip_gain.next());
                    let (l, r) = self.player.frame(start + i as i64, looping);
                    for (ch, sample) in frame.iter_mut().enumerate() {
                        *sample = *sample * gd + if ch == 0 { l } else { r } * gc;
                    }
                }
            }
            None if dry.is_smoothing() || dry.previous_value() != 1.0 => {
                for mut frame in buffer.iter_samples() {
                    let gain = dry.next();
                    for sample in frame.iter_mut() {
                        *sample *= gain;
                    }
                }
            }
            None => {}
        }
        ProcessStatus::Normal
    }
}

/// Starts and ends takes on transport or arm edges. Realtime-safe (atomics only).
fn update_take(
    params: &MelodyGenParams,
    was_playing: bool,
    was_armed: &mut bool,
    capture: &Capture,
    view: TransportView,
    now: HostTime,
) {
    // The editor's "Clear": an empty take from here on.
    capture.honour_clear(now);
    match params.capture_mode.value() {
        CaptureMode::FollowTransport if !view.reported => {
            // No transport at all: one endless take, the ring holds the last 30 s.
            if !capture.is_capturing() {
                capture.start_take(HostTime::default());
            }
        }
        CaptureMode::FollowTransport => {
            if view.playing && !was_playing {
                capture.start_take(now);
            } else if !view.playing && capture.is_capturing() {
                capture.stop_take();
            }
        }
        CaptureMode::Manual => {
            let armed = params.capture_armed.value();
            if armed && !*was_armed {
                capture.start_take(now);
            } else if !armed && capture.is_capturing() {
                capture.stop_take();
            }
            *was_armed = armed;
        }
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
