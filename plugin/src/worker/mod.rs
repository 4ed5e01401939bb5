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
//! the last `Arc` is dropped (see [`Worker::shared`] and, for what "stop" really means, the
//! `Drop` impl).
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
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long dropping the last handle blocks, waiting for the thread to return, before it
/// detaches the thread and returns anyway. The wait is real: the caller (in the plugin, the
/// last instance's dispatcher thread, which the instance's drop joins) may be held this long.
/// A model load cannot be interrupted and an engine step is only checked for cancellation
/// between steps, so the thread can outlive the wait; see the `Drop` impl.
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
    /// The last instance went away. What happens, in order:
    ///
    /// - the queue is marked shut down and the running job's cancel flag is set;
    /// - queued jobs are dropped without a `Finished` reply (their instances are gone: each
    ///   held a handle, and this is the last one);
    /// - this call blocks for up to [`SHUTDOWN_WAIT`] (3 s) waiting for the thread to return:
    ///   it does once the running job reaches its next cancel check (the next engine step, or
    ///   the end of a model load, which cannot be interrupted), after replying `Cancelled`;
    /// - if the thread returned it is joined; if not, it is detached and left running. It ends
    ///   by itself once its load or step is over, but until then it runs this library's code
    ///   and holds its loaded models, and nothing stops a host unloading the library meanwhile.
    ///   A `Worker::shared()` made in that time gets a new thread and a new model cache.
    ///
    /// So removing the last instance may stall its caller for up to 3 s; it is not
    /// guaranteed to leave no worker thread behind.
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
            // Disconnected = the thread has returned; a timeout drops the handle, which
            // detaches the thread: it ends by itself once its current load or step finishes.
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
        let mut job = {
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
            catch(|| pipeline::run_job(&mut cache, &mut job)).unwrap_or_else(|p| Err(JobError::Panic(p)));
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

#[cfg(test)]
mod tests;
