//! The dispatcher's side of the library: carries out the editor's [`LibraryCommand`]s (all but
//! auditions, which the dispatcher plays itself) and reports the outcome. Dispatcher thread
//! only: these calls touch the disk.

use super::ops::{self, display_name};
use super::LibraryCommand;
use crate::params::MelodyGenParams;
use crate::shared::SharedState;
use crate::worker::clip::default_clip_dir;

/// Carries out `command` (not an audition) and leaves its outcome in the library's message.
pub fn apply(command: LibraryCommand, params: &MelodyGenParams, shared: &SharedState) {
    let library = &shared.library;
    let message = match command {
        LibraryCommand::Audition(_) => return,
        LibraryCommand::Rename { path, name } => match ops::rename(&params.clips, &path, &name) {
            Ok(meta) => {
                // The clip view names the current clip by its path: follow the rename.
                shared.update_current_clip(&path, &meta.path);
                format!("Renamed to \"{}\".", display_name(&meta))
            }
            Err(e) => format!("Not renamed: {e}."),
        },
        LibraryCommand::Delete(path) => match ops::delete(&params.clips, &path) {
            Ok(trashed) => {
                let text = format!(
                    "Deleted \"{}\" (moved to {}).",
                    display_name(&trashed.meta),
                    ops::trash_dir(&path).display()
                );
                library.trashed.lock().push(trashed);
                text
            }
            Err(e) => format!("Not deleted: {e}."),
        },
        LibraryCommand::Undo => {
            let Some(trashed) = library.trashed.lock().pop() else {
                return;
            };
            match ops::undo(&params.clips, &trashed) {
                Ok(()) => format!("Restored \"{}\".", display_name(&trashed.meta)),
                Err(e) => {
                    let text = format!("Cannot restore \"{}\": {e}.", display_name(&trashed.meta));
                    library.trashed.lock().push(trashed);
                    text
                }
            }
        }
        LibraryCommand::Reveal(path) => {
            let shown = if path.exists() { path.clone() } else { path.parent().unwrap_or(&path).to_path_buf() };
            match (library.reveal)(&shown) {
                Ok(()) => format!("Showing {} in the file manager.", path.display()),
                Err(e) => format!("Cannot open the file manager for {}: {e}.", path.display()),
            }
        }
        LibraryCommand::SetFolder(text) => match ops::prepare_clip_dir(&text) {
            Ok(dir) => {
                let text = format!("New clips go to {}.", dir.display());
                *params.clip_dir.write() = Some(dir);
                text
            }
            Err(e) => format!("Clip folder not changed: {e}."),
        },
        LibraryCommand::DefaultFolder => {
            *params.clip_dir.write() = None;
            format!("New clips go to the default folder, {}.", default_clip_dir().display())
        }
    };
    library.set_message(message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use melodygen_engine::record::{CaptureAnchor, ClipMeta};
use crate::worker::clip::Clip;
    use melodygen_engine::record::JobSettings;
    use std::path::{Path, PathBuf};

    fn clip_in(dir: &Path, params: &MelodyGenParams) -> ClipMeta {
        let mut clip = Clip {
            meta: ClipMeta {
                path: PathBuf::new(),
                settings: JobSettings { prompt: "p".into(), ..Default::default() },
                model_dir: None,
                seconds: 0.0,
                sample_rate: 48_000,
                frames: 4,
                model_rate: 32_000,
                anchor: CaptureAnchor::default(),
                created: "2026-01-01T00:00:00Z".into(),
                melody: None,
            },
            audio: melodygen_engine::wav::Audio { sample_rate: 48_000, channels: vec![vec![0.1; 4]; 2] },
        };
        clip.save(dir, 5).unwrap();
        params.clips.push(clip.meta.clone());
        clip.meta
    }

    static REVEALED: parking_lot::Mutex<Vec<PathBuf>> = parking_lot::Mutex::new(Vec::new());

    #[test]
    fn commands_update_the_list_the_undo_stack_and_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let params = MelodyGenParams::default();
        let mut shared = SharedState::default();
        shared.library.reveal = |p| {
            REVEALED.lock().push(p.to_path_buf());
            Ok(())
        };
        let meta = clip_in(dir.path(), &params);
        let message = || shared.library.message.lock().clone();

        apply(LibraryCommand::Rename { path: meta.path.clone(), name: "Hook".into() }, &params, &shared);
        let hook = dir.path().join("Hook.wav");
        assert_eq!(message(), "Renamed to \"Hook\".");
        assert!(params.clips.find(&hook).is_some());

        apply(LibraryCommand::Rename { path: hook.clone(), name: "bad/name".into() }, &params, &shared);
        assert!(message().starts_with("Not renamed: \"bad/name\" cannot be a clip name"), "{}", message());

        apply(LibraryCommand::Reveal(hook.clone()), &params, &shared);
        assert_eq!(*REVEALED.lock(), [hook.clone()]);

        apply(LibraryCommand::Delete(hook.clone()), &params, &shared);
        assert!(params.clips.is_empty() && !hook.exists());
        assert_eq!(shared.library.trashed.lock().len(), 1);
        assert!(message().starts_with("Deleted \"Hook\""), "{}", message());

        apply(LibraryCommand::Undo, &params, &shared);
        assert!(hook.exists() && params.clips.find(&hook).is_some());
        assert!(shared.library.trashed.lock().is_empty());
        assert_eq!(message(), "Restored \"Hook\".");

        let folder = dir.path().join("elsewhere");
        apply(LibraryCommand::SetFolder(folder.display().to_string()), &params, &shared);
        assert_eq!(*params.clip_dir.read(), Some(folder.clone()));
        assert!(folder.is_dir());
        apply(LibraryCommand::SetFolder("relative/path".into()), &params, &shared);
        assert_eq!(*params.clip_dir.read(), Some(folder), "a refused folder changes nothing");
        assert!(message().starts_with("Clip folder not changed"), "{}", message());
        apply(LibraryCommand::DefaultFolder, &params, &shared);
        assert_eq!(*params.clip_dir.read(), None);
        // Existing clips keep their paths whatever the folder.
        assert_eq!(params.clips.with(|c| c[0].path.clone()), hook);
    }
}
