//! Typed views of a MusicGen checkpoint's `config.json`.
//!
//! Hub configs were written by many transformers versions: fields appear, disappear and change
//! defaults (old mono configs have no `audio_channels`). Every field we rely on therefore has the
//! default transformers itself would use, and unknown fields are ignored. candle's own EnCodec
//! config cannot read HF's strings (`"reflect"`, `"weight_norm"`), hence our own structs.
use std::path::Path;

use serde::Deserialize;

use crate::error::{EngineError, T5ConfigError};

/// The model families this engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    /// Text-conditioned MusicGen (cross-attention on T5 states); mono or stereo.
    Musicgen,
    /// MusicGen-Melody: no cross-attention, chroma + text prepended as a prefix.
    MusicgenMelody,
}

/// Melody-only top-level settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MelodyConfig {
    /// Chroma bins per frame (12).
    pub num_chroma: usize,
    /// Number of chroma frames the prefix is tiled/truncated to (235 = 30 s).
    pub chroma_length: usize,
}

/// The whole `config.json`.
#[derive(Debug, Clone)]
pub struct MusicgenConfig {
    /// Which family: decides between cross-attention and the melody prefix.
    pub model_type: ModelType,
    /// The T5 text encoder (`text_encoder`).
    pub text_encoder: TextEncoderConfig,
    /// The EnCodec codec that turns codes into 32 kHz audio (`audio_encoder`).
    pub audio_encoder: EncodecConfig,
    /// The MusicGen decoder (`decoder`).
    pub decoder: DecoderConfig,
    /// `Some` exactly when `model_type` is `musicgen_melody`.
    pub melody: Option<MelodyConfig>,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    text_encoder: TextEncoderConfig,
    audio_encoder: EncodecConfig,
    decoder: DecoderConfig,
    #[serde(default = "d::num_chroma")]
    num_chroma: usize,
    #[serde(default = "d::chroma_length")]
    chroma_length: usize,
}

