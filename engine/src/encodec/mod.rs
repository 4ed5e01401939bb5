//! Our own EnCodec (32 kHz) decoder, turning MusicGen's audio codes into a waveform.
//!
//! Why not candle-transformers' `encodec`: it cannot reproduce the MusicGen codec (reflect
//! padding unsupported, the ConvTranspose1d trim missing, and its config enums do not read HF's
//! config.json). Only decoding is implemented; audio prompts would need the encoder too.
mod conv;
mod decoder;
mod lstm;
mod quantizer;
mod stream;

pub use conv::pad1d;
pub use decoder::EncodecDecoder;
pub use stream::{EncodecStream, StreamConfig};
