//! The EnCodec decoder: codes → waveform (quantizer decode + SEANet decoder).
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use super::conv::{SameConv1d, UpsampleConv1d};
use super::lstm::EncodecLstm;
use super::quantizer::Quantizer;
use crate::checkpoint::EncodecConfig;
use crate::error::EngineError;

/// SEANet residual block: x + conv_k1(ELU(conv_k3(ELU(x)))) with an identity shortcut.
#[derive(Debug, Clone)]
struct ResBlock {
    conv1: SameConv1d,
    conv2: SameConv1d,
}

impl ResBlock {
    fn new(
        cfg: &EncodecConfig,
        dim: usize,
        dilation: usize,
        vb: VarBuilder,
    ) -> Result<Self, EngineError> {
        let hidden = dim / cfg.compress;
        let block = vb.pp("block");
        // block.0 and block.2 are the (parameter-free) ELUs.
        let conv1 = SameConv1d::new(
            dim,
            hidden,
            cfg.residual_kernel_size,
            dilation,
            cfg.pad_mode,
            block.pp(1),
        )?;
        let conv2 = SameConv1d::new(hidden, dim, 1, 1, cfg.pad_mode, block.pp(3))?;
        Ok(Self { conv1, conv2 })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let ys = self.conv1.forward(&xs.elu(1.0)?)?;
        let ys = self.conv2.forward(&ys.elu(1.0)?)?;
        xs + ys
    }
}

/// One upsampling stage: ELU → ConvTranspose1d (×ratio, channels halved) → residual blocks.
#[derive(Debug, Clone)]
struct Stage {
    up: UpsampleConv1d,
    blocks: Vec<ResBlock>,
}

/// EnCodec decoder of a MusicGen checkpoint (`audio_encoder.*`): decodes one channel's codes.
///
/// Matches transformers' `EncodecModel.decode` for the non-causal 32 kHz codec
/// (no chunking, no normalisation scale).
#[derive(Debug, Clone)]
pub struct EncodecDecoder {
    quantizer: Quantizer,
    conv_in: SameConv1d,
    lstm: EncodecLstm,
    stages: Vec<Stage>,
    conv_out: SameConv1d,
    hop_length: usize,
}

impl EncodecDecoder {
    /// Loads from `vb` positioned at the codec (e.g. `checkpoint_vb.pp("audio_encoder")`).
    /// Tensor names follow transformers' `EncodecModel`: `quantizer.layers.{q}.codebook.embed`,
    /// `decoder.layers.{i}...` in module order.
    pub fn new(cfg: &EncodecConfig, vb: VarBuilder) -> Result<Self, EngineError> {
        let quantizer = Quantizer::new(
            cfg.num_quantizers(),
            cfg.codebook_size,
            cfg.codebook_dim(),
            vb.pp("quantizer"),
        )?;
        if cfg.codebook_dim() != cfg.hidden_size {
            return Err(EngineError::UnsupportedConfig {
                path: "config.json".into(),
                reason: format!(
                    "audio_encoder.codebook_dim = {} differs from hidden_size = {} (needs a projection)",
                    cfg.codebook_dim(),
                    cfg.hidden_size
                ),
            });
        }
        let layers = vb.pp("decoder").pp("layers");
        let mut channels = cfg.num_filters << cfg.upsampling_ratios.len();
        let mut idx = 0;
        let mut next = || {
            idx += 1;
            layers.pp(idx - 1)
        };
        let conv_in = SameConv1d::new(
            cfg.hidden_size,
            channels,
            cfg.kernel_size,
            1,
            cfg.pad_mode,
            next(),
        )?;
        let lstm = EncodecLstm::new(channels, cfg.num_lstm_layers, next())?;
        let mut stages = Vec::with_capacity(cfg.upsampling_ratios.len());
        for &ratio in &cfg.upsampling_ratios {
            let _elu = next();
            let up = UpsampleConv1d::new(channels, channels / 2, ratio, next())?;
            channels /= 2;
            let blocks = (0..cfg.num_residual_layers)
                .map(|j| {
                    ResBlock::new(
                        cfg,
                        channels,
                        cfg.dilation_growth_rate.pow(j as u32),
                        next(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            stages.push(Stage { up, blocks });
        }
        let _elu = next();
        let conv_out = SameConv1d::new(
            channels,
            cfg.audio_channels,
            cfg.last_kernel_size,
            1,
            cfg.pad_mode,
            next(),
        )?;
        Ok(Self {
            quantizer,
            conv_in,
            lstm,
            stages,
            conv_out,
            hop_length: cfg.hop_length(),
        })
    }

    /// Samples produced per code frame (640 at 32 kHz).
    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    /// Decodes codes (B, n_q, F) — u32 (any integer dtype is accepted), n_q ≤ the codec's
    /// quantizers — into audio (B, 1, hop·F) in the decoder's dtype. No clipping.
    pub fn decode(&self, codes: &Tensor) -> Result<Tensor, EngineError> {
        let codes = self.quantizer.check_codes(codes)?;
        let xs = self.quantizer.decode(&codes)?;
        let xs = self.conv_in.forward(&xs)?;
        let xs = self.lstm.forward(&xs)?;
        Ok(self.synthesize(&xs)?)
    }

    /// The device the codec's weights live on.
    pub fn device(&self) -> &candle_core::Device {
        self.quantizer.device()
    }

    pub(super) fn quantizer(&self) -> &Quantizer {
        &self.quantizer
    }

    pub(super) fn conv_in(&self) -> &SameConv1d {
        &self.conv_in
    }

    pub(super) fn lstm(&self) -> &EncodecLstm {
        &self.lstm
    }

    /// The part after the LSTM: upsampling stages and the output conv, (B, C, F) LSTM outputs →
    /// (B, 1, hop·F) audio. It is purely convolutional, so every output sample depends only on
    /// the LSTM outputs within [`Self::synth_context_frames`] frames of its own frame.
    pub(super) fn synthesize(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut xs = xs.clone();
        for stage in &self.stages {
            xs = stage.up.forward(&xs.elu(1.0)?)?;
            for block in &stage.blocks {
                xs = block.forward(&xs)?;
            }
        }
        self.conv_out.forward(&xs.elu(1.0)?)
    }

    /// An upper bound, in code frames, on how far (either way) an output sample of
    /// `synthesize` reaches into its input: the receptive field of the convolutional
    /// stack, walked back from the output. Through a stage, the residual convs add their pads
    /// (in that stage's samples); the transposed conv maps `r` output samples to at most
    /// `⌈r/s⌉ + 2` input samples (an output block depends on its own input frame and the one
    /// before, and the trim shifts by less than one block). For the 32 kHz codec this is 3.
    pub fn synth_context_frames(&self) -> usize {
        let mut reach = self.conv_out.context_left().max(self.conv_out.context_right());
        for stage in self.stages.iter().rev() {
            for block in &stage.blocks {
                for conv in [&block.conv1, &block.conv2] {
                    reach += conv.context_left().max(conv.context_right());
                }
            }
            reach = reach.div_ceil(stage.up.stride()) + 2;
        }
        reach
    }
}
