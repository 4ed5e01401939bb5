//! Model downloads for the window: one background thread per download, shared by every plugin
//! instance in the process.
//!
//! Why: a download takes minutes and must never run on the GUI thread; two instances asking for
//! the same model must not fetch it twice (they would race on the same cache folder). So each
//! download is an `Arc<ModelDownload>` in a process-wide list; asking for a model that is
//! already coming joins it. The GUI reads progress through atomics and results through
//! `OnceLock`s, so drawing a frame never waits on the download thread; the one lock (the list)
//! is held for a lookup only and the GUI only try-locks it.

use melodygen_engine::checkpoint::download::{self, DownloadError, DownloadProgress, Hub};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Every download started in this process (finished ones stay until restarted, so each window
/// can show how its last attempt ended).
static DOWNLOADS: Mutex<Vec<Arc<ModelDownload>>> = Mutex::new(Vec::new());

/// Plugin instances alive in the process (see [`InstanceRegistration`]).
static INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// How often the speed figure is refreshed; shorter makes it jumpy.
const SPEED_WINDOW: Duration = Duration::from_millis(500);

/// Where a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadState {
    /// Asking the hub what the model consists of.
    Listing = 0,
    Downloading = 1,
    /// Cancel was pressed; the thread stops at its next read.
    Cancelling = 2,
    Done = 3,
    Failed = 4,
    Cancelled = 5,
}

impl DownloadState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Listing,
            1 => Self::Downloading,
            2 => Self::Cancelling,
            3 => Self::Done,
            4 => Self::Failed,
            _ => Self::Cancelled,
        }
    }

    /// Whether the thread has ended.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// How a download failed, for the window.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadFailure {
    pub message: String,
    /// The hub could not be reached: the window explains how to get the files by hand.
    pub offline: bool,
    /// When offline: the folder to put the files in by hand, and why the hub was unreachable.
    pub by_hand: Option<(PathBuf, String)>,
}

/// One download of one model (repo at a revision), shared by the instances that asked for it.
pub struct ModelDownload {
    pub repo: String,
    pub revision: String,
    state: AtomicU8,
    cancel: AtomicBool,
    file_index: AtomicUsize,
    file_count: AtomicUsize,
    file_done: AtomicU64,
    file_size: AtomicU64,
    done: AtomicU64,
    total: AtomicU64,
    bytes_per_sec: AtomicU64,
    /// File names of the plan, set once listing is over.
    files: OnceLock<Vec<String>>,
    /// The snapshot folder, or why it failed; set once when the thread ends.
    outcome: OnceLock<Result<PathBuf, DownloadFailure>>,
}

/// A copy of a download's progress for one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadSnapshot {
    pub state: DownloadState,
    /// The file being fetched ("" while listing).
    pub file: String,
    pub file_index: usize,
    pub file_count: usize,
    pub file_done: u64,
    pub file_size: u64,
    pub done: u64,
    pub total: u64,
    /// Recent transfer speed.
    pub bytes_per_sec: u64,
    /// Seconds left at the recent speed, once there is a speed to go by.
    pub eta_s: Option<f64>,
    pub outcome: Option<Result<PathBuf, DownloadFailure>>,
}

impl ModelDownload {
    fn new(repo: &str, revision: &str) -> Self {
        Self {
            repo: repo.to_string(),
            revision: revision.to_string(),
            state: AtomicU8::new(DownloadState::Listing as u8),
            cancel: AtomicBool::new(false),
            file_index: AtomicUsize::new(0),
            file_count: AtomicUsize::new(0),
            file_done: AtomicU64::new(0),
            file_size: AtomicU64::new(0),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            bytes_per_sec: AtomicU64::new(0),
            files: OnceLock::new(),
            outcome: OnceLock::new(),
        }
    }

