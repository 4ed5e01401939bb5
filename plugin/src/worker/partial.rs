//! Partial audio of the running job: pieces of the clip, converted to the instance's host rate
//! as they come from the engine (by [`host_rate::Stream`], the one owner of that conversion) and
//! sent as [`WorkerToInstance::Partial`], so the preview can start long before the job ends.
//!
//! Only made while the job's settings ask for the preview
//! (`GenerationParams::preview_while_generating`); otherwise nothing is streamed and the
//! finished clip is converted once.
//!
//! The host rate is read for every piece; when it changed, the stream starts over at the new
//! rate and the pieces are resent from frame 0. The pieces join without clicks and concatenate
//! to the finished clip bit for bit, and [`PartialSender::finish`] returns that clip, so the job
//! does not convert the whole clip a second time.

use super::host_rate::{self, Converted};
use super::job::{Job, WorkerToInstance};
use melodygen_engine::wav::Audio;
use std::sync::atomic::Ordering;

pub(super) struct PartialSender<'j> {
    job: &'j Job,
    stream: host_rate::Stream,
    /// Frames sent since the last (re)start, at the stream's rate.
    sent: u64,
    /// Whether the current sequence's start (frame 0) was sent.
    announced: bool,
    /// The first failure; the job reports it once generation returns.
    error: Option<String>,
}

impl<'j> PartialSender<'j> {
    pub fn new(job: &'j Job) -> Self {
        Self {
            job,
            stream: host_rate::Stream::default(),
            sent: 0,
            announced: false,
            error: None,
        }
    }

    /// Takes the next piece at the model rate and sends what it settles at the host rate.
    pub fn push(&mut self, piece: &Audio) {
        if self.error.is_some() {
            return;
        }
        let rate = self.job.host_rate.load(Ordering::Relaxed);
        match self.stream.push(piece, rate) {
            Ok(out) => self.send(out),
            Err(e) => self.error = Some(e),
        }
    }

    /// Sends the rest once generation is over and returns the whole clip as sent, stereo at the
    /// rate it was streamed at (`None` if nothing came). Returns the first failure, if any.
    pub fn finish(mut self) -> Result<Option<Audio>, String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let Some((tail, clip)) = std::mem::take(&mut self.stream).finish()? else {
            return Ok(None);
        };
        self.send(tail);
        Ok(Some(clip))
    }

    fn send(&mut self, out: Converted) {
        if out.restarted {
            self.sent = 0;
            self.announced = false;
        }
        let frames = out.channels.first().map_or(0, Vec::len) as u64;
        // A restart is sent even empty, so the instance drops the old rate's pieces at once.
        if frames == 0 && self.announced {
            return;
        }
        self.announced = true;
        // A send error means the instance is gone; the job still finishes and saves its clip.
        let _ = self.job.reply.send(WorkerToInstance::Partial {
            job: self.job.id,
            start: self.sent,
            audio: Audio {
                sample_rate: out.rate,
                channels: out.channels,
            },
        });
        self.sent += frames;
    }
}
