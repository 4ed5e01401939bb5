//! Dragging clip files out of the plugin window into the DAW's arrangement.
//!
//! The plugin window belongs to the host's GUI toolkit and baseview only knows how to *receive*
//! drops, so the drag source is ours, one per platform:
//! - X11 (Linux/BSD): an XDND source on its own X connection and its own thread ([`x11`]), so the
//!   GUI thread never blocks and the host's pointer grab is left alone.
//! - Windows (OLE `DoDragDrop` with `CF_HDROP`) and macOS (`NSDraggingSession` with file URLs)
//!   through the `drag` crate ([`native`]). Those two are compiled only there and are reviewed,
//!   not run: this project's machines are Linux.
//!
//! Where no drag is possible (a Wayland session without XWayland, no display at all),
//! [`start_file_drag`] returns [`DragError::Unavailable`] and the caller falls back to copying the
//! path and revealing the file ([`reveal_in_file_manager`]; [`handle`] does both).
//!
//! GUI use: call [`start_file_drag`] when a drag starts on a clip's handle, keep the
//! [`DragSession`] and poll [`DragSession::status`] each frame; [`handle::DragHandles`] does that
//! for an egui clip list.

pub mod handle;
mod uri;

#[cfg(any(target_os = "windows", target_os = "macos"))]
mod native;
#[cfg(all(unix, not(target_os = "macos")))]
mod x11;

pub use uri::{file_uri, uri_list};

use parking_lot::{Condvar, Mutex};
use raw_window_handle::HasWindowHandle;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The picture under the pointer while dragging (32x32 PNG; macOS requires one), shipped in the
/// top-level `assets/` folder with the product's other non-code files. Only the native drag
/// (Windows, macOS) shows it; it is embedded here so that every build, Linux included, checks
/// that the file is there.
#[cfg_attr(not(any(target_os = "windows", target_os = "macos")), allow(dead_code))]
const ICON: &[u8] = include_bytes!("../../../../assets/clip-icon.png");

/// Where a drag stands, as the GUI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DragStatus {
    /// The button is still held; the file has not been dropped yet.
    Dragging,
    /// A target took the file; `target` names it for the user (window title or id).
    Dropped { target: String },
    /// Escape was pressed or [`DragSession::cancel`] was called; nothing was dropped.
    Cancelled,
    /// The drag ended without a drop: no target under the pointer, the target refused the file,
    /// or it did not answer in time. The message is for the user.
    Failed(String),
}

impl DragStatus {
    /// Whether the drag is over (anything but [`DragStatus::Dragging`]).
    pub fn is_finished(&self) -> bool {
        !matches!(self, DragStatus::Dragging)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DragError {
    #[error("there is no file to drag")]
    NoFiles,
    #[error("cannot drag '{}': {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No drag is possible in this session: fall back to copying the path (see [`handle`]).
    #[error("dragging files is not available here: {reason}")]
    Unavailable { reason: String },
    #[error("could not start the drag: {0}")]
    Platform(String),
}

/// Time limits of a drag. The defaults suit a person dragging into a DAW; tests shorten them.
#[derive(Debug, Clone)]
pub struct DragOptions {
    /// How long a target may take to answer a position with its status before it is treated as
    /// refusing the file.
    pub status_timeout: Duration,
    /// How long a target may take, after the drop, to fetch the file list and say it is done.
    /// DAWs import (and may resample) the file before they answer, hence the generous default.
    pub finish_timeout: Duration,
    /// A drag still going after this long (a lost button release) is cancelled.
    pub max_duration: Duration,
    /// How often the pointer and keyboard are sampled.
    pub poll_interval: Duration,
    /// X11 only: the display to drag on; `None` is `$DISPLAY`, the one the editor runs on.
    pub x11_display: Option<String>,
}

impl Default for DragOptions {
    fn default() -> Self {
        Self {
            status_timeout: Duration::from_secs(2),
            finish_timeout: Duration::from_secs(30),
            max_duration: Duration::from_secs(120),
            poll_interval: Duration::from_millis(8),
            x11_display: None,
        }
    }
}

/// What the drag thread (or the platform callback) and the GUI share.
struct Shared {
    status: Mutex<DragStatus>,
    changed: Condvar,
    cancel: AtomicBool,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            status: Mutex::new(DragStatus::Dragging),
            changed: Condvar::new(),
            cancel: AtomicBool::new(false),
        })
    }

    fn finish(&self, status: DragStatus) {
        *self.status.lock() = status;
        self.changed.notify_all();
    }

    // Only the X11 source runs its own loop and can honour a cancel request.
    #[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]
    fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// A drag in progress. Dropping it does not stop the drag (the user is still holding the file);
