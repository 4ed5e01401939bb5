//! The generation worker: one thread per process, shared by every plugin instance.
//!
//! Data flows one way: an instance submits a [`Job`] (prompt, settings, captured melody, its own
//! reply channel, cancel flag and progress atomics); the worker loads the model (once per
//! process, see [`models::ModelCache`]), generates, converts to the instance's current host rate
//! ([`host_rate`], the plugin's one owner of that conversion, also used by the dispatcher),
//! saves the clip and sends it back on the job's reply channel.
//!
//! The worker is framework-free: nothing here knows about nice-plug. The plugin side holds an
//! `Arc<Worker>` per instance; the thread starts with the first job and is asked to stop when
//! the last `Arc` is dropped. Nothing ever waits for it: dropping the last handle only tells it
//! to stop, and it ends on its own once its current load or step is over (the library stays
//! loaded meanwhile, see `crate::threads`). A [`Worker::shared`] made before it has ended takes
//! the same thread and models back, so at most one thread ever loads models. Which models stay
//! loaded is `models::ModelCache`'s policy: those the live instances' last jobs used.
//!
//! This file is the shared handle: the queue, the thread's loop and shutdown. What happens to
//! one job once the thread has taken it is in `pipeline.rs`.

pub mod clip;
pub mod device;
pub mod download;
pub mod host_rate;
pub mod job;
pub mod models;
mod musicgen_backend;
mod partial;
mod pipeline;
pub mod progress;

use job::{Job, JobError, WorkerToInstance};
use models::{catch, Backend, ModelCache};
use progress::Stage;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

/// Where a process-wide worker lives: the handle every instance shares, and the worker behind it,
/// which outlives the last handle while its thread is still finishing (so a new handle can take it
/// back). [`Worker::shared`] uses the one for the MusicGen engine; tests make their own.
pub struct Slot {
    handle: Mutex<Weak<Worker>>,
    inner: Mutex<Weak<Inner>>,
}

