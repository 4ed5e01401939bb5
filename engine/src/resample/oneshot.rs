//! Whole clips in one call: [`Resampler`], reusable for a fixed rate pair.

use rubato::Resampler as _;

use super::block::{input_frames, Inner};
use super::{ResampleError, CHUNK};

/// A reusable whole-clip resampler for a fixed rate pair and channel count.
///
/// Construction plans the sinc table and allocates rubato's buffers; [`Self::process_into`]
/// then allocates nothing when the output vectors already have the capacity. It is meant for
/// the worker thread and the CLI, not the audio thread: a 30 s clip takes tens of milliseconds.
pub struct Resampler {
    pub(super) from: u32,
    pub(super) to: u32,
    pub(super) channels: usize,
    /// `None` when `from == to` (identity: a copy).
    pub(super) inner: Option<Inner>,
}

impl Resampler {
    /// Makes a resampler from `from` Hz to `to` Hz for `channels` channels.
    pub fn new(from: u32, to: u32, channels: usize) -> Result<Self, ResampleError> {
        if from == 0 || to == 0 {
            return Err(ResampleError::ZeroRate { from, to });
        }
        if channels == 0 {
            return Err(ResampleError::NoChannels);
        }
        if from == to {
            return Ok(Self {
                from,
                to,
                channels,
                inner: None,
            });
        }
        Ok(Self {
            from,
            to,
            channels,
            inner: Some(Inner::new(from, to, channels)?),
        })
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Channels it was made for.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Output frames for `input_len` input frames: `round(input_len · to / from)`.
    pub fn output_len(&self, input_len: usize) -> usize {
        let (from, to) = (u128::from(self.from), u128::from(self.to));
        ((input_len as u128 * to + from / 2) / from) as usize
    }

    /// Resamples a whole clip (`input[channel][frame]`) into `output`, which is resized to
    /// [`Self::output_len`] frames per channel (no allocation if its capacity suffices).
    pub fn process_into<S: AsRef<[f32]>>(
        &mut self,
        input: &[S],
        output: &mut [Vec<f32>],
    ) -> Result<(), ResampleError> {
        let len = input_frames(input, self.channels)?;
        if output.len() != self.channels {
            return Err(ResampleError::ChannelCount {
                expected: self.channels,
                got: output.len(),
            });
        }
        let out_len = self.output_len(len);
        for ch in output.iter_mut() {
            ch.clear();
        }
        let (from, to) = (self.from, self.to);
        let Some(inner) = self.inner.as_mut() else {
            for (o, i) in output.iter_mut().zip(input) {
                o.extend_from_slice(i.as_ref());
            }
            return Ok(());
        };
        inner.sinc.reset();
        // The virtual input stream: `lead_in` zeros, the clip, then zeros until enough output.
        let mut pos = 0usize; // position in the virtual stream
        let mut to_skip = inner.skip;
        while output[0].len() < out_len {
            for (buf, src) in inner.in_buf.iter_mut().zip(input) {
                let src = src.as_ref();
                for (i, d) in buf.iter_mut().enumerate() {
                    let v = pos + i;
                    *d = if v >= inner.lead_in && v - inner.lead_in < len {
                        src[v - inner.lead_in]
                    } else {
                        0.0
                    };
                }
            }
            pos += CHUNK;
            let room = out_len - output[0].len();
            inner.run_block((from, to), &mut to_skip, room, output)?;
        }
        Ok(())
    }

    /// Allocating convenience wrapper around [`Self::process_into`].
    pub fn process<S: AsRef<[f32]>>(
        &mut self,
        input: &[S],
    ) -> Result<Vec<Vec<f32>>, ResampleError> {
        let cap = input
            .first()
            .map_or(0, |c| self.output_len(c.as_ref().len()));
        let mut out = vec![Vec::with_capacity(cap); self.channels];
        self.process_into(input, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{resample, sine};
    use super::*;

    #[test]
    fn output_length_is_rounded_exactly() {
        let r = Resampler::new(44_100, 32_000, 1).unwrap();
        assert_eq!(r.output_len(44_100), 32_000);
        assert_eq!(r.output_len(1), 1); // 0.7256 rounds to 1
        assert_eq!(r.output_len(0), 0);
        let r = Resampler::new(32_000, 48_000, 2).unwrap();
        assert_eq!(r.output_len(960_000), 1_440_000);
        assert_eq!(r.output_len(3), 5); // 4.5 rounds half up
        for (from, to, len) in [
            (48_000, 32_000, 12_345),
            (32_000, 44_100, 777),
            (96_000, 32_000, 10_000),
        ] {
            let mut r = Resampler::new(from, to, 1).unwrap();
            let out = r.process(&[vec![0.1f32; len]]).unwrap();
            assert_eq!(
                out[0].len(),
                ((len as f64) * f64::from(to) / f64::from(from)).round() as usize
            );
        }
    }

    #[test]
    fn identity_is_a_copy() {
        let x = vec![vec![0.5f32, -0.25, 1.0], vec![0.0, 0.125, -1.0]];
        assert_eq!(resample(&x, 48_000, 48_000).unwrap(), x);
    }

    /// A 1 kHz sine resampled 32k → 48k (and the other common pairs) matches the sine generated
    /// analytically at the target rate, away from the edges: amplitude, phase and alignment.
    #[test]
    fn sine_matches_the_analytic_sine_at_the_target_rate() {
        for (from, to) in [
            (32_000u32, 48_000u32),
            (32_000, 44_100),
            (44_100, 32_000),
            (48_000, 32_000),
            (32_000, 96_000),
            (22_050, 32_000),
            (32_000, 47_999),
        ] {
            let secs = 0.5;
            let x = sine(from, 1000.0, (secs * f64::from(from)) as usize, 0.0);
            let y = resample(&[x], from, to).unwrap().remove(0);
            let expected = sine(to, 1000.0, y.len(), 0.0);
            let edge = (0.02 * f64::from(to)) as usize;
            let err = y[edge..y.len() - edge]
                .iter()
                .zip(&expected[edge..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // Measured: ≤ 1.5e-5 for every pair, the cubic fallback (47 999 Hz) included.
            let tol = 1e-4;
            eprintln!("{from}→{to}: max error {err:.2e} (tolerance {tol})");
            assert!(err < tol, "{from}→{to}: max error {err}");
        }
    }

    /// An impulse at input sample n lands at output n·to/from with the DC gain preserved, in
    /// every channel, including one near the very end (the tail is flushed).
    #[test]
    fn impulse_lands_where_it_should_in_every_channel() {
        for (from, to) in [
            (32_000u32, 48_000u32),
            (48_000, 32_000),
            (44_100, 32_000),
            (32_000, 44_100),
        ] {
            let len = 20_000;
            let positions = [3_000usize, 19_990];
            let input: Vec<Vec<f32>> = positions
                .iter()
                .map(|&p| {
                    let mut c = vec![0.0f32; len];
                    c[p] = 1.0;
                    c
                })
                .collect();
            let out = resample(&input, from, to).unwrap();
            let ratio = f64::from(to) / f64::from(from);
            for (ch, &p) in positions.iter().enumerate() {
                let y = &out[ch];
                let (peak, _) = y
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap();
                let expected = p as f64 * ratio;
                assert!(
                    (peak as f64 - expected).abs() <= 0.5 + 1e-9,
                    "{from}→{to} ch{ch}: peak at {peak}, expected {expected}"
                );
                // A unit impulse carries an area of 1 input sample = `ratio` output samples.
                if p == 3_000 {
                    let area: f32 = y.iter().sum();
                    assert!(
                        (f64::from(area) - ratio).abs() < 1e-3 * ratio,
                        "{from}→{to}: area {area}"
                    );
                }
            }
        }
    }

    /// A clip pushed in uneven pieces (single frames, odd sizes, more than a block at once)
    /// resamples to exactly the one-shot result, for every kind of ratio (exact phases,

    #[test]
    fn reuse_gives_identical_output_and_errors_are_typed() {
        let mut r = Resampler::new(44_100, 32_000, 2).unwrap();
        let x = vec![
            sine(44_100, 440.0, 5000, 0.0),
            sine(44_100, 660.0, 5000, 0.0),
        ];
        let first = r.process(&x).unwrap();
        let mut out = vec![Vec::new(), Vec::new()];
        r.process_into(&x, &mut out).unwrap();
        assert_eq!(first, out);
        assert!(matches!(
            r.process(&x[..1]),
            Err(ResampleError::ChannelCount {
                expected: 2,
                got: 1
            })
        ));
        let uneven = vec![vec![0.0f32; 10], vec![0.0; 11]];
        assert!(matches!(
            r.process(&uneven),
            Err(ResampleError::UnequalChannels { .. })
        ));
        assert!(matches!(
            Resampler::new(0, 32_000, 1),
            Err(ResampleError::ZeroRate { .. })
        ));
        assert!(matches!(
            Resampler::new(48_000, 32_000, 0),
            Err(ResampleError::NoChannels)
        ));
    }
}
