//! What an instance asks the worker for, and what it gets back.

use super::clip::Clip;
use super::progress::Progress;
use melodygen_engine::record::{CaptureAnchor, JobSettings, Melody};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// A fresh id for a plugin instance (unique per process, never 0). The worker keeps loaded only
/// the models of its live instances' last jobs (see `models::ModelCache`), so each instance
/// takes one, puts it on its jobs and tells the worker when it goes (`Worker::forget_instance`).
pub fn new_instance_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A generation request from one instance.
pub struct Job {
    /// Unique per process; assigned by the worker on submission.
    pub id: u64,
    /// The instance that asked (see [`new_instance_id`]): the model this job uses becomes the
    /// one the worker keeps loaded for it.
    pub instance: u64,
    pub settings: JobSettings,
    pub melody: Melody,
    /// Resolved length of the clip.
    pub seconds: f32,
    /// The instance's current host sample rate. Read for every streamed piece and when the
    /// finished clip is converted (see `host_rate`), so a rate change
    /// while the job runs is honoured without restarting it.
    pub host_rate: Arc<AtomicU32>,
    /// Where on the host timeline the captured melody started.
    pub anchor: CaptureAnchor,
    /// Folder the clip's WAV and sidecar are written to.
    pub clip_dir: PathBuf,
    /// Set by the instance to abandon the job; checked between decoding steps.
    pub cancel: Arc<AtomicBool>,
    pub progress: Arc<Progress>,
    /// The instance's reply channel. A send error means the instance is gone.
    pub reply: crossbeam_channel::Sender<WorkerToInstance>,
}

/// Messages from the worker thread to one instance.
#[derive(Debug)]
pub enum WorkerToInstance {
    /// A piece of the clip being generated, already stereo at the host rate, so the instance
    /// can preview it before the job ends. Pieces come in order, before the job's `Finished`;
    /// `start` is the frame (at `audio.sample_rate`) where this one begins. A piece with
    /// `start == 0` begins the clip again: after a host rate change the worker resends what it
    /// has at the new rate. Without a rate change the pieces concatenated are exactly the
    /// finished clip's audio.
    Partial {
        job: u64,
        start: u64,
        audio: melodygen_engine::wav::Audio,
    },
    Finished {
        job: u64,
        result: Result<Clip, JobError>,
    },
}

/// Why a job produced no clip. The messages are shown to the user as they are.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum JobError {
    #[error("cancelled")]
    Cancelled,
    #[error("could not load model \"{model}\": {message}")]
    Model { model: String, message: String },
    #[error("generation failed: {0}")]
    Generation(String),
    #[error("the engine crashed ({0}); the host is unaffected")]
    Panic(String),
    /// A panic in the worker outside the engine (`during` says what it was doing).
    #[error("{}", internal_error_message(during, detail))]
    Internal { during: String, detail: String },
    /// The worker thread could not be started.
    #[error("could not start MelodyGen's generation thread ({0}); try again, or restart the host if it keeps happening")]
    Spawn(String),
    #[error("could not save the clip: {0}")]
    Save(String),
    #[error("the worker stopped")]
    WorkerStopped,
}

/// The window's words for a panic caught in one of MelodyGen's own threads (the worker outside
/// the engine, or an instance's dispatcher): what it was doing, that nothing is lost and the
/// plugin goes on, and the panic's own message for a bug report.
pub fn internal_error_message(during: &str, detail: &str) -> String {
    format!(
        "MelodyGen hit an internal error while {during}; your clips are safe and the plugin keeps \
         running (audio passes through, the library works). Please report it: {detail}"
    )
}
