//! Test hook: where a few named widgets are on screen, written to a JSON file.
//!
//! GUI tests drive the real editor with a mouse (xdotool) and need to know where to click
//! ("Generate", the prompt field, a clip's drag handle). Guessing from pixels breaks whenever
//! the layout changes, so when the environment variable [`RECTS_ENV`] names a file, the editor
//! writes the rectangles of the widgets it [`record`]s there:
//!
//! ```json
//! {"pixels_per_point": 1.0, "window": [w, h], "rects": {"generate": [x0, y0, x1, y1], ...}}
//! ```
//!
//! Coordinates are egui points relative to the editor window's top-left corner (multiply by
//! `pixels_per_point` for X pixels); `window` is the editor's size in points, so a test can tell
//! the editor's own X window from its host's. The file is rewritten (atomically: a temporary file, then a
//! rename) only when a rectangle changed, so an idle editor does no file I/O. Without the
//! variable [`record`] returns at once and nothing is written: the hook costs a producer nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Environment variable naming the file the rectangles are written to.
pub const RECTS_ENV: &str = "MELODYGEN_UI_RECTS";

/// Rectangles of one frame, by name, as `[x0, y0, x1, y1]` in points.
type Rects = BTreeMap<String, [f32; 4]>;

fn target() -> Option<&'static PathBuf> {
    static TARGET: OnceLock<Option<PathBuf>> = OnceLock::new();
    TARGET
        .get_or_init(|| std::env::var_os(RECTS_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
        .as_ref()
}

fn key() -> egui::Id {
    egui::Id::unique("melodygen-ui-rects")
}

/// Records where the widget `name` is this frame. A no-op unless [`RECTS_ENV`] is set.
pub fn record(ctx: &egui::Context, name: &str, rect: egui::Rect) {
    if target().is_none() {
        return;
    }
    ctx.data_mut(|d| {
        d.get_temp_mut_or_default::<Rects>(key())
            .insert(name.to_string(), [rect.min.x, rect.min.y, rect.max.x, rect.max.y]);
    });
}

/// Writes this frame's rectangles if they differ from the last ones written (kept in
/// `last`), then starts the next frame's collection. Call once at the end of each frame.
pub fn flush(ctx: &egui::Context, last: &mut Option<Rects>) {
    let Some(path) = target() else { return };
    let rects: Rects = ctx.data_mut(|d| d.remove_temp::<Rects>(key())).unwrap_or_default();
    if last.as_ref() == Some(&rects) {
        return;
    }
    let window = ctx.viewport_rect().size();
    let doc = serde_json::json!({
        "pixels_per_point": ctx.pixels_per_point(),
        "window": [window.x, window.y],
        "rects": rects,
    });
    let tmp = path.with_extension("tmp");
    // A failed write only affects the test that asked for the file; the editor carries on.
    if std::fs::write(&tmp, doc.to_string()).and_then(|()| std::fs::rename(&tmp, path)).is_ok() {
        *last = Some(rects);
    }
}
