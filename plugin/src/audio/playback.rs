//! Clip preview on the audio thread.
//!
//! Finished clips arrive from the dispatcher over an rtrb ring as `Box<PlayableClip>`; the clip
//! they replace goes back over a second ring to be freed off the audio thread. If that ring is
//! full the old clip is parked (not dropped) and no new clip is taken until it has gone back.
//!
//! The GUI steers and watches playback through [`PlayState`], atomics shared with the audio
//! thread: Play / Stop / seek requests in, the playhead and the id of the clip now held out. No
//! lock and no allocation on either side, so the editor can poll it every frame.

use crate::worker::clip::Clip;
use crate::worker::host_rate;
use nice_plug::prelude::Enum;
use rtrb::{Consumer, Producer, RingBuffer};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Clips in flight towards the audio thread (the dispatcher sends one per finished job).
pub const CLIPS_TO_AUDIO_CAPACITY: usize = 4;
/// Replaced clips in flight back from the audio thread.
pub const CLIPS_FROM_AUDIO_CAPACITY: usize = 8;

/// How the clip is previewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PreviewMode {
    /// Silent.
    #[name = "Off"]
    Off,
    /// From its start as soon as it arrives.
    #[name = "Play now"]
    PlayNow,
    /// Locked to the host's playhead, its first sample at the capture start, so it plays against
    /// the track it was made from. Hosts that report no transport get "Play now".
    #[name = "Follow transport"]
    FollowTransport,
}

/// A clip as the audio thread plays it: stereo at the host rate.
pub struct PlayableClip {
    pub left: Vec<f32>,
    pub right: Vec<f32>,
    pub sample_rate: u32,
    /// Host position (samples at `sample_rate`) of the clip's first sample, when known.
    pub anchor_samples: Option<i64>,
    /// Which clip this is, as the dispatcher numbered it (published in [`PlayState::clip_id`]
    /// so the editor knows what is sounding). 0: not numbered.
    pub id: u64,
    /// An audition of a library clip: played from its start at once whatever the "Preview"
    /// mode, and taking it un-stops playback (the user pressed its Play).
    pub audition: bool,
    /// A longer version of the clip now held (the next prefix of a clip being generated, or
    /// the finished clip after its prefixes): taking it keeps the play position.
    pub continues: bool,
    /// More of this clip is being generated: in "Play now" the position waits at its end for
    /// the next prefix instead of running past it.
    pub growing: bool,
}

impl PlayableClip {
    /// A clip of `left` and `right` at `sample_rate` (the host rate), its first sample at
    /// `anchor_seconds` on the host timeline; not numbered, no flags. Not realtime-safe
    /// (allocates the box): called from the dispatcher thread.
    pub fn new(left: Vec<f32>, right: Vec<f32>, sample_rate: u32, anchor_seconds: Option<f64>) -> Box<Self> {
        Box::new(Self {
            left,
            right,
            sample_rate,
            anchor_samples: host_rate::anchor_frames(anchor_seconds, sample_rate),
            id: 0,
            audition: false,
            continues: false,
            growing: false,
        })
    }

    /// [`Self::new`] with a copy of `clip`, which must be at the host rate already
    /// (`worker::host_rate` converts it). Not realtime-safe (allocates): called from the
    /// dispatcher thread.
    pub fn from_clip(clip: &Clip) -> Box<Self> {
        let ch = &clip.audio.channels;
        Self::new(
            ch.first().cloned().unwrap_or_default(),
            ch.get(1).or(ch.first()).cloned().unwrap_or_default(),
            clip.audio.sample_rate,
            clip.meta.anchor.seconds,
        )
    }

    /// Length in frames: the frames both channels have (a clip whose channels differ in length
    /// plays the shorter, never reads past either). Realtime-safe.
    pub fn frames(&self) -> usize {
        self.left.len().min(self.right.len())
    }
}

/// What the player needs of the host's transport in this block. Not the same data as the
/// `CaptureAnchor` the capture records: the player locks to the position in samples and must know
/// whether the host reports a transport at all; the anchor is the musical position (seconds,
/// beats, bar, tempo) saved with a clip.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransportView {
    pub playing: bool,
    pub pos_samples: Option<i64>,
    /// False when the host reports neither a position nor a tempo (e.g. an offline renderer).
    pub reported: bool,
}

