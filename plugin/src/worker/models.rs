//! The models the worker has loaded, each once per process, and the small traits through which
//! the worker drives an engine. The traits keep the worker testable without real weights; the
//! MusicGen engine implements them in `musicgen_backend.rs`.

use melodygen_engine::record::Quant;
use super::job::{Job, JobError};
use melodygen_engine::wav::Audio;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// thread calls it. Should check `cancel` (the job's flag) as it goes and return
    /// [`ModelError::Cancelled`] once it is set.
    fn load(&self, dir: &Path, quant: Quant, cancel: &Arc<AtomicBool>) -> Result<Arc<dyn Model>, ModelError>;
    /// Names the device and dtype models are loaded for; part of the cache key.
    fn device_key(&self) -> String;
}

/// What a loaded model is known by: resolved folder, device and weight format (two instances
/// asking for the same model in different formats get two models; the same format shares one).
type Key = (PathBuf, String, Quant);

/// The loaded models, bounded by what the live instances use.
///
/// Policy: every instance has a current model, that of its last job (a job whose model cannot
/// be found leaves it as it was). The cache holds only models some instance has as current:
/// when an instance switches model or weight format, the one it leaves is freed unless another
/// instance is on it, and it is freed before the new one loads, so a switch never holds both;
/// an instance that goes away ([`ModelCache::forget`]) frees its model the same way. A job that
/// is running keeps its own reference, so it finishes even if its model leaves the cache.
///
/// Owned by the worker thread alone, so it needs no lock; the load counter is shared so tests
/// and diagnostics can read it.
pub struct ModelCache {
    backend: Arc<dyn Backend>,
    models: HashMap<Key, Arc<dyn Model>>,
    /// Each instance's current model.
    current: HashMap<u64, Key>,
    loads: Arc<AtomicU64>,
}

impl ModelCache {
    pub fn new(backend: Arc<dyn Backend>, loads: Arc<AtomicU64>) -> Self {
        Self {
            backend,
            models: HashMap::new(),
            current: HashMap::new(),
            loads,
        }
    }

    /// Returns the model for `spec` in `quant`, loading it on first use, and makes it
    /// `instance`'s current model (freeing the one it leaves, see the type's docs). A panic in
    /// the loader is caught and reported as an error; a failed or cancelled load is not cached
    /// (a cancelled one is [`JobError::Cancelled`]), so fixing the files and retrying works.
    /// Returns the resolved folder with the model.
    pub fn get(
        &mut self,
        instance: u64,
        spec: &str,
        quant: Quant,
        cancel: &Arc<AtomicBool>,
    ) -> Result<(PathBuf, Arc<dyn Model>), JobError> {
        let model_err = |message: String| JobError::Model {
            model: spec.to_string(),
            message,
        };
        let backend = self.backend.clone();
        let dir = catch(|| backend.resolve(spec))
            .map_err(&model_err)?
            .map_err(&model_err)?;
        let key = (dir, self.backend.device_key(), quant);
        self.current.insert(instance, key.clone());
        self.prune();
        if let Some(m) = self.models.get(&key) {
            return Ok((key.0, m.clone()));
        }
        let model = catch(|| backend.load(&key.0, quant, cancel))
            .map_err(&model_err)?
            .map_err(|e| match e {
                ModelError::Cancelled => JobError::Cancelled,
                ModelError::Failed(m) => model_err(m),
            })?;
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.models.insert(key.clone(), model.clone());
        Ok((key.0, model))
    }

    /// `instance` is gone: its model is freed unless another instance has it as current.
    pub fn forget(&mut self, instance: u64) {
        if self.current.remove(&instance).is_some() {
            self.prune();
        }
    }

    /// Frees every model (no instance is left).
    pub fn clear(&mut self) {
        self.current.clear();
        self.models.clear();
    }

