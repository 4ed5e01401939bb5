//! The generation worker: one thread per process, shared by every plugin instance.
//!
//! Data flows one way: an instance submits a [`Job`] (prompt, settings, captured melody, its own
//! reply channel, cancel flag and progress atomics); the worker loads the model (once per
//! process, see [`models::ModelCache`]), generates, resamples to the instance's current host rate,
//! saves the clip and sends it back on the job's reply channel.
//!
//! The worker is framework-free: nothing here knows about nice-plug. The plugin side holds an
//! `Arc<Worker>` per instance; the thread starts with the first job and stops when the last
//! `Arc` is dropped (see [`Worker::shared`]).

pub mod clip;
pub mod device;
pub mod download;
pub mod job;
pub mod models;
mod musicgen_backend;
mod partial;
pub mod progress;

use clip::Clip;
use melodygen_engine::record::{ClipMeta, Melody, MelodyRecord};
use job::{Job, JobError, WorkerToInstance};
use models::{catch, Backend, EngineStep, ModelCache, ModelError, ModelRequest};
use progress::Stage;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long dropping the last handle waits for the thread to notice its cancel flag before it
/// detaches it (a model load cannot be interrupted; the host must not stall on it).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// The process-wide worker, alive while some instance holds it.
static SHARED: Mutex<Weak<Worker>> = Mutex::new(Weak::new());

/// A handle to the worker. Every plugin instance holds one `Arc<Worker>`; the strong count is the
/// instance registration.
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// How many models the worker has loaded (not looked up): the sharing test reads it.
    loads: Arc<AtomicU64>,
    next_id: AtomicU64,
    thread: Mutex<Option<(JoinHandle<()>, crossbeam_channel::Receiver<()>)>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Cancel flag of the job being run.
    running: Option<(u64, Arc<AtomicBool>)>,
    shutdown: bool,
}

impl Queue {
    /// Tells every waiting job where it stands (1 = next).
    fn publish_positions(&self) {
        for (i, job) in self.jobs.iter().enumerate() {
            job.progress.set_queued(i as u32 + 1);
        }
    }
}

impl Worker {
    /// The process-wide worker with the MusicGen engine, created on first use and shared by every
    /// instance until the last one drops its handle. Cheap: the thread starts with the first job.
    pub fn shared() -> Arc<Worker> {
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = slot.upgrade() {
            return w;
        }
        let w = Worker::with_backend(Arc::new(musicgen_backend::MusicGenBackend));
        *slot = Arc::downgrade(&w);
        w
    }

    /// A private worker over any engine (tests use a fake one).
    pub fn with_backend(backend: Arc<dyn Backend>) -> Arc<Worker> {
        Arc::new(Worker {
            inner: Arc::new(Inner {
                backend,
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
                loads: Arc::new(AtomicU64::new(0)),
                next_id: AtomicU64::new(1),
                thread: Mutex::new(None),
            }),
        })
    }

    /// Queues `job` behind the jobs of every instance and returns its id. Not realtime-safe
    /// (locks, may spawn the thread): call it from a non-audio thread.
    pub fn submit(&self, mut job: Job) -> u64 {
        job.id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = job.id;
        job.progress.reset();
        {
            let mut q = self.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.jobs.push_back(job);
            q.publish_positions();
        }
        self.ensure_thread();
        self.inner.wake.notify_all();
        id
    }

