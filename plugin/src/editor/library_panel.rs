//! The library as the editor draws it: the clip folder line, the undo bar and message, then one
//! row per clip, newest first. Each row starts with the clip's drag handle (at the panel's left
//! edge: the drag host test looks for it there), then Play (audition), the name (double-click
//! to rename), seed, length, creation time, a "…" menu (Rename, Reveal file, Use these settings
//! again, Delete) and the prompt.
//!
//! GUI thread only. Everything that touches the disk or the audio is sent to the dispatcher as a
//! [`LibraryCommand`]; what must outlive the editor window (undo list, messages) lives in
//! [`crate::dispatch::library::LibraryShared`], not here.

use crate::dispatch::library::ops::display_name;
use crate::dispatch::library::{use_settings_again, LibraryCommand};
use crate::editor::drag::handle::DragHandles;
use crate::params::MelodyGenParams;
use crate::shared::SharedState;
use melodygen_engine::record::ClipMeta;
use crate::worker::clip::default_clip_dir;
use raw_window_handle::HasWindowHandle;
use crate::editor::ui_rects;
use std::path::PathBuf;

/// Height kept free under the rows for the drag outcome message, in points.
const DRAG_MESSAGE_HEIGHT: f32 = 24.0;
/// The list never shrinks below one row.
const MIN_LIST_HEIGHT: f32 = 24.0;
const NAME_WIDTH: f32 = 170.0;
/// Characters of the prompt shown in a row (all of it on hover).
const PROMPT_CHARS: usize = 60;

/// The library's editor-local state: only what is being typed. Lost when the editor closes,
/// which is fine: a half-typed name is not worth keeping.
#[derive(Debug, Default)]
pub struct LibraryUi {
    /// The clip being renamed and the name typed so far.
    renaming: Option<(PathBuf, String)>,
    /// Whether the rename field still needs the keyboard focus.
    focus_rename: bool,
    /// The folder field's text while the user edits it (`None`: show the project's folder).
    folder_edit: Option<String>,
}

/// Draws the library panel. `window` is the editor's window (`frame.baseview_window()`), for the
/// drag handles.
pub fn show<W: HasWindowHandle + ?Sized>(
    ui: &mut egui::Ui,
    state: &mut LibraryUi,
    params: &MelodyGenParams,
    shared: &SharedState,
    drag: &mut DragHandles,
    window: &W,
) {
    let library = &shared.library;
    ui.horizontal(|ui| {
        ui.strong("Library");
        let n = params.clips.len();
        ui.weak(format!("{n} clip{}", if n == 1 { "" } else { "s" }));
        ui.add_space(16.0);
        folder_line(ui, state, params, shared);
    });
    // Always one line high, so rows do not jump when a message comes or goes.
    ui.horizontal(|ui| {
        ui.set_min_height(ui.spacing().interact_size.y);
        let last = library.trashed.lock().last().map(|t| display_name(&t.meta));
        if let Some(name) = last {
            let undo = ui
                .button("Undo delete")
                .on_hover_text(format!("Bring \"{name}\" back from the trash folder"));
            ui_rects::record(ui.ctx(), "library_undo", undo.rect);
            if undo.clicked() {
                library.send(LibraryCommand::Undo);
            }
        }
        let message = library.message.lock().clone();
        if !message.is_empty() {
            ui.label(message);
        }
    });

    // Newest first, in a scroll area that leaves one line under it for the drag outcome. Only
    // the visible rows are laid out, and the list is read in place. Whether each file is there
    // comes from the dispatcher's last look (one snapshot per frame; no disk access here).
    let files = shared.disk.clip_files();
    let list_height = (ui.available_height() - DRAG_MESSAGE_HEIGHT).max(MIN_LIST_HEIGHT);
    let row_height = ui.spacing().interact_size.y;
    params.clips.with(|clips| {
        egui::ScrollArea::vertical()
            .id_salt("clip-library")
            .max_height(list_height)
            .auto_shrink([false, true])
            .show_rows(ui, row_height, clips.len(), |ui, rows| {
                for (i, meta) in clips.iter().rev().enumerate().skip(rows.start).take(rows.len()) {
                    row(ui, state, params, shared, drag, window, meta, files.exists(&meta.path), i);
                }
            });
        if clips.is_empty() {
            ui.weak("No clips yet. Generated clips appear here, newest first.");
        }
    });
    if let Some(message) = drag.message() {
        ui.label(message);
    }
}