    /// Drops the models no instance has as current.
    fn prune(&mut self) {
        let current = &self.current;
        self.models.retain(|key, _| current.values().any(|k| k == key));
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

/// A stand-in engine for the worker's tests (in `models/fake.rs`).
#[cfg(test)]
pub mod fake;

#[cfg(test)]
mod tests {
    use super::fake::FakeBackend;
    use super::*;
    use std::time::{Duration, Instant};

    fn cache(backend: &Arc<FakeBackend>) -> (ModelCache, Arc<AtomicU64>) {
        let loads = Arc::new(AtomicU64::new(0));
        (ModelCache::new(backend.clone(), loads.clone()), loads)
    }

    #[test]
    fn each_model_is_loaded_once_and_failures_are_messages() {
        let backend = Arc::new(FakeBackend::new(Duration::ZERO));
        let (mut cache, loads) = cache(&backend);
        let no = Arc::new(AtomicBool::new(false));
        // Three instances (1, 2, 3) on three models: each stays while its instance is on it.
        let (dir, a) = cache.get(1, "tiny", Quant::F32, &no).unwrap();
        let (_, b) = cache.get(1, "tiny", Quant::F32, &no).unwrap();
        assert_eq!(dir, PathBuf::from("tiny"));
        assert!(Arc::ptr_eq(&a, &b));
        cache.get(2, "tiny-stereo", Quant::F32, &no).unwrap();
        assert_eq!(loads.load(Ordering::Relaxed), 2);
        // Another weight format of the same folder is another model; the same format is shared.
        let (_, q) = cache.get(3, "tiny", Quant::Q8_0, &no).unwrap();
        let (_, q2) = cache.get(3, "tiny", Quant::Q8_0, &no).unwrap();
        assert!(!Arc::ptr_eq(&a, &q) && Arc::ptr_eq(&q, &q2));
        assert_eq!(loads.load(Ordering::Relaxed), 3);
        let loads_before_errors = 3;

        let e = cache.get(4, "tiny-corrupt", Quant::F32, &no).err().unwrap();
        assert!(e.to_string().contains("header is not valid JSON"), "{e}");
        assert!(e.to_string().contains("tiny-corrupt"), "{e}");
        let e = cache.get(5, "missing-model", Quant::F32, &no).err().unwrap();
        assert!(e.to_string().contains("no model files"), "{e}");
        let e = cache.get(6, "loadpanic", Quant::Q4K, &no).err().unwrap();
        assert!(e.to_string().contains("planted loader panic"), "{e}");
        assert_eq!((loads.load(Ordering::Relaxed), cache.len()), (loads_before_errors, 3));
    }

    /// Switching model or format frees the model no instance is on any more, before the new
    /// one loads; a model another instance is on stays; a forgotten instance frees its model.
    #[test]
    fn the_cache_keeps_only_the_models_live_instances_are_on() {
        let backend = Arc::new(FakeBackend::new(Duration::ZERO));
        let (mut cache, _) = cache(&backend);
        let no = Arc::new(AtomicBool::new(false));
        let (a, b) = (1, 2);
        drop(cache.get(a, "melody", Quant::F32, &no).unwrap());
        drop(cache.get(b, "melody", Quant::F32, &no).unwrap());
        drop(cache.get(a, "melody", Quant::Q8_0, &no).unwrap());
        assert!(backend.alive("melody", Quant::F32), "b is still on it");
        assert!(backend.alive("melody", Quant::Q8_0));
        drop(cache.get(b, "large", Quant::F32, &no).unwrap());
        assert!(!backend.alive("melody", Quant::F32), "nobody is on melody f32 any more");
        assert_eq!((cache.len(), backend.alive_count()), (2, 2));
        drop(cache.get(a, "large", Quant::F32, &no).unwrap());
        assert!(!backend.alive("melody", Quant::Q8_0));
        assert_eq!(backend.most_alive.load(Ordering::SeqCst), 2, "never more than the two in use");
        cache.forget(a);
        assert!(backend.alive("large", Quant::F32), "b is on it");
        cache.forget(b);
        assert_eq!((cache.len(), backend.alive_count()), (0, 0));
    }

    /// A load stops when the job's cancel flag is set, is reported as cancelled and is not
    /// cached: the next job loads the model again.
    #[test]
    fn a_cancelled_load_returns_at_once_and_is_not_cached() {
        let backend = Arc::new(FakeBackend::new(Duration::ZERO));
        let (mut cache, loads) = cache(&backend);
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            flag.store(true, Ordering::Relaxed);
        });
        let t = Instant::now();
        let e = cache.get(1, "tiny-slowload", Quant::F32, &cancel).err().unwrap();
        canceller.join().unwrap();
        assert_eq!(e, JobError::Cancelled);
        assert!(t.elapsed() < fake::SLOW_LOAD, "the load ran on for {:?}", t.elapsed());
        assert_eq!((cache.len(), loads.load(Ordering::Relaxed)), (0, 0));
        let no = Arc::new(AtomicBool::new(false));
        cache.get(1, "tiny-slowload", Quant::F32, &no).unwrap();
        assert_eq!((cache.len(), loads.load(Ordering::Relaxed)), (1, 1));
    }
}
