//! EnCodec's weight-normalised, non-causal convolutions.
//!
//! Weight norm is folded into a plain kernel once at load (W = g·v/‖v‖), so decoding runs
//! ordinary candle convolutions. Padding follows transformers' `EncodecConv1d` /
//! `EncodecConvTranspose1d` for `use_causal_conv = false` (the 32 kHz MusicGen codec), which
//! candle-transformers' encodec.rs does not implement (no reflect padding, no transpose trim).
use candle_core::{Module, Tensor, D};
use candle_nn::VarBuilder;

use crate::checkpoint::{get_checked, PadMode};
use crate::error::EngineError;

/// Loads a weight-normalised kernel under `vb` (`weight_g`/`weight_v`, either naming) and folds
/// the norm: W = g · v / ‖v‖ with the norm over every axis but 0. `shape` is v's shape.
fn weight_norm(shape: (usize, usize, usize), vb: &VarBuilder) -> Result<Tensor, EngineError> {
    let g = get_checked(vb, (shape.0, 1, 1), "weight_g")?;
    let v = get_checked(vb, shape, "weight_v")?;
    let norm = v.sqr()?.sum_keepdim((1, 2))?.sqrt()?;
    Ok(v.broadcast_mul(&g)?.broadcast_div(&norm)?)
}

/// Stride-1 Conv1d with "same"-length padding (left P−⌊P/2⌋, right ⌊P/2⌋, P = k_eff − 1).
///
/// Computed as one matmul per kernel tap on shifted views of the padded input, summed, rather
/// than with `Tensor::conv1d`: candle's CPU conv1d materialises an im2col matrix of
/// C_in·k·L values, which for the last 64-channel stage of a 30 s decode is 1.7 GB.
#[derive(Debug, Clone)]
pub struct SameConv1d {
    /// One (C_out, C_in) matrix per kernel tap.
    taps: Vec<Tensor>,
    bias: Tensor,
    dilation: usize,
    pad_left: usize,
    pad_right: usize,
    pad_mode: PadMode,
}

impl SameConv1d {
    /// Loads `{prefix}.conv.{weight_g, weight_v, bias}`.
    pub fn new(
        in_c: usize,
        out_c: usize,
        kernel: usize,
        dilation: usize,
        pad_mode: PadMode,
        vb: VarBuilder,
    ) -> Result<Self, EngineError> {
        let vb = vb.pp("conv");
        let weight = weight_norm((out_c, in_c, kernel), &vb)?;
        let taps = (0..kernel)
            .map(|k| weight.narrow(2, k, 1)?.squeeze(2)?.contiguous())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let bias = get_checked(&vb, out_c, "bias")?;
        let total = (kernel - 1) * dilation; // effective kernel − stride (stride is 1 here)
        Ok(Self {
            taps,
            bias,
            dilation,
            pad_left: total - total / 2,
            pad_right: total / 2,
            pad_mode,
        })
    }
}

impl SameConv1d {
    /// Input samples each output needs before its own position (the left pad).
    pub fn context_left(&self) -> usize {
        self.pad_left
    }

    /// Input samples each output needs after its own position (the right pad): the look-ahead
    /// a streaming decode must hold back.
    pub fn context_right(&self) -> usize {
        self.pad_right
    }

    /// The convolution without padding ("valid"): (B, C_in, L + pad_left + pad_right) →
    /// (B, C_out, L). The streaming decoder feeds it windows whose context it gathered itself.
    pub fn forward_valid(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, padded) = xs.dims3()?;
        let context = self.pad_left + self.pad_right;
        if padded <= context {
            candle_core::bail!("conv input of {padded} samples is not longer than its context {context}");
        }
        let len = padded - context;
        let mut acc: Option<Tensor> = None;
        for (k, tap) in self.taps.iter().enumerate() {
            // A strided view, no copy: gemm reads it with its row stride.
            let shifted = xs.narrow(2, k * self.dilation, len)?;
            let y = tap.broadcast_left(b)?.matmul(&shifted)?;
            acc = Some(match acc {
                None => y,
                Some(acc) => (acc + y)?,
            });
        }
        let ys = acc.expect("kernel has at least one tap");
        ys.broadcast_add(&self.bias.reshape((1, (), 1))?)
    }
}

