//! Residual vector quantizer decode: codes → summed codebook vectors.
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::checkpoint::get_checked;
use crate::error::EngineError;

/// All codebooks stacked into one (n_q·size, dim) table so decoding is a single gather:
/// code c of quantizer q is row q·size + c.
#[derive(Debug, Clone)]
pub struct Quantizer {
    table: Tensor,
    num_quantizers: usize,
    codebook_size: usize,
    dim: usize,
}

impl Quantizer {
    /// Loads `{prefix}.layers.{q}.codebook.embed` (size, dim) for every quantizer.
    pub fn new(
        num_quantizers: usize,
        codebook_size: usize,
        dim: usize,
        vb: VarBuilder,
    ) -> Result<Self, EngineError> {
        let books = (0..num_quantizers)
            .map(|q| {
                get_checked(
                    &vb.pp(format!("layers.{q}.codebook")),
                    (codebook_size, dim),
                    "embed",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            table: Tensor::cat(&books, 0)?,
            num_quantizers,
            codebook_size,
            dim,
        })
    }

    /// Codes per codebook; a valid code is below it.
    pub fn codebook_size(&self) -> usize {
        self.codebook_size
    }

    pub fn device(&self) -> &candle_core::Device {
        self.table.device()
    }

    /// Checks `codes` is (B, n_q, F) with 1 ≤ n_q ≤ quantizers, F ≥ 1 and every code < size.
    /// Returns them as u32.
    pub fn check_codes(&self, codes: &Tensor) -> Result<Tensor, EngineError> {
        let (_, n_q, frames) = codes.dims3().map_err(|_| {
            EngineError::InvalidCodes(format!(
                "expected (batch, quantizers, frames), got {:?}",
                codes.dims()
            ))
        })?;
        if n_q == 0 || n_q > self.num_quantizers {
            return Err(EngineError::InvalidCodes(format!(
                "{n_q} codebooks given, the codec has {}",
                self.num_quantizers
            )));
        }
        if frames == 0 {
            return Err(EngineError::InvalidCodes("zero frames".into()));
        }
        let codes = codes.to_dtype(DType::U32)?;
        let max = codes.flatten_all()?.max(0)?.to_scalar::<u32>()?;
        if max as usize >= self.codebook_size {
            return Err(EngineError::InvalidCodes(format!(
                "code {max} is out of range (codebook size {})",
                self.codebook_size
            )));
        }
        Ok(codes)
    }

    /// (B, n_q, F) u32 codes (already checked) → (B, dim, F) embeddings, Σ_q embed_q[codes[q]].
    pub fn decode(&self, codes: &Tensor) -> candle_core::Result<Tensor> {
        let (b, n_q, frames) = codes.dims3()?;
        let offsets: Vec<u32> = (0..n_q).map(|q| (q * self.codebook_size) as u32).collect();
        let offsets = Tensor::from_vec(offsets, (1, n_q, 1), codes.device())?;
        let rows = codes.broadcast_add(&offsets)?.flatten_all()?;
        let emb = self
            .table
            .index_select(&rows, 0)?
            .reshape((b, n_q, frames, self.dim))?;
        emb.sum(1)?.transpose(1, 2)?.contiguous()
    }
}