    pub fn state(&self) -> DownloadState {
        DownloadState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Asks the download to stop; it does within one read (a fraction of a second on a live
    /// connection). Its temporary file is removed; whole files already fetched stay for next
    /// time. Every instance sharing it sees it cancelled.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        let _ = self.state.compare_exchange(
            DownloadState::Listing as u8,
            DownloadState::Cancelling as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let _ = self.state.compare_exchange(
            DownloadState::Downloading as u8,
            DownloadState::Cancelling as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The snapshot folder or the failure, once finished.
    pub fn outcome(&self) -> Option<&Result<PathBuf, DownloadFailure>> {
        self.outcome.get()
    }

    /// Progress for drawing. Lock-free.
    pub fn snapshot(&self) -> DownloadSnapshot {
        let file_index = self.file_index.load(Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let bytes_per_sec = self.bytes_per_sec.load(Ordering::Relaxed);
        let state = self.state();
        DownloadSnapshot {
            state,
            file: self
                .files
                .get()
                .and_then(|f| f.get(file_index))
                .cloned()
                .unwrap_or_default(),
            file_index,
            file_count: self.file_count.load(Ordering::Relaxed),
            file_done: self.file_done.load(Ordering::Relaxed),
            file_size: self.file_size.load(Ordering::Relaxed),
            done,
            total,
            bytes_per_sec,
            eta_s: (bytes_per_sec > 0 && state == DownloadState::Downloading)
                .then(|| total.saturating_sub(done) as f64 / bytes_per_sec as f64),
            outcome: self.outcome.get().cloned(),
        }
    }

    /// Blocks until the download ends or `timeout` passes (CLI and tests; never the GUI).
    pub fn wait(&self, timeout: Duration) -> Option<&Result<PathBuf, DownloadFailure>> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(outcome) = self.outcome.get() {
                return Some(outcome);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.outcome.get()
    }

    /// The download thread's body.
    fn run(&self, hub: &Hub) {
        let result = download::plan(hub, &self.repo, &self.revision, &self.cancel).and_then(|plan| {
            let _ = self.files.set(plan.files.iter().map(|f| f.name.clone()).collect());
            self.file_count.store(plan.files.len(), Ordering::Relaxed);
            self.total.store(plan.total_bytes(), Ordering::Relaxed);
            let _ = self.state.compare_exchange(
                DownloadState::Listing as u8,
                DownloadState::Downloading as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            let mut speed = Speed::default();
            download::fetch(hub, &plan, &self.cancel, &mut |p: &DownloadProgress| {
                self.file_index.store(p.file_index, Ordering::Relaxed);
                self.file_done.store(p.file_done, Ordering::Relaxed);
                self.file_size.store(p.file_size, Ordering::Relaxed);
                self.done.store(p.done, Ordering::Relaxed);
                self.total.store(p.total.max(p.done), Ordering::Relaxed);
                if let Some(bps) = speed.update(p.transferred, Instant::now()) {
                    self.bytes_per_sec.store(bps, Ordering::Relaxed);
                }
            })
        });
        let (state, outcome) = match result {
            Ok(path) => (DownloadState::Done, Ok(path)),
            Err(DownloadError::Cancelled) => (
                DownloadState::Cancelled,
                Err(DownloadFailure {
                    message: DownloadError::Cancelled.to_string(),
                    offline: false,
                    by_hand: None,
                }),
            ),
            Err(e) => (
                DownloadState::Failed,
                Err(DownloadFailure {
                    offline: e.is_offline(),
                    by_hand: match &e {
                        DownloadError::Offline { folder, detail, .. } => {
                            Some((folder.clone(), detail.clone()))
                        }
                        _ => None,
                    },
                    message: e.to_string(),
                }),
            ),
        };
        let _ = self.outcome.set(outcome);
        self.state.store(state as u8, Ordering::Release);
    }
}

/// A transfer speed that moves smoothly: bytes over the last [`SPEED_WINDOW`], blended with the
/// previous figure.
#[derive(Default)]
struct Speed {
    mark: Option<(Instant, u64)>,
    bps: Option<f64>,
}

impl Speed {
    /// Feeds the bytes transferred so far at `now`; returns a new figure when one is due.
    fn update(&mut self, transferred: u64, now: Instant) -> Option<u64> {
        let Some((t0, b0)) = self.mark else {
            self.mark = Some((now, transferred));
            return None;
        };
        let dt = now.duration_since(t0);
        if dt < SPEED_WINDOW {
            return None;
        }
        let current = transferred.saturating_sub(b0) as f64 / dt.as_secs_f64();
        let smoothed = match self.bps {
            Some(previous) => 0.7 * previous + 0.3 * current,
            None => current,
        };
        self.bps = Some(smoothed);
        self.mark = Some((now, transferred));
        Some(smoothed.round() as u64)
    }
}

fn list() -> std::sync::MutexGuard<'static, Vec<Arc<ModelDownload>>> {
    DOWNLOADS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts downloading `repo` (branch `main`) from the hub the environment names
/// ([`Hub::from_env`]) into the HF cache, or joins the download of it already running.
pub fn start(repo: &str) -> Arc<ModelDownload> {
    start_with(Hub::from_env(), repo, "main")
}

/// [`start`] with an explicit hub, cache and revision.
pub fn start_with(hub: Hub, repo: &str, revision: &str) -> Arc<ModelDownload> {
    let mut downloads = list();
    if let Some(running) = downloads
        .iter()
        .find(|d| d.repo == repo && d.revision == revision && !d.state().is_finished())
    {
        return running.clone();
    }
    downloads.retain(|d| !(d.repo == repo && d.revision == revision));
    let job = Arc::new(ModelDownload::new(repo, revision));
    downloads.push(job.clone());
    drop(downloads);
    let thread_job = job.clone();
    let spawned = crate::threads::spawn("melodygen-download", move || thread_job.run(&hub));
    if let Err(e) = spawned {
        let _ = job.outcome.set(Err(DownloadFailure {
            message: format!("could not start the download: {e}"),
            offline: false,
            by_hand: None,
        }));
        job.state.store(DownloadState::Failed as u8, Ordering::Release);
    }
    job
}

/// Held by each plugin instance for its whole life (not just while activated: a host that
/// deactivates the plugin to change its buffer size must not cancel a download). When the last
/// one is dropped, every download is cancelled and the drop returns at once, without waiting:
/// it may run on the host's thread. A cancelled download stops at its next read (a fraction of
/// a second on a live connection; a stalled read or a slow hub listing ends when it returns or
/// times out) and removes its temporary file; the library stays loaded until the thread has
/// ended (download threads are started through `crate::threads`, which pins it). Cheap to
/// create: an atomic count, no thread.
pub struct InstanceRegistration(());

impl InstanceRegistration {
    pub fn new() -> Self {
        INSTANCES.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Default for InstanceRegistration {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for InstanceRegistration {
    fn drop(&mut self) {
        if INSTANCES.fetch_sub(1, Ordering::AcqRel) == 1 {
            cancel_all();
        }
    }
}

/// Cancels every running download: the last plugin instance is going away, and the host may
/// unload the plugin's code soon after.
pub fn cancel_all() {
    for d in list().iter() {
        d.cancel();
    }
}

/// Waits up to `timeout` for every download thread to end; returns whether they all did. A
/// thread stuck in a stalled read is then left running, detached, to end by itself: the caller
/// is held for `timeout` at most, not until every thread is gone.
pub fn wait_all(timeout: Duration) -> bool {
    let running: Vec<Arc<ModelDownload>> = list().iter().cloned().collect();
    let deadline = Instant::now() + timeout;
    running.iter().all(|d| {
        d.wait(deadline.saturating_duration_since(Instant::now())).is_some()
    })
}

/// The latest download of `repo` (any revision) in this process, running or finished. `None`
/// when there is none, or when the list is busy this instant (GUI: ask again next frame).
pub fn find(repo: &str) -> Option<Arc<ModelDownload>> {
    let downloads = DOWNLOADS.try_lock().ok()?;
    downloads.iter().rev().find(|d| d.repo == repo).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_is_measured_over_a_window_and_smoothed() {
        let t = Instant::now();
        let mut s = Speed::default();
        assert_eq!(s.update(0, t), None);
        assert_eq!(s.update(100, t + Duration::from_millis(100)), None, "too soon");
        assert_eq!(s.update(1_000_000, t + Duration::from_secs(1)), Some(1_000_000));
        // 3 MB/s for the next second, blended 70/30 with the previous 1 MB/s.
        assert_eq!(s.update(4_000_000, t + Duration::from_secs(2)), Some(1_600_000));
    }

    #[test]
    fn cancelling_marks_a_running_download_and_leaves_a_finished_one() {
        let d = ModelDownload::new("a/b", "main");
        d.cancel();
        assert_eq!(d.state(), DownloadState::Cancelling);
        let d = ModelDownload::new("a/b", "main");
        d.state.store(DownloadState::Done as u8, Ordering::Relaxed);
        d.cancel();
        assert_eq!(d.state(), DownloadState::Done);
    }

    #[test]
    fn eta_follows_speed_and_what_is_left() {
        let d = ModelDownload::new("a/b", "main");
        d.state.store(DownloadState::Downloading as u8, Ordering::Relaxed);
        d.total.store(10_000_000, Ordering::Relaxed);
        d.done.store(4_000_000, Ordering::Relaxed);
        assert_eq!(d.snapshot().eta_s, None, "no speed yet");
        d.bytes_per_sec.store(2_000_000, Ordering::Relaxed);
        assert_eq!(d.snapshot().eta_s, Some(3.0));
    }
}
