//! The drag handle of a clip in an egui clip list.
//!
//! Placement (in `NiceEguiApp::ui`, which receives `frame: &mut nice_plug_egui::Frame`):
//! ```ignore
//! // in the editor's state:  drag: DragHandles,   (Default)
//! for clip in clips {
//!     ui.horizontal(|ui| {
//!         self.drag.show(ui, frame.baseview_window(), &clip.path);
//!         ui.label(clip_name);
//!     });
//! }
//! if let Some(message) = self.drag.message() { ui.label(message); }
//! ```

use super::{reveal_in_file_manager, start_file_drag, DragError, DragSession, DragStatus};
use raw_window_handle::HasWindowHandle;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The drag handles of one editor: at most one drag runs at a time, and the outcome of the last
/// one is kept as a message for the user.
pub struct DragHandles {
    active: Option<DragSession>,
    /// The path the running drag started from, as the caller spelled it: the handle showing
    /// "Dragging…" is the one drawn for this path (compared as given, with no look-up per frame).
    dragged: Option<PathBuf>,
    message: Option<String>,
    /// How the fallback shows the file ([`reveal_in_file_manager`]; tests record instead).
    reveal: fn(&Path) -> std::io::Result<()>,
}

impl Default for DragHandles {
    fn default() -> Self {
        Self {
            active: None,
            dragged: None,
            message: None,
            reveal: reveal_in_file_manager,
        }
    }
}

impl DragHandles {
    /// Draws the handle of the clip at `path` and starts the drag when the user drags it.
    /// `window` is the editor's window (`frame.baseview_window()`); `exists` says whether the
    /// clip's file is there (the caller has looked already; a missing file cannot be dragged).
    /// GUI thread; never blocks.
    pub fn show<W: HasWindowHandle + ?Sized>(
        &mut self,
        ui: &mut egui::Ui,
        window: &W,
        path: &Path,
        exists: bool,
    ) -> egui::Response {
        self.poll();
        let text = self.text(path);
        let response = ui
            .add_enabled(
                exists,
                egui::Button::new(text).sense(egui::Sense::drag()),
            )
            .on_hover_text("Drag onto a track in your DAW to import this clip")
            .on_disabled_hover_text("The clip's file is missing");
        if response.drag_started() && self.active.is_none() {
            self.start(ui.ctx(), window, path);
        }
        if self.active.is_some() {
            // Keep polling the session while the pointer is outside our window.
            ui.ctx().request_repaint_after(Duration::from_millis(50));
        }
        response
    }