    /// Cancels job `id`: a queued job leaves the queue at once (its reply says so); a running one
    /// stops at its next step. The instance sets the job's own cancel flag as well.
    pub fn cancel(&self, id: u64) {
        let removed = {
            let mut q = self.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((running, flag)) = &q.running {
                if *running == id {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            let idx = q.jobs.iter().position(|j| j.id == id);
            let removed = idx.and_then(|i| q.jobs.remove(i));
            q.publish_positions();
            removed
        };
        if let Some(job) = removed {
            job.progress.set_stage(Stage::Cancelled);
            let _ = job.reply.send(WorkerToInstance::Finished {
                job: id,
                result: Err(JobError::Cancelled),
            });
        }
    }

    /// Number of models loaded so far by this worker.
    pub fn model_loads(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// Jobs waiting (not counting the one running).
    pub fn queued(&self) -> usize {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .jobs
            .len()
    }

    /// Whether the worker thread is running.
    pub fn is_running(&self) -> bool {
        self.inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn ensure_thread(&self) {
        let mut slot = self.inner.thread.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let inner = self.inner.clone();
            let (done_tx, done_rx) = crossbeam_channel::bounded(1);
            let handle = std::thread::Builder::new()
                .name("melodygen-worker".into())
                .spawn(move || {
                    run(&inner);
                    drop(done_tx);
                })
                .expect("cannot spawn the MelodyGen worker thread");
            *slot = Some((handle, done_rx));
        }
    }
}

impl Drop for Worker {
    /// The last instance went away: cancel everything and stop the thread. Waits at most
    /// [`SHUTDOWN_WAIT`] so that removing a plugin never stalls the host.
    fn drop(&mut self) {
        {
            let mut q = self.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.shutdown = true;
            if let Some((_, flag)) = &q.running {
                flag.store(true, Ordering::Relaxed);
            }
            q.jobs.clear();
        }
        self.inner.wake.notify_all();
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((handle, done)) = thread {
            // Disconnected = the thread has returned; a timeout leaves it detached, to end by
            // itself once its current load or step finishes.
            if let Err(crossbeam_channel::RecvTimeoutError::Disconnected) =
                done.recv_timeout(SHUTDOWN_WAIT)
            {
                let _ = handle.join();
            }
        }
    }
}

/// The worker thread's loop.
fn run(inner: &Inner) {
    let mut cache = ModelCache::new(inner.backend.clone(), inner.loads.clone());
    loop {
        let job = {
            let mut q = inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.shutdown {
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    q.running = Some((job.id, job.cancel.clone()));
                    q.publish_positions();
                    break job;
                }
                q = inner.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result =
            catch(|| run_job(&mut cache, &job)).unwrap_or_else(|p| Err(JobError::Panic(p)));
        inner
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .running = None;
        job.progress.set_stage(match &result {
            Ok(_) => Stage::Done,
            Err(JobError::Cancelled) => Stage::Cancelled,
            Err(_) => Stage::Failed,
        });
        // A send error means the instance is gone; the clip stays on disk.
        let _ = job.reply.send(WorkerToInstance::Finished {
            job: job.id,
            result,
        });
    }
}

fn check_cancel(job: &Job) -> Result<(), JobError> {
    if job.cancel.load(Ordering::Relaxed) {
        Err(JobError::Cancelled)
    } else {
        Ok(())
    }
}

/// Load → generate → resample → save, checking the cancel flag between stages.
fn run_job(cache: &mut ModelCache, job: &Job) -> Result<Clip, JobError> {
    check_cancel(job)?;
    job.progress.set_stage(Stage::Loading);
    let (model_dir, model) = cache.get(&job.settings.params.model, job.settings.params.quant)?;
    check_cancel(job)?;

    job.progress.set_stage(Stage::Generating);
    let started = Instant::now();
    let progress = &job.progress;
    let mut on_step = |s: EngineStep| match s {
        EngineStep::Generating { step, total } => {
            progress.set_step(step, total, started.elapsed().as_secs_f32())
        }
        EngineStep::Decoding => progress.set_stage(Stage::Decoding),
    };
    // A melody model gets the melody as its exact conditioning, computed here once, so the
    // clip records what the model followed (and a replayed record stays as it is).
    let recorded = if model.takes_melody() {
        MelodyRecord::capture(&job.melody).map_err(|e| JobError::Generation(e.to_string()))?
    } else {
        None
    };
    let conditioning = recorded.clone().map(Melody::Recorded);
    let req = ModelRequest {
        settings: &job.settings,
        seconds: job.seconds,
        melody: conditioning.as_ref().unwrap_or(&job.melody),
    };
    // Pieces of the clip go to the instance at the host rate while it is generated.
    let mut partial = partial::PartialSender::new(job);
    let generated = catch(|| {
        model.generate(&req, &mut on_step, &mut |a| partial.push(a), &job.cancel)
    })
    .map_err(JobError::Panic)?
    .map_err(|e| match e {
        ModelError::Cancelled => JobError::Cancelled,
        ModelError::Failed(m) => JobError::Generation(m),
    })?;
    check_cancel(job)?;
    let streamed = partial.finish().map_err(JobError::Generation)?;

    job.progress.set_stage(Stage::Resampling);
    let model_rate = generated.sample_rate;
    // The pieces sent while generating are the clip at the host rate already (the stream
    // resampler gives the one-shot resampler's samples); resample here only when the host rate
    // has changed since, or nothing was streamed.
    let audio = match streamed {
        Some(audio) if audio.sample_rate == job.host_rate.load(Ordering::Relaxed) => audio,
        _ => {
            let stereo = clip::to_stereo(generated);
            // The host may change its rate while we resample: redo it until the rate we used
            // is current.
            loop {
                let rate = job.host_rate.load(Ordering::Relaxed);
                let out = clip::resample(&stereo, rate).map_err(JobError::Generation)?;
                if job.host_rate.load(Ordering::Relaxed) == rate {
                    break out;
                }
            }
        }
    };
    check_cancel(job)?;

    job.progress.set_stage(Stage::Writing);
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

#[cfg(test)]
mod tests {
    use melodygen_engine::record::{GenerationParams, JobSettings, Melody};
    use super::models::fake::FakeBackend;
    use super::progress::Progress;
    use super::*;
    use melodygen_engine::wav::Audio;
    use crossbeam_channel::Receiver;
    use std::sync::atomic::AtomicU32;

    struct TestInstance {
        progress: Arc<Progress>,
        cancel: Arc<AtomicBool>,
        rate: Arc<AtomicU32>,
        rx: Receiver<WorkerToInstance>,
        tx: crossbeam_channel::Sender<WorkerToInstance>,
    }

    impl TestInstance {
        fn new(rate: u32) -> Self {
            let (tx, rx) = crossbeam_channel::unbounded();
            Self {
                progress: Arc::default(),
                cancel: Arc::default(),
                rate: Arc::new(AtomicU32::new(rate)),
                rx,
                tx,
            }
        }
        fn job(&self, model: &str, prompt: &str, seconds: f32) -> Job {
            Job {
                id: 0,
                settings: JobSettings {
                    prompt: prompt.into(),
                    params: GenerationParams {
                        model: model.into(),
                        ..Default::default()
                    },
                },
                melody: Melody::None,
                seconds,
                host_rate: self.rate.clone(),
                anchor: Default::default(),
                clip_dir: std::env::temp_dir()
                    .join(format!("melodygen-worker-test-{}", std::process::id())),
                cancel: self.cancel.clone(),
                progress: self.progress.clone(),
                reply: self.tx.clone(),
            }
        }
        fn wait(&self) -> (u64, Result<Clip, JobError>) {
            let (job, result, _) = self.wait_with_partials();
            (job, result)
        }
        /// The job's reply and the partial pieces that came before it.
        fn wait_with_partials(&self) -> (u64, Result<Clip, JobError>, Vec<(u64, Audio)>) {
            let mut partials = Vec::new();
            loop {
                match self
                    .rx
                    .recv_timeout(Duration::from_secs(20))
                    .expect("no reply within 20 s")
                {
                    WorkerToInstance::Finished { job, result } => return (job, result, partials),
                    WorkerToInstance::Partial { start, audio, .. } => partials.push((start, audio)),
                }
            }
        }
    }

    fn worker(step_ms: u64) -> Arc<Worker> {
        Worker::with_backend(Arc::new(FakeBackend {
            step_delay: Duration::from_millis(step_ms),
        }))
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn jobs_from_several_instances_run_in_order_and_share_the_model() {
        let w = worker(2);
        assert!(
            !w.is_running(),
            "the thread starts with the first job, not before"
        );
        let a = TestInstance::new(44_100);
        let b = TestInstance::new(48_000);
        let c = TestInstance::new(48_000);
        let ja = w.submit(a.job("tiny", "a", 0.3));
        let jb = w.submit(b.job("tiny", "b", 0.1));
        let jc = w.submit(c.job("tiny-stereo", "c", 0.1));
        // While a runs, b and c wait at positions 1 and 2.
        wait_for("a to generate", || a.progress.stage() == Stage::Generating);
        let (sb, sc) = (b.progress.snapshot(), c.progress.snapshot());
        assert_eq!(
            (sb.stage, sb.queue_position, sc.stage, sc.queue_position),
            (Stage::Queued, 1, Stage::Queued, 2)
        );

        let (id, clip_a) = a.wait();
        let clip_a = clip_a.unwrap();
        assert_eq!(
            (id, clip_a.audio.sample_rate, clip_a.audio.frames()),
            (ja, 44_100, 13_230)
        );
        assert_eq!(clip_a.audio.channels.len(), 2);
        assert_eq!(
            clip_a.audio.channels[0], clip_a.audio.channels[1],
            "mono model → same signal on both sides"
        );
        let (id, clip_b) = b.wait();
        assert_eq!((id, clip_b.unwrap().meta.frames), (jb, 4_800));
        let (id, clip_c) = c.wait();
        assert_eq!(id, jc);
        assert!(clip_c.unwrap().meta.path.exists());
        assert_eq!(
            w.model_loads(),
            2,
            "tiny loaded once for a and b, tiny-stereo once"
        );
        assert_eq!((a.progress.stage(), w.queued()), (Stage::Done, 0));
        let s = a.progress.snapshot();
        assert!(
            s.step == s.total && s.total == 30 && s.steps_per_sec > 0.0,
            "{s:?}"
        );
    }

    #[test]
    fn cancelling_stops_running_and_queued_jobs_and_the_worker_goes_on() {
        let w = worker(5);
        let a = TestInstance::new(48_000);
        let b = TestInstance::new(48_000);
        let c = TestInstance::new(48_000);
        w.submit(a.job("tiny", "long", 60.0));
        let jb = w.submit(b.job("tiny", "queued", 60.0));
        w.submit(c.job("tiny", "short", 0.05));
        wait_for("a to start", || a.progress.snapshot().step > 2);
        let t = Instant::now();
        w.cancel(jb);
        assert_eq!(b.wait().1.unwrap_err(), JobError::Cancelled);
        assert_eq!(
            c.progress.snapshot().queue_position,
            1,
            "c moves up when b leaves"
        );
        a.cancel.store(true, Ordering::Relaxed);
        assert_eq!(a.wait().1.unwrap_err(), JobError::Cancelled);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "cancel took {:?}",
            t.elapsed()
        );
        assert_eq!(a.progress.stage(), Stage::Cancelled);
        assert!(c.wait().1.is_ok());
    }

    #[test]
    fn engine_panics_and_bad_models_become_messages() {
        let w = worker(0);
        let a = TestInstance::new(48_000);
        w.submit(a.job("tiny", "please panic", 0.1));
        let e = a.wait().1.unwrap_err();
        assert!(
            matches!(&e, JobError::Panic(m) if m.contains("planted engine panic")),
            "{e:?}"
        );
        assert_eq!(a.progress.stage(), Stage::Failed);
        w.submit(a.job("tiny-corrupt", "x", 0.1));
        let e = a.wait().1.unwrap_err().to_string();
        assert!(
            e.contains("could not load model \"tiny-corrupt\"") && e.contains("not valid JSON"),
            "{e}"
        );
        w.submit(a.job("tiny", "fine", 0.1));
        assert!(a.wait().1.is_ok(), "the worker survives a panic");
    }

    /// Concatenates partial pieces as an instance would (a piece at frame 0 starts over).
    fn assemble(partials: &[(u64, Audio)]) -> Audio {
        let mut out = Audio { sample_rate: 0, channels: vec![Vec::new(), Vec::new()] };
        for (start, a) in partials {
            if *start == 0 {
                out = Audio { sample_rate: a.sample_rate, channels: vec![Vec::new(), Vec::new()] };
            }
            assert_eq!((*start as usize, a.sample_rate), (out.frames(), out.sample_rate), "pieces in order");
            for (o, c) in out.channels.iter_mut().zip(&a.channels) {
                o.extend_from_slice(c);
            }
        }
        out
    }

    /// Audio arrives while the job runs (before Finished, many pieces, the first long before
    /// the end), at the host rate, and the pieces make exactly the finished clip.
    #[test]
    fn partial_audio_comes_before_the_clip_and_makes_the_clip() {
        let w = worker(2);
        let a = TestInstance::new(44_100);
        w.submit(a.job("tiny", "partial", 1.0)); // 100 steps of 2 ms, 320 samples each
        let mut partials = Vec::new();
        let mut first_sound_at_step = None;
        let clip = loop {
            match a.rx.recv_timeout(Duration::from_secs(20)).unwrap() {
                WorkerToInstance::Partial { start, audio, .. } => {
                    if audio.frames() > 0 && first_sound_at_step.is_none() {
                        first_sound_at_step = Some(a.progress.snapshot().step);
                    }
                    partials.push((start, audio));
                }
                WorkerToInstance::Finished { result, .. } => break result.unwrap(),
            }
        };
        // The resampler settles audio a block (4096 samples = 13 steps) behind the engine.
        let step = first_sound_at_step.expect("no audio before Finished");
        assert!(step < 40, "first audio heard at step {step} of 100");
        // 32 000 model samples = 7 whole resampler blocks while generating, the rest at the end.
        let sounding = partials.iter().filter(|(_, p)| p.frames() > 0).count();
        assert!(sounding >= 7, "{sounding} pieces with audio");
        assert_eq!((partials[0].0, partials[0].1.sample_rate), (0, 44_100));
        let heard = assemble(&partials);
        assert_eq!(heard.frames(), 44_100);
        assert_eq!(heard, clip.audio, "the pieces are the clip, bit for bit");
        // The clip is the streamed pieces (not resampled again), so check it against the
        // one-shot resampling of what the engine made.
        let engine = super::models::fake::FakeModel { rate: 32_000, channels: 1, step_delay: Duration::ZERO };
        let one_shot = clip::resample(&clip::to_stereo(engine.tone(0..32_000)), 44_100).unwrap();
        assert_eq!(clip.audio, one_shot, "the streamed clip is the one-shot resampling, bit for bit");
    }

    /// A host rate change mid-job restarts the pieces at the new rate (from frame 0), and they
    /// still make exactly the finished clip.
    #[test]
    fn partial_audio_follows_a_rate_change() {
        let w = worker(5);
        let a = TestInstance::new(44_100);
        w.submit(a.job("tiny", "x", 0.5));
        wait_for("generation", || a.progress.snapshot().step > 10);
        a.rate.store(48_000, Ordering::Relaxed);
        let (_, clip, partials) = a.wait_with_partials();
        let clip = clip.unwrap();
        assert!(partials.iter().any(|(s, a)| *s == 0 && a.sample_rate == 48_000));
        assert_eq!(assemble(&partials), clip.audio);
    }

    #[test]
    fn a_rate_change_mid_job_gives_a_clip_at_the_new_rate() {
        let w = worker(5);
        let a = TestInstance::new(44_100);
        w.submit(a.job("tiny", "x", 0.5));
        wait_for("generation", || a.progress.snapshot().step > 1);
        a.rate.store(48_000, Ordering::Relaxed);
        let clip = a.wait().1.unwrap();
        assert_eq!(
            (
                clip.audio.sample_rate,
                clip.audio.frames(),
                clip.meta.sample_rate
            ),
            (48_000, 24_000, 48_000)
        );
    }

    #[test]
    fn the_thread_stops_when_the_last_handle_goes_even_mid_job() {
        let w = worker(5);
        let a = TestInstance::new(48_000);
        w.submit(a.job("tiny", "x", 60.0));
        wait_for("generation", || a.progress.snapshot().step > 1);
        let t = Instant::now();
        drop(w);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "drop stalled for {:?}",
            t.elapsed()
        );
        // The running job was cancelled and answered before the thread returned.
        assert_eq!(a.wait().1.unwrap_err(), JobError::Cancelled);
    }

    #[test]
    fn instances_share_one_process_worker_until_the_last_goes() {
        let a = Worker::shared();
        let b = Worker::shared();
        assert!(Arc::ptr_eq(&a, &b));
        let weak = Arc::downgrade(&a);
        drop(a);
        assert!(weak.upgrade().is_some(), "still held by b");
        drop(b);
        assert!(weak.upgrade().is_none(), "gone with the last instance");
        let c = Worker::shared();
        assert!(!c.is_running());
    }
}
