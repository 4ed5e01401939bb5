//! The engine's error type.
//!
//! One enum for the whole engine so callers (CLI, plugin) can match on what went wrong and
//! show a producer a sentence that names the file, tensor or setting at fault. Variants carry
//! the facts (paths, names, shapes) rather than pre-formatted strings where it helps matching.
//! The enum is `#[non_exhaustive]`: other engine modules add their own variants here.
use std::path::PathBuf;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A model argument named a local folder that does not exist (or is not a folder).
    #[error("model folder {path} does not exist or is not a folder")]
    ModelFolderMissing {
        /// The path given.
        path: PathBuf,
    },

    /// A Hugging Face repo id was given but no snapshot of it is in the local HF cache.
    #[error(
        "model {repo} is not in the Hugging Face cache (looked in {looked_in}); download it first, \
         e.g. `huggingface-cli download {repo}`, or pass the path of a folder holding \
         config.json, the model.safetensors file(s) and tokenizer.json"
    )]
    ModelNotInCache {
        /// The repo id, `owner/name`.
        repo: String,
        /// The HF cache folder searched.
        looked_in: PathBuf,
    },

    /// A file every checkpoint needs is absent from the model folder.
    #[error("{what} not found: expected {path}")]
    MissingFile {
        /// What the file is, e.g. `config.json`.
        what: &'static str,
        /// Where it was expected.
        path: PathBuf,
    },

    /// Neither `model.safetensors` nor `model.safetensors.index.json` is in the model folder.
    #[error("no weights in {dir}: expected model.safetensors or model.safetensors.index.json")]
    MissingWeights {
        /// The model folder.
        dir: PathBuf,
    },

    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (config, generation config, shard index) is malformed or misses a field.
    #[error("invalid JSON in {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde_json found, with line and column.
        #[source]
        source: serde_json::Error,
    },

    /// config.json names a model family this engine does not implement.
    #[error("unsupported model_type {found:?} in {path} (supported: \"musicgen\", \"musicgen_melody\")")]
    UnknownModelType {
        /// The `model_type` found (empty when absent).
        found: String,
        /// The config file.
        path: PathBuf,
    },

    /// config.json is well-formed but asks for something this engine does not implement.
    #[error("unsupported setting in {path}: {reason}")]
    UnsupportedConfig {
        /// The config file.
        path: PathBuf,
        /// The setting and the values supported, e.g. `decoder.audio_channels = 3 (1 or 2 supported)`.
        reason: String,
    },

    /// A safetensors file is truncated or not a safetensors file at all.
    #[error("corrupt or truncated weights file {path}: {reason}")]
    CorruptWeights {
        /// The weights file.
        path: PathBuf,
        /// What safetensors reported.
        reason: String,
    },

    /// A tensor the model needs is in none of the weight files.
    #[error("tensor {name} (expected shape {expected:?}) is missing from the checkpoint")]
    MissingTensor {
        /// Full tensor name, e.g. `decoder.lm_heads.0.weight`.
        name: String,
        /// The shape config.json implies.
        expected: Vec<usize>,
    },

    /// A tensor exists but has the wrong shape (usually: config.json does not match the weights).
    #[error("tensor {name} has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        /// Full tensor name.
        name: String,
        /// The shape config.json implies.
        expected: Vec<usize>,
        /// The shape in the file.
        actual: Vec<usize>,
    },

    /// Audio codes handed to a codec are malformed (wrong rank, count or range).
    #[error("invalid audio codes: {0}")]
    InvalidCodes(String),

    /// The caller cancelled a generation; no partial audio is returned.
    #[error("generation cancelled")]
    Cancelled,

    /// The prompt (plus, for melody models, the chroma prefix) and the requested length do not fit
    /// the decoder's position table.
    #[error(
        "the prompt has {prompt_tokens} tokens; with the conditioning prefix ({prefix_positions} positions) \
         and {new_tokens} new tokens the decoder needs {needed} positions, but the model's position table \
         holds {limit}; shorten the prompt or the duration"
    )]
    SequenceTooLong {
        /// T5 tokens of the longest text prompt (`</s>` included).
        prompt_tokens: usize,
        /// Decoder positions the conditioning prefix takes (melody: 235 chroma frames plus the text
        /// tokens; 0 for cross-attention models).
        prefix_positions: usize,
        /// Tokens asked for (`max_new_tokens`).
        new_tokens: usize,
        /// Positions the whole run needs.
        needed: usize,
        /// `decoder.max_position_embeddings` (2048 for the released models).
        limit: usize,
    },

    /// A generation setting or input is out of range (the message names it).
    #[error("invalid generation request: {0}")]
    InvalidRequest(String),

    /// tokenizer.json could not be loaded.
    #[error("cannot load the tokenizer {path}: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizers crate reported.
        reason: String,
    },

    /// A weight dtype the chosen device cannot run (half precision on the CPU).
    #[error("dtype {dtype} is not supported on {device} (use f32 on the CPU; f16/bf16 need a GPU)")]
    UnsupportedDtype {
        /// The dtype asked for, e.g. `f16`.
        dtype: String,
        /// The device, e.g. `the CPU`.
        device: String,
    },

    /// A weight format the chosen device or dtype cannot run.
    #[error("cannot load the decoder as {quant:#}: {reason}")]
    UnsupportedQuant {
        /// The format asked for.
        quant: crate::musicgen::Quant,
        /// Why it cannot be used here.
        reason: String,
    },

    /// A quantization name that is not one of f32, q8_0, q4k.
    #[error(transparent)]
    UnknownQuant(#[from] crate::musicgen::UnknownQuant),

    /// A tensor operation failed (device, dtype, out of memory...).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// A `text_encoder` setting candle's T5 encoder cannot run, from
/// [`TextEncoderConfig::to_t5`](crate::checkpoint::TextEncoderConfig::to_t5). Loading reports it
/// as [`EngineError::UnsupportedConfig`] with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum T5ConfigError {
    /// `feed_forward_proj` names an activation candle's T5 does not implement.
    #[error("feed_forward_proj = {0:?} is not supported")]
    UnsupportedFeedForward(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::TextEncoderConfig;

    #[test]
    fn an_unknown_t5_activation_is_a_typed_error_naming_the_setting() {
        let cfg: TextEncoderConfig = serde_json::from_str(r#"{"feed_forward_proj": "gated-nope"}"#).unwrap();
        let err = cfg.to_t5().unwrap_err();
        assert_eq!(err, T5ConfigError::UnsupportedFeedForward("gated-nope".into()));
        assert_eq!(err.to_string(), "feed_forward_proj = \"gated-nope\" is not supported");
        let ok: TextEncoderConfig = serde_json::from_str(r#"{"feed_forward_proj": "gated-gelu"}"#).unwrap();
        assert!(ok.to_t5().is_ok());
    }
}
