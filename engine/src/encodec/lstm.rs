//! EnCodec's 2-layer LSTM with a residual connection, on (B, C, T) conv-layout tensors.
//!
//! The input projections of every time step are one matmul per layer; only the recurrent part
//! (h·W_hhᵀ and the gates) steps through the frames, which an LSTM cannot avoid.
use candle_core::{Tensor, D};
use candle_nn::VarBuilder;

use crate::checkpoint::get_checked;
use crate::error::EngineError;

#[derive(Debug, Clone)]
struct Layer {
    /// (C, 4C)ᵀ of weight_ih, pre-transposed for `x @ w`.
    w_ih_t: Tensor,
    w_hh_t: Tensor,
    /// b_ih + b_hh, (4C).
    bias: Tensor,
}

/// `nn.LSTM(dim, dim, num_layers)` + skip: y = LSTM(x) + x. Zero initial state; torch gate
/// order i, f, g, o.
#[derive(Debug, Clone)]
pub struct EncodecLstm {
    layers: Vec<Layer>,
    dim: usize,
}

impl EncodecLstm {
    /// Loads `{prefix}.lstm.{weight_ih_l{n}, weight_hh_l{n}, bias_ih_l{n}, bias_hh_l{n}}`.
    pub fn new(dim: usize, num_layers: usize, vb: VarBuilder) -> Result<Self, EngineError> {
        let vb = vb.pp("lstm");
        let layers = (0..num_layers)
            .map(|n| {
                let w_ih = get_checked(&vb, (4 * dim, dim), &format!("weight_ih_l{n}"))?;
                let w_hh = get_checked(&vb, (4 * dim, dim), &format!("weight_hh_l{n}"))?;
                let b_ih = get_checked(&vb, 4 * dim, &format!("bias_ih_l{n}"))?;
                let b_hh = get_checked(&vb, 4 * dim, &format!("bias_hh_l{n}"))?;
                Ok(Layer {
                    w_ih_t: w_ih.t()?.contiguous()?,
                    w_hh_t: w_hh.t()?.contiguous()?,
                    bias: (b_ih + b_hh)?,
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(Self { layers, dim })
    }

    /// (B, C, T) → (B, C, T), from a zero state.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_with_state(xs, &mut LstmState::default())
    }

    /// (B, C, T) → (B, C, T), starting from `state` and leaving the state after the last frame
    /// in it. Because the LSTM is causal, running it over consecutive pieces of a sequence with
    /// the state carried gives the same result as one run over the whole sequence; the
    /// streaming decoder relies on that.
    pub fn forward_with_state(
        &self,
        xs: &Tensor,
        state: &mut LstmState,
    ) -> candle_core::Result<Tensor> {
        let (b, _, t) = xs.dims3()?;
        let input = xs.transpose(1, 2)?.contiguous()?; // (B, T, C)
        let mut seq = input.clone();
        if state.layers.len() != self.layers.len() {
            let zero = Tensor::zeros((b, self.dim), xs.dtype(), xs.device())?;
            state.layers = vec![(zero.clone(), zero); self.layers.len()];
        }
        for (layer, (h, c)) in self.layers.iter().zip(state.layers.iter_mut()) {
            // All input projections at once: (B·T, C) @ (C, 4C).
            let pre = seq
                .reshape((b * t, self.dim))?
                .matmul(&layer.w_ih_t)?
                .broadcast_add(&layer.bias)?
                .reshape((b, t, 4 * self.dim))?;
            let mut outs = Vec::with_capacity(t);
            for step in 0..t {
                let gates = (pre.narrow(1, step, 1)?.squeeze(1)? + h.matmul(&layer.w_hh_t)?)?;
                let chunks = gates.chunk(4, D::Minus1)?;
                let i = candle_nn::ops::sigmoid(&chunks[0])?;
                let f = candle_nn::ops::sigmoid(&chunks[1])?;
                let g = chunks[2].tanh()?;
                let o = candle_nn::ops::sigmoid(&chunks[3])?;
                *c = ((f * &*c)? + (i * g)?)?;
                *h = (o * c.tanh()?)?;
                outs.push(h.clone());
            }
            seq = Tensor::stack(&outs, 1)?; // (B, T, C)
        }
        (seq + input)?.transpose(1, 2)?.contiguous()
    }
}

/// The recurrent state (h, c) of every layer between two pieces of a sequence. Empty = zero.
#[derive(Debug, Clone, Default)]
pub struct LstmState {
    layers: Vec<(Tensor, Tensor)>,
}
