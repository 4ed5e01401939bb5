//! The current clip: its waveform with the playhead, Play / Stop / Loop, its level, and what it
//! is (name, prompt, seed).
//!
//! The dispatcher makes a clip current (a finished generation, a reopened project, an
//! audition) and publishes a [`CurrentClip`] with its waveform already reduced to [`Peaks`];
//! the editor only reads that and the playback atomics ([`PlayState`]), so drawing costs the
//! same for a 1 s or a 30 s clip and never waits on the disk.

use crate::params::MelodyGenParams;
use crate::audio::playback::{PlayState, PreviewMode};
use crate::editor::ui_rects;
use crate::shared::SharedState;
use nice_plug::prelude::ParamSetter;
use nice_plug_egui::widgets::ParamSlider;
use crate::dispatch::current_clip::CurrentClip;

/// Height of the waveform strip, in points.
const WAVEFORM_HEIGHT: f32 = 64.0;

/// Draws the current clip's panel. GUI thread; never blocks (atomics and a pointer clone).
pub fn show(ui: &mut egui::Ui, params: &MelodyGenParams, shared: &SharedState, setter: &ParamSetter) {
    let current = shared.current_clip();
    let play = &*shared.playback;
    match &current {
        Some(c) => {
            let name = crate::dispatch::library::ops::display_name(&c.meta);
            ui.horizontal_wrapped(|ui| {
                ui.strong(name);
                ui.label(format!(
                    "\"{}\" · seed {} · {:.1} s",
                    c.meta.settings.prompt, c.meta.settings.params.seed, c.meta.seconds
                ));
            });
        }
        None => {
            ui.label("No clip yet: press Generate, or Play a clip in the library.");
        }
    }
    waveform(ui, current.as_deref(), play);
    ui.horizontal(|ui| {
        let holds_current = current.as_ref().is_some_and(|c| play.clip_id() == c.id);
        let play_button = ui
            .add_enabled(current.is_some(), egui::Button::new("Play"))
            .on_hover_text("Play the clip from its start");
        ui_rects::record(ui.ctx(), "clip_play", play_button.rect);
        if play_button.clicked() {
            // "Off" would keep it silent: playing a clip asks for at least "Play now".
            if params.preview.value() == PreviewMode::Off {
                setter.begin_set_parameter(&params.preview);
                setter.set_parameter(&params.preview, PreviewMode::PlayNow);
                setter.end_set_parameter(&params.preview);
            }
            play.play();
        }
        let stop_button = ui
            .add_enabled(!play.is_stopped(), egui::Button::new("Stop"))
            .on_hover_text("Silence the clip until Play");
        ui_rects::record(ui.ctx(), "clip_stop", stop_button.rect);
        if stop_button.clicked() {
            play.stop();
        }
        let mut looping = params.loop_preview.value();
        let loop_button = ui.toggle_value(&mut looping, "Loop").on_hover_text("Repeat the clip");
        ui_rects::record(ui.ctx(), "clip_loop", loop_button.rect);
        if loop_button.changed() {
            setter.begin_set_parameter(&params.loop_preview);
            setter.set_parameter(&params.loop_preview, looping);
            setter.end_set_parameter(&params.loop_preview);
        }
        ui.label("Level");
        ui.add(ParamSlider::for_param(&params.clip_level, setter));
        ui.label(status(params, play, holds_current, current.as_deref()));
    });
}

/// One line saying what the player is doing.
fn status(params: &MelodyGenParams, play: &PlayState, holds_current: bool, current: Option<&CurrentClip>) -> String {
    let Some(c) = current else { return String::new() };
    if play.is_stopped() {
        return "Stopped".into();
    }
    if !holds_current {
        // Not on the audio thread yet: the host has not processed audio since.
        return "Queued".into();
    }
    match play.playhead() {
        Some(frame) => format!(
            "{} / {}",
            clock(frame as f64 / c.meta.sample_rate.max(1) as f64),
            clock(c.meta.seconds as f64)
        ),
        None if !c.audition && params.preview.value() == PreviewMode::FollowTransport => {
            "Plays with the song: start the host's transport".into()
        }
        None if params.preview.value() == PreviewMode::Off && !c.audition => "Preview is off".into(),
        None => "Ended".into(),
    }
}

/// `m:ss.s`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0);
    format!("{}:{:04.1}", (s / 60.0).floor() as u64, s % 60.0)
}

/// The waveform strip with the playhead; a click seeks there (play-now and auditions).
fn waveform(ui: &mut egui::Ui, current: Option<&CurrentClip>, play: &PlayState) {
    let width = ui.available_width().max(64.0);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, WAVEFORM_HEIGHT), egui::Sense::click());
    ui_rects::record(ui.ctx(), "clip_waveform", rect);
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 2.0, visuals.extreme_bg_color);
    let Some(c) = current else { return };
    let columns = rect.width().floor() as usize;
    let mid = rect.center().y;
    let half = rect.height() * 0.45;
    let colour = visuals.widgets.inactive.fg_stroke.color;
    for x in 0..columns {
        if let Some((lo, hi)) = c.peaks.column(x, columns) {
            let px = rect.left() + x as f32 + 0.5;
            let top = mid - hi.clamp(-1.0, 1.0) * half;
            let bottom = (mid - lo.clamp(-1.0, 1.0) * half).max(top + 1.0);
            painter.line_segment([egui::pos2(px, top), egui::pos2(px, bottom)], egui::Stroke::new(1.0, colour));
        }
    }
    let frames = play.clip_frames();
    if play.clip_id() == c.id && frames > 0 {
        if let Some(head) = play.playhead() {
            let x = rect.left() + rect.width() * (head as f32 / frames as f32).min(1.0);
            painter.line_segment(
                [egui::pos2(x, rect.top()), egui::pos2(x, rect.bottom())],
                egui::Stroke::new(1.5, visuals.selection.stroke.color),
            );
            // Keep the playhead moving while the clip sounds.
            ui.ctx().request_repaint_after(std::time::Duration::from_millis(33));
        }
        if let Some(pos) = response.interact_pointer_pos().filter(|_| response.clicked()) {
            let fraction = ((pos.x - rect.left()) / rect.width()).clamp(0.0, 1.0);
            play.seek((fraction as f64 * frames as f64) as u64);
        }
    }
    response.on_hover_text("Click to play from there (in \"Play now\" mode and auditions)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_minutes_and_tenths() {
        assert_eq!(clock(0.0), "0:00.0");
        assert_eq!(clock(8.04), "0:08.0");
        assert_eq!(clock(75.3), "1:15.3");
    }
}
