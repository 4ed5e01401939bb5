//! The captured melody as the editor shows it: its chroma (the 12 pitch classes over time that
//! MusicGen-Melody is conditioned on) and, for MIDI, its notes.
//!
//! Computing a chroma takes tens of milliseconds (a resample and a 16384-point STFT per frame),
//! far too long for the GUI thread. The dispatcher thread makes the preview ([`PreviewMaker`])
//! and publishes it as an `Arc` in a [`PreviewSlot`]; the editor only `try_lock`s the slot to
//! clone the `Arc` (a pointer copy) and keeps showing the previous preview when the dispatcher
//! happens to hold the lock. The dispatcher only works while the editor is open, at most every
//! [`PREVIEW_INTERVAL`] while a take grows, and once more as soon as the take ends.
//!
//! The chroma is the engine's own (`ChromaExtractor` for audio, `chroma_from_notes` for MIDI),
//! computed the way the worker computes the conditioning, so the picture is what the model gets.

use crate::audio::capture::{Capture, Snapshot};
use melodygen_engine::chroma::{self, ChromaExtractor, N_CHROMA};
use melodygen_engine::record::note_events;
use melodygen_engine::record::{MelodySource, Note};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the preview is recomputed while a take is growing.
pub const PREVIEW_INTERVAL: Duration = Duration::from_millis(500);

/// Captured audio whose peak stays below this (−60 dBFS) counts as silence: the dispatcher then
/// generates from the prompt alone (MusicGen's "no melody" conditioning) rather than letting
/// the model follow the noise floor, and the editor says so.
pub const SILENCE_PEAK: f32 = 1e-3;

/// What the window says when the capture is silent (the melody view, and the dispatcher when a
/// job starts with such a capture).
pub const SILENT_MESSAGE: &str = "The captured audio is silent; the clip will follow the prompt only.";

/// Whether captured audio is silence (see [`SILENCE_PEAK`]).
pub fn is_silent(samples: &[f32]) -> bool {
    samples.iter().all(|s| s.abs() < SILENCE_PEAK)
}

/// What the preview has to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewState {
    /// Nothing captured yet.
    Empty,
    /// Audio was captured but it is silent.
    Silent,
    /// The MIDI source is chosen but no notes were captured.
    NoNotes,
    /// The melody source is "none": the prompt alone.
    TextOnly,
    /// A chroma (and for MIDI, notes) to draw.
    Ready,
    /// The chroma could not be computed (see [`MelodyPreview::error`]).
    Failed,
}

/// One published preview of the captured melody.
#[derive(Debug, Clone, PartialEq)]
pub struct MelodyPreview {
    pub source: MelodySource,
    pub state: PreviewState,
    /// Whether the take was still being recorded when this preview was made.
    pub capturing: bool,
    /// Length of the take, in seconds.
    pub seconds: f32,
    /// Loudest captured sample (absolute), for the silence message.
    pub peak: f32,
    /// Per-frame pitch-class strengths in 0..=1 (`frames × 12`, C first), one frame per 128 ms:
    /// for audio the chroma energies divided by the frame's maximum, for MIDI the one-hot.
    pub chroma: Vec<[f32; N_CHROMA]>,
    /// The strongest pitch class of each frame: what MusicGen-Melody is conditioned on.
    pub argmax: Vec<u8>,
    /// MIDI source: the captured notes (samples at `sample_rate` from the take's start).
    pub notes: Vec<Note>,
    pub sample_rate: u32,
    /// Why the chroma could not be computed, in plain words.
    pub error: Option<String>,
}

