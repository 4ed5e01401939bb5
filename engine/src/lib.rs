//! # melodygen-engine
//!
//! Meta's [MusicGen](https://arxiv.org/abs/2306.05284) and MusicGen-Melody on
//! [Candle](https://github.com/huggingface/candle), headless: text- and melody-conditioned music
//! generation, matching the transformers implementation code for code (greedy codes are
//! identical to `MusicgenForConditionalGeneration.generate` on the test checkpoints).
//!
//! It is the engine of the MelodyGen plugin, but knows nothing about plugins: no plugin
//! framework, no GUI and no audio-thread code is in its dependency tree (a test checks the
//! resolved tree), so a command-line tool, a server or another plugin can use it as it is.
//!
//! ```no_run
//! use melodygen_engine::candle_core::{DType, Device};
//! use melodygen_engine::checkpoint::resolve_model;
//! use melodygen_engine::chroma::melody_from_file;
//! use melodygen_engine::musicgen::{max_new_tokens_for_seconds, GenerationRequest, MusicGen, Prompt};
//! use melodygen_engine::wav;
//! use std::sync::atomic::AtomicBool;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A model folder, or a Hugging Face repo id already in the local HF cache.
//! let dir = resolve_model("facebook/musicgen-melody")?;
//! let model = MusicGen::load(&dir, &Device::Cpu, DType::F32)?;
//! // The melody to follow: a WAV at any rate, or a MIDI file, as 12-bin chroma.
//! let melody = melody_from_file("hum.wav".as_ref())?;
//! let mut request = GenerationRequest::new(Prompt::Text("warm lo-fi piano, 80 bpm".into()), 42);
//! request.max_new_tokens = max_new_tokens_for_seconds(8.0)?;
//! let cancel = AtomicBool::new(false); // set it from another thread to stop the run
//! let out = model.generate(&request, Some(melody.one_hot()), &mut |p| eprintln!("{}/{}", p.step, p.total), &cancel)?;
//! wav::write_f32("take.wav".as_ref(), &out.audio)?; // 32 kHz float WAV; same seed, same take
//! # Ok(())
//! # }
//! ```
//!
//! ## What is where
//!
//! - [`checkpoint`]: finding a model (folder or HF cache), its configs, sharded safetensors,
//!   and the hub download with progress and cancellation.
//! - [`musicgen`]: the T5 text encoder, the melody conditioning, the decoder with its KV cache,
//!   the delay pattern, sampling, and generation as a state stepped one frame at a time
//!   ([`musicgen::GenerationState`]), streaming decode included; CPU kernels for f32, q8_0 and
//!   q4k weights.
//! - [`encodec`]: EnCodec's decoder, one-shot and streaming (the streamed audio equals the
//!   one-shot decode).
//! - [`chroma`]: the chroma MusicGen-Melody follows, from audio (librosa-exact) or MIDI notes.
//! - [`record`]: what makes a take reproducible: the prompt, the seed and every setting, the
//!   melody the model followed, a clip's sidecar.
//! - [`resample`], [`wav`]: time-aligned, length-exact resampling (one-shot and streaming) and
//!   32-bit float WAV files.
//! - [`error`]: one typed error for the engine; every message names the file, tensor or setting
//!   at fault.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod chroma;
pub mod encodec;
pub mod error;
pub mod musicgen;
pub mod record;
pub mod resample;
pub mod wav;

/// The Candle version the engine is built on, for [`candle_core::Device`] and
/// [`candle_core::DType`] in the API.
pub use candle_core;
