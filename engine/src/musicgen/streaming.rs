//! Generation with streaming decode: audio chunks while the decoder is still stepping.
//!
//! With the delay pattern, frame `t` has all its codebooks after step `t + Kc − 1`
//! ([`GenerationState::complete_frames`]); a [`StreamingDecoder`] feeds those frames to one
//! [`EncodecStream`] per audio channel and hands back whatever audio they settle. The chunks
//! concatenated are the clip (equal to the one-shot [`MusicGen::decode`] up to float summation
//! order, see `engine::encodec` streaming docs), so a caller can preview the start of a clip
//! while the rest is generated and keep the streamed audio as the final result.

use std::sync::atomic::{AtomicBool, Ordering};

use super::generate::{GenerationState, Progress};
use super::model::MusicGen;
use super::request::{GenerationRequest, Generated};
use crate::encodec::{EncodecStream, StreamConfig};
use crate::error::EngineError;
use crate::wav::Audio;

/// A piece of a clip: `audio` (model rate, one channel per model channel) starts at sample
/// `start` of the clip. Chunks come in order and without gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioChunk {
    /// Position of the chunk's first sample in the clip, in samples at the model rate.
    pub start: usize,
    /// The chunk's audio (model rate, one channel per model channel).
    pub audio: Audio,
    /// Whether this is the clip's last chunk.
    pub last: bool,
}

/// Turns the complete frames of a generation into audio chunks as they come.
pub struct StreamingDecoder<'m> {
    streams: Vec<EncodecStream<'m>>,
    num_codebooks: usize,
    sample_rate: u32,
    frames_pushed: usize,
    samples_out: usize,
}

impl<'m> StreamingDecoder<'m> {
    /// A decoder for one clip of `model`'s codes, cut as `cfg` says.
    pub fn new(model: &'m MusicGen, cfg: StreamConfig) -> Result<Self, EngineError> {
        let channels = model.channels();
        let num_codebooks = model.config().decoder.num_codebooks;
        let streams = (0..channels)
            .map(|_| EncodecStream::new(model.codec(), num_codebooks / channels, cfg))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { streams, num_codebooks, sample_rate: model.sample_rate(), frames_pushed: 0, samples_out: 0 })
    }

    /// Frames handed to the codec so far.
    pub fn frames_pushed(&self) -> usize {
        self.frames_pushed
    }

    /// Pushes de-delayed frames `codes[k][f]` (model codebook order; stereo interleaves L0, R0,
    /// L1, R1, …) and returns the audio that became final, if any.
    pub fn push(&mut self, codes: &[Vec<u32>]) -> Result<Option<AudioChunk>, EngineError> {
        if codes.len() != self.num_codebooks {
            return Err(EngineError::InvalidCodes(format!(
                "{} codebook rows pushed, the model has {}",
                codes.len(),
                self.num_codebooks
            )));
        }
        let channels = self.streams.len();
        let mut out = Vec::with_capacity(channels);
        for (c, stream) in self.streams.iter_mut().enumerate() {
            let rows: Vec<Vec<u32>> = codes.iter().skip(c).step_by(channels).cloned().collect();
            out.push(stream.push(&rows)?);
        }
        self.frames_pushed += codes[0].len();
        Ok(self.chunk(out, false))
    }

    /// Pushes the frames of batch item `item` that `state` has completed since the last call.
    pub fn catch_up(&mut self, state: &GenerationState<'_>, item: usize) -> Result<Option<AudioChunk>, EngineError> {
        let done = state.complete_frames();
        if done <= self.frames_pushed {
            return Ok(None);
        }
        self.push(&state.frame_codes(item, self.frames_pushed..done))
    }

    /// Ends the clip and returns its remaining audio (always a chunk with `last` set, possibly
    /// empty when everything was already returned).
    pub fn finish(&mut self) -> Result<AudioChunk, EngineError> {
        let out = self.streams.iter_mut().map(|s| s.finish()).collect::<Result<Vec<_>, _>>()?;
        Ok(self.chunk(out, true).expect("the last chunk is always returned"))
    }

    fn chunk(&mut self, channels: Vec<Vec<f32>>, last: bool) -> Option<AudioChunk> {
        let len = channels.first().map_or(0, Vec::len);
        debug_assert!(channels.iter().all(|c| c.len() == len), "channels stream in lockstep");
        if len == 0 && !last {
            return None;
        }
        let start = self.samples_out;
        self.samples_out += len;
        Some(AudioChunk { start, audio: Audio { sample_rate: self.sample_rate, channels }, last })
    }
}

impl MusicGen {
    /// Generates one clip like [`MusicGen::generate`], calling `on_chunk` with audio as soon as
    /// the frames it needs are generated (first chunk after about `cfg.first_chunk_frames` + 10
    /// steps, then one every `cfg.chunk_frames` steps; the last one after the final step).
    ///
    /// The returned audio is the concatenation of the chunks: the same clip the one-shot decode
    /// gives, to within float rounding (≤ 1e-6 measured; see `engine::encodec::EncodecStream`).
    /// The decode work is done between steps, on the calling thread. `cancel` is checked before
    /// every step and after every decoder layer (so the first step's long prefill stops too); a
    /// cancelled run returns [`EngineError::Cancelled`] after the chunks already delivered.
    pub fn generate_streaming(
        &self,
        req: &GenerationRequest,
        melody: Option<&[[f32; 12]]>,
        cfg: StreamConfig,
        progress: &mut dyn FnMut(Progress),
        on_chunk: &mut dyn FnMut(&AudioChunk),
        cancel: &AtomicBool,
    ) -> Result<Generated, EngineError> {
        req.validate()?;
        let ids = self.tokenize(&req.text)?;
        let mut state = self.start(&[ids], &[melody], req.max_new_tokens, req.sampling(), req.seed, req.guidance)?;
        let mut decoder = StreamingDecoder::new(self, cfg)?;
        let mut audio = vec![Vec::new(); self.channels()];
        let mut take = |chunk: &AudioChunk| {
            for (all, new) in audio.iter_mut().zip(&chunk.audio.channels) {
                all.extend_from_slice(new);
            }
            on_chunk(chunk);
        };
        while !state.is_done() {
            if cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Cancelled);
            }
            let p = state.step_cancellable(cancel)?;
            progress(p);
            if let Some(chunk) = decoder.catch_up(&state, 0)? {
                take(&chunk);
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(EngineError::Cancelled);
        }
        take(&decoder.finish()?);
        let codes = state.codes().pop().expect("batch of one");
        Ok(Generated { audio: Audio { sample_rate: self.sample_rate(), channels: audio }, codes })
    }
}