impl MusicgenConfig {
    /// Reads and validates `config.json` at `path`.
    pub fn from_file(path: &Path) -> Result<Self, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses config JSON; `path` is only used in error messages.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, EngineError> {
        let json = |source| EngineError::Json {
            path: path.to_path_buf(),
            source,
        };
        // Look at model_type first so an unknown family gets its own error rather than a
        // confusing "missing field decoder".
        let value: serde_json::Value = serde_json::from_str(text).map_err(json)?;
        let found = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let model_type = match found.as_str() {
            "musicgen" => ModelType::Musicgen,
            "musicgen_melody" => ModelType::MusicgenMelody,
            _ => {
                return Err(EngineError::UnknownModelType {
                    found,
                    path: path.to_path_buf(),
                })
            }
        };
        let raw: RawConfig = serde_json::from_value(value).map_err(json)?;
        debug_assert!(raw.model_type.is_some());
        let cfg = MusicgenConfig {
            model_type,
            melody: (model_type == ModelType::MusicgenMelody).then_some(MelodyConfig {
                num_chroma: raw.num_chroma,
                chroma_length: raw.chroma_length,
            }),
            text_encoder: raw.text_encoder,
            audio_encoder: raw.audio_encoder,
            decoder: raw.decoder,
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Rejects configurations whose arithmetic would not work out, with a message naming why.
    fn validate(&self, path: &Path) -> Result<(), EngineError> {
        let bad = |reason: String| {
            Err(EngineError::UnsupportedConfig {
                path: path.to_path_buf(),
                reason,
            })
        };
        let d = &self.decoder;
        if !matches!(d.audio_channels, 1 | 2) {
            return bad(format!(
                "decoder.audio_channels = {} (1 or 2 supported)",
                d.audio_channels
            ));
        }
        if d.num_codebooks == 0 || !d.num_codebooks.is_multiple_of(d.audio_channels) {
            return bad(format!(
                "decoder.num_codebooks = {} is not a multiple of audio_channels = {}",
                d.num_codebooks, d.audio_channels
            ));
        }
        if d.num_attention_heads == 0 || !d.hidden_size.is_multiple_of(d.num_attention_heads) {
            return bad(format!(
                "decoder.hidden_size = {} is not divisible by num_attention_heads = {}",
                d.hidden_size, d.num_attention_heads
            ));
        }
        if d.activation_function != "gelu" {
            return bad(format!(
                "decoder.activation_function = {:?} (only \"gelu\")",
                d.activation_function
            ));
        }
        let a = &self.audio_encoder;
        a.validate()
            .or_else(|reason| bad(format!("audio_encoder: {reason}")))?;
        if a.num_quantizers() != d.num_codebooks / d.audio_channels {
            return bad(format!(
                "audio_encoder has {} quantizers but the decoder has {} codebooks per channel",
                a.num_quantizers(),
                d.num_codebooks / d.audio_channels
            ));
        }
        if a.codebook_size != d.vocab_size {
            return bad(format!(
                "audio_encoder.codebook_size = {} differs from decoder.vocab_size = {}",
                a.codebook_size, d.vocab_size
            ));
        }
        self.text_encoder
            .to_t5()
            .map(|_| ())
            .or_else(|reason| bad(format!("text_encoder: {reason}")))
    }
}

/// The MusicGen decoder (`config.json` → `decoder`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DecoderConfig {
    /// Codes per codebook (2048); the embedding tables have one more row, for BOS/pad.
    #[serde(default = "d::vocab")]
    pub vocab_size: usize,
    /// Positions the sinusoidal table holds (2048): prompt prefix plus generated tokens must fit.
    #[serde(default = "d::vocab")]
    pub max_position_embeddings: usize,
    /// Decoder layers (24 small, 48 medium/large/melody).
    #[serde(default = "d::layers")]
    pub num_hidden_layers: usize,
    /// Width of each layer's feed-forward (`fc1` out, `fc2` in).
    #[serde(default = "d::ffn")]
    pub ffn_dim: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    #[serde(default = "d::heads")]
    pub num_attention_heads: usize,
    /// Model width `H` (1024 small, 1536 medium/melody, 2048 large).
    #[serde(default = "d::hidden")]
    pub hidden_size: usize,
    /// Feed-forward activation; only `"gelu"` (exact erf GELU) is supported.
    #[serde(default = "d::gelu")]
    pub activation_function: String,
    /// Codebooks in all channels together (4 mono, 8 stereo).
    #[serde(default = "d::codebooks")]
    pub num_codebooks: usize,
    /// 1 (mono) or 2 (stereo); absent in old mono configs.
    #[serde(default = "d::one")]
    pub audio_channels: usize,
    /// Token that fills delayed and padded cells (2048).
    #[serde(default = "d::vocab_u32")]
    pub pad_token_id: u32,
    /// Token of the first column of every codebook row (2048).
    #[serde(default = "d::vocab_u32")]
    pub bos_token_id: u32,
    /// Present in configs but never applied by transformers for MusicGen (kept for completeness).
    #[serde(default)]
    pub scale_embedding: bool,
    /// Whether `lm_heads` share the embedding weights (false for MusicGen; read, not applied).
    #[serde(default)]
    pub tie_word_embeddings: bool,
}

impl DecoderConfig {
    /// Codebooks per audio channel (4 for every released model).
    pub fn codebooks_per_channel(&self) -> usize {
        self.num_codebooks / self.audio_channels
    }

    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// The T5 text encoder (`config.json` → `text_encoder`). Defaults are t5-base's.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TextEncoderConfig {
    /// Tokenizer vocabulary (32128 for t5-base).
    #[serde(default = "d::t5_vocab")]
    pub vocab_size: usize,
    /// Width of the encoder states (768); `enc_to_dec_proj` maps it to the decoder's width.
    #[serde(default = "d::t5_d_model")]
    pub d_model: usize,
    /// Per-head width of the attention (64).
    #[serde(default = "d::t5_d_kv")]
    pub d_kv: usize,
    /// Width of each block's feed-forward (3072).
    #[serde(default = "d::t5_d_ff")]
    pub d_ff: usize,
    /// Encoder blocks (12).
    #[serde(default = "d::t5_layers")]
    pub num_layers: usize,
    /// Decoder blocks of the full T5 (unused: MusicGen runs the encoder only).
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    /// Attention heads per block (12).
    #[serde(default = "d::t5_heads")]
    pub num_heads: usize,
    /// Buckets of the relative position bias (32).
    #[serde(default = "d::t5_buckets")]
    pub relative_attention_num_buckets: usize,
    /// Distance beyond which relative positions share a bucket (128).
    #[serde(default = "d::t5_max_distance")]
    pub relative_attention_max_distance: usize,
    /// RMSNorm epsilon (1e-6).
    #[serde(default = "d::t5_eps")]
    pub layer_norm_epsilon: f64,
    /// Feed-forward kind: `"relu"`, or `"gated-<act>"` for gated variants.
    #[serde(default = "d::t5_ffn")]
    pub feed_forward_proj: String,
    /// Tokenizer pad id (0).
    #[serde(default)]
    pub pad_token_id: usize,
    /// Tokenizer end-of-sequence id (1, `</s>`), appended to every prompt.
    #[serde(default = "d::one")]
    pub eos_token_id: usize,
}

impl TextEncoderConfig {
    /// The equivalent candle T5 config (for `candle_transformers::models::t5::T5EncoderModel`).
    /// A [`T5ConfigError`] names the unsupported setting.
    pub fn to_t5(&self) -> Result<candle_transformers::models::t5::Config, T5ConfigError> {
        use candle_transformers::models::t5::{ActivationWithOptionalGating, Config};
        let (gated, act) = match self.feed_forward_proj.strip_prefix("gated-") {
            Some(act) => (true, act),
            None => (false, self.feed_forward_proj.as_str()),
        };
        // t5's "gelu" in gated form is the tanh approximation (transformers maps gated-gelu to gelu_new).
        let act = if gated && act == "gelu" {
            "gelu_new"
        } else {
            act
        };
        let activation: candle_nn::Activation =
            serde_json::from_value(serde_json::Value::String(act.into())).map_err(|_| {
                T5ConfigError::UnsupportedFeedForward(self.feed_forward_proj.clone())
            })?;
        Ok(Config {
            vocab_size: self.vocab_size,
            d_model: self.d_model,
            d_kv: self.d_kv,
            d_ff: self.d_ff,
            num_layers: self.num_layers,
            num_decoder_layers: self.num_decoder_layers,
            num_heads: self.num_heads,
            relative_attention_num_buckets: self.relative_attention_num_buckets,
            relative_attention_max_distance: self.relative_attention_max_distance,
            dropout_rate: 0.0,
            layer_norm_epsilon: self.layer_norm_epsilon,
            initializer_factor: 1.0,
            feed_forward_proj: ActivationWithOptionalGating { gated, activation },
            tie_word_embeddings: true,
            is_decoder: false,
            is_encoder_decoder: false,
            use_cache: false,
            pad_token_id: self.pad_token_id,
            eos_token_id: self.eos_token_id,
            decoder_start_token_id: None,
        })
    }
}

/// Padding applied by EnCodec's non-causal convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PadMode {
    /// Mirror the signal about its edge sample, excluding it (MusicGen's codec).
    Reflect,
    /// Pad with zeros.
    Constant,
    /// Repeat the edge sample.
    Replicate,
}

