//! What the editor shows about files, looked up by the dispatcher: whether the model named in the
//! model field is on this computer ([`ModelStatus`]), and whether each library clip's WAV is
//! still there.
//!
//! Why here and not in the editor: a look-up touches the filesystem, which can stall for a long
//! time (a network share, a sleeping disk, a huge Hugging Face cache), and the editor draws ten
//! frames a second. So the editor never touches the disk for these: it publishes the model text
//! it wants checked into the shared [`DiskStatus`] (and raises a "check again" flag when a
//! download finishes), and reads the last answer back. The dispatcher's [`DiskRefresh`] does the
//! looking, at a bounded rate:
//!
//! - the model text: at once the first time, then [`DEBOUNCE`] after the last change (so typing a
//!   name checks once, after the pause), and every [`RECHECK_MISSING`] while the model is missing
//!   and the editor is open (it may arrive by other means);
//! - the clip files: while the editor is open, when the clip list changes and otherwise at most
//!   every [`CLIP_REFRESH`].
//!
//! The looking itself goes through the [`DiskChecker`] trait, so tests can count it.

use crate::state::ClipList;
use melodygen_engine::checkpoint::{looks_like_repo_id, resolve_model, Checkpoint};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the model text must stay unchanged before it is looked up (typing a name checks once).
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often a missing model is looked for again while the editor is open.
pub const RECHECK_MISSING: Duration = Duration::from_secs(3);
/// How often the clip files are looked at while the editor is open and the list is unchanged.
pub const CLIP_REFRESH: Duration = Duration::from_secs(1);

/// Whether the model named by the text can be used.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    /// Found and its files look whole: `weights_bytes` is the size of its weight files.
    Ready { dir: PathBuf, weights_bytes: u64 },
    /// Not on this computer. `downloadable` when the text is a hub name that could be fetched.
    Missing { message: String, downloadable: bool },
    /// Found, but something in the folder is missing or unreadable.
    Broken { dir: PathBuf, message: String },
}

impl ModelStatus {
    /// Looks `spec` up (filesystem only, no network). Dispatcher thread (or tests) only.
    pub fn check(spec: &str) -> Self {
        let spec = spec.trim();
        match resolve_model(spec) {
            Err(e) => ModelStatus::Missing {
                message: e.to_string(),
                downloadable: looks_like_repo_id(spec) && !Path::new(spec).is_dir(),
            },
            Ok(dir) => match Checkpoint::open(&dir) {
                Ok(checkpoint) => ModelStatus::Ready {
                    weights_bytes: checkpoint
                        .weight_files
                        .iter()
                        .filter_map(|f| std::fs::metadata(f).ok())
                        .map(|m| m.len())
                        .sum(),
                    dir,
                },
                Err(e) => ModelStatus::Broken {
                    dir,
                    message: e.to_string(),
                },
            },
        }
    }
}

/// The filesystem look-ups [`DiskRefresh`] makes; a trait so tests can count them.
pub trait DiskChecker: Send {
    /// The status of the model named `spec`.
    fn model(&mut self, spec: &str) -> ModelStatus;
    /// Whether the file at `path` exists.
    fn exists(&mut self, path: &Path) -> bool;
}

/// The real filesystem.
pub struct RealDisk;

impl DiskChecker for RealDisk {
    fn model(&mut self, spec: &str) -> ModelStatus {
        ModelStatus::check(spec)
    }

    fn exists(&mut self, path: &Path) -> bool {
        path.exists()
    }
}

/// The answers shared between the dispatcher (writes) and the editor (publishes what it wants,
/// reads answers). Every lock is held only for a copy or a compare; nothing under it touches
/// the disk.
#[derive(Default)]
pub struct DiskStatus {
    model: Mutex<ModelSlot>,
    clips: Mutex<Arc<ClipFiles>>,
}

#[derive(Default)]
struct ModelSlot {
    /// The model text the editor wants checked (`None` until it has asked).
    wanted: Option<String>,
    /// Raised by the editor when a download finished: look again now.
    recheck: bool,
    /// The last answer and the text it is for.
    answer: Option<(String, ModelStatus)>,
}

/// Whether each clip's file was there at the last look, by path.
#[derive(Debug, Default)]
pub struct ClipFiles {
    exists: HashMap<PathBuf, bool>,
}

impl ClipFiles {
    /// Whether the file at `path` was there at the last look. A path not looked at yet (a clip
    /// just made or renamed) counts as present: the next look, soon, says otherwise if it is not.
    pub fn exists(&self, path: &Path) -> bool {
        self.exists.get(path).copied().unwrap_or(true)
    }
}

