//! Windows and macOS: the platform's own drag loop through the `drag` crate.
//!
//! REVIEWED, NOT RUN: this project builds and tests on Linux only; this file compiles only for
//! Windows and macOS. The whole `drag` module was type-checked for both (a scratch crate with
//! `#[path]` to drag/mod.rs, `cargo check --target x86_64-pc-windows-gnu` and
//! `--target x86_64-apple-darwin`, drag 2.1.1); nothing was linked or run there.
//! What it relies on (drag 2.1, read in its sources):
//! - Windows: `DoDragDrop` with a `CF_HDROP` data object. It is modal: it runs its own message
//!   loop on the calling (GUI) thread until the drop, which keeps the host's windows painting,
//!   and the callback runs before `start_drag` returns. OLE is initialised by the crate.
//! - macOS: `beginDraggingSessionWithItems` with file URLs on the editor's NSView; it returns at
//!   once and AppKit calls back on the main thread (the GUI thread in every macOS host).
//! The callback only reports dropped or cancelled; the target is not named.

use super::{DragError, DragStatus, Shared};
use raw_window_handle::HasWindowHandle;
use std::path::PathBuf;
use std::sync::Arc;


pub(super) fn start<W: HasWindowHandle + ?Sized>(
    paths: &[PathBuf],
    source: &W,
    shared: Arc<Shared>,
) -> Result<(), DragError> {
    // `drag` takes a sized handle; lend it ours through a thin wrapper.
    struct Source<'a, W: ?Sized>(&'a W);
    impl<W: HasWindowHandle + ?Sized> HasWindowHandle for Source<'_, W> {
        fn window_handle(
            &self,
        ) -> Result<raw_window_handle::WindowHandle<'_>, raw_window_handle::HandleError> {
            self.0.window_handle()
        }
    }
    drag::start_drag(
        &Source(source),
        drag::DragItem::Files(paths.to_vec()),
        drag::Image::Raw(super::ICON.to_vec()),
        move |result, _cursor| {
            shared.finish(match result {
                drag::DragResult::Dropped => DragStatus::Dropped {
                    target: "the drop target".into(),
                },
                drag::DragResult::Cancel => DragStatus::Cancelled,
            })
        },
        drag::Options::default(),
    )
    .map_err(|e| match e {
        drag::Error::UnsupportedWindowHandle => DragError::Unavailable {
            reason: "the plugin window's handle is not one this platform can drag from".into(),
        },
        e => DragError::Platform(e.to_string()),
    })
}
