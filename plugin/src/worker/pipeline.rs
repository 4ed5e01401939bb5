//! One job, start to finish, on the worker thread: load the model (from the cache), generate
//! (streaming pieces to the instance when it previews them), bring the clip to the host rate
//! (through `host_rate`), save it. Cancellation is checked
//! between stages and, inside generation, between the engine's steps.
//!
//! Kept apart from `mod.rs`, which owns the process-wide handle, the queue and shutdown: this
//! file is what happens to one job once the thread has taken it off the queue.

use super::clip::{self, Clip};
use super::job::{Job, JobError};
use super::models::{catch, EngineStep, ModelCache, ModelError};
use super::{host_rate, partial};
use super::progress::Stage;
use melodygen_engine::record::{ClipMeta, Melody, MelodyRecord};
use melodygen_engine::wav::Audio;
use std::sync::atomic::Ordering;
use std::time::Instant;

fn check_cancel(job: &Job) -> Result<(), JobError> {
    if job.cancel.load(Ordering::Relaxed) {
        Err(JobError::Cancelled)
    } else {
        Ok(())
    }
}

/// Load → generate → convert to the host rate → save, checking the cancel flag between stages.
///
/// A panic anywhere in the job is caught here: inside the engine's generation it is
/// [`JobError::Panic`] ("the engine crashed"); anywhere else (the worker's own code) it is
/// [`JobError::Internal`], naming what the job was doing. Either way the worker goes on with
/// the next job.
///
/// Takes `job` mutably for one reason: a melody model's conditioning replaces the captured
/// melody in `job.melody` before the model reads it (the model takes the job as it is).
pub(super) fn run_job(cache: &mut ModelCache, job: &mut Job) -> Result<Clip, JobError> {
    let mut during = "starting the job";
    match catch(|| stages(cache, job, &mut during)) {
        Ok(result) => result,
        Err(detail) => Err(JobError::Internal {
            during: during.to_string(),
            detail,
        }),
    }
}

/// The job's stages; `during` names the one running, for [`run_job`]'s panic message.
fn stages(cache: &mut ModelCache, job: &mut Job, during: &mut &'static str) -> Result<Clip, JobError> {
    check_cancel(job)?;
    job.progress.set_stage(Stage::Loading);
    *during = "loading the model";
    let (model_dir, model) =
        cache.get(job.instance, &job.settings.params.model, job.settings.params.quant, &job.cancel)?;
    check_cancel(job)?;
    *during = "preparing the melody";

    // A melody model gets the melody as its exact conditioning, computed here once, so the
    // clip records what the model followed (and a replayed record stays as it is).
    let recorded = if model.takes_melody() {
        MelodyRecord::capture(&job.melody).map_err(|e| JobError::Generation(e.to_string()))?
    } else {
        None
    };
    if let Some(record) = &recorded {
        job.melody = Melody::Recorded(record.clone());
    }
    let job: &Job = job;

    job.progress.set_stage(Stage::Generating);
    *during = "generating";
    let started = Instant::now();
    let progress = &job.progress;
    let mut on_step = |s: EngineStep| match s {
        EngineStep::Generating { step, total } => {
            progress.set_step(step, total, started.elapsed().as_secs_f32())
        }
        EngineStep::Decoding => progress.set_stage(Stage::Decoding),
    };
    // Pieces of the clip go to the instance at the host rate while it is generated, when the
    // preview wants them; otherwise nothing is streamed and the clip is converted once below.
    let mut partial = job
        .settings
        .params
        .preview_while_generating
        .then(|| partial::PartialSender::new(job));
    let generated = catch(|| {
        let mut on_audio = |a: &Audio| {
            if let Some(p) = partial.as_mut() {
                p.push(a)
            }
        };
        model.generate(job, &mut on_step, &mut on_audio)
    })
    .map_err(JobError::Panic)?
    .map_err(|e| match e {
        ModelError::Cancelled => JobError::Cancelled,
        ModelError::Failed(m) => JobError::Generation(m),
    })?;
    check_cancel(job)?;
    let streamed = match partial {
        Some(p) => p.finish().map_err(JobError::Generation)?,
        None => None,
    };

    job.progress.set_stage(Stage::Resampling);
    *during = "converting the clip to the host's sample rate";
    let model_rate = generated.sample_rate;
    // The pieces sent while generating are the clip at the host rate already (the stream gives
    // the one-shot conversion's samples); convert here only when the host rate has changed
    // since, or nothing was streamed.
    let audio = match streamed {
        Some(audio) if audio.sample_rate == job.host_rate.load(Ordering::Relaxed) => audio,
        _ => host_rate::convert_to_current(&clip::to_stereo(generated), &job.host_rate)
            .map_err(JobError::Generation)?,
    };
    check_cancel(job)?;

    job.progress.set_stage(Stage::Writing);
    *during = "saving the clip";
    let mut clip = Clip {
        meta: ClipMeta {
            path: Default::default(),
            settings: job.settings.clone(),
            model_dir: Some(model_dir),
            seconds: job.seconds,
            sample_rate: audio.sample_rate,
            frames: audio.frames() as u64,
            model_rate,
            anchor: job.anchor,
            created: clip::now_rfc3339(),
            melody: recorded,
        },
        audio,
    };
    clip.save(&job.clip_dir, job.id)?;
    Ok(clip)
}
