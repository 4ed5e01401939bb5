//! The clip library: every clip of the project with its prompt, seed, length and time, to
//! audition, rename, delete (with undo), reveal, or make again with the same settings, and the
//! folder new clips go to.
//!
//! Threads: the editor (`crate::editor::library_panel`) only reads the project's clip list and sends a
//! [`LibraryCommand`] for anything that touches the disk or the audio; the per-instance
//! dispatcher thread carries it out ([`service`], on top of the file operations in [`ops`]) and
//! reports back through [`LibraryShared`]. The audio thread only plays what it is handed.

pub mod ops;

pub mod service;

use crate::params::MelodyGenParams;
use melodygen_engine::record::ClipMeta;
use melodygen_engine::record::MelodySource;
use melodygen_engine::record::MelodyRecord;
use crossbeam_channel::{Receiver, Sender};
use ops::Trashed;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};

/// What the editor asks the dispatcher to do with the library.
#[derive(Debug, Clone, PartialEq)]
pub enum LibraryCommand {
    /// Load the clip's WAV, convert it to the host rate and play it from its start.
    Audition(PathBuf),
    /// Rename the clip (WAV and sidecar) to a user-typed name.
    Rename { path: PathBuf, name: String },
    /// Move the clip to its folder's trash and remove its row (undoable this session).
    Delete(PathBuf),
    /// Undo the newest deletion not undone yet.
    Undo,
    /// Show the file in the system's file manager.
    Reveal(PathBuf),
    /// Use this (user-typed) folder for new clips.
    SetFolder(String),
    /// Back to the default clip folder.
    DefaultFolder,
}

/// What the editor and the dispatcher share about the library. Lives in the instance's
/// `SharedState`, so it survives closing and reopening the editor.
pub struct LibraryShared {
    tx: Sender<LibraryCommand>,
    rx: Receiver<LibraryCommand>,
    /// Deletions of this session, newest last: what "Undo" brings back. Not saved with the
    /// project (the files stay in the trash folder either way).
    pub trashed: Mutex<Vec<Trashed>>,
    /// Outcome of the last library operation (errors included), shown above the list.
    pub message: Mutex<String>,
    /// The clip whose audition is being loaded, so its row shows it.
    pub loading: Mutex<Option<PathBuf>>,
    /// How "Reveal file" shows a file; tests record instead.
    pub reveal: fn(&Path) -> std::io::Result<()>,
}

impl Default for LibraryShared {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self {
            tx,
            rx,
            trashed: Mutex::new(Vec::new()),
            message: Mutex::new(String::new()),
            loading: Mutex::new(None),
            reveal: crate::editor::drag::reveal_in_file_manager,
        }
    }
}

impl LibraryShared {
    /// Queues a command for the dispatcher. GUI thread; never blocks (unbounded channel).
    pub fn send(&self, command: LibraryCommand) {
        if let LibraryCommand::Audition(path) = &command {
            *self.loading.lock() = Some(path.clone());
        }
        // The receiver lives as long as `self`: sending cannot fail.
        let _ = self.tx.send(command);
    }

    /// The dispatcher's end of the command channel.
    pub fn receiver(&self) -> Receiver<LibraryCommand> {
        self.rx.clone()
    }

    pub fn set_message(&self, text: impl Into<String>) {
        *self.message.lock() = text.into();
    }
}

/// A clip's melody kept as the project's melody for the next generations (persisted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecalledMelody {
    /// The clip's name as the library shows it.
    pub clip: String,
    pub record: MelodyRecord,
}

/// "Use these settings again": the clip's prompt and every generation setting, its seed
/// included and locked, become the project's, and so does the melody the clip followed, so the
/// next Generate makes the same clip whatever is captured now. A clip without a recorded melody
/// (text only, or made before melodies were recorded) clears any recalled melody: Generate
/// then follows the live capture as usual. No file is touched, so the editor calls it
/// directly. Returns the sentence that tells the producer what was restored.
pub fn use_settings_again(params: &MelodyGenParams, meta: &ClipMeta) -> String {
    *params.prompt.write() = meta.settings.prompt.clone();
    let mut settings = params.settings.write();
    *settings = meta.settings.params.clone();
    settings.seed_locked = true;
    let name = ops::display_name(meta);
    *params.recalled_melody.write() =
        meta.melody.clone().map(|record| RecalledMelody { clip: name.clone(), record });
    let seed = meta.settings.params.seed;
    match (&meta.melody, meta.settings.params.melody_source) {
        (Some(_), _) => format!("Prompt, settings and melody of \"{name}\" restored, seed {seed} locked."),
        (None, MelodySource::None) => {
            format!("Prompt and settings of \"{name}\" restored, seed {seed} locked (text only: no melody).")
        }
        (None, _) => format!(
            "Prompt and settings of \"{name}\" restored, seed {seed} locked. This clip has no recorded \
             melody (made before melodies were saved), so Generate follows the live capture."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use melodygen_engine::record::CaptureAnchor;
    use melodygen_engine::record::{ClipLength, GenerationParams, JobSettings};

    #[test]
    fn use_settings_again_copies_prompt_and_settings_with_the_seed_locked() {
        let params = MelodyGenParams::default();
        *params.prompt.write() = "something else".into();
        params.settings.write().seed_locked = false;
        let clip_settings = GenerationParams {
            model: "/models/tiny".into(),
            length: ClipLength::Bars(4.0),
            seed: 987_654_321,
            seed_locked: false,
            top_k: 50,
            top_p: 0.9,
            temperature: 0.7,
            guidance: 5.0,
            greedy: false,
            melody_source: MelodySource::Midi,
            ..Default::default()
        };
        let meta = ClipMeta {
            path: "/clips/x.wav".into(),
            settings: JobSettings {
                prompt: "dusty jazz drums".into(),
                params: clip_settings.clone(),
            },
            model_dir: None,
            seconds: 8.0,
            sample_rate: 48_000,
            frames: 384_000,
            model_rate: 32_000,
            anchor: CaptureAnchor::default(),
            created: "2026-01-01T00:00:00Z".into(),
            melody: None,
        };
        // A clip without a record (made before melodies were saved) clears a recalled melody
        // and says that Generate follows the live capture.
        let stale = MelodyRecord::from_pitch_classes(MelodySource::Audio, &[1, 2]).unwrap();
        *params.recalled_melody.write() = Some(RecalledMelody { clip: "older".into(), record: stale });
        let said = use_settings_again(&params, &meta);
        assert!(said.contains("no recorded melody") && said.contains("live capture"), "{said}");
        assert_eq!(*params.recalled_melody.read(), None);
        assert_eq!(*params.prompt.read(), "dusty jazz drums");
        assert_eq!(
            *params.settings.read(),
            GenerationParams {
                seed_locked: true,
                ..clip_settings
            }
        );

        // A clip with a record: its melody becomes the project's, named after the clip, and
        // survives the project being saved and loaded (serde of the persisted field).
        let record = MelodyRecord::from_pitch_classes(MelodySource::Midi, &[0, 0, 7, 7, 9]).unwrap();
        let with = ClipMeta { melody: Some(record.clone()), ..meta };
        let said = use_settings_again(&params, &with);
        assert!(said.contains("settings and melody of \"x\""), "{said}");
        let recalled = params.recalled_melody.read().clone().unwrap();
        assert_eq!(recalled, RecalledMelody { clip: "x".into(), record });
        let saved = serde_json::to_string(&Some(recalled.clone())).unwrap();
        assert_eq!(serde_json::from_str::<Option<RecalledMelody>>(&saved).unwrap(), Some(recalled));
    }
}