/// "Folder [path] Apply Default": where new clips go.
fn folder_line(ui: &mut egui::Ui, state: &mut LibraryUi, params: &MelodyGenParams, shared: &SharedState) {
    ui.scope(|ui| {
        ui.label("Clip folder").on_hover_text(
            "Where new clips are saved. Clips made earlier stay where they are. Deleted clips go \
             to the \"trash\" folder inside their folder.",
        );
        let current = || {
            params
                .clip_dir
                .read()
                .clone()
                .unwrap_or_else(default_clip_dir)
                .display()
                .to_string()
        };
        let mut text = state.folder_edit.clone().unwrap_or_else(current);
        let edit = ui.add(egui::TextEdit::singleline(&mut text).desired_width(320.0));
        ui_rects::record(ui.ctx(), "library_folder", edit.rect);
        if edit.has_focus() {
            ui_rects::record(ui.ctx(), "library_folder_focused", edit.rect);
        }
        if edit.changed() {
            state.folder_edit = Some(text.clone());
        }
        let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let edited = state.folder_edit.is_some();
        if ui.add_enabled(edited, egui::Button::new("Apply")).clicked() || (entered && edited) {
            shared.library.send(LibraryCommand::SetFolder(text));
            state.folder_edit = None;
        }
        if ui
            .button("Default")
            .on_hover_text(format!("Use {}", default_clip_dir().display()))
            .clicked()
        {
            shared.library.send(LibraryCommand::DefaultFolder);
            state.folder_edit = None;
        }
    });
}

/// One clip's row; `i` counts from the newest (0); `exists`: whether its file was there at the
/// dispatcher's last look (a project may outlive its files: the row says so instead of failing).
/// Its widgets are recorded for the GUI tests
/// as `drag_handle_{i}`, `library_play_{i}`, `library_name_{i}`, `library_menu_{i}`.
#[allow(clippy::too_many_arguments)]
fn row<W: HasWindowHandle + ?Sized>(
    ui: &mut egui::Ui,
    state: &mut LibraryUi,
    params: &MelodyGenParams,
    shared: &SharedState,
    drag: &mut DragHandles,
    window: &W,
    meta: &ClipMeta,
    exists: bool,
    i: usize,
) {
    let library = &shared.library;
    ui.horizontal(|ui| {
        let handle = drag.show(ui, window, &meta.path, exists);
        ui_rects::record(ui.ctx(), &format!("drag_handle_{i}"), handle.rect);

        let playing = shared.is_playing(&meta.path);
        let loading = library.loading.lock().as_ref() == Some(&meta.path);
        let (icon, tip) = match (playing, loading) {
            (true, _) => ("Stop", "Stop playing this clip"),
            (false, true) => ("Wait", "Loading the clip"),
            (false, false) => ("Play", "Listen to this clip"),
        };
        let audition = ui
            .add_enabled(exists, egui::Button::new(icon).min_size(egui::vec2(40.0, 0.0)))
            .on_hover_text(tip);
        ui_rects::record(ui.ctx(), &format!("library_play_{i}"), audition.rect);
        if audition.clicked() {
            if playing {
                shared.playback.stop();
            } else {
                library.send(LibraryCommand::Audition(meta.path.clone()));
            }
        }

        let name = name_cell(ui, state, shared, meta, exists);
        ui_rects::record(ui.ctx(), &format!("library_name_{i}"), name);
        ui.label(format!("seed {}", meta.settings.params.seed));
        ui.label(format!("{:.1} s", meta.seconds));
        ui.label(created(&meta.created)).on_hover_text(format!("Created {} (UTC)", meta.created));
        let menu = ui.menu_button("…", |ui| {
            if ui.add_enabled(exists, egui::Button::new("Rename…")).clicked() {
                state.renaming = Some((meta.path.clone(), display_name(meta)));
                state.focus_rename = true;
                ui.close();
            }
            if ui.button("Reveal file").clicked() {
                library.send(LibraryCommand::Reveal(meta.path.clone()));
                ui.close();
            }
            // A menu entry with its explanation, its position recorded for the GUI tests.
            let item = |ui: &mut egui::Ui, text: &str, tip: &str, rect_name: &str| {
                let response = ui.button(text).on_hover_text(tip);
                ui_rects::record(ui.ctx(), rect_name, response.rect);
                response.clicked()
            };
            let again_tip = "Copy this clip's prompt, settings and melody, its seed locked, so Generate makes it again";
            if item(ui, "Use these settings again", again_tip, "library_menu_settings") {
                library.set_message(use_settings_again(params, meta));
                ui.close();
            }
            let delete_tip = "Move the clip to the trash folder (Undo brings it back)";
            if item(ui, "Delete", delete_tip, "library_menu_delete") {
                library.send(LibraryCommand::Delete(meta.path.clone()));
                ui.close();
            }
        });
        ui_rects::record(ui.ctx(), &format!("library_menu_{i}"), menu.response.rect);
        let prompt = &meta.settings.prompt;
        ui.label(format!("\"{}\"", shorten(prompt, PROMPT_CHARS))).on_hover_text(prompt);
    });
}

