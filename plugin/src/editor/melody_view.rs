//! The editor's melody view: where the melody comes from, how it is captured (Capture / Clear),
//! and a picture of what was captured — the 12 pitch classes over time with the one MusicGen
//! follows in each moment highlighted, and for MIDI the notes themselves.
//!
//! GUI thread only, and it never blocks: the preview is made by the dispatcher
//! (`melody_preview.rs`) and picked up with a `try_lock`; Capture sets the "Capture Armed"
//! parameter through the host (so automation and the host's undo see it); Clear raises a flag
//! that the audio thread honours at its next block (`Capture::request_clear`, atomics only).

use crate::audio::capture::CaptureMode;
use crate::dispatch::melody_preview::{MelodyPreview, PreviewState, SILENT_MESSAGE};
use crate::params::MelodyGenParams;
use crate::editor::ui_rects;
use crate::shared::SharedState;
use melodygen_engine::chroma::{HOP, N_CHROMA, SAMPLE_RATE};
use melodygen_engine::record::MelodySource;
use nice_plug::prelude::ParamSetter;
use std::sync::Arc;

/// Pitch-class names, C first (row 0 is drawn at the bottom, like a keyboard turned upright).
pub const PITCH_CLASSES: [&str; N_CHROMA] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
/// Height of one pitch-class row of the chroma picture, in points.
const ROW_HEIGHT: f32 = 11.0;
/// Width kept for the pitch-class labels left of the picture.
const LABEL_WIDTH: f32 = 24.0;
/// Height of the MIDI note roll.
const ROLL_HEIGHT: f32 = 84.0;
/// Seconds per chroma frame (the engine's hop at 32 kHz: 128 ms).
const FRAME_SECONDS: f32 = HOP as f32 / SAMPLE_RATE as f32;

/// The view's state between frames: the last preview picked up.
#[derive(Default)]
pub struct MelodyView {
    preview: Option<Arc<MelodyPreview>>,
}

impl MelodyView {
    /// Draws the view. `setter` changes parameters the way the host must see it.
    pub fn show(&mut self, ui: &mut egui::Ui, params: &MelodyGenParams, shared: &SharedState, setter: &ParamSetter) {
        if let Some(latest) = shared.melody_preview.try_get() {
            self.preview = latest;
        }
        ui.horizontal(|ui| {
            ui.strong("Melody");
            let mut settings = params.settings.write();
            egui::ComboBox::from_id_salt("melody-source")
                .selected_text(source_name(settings.melody_source))
                .show_ui(ui, |ui| {
                    for source in [MelodySource::Audio, MelodySource::Midi, MelodySource::None] {
                        ui.selectable_value(&mut settings.melody_source, source, source_name(source));
                    }
                })
                .response
                .on_hover_text(
                    "What the new music follows: the track's audio, the notes it receives as MIDI, \
                     or nothing (the prompt alone).",
                );
            drop(settings);
            capture_controls(ui, params, shared, setter);
        });
        if recalled_line(ui, params) {
            return;
        }
        let preview = self.preview.clone();
        status_line(ui, preview.as_deref(), params);
        if let Some(p) = preview.as_deref().filter(|p| p.state == PreviewState::Ready) {
            let picture = chroma_picture(ui, p);
            ui_rects::record(ui.ctx(), "melody_chroma", picture.rect);
            if !p.notes.is_empty() {
                note_roll(ui, p);
            }
        }
    }
}

/// Capture mode, the Capture toggle and Clear.
fn capture_controls(ui: &mut egui::Ui, params: &MelodyGenParams, shared: &SharedState, setter: &ParamSetter) {
    let mode = params.capture_mode.value();
    egui::ComboBox::from_id_salt("capture-mode")
        .selected_text(match mode {
            CaptureMode::FollowTransport => "Follow transport",
            CaptureMode::Manual => "Manual",
        })
        .show_ui(ui, |ui| {
            for (choice, label) in [(CaptureMode::FollowTransport, "Follow transport"), (CaptureMode::Manual, "Manual")] {
                if ui.selectable_label(mode == choice, label).clicked() && mode != choice {
                    set(setter, &params.capture_mode, choice);
                }
            }
        })
        .response
        .on_hover_text(
            "Follow transport: every time you press play, the plugin listens to the part from \
             the start of playback (the last 30 s are kept). Manual: it listens while Capture is on.",
        );
    let armed = mode == CaptureMode::Manual && params.capture_armed.value();
    let label = if armed { "Stop capture" } else { "Capture" };
    let capture = ui.selectable_label(armed, label).on_hover_text(
        "Start listening to the track now (a new take); press again to stop. Switches capture to \
         manual.",
    );
    ui_rects::record(ui.ctx(), "capture", capture.rect);
    if capture.clicked() {
        if mode != CaptureMode::Manual {
            set(setter, &params.capture_mode, CaptureMode::Manual);
        }
        setter.begin_set_parameter(&params.capture_armed);
        setter.set_parameter(&params.capture_armed, !armed);
        setter.end_set_parameter(&params.capture_armed);
    }
    let clear = ui.button("Clear").on_hover_text("Forget what was captured and start an empty take.");
    ui_rects::record(ui.ctx(), "clear", clear.rect);
    if clear.clicked() {
        // A lock held only for an Arc clone by the audio side's owner (activate), never by the
        // audio thread; try_lock so the GUI never waits.
        if let Some(capture) = shared.capture.try_lock().and_then(|c| c.clone()) {
            capture.request_clear();
        }
    }
}

