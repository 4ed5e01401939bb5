//! Melody capture: the track's audio (mono, last [`CAPTURE_SECONDS`]) and its MIDI notes, written
//! by the audio thread into rings preallocated in `activate()`, read by the dispatcher without
//! locks.
//!
//! Both are rings: the audio ring holds the last 30 s, the note ring the last
//! [`NOTE_RING_EVENTS`] events, of which a snapshot keeps those inside the audio's window, so a
//! long take keeps the notes of its last 30 s (not its first 4096 events).
//!
//! Every slot is an atomic, so the reader never sees a torn sample and the writer never waits.
//! The writer (the audio thread, the only one) publishes each ring with a monotonic counter
//! (`written`, `notes_written`) and raises a `head` before touching slots; the reader copies the
//! window it wants, then re-reads the head and drops whatever the writer overwrote meanwhile
//! (seqlock style). A new take bumps `take`; a reader that sees it change while copying starts
//! over.

use melodygen_engine::record::CaptureAnchor;
use melodygen_engine::record::{Melody, Note};
use nice_plug::prelude::Enum;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

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
/// Note events (on + off) the note ring holds: over the 30 s window that is 546 events a second,
/// far more than any played line. A denser stream keeps its newest events.
pub const NOTE_RING_EVENTS: usize = 16_384;
/// Most samples the audio ring holds: 30 s at 768 kHz, the highest rate audio interfaces offer.
/// A host running faster gets a shorter window rather than a multi-gigabyte buffer.
pub const MAX_RING_SAMPLES: u64 = CAPTURE_SECONDS as u64 * 768_000;

/// Samples of the audio ring for `sample_rate`: 30 s of it, at least one (a host reporting a
/// rate of 0 Hz must not get an empty ring that every index divides by), at most
/// [`MAX_RING_SAMPLES`]. Realtime-safe (arithmetic); called by [`Capture::new`].
pub fn ring_samples(sample_rate: u32) -> usize {
    (u64::from(sample_rate) * u64::from(CAPTURE_SECONDS)).clamp(1, MAX_RING_SAMPLES) as usize
}

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
    /// bits 0-7 key, 8-15 velocity (0-127), 16 note-on. A note-off carries the velocity of the
    /// note-on it ends (0: the key was not held), so it can stand for a note whose note-on has
    /// left the ring.
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
    /// The note ring ([`NOTE_RING_EVENTS`] slots); event `n` is in slot `n % len`.
    notes: Box<[NoteSlot]>,
    /// Note events ever written (monotonic), like `written`.
    notes_written: AtomicU64,
    /// Like `head`, for the note ring: raised before a slot is rewritten.
    notes_head: AtomicU64,
    /// `notes_written` when the current take started.
    take_first_note: AtomicU64,
    /// Velocity (1-127) of each key's sounding note, 0: not held. The writer's own bookkeeping,
    /// kept across takes since a key held into a new take is still held.
    held: [AtomicU8; 128],
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
    /// Allocates the buffers for `sample_rate` (any rate, 0 included: see [`ring_samples`]). Not
    /// realtime-safe: allocates; called from `activate()` on the host's main thread.
    pub fn new(sample_rate: u32) -> Self {
        let len = ring_samples(sample_rate);
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
            notes: (0..NOTE_RING_EVENTS)
                .map(|_| NoteSlot {
                    pos: AtomicU64::new(0),
                    packed: AtomicU32::new(0),
                })
                .collect(),
            notes_written: AtomicU64::new(0),
            notes_head: AtomicU64::new(0),
            take_first_note: AtomicU64::new(0),
            held: std::array::from_fn(|_| AtomicU8::new(0)),
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
        self.take_first_note
            .store(self.notes_written.load(Ordering::Relaxed), Ordering::Relaxed);
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

    /// Appends one block of audio, mixed to mono from `channels` (frames beyond the shortest
    /// channel are ignored). Writer only. Realtime-safe: atomic stores into the preallocated ring.
    pub fn write_block<C: AsRef<[f32]>>(&self, channels: &[C]) {
        let Some(frames) = channels.iter().map(|c| c.as_ref().len()).min() else {
            return;
        };
        let len = self.ring.len() as u64;
        let start = self.written.load(Ordering::Relaxed);
        let scale = 1.0 / channels.len() as f32;
        self.head.store(start + frames as u64, Ordering::Relaxed);
        fence(Ordering::Release);
        for i in 0..frames {
            let mono = channels.iter().map(|c| c.as_ref()[i]).sum::<f32>() * scale;
            self.ring[((start + i as u64) % len) as usize].store(mono.to_bits(), Ordering::Relaxed);
        }
        self.written.store(start + frames as u64, Ordering::Release);
    }

    /// Records a note-on (`on`; one of velocity 0 is a note-off) or note-off at `offset` samples
    /// into the block that the next [`Capture::write_block`] call will append. Writer only.
    /// Realtime-safe: atomic stores into the preallocated ring, which overwrites its oldest
    /// event when full.
    pub fn note(&self, offset: u32, key: u8, velocity: f32, on: bool) {
        let key = key & 0x7f;
        let vel = (velocity.clamp(0.0, 1.0) * 127.0).round() as u8;
        let held = &self.held[key as usize];
        let (on, vel) = if on && vel > 0 {
            held.store(vel, Ordering::Relaxed);
            (true, vel)
        } else {
            // The off carries its note's velocity (0 if the key was not held).
            (false, held.swap(0, Ordering::Relaxed))
        };
        let n = self.notes_written.load(Ordering::Relaxed);
        self.notes_head.store(n + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let slot = &self.notes[(n % self.notes.len() as u64) as usize];
        slot.pos.store(
            self.written.load(Ordering::Relaxed) + offset as u64,
            Ordering::Relaxed,
        );
        slot.packed.store(
            u32::from(key) | u32::from(vel) << 8 | u32::from(on) << 16,
            Ordering::Relaxed,
        );
        self.notes_written.store(n + 1, Ordering::Release);
    }

    /// The note events of the current take still in the ring, oldest first, as
    /// `(position, packed)`. Not realtime-safe: allocates; called by [`Capture::snapshot`] on
    /// the dispatcher thread, which checks the take afterwards.
    fn note_events(&self) -> Vec<(u64, u32)> {
        let len = self.notes.len() as u64;
        let end = self.notes_written.load(Ordering::Acquire);
        let start = self
            .take_first_note
            .load(Ordering::Relaxed)
            .max(end.saturating_sub(len));
        let mut events: Vec<(u64, u32)> = (start..end)
            .map(|i| {
                let slot = &self.notes[(i % len) as usize];
                (slot.pos.load(Ordering::Relaxed), slot.packed.load(Ordering::Relaxed))
            })
            .collect();
        // Events the writer overwrote (or was overwriting) while we copied: drop them.
        fence(Ordering::Acquire);
        let overwritten = self
            .notes_head
            .load(Ordering::Relaxed)
            .saturating_sub(len)
            .saturating_sub(start);
        events.drain(..overwritten.min(events.len() as u64) as usize);
        events
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
            let events = self.note_events();
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
        let dt = offset as f64 / self.sample_rate.max(1) as f64;
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
/// relative to `start`. A note still held at the end lasts to the end; a note-off whose note-on
/// is not among `events` (it left the ring, or came before the take) ends a note that starts at
/// the window's start, with the velocity the off carries. Not realtime-safe: allocates; called
/// by [`Capture::snapshot`] on the dispatcher thread.
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
        } else if !is_on && vel > 0.0 {
            close(&mut notes, key, (start, vel), pos);
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
mod tests;
