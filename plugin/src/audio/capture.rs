//! Melody capture: the track's audio (mono, last [`CAPTURE_SECONDS`]) and its MIDI notes, written
//! by the audio thread into buffers preallocated in `activate()`, read by the dispatcher without
//! locks.
//!
//! Every slot is an atomic, so the reader never sees a torn sample and the writer never waits.
//! The writer publishes with a monotonic `written` counter; the reader copies the window it wants,
//! then re-reads the counter and drops whatever the writer overwrote meanwhile. A new take bumps
//! `take`; a reader that sees it change while copying starts over.

use melodygen_engine::record::CaptureAnchor;
use melodygen_engine::record::{Melody, Note};
use nice_plug::prelude::Enum;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

/// When a take is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum CaptureMode {
    /// A take starts each time the host starts playback and ends when it stops. Hosts that
    /// report no transport at all get one endless take (the last 30 s).
    #[name = "Follow transport"]
    FollowTransport,
    /// A take runs while "Capture Armed" is on.
    #[name = "Manual"]
    Manual,
}

/// How much of the track is kept.
pub const CAPTURE_SECONDS: u32 = 30;
/// Most note events (on + off) kept per take; later ones are dropped.
pub const MAX_NOTE_EVENTS: usize = 4096;

/// `Option<f64>` in an atomic: NaN bits mean `None`.
struct AtomicOptF64(AtomicU64);

impl AtomicOptF64 {
    /// Realtime-safe (no allocation), though only [`Capture::new`] makes them.
    fn new() -> Self {
        Self(AtomicU64::new(f64::NAN.to_bits()))
    }
    /// Realtime-safe: one relaxed atomic store.
    fn store(&self, v: Option<f64>) {
        self.0
            .store(v.unwrap_or(f64::NAN).to_bits(), Ordering::Relaxed);
    }
    /// Realtime-safe: one relaxed atomic load.
    fn load(&self) -> Option<f64> {
        Some(f64::from_bits(self.0.load(Ordering::Relaxed))).filter(|v| !v.is_nan())
    }
}

/// One note event: position in the `written` sample count, and key/velocity/on packed.
struct NoteSlot {
    pos: AtomicU64,
    /// bits 0-7 key, 8-15 velocity (0-127), 16 note-on.
    packed: AtomicU32,
}

/// A take's start when the host reports no position: every field unknown. A constant rather than
/// `CaptureAnchor::default()`, so `process()` calls nothing outside this folder for it.
pub const UNKNOWN_TIME: CaptureAnchor = CaptureAnchor { seconds: None, beats: None, bar: None, tempo: None };

/// The buffers shared by the writer (audio thread) and readers. Allocated once per activation.
pub struct Capture {
    pub sample_rate: u32,
    ring: Box<[AtomicU32]>,
    /// Samples ever written (monotonic); the newest sample is at `(written - 1) % len`.
    written: AtomicU64,
    /// Where the block being written will end: raised before the ring slots are touched, so a
    /// reader can tell which slots may have changed under it (seqlock style).
    head: AtomicU64,
    /// Bumped (after the fields below are set) at the start of every take.
    take: AtomicU64,
    take_start: AtomicU64,
    anchor_seconds: AtomicOptF64,
    anchor_beats: AtomicOptF64,
    anchor_tempo: AtomicOptF64,
    /// `i64::MIN`: unknown.
    anchor_bar: std::sync::atomic::AtomicI64,
    notes: Box<[NoteSlot]>,
    note_count: AtomicU64,
    capturing: AtomicBool,
    /// Raised by the editor's "Clear" (any thread), honoured by the audio thread at its next
    /// block ([`Capture::honour_clear`]), so the writer alone ever starts a take.
    clear_requested: AtomicBool,
}

