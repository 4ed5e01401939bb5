//! The loaded model: the facade the CLI and the plugin's worker call.
//!
//! `MusicGen` owns no per-generation state (that lives in [`GenerationState`]), so one loaded
//! model can be shared between threads (`Arc<MusicGen>`) and serve generations one after another
//! or concurrently.
//!
//! The facade reads no files: [`MusicGen::from_checkpoint`] builds the model from an opened
//! [`Checkpoint`], which does the reading (configs, tokenizer, weights). [`MusicGen::load`] and
//! [`MusicGen::load_with`] are the one-call conveniences that open the folder first.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::conditioning::{ChromaFrame, Projections, TextEncoder};
use super::decoder::Decoder;
use super::generate::{GenerationState, Progress};
use super::qlinear::QuantReport;
use super::quant::Quant;
use super::request::{GenerationRequest, Generated, Prompt};
use super::sampling::SamplingConfig;
use crate::checkpoint::{Checkpoint, MusicgenConfig, WeightFiles};
use crate::encodec::EncodecDecoder;
use crate::error::EngineError;
use crate::wav::Audio;

/// How to load a model: the decoder's dtype, the format of its linear layers, and a flag that
/// cancels the load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Dtype of the decoder and projections (f32 on the CPU; f16/bf16 on a GPU).
    pub dtype: DType,
    /// Weight format of the decoder's linear layers. Quantized formats need f32 activations
    /// (`dtype` f32), which is what the CPU runs anyway.
    pub quant: Quant,
    /// Set (by any thread) to stop the load: it is checked before the folder is opened and
    /// before every tensor is read, converted and quantized, and a cancelled load returns
    /// [`EngineError::Cancelled`]. Why per tensor: loading a large model (quantizing it above
    /// all) takes seconds, and a host that removes the plugin must not wait for it.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl LoadOptions {
    /// These options in `quant` (f32 activations, no cancel flag).
    pub fn quant(quant: Quant) -> Self {
        Self { quant, ..Self::default() }
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { dtype: DType::F32, quant: Quant::F32, cancel: None }
    }
}

/// A loaded MusicGen or MusicGen-Melody model: T5 text encoder, conditioning projections,
/// decoder and EnCodec codec, ready to generate. Immutable once loaded, so one instance can serve
/// several generations (`&self` everywhere).
pub struct MusicGen {
    config: MusicgenConfig,
    text: TextEncoder,
    projections: Projections,
    decoder: Decoder,
    codec: EncodecDecoder,
    sample_rate: u32,
}

impl MusicGen {
    /// Loads a MusicGen or MusicGen-Melody checkpoint folder (config.json, safetensors, tokenizer.json).
    /// Opens the folder with [`Checkpoint::open`] and builds the model with
    /// [`Self::from_checkpoint`].
    ///
    /// `dtype` applies to the decoder and projections; T5 and EnCodec always run in f32. Half
    /// precision is refused on the CPU (slow and inaccurate there).
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<MusicGen, EngineError> {
        Self::load_with(dir, device, &LoadOptions { dtype, ..LoadOptions::default() })
    }

    /// As [`Self::load`], with the decoder's linear layers quantized to `opts.quant` while they
    /// are read (attention projections, feed-forward, LM heads; embeddings, norms, the text
    /// encoder and EnCodec stay float). See [`Self::quant_report`] for what each layer became.
    pub fn load_with(dir: &Path, device: &Device, opts: &LoadOptions) -> Result<MusicGen, EngineError> {
        // Refuse impossible options before touching the folder.
        check_options(device, opts)?;
        if opts.cancelled() {
            return Err(EngineError::Cancelled);
        }
        Self::from_checkpoint(&Checkpoint::open(dir)?, device, opts)
    }

    /// Builds the model from an opened checkpoint, as [`Self::load_with`] describes: checks the
    /// options and that every tensor is present with its shape, then maps the weights and reads
    /// the tokenizer through `ckpt`.
    ///
    /// A set `opts.cancel` stops it before the next tensor read and returns
    /// [`EngineError::Cancelled`], whatever error the interrupted read reported.
    pub fn from_checkpoint(ckpt: &Checkpoint, device: &Device, opts: &LoadOptions) -> Result<MusicGen, EngineError> {
        let result = Self::build(ckpt, device, opts);
        if opts.cancelled() {
            return Err(EngineError::Cancelled);
        }
        result
    }