impl Slot {
    pub const fn new() -> Self {
        Self {
            handle: Mutex::new(Weak::new()),
            inner: Mutex::new(Weak::new()),
        }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

/// The process-wide worker, alive while some instance holds it or its thread still runs.
static SHARED: Slot = Slot::new();

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
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Cancel flag of the job being run.
    running: Option<(u64, Arc<AtomicBool>)>,
    /// Live [`Worker`] handles over this queue. At 0 the thread frees its models and ends.
    handles: usize,
    /// Whether a thread serves the queue: set when one is started, cleared by the thread, under
    /// this lock, once it has freed its models and decided to end.
    thread: bool,
    /// Instances gone since the thread last looked (their models may be freed).
    forgotten: Vec<u64>,
}

impl Queue {
    /// Tells every waiting job where it stands (1 = next).
    fn publish_positions(&self) {
        for (i, job) in self.jobs.iter().enumerate() {
            job.progress.set_queued(i as u32 + 1);
        }
    }
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Worker {
    /// The process-wide worker with the MusicGen engine, created on first use and shared by every
    /// instance until the last one drops its handle. Cheap: the thread starts with the first job.
    /// Made while the last one's thread is still finishing, it takes that thread and its models
    /// back instead of starting another.
    pub fn shared() -> Arc<Worker> {
        Self::shared_in(&SHARED, || Arc::new(musicgen_backend::MusicGenBackend))
    }

    /// [`Worker::shared`] for the worker in `slot`, made over `backend()` when there is none.
    pub fn shared_in(slot: &Slot, backend: impl FnOnce() -> Arc<dyn Backend>) -> Arc<Worker> {
        let mut handle = slot.handle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = handle.upgrade() {
            return w;
        }
        let mut inner = slot.inner.lock().unwrap_or_else(|e| e.into_inner());
        let w = match inner.upgrade() {
            Some(running) => Self::over(running),
            None => {
                let w = Worker::with_backend(backend());
                *inner = Arc::downgrade(&w.inner);
                w
            }
        };
        *handle = Arc::downgrade(&w);
        w
    }

    /// A private worker over any engine (tests use a fake one).
    pub fn with_backend(backend: Arc<dyn Backend>) -> Arc<Worker> {
        Self::over(Arc::new(Inner {
            backend,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            loads: Arc::new(AtomicU64::new(0)),
            next_id: AtomicU64::new(1),
        }))
    }

    /// A new handle over `inner` (counted, so its thread knows it is wanted).
    fn over(inner: Arc<Inner>) -> Arc<Worker> {
        inner.queue().handles += 1;
        Arc::new(Worker { inner })
    }

    /// Queues `job` behind the jobs of every instance and returns its id. Not realtime-safe
    /// (locks, may spawn the thread): call it from a non-audio thread. When the thread cannot be
    /// started the job is answered at once with [`JobError::Spawn`].
    pub fn submit(&self, mut job: Job) -> u64 {
        job.id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = job.id;
        job.progress.reset();
        let spawn_failed = {
            let mut q = self.inner.queue();
            q.jobs.push_back(job);
            q.publish_positions();
            match self.ensure_thread(&mut q) {
                Ok(()) => None,
                Err(e) => {
                    let job = q.jobs.pop_back();
                    q.publish_positions();
                    job.map(|job| (job, e))
                }
            }
        };
        if let Some((job, e)) = spawn_failed {
            job.progress.set_stage(Stage::Failed);
            let _ = job.reply.send(WorkerToInstance::Finished {
                job: id,
                result: Err(JobError::Spawn(e.to_string())),
            });
        }
        self.inner.wake.notify_all();
        id
    }

    /// Cancels job `id`: a queued job leaves the queue at once (its reply says so); a running one
    /// stops at its next step. The instance sets the job's own cancel flag as well.
    pub fn cancel(&self, id: u64) {
        let removed = {
            let mut q = self.inner.queue();
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

    /// Instance `instance` is gone: the model its last job used is freed unless another
    /// instance's last job used it too (see `models::ModelCache`). Does not wait.
    pub fn forget_instance(&self, instance: u64) {
        let mut q = self.inner.queue();
        if q.thread {
            q.forgotten.push(instance);
            drop(q);
            self.inner.wake.notify_all();
        }
    }

    /// Number of models loaded so far by this worker.
    pub fn model_loads(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// Jobs waiting (not counting the one running).
    pub fn queued(&self) -> usize {
        self.inner.queue().jobs.len()
    }

    /// Whether the worker thread is running.
    pub fn is_running(&self) -> bool {
        self.inner.queue().thread
    }

    /// Something that tells, without keeping the worker alive, whether it has ended: every
    /// handle dropped and its thread returned.
    pub fn probe(&self) -> WorkerProbe {
        WorkerProbe(Arc::downgrade(&self.inner))
    }

    /// Starts the thread unless one serves the queue. Called with the queue locked, so a thread
    /// that is deciding to end either sees the new job or has already said it ended.
    fn ensure_thread(&self, q: &mut Queue) -> std::io::Result<()> {
        if !q.thread {
            let inner = self.inner.clone();
            crate::threads::spawn("melodygen-worker", move || run(&inner))?;
            q.thread = true;
        }
        Ok(())
    }
}

/// See [`Worker::probe`].
pub struct WorkerProbe(Weak<Inner>);

impl WorkerProbe {
    /// Whether the worker is gone: no handle left and its thread has returned.
    pub fn ended(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl Drop for Worker {
    /// An instance let go of the worker. When it was the last handle:
    ///
    /// - the running job's cancel flag is set and the queued jobs are dropped without a
    ///   `Finished` reply (their instances are gone: each held a handle);
    /// - the thread is woken and this returns at once: nothing waits for it. The thread ends by
    ///   itself once the running job reaches a cancel check (replying `Cancelled` to a reply
    ///   channel nobody reads), frees the models and returns. The library stays loaded while it
    ///   runs (`crate::threads`);
    /// - a [`Worker::shared`] made before then takes this thread and its models back.
    fn drop(&mut self) {
        let dropped = {
            let mut q = self.inner.queue();
            q.handles -= 1;
            if q.handles > 0 {
                return;
            }
            if let Some((_, flag)) = &q.running {
                flag.store(true, Ordering::Relaxed);
            }
            std::mem::take(&mut q.jobs)
        };
        self.inner.wake.notify_all();
        drop(dropped);
    }
}

/// What the thread does next.
enum Step {
    Run(Job),
    Forget(Vec<u64>),
    /// No handle is left: free the models, then look again.
    Free,
    Exit,
}

/// The worker thread's body. Nothing escapes it: a panic in the loop itself (jobs catch their
/// own, see `pipeline::run_job`) is reported on stderr and the loop goes on with its models.
fn run(inner: &Inner) {
    let mut cache = ModelCache::new(inner.backend.clone(), inner.loads.clone());
    loop {
        match catch(|| serve(inner, &mut cache)) {
            Ok(()) => return,
            Err(panic) => eprintln!("MelodyGen worker: internal error, carrying on: {panic}"),
        }
    }
}

/// Serves the queue until no handle is left and the models are freed.
fn serve(inner: &Inner, cache: &mut ModelCache) {
    loop {
        let step = {
            let mut q = inner.queue();
            loop {
                if !q.forgotten.is_empty() {
                    break Step::Forget(std::mem::take(&mut q.forgotten));
                }
                if let Some(job) = q.jobs.pop_front() {
                    q.running = Some((job.id, job.cancel.clone()));
                    q.publish_positions();
                    break Step::Run(job);
                }
                if q.handles == 0 {
                    if cache.is_empty() {
                        q.thread = false;
                        break Step::Exit;
                    }
                    break Step::Free;
                }
                q = inner.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        match step {
            Step::Forget(instances) => instances.into_iter().for_each(|i| cache.forget(i)),
            // Outside the lock: freeing a model can take a while, and a new handle may come.
            Step::Free => cache.clear(),
            Step::Exit => return,
            Step::Run(mut job) => {
                let result = pipeline::run_job(cache, &mut job);
                inner.queue().running = None;
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
    }
}

#[cfg(test)]
mod tests;
