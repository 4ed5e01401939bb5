//! Sample-rate conversion (rubato) of whole clips and of clips that arrive in pieces, time-aligned
//! and length-exact.
//!
//! Used by the chroma (any host/file rate → 32 kHz) and by the plugin's worker (the model's
//! 32 kHz clip → the host rate). Both need the output to line up with the input sample for
//! sample: the output has exactly `round(len · to / from)` frames and output frame `j` is the
//! input at time `j · from / to`, with no filter delay and no missing tail.
//!
//! ## Quality choice
//! rubato's `SincFixedIn` with a 256-tap windowed sinc (Blackman-Harris², cutoff from rubato's
//! `calculate_cutoff` for that length ≈ 0.947 of the lower Nyquist): stop-band well below
//! −100 dB and a flat pass band to ~15 kHz at 32 kHz, ~21 kHz at 44.1 kHz. That is far more
//! than the chroma needs, and transparent for the audio the producer drags into the arrangement.
//!
//! Sample rates are integers, so the ratio is a fraction `b/a` in lowest terms and every output
//! lands on one of `b` sub-sample phases. With `b` ≤ [`MAX_EXACT_PHASES`] (every common rate
//! pair: 32k↔44.1k has 441 or 320 phases, 32k↔48k has 2 or 3) the sinc table is built with
//! exactly those phases and "nearest" lookup, so every output is an exact windowed-sinc
//! evaluation — cheaper than cubic interpolation between phases and more accurate (a 1 kHz sine
//! comes out within ~1e-5 of the analytic one). Other ratios fall back to 256 phases with cubic
//! interpolation (also ~1e-5 on that sine).
//!
//! ## Alignment
//! In rubato 0.16 output `k` of a fresh `SincFixedIn` is the input at time
//! `(k + 1)/r − 1 + 1/P` (`r` = to/from, `P` = phases); its `output_delay()` does not describe
//! this. We feed `lead_in` zeros first and drop the first `skip` outputs, chosen so that the
//! remaining outputs start at input time 0 exactly (to the sub-sample in the fallback case).
//! The tests below pin this with an impulse and a sine so that a rubato upgrade cannot silently
//! shift audio.

use rubato::{
    calculate_cutoff, Resampler as _, SincFixedIn, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

/// Windowed-sinc length in input samples (see the module doc for why).
pub const SINC_LEN: usize = 256;
/// Largest phase count for which the exact ("nearest phase") table is built (256 taps × 4096
/// phases × 4 bytes = 4 MiB).
pub const MAX_EXACT_PHASES: usize = 4096;
/// Input frames handed to rubato per call.
const CHUNK: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("sample rates must be positive (from {from} Hz to {to} Hz)")]
    ZeroRate { from: u32, to: u32 },
    #[error("a resampler needs at least one channel")]
    NoChannels,
    #[error("resampler was made for {expected} channel(s) but got {got}")]
    ChannelCount { expected: usize, got: usize },
    #[error("channels have different lengths ({first} and {other} frames)")]
    UnequalChannels { first: usize, other: usize },
    #[error("cannot build the {from} Hz → {to} Hz resampler: {source}")]
    Construction {
        from: u32,
        to: u32,
        source: rubato::ResamplerConstructionError,
    },
    #[error("audio pushed into a streaming resampler after it was finished")]
    Finished,
    #[error("resampling {from} Hz → {to} Hz failed: {source}")]
    Process {
        from: u32,
        to: u32,
        source: rubato::ResampleError,
    },
}

/// A reusable whole-clip resampler for a fixed rate pair and channel count.
///
/// Construction plans the sinc table and allocates rubato's buffers; [`Self::process_into`]
/// then allocates nothing when the output vectors already have the capacity. It is meant for
/// the worker thread and the CLI, not the audio thread: a 30 s clip takes tens of milliseconds.
pub struct Resampler {
    from: u32,
    to: u32,
    channels: usize,
    /// `None` when `from == to` (identity: a copy).
    inner: Option<Inner>,
}

struct Inner {
    sinc: SincFixedIn<f32>,
    /// Zeros fed before the signal.
    lead_in: usize,
    /// Outputs dropped at the start.
    skip: usize,
    in_buf: Vec<Vec<f32>>,
    out_buf: Vec<Vec<f32>>,
}

impl Inner {
    /// Resamples the block in `in_buf`, drops the first `*to_skip` outputs (counting them down)
    /// and appends at most `room` of the rest to `out`; returns how many it appended. The one
    /// block step of both the whole-clip and the streaming resampler, so they cannot drift apart.
    fn run_block(&mut self, (from, to): (u32, u32), to_skip: &mut usize, room: usize, out: &mut [Vec<f32>]) -> Result<usize, ResampleError> {
        let (_, produced) = self
            .sinc
            .process_into_buffer(&self.in_buf, &mut self.out_buf, None)
            .map_err(|source| ResampleError::Process { from, to, source })?;
        let dropped = (*to_skip).min(produced);
        *to_skip -= dropped;
        let take = (produced - dropped).min(room);
        for (o, buf) in out.iter_mut().zip(&self.out_buf) {
            o.extend_from_slice(&buf[dropped..dropped + take]);
        }
        Ok(take)
    }
}