/// call [`DragSession::cancel`] for that.
#[derive(Clone)]
pub struct DragSession {
    shared: Arc<Shared>,
    paths: Arc<[PathBuf]>,
}

impl std::fmt::Debug for DragSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DragSession")
            .field("paths", &self.paths)
            .field("status", &self.status())
            .finish()
    }
}

impl DragSession {
    /// The current status; cheap, never blocks for long (GUI thread).
    pub fn status(&self) -> DragStatus {
        self.shared.status.lock().clone()
    }

    /// The files being dragged (absolute).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Asks the drag to stop as if Escape was pressed (X11; elsewhere the platform owns the drag
    /// loop and this has no effect).
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
    }

    /// Blocks until the drag is over or `timeout` passed, and returns the status then. Not for
    /// the GUI thread: for tests and command-line tools.
    pub fn wait(&self, timeout: Duration) -> DragStatus {
        let deadline = Instant::now() + timeout;
        let mut status = self.shared.status.lock();
        while !status.is_finished() {
            if self
                .shared
                .changed
                .wait_until(&mut status, deadline)
                .timed_out()
            {
                break;
            }
        }
        status.clone()
    }
}

/// Starts dragging `paths` out of `source` (the plugin editor's window; on X11 it may be any
/// handle, see [`x11`]). Returns at once; the drag runs on its own thread (X11) or in the
/// platform's drag loop. Call it while the mouse button that started the drag is still held.
pub fn start_file_drag<W: HasWindowHandle + ?Sized>(
    paths: &[PathBuf],
    source: &W,
) -> Result<DragSession, DragError> {
    start_file_drag_with(paths, source, &DragOptions::default())
}

