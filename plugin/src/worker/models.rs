//! The models the worker has loaded, each once per process, and the small traits through which
//! the worker drives an engine. The traits keep the worker testable without real weights; the
//! MusicGen engine implements them in `musicgen_backend.rs`.

use melodygen_engine::record::Quant;
use super::job::{Job, JobError};
use melodygen_engine::wav::Audio;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Progress reported by a model while it generates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EngineStep {
    Generating { step: u32, total: u32 },
    Decoding,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

/// A loaded model. Shared by every instance that uses it, hence `&self` and `Sync`.
pub trait Model: Send + Sync {
    /// Rate of the audio [`Model::generate`] returns.
    fn sample_rate(&self) -> u32;
    /// Whether the model follows a melody (MusicGen-Melody). The worker then turns the
    /// captured melody into its exact conditioning before generating, and records it with the
    /// clip. Models that ignore melodies keep the default.
    fn takes_melody(&self) -> bool {
        false
    }
    /// Generates `job.seconds` of audio for `job.settings` at [`Model::sample_rate`], mono or
    /// stereo, following `job.melody` (for a melody model the worker has already replaced the
    /// capture there by its exact record). Hands consecutive pieces to `on_audio` (model rate,
    /// one channel per model channel) as soon as they exist, so the instance can preview them;
    /// the returned clip is those pieces concatenated. Must check `job.cancel` between steps and
    /// return [`ModelError::Cancelled`] once it is set.
    ///
    /// The model takes the job itself: there is no separate request type to fill in, and the
    /// engine's own request is made from `job.settings` by `JobSettings::request`.
    fn generate(
        &self,
        job: &Job,
        progress: &mut dyn FnMut(EngineStep),
        on_audio: &mut dyn FnMut(&Audio),
    ) -> Result<Audio, ModelError>;
}

/// Turns a model choice into a loaded model.
pub trait Backend: Send + Sync {
    /// Resolves a model choice (a folder or a repository id) to the folder holding its files.
    fn resolve(&self, spec: &str) -> Result<PathBuf, String>;
    /// Loads the model in `dir` with its decoder weights in `quant`. Slow; only the worker
    /// thread calls it.
    fn load(&self, dir: &Path, quant: Quant) -> Result<Arc<dyn Model>, String>;
    /// Names the device and dtype models are loaded for; part of the cache key.
    fn device_key(&self) -> String;
}

/// Loaded models keyed by resolved folder, device and weight format (two instances asking for
/// the same model in different formats get two models; the same format shares one). Owned by the worker thread alone, so it
/// needs no lock; the load counter is shared so tests and diagnostics can read it.
pub struct ModelCache {
    backend: Arc<dyn Backend>,
    models: HashMap<(PathBuf, String, Quant), Arc<dyn Model>>,
    loads: Arc<AtomicU64>,
}

impl ModelCache {
    pub fn new(backend: Arc<dyn Backend>, loads: Arc<AtomicU64>) -> Self {
        Self {
            backend,
            models: HashMap::new(),
            loads,
        }
    }

    /// Returns the model for `spec` in `quant`, loading it on first use. A panic in the loader is caught and
    /// reported as an error; a failed load is not cached, so fixing the files and retrying works.
    /// Returns the resolved folder with the model.
    pub fn get(&mut self, spec: &str, quant: Quant) -> Result<(PathBuf, Arc<dyn Model>), JobError> {
        let model_err = |message: String| JobError::Model {
            model: spec.to_string(),
            message,
        };
        let backend = self.backend.clone();
        let dir = catch(|| backend.resolve(spec))
            .map_err(&model_err)?
            .map_err(&model_err)?;
        let key = (dir, self.backend.device_key(), quant);
        if let Some(m) = self.models.get(&key) {
            return Ok((key.0, m.clone()));
        }
        let model = catch(|| backend.load(&key.0, quant))
            .map_err(&model_err)?
            .map_err(&model_err)?;
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.models.insert(key.clone(), model.clone());
        Ok((key.0, model))
    }

    /// Number of distinct models held.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// Runs `f`, turning a panic into an error message so it never unwinds further.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}

#[cfg(test)]
pub mod fake {
    //! A stand-in engine for worker tests: "generates" a tone of the requested length, one step
    //! per 10 ms of audio, honouring cancellation; can be told to fail or panic.

    use super::*;
    use std::time::Duration;

    pub struct FakeModel {
        pub rate: u32,
        pub channels: usize,
        pub step_delay: Duration,
    }

    impl Model for FakeModel {
        fn sample_rate(&self) -> u32 {
            self.rate
        }

        /// One piece of the tone per step (the last one takes the remainder), as soon as
        /// the step is done.
        fn generate(
            &self,
            job: &Job,
            progress: &mut dyn FnMut(EngineStep),
            on_audio: &mut dyn FnMut(&Audio),
        ) -> Result<Audio, ModelError> {
            if job.settings.prompt.contains("panic") {
                panic!("planted engine panic");
            }
            let frames = (job.seconds * self.rate as f32) as usize;
            let total = (frames / (self.rate as usize / 100)).max(1);
            for step in 1..=total {
                if job.cancel.load(Ordering::Relaxed) {
                    return Err(ModelError::Cancelled);
                }
                std::thread::sleep(self.step_delay);
                progress(EngineStep::Generating { step: step as u32, total: total as u32 });
                let end = if step == total { frames } else { step * frames / total };
                on_audio(&self.tone((step - 1) * frames / total..end));
            }
            progress(EngineStep::Decoding);
            Ok(self.tone(0..frames))
        }
    }

    impl FakeModel {
        /// Samples `range` of the tone it "generates" (what a test compares a clip against).
        pub fn tone(&self, range: std::ops::Range<usize>) -> Audio {
            let tone: Vec<f32> = range
                .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / self.rate as f32).sin() * 0.5)
                .collect();
            Audio {
                sample_rate: self.rate,
                channels: vec![tone; self.channels],
            }
        }
    }

    /// Resolves any spec naming an existing folder; "corrupt" folders fail to load.
    pub struct FakeBackend {
        pub step_delay: Duration,
    }

    impl Backend for FakeBackend {
        fn resolve(&self, spec: &str) -> Result<PathBuf, String> {
            match spec {
                s if s.starts_with("missing") => Err(format!("no model files in {s}")),
                s => Ok(PathBuf::from(s)),
            }
        }
        fn load(&self, dir: &Path, _quant: Quant) -> Result<Arc<dyn Model>, String> {
            let name = dir.to_string_lossy();
            if name.contains("corrupt") {
                return Err(format!(
                    "{name}/model.safetensors: header is not valid JSON"
                ));
            }
            if name.contains("loadpanic") {
                panic!("planted loader panic");
            }
            let channels = if name.contains("stereo") { 2 } else { 1 };
            Ok(Arc::new(FakeModel {
                rate: 32_000,
                channels,
                step_delay: self.step_delay,
            }))
        }
        fn device_key(&self) -> String {
            "cpu/f32".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeBackend;
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_model_is_loaded_once_and_failures_are_messages() {
        let loads = Arc::new(AtomicU64::new(0));
        let mut cache = ModelCache::new(
            Arc::new(FakeBackend {
                step_delay: Duration::ZERO,
            }),
            loads.clone(),
        );
        let (dir, a) = cache.get("tiny", Quant::F32).unwrap();
        let (_, b) = cache.get("tiny", Quant::F32).unwrap();
        assert_eq!(dir, PathBuf::from("tiny"));
        assert!(Arc::ptr_eq(&a, &b));
        cache.get("tiny-stereo", Quant::F32).unwrap();
        assert_eq!(loads.load(Ordering::Relaxed), 2);
        // Another weight format of the same folder is another model; the same format is shared.
        let (_, q) = cache.get("tiny", Quant::Q8_0).unwrap();
        let (_, q2) = cache.get("tiny", Quant::Q8_0).unwrap();
        assert!(!Arc::ptr_eq(&a, &q) && Arc::ptr_eq(&q, &q2));
        assert_eq!(loads.load(Ordering::Relaxed), 3);
        let loads_before_errors = 3;

        let e = cache.get("tiny-corrupt", Quant::F32).err().unwrap();
        assert!(e.to_string().contains("header is not valid JSON"), "{e}");
        assert!(e.to_string().contains("tiny-corrupt"), "{e}");
        let e = cache.get("missing-model", Quant::F32).err().unwrap();
        assert!(e.to_string().contains("no model files"), "{e}");
        let e = cache.get("loadpanic", Quant::Q4K).err().unwrap();
        assert!(e.to_string().contains("planted loader panic"), "{e}");
        assert_eq!((loads.load(Ordering::Relaxed), cache.len()), (loads_before_errors, 3));
    }
}