/// The EnCodec audio codec (`config.json` → `audio_encoder`). Defaults are encodec_32khz's.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EncodecConfig {
    /// Audio sample rate in Hz (32000).
    #[serde(default = "d::sr")]
    pub sampling_rate: usize,
    /// Channels the codec decodes at once (1; stereo models run it once per channel).
    #[serde(default = "d::one")]
    pub audio_channels: usize,
    /// Whether the codec rescales audio by a per-clip norm (false; true is rejected).
    #[serde(default)]
    pub normalize: bool,
    /// Width of the latent the quantizer produces and the decoder reads (128).
    #[serde(default = "d::enc_hidden")]
    pub hidden_size: usize,
    /// Defaults to `hidden_size` (transformers does the same).
    #[serde(default)]
    pub codebook_dim: Option<usize>,
    /// Codes per codebook (2048); must equal the decoder's `vocab_size`.
    #[serde(default = "d::vocab")]
    pub codebook_size: usize,
    /// Channels of the last convolution before the output (64); doubles at each upsampling stage.
    #[serde(default = "d::filters")]
    pub num_filters: usize,
    /// Residual blocks per upsampling stage (1).
    #[serde(default = "d::one")]
    pub num_residual_layers: usize,
    /// Strides of the upsampling stages (`[8, 5, 4, 4]`); their product is the hop.
    #[serde(default = "d::ratios")]
    pub upsampling_ratios: Vec<usize>,
    /// Weight parametrisation; only `"weight_norm"` is supported.
    #[serde(default = "d::weight_norm")]
    pub norm_type: String,
    /// Kernel of the first convolution (7).
    #[serde(default = "d::seven")]
    pub kernel_size: usize,
    /// Kernel of the last convolution (7).
    #[serde(default = "d::seven")]
    pub last_kernel_size: usize,
    /// Kernel of the first convolution in each residual block (3).
    #[serde(default = "d::three")]
    pub residual_kernel_size: usize,
    /// Dilation growth between residual layers of a stage (2).
    #[serde(default = "d::two")]
    pub dilation_growth_rate: usize,
    /// Causal convolutions (false; true is rejected).
    #[serde(default)]
    pub use_causal_conv: bool,
    /// Padding of the non-causal convolutions (reflect).
    #[serde(default = "d::reflect")]
    pub pad_mode: PadMode,
    /// Channel compression in the residual blocks (2).
    #[serde(default = "d::two")]
    pub compress: usize,
    /// Layers of the LSTM after the first convolution (2).
    #[serde(default = "d::two")]
    pub num_lstm_layers: usize,
    /// Bandwidths in kbps the codec was trained for; the last one sets the quantizer count.
    #[serde(default = "d::bandwidths")]
    pub target_bandwidths: Vec<f64>,
    /// Convolutional residual shortcuts (false; true is rejected).
    #[serde(default)]
    pub use_conv_shortcut: bool,
}