/// [`start_file_drag`] with explicit time limits.
pub fn start_file_drag_with<W: HasWindowHandle + ?Sized>(
    paths: &[PathBuf],
    source: &W,
    options: &DragOptions,
) -> Result<DragSession, DragError> {
    if paths.is_empty() {
        return Err(DragError::NoFiles);
    }
    // Targets open the files later, from another process: the paths must be absolute and real.
    let paths: Vec<PathBuf> = paths
        .iter()
        .map(|p| {
            std::fs::canonicalize(p).map_err(|source| DragError::File {
                path: p.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    let shared = Shared::new();
    start_platform(&paths, source, options, &shared)?;
    Ok(DragSession {
        shared,
        paths: paths.into(),
    })
}

#[cfg(all(unix, not(target_os = "macos")))]
fn start_platform<W: HasWindowHandle + ?Sized>(
    paths: &[PathBuf],
    source: &W,
    options: &DragOptions,
    shared: &Arc<Shared>,
) -> Result<(), DragError> {
    use raw_window_handle::RawWindowHandle;
    // The XDND source uses its own window. The editor's handle tells whether an X drag can work
    // at all (not from a native Wayland window) and which window is our own: baseview makes the
    // editor XdndAware, and a clip released over it must not be "dropped" on the plugin itself.
    let own = match source.window_handle().map(|h| h.as_raw()) {
        Ok(RawWindowHandle::Wayland(_)) => {
            return Err(DragError::Unavailable {
                reason: "the plugin window is a Wayland window and X11 drag and drop cannot reach Wayland targets".into(),
            })
        }
        Ok(RawWindowHandle::Xcb(h)) => Some(h.window.get()),
        Ok(RawWindowHandle::Xlib(h)) => u32::try_from(h.window).ok(),
        _ => None,
    };
    x11::start(paths, own, options.clone(), shared.clone())
}

#[cfg(any(target_os = "windows", target_os = "macos"))]
fn start_platform<W: HasWindowHandle + ?Sized>(
    paths: &[PathBuf],
    source: &W,
    _options: &DragOptions,
    shared: &Arc<Shared>,
) -> Result<(), DragError> {
    native::start(paths, source, shared.clone())
}

#[cfg(not(any(unix, target_os = "windows")))]
fn start_platform<W: HasWindowHandle + ?Sized>(
    _paths: &[PathBuf],
    _source: &W,
    _options: &DragOptions,
    _shared: &Arc<Shared>,
) -> Result<(), DragError> {
    Err(DragError::Unavailable {
        reason: "this platform has no drag support in MelodyGen".into(),
    })
}

/// Opens the file manager on `path` (selecting it where the platform can) — the fallback when a
/// drag is impossible. Does not wait for the file manager.
pub fn reveal_in_file_manager(path: &Path) -> std::io::Result<()> {
    let mut cmd = if cfg!(target_os = "windows") {
        let mut c = std::process::Command::new("explorer");
        c.arg(format!("/select,{}", path.display()));
        c
    } else if cfg!(target_os = "macos") {
        let mut c = std::process::Command::new("open");
        c.arg("-R").arg(path);
        c
    } else {
        // xdg-open cannot select a file; open its folder.
        let mut c = std::process::Command::new("xdg-open");
        c.arg(path.parent().unwrap_or(path));
        c
    };
    let mut child = cmd.spawn()?;
    // Reap it off the GUI thread so it does not linger as a zombie.
    std::thread::spawn(move || child.wait());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoWindow;
    impl HasWindowHandle for NoWindow {
        fn window_handle(
            &self,
        ) -> Result<raw_window_handle::WindowHandle<'_>, raw_window_handle::HandleError> {
            Err(raw_window_handle::HandleError::Unavailable)
        }
    }

    #[test]
    fn refuses_an_empty_list_and_missing_files() {
        assert!(matches!(
            start_file_drag(&[], &NoWindow),
            Err(DragError::NoFiles)
        ));
        let missing = PathBuf::from("/nonexistent/melodygen-clip.wav");
        match start_file_drag(std::slice::from_ref(&missing), &NoWindow) {
            Err(DragError::File { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected a file error, got {:?}", other.map(|s| s.status())),
        }
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn without_a_display_the_drag_is_unavailable() {
        // A display name that cannot exist stands for "no X server" (DISPLAY may be set here).
        let file = tempfile::NamedTempFile::new().unwrap();
        let options = DragOptions {
            x11_display: Some(":999999".into()),
            ..DragOptions::default()
        };
        let err = x11::start(&[file.path().to_path_buf()], None, options, Shared::new())
            .expect_err("no X server on :999999");
        assert!(matches!(err, DragError::Unavailable { .. }), "{err}");
    }

    #[test]
    fn wait_returns_the_final_status() {
        let shared = Shared::new();
        let session = DragSession {
            shared: shared.clone(),
            paths: Arc::from(Vec::new()),
        };
        assert_eq!(
            session.wait(Duration::from_millis(20)),
            DragStatus::Dragging
        );
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            shared.finish(DragStatus::Cancelled);
        });
        assert_eq!(session.wait(Duration::from_secs(5)), DragStatus::Cancelled);
        t.join().unwrap();
    }

    #[test]
    fn the_drag_icon_is_a_png() {
        assert!(ICON.starts_with(b"\x89PNG\r\n\x1a\n"), "assets/clip-icon.png is not a PNG");
    }
}