fn set<P: nice_plug::prelude::Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

/// While a clip's melody is recalled ("Use these settings again"), says so instead of showing
/// the capture, with the way back to it. Returns whether it did.
fn recalled_line(ui: &mut egui::Ui, params: &MelodyGenParams) -> bool {
    let Some(recalled) = params.recalled_melody.read().clone() else {
        return false;
    };
    ui.horizontal(|ui| {
        let text_only = params.settings.read().melody_source == MelodySource::None;
        let how = if text_only { "unused while the source is None (text only)" } else { "Generate follows it, not the capture" };
        let line = ui.label(format!(
            "Melody recalled from {} ({:.1} s): {how}.",
            recalled.clip,
            recalled.record.seconds()
        ));
        ui_rects::record(ui.ctx(), "melody_status", line.rect);
        let live = ui
            .button("Use the live capture")
            .on_hover_text("Forget the recalled melody: Generate follows what the track plays again.");
        ui_rects::record(ui.ctx(), "melody_use_live", live.rect);
        if live.clicked() {
            *params.recalled_melody.write() = None;
        }
    });
    true
}

/// One line saying what was captured, or what to do to capture something.
fn status_line(ui: &mut egui::Ui, preview: Option<&MelodyPreview>, params: &MelodyGenParams) {
    let manual = params.capture_mode.value() == CaptureMode::Manual;
    let how = if manual { "arm Capture and play the part" } else { "press play in the host, or arm Capture" };
    let Some(p) = preview else {
        ui.label(format!("Nothing captured yet: {how}."));
        return;
    };
    let recording = if p.capturing { format!("Capturing: {:.1} s. ", p.seconds) } else { String::new() };
    let warn = ui.visuals().warn_fg_color;
    let response = match p.state {
        PreviewState::Empty => ui.label(format!("{recording}Nothing captured yet: {how}.")),
        PreviewState::TextOnly => ui.label("No melody: the clip follows the prompt only."),
        PreviewState::Silent => ui.colored_label(warn, format!("{recording}{SILENT_MESSAGE}")),
        PreviewState::NoNotes => ui.colored_label(
            warn,
            format!("{recording}No MIDI notes captured: play the part's notes into this track (or choose Track audio)."),
        ),
        PreviewState::Failed => ui.colored_label(
            ui.visuals().error_fg_color,
            format!("The melody could not be read: {}", p.error.as_deref().unwrap_or("unknown error")),
        ),
        PreviewState::Ready => {
            let what = if p.source == MelodySource::Midi { format!("{} notes", p.notes.len()) } else { "audio".into() };
            let done = if p.capturing { recording } else { format!("Captured {:.1} s of {what}. ", p.seconds) };
            ui.label(format!("{done}Bright: the pitch the clip will follow."))
        }
    };
    ui_rects::record(ui.ctx(), "melody_status", response.rect);
}

