//! Partial audio of the running job: pieces of the clip, resampled to the instance's host rate
//! as they come from the engine and sent as [`WorkerToInstance::Partial`], so the preview can
//! start long before the job ends.
//!
//! The resampling is [`StreamResampler`], which gives exactly the samples the finished clip's
//! one-shot resampling gives, so the pieces join without clicks and concatenate to the final
//! clip bit for bit. The host rate is read for every piece; when it changed, the pieces so far
//! are resampled again from the model-rate audio kept here and resent from frame 0. What was
//! sent is kept too: it is the finished clip at the host rate, so the job does not resample the
//! whole clip a second time.

use super::clip;
use super::job::{Job, WorkerToInstance};
use melodygen_engine::resample::StreamResampler;
use melodygen_engine::wav::Audio;
use std::sync::atomic::Ordering;

pub(super) struct PartialSender<'j> {
    job: &'j Job,
    /// Everything received so far, stereo at the model rate.
    model_audio: Vec<Vec<f32>>,
    model_rate: u32,
    resampler: Option<StreamResampler>,
    /// Everything sent since the last (re)start, stereo at the resampler's rate.
    host_audio: Vec<Vec<f32>>,
    /// Frames sent at the resampler's rate.
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
            model_audio: vec![Vec::new(), Vec::new()],
            model_rate: 0,
            resampler: None,
            host_audio: vec![Vec::new(), Vec::new()],
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
        if let Err(e) = self.try_push(piece) {
            self.error = Some(e);
        }
    }

    /// Sends the rest once generation is over and returns the whole clip as sent, stereo at the
    /// rate it was streamed at (`None` if nothing came). Returns the first failure, if any.
    pub fn finish(mut self) -> Result<Option<Audio>, String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(None);
        };
        let rate = resampler.to_rate();
        let out = resampler.finish().map_err(|e| e.to_string())?;
        self.send(rate, out);
        Ok(Some(Audio {
            sample_rate: rate,
            channels: self.host_audio,
        }))
    }

    fn try_push(&mut self, piece: &Audio) -> Result<(), String> {
        let piece = clip::to_stereo(piece.clone());
        if self.model_rate == 0 {
            self.model_rate = piece.sample_rate;
        } else if piece.sample_rate != self.model_rate {
            return Err(format!(
                "the engine changed its rate mid-clip ({} Hz, then {} Hz)",
                self.model_rate, piece.sample_rate
            ));
        }
        for (all, new) in self.model_audio.iter_mut().zip(&piece.channels) {
            all.extend_from_slice(new);
        }
        let rate = self.job.host_rate.load(Ordering::Relaxed);
        let out = match self.resampler.as_mut() {
            Some(r) if r.to_rate() == rate => r.push(&piece.channels),
            _ => {
                // First piece, or the host rate changed: start over at the new rate.
                let mut r = StreamResampler::new(self.model_rate, rate, 2).map_err(|e| e.to_string())?;
                self.sent = 0;
                self.announced = false;
                self.host_audio.iter_mut().for_each(Vec::clear);
                let out = r.push(&self.model_audio);
                self.resampler = Some(r);
                out
            }
        }
        .map_err(|e| e.to_string())?;
        self.send(rate, out);
        Ok(())
    }

    fn send(&mut self, rate: u32, channels: Vec<Vec<f32>>) {
        let frames = channels.first().map_or(0, Vec::len) as u64;
        // A restart is sent even empty, so the instance drops the old rate's pieces at once.
        if frames == 0 && self.announced {
            return;
        }
        self.announced = true;
        for (all, new) in self.host_audio.iter_mut().zip(&channels) {
            all.extend_from_slice(new);
        }
        // A send error means the instance is gone; the job still finishes and saves its clip.
        let _ = self.job.reply.send(WorkerToInstance::Partial {
            job: self.job.id,
            start: self.sent,
            audio: Audio {
                sample_rate: rate,
                channels,
            },
        });
        self.sent += frames;
    }
}
