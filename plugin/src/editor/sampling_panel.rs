//! The "Advanced" section's sampling controls: temperature, top-k, top-p and deterministic mode.
//!
//! GUI thread only. Like the settings row (`settings_panel.rs`) it edits the project's
//! `GenerationParams` in place. Producers rarely need these, so the editor keeps them in a
//! section that is closed by default; the tooltips say what each does to the music.

use melodygen_engine::record::GenerationParams;

/// Temperature range offered: below 0.1 MusicGen loops one idea, above 2 it falls apart.
pub const TEMPERATURE_RANGE: std::ops::RangeInclusive<f32> = 0.1..=2.0;
/// Top-k range offered (0 turns it off); 2048 is the size of MusicGen's codebooks.
pub const TOP_K_RANGE: std::ops::RangeInclusive<usize> = 0..=2048;
/// Top-p range offered (0 turns it off).
pub const TOP_P_RANGE: std::ops::RangeInclusive<f32> = 0.0..=1.0;

/// Draws the sampling controls for `settings`, editing it in place.
pub fn show(ui: &mut egui::Ui, settings: &mut GenerationParams) {
    egui::Grid::new("sampling-settings").num_columns(4).show(ui, |ui| {
        ui.label("Temperature");
        ui.add_enabled(
            !settings.greedy,
            egui::DragValue::new(&mut settings.temperature).range(TEMPERATURE_RANGE).speed(0.01),
        )
        .on_hover_text(
            "How adventurous the playing is. 1 is MusicGen's usual; lower stays safe and \
             repetitive, higher is more surprising and can turn chaotic.",
        );

        ui.label("Top-k");
        ui.add_enabled(
            !settings.greedy,
            egui::DragValue::new(&mut settings.top_k).range(TOP_K_RANGE).speed(1.0),
        )
        .on_hover_text(
            "At each step, choose only among this many most likely sounds. 250 is MusicGen's \
             usual; smaller is tamer and more predictable, larger allows rarer ideas. 0: no limit.",
        );
        ui.end_row();

        ui.label("Top-p");
        ui.add_enabled(
            !settings.greedy,
            egui::DragValue::new(&mut settings.top_p).range(TOP_P_RANGE).speed(0.01),
        )
        .on_hover_text(
            "Like top-k, but keeps the most likely sounds that together make up this share of \
             the odds (0.9: the top 90%). Lower is tamer. 0: off (top-k decides).",
        );

        ui.label("Deterministic");
        ui.checkbox(&mut settings.greedy, "").on_hover_text(
            "Always take the single most likely next sound: no dice, so the seed does not \
             matter. Often dull or stuck on a loop; useful to compare settings.",
        );
        ui.end_row();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_lie_within_the_offered_ranges() {
        let d = GenerationParams::default();
        assert!(TEMPERATURE_RANGE.contains(&d.temperature));
        assert!(TOP_K_RANGE.contains(&d.top_k));
        assert!(TOP_P_RANGE.contains(&d.top_p));
    }
}