impl MelodyPreview {
    /// Builds the preview of a take. Not realtime (allocates, computes a chroma).
    pub fn of(
        snapshot: &Snapshot,
        sample_rate: u32,
        source: MelodySource,
        capturing: bool,
        extractor: &mut ChromaExtractor,
    ) -> Self {
        let peak = snapshot.audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        let mut preview = MelodyPreview {
            source,
            state: PreviewState::Empty,
            capturing,
            seconds: snapshot.audio.len() as f32 / sample_rate.max(1) as f32,
            peak,
            chroma: Vec::new(),
            argmax: Vec::new(),
            notes: Vec::new(),
            sample_rate,
            error: None,
        };
        let result = match source {
            MelodySource::None => {
                preview.state = PreviewState::TextOnly;
                return preview;
            }
            _ if snapshot.audio.is_empty() => return preview,
            MelodySource::Audio if peak < SILENCE_PEAK => {
                preview.state = PreviewState::Silent;
                return preview;
            }
            MelodySource::Midi if snapshot.notes.is_empty() => {
                preview.state = PreviewState::NoNotes;
                return preview;
            }
            MelodySource::Audio => extractor.chroma(&[&snapshot.audio], sample_rate),
            MelodySource::Midi => {
                preview.notes = snapshot.notes.clone();
                chroma::chroma_from_notes(&note_events(&snapshot.notes), sample_rate, Some(snapshot.audio.len() as u64))
            }
        };
        match result {
            Ok(c) => {
                preview.state = PreviewState::Ready;
                preview.chroma = c.normalized().to_vec();
                preview.argmax = c.argmax().to_vec();
            }
            Err(e) => {
                preview.state = PreviewState::Failed;
                preview.error = Some(e.to_string());
            }
        }
        preview
    }
}

/// Where the dispatcher publishes the preview and the editor picks it up.
#[derive(Default)]
pub struct PreviewSlot(Mutex<Option<Arc<MelodyPreview>>>);

impl PreviewSlot {
    /// Replaces the published preview (dispatcher thread; holds the lock for a pointer swap).
    pub fn publish(&self, preview: Arc<MelodyPreview>) {
        *self.0.lock() = Some(preview);
    }

    /// The published preview, or `None` when the slot is busy this instant (GUI thread: never
    /// waits; keep showing the previous one).
    pub fn try_get(&self) -> Option<Option<Arc<MelodyPreview>>> {
        self.0.try_lock().map(|p| p.clone())
    }
}

/// What a preview was made from; a new preview is due when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Made {
    /// Which capture buffers (they are replaced when the host rate changes).
    capture: usize,
    /// [`Capture::version`]: take number and samples written.
    version: (u64, u64),
    capturing: bool,
    source: MelodySource,
}

/// Makes previews on the dispatcher thread (see the module doc for when).
pub struct PreviewMaker {
    extractor: ChromaExtractor,
    made: Option<(Made, Instant)>,
}

impl Default for PreviewMaker {
    fn default() -> Self {
        Self { extractor: ChromaExtractor::new(), made: None }
    }
}

