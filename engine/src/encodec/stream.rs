//! Streaming EnCodec decode: audio for the frames that are already known while MusicGen is
//! still generating the rest, so a preview can start long before the clip is finished.
//!
//! ## Why this split
//! The 32 kHz decoder is non-causal, but only locally, except for one piece:
//!
//! * the quantizer is per frame;
//! * the first conv (kernel 7, reflect padding) needs 3 frames of right context;
//! * the LSTM is causal but has unbounded memory: a window decoded from a zero state would
//!   not match the one-shot decode, however long its warm-up (it only converges towards it);
//! * everything after the LSTM (transposed convs, residual convs, the output conv) is
//!   convolutional with a small receptive field: [`EncodecDecoder::synth_context_frames`]
//!   frames either way (3 for the 32 kHz codec).
//!
//! So the stream runs the front (quantizer, first conv, LSTM) **exactly and incrementally**:
//! the first conv's input windows are gathered with the same reflect indices the one-shot
//! decode pads with, and the LSTM's (h, c) state is carried from one piece to the next. The
//! back (synthesis) is run on **overlapping windows** of LSTM outputs: to emit frames
//! `[a, b)` it decodes `[a − M, b + M)` (M = the context above, clipped to the clip) and keeps
//! only the samples of `[a, b)`. Those samples never see the window's edges, so they are the
//! one-shot samples; at the clip's true start and end the window edges *are* the clip's
//! edges, padded exactly as the one-shot decode pads them.
//!
//! The result is the one-shot decode up to floating-point summation order (the same sums,
//! computed in differently shaped matrix products): measured ≤ 1e-6 on the tiny fixtures and
//! on real-size random weights (see the tests and `engine/tests/encodec_streaming.rs`).
//!
//! ## Cost and latency
//! Extra work is the overlap only: `2·M` frames of synthesis per chunk (for 25-frame chunks
//! and M = 3, 24 % more synthesis; the LSTM and first conv are never redone). Nothing is
//! re-decoded from the start. A chunk `[a, b)` can be emitted once `b + M + 3` frames are
//! known (3 = the first conv's look-ahead).
use candle_core::Tensor;

use super::decoder::EncodecDecoder;
use super::lstm::LstmState;
use crate::error::EngineError;

/// How a stream cuts its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Frames in the first chunk. Small, so the first audio comes early (10 = 0.2 s).
    pub first_chunk_frames: usize,
    /// Frames in every later chunk. Larger chunks waste less on the overlap (25 = 0.5 s).
    pub chunk_frames: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            first_chunk_frames: 10,
            chunk_frames: 25,
        }
    }
}

/// A streaming decode of one channel's codes. Push frames as they are complete, take the audio
/// each push settles, then [`Self::finish`] for the rest. The concatenation of everything
/// returned equals [`EncodecDecoder::decode`] of all the frames (see the module doc for the
/// bound).
pub struct EncodecStream<'d> {
    dec: &'d EncodecDecoder,
    cfg: StreamConfig,
    /// Synthesis context M, in frames.
    context: usize,
    /// `[n_q][F]`: every frame pushed so far (a few bytes each; kept whole for simplicity).
    codes: Vec<Vec<u32>>,
    lstm_state: LstmState,
    /// LSTM outputs (1, C, n) of frames `[y_start, y_start + n)`; older frames are dropped
    /// once no window can need them.
    y: Option<Tensor>,
    y_start: usize,
    /// Frames that went through the first conv and the LSTM.
    lstm_frames: usize,
    /// Frames whose audio has been returned.
    emitted: usize,
    finished: bool,
}