impl Module for SameConv1d {
    /// (B, C_in, L) → (B, C_out, L).
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_valid(&pad1d(xs, self.pad_left, self.pad_right, self.pad_mode)?)
    }
}

/// ConvTranspose1d with kernel 2s and stride s, trimmed ⌈s/2⌉ left and ⌊s/2⌋ right so that
/// L input frames give exactly L·s outputs.
///
/// Computed as one matmul plus an overlap-add of two half-kernels rather than with
/// `Tensor::conv_transpose1d`: candle 0.11.1's CPU conv_transpose1d returns wrong values for
/// batch > 1 (its col2im path), and with kernel = 2·stride each input frame only touches its
/// own output block and the next one, so the overlap-add is two shifted adds.
#[derive(Debug, Clone)]
pub struct UpsampleConv1d {
    /// (C_in, C_out·2s), v reshaped so x·W gives every frame's 2s-long contribution per channel.
    weight: Tensor,
    bias: Tensor,
    out_c: usize,
    stride: usize,
    trim_left: usize,
    trim_right: usize,
}

impl UpsampleConv1d {
    /// Loads `{prefix}.conv.{weight_g, weight_v, bias}`; v is (in, out, 2·stride).
    pub fn new(
        in_c: usize,
        out_c: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self, EngineError> {
        let vb = vb.pp("conv");
        let weight =
            weight_norm((in_c, out_c, 2 * stride), &vb)?.reshape((in_c, out_c * 2 * stride))?;
        let bias = get_checked(&vb, out_c, "bias")?;
        let total = stride; // kernel − stride
        Ok(Self {
            weight,
            bias,
            out_c,
            stride,
            trim_left: total - total / 2,
            trim_right: total / 2,
        })
    }
}

impl UpsampleConv1d {
    /// The upsampling ratio.
    pub fn stride(&self) -> usize {
        self.stride
    }
}

impl Module for UpsampleConv1d {
    /// (B, C_in, L) → (B, C_out, L·s).
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c_in, l) = xs.dims3()?;
        let s = self.stride;
        // Every frame's contribution: (B·L, C_in) @ (C_in, C_out·2s) → (B, L, C_out, 2, s).
        let cols = xs
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * l, c_in))?
            .matmul(&self.weight)?
            .reshape((b, l, self.out_c, 2, s))?;
        // Output block j (s samples) = first half of frame j + second half of frame j−1.
        let first = cols.narrow(3, 0, 1)?.squeeze(3)?.pad_with_zeros(1, 0, 1)?;
        let second = cols.narrow(3, 1, 1)?.squeeze(3)?.pad_with_zeros(1, 1, 0)?;
        let full = (first + second)? // (B, L+1, C_out, s)
            .permute((0, 2, 1, 3))?
            .reshape((b, self.out_c, (l + 1) * s))?;
        let len = (l + 1) * s - self.trim_left - self.trim_right;
        full.narrow(D::Minus1, self.trim_left, len)?
            .broadcast_add(&self.bias.reshape((1, (), 1))?)
    }
}