/// Checks `input[channel][frame]` against the channel count; returns its frames per channel.
fn input_frames<S: AsRef<[f32]>>(input: &[S], channels: usize) -> Result<usize, ResampleError> {
    if input.len() != channels {
        return Err(ResampleError::ChannelCount { expected: channels, got: input.len() });
    }
    let len = input.first().map_or(0, |c| c.as_ref().len());
    if let Some(other) = input.iter().map(|c| c.as_ref().len()).find(|&l| l != len) {
        return Err(ResampleError::UnequalChannels { first: len, other });
    }
    Ok(len)
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
        let g = gcd(u64::from(from), u64::from(to));
        let (a, b) = (u64::from(from) / g, u64::from(to) / g);
        let ratio = f64::from(to) / f64::from(from);
        let (phases, interpolation, lead_in, skip) = if b as usize <= MAX_EXACT_PHASES {
            let (lead_in, skip) = exact_alignment(a, b);
            (b as usize, SincInterpolationType::Nearest, lead_in, skip)
        } else {
            let phases = 256usize;
            let (lead_in, skip) = nearest_alignment(ratio, phases, a);
            (phases, SincInterpolationType::Cubic, lead_in, skip)
        };
        let window = WindowFunction::BlackmanHarris2;
        let params = SincInterpolationParameters {
            sinc_len: SINC_LEN,
            f_cutoff: calculate_cutoff(SINC_LEN, window),
            interpolation,
            oversampling_factor: phases,
            window,
        };
        let sinc = SincFixedIn::<f32>::new(ratio, 1.0, params, CHUNK, channels)
            .map_err(|source| ResampleError::Construction { from, to, source })?;
        let in_buf = vec![vec![0.0; CHUNK]; channels];
        let out_buf = vec![vec![0.0; sinc.output_frames_max()]; channels];
        Ok(Self {
            from,
            to,
            channels,
            inner: Some(Inner {
                sinc,
                lead_in,
                skip,
                in_buf,
                out_buf,
            }),
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    pub fn to_rate(&self) -> u32 {
        self.to
    }

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

/// Resamples a clip that arrives in pieces (the worker's streaming preview), giving exactly the
/// samples [`Resampler::process`] gives for the whole clip: the same virtual input stream
/// (lead-in zeros, the clip, zeros) is cut into the same [`CHUNK`]-sized blocks, whatever the
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

/// One-shot resampling of `input[channel][frame]` from `from` Hz to `to` Hz.
pub fn resample<S: AsRef<[f32]>>(
    input: &[S],
    from: u32,
    to: u32,
) -> Result<Vec<Vec<f32>>, ResampleError> {
    Resampler::new(from, to, input.len())?.process(input)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Lead-in zeros and skipped outputs that make the output start exactly at input time 0 with
/// `b` phases for the ratio `b/a`: output `k` is the (lead-in-shifted) input at
/// `(k+1)·a/b − 1 + 1/b − lead_in`; setting that to `(k − skip)·a/b` gives
/// `skip + 1 = (b·(lead_in + 1) − 1)/a`, an integer when `b·(lead_in+1) ≡ 1 (mod a)`.
fn exact_alignment(a: u64, b: u64) -> (usize, usize) {
    let mut n = 1u64;
    loop {
        let num = b * n;
        if num % a == 1 % a && num > a {
            let skip_plus_one = (num - 1) / a;
            if skip_plus_one >= 1 {
                return ((n - 1) as usize, (skip_plus_one - 1) as usize);
            }
        }
        n += 1;
    }
}

/// Fallback for ratios with too many phases: the lead-in (searched over one period `a` of the
/// ratio, at most 65 536) whose first output falls closest to input time 0; the residual
/// misalignment is a tiny fraction of a sample.
fn nearest_alignment(ratio: f64, phases: usize, a: u64) -> (usize, usize) {
    let start = (1.0 / ratio).ceil() as usize + 1; // at least one output before time 0
    let (mut best, mut best_err) = (start, f64::INFINITY);
    for lead_in in start..start + (a as usize).min(65_536) {
        let first = ratio * (1.0 + lead_in as f64 - 1.0 / phases as f64) - 1.0;
        let err = (first - first.round()).abs();
        if err < best_err {
            (best, best_err) = (lead_in, err);
        }
    }
    let first = ratio * (1.0 + best as f64 - 1.0 / phases as f64) - 1.0;
    (best, first.round() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(rate: u32, hz: f64, len: usize, phase_at: f64) -> Vec<f32> {
        (0..len)
            .map(|i| (2.0 * PI * hz * (i as f64 - phase_at) / f64::from(rate)).sin() as f32)
            .collect()
    }

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
    /// cubic fallback, identity), mono and stereo.
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