    fn build(ckpt: &Checkpoint, device: &Device, opts: &LoadOptions) -> Result<MusicGen, EngineError> {
        check_options(device, opts)?;
        if opts.cancelled() {
            return Err(EngineError::Cancelled);
        }
        let (dtype, quant) = (opts.dtype, opts.quant);
        let config = ckpt.config.clone();
        check_tensors(&ckpt.weights()?, &config)?;

        let vb32 = ckpt.var_builder_cancellable(DType::F32, device, opts.cancel.clone())?;
        let vb = if dtype == DType::F32 { vb32.clone() } else { ckpt.var_builder_cancellable(dtype, device, opts.cancel.clone())? };
        let t5_cfg = config.text_encoder.to_t5().map_err(|reason| EngineError::UnsupportedConfig {
            path: ckpt.config_path(),
            reason: format!("text_encoder: {reason}"),
        })?;
        let text = TextEncoder::new(&t5_cfg, ckpt.tokenizer()?, vb32.pp("text_encoder"))?;
        let melody = config.melody.as_ref().map(|m| (m.num_chroma, m.chroma_length));
        let projections = Projections::new(config.text_encoder.d_model, config.decoder.hidden_size, melody, vb.clone())?;
        let decoder = Decoder::new_with(&config.decoder, melody.is_none(), quant, vb.pp("decoder"))?;
        let codec = EncodecDecoder::new(&config.audio_encoder, vb32.pp("audio_encoder"))?;
        let sample_rate = config.audio_encoder.sampling_rate as u32;
        Ok(MusicGen { config, text, projections, decoder, codec, sample_rate })
    }


    /// Output sample rate in Hz (32000, the codec's).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Output channels (1 mono, 2 stereo).
    pub fn channels(&self) -> usize {
        self.config.decoder.audio_channels
    }

    /// Whether the model follows a melody (MusicGen-Melody) and so accepts chroma.
    pub fn is_melody(&self) -> bool {
        self.config.melody.is_some()
    }

    /// The checkpoint's config.json.
    pub fn config(&self) -> &MusicgenConfig {
        &self.config
    }

    /// What the decoder's linear layers were stored as (requested format, per-format counts,
    /// bytes, and the layers that fell back because their size does not fit the block size).
    pub fn quant_report(&self) -> &QuantReport {
        self.decoder.quant_report()
    }

    /// The EnCodec decoder (streaming decodes drive it directly, see `streaming.rs`).
    pub fn codec(&self) -> &EncodecDecoder {
        &self.codec
    }

    /// The decoder, for teacher-forced logits and parity checks.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The projections from T5 states and chroma to the decoder's width.
    pub fn projections(&self) -> &Projections {
        &self.projections
    }

    /// The T5 text encoder (always f32).
    pub fn text_encoder(&self) -> &TextEncoder {
        &self.text
    }

    /// T5 token ids of a prompt (`</s>` included).
    pub fn tokenize(&self, prompt: &Prompt) -> Result<Vec<u32>, EngineError> {
        match prompt {
            Prompt::Text(t) => self.text.tokenize(t),
            Prompt::TokenIds(ids) => Ok(ids.clone()),
        }
    }

    /// Encodes `prompts` (token ids) and sets up a generation for the whole batch. `melodies`
    /// has one entry per prompt for melody models (`None` = text only) and is ignored otherwise.
    /// The prompt lengths are checked against the position table before T5 runs.
    pub fn start(
        &self,
        prompts: &[Vec<u32>],
        melodies: &[Option<&[ChromaFrame]>],
        max_new_tokens: usize,
        sampling: SamplingConfig,
        seed: u64,
        guidance: f32,
    ) -> Result<GenerationState<'_>, EngineError> {
        if prompts.is_empty() {
            return Err(EngineError::InvalidRequest("no prompts".into()));
        }
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let prefix = self.projections.prefix_len(longest);
        let needed = prefix + max_new_tokens;
        let limit = self.config.decoder.max_position_embeddings;
        if needed > limit {
            return Err(EngineError::SequenceTooLong {
                prompt_tokens: longest,
                prefix_positions: prefix,
                new_tokens: max_new_tokens,
                needed,
                limit,
            });
        }
        let hidden = prompts.iter().map(|ids| self.text.encode(ids)).collect::<Result<Vec<_>, _>>()?;
        let melodies: Vec<Option<&[ChromaFrame]>> =
            if self.is_melody() { (0..prompts.len()).map(|i| melodies.get(i).copied().flatten()).collect() } else { vec![] };
        let conditioning = self.projections.condition(&hidden, &melodies, guidance > 1.0)?;
        GenerationState::new(&self.decoder, conditioning, prompts.len(), max_new_tokens, sampling, seed, guidance)
    }

    /// EnCodec-decodes de-delayed codes `[K][F]` of one item. Stereo: even rows → left, odd → right.
    pub fn decode(&self, codes: &[Vec<u32>]) -> Result<Audio, EngineError> {
        let channels = self.channels();
        let k = self.config.decoder.num_codebooks;
        if codes.len() != k {
            return Err(EngineError::InvalidCodes(format!("{} codebook rows, the model has {k}", codes.len())));
        }
        let frames = codes[0].len();
        let device = self.decoder.device();
        let mut out = Vec::with_capacity(channels);
        for c in 0..channels {
            let rows: Vec<u32> = codes.iter().skip(c).step_by(channels).flatten().copied().collect();
            let t = Tensor::from_vec(rows, (1, k / channels, frames), device)?;
            let audio = self.codec.decode(&t)?; // (1, 1, 640·F)
            out.push(audio.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
        }
        Ok(Audio { sample_rate: self.sample_rate, channels: out })
    }

    /// Generates one clip. `melody`: one-hot chroma frames for melody models (ignored by text
    /// models; `None` on a melody model means text only). `progress` is called after every
    /// decoder step; `cancel` is checked before every step, and a cancelled run returns
    /// [`EngineError::Cancelled`].
    pub fn generate(
        &self,
        req: &GenerationRequest,
        melody: Option<&[[f32; 12]]>,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<Generated, EngineError> {
        req.validate()?;
        let ids = self.tokenize(&req.text)?;
        let mut state = self.start(&[ids], &[melody], req.max_new_tokens, req.sampling(), req.seed, req.guidance)?;
        state.run(progress, cancel)?;
        let codes = state.codes().pop().expect("batch of one");
        let audio = self.decode(&codes)?;
        Ok(Generated { audio, codes })
    }
}

/// Refuses the options no device runs: quantized weights with half-precision activations or off
/// the CPU, half precision on the CPU, and dtypes other than f32, f16 and bf16.
fn check_options(device: &Device, opts: &LoadOptions) -> Result<(), EngineError> {
    let (dtype, quant) = (opts.dtype, opts.quant);
    if quant != Quant::F32 && dtype != DType::F32 {
        return Err(EngineError::UnsupportedQuant {
            quant,
            reason: format!("quantized weights run with f32 activations; load with dtype f32, not {dtype:?}"),
        });
    }
    if quant != Quant::F32 && !device.is_cpu() {
        return Err(EngineError::UnsupportedQuant {
            quant,
            reason: "the quantized path is built for the CPU; on a GPU use f16 or bf16".into(),
        });
    }
    if dtype != DType::F32 && device.is_cpu() {
        return Err(EngineError::UnsupportedDtype { dtype: format!("{dtype:?}"), device: "the CPU".into() });
    }
    if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
        return Err(EngineError::UnsupportedDtype { dtype: format!("{dtype:?}"), device: format!("{device:?}") });
    }
    Ok(())
}

