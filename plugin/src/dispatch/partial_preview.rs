//! The clip being generated, handed to the audio thread as it grows, so the preview starts
//! long before the job ends (dispatcher side; the worker sends the pieces, see
//! `worker::partial`, only for jobs whose settings ask for the preview).
//!
//! Nothing is converted here: the pieces come at the host rate (`worker::host_rate` converted
//! them) and are only copied into a growing prefix; a piece at another rate than the prefix's
//! starts it over.
//!
//! Each piece the worker sends makes a new `Box<PlayableClip>` holding the whole prefix so
//! far, flagged `continues` (the player keeps its position) after the first and `growing`
//! (in "Play now" the player waits at the end instead of running past it). The audio thread
//! swaps boxes as it does for finished clips and the replaced ones go back to be freed here,
//! so nothing is allocated or freed on the audio thread. The finished clip is the same audio
//! (the pieces concatenate to it bit for bit), handed over with `continues` so the preview
//! does not restart when the job ends.

use crate::audio::playback::PlayableClip;
use melodygen_engine::wav::Audio;
use melodygen_engine::record::CaptureAnchor;

#[derive(Default)]
pub struct PartialPreview {
    /// The job whose pieces are collected (0: none).
    job: u64,
    anchor_seconds: Option<f64>,
    rate: u32,
    left: Vec<f32>,
    right: Vec<f32>,
    /// Whether a prefix of `job` went to the audio thread.
    delivered: bool,
    /// The next clip prepared for the audio thread continues the preview.
    continue_next: bool,
}

impl PartialPreview {
    /// Starts collecting the pieces of `job` (called when it is submitted).
    pub fn start(&mut self, job: u64, anchor: &CaptureAnchor) {
        *self = Self {
            job,
            anchor_seconds: anchor.seconds,
            ..Self::default()
        };
    }

    /// Adds a piece of `job` that begins at frame `start`; returns the prefix to hand to the
    /// audio thread, or `None` (another job's piece, an empty piece, or one out of order).
    /// A piece at frame 0 begins the clip again (the worker resends after a rate change).
    pub fn push(&mut self, job: u64, start: u64, audio: &Audio) -> Option<Box<PlayableClip>> {
        if job != self.job || job == 0 {
            return None;
        }
        if start == 0 {
            self.left.clear();
            self.right.clear();
            self.rate = audio.sample_rate;
        }
        if start as usize != self.left.len() || audio.sample_rate != self.rate {
            return None;
        }
        let ch = &audio.channels;
        let (Some(l), Some(r)) = (ch.first(), ch.get(1).or(ch.first())) else {
            return None;
        };
        if l.is_empty() {
            return None;
        }
        self.left.extend_from_slice(l);
        self.right.extend_from_slice(r);
        let continues = self.delivered;
        self.delivered = true;
        let mut prefix = PlayableClip::new(self.left.clone(), self.right.clone(), self.rate, self.anchor_seconds);
        prefix.continues = continues;
        prefix.growing = true;
        Some(prefix)
    }

    /// `job` finished: when its prefix was playing, the next prepared clip continues it.
    pub fn finished(&mut self, job: u64) {
        if job == self.job {
            self.continue_next = self.delivered;
            self.job = 0;
            self.left = Vec::new();
            self.right = Vec::new();
        }
    }

    /// Whether the clip now being prepared continues the preview (true once after a job whose
    /// prefix played).
    pub fn take_continue(&mut self) -> bool {
        std::mem::take(&mut self.continue_next)
    }
}

#[cfg(test)]
mod tests {
    use crate::audio::playback::{player, PreviewMode, TransportView};
    use super::*;

    fn tone(range: std::ops::Range<usize>) -> Vec<f32> {
        range.map(|i| ((i as f32) * 0.01).sin()).collect()
    }

    fn piece(range: std::ops::Range<usize>) -> Audio {
        Audio {
            sample_rate: 48_000,
            channels: vec![tone(range.clone()), tone(range).iter().map(|v| -v).collect()],
        }
    }