/// Playback as the GUI sees and steers it. Written and read with atomics only: the audio thread
/// publishes the playhead and the clip it holds; the GUI raises Play / Stop / seek.
#[derive(Debug)]
pub struct PlayState {
    /// Clip frame (at the host rate) sounding at the start of the last block; -1: silent.
    playhead: AtomicI64,
    /// [`PlayableClip::id`] of the clip the audio thread holds (0: none).
    clip_id: AtomicU64,
    /// Length in frames of that clip.
    clip_frames: AtomicU64,
    /// Set by Stop: silence until Play (or an audition) clears it. Not a parameter: it is the
    /// editor's transport button, while "Preview" stays the automatable mode.
    stopped: AtomicBool,
    /// Target of the last seek request (frames) and how many were raised, so the audio thread
    /// takes each one once.
    seek_to: AtomicI64,
    seek_requests: AtomicU64,
}

impl Default for PlayState {
    /// Realtime-safe (no allocation), though only [`player`] makes one.
    fn default() -> Self {
        Self {
            playhead: AtomicI64::new(-1),
            clip_id: AtomicU64::new(0),
            clip_frames: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            seek_to: AtomicI64::new(0),
            seek_requests: AtomicU64::new(0),
        }
    }
}

impl PlayState {
    /// The frame now sounding, `None` when silent (stopped, no clip, before or after it).
    /// Realtime-safe (one atomic load); the editor calls it from the GUI thread.
    pub fn playhead(&self) -> Option<u64> {
        u64::try_from(self.playhead.load(Ordering::Relaxed)).ok()
    }

    /// The id of the clip the audio thread holds (0: none yet). Realtime-safe (one atomic
    /// load); called from the GUI thread.
    pub fn clip_id(&self) -> u64 {
        self.clip_id.load(Ordering::Acquire)
    }

    /// Frames of the clip the audio thread holds. Realtime-safe (one atomic load); called
    /// from the GUI thread.
    pub fn clip_frames(&self) -> u64 {
        self.clip_frames.load(Ordering::Relaxed)
    }

    /// Whether Stop is in force. Realtime-safe (one atomic load); called from the GUI thread.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Play: un-stop and (in play-now mode) start from the clip's beginning. Realtime-safe
    /// (atomic stores); called from the GUI thread.
    pub fn play(&self) {
        self.seek(0);
        self.stopped.store(false, Ordering::Relaxed);
    }

    /// Stop: silence until [`Self::play`] or an audition. Realtime-safe (one atomic store);
    /// called from the GUI thread.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Moves the play-now position to `frame` (in follow-transport mode the host's playhead
    /// decides, so a seek only applies to play-now and auditions). Realtime-safe (atomic
    /// stores); called from the GUI thread.
    pub fn seek(&self, frame: u64) {
        self.seek_to.store(frame.min(i64::MAX as u64) as i64, Ordering::Relaxed);
        self.seek_requests.fetch_add(1, Ordering::Release);
    }
}

/// The audio thread's end.
pub struct Player {
    current: Option<Box<PlayableClip>>,
    /// A replaced clip waiting for room in the return ring.
    parked: Option<Box<PlayableClip>>,
    /// Play-now position in frames.
    pos: i64,
    incoming: Consumer<Box<PlayableClip>>,
    outgoing: Producer<Box<PlayableClip>>,
    state: Arc<PlayState>,
    /// `state.seek_requests` already applied.
    seen_seek: u64,
}

/// The dispatcher's end.
pub struct PlayerRemote {
    pub to_audio: Producer<Box<PlayableClip>>,
    pub from_audio: Consumer<Box<PlayableClip>>,
    /// The same [`PlayState`] the player publishes to (hand it to the editor).
    pub state: Arc<PlayState>,
}

/// Makes the two ends. Not realtime-safe: allocates the rings; called when the plugin is
/// constructed, on the host's main thread.
pub fn player() -> (Player, PlayerRemote) {
    let (to_audio, incoming) = RingBuffer::new(CLIPS_TO_AUDIO_CAPACITY);
    let (outgoing, from_audio) = RingBuffer::new(CLIPS_FROM_AUDIO_CAPACITY);
    let state = Arc::new(PlayState::default());
    (
        Player {
            current: None,
            parked: None,
            pos: 0,
            incoming,
            outgoing,
            state: state.clone(),
            seen_seek: 0,
        },
        PlayerRemote {
            to_audio,
            from_audio,
            state,
        },
    )
}