/// A copy of the current take.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Mono audio of the take (its last [`CAPTURE_SECONDS`] at most).
    pub audio: Vec<f32>,
    /// Notes within the same window, in samples from its start.
    pub notes: Vec<Note>,
    /// Host time at the window's first sample.
    pub anchor: CaptureAnchor,
}

impl Snapshot {
    /// The melody for a given source. Not realtime-safe: copies the take; called from the
    /// dispatcher thread.
    pub fn melody(&self, source: melodygen_engine::record::MelodySource, sample_rate: u32) -> Melody {
        use melodygen_engine::record::MelodySource;
        match source {
            MelodySource::Audio => Melody::Audio {
                samples: self.audio.clone(),
                sample_rate,
            },
            MelodySource::Midi => Melody::Notes {
                notes: self.notes.clone(),
                frames: self.audio.len() as u64,
                sample_rate,
            },
            MelodySource::None => Melody::None,
        }
    }
}

impl Capture {
    /// Allocates the buffers for `sample_rate`. Not realtime-safe: allocates; called from
    /// `activate()` on the host's main thread.
    pub fn new(sample_rate: u32) -> Self {
        let len = (sample_rate * CAPTURE_SECONDS) as usize;
        Self {
            sample_rate,
            ring: (0..len).map(|_| AtomicU32::new(0)).collect(),
            written: AtomicU64::new(0),
            head: AtomicU64::new(0),
            take: AtomicU64::new(0),
            take_start: AtomicU64::new(0),
            anchor_seconds: AtomicOptF64::new(),
            anchor_beats: AtomicOptF64::new(),
            anchor_tempo: AtomicOptF64::new(),
            anchor_bar: std::sync::atomic::AtomicI64::new(i64::MIN),
            notes: (0..MAX_NOTE_EVENTS)
                .map(|_| NoteSlot {
                    pos: AtomicU64::new(0),
                    packed: AtomicU32::new(0),
                })
                .collect(),
            note_count: AtomicU64::new(0),
            capturing: AtomicBool::new(false),
            clear_requested: AtomicBool::new(false),
        }
    }

    /// Whether a take is being recorded. Realtime-safe.
    pub fn is_capturing(&self) -> bool {
        self.capturing.load(Ordering::Relaxed)
    }

    /// Starts a new take at the current write position, anchored at `at`. Writer only.
    /// Realtime-safe: atomic stores only.
    pub fn start_take(&self, at: CaptureAnchor) {
        self.take_start
            .store(self.written.load(Ordering::Relaxed), Ordering::Relaxed);
        self.anchor_seconds.store(at.seconds);
        self.anchor_beats.store(at.beats);
        self.anchor_tempo.store(at.tempo);
        self.anchor_bar
            .store(at.bar.map_or(i64::MIN, i64::from), Ordering::Relaxed);
        self.note_count.store(0, Ordering::Relaxed);
        self.take.fetch_add(1, Ordering::Release);
        // Note slots rewritten from here on must not be seen before the new take number.
        fence(Ordering::Release);
        self.capturing.store(true, Ordering::Relaxed);
    }

    /// Asks the audio thread to drop the current take and start an empty one. Realtime-safe
    /// (one atomic store); the editor calls it from the GUI thread.
    pub fn request_clear(&self) {
        self.clear_requested.store(true, Ordering::Release);
    }

    /// Honours a pending [`Capture::request_clear`]: the take becomes empty, anchored at `at`,
    /// and recording goes on (or stays off) as before. Writer only. Realtime-safe: atomics only.
    pub fn honour_clear(&self, at: CaptureAnchor) {
        if self.clear_requested.swap(false, Ordering::Acquire) {
            let capturing = self.is_capturing();
            self.start_take(at);
            self.capturing.store(capturing, Ordering::Relaxed);
        }
    }

    /// Number of the current take (bumped by every new take) and samples written so far: what
    /// a reader compares to tell whether the take changed since it last looked. Realtime-safe
    /// (two atomic loads); the dispatcher calls it.
    pub fn version(&self) -> (u64, u64) {
        (self.take.load(Ordering::Acquire), self.written.load(Ordering::Acquire))
    }

