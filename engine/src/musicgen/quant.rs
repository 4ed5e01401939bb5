//! How the decoder's linear layers are stored and multiplied: plain f32, or quantized with
//! candle's GGML-style block formats.
//!
//! Why quantize: a decoder step on the CPU reads every weight matrix once and does little
//! arithmetic per byte, so its speed is set by memory bandwidth. Storing the matrices in 8.5
//! (q8_0) or 4.5 (q4k) bits per weight instead of 32 cuts the bytes read per step by ~3.8× or
//! ~7×. Only the decoder's matrices are quantized (attention projections, feed-forward, LM
//! heads); embeddings, norms, the text encoder and EnCodec stay in f32, where they are either
//! tiny or run once per generation.

use std::fmt;
use std::str::FromStr;

use candle_core::quantized::GgmlDType;
use serde::{Deserialize, Serialize};

/// Weight format of the decoder's linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Quant {
    /// Full precision, exactly the checkpoint's values (the reference).
    #[default]
    #[serde(rename = "f32")]
    F32,
    /// 8-bit blocks of 32 weights with one f16 scale each (8.5 bits per weight); close to
    /// lossless.
    #[serde(rename = "q8_0")]
    Q8_0,
    /// 4-bit k-quant super-blocks of 256 weights (4.5 bits per weight): fastest, audibly
    /// different results from f32 for the same seed.
    #[serde(rename = "q4k")]
    Q4K,
}

impl Quant {
    /// Every choice, in the order a menu lists them.
    pub const ALL: [Quant; 3] = [Quant::F32, Quant::Q8_0, Quant::Q4K];

    /// The name used in files and on the command line (`f32`, `q8_0`, `q4k`).
    pub fn name(self) -> &'static str {
        match self {
            Quant::F32 => "f32",
            Quant::Q8_0 => "q8_0",
            Quant::Q4K => "q4k",
        }
    }

    /// A short label for a producer: what it is and what it costs.
    pub fn label(self) -> &'static str {
        match self {
            Quant::F32 => "f32 (full precision)",
            Quant::Q8_0 => "8-bit (fast, near-lossless)",
            Quant::Q4K => "4-bit (fastest, lower quality)",
        }
    }

    /// The candle block format, `None` for f32.
    pub fn ggml(self) -> Option<GgmlDType> {
        match self {
            Quant::F32 => None,
            Quant::Q8_0 => Some(GgmlDType::Q8_0),
            Quant::Q4K => Some(GgmlDType::Q4K),
        }
    }

    /// The next choice to try for a matrix whose inner dimension does not fit this format's
    /// block size: q4k → q8_0 → f32.
    pub fn fallback(self) -> Option<Quant> {
        match self {
            Quant::Q4K => Some(Quant::Q8_0),
            Quant::Q8_0 => Some(Quant::F32),
            Quant::F32 => None,
        }
    }

    /// Weights per block: the inner (input) dimension of a quantized matrix must be a multiple
    /// of it.
    pub fn block_size(self) -> usize {
        self.ggml().map(|g| g.block_size()).unwrap_or(1)
    }

    /// Whether a matrix with inner dimension `k` can be stored in this format.
    pub fn fits(self, k: usize) -> bool {
        k > 0 && k.is_multiple_of(self.block_size())
    }

    /// Bits stored per weight (scales included).
    pub fn bits_per_weight(self) -> f64 {
        match self.ggml() {
            None => 32.0,
            Some(g) => g.type_size() as f64 * 8.0 / g.block_size() as f64,
        }
    }
}

impl fmt::Display for Quant {
    /// The label a producer sees (see [`Quant::label`]); `{:#}` gives the short name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str(self.name())
        } else {
            f.write_str(self.label())
        }
    }
}

/// A quantization name that is not one of `f32`, `q8_0`, `q4k`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown quantization {given:?}: choose one of f32, q8_0 (8-bit), q4k (4-bit)")]
pub struct UnknownQuant {
    /// The name as given.
    pub given: String,
}

impl FromStr for Quant {
    type Err = UnknownQuant;

    /// Accepts the names (`f32`, `q8_0`, `q4k`), case-insensitively, and the common spellings
    /// `q8`, `q8-0`, `q4_k`, `q4-k`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "float" | "none" => Ok(Quant::F32),
            "q8_0" | "q8" | "q8-0" | "q80" => Ok(Quant::Q8_0),
            "q4k" | "q4_k" | "q4-k" | "q4" => Ok(Quant::Q4K),
            _ => Err(UnknownQuant { given: s.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_strings_and_serde() {
        for q in Quant::ALL {
            assert_eq!(q.name().parse::<Quant>().unwrap(), q);
            assert_eq!(format!("{q:#}"), q.name());
            let json = serde_json::to_string(&q).unwrap();
            assert_eq!(json, format!("\"{}\"", q.name()));
            assert_eq!(serde_json::from_str::<Quant>(&json).unwrap(), q);
        }
        assert_eq!("Q4_K".parse::<Quant>().unwrap(), Quant::Q4K);
        let e = "int3".parse::<Quant>().unwrap_err();
        assert!(e.to_string().contains("\"int3\"") && e.to_string().contains("q8_0"), "{e}");
    }

    #[test]
    fn block_sizes_and_fallback_chain() {
        assert_eq!(Quant::Q8_0.block_size(), 32);
        assert_eq!(Quant::Q4K.block_size(), 256);
        assert!(Quant::Q4K.fits(1024) && !Quant::Q4K.fits(96) && Quant::Q8_0.fits(96));
        assert!(Quant::F32.fits(7));
        assert_eq!(Quant::Q4K.fallback(), Some(Quant::Q8_0));
        assert_eq!(Quant::Q8_0.fallback(), Some(Quant::F32));
        assert_eq!(Quant::F32.fallback(), None);
        assert_eq!(Quant::Q8_0.bits_per_weight(), 8.5);
        assert_eq!(Quant::Q4K.bits_per_weight(), 4.5);
    }
}