impl DiskStatus {
    /// Editor: asks for `spec` to be checked. Copies it only when it changed (a compare per frame).
    pub fn want_model(&self, spec: &str) {
        let mut slot = self.model.lock();
        if slot.wanted.as_deref() != Some(spec) {
            slot.wanted = Some(spec.to_string());
        }
    }

    /// Editor: the last answer for exactly `spec`; `None` while it has not been checked yet.
    pub fn model_status(&self, spec: &str) -> Option<ModelStatus> {
        let slot = self.model.lock();
        slot.answer.as_ref().filter(|(s, _)| s == spec).map(|(_, status)| status.clone())
    }

    /// Editor: look at the model again as soon as possible (a download finished).
    pub fn recheck_model(&self) {
        self.model.lock().recheck = true;
    }

    /// Editor: the clip table as last looked at; take it once per frame.
    pub fn clip_files(&self) -> Arc<ClipFiles> {
        self.clips.lock().clone()
    }
}

/// The dispatcher's side: when to look, and the looking. One per dispatcher.
pub struct DiskRefresh {
    checker: Box<dyn DiskChecker>,
    /// The last wanted model text seen and when it changed to it.
    seen: Option<(String, Instant)>,
    /// The last model text checked, when, and whether it was missing.
    checked: Option<(String, Instant, bool)>,
    /// The clip list's change count and the time of the last clip look.
    clips_looked: Option<(u64, Instant)>,
}

impl Default for DiskRefresh {
    fn default() -> Self {
        Self::new(Box::new(RealDisk))
    }
}

impl DiskRefresh {
    pub fn new(checker: Box<dyn DiskChecker>) -> Self {
        Self {
            checker,
            seen: None,
            checked: None,
            clips_looked: None,
        }
    }

    /// Dispatcher thread, every tick: looks up whatever is due and publishes the answers.
    pub fn refresh(&mut self, params: &crate::params::MelodyGenParams, shared: &crate::shared::SharedState) {
        let open = params.editor_state.is_open();
        self.refresh_at(&shared.disk, &params.clips, open, Instant::now());
    }

    /// [`Self::refresh`] with its inputs spelled out (tests pass a simulated clock).
    pub fn refresh_at(&mut self, status: &DiskStatus, clips: &ClipList, editor_open: bool, now: Instant) {
        self.refresh_model(status, editor_open, now);
        if editor_open {
            self.refresh_clips(status, clips, now);
        }
    }

    fn refresh_model(&mut self, status: &DiskStatus, editor_open: bool, now: Instant) {
        let recheck = {
            let mut slot = status.model.lock();
            match (&slot.wanted, &self.seen) {
                (Some(w), Some((s, _))) if w == s => {}
                (Some(w), _) => self.seen = Some((w.clone(), now)),
                (None, _) => return,
            }
            std::mem::take(&mut slot.recheck)
        };
        let Some((spec, changed_at)) = &self.seen else { return };
        let due = recheck
            || match &self.checked {
                None => true,
                Some((checked, _, _)) if checked != spec => now.duration_since(*changed_at) >= DEBOUNCE,
                Some((_, at, missing)) => *missing && editor_open && now.duration_since(*at) >= RECHECK_MISSING,
            };
        if !due {
            return;
        }
        let spec = spec.clone();
        let answer = self.checker.model(&spec);
        self.checked = Some((spec.clone(), now, matches!(answer, ModelStatus::Missing { .. })));
        status.model.lock().answer = Some((spec, answer));
    }

    fn refresh_clips(&mut self, status: &DiskStatus, clips: &ClipList, now: Instant) {
        let changes = clips.changes();
        let due = match self.clips_looked {
            None => true,
            Some((seen, at)) => seen != changes || now.duration_since(at) >= CLIP_REFRESH,
        };
        if !due {
            return;
        }
        // The paths are copied out so that no look-up happens under the list's lock.
        let paths: Vec<PathBuf> = clips.with(|list| list.iter().map(|m| m.path.clone()).collect());
        let exists = paths
            .into_iter()
            .map(|p| {
                let there = self.checker.exists(&p);
                (p, there)
            })
            .collect();
        *status.clips.lock() = Arc::new(ClipFiles { exists });
        self.clips_looked = Some((changes, now));
    }
}

#[cfg(test)]
mod tests;