    /// Stops recording; the take stays readable. Writer only. Realtime-safe.
    pub fn stop_take(&self) {
        self.capturing.store(false, Ordering::Relaxed);
    }

    /// Appends one block of audio, mixed to mono from `channels` (all of equal length). Writer
    /// only. Realtime-safe: atomic stores into the preallocated ring.
    pub fn write_block<C: AsRef<[f32]>>(&self, channels: &[C]) {
        let Some(first) = channels.first().map(AsRef::as_ref) else {
            return;
        };
        let len = self.ring.len() as u64;
        let start = self.written.load(Ordering::Relaxed);
        let scale = 1.0 / channels.len() as f32;
        self.head
            .store(start + first.len() as u64, Ordering::Relaxed);
        fence(Ordering::Release);
        for i in 0..first.len() {
            let mono = channels.iter().map(|c| c.as_ref()[i]).sum::<f32>() * scale;
            self.ring[((start + i as u64) % len) as usize].store(mono.to_bits(), Ordering::Relaxed);
        }
        self.written
            .store(start + first.len() as u64, Ordering::Release);
    }

    /// Records a note-on (`on`) or note-off at `offset` samples into the block that the next
    /// [`Capture::write_block`] call will append. Writer only. Realtime-safe; events past
    /// [`MAX_NOTE_EVENTS`] are dropped.
    pub fn note(&self, offset: u32, key: u8, velocity: f32, on: bool) {
        let n = self.note_count.load(Ordering::Relaxed);
        let Some(slot) = self.notes.get(n as usize) else {
            return;
        };
        let vel = (velocity.clamp(0.0, 1.0) * 127.0).round() as u32;
        slot.pos.store(
            self.written.load(Ordering::Relaxed) + offset as u64,
            Ordering::Relaxed,
        );
        slot.packed
            .store(key as u32 | vel << 8 | (on as u32) << 16, Ordering::Relaxed);
        self.note_count.store(n + 1, Ordering::Release);
    }

    /// Copies the current take. Not realtime-safe: allocates; called from the dispatcher
    /// thread.
    pub fn snapshot(&self) -> Snapshot {
        let len = self.ring.len() as u64;
        loop {
            let take = self.take.load(Ordering::Acquire);
            let end = self.written.load(Ordering::Acquire);
            let mut start = self
                .take_start
                .load(Ordering::Relaxed)
                .max(end.saturating_sub(len));
            let mut audio: Vec<f32> = (start..end)
                .map(|i| f32::from_bits(self.ring[(i % len) as usize].load(Ordering::Relaxed)))
                .collect();
            // Samples the writer overwrote (or was overwriting) while we copied are no longer the
            // take's: drop them.
            fence(Ordering::Acquire);
            let overwritten = self
                .head
                .load(Ordering::Relaxed)
                .saturating_sub(len)
                .saturating_sub(start);
            if overwritten > 0 {
                audio.drain(..overwritten.min(audio.len() as u64) as usize);
                start += overwritten;
            }
            let count = self.note_count.load(Ordering::Acquire) as usize;
            let events: Vec<(u64, u32)> = self.notes[..count.min(self.notes.len())]
                .iter()
                .map(|s| {
                    (
                        s.pos.load(Ordering::Relaxed),
                        s.packed.load(Ordering::Relaxed),
                    )
                })
                .collect();
            let take_start = self.take_start.load(Ordering::Relaxed);
            let anchor = self.anchor_at(start - take_start.min(start));
            fence(Ordering::Acquire);
            if self.take.load(Ordering::Acquire) != take {
                continue;
            }
            let notes = pair_notes(&events, start, start + audio.len() as u64);
            return Snapshot {
                audio,
                notes,
                anchor,
            };
        }
    }

