//! MusicGen and MusicGen-Melody on Candle: text/melody conditioning, the decoder with its KV
//! cache, the delay pattern, sampling and the stepped generation loop.
//!
//! Reference behaviour is Hugging Face transformers (checked on 5.23) on the same checkpoints;
//! `engine/tests/musicgen_parity.rs` holds the parity tests against its dumps.

pub mod attention;
pub mod decoder;
pub mod delay;
pub mod position;
pub mod kernels;
pub mod qlinear;
pub mod quant;
pub mod sampling;
pub mod teacher;
pub mod threads;
pub mod conditioning;
pub mod generate;
pub mod model;
pub mod request;
pub mod streaming;
#[cfg(test)]
mod cancel_tests;

pub use conditioning::ChromaFrame;
pub use generate::{GenerationState, Progress};
pub use model::MusicGen;
pub use qlinear::{Fallback, QuantReport};
pub use quant::{Quant, UnknownQuant};
pub use model::LoadOptions;
pub use request::{max_new_tokens_for_seconds, GenerationRequest, Generated, Prompt};
pub use sampling::SamplingConfig;
pub use streaming::{AudioChunk, StreamingDecoder};
pub use crate::encodec::StreamConfig;
