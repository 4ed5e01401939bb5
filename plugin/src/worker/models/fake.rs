//! A stand-in engine for worker tests: "generates" a tone of the requested length, one step
//! per 10 ms of audio, honouring cancellation; can be told (by the model's name) to fail, to
//! panic, or to load slowly, and keeps a weak pointer to every model it made so tests can see
//! which are still in memory.

use super::*;
use parking_lot::Mutex;
use std::sync::atomic::AtomicUsize;
use std::sync::Weak;
use std::time::Duration;

/// How long the "slowload" and "stubbornload" models take to load.
pub const SLOW_LOAD: Duration = Duration::from_millis(300);

pub struct FakeModel {
    pub rate: u32,
    pub channels: usize,
    pub step_delay: Duration,
    /// Panics in [`Model::takes_melody`], which the worker asks outside generation.
    pub panic_on_melody_question: bool,
}

impl Model for FakeModel {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn takes_melody(&self) -> bool {
        if self.panic_on_melody_question {
            panic!("planted worker panic");
        }
        false
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
    /// A model like the ones [`FakeBackend`] makes.
    pub fn new(rate: u32, channels: usize, step_delay: Duration) -> Self {
        Self { rate, channels, step_delay, panic_on_melody_question: false }
    }

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

/// Resolves any spec not starting with "missing" to the folder it names. By the folder's name:
/// "corrupt" fails to load, "loadpanic" panics in the loader, "slowload" takes [`SLOW_LOAD`]
/// and stops within 10 ms of a cancel, "stubbornload" takes as long and ignores cancel (like a
/// load without cancellation points), "melodypanic" makes a model that panics outside
/// generation, "stereo" a two-channel model.
pub struct FakeBackend {
    pub step_delay: Duration,
    /// Every model made, by folder and format, as a weak pointer: alive while someone holds it.
    made: Mutex<Vec<(PathBuf, Quant, Weak<FakeModel>)>>,
    /// Loads running now, and the most that ever ran at once.
    loading: AtomicUsize,
    pub most_loads_at_once: AtomicUsize,
    /// The most models ever alive at once (counted when a load ends).
    pub most_alive: AtomicUsize,
}

impl FakeBackend {
    pub fn new(step_delay: Duration) -> Self {
        Self {
            step_delay,
            made: Mutex::new(Vec::new()),
            loading: AtomicUsize::new(0),
            most_loads_at_once: AtomicUsize::new(0),
            most_alive: AtomicUsize::new(0),
        }
    }

    /// Whether a model of `dir` in `quant` is still in memory.
    pub fn alive(&self, dir: &str, quant: Quant) -> bool {
        self.made
            .lock()
            .iter()
            .any(|(d, q, w)| d == Path::new(dir) && *q == quant && w.strong_count() > 0)
    }

    /// How many models are in memory.
    pub fn alive_count(&self) -> usize {
        self.made.lock().iter().filter(|(_, _, w)| w.strong_count() > 0).count()
    }

    fn slow_load(&self, cancel: Option<&AtomicBool>) -> Result<(), ModelError> {
        let t = std::time::Instant::now();
        while t.elapsed() < SLOW_LOAD {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(ModelError::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Backend for FakeBackend {
    fn resolve(&self, spec: &str) -> Result<PathBuf, String> {
        match spec {
            s if s.starts_with("missing") => Err(format!("no model files in {s}")),
            s => Ok(PathBuf::from(s)),
        }
    }

    fn load(&self, dir: &Path, quant: Quant, cancel: &Arc<AtomicBool>) -> Result<Arc<dyn Model>, ModelError> {
        let at_once = self.loading.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_loads_at_once.fetch_max(at_once, Ordering::SeqCst);
        struct Done<'a>(&'a AtomicUsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _done = Done(&self.loading);
        let name = dir.to_string_lossy();
        if name.contains("corrupt") {
            return Err(ModelError::Failed(format!("{name}/model.safetensors: header is not valid JSON")));
        }
        if name.contains("loadpanic") {
            panic!("planted loader panic");
        }
        if name.contains("slowload") {
            self.slow_load(Some(cancel))?;
        }
        if name.contains("stubbornload") {
            self.slow_load(None)?;
        }
        let channels = if name.contains("stereo") { 2 } else { 1 };
        let model = Arc::new(FakeModel {
            panic_on_melody_question: name.contains("melodypanic"),
            ..FakeModel::new(32_000, channels, self.step_delay)
        });
        let mut made = self.made.lock();
        made.push((dir.to_path_buf(), quant, Arc::downgrade(&model)));
        let alive = made.iter().filter(|(_, _, w)| w.strong_count() > 0).count();
        self.most_alive.fetch_max(alive, Ordering::SeqCst);
        Ok(model)
    }

    fn device_key(&self) -> String {
        "cpu/f32".into()
    }
}
