//! The generation settings row of the editor: length (seconds or bars), guidance, seed.
//!
//! GUI thread only. The settings live in the project state (`MelodyGenParams::settings`); this
//! panel edits them in place, so what the user sees is exactly what the next job and the saved
//! project use. The tooltips speak in musical terms, not ML ones. (The melody source is chosen
//! in the melody view, next to what it captured.)

use melodygen_engine::record::{ClipLength, GenerationParams};

/// Longest clip the engine generates in one pass.
pub const MAX_SECONDS: f32 = 30.0;
/// Shortest clip offered.
pub const MIN_SECONDS: f32 = 1.0;

/// What the host reports about musical time; bars are offered only with a tempo.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostTempo {
    pub bpm: Option<f64>,
    pub time_sig: Option<(i32, i32)>,
}

impl HostTempo {
    /// Seconds of one bar at this tempo and time signature (4/4 when the host reports none).
    pub fn bar_seconds(&self) -> Option<f32> {
        self.bpm.filter(|b| *b > 0.0).map(|_| ClipLength::Bars(1.0).seconds(self.bpm, self.time_sig))
    }

    /// The most bars that fit in [`MAX_SECONDS`] (at least 1).
    pub fn max_bars(&self) -> f32 {
        self.bar_seconds().map_or(1.0, |s| (MAX_SECONDS / s).floor().max(1.0))
    }
}

/// Draws the settings controls for `settings`, editing it in place.
pub fn show(ui: &mut egui::Ui, settings: &mut GenerationParams, host: HostTempo) {
    egui::Grid::new("generation-settings").num_columns(4).show(ui, |ui| {
        ui.label("Length");
        length(ui, settings, host);
        ui.end_row();

        ui.label("Guidance");
        ui.add(egui::DragValue::new(&mut settings.guidance).range(1.0..=10.0).speed(0.05))
            .on_hover_text(
                "How literally the prompt is followed. 3 is MusicGen's usual; higher sticks closer \
                 to the words but can sound harsher; 1 lets the model wander.",
            );
        ui.end_row();

        ui.label("Seed");
        ui.horizontal(|ui| {
            ui.add_enabled(settings.seed_locked, egui::DragValue::new(&mut settings.seed))
                .on_hover_text("The number behind the dice roll. The same seed, prompt, melody and settings give the same clip.")
                .on_disabled_hover_text(
                    "The seed of the last clip. Each Generate rolls a new one; tick Lock to keep it.",
                );
            ui.checkbox(&mut settings.seed_locked, "Lock").on_hover_text(
                "Locked: every Generate reuses this seed, to make a take you liked again or to \
                 hear only what a changed setting does. Unlocked: a new seed each time (shown here \
                 and saved with each clip).",
            );
            if ui
                .button("New seed")
                .on_hover_text("Roll a new seed now (and lock it), for a different take of the same idea.")
                .clicked()
            {
                settings.seed = rand::random();
                settings.seed_locked = true;
            }
        });
        ui.end_row();
    });
}

/// The length control: a seconds/bars switch (bars only when the host reports a tempo) and the
/// value; in bars the resulting seconds are shown beside it.
fn length(ui: &mut egui::Ui, settings: &mut GenerationParams, host: HostTempo) {
    ui.horizontal(|ui| {
        let bar = host.bar_seconds();
        let in_bars = matches!(settings.length, ClipLength::Bars(_));
        let seconds_now = settings.length.seconds(host.bpm, host.time_sig);
        match settings.length {
            ClipLength::Seconds(mut s) => {
                if ui
                    .add(egui::DragValue::new(&mut s).range(MIN_SECONDS..=MAX_SECONDS).speed(0.1).suffix(" s"))
                    .on_hover_text("How long the generated clip is, up to 30 seconds. Longer takes longer to make.")
                    .changed()
                {
                    settings.length = ClipLength::Seconds(s);
                }
            }
            ClipLength::Bars(mut b) => {
                if ui
                    .add(egui::DragValue::new(&mut b).range(1.0..=host.max_bars()).speed(0.05).max_decimals(0).suffix(" bars"))
                    .on_hover_text(
                        "How many bars of your song the clip lasts, at the host's tempo and time \
                         signature, so it lines up with the arrangement.",
                    )
                    .changed()
                {
                    settings.length = ClipLength::Bars(b.round().max(1.0));
                }
                ui.weak(format!("= {seconds_now:.1} s"));
            }
        }
        let mut want_bars = in_bars;
        ui.add_enabled_ui(bar.is_some() || in_bars, |ui| {
            ui.selectable_value(&mut want_bars, false, "s").on_hover_text("Length in seconds.");
            let bars = ui
                .selectable_value(&mut want_bars, true, "bars")
                .on_hover_text("Length in bars of the song, at the host's tempo.")
                .on_disabled_hover_text("Bars need a tempo from the host: start the transport, or use seconds.");
            crate::editor::ui_rects::record(ui.ctx(), "length_bars", bars.rect);
        });
        if want_bars != in_bars {
            settings.length = match (want_bars, bar) {
                (true, Some(bar)) => ClipLength::Bars((seconds_now / bar).round().clamp(1.0, host.max_bars())),
                _ => ClipLength::Seconds(seconds_now.clamp(MIN_SECONDS, MAX_SECONDS)),
            };
        }
        if in_bars && bar.is_none() {
            ui.colored_label(ui.visuals().warn_fg_color, "no tempo from the host: 120 BPM, 4/4 assumed")
                .on_hover_text("The host has not reported a tempo yet (it usually does once the transport runs).");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_follow_the_host_tempo_and_fit_the_longest_clip() {
        let host = HostTempo { bpm: Some(120.0), time_sig: Some((4, 4)) };
        assert_eq!(host.bar_seconds(), Some(2.0));
        assert_eq!(host.max_bars(), 15.0); // 15 bars × 2 s = 30 s
        let waltz = HostTempo { bpm: Some(90.0), time_sig: Some((3, 4)) };
        assert!((waltz.bar_seconds().unwrap() - 2.0).abs() < 1e-6);
        let slow = HostTempo { bpm: Some(5.0), time_sig: Some((4, 4)) };
        assert_eq!(slow.max_bars(), 1.0, "one bar is always offered");
        let none = HostTempo::default();
        assert_eq!(none.bar_seconds(), None, "no tempo: no bars");
    }
}
