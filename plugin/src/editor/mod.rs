//! The egui editor. GUI-thread only: it reads shared atomics and parameters and never blocks
//! (locks it takes are held by other threads only for a copy or a push, never across work).
//!
//! Layout (default 960 × 640 points, see `params.rs`):
//!
//! ```text
//! ┌ top bar: title · model status chip ─────────────────────────────────────────┐
//! │ left column                          │ right column                         │
//! │  prompt (presets / history)          │  melody view (source, capture,       │
//! │  settings (length, guidance, seed)   │   Capture/Clear, chroma picture,     │
//! │  Advanced (sampling, model)          │   MIDI notes)                        │
//! │  Generate / Cancel, progress bar     │  current clip view                   │
//! │  message / error line                │                                      │
//! ├ bottom, full width: clip library (each row starts with its drag handle) ────┤
//! └─────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Each panel is drawn by its own module; the comments marked "SLOT" are where another panel
//! plugs in. Widgets the GUI tests click are recorded with [`crate::editor::ui_rects::record`].

pub mod clip_view;
pub mod drag;
pub mod library_panel;
pub mod melody_view;
pub mod model_panel;
pub mod prompt_panel;
pub mod sampling_panel;
pub mod settings_panel;
pub mod ui_rects;

use crate::params::MelodyGenParams;
use crate::shared::SharedState;
use crate::worker::progress::{ProgressSnapshot, Stage};
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{create_egui_editor, EguiEditor, EguiNiceSettings, NiceEguiApp, RepaintNotifier};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Width of the left (controls) column, in points; the right column takes the rest.
const LEFT_COLUMN_WIDTH: f32 = 500.0;
/// Height of the clip library at the bottom.
const LIBRARY_HEIGHT: f32 = 190.0;
/// How often the editor repaints on its own, to follow progress and the capture.
const REPAINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The editor's application state. Lives as long as the plugin instance's editor object;
/// everything that must survive the project is in [`MelodyGenParams`] instead.
pub struct EditorApp {
    params: Arc<MelodyGenParams>,
    shared: Arc<SharedState>,
    gui: Option<GuiContext>,
    /// The clips' drag handles (drag a clip into the DAW; see `crate::editor::drag`).
    drag: crate::editor::drag::handle::DragHandles,
    /// The model text's last resolution, so the filesystem is only asked when the text changes.
    model_check: crate::editor::model_panel::ModelCheck,
    /// What is being typed in the library (a rename, the clip folder).
    library: crate::editor::library_panel::LibraryUi,
    /// The melody view's last preview (see `crate::editor::melody_view`).
    melody: crate::editor::melody_view::MelodyView,
    /// The last widget rectangles written for the GUI tests (see `ui_rects`).
    rects_written: Option<std::collections::BTreeMap<String, [f32; 4]>>,
}

pub fn create(params: Arc<MelodyGenParams>, shared: Arc<SharedState>) -> Option<EguiEditor<EditorApp>> {
    let state = params.editor_state.clone();
    create_egui_editor(
        state,
        RepaintNotifier::new(),
        EguiNiceSettings::new().with_tile("MelodyGen"),
        EditorApp {
            params,
            shared,
            gui: None,
            drag: Default::default(),
            model_check: Default::default(),
            library: Default::default(),
            rects_written: None,
            melody: Default::default(),
        },
    )
}

impl NiceEguiApp for EditorApp {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui_ctx: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(gui_ctx);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else { return };

        egui::Panel::top("top-bar").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("library")
            .resizable(false)
            .exact_size(LIBRARY_HEIGHT)
            .show(ui, |ui| self.library(ui, frame));
        egui::Panel::left("controls").resizable(false).exact_size(LEFT_COLUMN_WIDTH).show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("controls-scroll").show(ui, |ui| self.controls(ui, &gui));
        });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("right-scroll").show(ui, |ui| self.right_column(ui, &gui));
        });

        ui_rects::flush(ui.ctx(), &mut self.rects_written);
        ui.ctx().request_repaint_after(REPAINT_INTERVAL);
    }

    fn editor_closed(&mut self) {
        self.gui = None;
        // A reopened editor writes its widget rectangles afresh (test hook).
        self.rects_written = None;
    }
}