    /// The handle's caption for the clip at `path`: "Dragging…" on the one the running drag
    /// started from. Compares paths as given: no file-system access per frame.
    fn text(&self, path: &Path) -> &'static str {
        if self.active.is_some() && self.dragged.as_deref() == Some(path) {
            "Dragging…"
        } else {
            "Drag"
        }
    }

    /// What to tell the user about the last drag (its outcome or the fallback taken), if anything.
    pub fn message(&mut self) -> Option<&str> {
        self.poll();
        self.message.as_deref()
    }

    fn start<W: HasWindowHandle + ?Sized>(&mut self, ctx: &egui::Context, window: &W, path: &Path) {
        self.message = None;
        match start_file_drag(&[path.to_path_buf()], window) {
            Ok(session) => {
                self.active = Some(session);
                self.dragged = Some(path.to_path_buf());
            }
            Err(DragError::Unavailable { reason }) => {
                // The fallback the issue asks for: the path on the clipboard and the file shown.
                ctx.copy_text(path.display().to_string());
                let revealed = match (self.reveal)(path) {
                    Ok(()) => " and its folder was opened".to_string(),
                    Err(e) => format!(" (the folder could not be opened: {e})"),
                };
                self.message = Some(format!(
                    "Dragging is not possible here ({reason}). The clip's path was copied to the clipboard{revealed}: \
                     paste or drag it into your DAW from there."
                ));
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// Turns a finished session into a message.
    fn poll(&mut self) {
        let Some(status) = self.active.as_ref().map(DragSession::status) else {
            return;
        };
        self.message = match status {
            DragStatus::Dragging => return,
            DragStatus::Dropped { target } => Some(format!("Dropped on {target}")),
            DragStatus::Cancelled => None,
            DragStatus::Failed(why) => Some(why),
        };
        self.active = None;
        self.dragged = None;
    }
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::*;
    use raw_window_handle::{HandleError, RawWindowHandle, WaylandWindowHandle, WindowHandle};
    use std::ptr::NonNull;

    /// A native Wayland window: the one case where an X11 drag cannot work.
    struct WaylandWindow(NonNull<std::ffi::c_void>);
    impl HasWindowHandle for WaylandWindow {
        fn window_handle(&self) -> Result<WindowHandle<'_>, HandleError> {
            let raw = RawWindowHandle::Wayland(WaylandWindowHandle::new(self.0));
            // SAFETY: the surface pointer is never dereferenced; only the handle's kind is read.
            Ok(unsafe { WindowHandle::borrow_raw(raw) })
        }
    }

    static REVEALED: parking_lot::Mutex<Vec<PathBuf>> = parking_lot::Mutex::new(Vec::new());
    fn record(path: &Path) -> std::io::Result<()> {
        REVEALED.lock().push(path.to_path_buf());
        Ok(())
    }

    #[test]
    fn the_dragged_row_is_known_by_the_path_it_started_from_without_looking_at_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clip.wav");
        std::fs::write(&file, b"RIFF").unwrap();
        // The row's spelling (through a link to the folder) differs from the canonical path the
        // session holds.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let row = link.join("clip.wav");
        let session = DragSession {
            shared: super::super::Shared::new(),
            paths: vec![std::fs::canonicalize(&file).unwrap()].into(),
        };
        let mut handles = DragHandles::default();
        handles.active = Some(session);
        handles.dragged = Some(row.clone());
        // The file goes away mid-drag: the row still says it is being dragged (resolving the
        // row's path each frame, as before, would fail now and show "Drag").
        std::fs::remove_file(&file).unwrap();
        assert_eq!(handles.text(&row), "Dragging…");
        assert_eq!(handles.text(&dir.path().join("other.wav")), "Drag");
        handles.active = None;
        assert_eq!(handles.text(&row), "Drag");
    }

    #[test]
    fn where_no_drag_is_possible_the_handle_copies_the_path_and_reveals_the_file() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut surface = 0u8;
        let window = WaylandWindow(NonNull::from(&mut surface).cast());
        let mut handles = DragHandles {
            reveal: record,
            ..DragHandles::default()
        };
        let ctx = egui::Context::default();
        let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(400.0, 300.0));

        // Frame 0 lays the handle out; then the pointer presses on it and drags 40 px right.
        let mut handle_rect = egui::Rect::NOTHING;
        let mut copied = Vec::new();
        for frame in 0..5 {
            let centre = handle_rect.center();
            let events = match frame {
                1 => vec![egui::Event::PointerMoved(centre)],
                2 => vec![egui::Event::PointerButton {
                    pos: centre,
                    button: egui::PointerButton::Primary,
                    pressed: true,
                    modifiers: Default::default(),
                }],
                3 | 4 => vec![egui::Event::PointerMoved(
                    centre + egui::vec2(20.0 * (frame - 2) as f32, 0.0),
                )],
                _ => vec![],
            };
            let input = egui::RawInput {
                events,
                time: Some(frame as f64 * 0.05),
                screen_rect: Some(screen),
                ..Default::default()
            };
            let mut output = ctx.run_ui(input, |ui| {
                let rect = handles.show(ui, &window, file.path(), true).rect;
                if frame == 0 {
                    handle_rect = rect;
                }
            });
            let commands = std::mem::take(&mut output.platform_output.commands);
            output.drop_without_applying_deltas(); // no renderer here
            copied.extend(commands.into_iter().filter_map(|c| match c {
                egui::OutputCommand::CopyText(text) => Some(text),
                _ => None,
            }));
        }
        let path = file.path().display().to_string();
        assert_eq!(copied, [path], "the path was not put on the clipboard once");
        assert_eq!(*REVEALED.lock(), [file.path().to_path_buf()]);
        let message = handles
            .message()
            .expect("the user is told what happened")
            .to_string();
        assert!(
            message.contains("copied") && message.contains("Wayland"),
            "{message}"
        );
    }
}
