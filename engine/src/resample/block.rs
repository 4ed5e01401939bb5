//! The planned windowed sinc and the one block step shared by the whole-clip and the streaming
//! resampler, so the two cannot drift apart.

use rubato::{
    calculate_cutoff, Resampler as _, SincFixedIn, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use super::alignment::{exact_alignment, gcd, nearest_alignment};
use super::{ResampleError, CHUNK, MAX_EXACT_PHASES, SINC_LEN};

/// rubato's resampler with the alignment that makes its output start at input time 0.
pub(super) struct Inner {
    pub(super) sinc: SincFixedIn<f32>,
    /// Zeros fed before the signal.
    pub(super) lead_in: usize,
    /// Outputs dropped at the start.
    pub(super) skip: usize,
    pub(super) in_buf: Vec<Vec<f32>>,
    out_buf: Vec<Vec<f32>>,
}

impl Inner {
    /// Plans the sinc table for `from` Hz → `to` Hz (positive and distinct) and allocates
    /// rubato's buffers: exact phases when the ratio has few enough, else the cubic fallback.
    pub(super) fn new(from: u32, to: u32, channels: usize) -> Result<Self, ResampleError> {
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
            sinc,
            lead_in,
            skip,
            in_buf,
            out_buf,
        })
    }

    /// Resamples the block in `in_buf`, drops the first `*to_skip` outputs (counting them down)
    /// and appends at most `room` of the rest to `out`; returns how many it appended. The one
    /// block step of both the whole-clip and the streaming resampler, so they cannot drift apart.
    pub(super) fn run_block(&mut self, (from, to): (u32, u32), to_skip: &mut usize, room: usize, out: &mut [Vec<f32>]) -> Result<usize, ResampleError> {
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
pub(super) fn input_frames<S: AsRef<[f32]>>(input: &[S], channels: usize) -> Result<usize, ResampleError> {
    if input.len() != channels {
        return Err(ResampleError::ChannelCount { expected: channels, got: input.len() });
    }
    let len = input.first().map_or(0, |c| c.as_ref().len());
    if let Some(other) = input.iter().map(|c| c.as_ref().len()).find(|&l| l != len) {
        return Err(ResampleError::UnequalChannels { first: len, other });
    }
    Ok(len)
}