/// Checks every tensor the decoder, projections and T5 read, so a missing or misshapen one is
/// reported by name and shape (candle's own message would lose the type).
fn check_tensors(weights: &WeightFiles, cfg: &MusicgenConfig) -> Result<(), EngineError> {
    let d = &cfg.decoder;
    let t = &cfg.text_encoder;
    let h = d.hidden_size;
    let mut need: Vec<(String, Vec<usize>)> = Vec::new();
    let dec = "decoder.model.decoder";
    for k in 0..d.num_codebooks {
        need.push((format!("{dec}.embed_tokens.{k}.weight"), vec![d.vocab_size + 1, h]));
        need.push((format!("decoder.lm_heads.{k}.weight"), vec![d.vocab_size, h]));
    }
    let norm = |need: &mut Vec<(String, Vec<usize>)>, p: String| {
        need.push((format!("{p}.weight"), vec![h]));
        need.push((format!("{p}.bias"), vec![h]));
    };
    for i in 0..d.num_hidden_layers {
        let l = format!("{dec}.layers.{i}");
        let mut attn = vec!["self_attn"];
        if cfg.melody.is_none() {
            attn.push("encoder_attn");
        }
        for a in attn {
            for p in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                need.push((format!("{l}.{a}.{p}.weight"), vec![h, h]));
            }
            norm(&mut need, format!("{l}.{a}_layer_norm"));
        }
        need.push((format!("{l}.fc1.weight"), vec![d.ffn_dim, h]));
        need.push((format!("{l}.fc2.weight"), vec![h, d.ffn_dim]));
        norm(&mut need, format!("{l}.final_layer_norm"));
    }
    norm(&mut need, format!("{dec}.layer_norm"));
    need.push(("enc_to_dec_proj.weight".into(), vec![h, t.d_model]));
    need.push(("enc_to_dec_proj.bias".into(), vec![h]));
    if let Some(m) = &cfg.melody {
        need.push(("audio_enc_to_dec_proj.weight".into(), vec![h, m.num_chroma]));
        need.push(("audio_enc_to_dec_proj.bias".into(), vec![h]));
    }
    let inner = t.num_heads * t.d_kv;
    need.push(("text_encoder.shared.weight".into(), vec![t.vocab_size, t.d_model]));
    for i in 0..t.num_layers {
        let b = format!("text_encoder.encoder.block.{i}.layer");
        for p in ["q", "k", "v"] {
            need.push((format!("{b}.0.SelfAttention.{p}.weight"), vec![inner, t.d_model]));
        }
        need.push((format!("{b}.0.SelfAttention.o.weight"), vec![t.d_model, inner]));
        need.push((format!("{b}.0.layer_norm.weight"), vec![t.d_model]));
        need.push((format!("{b}.1.layer_norm.weight"), vec![t.d_model]));
    }
    need.push((
        "text_encoder.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight".into(),
        vec![t.relative_attention_num_buckets, t.num_heads],
    ));
    need.push(("text_encoder.encoder.final_layer_norm.weight".into(), vec![t.d_model]));
    for (name, expected) in need {
        match weights.shape(&name) {
            None => return Err(EngineError::MissingTensor { name, expected }),
            Some(actual) if actual != expected => return Err(EngineError::TensorShape { name, expected, actual }),
            Some(_) => {}
        }
    }
    Ok(())
}