/// The clip's name, or the rename field while it is being renamed. Returns the cell's rectangle.
fn name_cell(
    ui: &mut egui::Ui,
    state: &mut LibraryUi,
    shared: &SharedState,
    meta: &ClipMeta,
    exists: bool,
) -> egui::Rect {
    if let Some((_, text)) = state.renaming.as_mut().filter(|(p, _)| *p == meta.path) {
        let edit = ui.add(egui::TextEdit::singleline(text).desired_width(NAME_WIDTH));
        if state.focus_rename {
            edit.request_focus();
            state.focus_rename = false;
        }
        if edit.has_focus() {
            // Test hook: GUI tests type only once the field has the keyboard focus.
            ui_rects::record(ui.ctx(), "library_rename_focused", edit.rect);
        }
        if edit.lost_focus() {
            if ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                shared.library.send(LibraryCommand::Rename {
                    path: meta.path.clone(),
                    name: text.clone(),
                });
            }
            // Enter renames; Escape or clicking elsewhere leaves the name as it was.
            state.renaming = None;
        }
        return edit.rect;
    }
    let missing = if exists { "" } else { " (missing)" };
    let label = egui::Label::new(format!("{}{missing}", display_name(meta)))
        .truncate()
        .sense(egui::Sense::click());
    let cell = ui
        .allocate_ui_with_layout(
            egui::vec2(NAME_WIDTH, ui.spacing().interact_size.y),
            egui::Layout::left_to_right(egui::Align::Center),
            |ui| {
                ui.set_min_width(NAME_WIDTH);
                ui.add(label)
            },
        );
    let response = cell.inner;
    let tip = if exists {
        format!("{}\nDouble-click to rename", meta.path.display())
    } else {
        format!("{} is missing", meta.path.display())
    };
    let response = response.on_hover_text(tip);
    if response.double_clicked() && exists {
        state.renaming = Some((meta.path.clone(), display_name(meta)));
        state.focus_rename = true;
    }
    // The whole cell (fixed width), so tests compare the same pixels whatever the name.
    cell.response.rect
}

/// "2026-01-01T09:30:12Z" as "2026-01-01 09:30".
fn created(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => rfc3339.to_string(),
    }
}

/// The first `chars` characters of `text`, with an ellipsis when cut.
fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_texts() {
        assert_eq!(created("2026-01-01T09:30:12Z"), "2026-01-01 09:30");
        assert_eq!(created("yesterday"), "yesterday");
        assert_eq!(shorten("warm piano", 4), "warm…");
        assert_eq!(shorten("naïve", 5), "naïve");
    }
}
