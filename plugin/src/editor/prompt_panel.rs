//! The prompt row's helpers: starter presets and the history of prompts already generated with.
//!
//! GUI thread only. The history is derived from the clip list each frame (the clips' sidecar
//! metadata already records the prompt each was made with), so it needs no persisted field of
//! its own and always agrees with the clips the project really has.

use melodygen_engine::record::ClipMeta;

/// How many past prompts the history menu offers.
pub const HISTORY_LEN: usize = 10;

/// One starter prompt of the "Presets" menu.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// What the menu shows.
    pub label: String,
    /// What picking it puts in the prompt box. Written the way MusicGen's training captions
    /// are: genre, instruments, mood, tempo.
    pub prompt: String,
}

/// The shipped presets, `assets/presets.json`, built into the plugin so it needs no file
/// beside it at run time; editing the list is a data change, not a code change.
const PRESETS_JSON: &str = include_str!("../../../assets/presets.json");

/// The starter prompts, parsed from [`PRESETS_JSON`] on first use and kept for the process.
/// A malformed file gives an empty menu rather than a panic on the GUI thread; the unit test
/// `presets_are_nonempty_and_distinct` keeps that from shipping.
pub fn presets() -> &'static [Preset] {
    static PRESETS: std::sync::OnceLock<Vec<Preset>> = std::sync::OnceLock::new();
    PRESETS.get_or_init(|| serde_json::from_str(PRESETS_JSON).unwrap_or_default())
}

/// The prompts of `clips` (oldest first, as the clip list stores them), most recent first,
/// without repeats or empty prompts, at most `limit` of them.
pub fn prompt_history(clips: &[ClipMeta], limit: usize) -> Vec<String> {
    let mut history: Vec<String> = Vec::new();
    for meta in clips.iter().rev() {
        let prompt = meta.settings.prompt.trim();
        if prompt.is_empty() || history.iter().any(|p| p == prompt) {
            continue;
        }
        history.push(prompt.to_string());
        if history.len() == limit {
            break;
        }
    }
    history
}

/// Draws the "Presets" and "History" menus; picking an entry replaces `prompt`.
pub fn show_menus(ui: &mut egui::Ui, prompt: &mut String, history: &[String]) {
    ui.menu_button("Presets", |ui| {
        for preset in presets() {
            if ui.button(&preset.label).on_hover_text(&preset.prompt).clicked() {
                *prompt = preset.prompt.clone();
                ui.close();
            }
        }
    })
    .response
    .on_hover_text("Starter prompts: a genre, instruments, a mood and a tempo. Edit them to taste.");

    ui.add_enabled_ui(!history.is_empty(), |ui| {
        ui.menu_button("History", |ui| {
            for text in history {
                if ui.button(shorten(text, 60)).on_hover_text(text).clicked() {
                    *prompt = text.clone();
                    ui.close();
                }
            }
        })
        .response
        .on_hover_text("Prompts of this project's clips, most recent first.")
        .on_disabled_hover_text("Prompts you generate with appear here.");
    });
}

/// `text` cut to `max` characters with an ellipsis, so long prompts fit a menu.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use melodygen_engine::record::JobSettings;

    fn clip(prompt: &str) -> ClipMeta {
        ClipMeta {
            path: "/clips/a.wav".into(),
            settings: JobSettings { prompt: prompt.to_string(), ..Default::default() },
            model_dir: None,
            seconds: 1.0,
            sample_rate: 48_000,
            frames: 48_000,
            model_rate: 32_000,
            anchor: melodygen_engine::record::CaptureAnchor::default(),
            created: "2026-01-01T00:00:00Z".into(),
            melody: None,
        }
    }

    /// The shipped file parses, and every preset has a label and a prompt, neither repeated.
    #[test]
    fn presets_are_nonempty_and_distinct() {
        let parsed: Vec<Preset> = serde_json::from_str(PRESETS_JSON).expect("assets/presets.json");
        assert_eq!(presets(), &parsed[..]);
        assert!(parsed.len() >= 5);
        for (i, p) in parsed.iter().enumerate() {
            assert!(!p.label.trim().is_empty() && !p.prompt.trim().is_empty(), "{p:?}");
            assert_eq!((p.label.trim(), p.prompt.trim()), (&p.label[..], &p.prompt[..]), "stray spaces");
            let later = &parsed[i + 1..];
            assert!(later.iter().all(|q| q.label != p.label && q.prompt != p.prompt), "{} repeated", p.label);
        }
    }

    #[test]
    fn history_is_most_recent_first_without_repeats() {
        let clips: Vec<_> = ["a", "b", "a", "", "c", "b "].into_iter().map(clip).collect();
        assert_eq!(prompt_history(&clips, HISTORY_LEN), ["b", "c", "a"]);
    }

    #[test]
    fn history_is_limited() {
        let clips: Vec<_> = (0..25).map(|i| clip(&format!("prompt {i}"))).collect();
        let history = prompt_history(&clips, HISTORY_LEN);
        assert_eq!(history.len(), HISTORY_LEN);
        assert_eq!(history[0], "prompt 24");
        assert_eq!(history[9], "prompt 15");
        assert!(prompt_history(&[], HISTORY_LEN).is_empty());
    }

    #[test]
    fn shorten_keeps_short_text_and_cuts_long() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("abcdefgh", 5), "abcd…");
    }
}
