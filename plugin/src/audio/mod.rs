//! Everything the host's audio thread runs: `process()` of each instance ([`AudioThread`]), the
//! capture rings it writes the track into ([`capture`]) and the clip player it reads from
//! ([`playback`]), with the atomics they share with the dispatcher and the editor.
//!
//! Nothing here allocates, locks, blocks or frees a large buffer while processing: every buffer
//! is made in `activate()`, clips arrive and leave over wait-free rings, and a replaced clip goes
//! back to the dispatcher to be freed. Each function says whether it is realtime-safe, and the
//! host tests run the `assert_process_allocs` build, which aborts on any allocation here.
//! Nothing outside this folder is called from `process()`.
//!
//! Denormals: `process()` runs with flush-to-zero and denormals-are-zero set (MXCSR on x86, FPCR
//! on aarch64) and restores the host's flags on return, so a decaying or near-silent input
//! costs no more than any other: see [`AudioThread::process`].

pub mod capture;
pub mod playback;
pub mod trigger;

#[cfg(test)]
mod tests;

use crate::params::MelodyGenParams;
use crate::shared::SharedState;
use crate::MelodyGen;
use capture::{Capture, CaptureMode, UNKNOWN_TIME};
use melodygen_engine::record::CaptureAnchor;
use nice_plug::midi::Key;
use nice_plug::prelude::*;
use playback::{Player, TransportView};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use trigger::Trigger;

/// One instance's audio-thread state: trigger edges, the take edges, the capture buffers of the
/// current activation and the clip player.
pub struct AudioThread {
    /// Edges of the "Generate" trigger (see [`trigger`]: its value when processing starts is a
    /// baseline, not a press).
    generate: Trigger,
    /// Same for "Cancel".
    cancel: Trigger,
    /// The capture buffers (allocated in `activate()`).
    capture: Option<Arc<Capture>>,
    /// Transport / arm state of the previous block, for take edges.
    was_playing: bool,
    was_armed: bool,
    player: Player,
}

impl AudioThread {
    /// Not realtime-safe: made with the instance, on the host's main thread; the player's end
    /// of the clip rings comes with it.
    pub fn new(player: Player) -> Self {
        Self { generate: Trigger::new(), cancel: Trigger::new(), capture: None, was_playing: false, was_armed: false, player }
    }

    /// The rate of the capture buffers, if there are any. Realtime-safe; `activate()` asks.
    pub fn capture_rate(&self) -> Option<u32> {
        self.capture.as_ref().map(|c| c.sample_rate)
    }

    /// Not realtime-safe (called from `activate()`): switches to new capture buffers; the old
    /// ones are freed here, on the host's activation thread, if nobody else holds them.
    pub fn set_capture(&mut self, capture: Arc<Capture>) {
        self.capture = Some(capture);
    }

    /// Realtime-safe (reads two parameter values, stores a few fields; no allocation, no lock):
    /// the host restarts processing (it calls this after every activation) or asks for a reset.
    /// The triggers take their current values as the baseline, so one left on is not a press,
    /// and the transport edges are forgotten.
    pub fn reset(&mut self, params: &MelodyGenParams) {
        self.generate.rearm(params.generate.value());
        self.cancel.rearm(params.cancel.value());
        self.was_playing = false;
    }

    /// Realtime-safe: no allocation, no lock, no blocking call. Captures the track's input and
    /// notes, turns rising edges of "Generate" into requests, and writes
    /// dry input × dry level + clip × clip level.
    ///
    /// Runs with flush-to-zero and denormals-are-zero set, restored on return: a subnormal
    /// input or gain product is taken as 0 instead of taking the slow microcode path.
    ///
    /// Calls nothing of this crate outside `audio/`: `params` and `shared` are read through
    /// their fields (the host's parameter values and smoothers, and atomics), never through a
    /// method of `params.rs` or `shared.rs`; everything else is the capture and the player.
    pub fn process(
        &mut self,
        params: &MelodyGenParams,
        shared: &SharedState,
        buffer: &mut Buffer,
        context: &mut impl ProcessContext<MelodyGen>,
    ) -> ProcessStatus {
        // SAFETY: Rust assumes the default floating-point environment, in which subnormals are
        // kept; with FTZ/DAZ set they read and compute as 0. Nothing below depends on subnormal
        // values (gains, mixes, sums of samples, comparisons with thresholds far above them),
        // hosts set these flags on their own audio threads anyway, and the guard restores the
        // host's flags when the block is done. Setting and restoring the flag register is a
        // couple of instructions: realtime-safe.
        unsafe { no_denormals::no_denormals(|| self.process_block(params, shared, buffer, context)) }
    }

    /// [`Self::process`] with the denormal flags set. Realtime-safe (see there).
    fn process_block(
        &mut self,
        params: &MelodyGenParams,
        shared: &SharedState,
        buffer: &mut Buffer,
        context: &mut impl ProcessContext<MelodyGen>,
    ) -> ProcessStatus {
        if self.generate.rose(params.generate.value()) {
            shared.generate_requests.fetch_add(1, Ordering::Relaxed);
        }
        if self.cancel.rose(params.cancel.value()) {
            shared.cancel_requests.fetch_add(1, Ordering::Relaxed);
        }

        let t = context.transport();
        let view = TransportView {
            playing: t.playing,
            pos_samples: t.pos_samples(),
            reported: t.pos_samples().is_some() || t.tempo.is_some(),
        };
        // The host's position now, in the form a take's start is recorded in (and saved with the
        // clip): one type from the transport to the sidecar.
        let now = CaptureAnchor { seconds: t.pos_seconds(), beats: t.pos_beats(), bar: t.bar_number(), tempo: t.tempo };
        shared.tempo_bits.store(t.tempo.unwrap_or(f64::NAN).to_bits(), Ordering::Relaxed);
        let (num, den) = (t.time_sig_numerator.unwrap_or(0), t.time_sig_denominator.unwrap_or(0));
        shared.time_sig_num.store(num, Ordering::Relaxed);
        shared.time_sig_den.store(den, Ordering::Relaxed);
        let playing = t.playing;

        if let Some(capture) = &self.capture {
            update_take(params, self.was_playing, &mut self.was_armed, capture, view, now);
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
        let rate = shared.host_rate.load(Ordering::Relaxed);
        let looping = params.loop_preview.value();
        let start = self.player.block_start(buffer.samples(), params.preview.value(), view, rate, looping);
        let dry = &params.dry_level.smoothed;
        let clip_gain = &params.clip_level.smoothed;
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
    now: CaptureAnchor,
) {
    // The editor's "Clear": an empty take from here on.
    capture.honour_clear(now);
    match params.capture_mode.value() {
        CaptureMode::FollowTransport if !view.reported => {
            // No transport at all: one endless take, the ring holds the last 30 s.
            if !capture.is_capturing() {
                capture.start_take(UNKNOWN_TIME);
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