impl<'d> EncodecStream<'d> {
    /// A stream for codes of `n_q` codebooks (1 ≤ n_q ≤ the codec's quantizers).
    pub fn new(dec: &'d EncodecDecoder, n_q: usize, cfg: StreamConfig) -> Result<Self, EngineError> {
        if cfg.first_chunk_frames == 0 || cfg.chunk_frames == 0 {
            return Err(EngineError::InvalidRequest(format!(
                "stream chunks must hold at least one frame (got first {} and {})",
                cfg.first_chunk_frames, cfg.chunk_frames
            )));
        }
        // Checks n_q against the codec (0 or too many codebooks) with one dummy frame.
        let probe = Tensor::zeros((1, n_q, 1), candle_core::DType::U32, dec.device())?;
        dec.quantizer().check_codes(&probe)?;
        Ok(Self {
            dec,
            cfg,
            context: dec.synth_context_frames(),
            codes: vec![Vec::new(); n_q],
            lstm_state: LstmState::default(),
            y: None,
            y_start: 0,
            lstm_frames: 0,
            emitted: 0,
            finished: false,
        })
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> usize {
        self.codes[0].len()
    }

    /// Appends frames (`codes[q][f]`, every row the same length, possibly 0) and returns the
    /// audio that became final, possibly none: whole chunks of [`StreamConfig`] frames.
    pub fn push(&mut self, codes: &[Vec<u32>]) -> Result<Vec<f32>, EngineError> {
        if self.finished {
            return Err(EngineError::InvalidRequest("frames pushed into a finished EnCodec stream".into()));
        }
        let n_q = self.codes.len();
        if codes.len() != n_q {
            return Err(EngineError::InvalidCodes(format!("{} codebook rows pushed, the stream has {n_q}", codes.len())));
        }
        let n = codes[0].len();
        if let Some(row) = codes.iter().find(|r| r.len() != n) {
            return Err(EngineError::InvalidCodes(format!("codebook rows of {n} and {} frames pushed", row.len())));
        }
        if n > 0 {
            // Checked here on the host, as `Quantizer::check_codes` checks a whole clip's tensor.
            let size = self.dec.quantizer().codebook_size();
            if let Some(bad) = codes.iter().flatten().find(|&&c| c as usize >= size) {
                return Err(EngineError::InvalidCodes(format!("code {bad} is out of range (codebook size {size})")));
            }
            for (mine, new) in self.codes.iter_mut().zip(codes) {
                mine.extend_from_slice(new);
            }
        }
        self.drain()
    }

    /// Declares the clip complete and returns the rest of its audio. Pushing afterwards is an
    /// error; finishing twice returns nothing more.
    pub fn finish(&mut self) -> Result<Vec<f32>, EngineError> {
        if self.finished {
            return Ok(Vec::new());
        }
        self.finished = true;
        let frames = self.frames();
        if frames == 0 {
            return Err(EngineError::InvalidCodes("zero frames".into()));
        }
        if self.lstm_frames == 0 {
            // Nothing streamed yet (a short clip, or everything pushed at once): the one-shot
            // decode is the definition, and it also covers clips shorter than the first
            // conv's padding, which follow a different reflect rule.
            self.emitted = frames;
            return self.one_shot();
        }
        self.drain()
    }

    fn one_shot(&self) -> Result<Vec<f32>, EngineError> {
        let n_q = self.codes.len();
        let flat: Vec<u32> = self.codes.iter().flatten().copied().collect();
        let codes = Tensor::from_vec(flat, (1, n_q, self.frames()), self.dec.device())?;
        Ok(self.dec.decode(&codes)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Emits every chunk whose samples are settled.
    fn drain(&mut self) -> Result<Vec<f32>, EngineError> {
        let frames = self.frames();
        let look_ahead = self.dec.conv_in().context_right();
        let m = self.context;
        let mut out = Vec::new();
        while self.emitted < frames {
            let size = if self.emitted == 0 { self.cfg.first_chunk_frames } else { self.cfg.chunk_frames };
            let mut end = self.emitted + size;
            if self.finished {
                // The last chunk absorbs a remainder too short to be worth its own overlap.
                if end + m >= frames {
                    end = frames;
                }
            } else if end + m + look_ahead > frames {
                break;
            }
            let need = (end + m).min(frames);
            self.advance_lstm(need)?;
            let w0 = self.emitted.saturating_sub(m);
            let y = self.y.as_ref().expect("LSTM outputs exist after advancing");
            let window = y.narrow(2, w0 - self.y_start, need - w0)?;
            let audio = self.dec.synthesize(&window)?; // (1, 1, hop·(need − w0))
            let hop = self.dec.hop_length();
            let piece = audio.narrow(2, (self.emitted - w0) * hop, (end - self.emitted) * hop)?;
            out.extend(piece.flatten_all()?.to_vec1::<f32>()?);
            self.emitted = end;
            // Later windows start at most M frames before the next chunk.
            let keep_from = self.emitted.saturating_sub(m);
            if keep_from > self.y_start {
                let y = self.y.take().expect("present");
                let len = y.dim(2)? - (keep_from - self.y_start);
                self.y = Some(y.narrow(2, keep_from - self.y_start, len)?.contiguous()?);
                self.y_start = keep_from;
            }
        }
        Ok(out)
    }

    /// Runs the first conv and the LSTM over frames `[lstm_frames, target)`. The conv's input
    /// window `[lstm_frames − 3, target + 3)` is gathered with reflect indices at the clip's
    /// start (and at its end once finished): exactly the values the one-shot decode pads with.
    fn advance_lstm(&mut self, target: usize) -> Result<(), EngineError> {
        if target <= self.lstm_frames {
            return Ok(());
        }
        let conv = self.dec.conv_in();
        let (left, right) = (conv.context_left() as i64, conv.context_right() as i64);
        let frames = self.frames() as i64;
        let last = frames - 1;
        let mut index = Vec::new();
        for j in self.lstm_frames as i64 - left..target as i64 + right {
            let src = if j < 0 {
                -j
            } else if j > last {
                debug_assert!(self.finished, "right context read past the known frames");
                2 * last - j
            } else {
                j
            };
            debug_assert!((0..frames).contains(&src));
            index.push(src as usize);
        }
        let n_q = self.codes.len();
        let gathered: Vec<u32> = self.codes.iter().flat_map(|row| index.iter().map(|&i| row[i])).collect();
        let codes = Tensor::from_vec(gathered, (1, n_q, index.len()), self.dec.device())?;
        let emb = self.dec.quantizer().decode(&codes)?;
        let xs = conv.forward_valid(&emb)?;
        let ys = self.dec.lstm().forward_with_state(&xs, &mut self.lstm_state)?;
        self.y = Some(match self.y.take() {
            None => ys,
            Some(y) => Tensor::cat(&[&y, &ys], 2)?,
        });
        self.lstm_frames = target;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use candle_core::{DType, Device};
    use rand::{Rng, SeedableRng};

    fn tiny_decoder() -> EncodecDecoder {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-musicgen");
        let ckpt = Checkpoint::open(&dir).unwrap();
        let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
        EncodecDecoder::new(&ckpt.config.audio_encoder, vb.pp("audio_encoder")).unwrap()
    }

    fn random_codes(n_q: usize, frames: usize, seed: u64) -> Vec<Vec<u32>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n_q).map(|_| (0..frames).map(|_| rng.random_range(0..2048)).collect()).collect()
    }

    fn one_shot(dec: &EncodecDecoder, codes: &[Vec<u32>]) -> Vec<f32> {
        let flat: Vec<u32> = codes.iter().flatten().copied().collect();
        let t = Tensor::from_vec(flat, (1, codes.len(), codes[0].len()), &Device::Cpu).unwrap();
        dec.decode(&t).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Streams `codes` in pieces of the given sizes (cycled) and returns the audio and the
    /// sample count at which each non-empty piece of audio arrived.
    fn stream(dec: &EncodecDecoder, codes: &[Vec<u32>], pieces: &[usize], cfg: StreamConfig, context: Option<usize>) -> (Vec<f32>, Vec<usize>) {
        let mut s = EncodecStream::new(dec, codes.len(), cfg).unwrap();
        if let Some(c) = context {
            s.context = c;
        }
        let frames = codes[0].len();
        let (mut out, mut arrivals, mut at) = (Vec::new(), Vec::new(), 0);
        for &n in pieces.iter().cycle() {
            if at >= frames {
                break;
            }
            let n = n.min(frames - at);
            let piece: Vec<Vec<u32>> = codes.iter().map(|r| r[at..at + n].to_vec()).collect();
            at += n;
            let audio = s.push(&piece).unwrap();
            if !audio.is_empty() {
                out.extend(audio);
                arrivals.push(at);
            }
        }
        out.extend(s.finish().unwrap());
        (out, arrivals)
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "lengths");
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// The streamed audio is the one-shot decode (itself checked against transformers in
    /// engine/tests/encodec_parity.rs), for frame-by-frame pushes, uneven pieces, and clip
    /// lengths around the chunk boundaries.
    #[test]
    fn streamed_audio_equals_the_one_shot_decode() {
        let dec = tiny_decoder();
        assert_eq!(dec.synth_context_frames(), 3);
        let cfg = StreamConfig::default();
        let mut worst = 0f32;
        for (frames, seed) in [(1usize, 1u64), (3, 2), (4, 3), (15, 4), (16, 5), (17, 6), (40, 7), (63, 8), (150, 9)] {
            let codes = random_codes(4, frames, seed);
            let reference = one_shot(&dec, &codes);
            for pieces in [&[1usize][..], &[7, 1, 30, 2], &[1000]] {
                let (out, _) = stream(&dec, &codes, pieces, cfg, None);
                let d = max_diff(&out, &reference);
                worst = worst.max(d);
                assert!(d <= 1e-6, "{frames} frames in pieces {pieces:?}: max diff {d}");
            }
        }
        eprintln!("streaming vs one-shot, tiny codec: max |diff| {worst:e}");
    }

    /// The first audio comes as soon as first chunk + context + look-ahead frames are known,
    /// and later audio in chunks, never all at the end.
    #[test]
    fn audio_arrives_in_chunks_while_frames_come_in() {
        let dec = tiny_decoder();
        let codes = random_codes(4, 100, 11);
        let cfg = StreamConfig { first_chunk_frames: 10, chunk_frames: 25 };
        let (out, arrivals) = stream(&dec, &codes, &[1], cfg, None);
        assert_eq!(out.len(), 100 * 640);
        // Chunk [a, b) needs b + 3 (synthesis context) + 3 (first conv look-ahead) frames:
        // [0, 10) at 16, [10, 35) at 41, [35, 60) at 66, [60, 85) at 91; [85, 100) at finish.
        assert_eq!(arrivals, vec![16, 41, 66, 91], "frames known when audio arrived");
    }

    /// Without the synthesis context the chunk edges are wrong: the test above can fail.
    #[test]
    fn too_little_context_is_detected() {
        let dec = tiny_decoder();
        let codes = random_codes(4, 80, 12);
        let reference = one_shot(&dec, &codes);
        let (out, _) = stream(&dec, &codes, &[1], StreamConfig::default(), Some(0));
        let d = max_diff(&out, &reference);
        assert!(d > 1e-4, "context 0 should break the chunk edges, max diff {d}");
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let dec = tiny_decoder();
        assert!(matches!(EncodecStream::new(&dec, 0, StreamConfig::default()), Err(EngineError::InvalidCodes(_))));
        assert!(matches!(EncodecStream::new(&dec, 5, StreamConfig::default()), Err(EngineError::InvalidCodes(_))));
        let zero = StreamConfig { first_chunk_frames: 0, chunk_frames: 25 };
        assert!(matches!(EncodecStream::new(&dec, 4, zero), Err(EngineError::InvalidRequest(_))));
        let mut s = EncodecStream::new(&dec, 4, StreamConfig::default()).unwrap();
        assert!(matches!(s.push(&[vec![1], vec![2], vec![3]]), Err(EngineError::InvalidCodes(_))));
        assert!(matches!(s.push(&[vec![1], vec![2], vec![3], vec![4, 5]]), Err(EngineError::InvalidCodes(_))));
        assert!(matches!(s.push(&[vec![1], vec![2], vec![3], vec![4096]]), Err(EngineError::InvalidCodes(_))));
        assert!(matches!(s.finish(), Err(EngineError::InvalidCodes(_))), "no frames");
        let mut s = EncodecStream::new(&dec, 4, StreamConfig::default()).unwrap();
        s.push(&[vec![1], vec![2], vec![3], vec![4]]).unwrap();
        assert_eq!(s.finish().unwrap().len(), 640);
        assert!(matches!(s.push(&[vec![1], vec![2], vec![3], vec![4]]), Err(EngineError::InvalidRequest(_))));
    }
}
