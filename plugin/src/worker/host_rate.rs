//! Conversion to the host rate: the one place in the plugin that resamples.
//!
//! A clip reaches the audio thread at the host rate by three paths: in pieces while its job runs
//! (the preview, [`Stream`]), whole when the job ends ([`convert_to_current`]), and whole again
//! from the dispatcher ([`convert`]) after a host rate change, for an audition or for a clip
//! reopened from its file. Why they share one owner: the paths must give the same samples. The
//! pieces concatenate to the finished clip bit for bit, so the preview neither clicks nor jumps
//! when the job ends; every conversion starts from the original (model-rate or file-rate) audio,
//! never from an earlier conversion. Nothing else in the plugin calls the engine's resampler.
//!
//! Not realtime-safe: everything here allocates. The worker thread and the dispatcher call it.

use super::clip::to_stereo;
use melodygen_engine::resample::StreamResampler;
use melodygen_engine::wav::Audio;
use std::sync::atomic::{AtomicU32, Ordering};

/// Converts every channel to `rate` with the engine's time-aligned, length-exact resampler
/// (delay trimmed, tail flushed). Audio already at `rate` is copied as it is.
pub fn convert(audio: &Audio, rate: u32) -> Result<Audio, String> {
    if audio.sample_rate == rate || audio.frames() == 0 {
        return Ok(Audio {
            sample_rate: rate,
            channels: audio.channels.clone(),
        });
    }
    let channels = melodygen_engine::resample::resample(&audio.channels, audio.sample_rate, rate)
        .map_err(|e| e.to_string())?;
    Ok(Audio {
        sample_rate: rate,
        channels,
    })
}

/// [`convert`] to the rate `host_rate` holds, redone until that rate is still current when the
/// conversion ends: the host may change its rate meanwhile.
pub fn convert_to_current(audio: &Audio, host_rate: &AtomicU32) -> Result<Audio, String> {
    loop {
        let rate = host_rate.load(Ordering::Relaxed);
        let out = convert(audio, rate)?;
        if host_rate.load(Ordering::Relaxed) == rate {
            return Ok(out);
        }
    }
}

/// The host position, in frames at `rate`, of a sample `seconds` into the host timeline (where
/// a clip's first sample plays in "Follow transport").
pub fn anchor_frames(seconds: Option<f64>, rate: u32) -> Option<i64> {
    seconds.map(|s| (s * rate as f64).round() as i64)
}

/// What one [`Stream::push`] settled at the host rate.
pub struct Converted {
    pub rate: u32,
    /// The rate changed: these frames begin the clip again (frame 0) at `rate`, the conversion
    /// of everything pushed so far.
    pub restarted: bool,
    /// Stereo, following what the previous push settled (or from frame 0 when `restarted`).
    pub channels: Vec<Vec<f32>>,
}

/// A clip converted while it is generated, piece by piece, with [`StreamResampler`], which gives
/// exactly the samples [`convert`] gives for the whole clip. Keeps the model-rate audio so that a
/// host rate change starts over from the original at the new rate, and the converted audio so
/// that the finished clip need not be converted a second time.
#[derive(Default)]
pub struct Stream {
    /// Everything pushed so far, stereo at the model rate.
    model_audio: Vec<Vec<f32>>,
    model_rate: u32,
    resampler: Option<StreamResampler>,
    /// Everything settled since the last (re)start, stereo at the resampler's rate.
    host_audio: Vec<Vec<f32>>,
}

impl Stream {
    /// Takes the next piece (model rate, any channel count) and returns what it settles at
    /// `rate`, the host rate now.
    pub fn push(&mut self, piece: &Audio, rate: u32) -> Result<Converted, String> {
        let piece = to_stereo(piece.clone());
        if self.model_rate == 0 {
            self.model_rate = piece.sample_rate;
            self.model_audio = vec![Vec::new(), Vec::new()];
        } else if piece.sample_rate != self.model_rate {
            return Err(format!(
                "the engine changed its rate mid-clip ({} Hz, then {} Hz)",
                self.model_rate, piece.sample_rate
            ));
        }
        for (all, new) in self.model_audio.iter_mut().zip(&piece.channels) {
            all.extend_from_slice(new);
        }
        let (restarted, channels) = match self.resampler.as_mut() {
            Some(r) if r.to_rate() == rate => (false, r.push(&piece.channels)),
            _ => {
                // First piece, or the host rate changed: start over at the new rate.
                let mut r = StreamResampler::new(self.model_rate, rate, 2).map_err(|e| e.to_string())?;
                self.host_audio = vec![Vec::new(), Vec::new()];
                let out = r.push(&self.model_audio);
                self.resampler = Some(r);
                (true, out)
            }
        };
        let channels = channels.map_err(|e| e.to_string())?;
        self.keep(&channels);
        Ok(Converted { rate, restarted, channels })
    }

    /// Flushes the resampler once the engine is done: returns the last frames and the whole
    /// clip at the rate it was streamed at, or `None` if nothing was pushed.
    pub fn finish(mut self) -> Result<Option<(Converted, Audio)>, String> {
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(None);
        };
        let rate = resampler.to_rate();
        let channels = resampler.finish().map_err(|e| e.to_string())?;
        self.keep(&channels);
        let clip = Audio {
            sample_rate: rate,
            channels: self.host_audio,
        };
        Ok(Some((Converted { rate, restarted: false, channels }, clip)))
    }

    fn keep(&mut self, channels: &[Vec<f32>]) {
        for (all, new) in self.host_audio.iter_mut().zip(channels) {
            all.extend_from_slice(new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin())
            .collect()
    }

    #[test]
    fn resampling_keeps_length_timing_and_frequency() {
        let src = Audio {
            sample_rate: 32_000,
            channels: vec![sine(32_000, 440.0, 1.0)],
        };
        for rate in [44_100u32, 48_000] {
            let out = convert(&src, rate).unwrap();
            assert_eq!(out.frames(), rate as usize, "length at {rate}");
            // Delay trimmed: compare with the ideal sine at the new rate, away from the edges
            // (where the resampler's window is cut off).
            let ideal = sine(rate, 440.0, 1.0);
            let n0 = rate as usize / 10;
            let err = out.channels[0][n0..out.frames() - n0]
                .iter()
                .zip(&ideal[n0..])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-3, "max error {err} at {rate}");
        }
    }

}