    /// Renders `blocks` blocks of `len` frames in "Play now" as process() does; returns the
    /// left channel heard.
    fn render(p: &mut crate::audio::playback::Player, blocks: usize, len: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for _ in 0..blocks {
            p.poll();
            match p.block_start(len, PreviewMode::PlayNow, TransportView::default(), 48_000, false) {
                Some(start) => out.extend((0..len).map(|i| p.frame(start + i as i64, false).0)),
                None => out.extend(std::iter::repeat_n(0.0, len)),
            }
        }
        out
    }

    /// The job's audio is heard while it generates (before Finished), a longer prefix does not
    /// restart it, playback waits at the end of what exists, and the finished clip carries on
    /// where the preview was: what is heard is the clip, in order, with silence only while
    /// waiting for more.
    #[test]
    fn a_growing_clip_plays_before_the_job_ends_and_the_clip_continues_it() {
        let (mut p, mut remote) = player();
        let mut preview = PartialPreview::default();
        preview.start(7, &CaptureAnchor::default());
        let total = 48_000;
        let mut heard = Vec::new();
        // Another job's piece is ignored.
        assert!(preview.push(6, 0, &piece(0..4_800)).is_none());
        // The worker's pieces: 0.1 s each, faster than real time at first, then slower.
        let mut at = 0;
        for (i, n) in [4_800usize, 4_800, 9_600, 2_400, 2_400, 4_800].into_iter().enumerate() {
            let clip = preview.push(7, at as u64, &piece(at..at + n)).expect("a prefix");
            assert_eq!((clip.continues, clip.growing, clip.frames()), (i > 0, true, at + n));
            at += n;
            remote.to_audio.push(clip).ok().unwrap();
            heard.extend(render(&mut p, 10, 512)); // 5120 frames per piece
            while remote.from_audio.pop().is_ok() {} // the dispatcher frees replaced boxes
        }
        let before_finished = heard.clone();
        assert!(before_finished.iter().any(|v| v.abs() > 0.1), "nothing heard before Finished");
        // The job finishes: the whole clip (the pieces plus the rest) continues the preview.
        preview.finished(7);
        assert!(preview.take_continue() && !preview.take_continue());
        let mut done = PlayableClip::from_clip(&crate::worker::clip::Clip {
            meta: melodygen_engine::record::ClipMeta {
                path: Default::default(),
                settings: Default::default(),
                model_dir: None,
                seconds: 1.0,
                sample_rate: 48_000,
                frames: total as u64,
                model_rate: 32_000,
                anchor: Default::default(),
                created: String::new(),
                melody: None,
            },
            audio: piece(0..total),
        });
        done.continues = true;
        remote.to_audio.push(done).ok().unwrap();
        heard.extend(render(&mut p, 80, 512));
        // Dropping the silent waits, the sound is the clip from its first frame, in order.
        let sound: Vec<f32> = heard.iter().copied().filter(|v| *v != 0.0).collect();
        let expected: Vec<f32> = tone(0..total).into_iter().filter(|v| *v != 0.0).collect();
        assert_eq!(sound, expected, "the clip, from the start, nothing skipped or repeated");
        // The preview was sounding before Finished: the first pieces, 29 000 frames of them.
        let early = before_finished.iter().filter(|v| **v != 0.0).count();
        assert!(early >= 28_000, "{early} frames heard before Finished");
    }

    /// A piece at frame 0 at another rate (the host rate changed) starts the prefix over; out
    /// of order pieces are refused.
    #[test]
    fn a_restart_replaces_the_prefix() {
        let mut preview = PartialPreview::default();
        preview.start(3, &CaptureAnchor { seconds: Some(1.0), ..Default::default() });
        let first = preview.push(3, 0, &piece(0..100)).unwrap();
        assert_eq!(first.anchor_samples, Some(48_000));
        assert!(preview.push(3, 50, &piece(50..60)).is_none(), "gap");
        let mut other = piece(0..80);
        other.sample_rate = 44_100;
        let again = preview.push(3, 0, &other).unwrap();
        assert_eq!((again.sample_rate, again.frames(), again.continues), (44_100, 80, true));
    }
}