impl EncodecConfig {
    /// Samples per code frame (640 at 32 kHz). Saturating: the ratios come from a file, and an
    /// absurd product must reach [`Self::validate`]'s refusal rather than overflow.
    pub fn hop_length(&self) -> usize {
        self.upsampling_ratios.iter().fold(1usize, |a, &r| a.saturating_mul(r))
    }

    /// Code frames per second (50 at 32 kHz), rounded up as transformers does.
    pub fn frame_rate(&self) -> usize {
        self.sampling_rate.div_ceil(self.hop_length().max(1))
    }

    /// Dimension of each codebook vector.
    pub fn codebook_dim(&self) -> usize {
        self.codebook_dim.unwrap_or(self.hidden_size)
    }

    /// Quantizers used at the highest target bandwidth (4 for MusicGen's 2.2 kbps).
    pub fn num_quantizers(&self) -> usize {
        let nbits = (self.codebook_size as f64).log2().ceil();
        let bw = self.target_bandwidths.last().copied().unwrap_or(0.0);
        (1000.0 * bw / (self.frame_rate() as f64 * nbits)).floor() as usize
    }

    /// What our decoder implements; anything else is named in the error.
    fn validate(&self) -> Result<(), String> {
        if self.norm_type != "weight_norm" {
            return Err(format!(
                "norm_type = {:?} (only \"weight_norm\")",
                self.norm_type
            ));
        }
        if self.use_causal_conv {
            return Err(
                "use_causal_conv = true (only the non-causal 32 kHz codec is supported)".into(),
            );
        }
        if self.use_conv_shortcut {
            return Err("use_conv_shortcut = true (only identity shortcuts are supported)".into());
        }
        if self.normalize {
            return Err("normalize = true (MusicGen codecs are not normalised)".into());
        }
        if self.upsampling_ratios.is_empty() || self.num_quantizers() == 0 {
            return Err("no upsampling ratios or no quantizers".into());
        }
        Ok(())
    }
}

/// serde defaults, named after what they are.
#[rustfmt::skip]
mod d {
    use super::PadMode;
    pub fn vocab() -> usize { 2048 }
    pub fn vocab_u32() -> u32 { 2048 }
    pub fn layers() -> usize { 24 }
    pub fn ffn() -> usize { 4096 }
    pub fn heads() -> usize { 16 }
    pub fn hidden() -> usize { 1024 }
    pub fn gelu() -> String { "gelu".into() }
    pub fn codebooks() -> usize { 4 }
    pub fn one() -> usize { 1 }
    pub fn two() -> usize { 2 }
    pub fn three() -> usize { 3 }
    pub fn seven() -> usize { 7 }
    pub fn num_chroma() -> usize { 12 }
    pub fn chroma_length() -> usize { 235 }
    pub fn t5_vocab() -> usize { 32128 }
    pub fn t5_d_model() -> usize { 768 }
    pub fn t5_d_kv() -> usize { 64 }
    pub fn t5_d_ff() -> usize { 3072 }
    pub fn t5_layers() -> usize { 12 }
    pub fn t5_heads() -> usize { 12 }
    pub fn t5_buckets() -> usize { 32 }
    pub fn t5_max_distance() -> usize { 128 }
    pub fn t5_eps() -> f64 { 1e-6 }
    pub fn t5_ffn() -> String { "relu".into() }
    pub fn sr() -> usize { 32000 }
    pub fn enc_hidden() -> usize { 128 }
    pub fn filters() -> usize { 64 }
    pub fn ratios() -> Vec<usize> { vec![8, 5, 4, 4] }
    pub fn weight_norm() -> String { "weight_norm".into() }
    pub fn reflect() -> PadMode { PadMode::Reflect }
    pub fn bandwidths() -> Vec<f64> { vec![2.2] }
}
