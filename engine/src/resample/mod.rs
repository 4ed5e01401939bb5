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
//!
//! Laid out by concern: `block` (the planned sinc and the one block step both resamplers share),
//! `alignment` (the lead-in and skip arithmetic above), `oneshot` ([`Resampler`], whole clips)
//! and `stream` ([`StreamResampler`], clips in pieces).

mod alignment;
mod block;
mod oneshot;
mod stream;

pub use oneshot::Resampler;
pub use stream::StreamResampler;

/// Windowed-sinc length in input samples (see the module doc for why).
pub const SINC_LEN: usize = 256;
/// Largest phase count for which the exact ("nearest phase") table is built (256 taps × 4096
/// phases × 4 bytes = 4 MiB).
pub const MAX_EXACT_PHASES: usize = 4096;
/// Input frames handed to rubato per call.
const CHUNK: usize = 4096;

/// Why a resampler could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// A sample rate of 0 Hz.
    #[error("sample rates must be positive (from {from} Hz to {to} Hz)")]
    ZeroRate {
        /// Input rate in Hz.
        from: u32,
        /// Output rate in Hz.
        to: u32,
    },
    /// A resampler needs at least one channel.
    #[error("a resampler needs at least one channel")]
    NoChannels,
    /// Audio with another channel count than the resampler was made for.
    #[error("resampler was made for {expected} channel(s) but got {got}")]
    ChannelCount {
        /// Channels the resampler was made for.
        expected: usize,
        /// Channels given.
        got: usize,
    },
    /// Channels of different lengths in one call.
    #[error("channels have different lengths ({first} and {other} frames)")]
    UnequalChannels {
        /// Frames of the first channel.
        first: usize,
        /// Frames of the first channel that differs.
        other: usize,
    },
    /// rubato refused the rate pair.
    #[error("cannot build the {from} Hz → {to} Hz resampler: {source}")]
    Construction {
        /// Input rate in Hz.
        from: u32,
        /// Output rate in Hz.
        to: u32,
        /// What rubato reported.
        source: rubato::ResamplerConstructionError,
    },
    /// A [`StreamResampler`] got audio after [`StreamResampler::finish`].
    #[error("audio pushed into a streaming resampler after it was finished")]
    Finished,
    /// rubato failed while resampling (a bug here rather than in the input).
    #[error("resampling {from} Hz → {to} Hz failed: {source}")]
    Process {
        /// Input rate in Hz.
        from: u32,
        /// Output rate in Hz.
        to: u32,
        /// What rubato reported.
        source: rubato::ResampleError,
    },
}

/// One-shot resampling of `input[channel][frame]` from `from` Hz to `to` Hz.
pub fn resample<S: AsRef<[f32]>>(
    input: &[S],
    from: u32,
    to: u32,
) -> Result<Vec<Vec<f32>>, ResampleError> {
    Resampler::new(from, to, input.len())?.process(input)
}

/// A sine of `hz` at `rate`, shifted so that its zero crossing falls at sample `phase_at`.
#[cfg(test)]
fn sine(rate: u32, hz: f64, len: usize, phase_at: f64) -> Vec<f32> {
    use std::f64::consts::PI;
        (0..len)
            .map(|i| (2.0 * PI * hz * (i as f64 - phase_at) / f64::from(rate)).sin() as f32)
            .collect()
    }