impl EditorApp {
    /// Title and the model status chip.
    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("MelodyGen");
            ui.add_space(12.0);
            // SLOT (model): the model status chip (model · device · quant · ready/missing).
            let settings = self.params.settings.read();
            crate::editor::model_panel::status_chip(ui, &settings, &mut self.model_check, &self.shared.disk);
        });
    }

    /// Prompt, settings, Advanced, Generate/Cancel with progress, and the message line.
    fn controls(&mut self, ui: &mut egui::Ui, gui: &GuiContext) {
        let setter = gui.param_setter();
        let params = self.params.clone();
        let mut submit = false;
        {
            let mut prompt = params.prompt.write();
            // Derived each frame from the clip list (a handful of entries), never persisted.
            let history = params.clips.with(|clips| crate::editor::prompt_panel::prompt_history(clips, crate::editor::prompt_panel::HISTORY_LEN));
            ui.horizontal(|ui| {
                ui.strong("Prompt");
                crate::editor::prompt_panel::show_menus(ui, &mut prompt, &history);
            });
            let response = ui
                .add(
                    egui::TextEdit::multiline(&mut *prompt)
                        .hint_text("warm lo-fi piano with vinyl crackle, 80 bpm")
                        .desired_rows(3)
                        .desired_width(f32::INFINITY),
                )
                .on_hover_text(
                    "Describe the music: genre, instruments, mood, tempo. Ctrl+Enter generates.",
                );
            ui_rects::record(ui.ctx(), "prompt", response.rect);
            if response.has_focus() {
                ui_rects::record(ui.ctx(), "prompt_focused", response.rect);
            }
            // The key event's own modifiers count (by the frame, Ctrl may already be released).
            if response.has_focus() && ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::Enter)) {
                submit = true;
            }
        }
        ui.add_space(4.0);
        {
            let mut settings = params.settings.write();
            crate::editor::settings_panel::show(ui, &mut settings, self.host_tempo());
            egui::CollapsingHeader::new("Advanced").default_open(false).show(ui, |ui| {
                // SLOT (model): the model panel with Download replaces this call.
                crate::editor::model_panel::show(ui, &mut settings, &mut self.model_check, &self.shared.disk);
                crate::editor::sampling_panel::show(ui, &mut settings);
            });
        }
        egui::Grid::new("levels").num_columns(2).show(ui, |ui| {
            // The clip's own level is in the current clip view, next to its waveform.
            ui.label("Track level").on_hover_text("How loud the track's own sound (dry) stays under the clip.");
            ui.add(ParamSlider::for_param(&params.dry_level, &setter));
            ui.end_row();
        });
        ui.add_space(6.0);
        let progress = self.shared.progress.snapshot();
        let busy = progress.stage.is_busy();
        ui.horizontal(|ui| {
            // The button raises a request directly (the dispatcher picks it up); the "Generate"
            // parameter is for automation and controllers.
            let generate = ui
                .add_enabled(!busy, egui::Button::new(egui::RichText::new("Generate").strong()).min_size(egui::vec2(96.0, 28.0)))
                .on_hover_text("Make a new clip from the prompt, the settings and the captured melody.")
                .on_disabled_hover_text("A clip is being made; Cancel it to start another.");
            ui_rects::record(ui.ctx(), "generate", generate.rect);
            if generate.clicked() {
                submit = true;
            }
            let cancel = ui
                .add_enabled(busy, egui::Button::new("Cancel").min_size(egui::vec2(72.0, 28.0)))
                .on_hover_text("Stop making this clip; nothing is saved.");
            ui_rects::record(ui.ctx(), "cancel", cancel.rect);
            if cancel.clicked() {
                self.shared.cancel_requests.fetch_add(1, Ordering::Relaxed);
            }
        });
        if submit && !busy {
            self.shared.generate_requests.fetch_add(1, Ordering::Relaxed);
        }
        let bar = ui.add(progress_bar(&progress));
        ui_rects::record(ui.ctx(), "progress", bar.rect);
        // The dispatcher's status or error line, always in the window (never only in a log).
        let message = self.shared.message.lock().clone();
        if !message.is_empty() {
            let response = if progress.stage == Stage::Failed {
                ui.colored_label(ui.visuals().error_fg_color, message.clone())
            } else {
                // Status lines (a clip's full path...) stay on one line; the full text on hover.
                ui.add(egui::Label::new(message.as_str()).truncate()).on_hover_text(message.as_str())
            };
            ui_rects::record(ui.ctx(), "message", response.rect);
        }
    }

    /// The tempo and time signature the host last reported (for lengths in bars).
    fn host_tempo(&self) -> crate::editor::settings_panel::HostTempo {
        crate::editor::settings_panel::HostTempo { bpm: self.shared.tempo(), time_sig: self.shared.time_signature() }
    }

    /// The melody view, then the current clip view.
    fn right_column(&mut self, ui: &mut egui::Ui, gui: &GuiContext) {
        let setter = gui.param_setter();
        self.melody.show(ui, &self.params, &self.shared, &setter);
        ui.separator();
        crate::editor::clip_view::show(ui, &self.params, &self.shared, &setter);
    }

    /// The clip library: scrolling rows, newest first, each starting with its drag handle.
    fn library(&mut self, ui: &mut egui::Ui, frame: &mut nice_plug_egui::Frame) {
        let params = self.params.clone();
        let top = ui.max_rect();
        ui_rects::record(ui.ctx(), "library", top);
        // SLOT (library): the library panel.
        crate::editor::library_panel::show(ui, &mut self.library, &params, &self.shared, &mut self.drag, frame.baseview_window());
    }
}