impl PreviewMaker {
    /// Publishes a fresh preview into `slot` if one is due. Dispatcher thread; not realtime.
    /// `editor_open`: whether anyone looks (nothing is computed otherwise).
    pub fn update(&mut self, capture: Option<&Arc<Capture>>, source: MelodySource, editor_open: bool, slot: &PreviewSlot) {
        let Some(capture) = capture else { return };
        if !editor_open {
            return;
        }
        let now = Made {
            capture: Arc::as_ptr(capture) as usize,
            version: capture.version(),
            capturing: capture.is_capturing(),
            source,
        };
        if let Some((made, at)) = self.made {
            if made == now {
                return;
            }
            // Only the same take growing is throttled; anything else shows at once.
            let growing = made.capturing
                && now.capturing
                && (made.capture, made.source, made.version.0) == (now.capture, now.source, now.version.0);
            if growing && at.elapsed() < PREVIEW_INTERVAL {
                return;
            }
        }
        let snapshot = capture.snapshot();
        let preview = MelodyPreview::of(&snapshot, capture.sample_rate, source, now.capturing, &mut self.extractor);
        slot.publish(Arc::new(preview));
        self.made = Some((now, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::capture::UNKNOWN_TIME;

    fn sine(freq: f32, rate: u32, seconds: f32, amp: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    fn take(capture: &Capture, audio: &[f32]) {
        for block in audio.chunks(512) {
            capture.write_block(&[block]);
        }
    }

    #[test]
    fn an_audio_take_previews_as_the_engine_chroma_of_its_pitch() {
        // A4 (440 Hz) for 2 s at 48 kHz: pitch class A (9) in every frame, as the worker's
        // conditioning (the engine's extractor) has it.
        let capture = Capture::new(48_000);
        capture.start_take(UNKNOWN_TIME);
        let audio = sine(440.0, 48_000, 2.0, 0.3);
        take(&capture, &audio);
        let p = MelodyPreview::of(&capture.snapshot(), 48_000, MelodySource::Audio, true, &mut ChromaExtractor::new());
        assert_eq!(p.state, PreviewState::Ready);
        let expected = ChromaExtractor::new().chroma(&[&audio], 48_000).unwrap();
        assert_eq!(p.argmax, expected.argmax());
        assert_eq!(p.chroma.len(), 1 + 64_000 / 4096);
        assert!(p.argmax.iter().all(|&c| c == 9), "{:?}", p.argmax);
        assert!((p.seconds - 2.0).abs() < 1e-3 && (p.peak - 0.3).abs() < 1e-3);
    }

    #[test]
    fn silence_empty_and_text_only_are_told_apart() {
        let capture = Capture::new(48_000);
        let mut ex = ChromaExtractor::new();
        let p = MelodyPreview::of(&capture.snapshot(), 48_000, MelodySource::Audio, false, &mut ex);
        assert_eq!(p.state, PreviewState::Empty);
        capture.start_take(UNKNOWN_TIME);
        take(&capture, &sine(440.0, 48_000, 1.0, 0.0005)); // −66 dBFS
        let p = MelodyPreview::of(&capture.snapshot(), 48_000, MelodySource::Audio, true, &mut ex);
        assert_eq!(p.state, PreviewState::Silent);
        assert!(is_silent(&capture.snapshot().audio));
        let p = MelodyPreview::of(&capture.snapshot(), 48_000, MelodySource::None, true, &mut ex);
        assert_eq!(p.state, PreviewState::TextOnly);
        let p = MelodyPreview::of(&capture.snapshot(), 48_000, MelodySource::Midi, true, &mut ex);
        assert_eq!(p.state, PreviewState::NoNotes);
        assert!(!is_silent(&[0.0, 0.002]));
    }

    #[test]
    fn midi_notes_preview_with_their_pitch_classes() {
        // E4 for the first second, G4 for the second, at 32 kHz: frames follow E (4) then G (7).
        let capture = Capture::new(32_000);
        capture.start_take(UNKNOWN_TIME);
        capture.note(0, 64, 0.8, true);
        take(&capture, &vec![0.0; 32_000]);
        capture.note(0, 64, 0.0, false);
        capture.note(0, 67, 0.8, true);
        take(&capture, &vec![0.0; 32_000]);
        let p = MelodyPreview::of(&capture.snapshot(), 32_000, MelodySource::Midi, false, &mut ChromaExtractor::new());
        assert_eq!(p.state, PreviewState::Ready);
        assert_eq!(p.notes.len(), 2);
        assert_eq!(p.argmax.len(), 1 + 64_000 / 4096);
        assert!(p.argmax[..7].iter().all(|&c| c == 4) && p.argmax[9..].iter().all(|&c| c == 7), "{:?}", p.argmax);
    }

    #[test]
    fn the_maker_throttles_a_growing_take_and_catches_its_end() {
        let capture = Arc::new(Capture::new(8_000));
        let slot = PreviewSlot::default();
        let mut maker = PreviewMaker::default();
        maker.update(Some(&capture), MelodySource::Audio, false, &slot);
        assert!(slot.try_get().unwrap().is_none(), "nothing is computed while the editor is closed");
        capture.start_take(UNKNOWN_TIME);
        take(&capture, &sine(440.0, 8_000, 0.5, 0.3));
        maker.update(Some(&capture), MelodySource::Audio, true, &slot);
        let first = slot.try_get().unwrap().unwrap();
        assert!(first.capturing && (first.seconds - 0.5).abs() < 1e-3);
        take(&capture, &sine(440.0, 8_000, 0.5, 0.3));
        maker.update(Some(&capture), MelodySource::Audio, true, &slot);
        assert!(Arc::ptr_eq(&first, &slot.try_get().unwrap().unwrap()), "recomputed within the interval");
        capture.stop_take();
        maker.update(Some(&capture), MelodySource::Audio, true, &slot);
        let ended = slot.try_get().unwrap().unwrap();
        assert!(!ended.capturing && (ended.seconds - 1.0).abs() < 1e-3, "the end of the take shows at once");
        maker.update(Some(&capture), MelodySource::None, true, &slot);
        assert_eq!(slot.try_get().unwrap().unwrap().state, PreviewState::TextOnly, "a source change shows at once");
    }
}
