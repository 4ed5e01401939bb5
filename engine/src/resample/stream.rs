//! Clips that arrive in pieces: [`StreamResampler`], bit-identical to the one-shot result.

use rubato::Resampler as _;

use super::block::input_frames;
use super::{ResampleError, Resampler, CHUNK};

/// Resamples a clip that arrives in pieces (the worker's streaming preview), giving exactly the
/// samples [`Resampler::process`] gives for the whole clip: the same virtual input stream
/// (lead-in zeros, the clip, zeros) is cut into the same `CHUNK`-sized blocks, whatever the
/// sizes of the pieces, so piece boundaries cannot click and the pieces concatenated are
/// bit-identical to the one-shot result. Output lags the input by up to one block (128 ms at
/// 32 kHz) plus the filter's half-length; [`Self::finish`] flushes the rest.
pub struct StreamResampler {
    resampler: Resampler,
    /// Virtual-stream samples not yet handed to rubato (the lead-in zeros first).
    pending: Vec<Vec<f32>>,
    /// Outputs still to drop at the start.
    to_skip: usize,
    input_frames: usize,
    output_frames: usize,
    finished: bool,
}

impl StreamResampler {
    /// A streaming resampler from `from` Hz to `to` Hz for `channels` channels.
    pub fn new(from: u32, to: u32, channels: usize) -> Result<Self, ResampleError> {
        let mut resampler = Resampler::new(from, to, channels)?;
        let (pending, to_skip) = match resampler.inner.as_mut() {
            Some(inner) => {
                inner.sinc.reset();
                (vec![vec![0.0; inner.lead_in]; channels], inner.skip)
            }
            None => (vec![Vec::new(); channels], 0),
        };
        Ok(Self {
            resampler,
            pending,
            to_skip,
            input_frames: 0,
            output_frames: 0,
            finished: false,
        })
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.resampler.to
    }

    /// Input frames pushed so far.
    pub fn input_frames(&self) -> usize {
        self.input_frames
    }

    /// Appends `input[channel][frame]` and returns the output frames that became final.
    /// Pushing after [`Self::finish`] is an error.
    pub fn push<S: AsRef<[f32]>>(&mut self, input: &[S]) -> Result<Vec<Vec<f32>>, ResampleError> {
        let channels = self.resampler.channels;
        let len = input_frames(input, channels)?;
        if self.finished {
            return Err(ResampleError::Finished);
        }
        self.input_frames += len;
        if self.resampler.inner.is_none() {
            self.output_frames += len;
            return Ok(input.iter().map(|c| c.as_ref().to_vec()).collect());
        }
        for (p, i) in self.pending.iter_mut().zip(input) {
            p.extend_from_slice(i.as_ref());
        }
        let mut out = vec![Vec::new(); channels];
        while self.pending[0].len() >= CHUNK {
            self.block(&mut out, usize::MAX)?;
        }
        Ok(out)
    }

    /// Ends the input and returns the remaining output: in total exactly
    /// [`Resampler::output_len`] of all the input. Finishing twice returns nothing more.
    pub fn finish(&mut self) -> Result<Vec<Vec<f32>>, ResampleError> {
        let mut out = vec![Vec::new(); self.resampler.channels];
        if self.finished {
            return Ok(out);
        }
        self.finished = true;
        if self.resampler.inner.is_none() {
            return Ok(out);
        }
        let total = self.resampler.output_len(self.input_frames);
        debug_assert!(self.output_frames <= total, "streamed past the clip's end");
        while self.output_frames < total {
            self.block(&mut out, total)?;
        }
        Ok(out)
    }

    /// Hands one block (pending samples, zero-filled to [`CHUNK`]) to rubato and appends its
    /// outputs, skipping the start and stopping at `limit` output frames in total.
    fn block(&mut self, out: &mut [Vec<f32>], limit: usize) -> Result<(), ResampleError> {
        let (from, to) = (self.resampler.from, self.resampler.to);
        let inner = self.resampler.inner.as_mut().expect("not the identity");
        for (buf, p) in inner.in_buf.iter_mut().zip(self.pending.iter_mut()) {
            let n = p.len().min(CHUNK);
            buf[..n].copy_from_slice(&p[..n]);
            buf[n..].fill(0.0);
            p.drain(..n);
        }
        self.output_frames += inner.run_block((from, to), &mut self.to_skip, limit - self.output_frames, out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{resample, sine};
    use super::*;

    #[test]
    fn streamed_pieces_equal_the_one_shot_result_bit_for_bit() {
        for (from, to, channels) in [
            (32_000u32, 48_000u32, 2usize),
            (32_000, 44_100, 2),
            (32_000, 47_999, 1),
            (32_000, 32_000, 2),
            (48_000, 32_000, 1),
        ] {
            for len in [0usize, 1, 100, 4095, 4096, 4097, 20_000] {
                let input: Vec<Vec<f32>> = (0..channels)
                    .map(|c| sine(from, 440.0 + 110.0 * c as f64, len, 3.0))
                    .collect();
                let whole = resample(&input, from, to).unwrap();
                let mut s = StreamResampler::new(from, to, channels).unwrap();
                let mut got = vec![Vec::new(); channels];
                let mut at = 0;
                for n in [1usize, 700, 3, 5000, 12_345].iter().cycle() {
                    if at >= len {
                        break;
                    }
                    let n = (*n).min(len - at);
                    let piece: Vec<&[f32]> = input.iter().map(|c| &c[at..at + n]).collect();
                    at += n;
                    for (g, o) in got.iter_mut().zip(s.push(&piece).unwrap()) {
                        g.extend(o);
                    }
                }
                for (g, o) in got.iter_mut().zip(s.finish().unwrap()) {
                    g.extend(o);
                }
                assert_eq!(got, whole, "{from}→{to}, {channels} ch, {len} frames");
                assert!(matches!(s.push(&input), Err(ResampleError::Finished)));
            }
        }
    }
}