/// The 12-row chroma picture: pitch classes bottom (C) to top (B), time left to right, the
/// strength of each class as the colour's intensity and the strongest class of each frame (the
/// one MusicGen-Melody is conditioned on) in the highlight colour.
fn chroma_picture(ui: &mut egui::Ui, p: &MelodyPreview) -> egui::Response {
    let height = ROW_HEIGHT * N_CHROMA as f32 + 16.0;
    let (rect, response) = ui.allocate_exact_size(egui::vec2(ui.available_width(), height), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    let grid = egui::Rect::from_min_max(
        egui::pos2(rect.left() + LABEL_WIDTH, rect.top()),
        egui::pos2(rect.right(), rect.top() + ROW_HEIGHT * N_CHROMA as f32),
    );
    painter.rect_filled(grid, 2.0, visuals.extreme_bg_color);
    let font = egui::FontId::proportional(9.0);
    for (c, name) in PITCH_CLASSES.iter().enumerate() {
        let y = grid.bottom() - (c as f32 + 0.5) * ROW_HEIGHT;
        painter.text(egui::pos2(rect.left() + 2.0, y), egui::Align2::LEFT_CENTER, *name, font.clone(), visuals.weak_text_color());
    }
    let frames = p.chroma.len().max(1);
    let width = grid.width() / frames as f32;
    let base = visuals.selection.bg_fill;
    let highlight = egui::Color32::from_rgb(255, 196, 64);
    for (t, (frame, &best)) in p.chroma.iter().zip(&p.argmax).enumerate() {
        let x = grid.left() + t as f32 * width;
        for (c, &v) in frame.iter().enumerate() {
            let is_best = c == usize::from(best);
            if v < 0.05 && !is_best {
                continue;
            }
            let cell = egui::Rect::from_min_size(
                egui::pos2(x, grid.bottom() - (c as f32 + 1.0) * ROW_HEIGHT),
                egui::vec2(width.max(1.0), ROW_HEIGHT - 1.0),
            );
            let colour = if is_best { highlight } else { base.gamma_multiply(v.clamp(0.0, 1.0)) };
            painter.rect_filled(cell, 0.0, colour);
        }
    }
    // Time axis: a label every whole number of seconds, at most about eight of them.
    let total = frames as f32 * FRAME_SECONDS;
    let step = [1.0f32, 2.0, 5.0, 10.0].into_iter().find(|s| total / s <= 8.0).unwrap_or(10.0);
    let mut s = 0.0;
    while s <= total {
        let x = grid.left() + s / total * grid.width();
        painter.text(egui::pos2(x, grid.bottom() + 2.0), egui::Align2::LEFT_TOP, format!("{s:.0} s"), font.clone(), visuals.weak_text_color());
        s += step;
    }
    if let Some(pos) = response.hover_pos() {
        let t = (((pos.x - grid.left()) / width) as usize).min(frames - 1);
        if let Some(&best) = p.argmax.get(t) {
            response.clone().on_hover_text_at_pointer(format!(
                "{:.1} s: the clip follows {}",
                t as f32 * FRAME_SECONDS,
                PITCH_CLASSES[usize::from(best)]
            ));
        }
    }
    response
}

/// A small piano roll of the captured MIDI notes, over the same time span as the picture.
fn note_roll(ui: &mut egui::Ui, p: &MelodyPreview) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(ui.available_width(), ROLL_HEIGHT), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    let grid = egui::Rect::from_min_max(egui::pos2(rect.left() + LABEL_WIDTH, rect.top()), rect.max);
    painter.rect_filled(grid, 2.0, visuals.extreme_bg_color);
    let lowest = p.notes.iter().map(|n| n.key).min().unwrap_or(60).saturating_sub(1);
    let highest = p.notes.iter().map(|n| n.key).max().unwrap_or(72).saturating_add(1).max(lowest + 12);
    let span = p.chroma.len().max(1) as f32 * FRAME_SECONDS * p.sample_rate as f32;
    let key_height = grid.height() / f32::from(highest - lowest + 1);
    let font = egui::FontId::proportional(9.0);
    for key in [lowest, highest] {
        let y = grid.bottom() - (f32::from(key - lowest) + 0.5) * key_height;
        let name = format!("{}{}", PITCH_CLASSES[usize::from(key) % 12], i32::from(key) / 12 - 1);
        painter.text(egui::pos2(rect.left() + 2.0, y), egui::Align2::LEFT_CENTER, name, font.clone(), visuals.weak_text_color());
    }
    for n in &p.notes {
        let x0 = grid.left() + n.start as f32 / span * grid.width();
        let x1 = grid.left() + n.end as f32 / span * grid.width();
        let y = grid.bottom() - f32::from(n.key - lowest + 1) * key_height;
        let note = egui::Rect::from_min_max(egui::pos2(x0, y), egui::pos2(x1.max(x0 + 2.0), y + key_height.max(2.0)));
        painter.rect_filled(note, 1.0, visuals.selection.bg_fill.gamma_multiply(0.4 + 0.6 * n.velocity));
    }
}

pub fn source_name(source: MelodySource) -> &'static str {
    match source {
        MelodySource::Audio => "Track audio",
        MelodySource::Midi => "MIDI notes",
        MelodySource::None => "None (text only)",
    }
}