    /// Host time `offset` samples after the take's start (when the window was trimmed).
    /// Realtime-safe (atomic loads and arithmetic), though only [`Capture::snapshot`] calls it,
    /// on the dispatcher thread.
    fn anchor_at(&self, offset: u64) -> CaptureAnchor {
        let dt = offset as f64 / self.sample_rate as f64;
        let tempo = self.anchor_tempo.load();
        let bar = self.anchor_bar.load(Ordering::Relaxed);
        CaptureAnchor {
            seconds: self.anchor_seconds.load().map(|s| s + dt),
            beats: self
                .anchor_beats
                .load()
                .and_then(|b| tempo.map(|t| b + dt * t / 60.0)),
            // A bar number is only exact at the take's start.
            bar: (bar != i64::MIN && offset == 0).then_some(bar as i32),
            tempo,
        }
    }
}

/// Pairs note-ons with the next note-off of the same key, clipped to `[start, end)` and made
/// relative to `start`. A note still held at the end lasts to the end. Not realtime-safe:
/// allocates; called by [`Capture::snapshot`] on the dispatcher thread.
fn pair_notes(events: &[(u64, u32)], start: u64, end: u64) -> Vec<Note> {
    let mut notes = Vec::new();
    let mut held: [Option<(u64, f32)>; 128] = [None; 128];
    let close = |notes: &mut Vec<Note>, key: usize, on: (u64, f32), off: u64| {
        let (s, e) = (on.0.max(start), off.min(end));
        if e > s {
            notes.push(Note {
                start: s - start,
                end: e - start,
                key: key as u8,
                velocity: on.1,
            });
        }
    };
    for &(pos, packed) in events {
        let key = (packed & 0x7f) as usize;
        let vel = ((packed >> 8) & 0xff) as f32 / 127.0;
        let is_on = packed >> 16 & 1 == 1;
        if let Some(on) = held[key].take() {
            close(&mut notes, key, on, pos);
        }
        if is_on && vel > 0.0 {
            held[key] = Some((pos, vel));
        }
    }
    for (key, on) in held.iter().enumerate() {
        if let Some(on) = *on {
            close(&mut notes, key, on, end);
        }
    }
    notes.sort_by_key(|n| (n.start, n.key));
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(from: usize, n: usize) -> Vec<f32> {
        (from..from + n).map(|i| i as f32).collect()
    }

    #[test]
    fn mono_mix_and_take_boundaries() {
        let c = Capture::new(100);
        c.write_block(&[&[9.0; 10], &[9.0; 10]]); // before the take: not part of it
        c.start_take(CaptureAnchor {
            seconds: Some(4.0),
            beats: Some(8.0),
            bar: Some(2),
            tempo: Some(120.0),
        });
        c.write_block(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let s = c.snapshot();
        assert_eq!(s.audio, vec![2.0, 3.0]);
        assert_eq!(
            s.anchor,
            CaptureAnchor {
                seconds: Some(4.0),
                beats: Some(8.0),
                bar: Some(2),
                tempo: Some(120.0)
            }
        );
    }

    #[test]
    fn the_ring_keeps_the_last_thirty_seconds_and_moves_the_anchor() {
        let c = Capture::new(10); // 300-sample ring
        c.start_take(CaptureAnchor {
            seconds: Some(1.0),
            beats: Some(2.0),
            bar: Some(0),
            tempo: Some(60.0),
        });
        let mut n = 0;
        for block in [128, 128, 128, 64] {
            let data = ramp(n, block);
            c.write_block(&[&data]);
            n += block;
        }
        let s = c.snapshot();
        assert_eq!(
            s.audio,
            ramp(n - 300, 300),
            "oldest samples overwritten, order kept across the wrap"
        );
        // 148 samples at 10 Hz were dropped: the window starts 14.8 s later (14.8 beats at 60 BPM).
        assert!(
            (s.anchor.seconds.unwrap() - 15.8).abs() < 1e-9
                && (s.anchor.beats.unwrap() - 16.8).abs() < 1e-9
        );
        assert_eq!(s.anchor.bar, None);
    }

    #[test]
    fn notes_are_paired_clipped_and_relative_to_the_window() {
        let c = Capture::new(10);
        c.start_take(UNKNOWN_TIME);
        c.note(5, 60, 1.0, true);
        c.note(20, 64, 0.5, true);
        c.write_block(&[&[0.0; 32]]);
        c.note(8, 60, 0.0, false); // C off at 40
        c.note(9, 67, 0.0, true); // velocity 0 note-on = off: ignored
        c.write_block(&[&[0.0; 32]]); // E held to the end (64)
        let s = c.snapshot();
        assert_eq!(
            s.notes,
            vec![
                Note {
                    start: 5,
                    end: 40,
                    key: 60,
                    velocity: 1.0
                },
                Note {
                    start: 20,
                    end: 64,
                    key: 64,
                    velocity: 64.0 / 127.0
                },
            ]
        );
        // A new take forgets the old notes.
        c.start_take(UNKNOWN_TIME);
        c.write_block(&[&[0.0; 4]]);
        assert_eq!(c.snapshot().notes, vec![]);
    }

    #[test]
    fn clear_empties_the_take_and_keeps_recording_state() {
        let c = Capture::new(10);
        c.start_take(UNKNOWN_TIME);
        c.note(0, 60, 1.0, true);
        c.write_block(&[&[1.0; 8]]);
        c.honour_clear(UNKNOWN_TIME); // nothing requested: the take stays
        assert_eq!(c.snapshot().audio.len(), 8);
        let before = c.version();
        c.request_clear();
        c.honour_clear(CaptureAnchor { seconds: Some(2.0), ..Default::default() });
        let s = c.snapshot();
        assert!(s.audio.is_empty() && s.notes.is_empty(), "{s:?}");
        assert_eq!(s.anchor.seconds, Some(2.0));
        assert!(c.is_capturing(), "a clear while recording keeps recording");
        assert_ne!(c.version(), before);
        c.write_block(&[&[2.0; 4]]);
        assert_eq!(c.snapshot().audio, vec![2.0; 4]);
        // Stopped: a clear empties the take and leaves recording off.
        c.stop_take();
        c.request_clear();
        c.honour_clear(UNKNOWN_TIME);
        assert!(!c.is_capturing() && c.snapshot().audio.is_empty());
    }

    #[test]
    fn note_buffer_overflow_drops_events_instead_of_growing() {
        let c = Capture::new(10);
        c.start_take(UNKNOWN_TIME);
        for i in 0..MAX_NOTE_EVENTS + 10 {
            c.note(0, (i % 128) as u8, 1.0, i % 2 == 0);
        }
        c.write_block(&[&[0.0; 1]]);
        assert_eq!(
            c.note_count.load(Ordering::Relaxed) as usize,
            MAX_NOTE_EVENTS
        );
    }

    #[test]
    fn a_reader_racing_the_writer_sees_only_consistent_windows() {
        // The writer writes a ramp (sample value = absolute index) as fast as it can; every
        // snapshot must be a run of consecutive values: no torn or stale slots.
        let c = std::sync::Arc::new(Capture::new(10));
        c.start_take(UNKNOWN_TIME);
        let w = c.clone();
        let writer = std::thread::spawn(move || {
            let mut n = 0usize;
            while n < 200_000 {
                let data = ramp(n, 37);
                w.write_block(&[&data]);
                n += 37;
            }
        });
        let mut checked = 0;
        while !writer.is_finished() || checked == 0 {
            let s = c.snapshot();
            assert!(s.audio.len() <= 300);
            for pair in s.audio.windows(2) {
                assert_eq!(pair[1], pair[0] + 1.0, "torn window");
            }
            checked += 1;
        }
        writer.join().unwrap();
    }
}