/// The progress bar of the instance's job: how far along it is and, as its text, the stage
/// with steps, speed, time left or queue position.
fn progress_bar(p: &ProgressSnapshot) -> egui::ProgressBar {
    let fraction = match p.stage {
        Stage::Generating if p.total > 0 => p.step as f32 / p.total as f32,
        Stage::Decoding | Stage::Resampling | Stage::Writing | Stage::Done => 1.0,
        _ => 0.0,
    };
    let animate = matches!(p.stage, Stage::Queued | Stage::Loading | Stage::Decoding | Stage::Resampling | Stage::Writing);
    egui::ProgressBar::new(fraction).text(progress_text(p)).animate(animate).desired_height(20.0)
}

/// One line describing a job's progress, in plain words.
pub fn progress_text(p: &ProgressSnapshot) -> String {
    match p.stage {
        Stage::Idle => "Ready".into(),
        Stage::Queued => match p.queue_position.saturating_sub(1) {
            0 => "Queued: next in line".into(),
            n => format!("Queued: {n} ahead (other MelodyGen instances are generating)"),
        },
        Stage::Loading => "Loading the model…".into(),
        Stage::Generating => {
            let eta = p.eta_s.map(|s| format!(" · {s:.0} s left")).unwrap_or_default();
            let speed = if p.steps_per_sec > 0.0 { format!(" · {:.1} steps/s", p.steps_per_sec) } else { String::new() };
            format!("Generating: step {} of {}{speed}{eta}", p.step, p.total)
        }
        Stage::Decoding => "Turning the result into audio…".into(),
        Stage::Resampling => "Converting to the session's sample rate…".into(),
        Stage::Writing => "Saving the clip…".into(),
        Stage::Done => "Done: the new clip is in the library".into(),
        Stage::Failed => "Failed (see the message below)".into(),
        Stage::Cancelled => "Cancelled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(stage: Stage) -> ProgressSnapshot {
        ProgressSnapshot { stage, queue_position: 0, step: 0, total: 0, steps_per_sec: 0.0, eta_s: None }
    }

    #[test]
    fn progress_text_names_steps_speed_eta_and_queue() {
        let p = ProgressSnapshot { step: 25, total: 100, steps_per_sec: 50.0, eta_s: Some(1.5), ..snapshot(Stage::Generating) };
        assert_eq!(progress_text(&p), "Generating: step 25 of 100 · 50.0 steps/s · 2 s left");
        let q = ProgressSnapshot { queue_position: 3, ..snapshot(Stage::Queued) };
        assert_eq!(progress_text(&q), "Queued: 2 ahead (other MelodyGen instances are generating)");
        let first = ProgressSnapshot { queue_position: 1, ..snapshot(Stage::Queued) };
        assert_eq!(progress_text(&first), "Queued: next in line");
    }
}