impl Player {
    /// Takes the newest clip, if one arrived, and sends the old one back; applies a seek the
    /// GUI asked for. Realtime-safe: ring pops and pushes and atomics only, nothing is freed
    /// here.
    pub fn poll(&mut self) {
        let seeks = self.state.seek_requests.load(Ordering::Acquire);
        if seeks != self.seen_seek {
            self.seen_seek = seeks;
            self.pos = self.state.seek_to.load(Ordering::Relaxed);
        }
        if let Some(old) = self.parked.take() {
            if let Err(rtrb::PushError::Full(old)) = self.outgoing.push(old) {
                self.parked = Some(old);
                return;
            }
        }
        while let Ok(new) = self.incoming.pop() {
            if !new.continues {
                self.pos = 0;
            }
            if new.audition {
                self.state.stopped.store(false, Ordering::Relaxed);
            }
            self.state.clip_frames.store(new.frames() as u64, Ordering::Relaxed);
            self.state.clip_id.store(new.id, Ordering::Release);
            if let Some(old) = self.current.replace(new) {
                if let Err(rtrb::PushError::Full(old)) = self.outgoing.push(old) {
                    self.parked = Some(old);
                    return;
                }
            }
        }
    }

    /// Clip frame index that plays at the first sample of a block of `len` frames, or `None`
    /// for silence; advances the play-now position and publishes the playhead (wrapped when
    /// `looping`). Realtime-safe.
    pub fn block_start(
        &mut self,
        len: usize,
        mode: PreviewMode,
        t: TransportView,
        host_rate: u32,
        looping: bool,
    ) -> Option<i64> {
        let start = self.start_of_block(len, mode, t, host_rate);
        let n = self.current.as_ref().map_or(0, |c| c.frames() as i64);
        let head = match start {
            Some(i) if n > 0 && looping => i.rem_euclid(n),
            Some(i) if (0..n).contains(&i) => i,
            _ => -1,
        };
        self.state.playhead.store(head, Ordering::Relaxed);
        start
    }

    /// [`Self::block_start`] without publishing. Realtime-safe.
    fn start_of_block(
        &mut self,
        len: usize,
        mode: PreviewMode,
        t: TransportView,
        host_rate: u32,
    ) -> Option<i64> {
        let clip = self.current.as_ref()?;
        if clip.sample_rate != host_rate || self.state.stopped.load(Ordering::Relaxed) {
            // A clip of another rate is being converted by the dispatcher: never play at the
            // wrong speed. Stopped: silence until Play.
            return None;
        }
        // An audition is the user asking to hear that clip now.
        let mode = if clip.audition { PreviewMode::PlayNow } else { mode };
        let follow = mode == PreviewMode::FollowTransport && t.reported;
        match mode {
            PreviewMode::Off => None,
            _ if follow => match (t.playing, t.pos_samples, clip.anchor_samples) {
                (true, Some(pos), Some(anchor)) => Some(pos - anchor),
                _ => None,
            },
            _ => {
                let start = self.pos;
                if clip.growing {
                    // Wait at the end of what exists so far; nothing is skipped.
                    let n = clip.frames() as i64;
                    if start >= n {
                        return None;
                    }
                    self.pos = (start + len as i64).min(n);
                } else {
                    self.pos += len as i64;
                }
                Some(start)
            }
        }
    }

    /// The clip's frame at `index` (0 outside the clip unless looping; the clip is
    /// [`PlayableClip::frames`] long, so no index reads past a channel). Realtime-safe.
    #[inline]
    pub fn frame(&self, index: i64, looping: bool) -> (f32, f32) {
        let Some(clip) = self.current.as_ref() else {
            return (0.0, 0.0);
        };
        let n = clip.frames() as i64;
        if n == 0 {
            return (0.0, 0.0);
        }
        let i = if looping { index.rem_euclid(n) } else { index };
        if (0..n).contains(&i) {
            (clip.left[i as usize], clip.right[i as usize])
        } else {
            (0.0, 0.0)
        }
    }
}

#[cfg(test)]
mod tests;
