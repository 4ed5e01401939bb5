//! A MusicGen checkpoint on disk: where it is, what its config says, and its weights.
//!
//! Layout is the Hugging Face one (`config.json`, `generation_config.json`,
//! `model.safetensors` or `model.safetensors.index.json` + shards, `tokenizer.json`), whether the
//! folder was given directly or found in the HF cache.
//!
//! Every read of a checkpoint's files happens here (configs, tokenizer, weights), so the model
//! types are built from what a [`Checkpoint`] hands them and touch no files themselves.
mod config;
pub mod download;
mod generation;
mod resolve;
mod weights;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;

pub use config::{
    DecoderConfig, EncodecConfig, MelodyConfig, ModelType, MusicgenConfig, PadMode,
    TextEncoderConfig,
};
pub use generation::GenerationConfig;
pub use resolve::{hf_cache_root, looks_like_repo_id, resolve_in_cache, resolve_model};
pub use weights::{get_checked, WeightFiles};
#[cfg(test)]
pub(crate) use weights::read_hook;

use crate::error::EngineError;

/// An opened checkpoint folder. Opening reads the configs and lists the weight files but loads
/// no tensors; [`Checkpoint::var_builder`] maps them.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The model folder.
    pub dir: PathBuf,
    /// The parsed and validated `config.json`.
    pub config: MusicgenConfig,
    /// Defaults from `generation_config.json` (published defaults when the file is absent).
    pub generation: GenerationConfig,
    /// Safetensors files holding the weights (one, or the shards of the index, sorted).
    pub weight_files: Vec<PathBuf>,
}

impl Checkpoint {
    /// Opens the checkpoint folder `dir`: parses config.json (required), generation_config.json
    /// (optional) and finds the weight files (required). Does not read tensors.
    pub fn open(dir: &Path) -> Result<Self, EngineError> {
        if !dir.is_dir() {
            return Err(EngineError::ModelFolderMissing {
                path: dir.to_path_buf(),
            });
        }
        let config_path = config_path(dir);
        if !config_path.is_file() {
            return Err(EngineError::MissingFile {
                what: "model config (config.json)",
                path: config_path,
            });
        }
        let config = MusicgenConfig::from_file(&config_path)?;
        let generation =
            GenerationConfig::from_file_or_default(&dir.join("generation_config.json"))?;
        let weight_files = find_weight_files(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            generation,
            weight_files,
        })
    }

    /// Path of `config.json`, the file errors about the model's settings name.
    pub fn config_path(&self) -> PathBuf {
        config_path(&self.dir)
    }

    /// Path of `tokenizer.json`, or an error saying it is missing.
    pub fn tokenizer_path(&self) -> Result<PathBuf, EngineError> {
        let path = self.dir.join("tokenizer.json");
        if path.is_file() {
            Ok(path)
        } else {
            Err(EngineError::MissingFile {
                what: "tokenizer (tokenizer.json)",
                path,
            })
        }
    }

    /// Reads `tokenizer.json` (T5's tokenizer), or says why it cannot: missing, or not a
    /// tokenizer file.
    pub fn tokenizer(&self) -> Result<Tokenizer, EngineError> {
        let path = self.tokenizer_path()?;
        Tokenizer::from_file(&path).map_err(|e| EngineError::Tokenizer {
            path: path.clone(),
            reason: e.to_string(),
        })
    }

    /// Memory-maps the weight files (validating every header) into a `VarBuilder` that
    /// converts tensors to `dtype` on `device` and accepts both EnCodec weight-norm namings.
    /// Use [`get_checked`] for loads that should fail with typed errors.
    pub fn var_builder(
        &self,
        dtype: DType,
        device: &Device,
    ) -> Result<VarBuilder<'static>, EngineError> {
        self.var_builder_cancellable(dtype, device, None)
    }

    /// As [`Self::var_builder`], with every tensor read checking `cancel` first (a set flag makes
    /// the read fail; see [`WeightFiles::with_cancel`]).
    pub fn var_builder_cancellable(
        &self,
        dtype: DType,
        device: &Device,
        cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<VarBuilder<'static>, EngineError> {
        let files = WeightFiles::open(&self.weight_files)?.with_cancel(cancel);
        Ok(VarBuilder::from_backend(
            Box::new(files),
            dtype,
            device.clone(),
        ))
    }

    /// The opened weight files, for callers that want to inspect names/shapes without a
    /// `VarBuilder` (e.g. to validate before loading).
    pub fn weights(&self) -> Result<WeightFiles, EngineError> {
        WeightFiles::open(&self.weight_files)
    }
}

fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

/// `model.safetensors`, or the distinct shards listed in `model.safetensors.index.json`.
fn find_weight_files(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(EngineError::MissingWeights {
            dir: dir.to_path_buf(),
        });
    }
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(&index).map_err(|source| EngineError::Io {
        path: index.clone(),
        source,
    })?;
    let parsed: Index = serde_json::from_str(&text).map_err(|source| EngineError::Json {
        path: index.clone(),
        source,
    })?;
    let mut shards: Vec<String> = parsed.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    if shards.is_empty() {
        return Err(EngineError::MissingWeights {
            dir: dir.to_path_buf(),
        });
    }
    let paths: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        return Err(EngineError::MissingFile {
            what: "weights shard listed in model.safetensors.index.json",
            path: missing.clone(),
        });
    }
    Ok(paths)
}
