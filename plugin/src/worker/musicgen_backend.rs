//! The worker's engine: MusicGen on Candle, through the engine's facade. Turns the captured
//! melody into the one-hot chroma MusicGen-Melody takes, and the job's settings into the engine's
//! request (through `JobSettings::request`, the one constructor the CLI uses too).

use super::job::Job;
use super::models::{Backend, EngineStep, Model, ModelError};
use melodygen_engine::checkpoint::resolve_model;
use melodygen_engine::error::EngineError;
use melodygen_engine::record::{Melody, MelodyRecord, Quant};
use melodygen_engine::musicgen::{LoadOptions, MusicGen, StreamConfig};
use melodygen_engine::wav::Audio;
use candle_core::DType;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Loads MusicGen checkpoints on the device of [`super::device::select`] (the CPU unless a
/// CUDA/Metal build finds its GPU; the window names it) with f32 activations (the only dtype the
/// engine accepts on a CPU) and the decoder weights in the job's format (f32, q8_0, q4k).
#[derive(Default)]
pub struct MusicGenBackend;

impl Backend for MusicGenBackend {
    fn resolve(&self, spec: &str) -> Result<PathBuf, String> {
        resolve_model(spec).map_err(|e| e.to_string())
    }

    fn load(&self, dir: &Path, quant: Quant, cancel: &Arc<AtomicBool>) -> Result<Arc<dyn Model>, ModelError> {
        // Inside a DAW the machine is shared with the host's audio and GUI threads: candle's
        // spinning pool gets half the cores (see `threads`). The CLI and the benchmark leave it
        // at candle's default, every core.
        melodygen_engine::musicgen::threads::configure_cpu_pool();
        let options = LoadOptions { dtype: DType::F32, quant, cancel: Some(cancel.clone()) };
        let model = MusicGen::load_with(dir, &super::device::select(), &options)
            .map_err(|e| match e {
                EngineError::Cancelled => ModelError::Cancelled,
                e => ModelError::Failed(e.to_string()),
            })?;

        Ok(Arc::new(MusicGenModel(model)))
    }

    fn device_key(&self) -> String {
        format!("{}/f32", super::device::name())
    }
}

struct MusicGenModel(MusicGen);

impl Model for MusicGenModel {
    fn sample_rate(&self) -> u32 {
        self.0.sample_rate()
    }

    fn takes_melody(&self) -> bool {
        self.0.is_melody()
    }

    /// Streams through the engine's streaming decode: the first piece after about 20 decoder
    /// steps, then one every 25 frames (0.5 s of audio).
    fn generate(
        &self,
        job: &Job,
        progress: &mut dyn FnMut(EngineStep),
        on_audio: &mut dyn FnMut(&Audio),
    ) -> Result<Audio, ModelError> {
        self.run(job, progress, on_audio)
    }
}

impl MusicGenModel {
    fn run(
        &self,
        job: &Job,
        progress: &mut dyn FnMut(EngineStep),
        on_audio: &mut dyn FnMut(&Audio),
    ) -> Result<Audio, ModelError> {
        let failed = |e: String| ModelError::Failed(e);
        let chroma = if self.0.is_melody() {
            melody_chroma(&job.melody).map_err(failed)?
        } else {
            None
        };
        let request = job.settings.request(job.seconds).map_err(|e| failed(e.to_string()))?;
        let mut on_step = |s: melodygen_engine::musicgen::Progress| {
            progress(EngineStep::Generating {
                step: s.step as u32,
                total: s.total as u32,
            });
            if s.step == s.total {
                progress(EngineStep::Decoding);
            }
        };
        let result = self.0.generate_streaming(
            &request,
            chroma.as_deref(),
            StreamConfig::default(),
            &mut on_step,
            &mut |chunk| on_audio(&chunk.audio),
            &job.cancel,
        );
        match result {
            Ok(generated) => Ok(generated.audio),
            Err(EngineError::Cancelled) => Err(ModelError::Cancelled),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

/// One-hot chroma frames of the melody (the captured one or a record); `None` for text only.
/// Computed through [`MelodyRecord`], so what the model gets is exactly what a clip records.
fn melody_chroma(melody: &Melody) -> Result<Option<Vec<[f32; 12]>>, String> {
    MelodyRecord::capture(melody).map_err(|e| e.to_string())?.map(|r| r.one_hot()).transpose().map_err(|e| e.to_string())
}