/// Pads the last axis. Reflect excludes the edge sample (torch semantics); an input no longer
/// than the widest pad is first zero-extended on the right, reflected, then the extension is
/// dropped again — transformers' rule, which 1-frame decodes hit.
pub fn pad1d(xs: &Tensor, left: usize, right: usize, mode: PadMode) -> candle_core::Result<Tensor> {
    if left == 0 && right == 0 {
        return Ok(xs.clone());
    }
    match mode {
        PadMode::Constant => xs.pad_with_zeros(D::Minus1, left, right),
        PadMode::Replicate => xs.pad_with_same(D::Minus1, left, right),
        PadMode::Reflect => {
            let len = xs.dim(D::Minus1)?;
            let extra = (left.max(right) + 1).saturating_sub(len);
            let xs = if extra > 0 {
                xs.pad_with_zeros(D::Minus1, 0, extra)?
            } else {
                xs.clone()
            };
            let padded = xs.index_select(
                &reflect_index(len + extra, left, right, xs.device())?,
                D::Minus1,
            )?;
            padded.narrow(D::Minus1, 0, left + len + right)
        }
    }
}

/// Gather indices that reflect-pad a length-`len` axis by `left`/`right` in one `index_select`.
fn reflect_index(
    len: usize,
    left: usize,
    right: usize,
    device: &candle_core::Device,
) -> candle_core::Result<Tensor> {
    let last = len as i64 - 1;
    let idx: Vec<u32> = (-(left as i64)..(len + right) as i64)
        .map(|j| if j < 0 { -j } else if j > last { 2 * last - j } else { j } as u32)
        .collect();
    Tensor::from_vec(idx, left + len + right, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn row(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, (1, 1, v.len()), &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn reflect_matches_torch() {
        // Expected values printed by transformers 5.23's `EncodecConv1d._pad1d(x, (3, 2), "reflect")`.
        let y = pad1d(&row(&[1., 2., 3., 4., 5.]), 3, 2, PadMode::Reflect).unwrap();
        assert_eq!(values(&y), [4., 3., 2., 1., 2., 3., 4., 5., 4., 3.]);
    }

    #[test]
    fn reflect_short_input_uses_zero_extension() {
        // Expected values printed by transformers 5.23's `EncodecConv1d._pad1d(x, (3, 3), "reflect")`
        // for x = [7] and x = [1, 2] (zero-extend, reflect, drop the extension).
        let y = pad1d(&row(&[7.]), 3, 3, PadMode::Reflect).unwrap();
        assert_eq!(values(&y), [0., 0., 0., 7., 0., 0., 0.]);
        let y = pad1d(&row(&[1., 2.]), 3, 3, PadMode::Reflect).unwrap();
        assert_eq!(values(&y), [0., 0., 2., 1., 2., 0., 0., 0.]);
    }

    /// A batch gives exactly what each element gives alone (candle's own conv_transpose1d
    /// does not, see `UpsampleConv1d`); and for one element the overlap-add equals candle's
    /// conv_transpose1d followed by the same trim.
    #[test]
    fn upsample_is_batch_consistent_and_matches_conv_transpose() {
        use candle_core::IndexOp;
        let dev = Device::Cpu;
        let (c_in, c_out, s, l) = (6, 3, 5, 4);
        let v = Tensor::randn(0f32, 1., (c_in, c_out, 2 * s), &dev).unwrap();
        let up = UpsampleConv1d {
            weight: v.reshape((c_in, c_out * 2 * s)).unwrap(),
            bias: Tensor::randn(0f32, 1., c_out, &dev).unwrap(),
            out_c: c_out,
            stride: s,
            trim_left: 3,
            trim_right: 2,
        };
        let x = Tensor::randn(0f32, 1., (2, c_in, l), &dev).unwrap();
        let y = up.forward(&x).unwrap();
        assert_eq!(y.dims(), &[2, c_out, l * s]);
        for b in 0..2 {
            let xb = x.i(b..b + 1).unwrap();
            let alone = up.forward(&xb).unwrap();
            let diff = (y.i(b..b + 1).unwrap() - &alone)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
            let candle = xb
                .conv_transpose1d(&v, 0, 0, s, 1, 1)
                .unwrap()
                .narrow(2, 3, l * s)
                .unwrap();
            let candle = candle
                .broadcast_add(&up.bias.reshape((1, (), 1)).unwrap())
                .unwrap();
            let diff = (candle - alone).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        }
    }
}
