//! The library's file operations: rename, delete to the trash and undo, choosing the clip
//! folder. They touch the disk, so they run on the dispatcher thread (never the GUI or audio
//! thread); each one updates the project's [`ClipList`], which is saved with the project.

use crate::state::ClipList;
use melodygen_engine::record::ClipMeta;
use std::io;
use std::path::{Path, PathBuf};

/// Folder inside a clip's own folder where deleted clips go. Nothing empties it automatically:
/// deleting it (or files in it) is the user's decision.
pub const TRASH_DIR: &str = "trash";

/// Longest clip name accepted (file systems allow 255 bytes with the extension).
const MAX_NAME_BYTES: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("\"{name}\" cannot be a clip name: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("a file named \"{}\" already exists", path.display())]
    Exists { path: PathBuf },
    #[error("\"{}\" is not in this project's clip list", path.display())]
    NotListed { path: PathBuf },
    #[error("the file of \"{}\" is missing", path.display())]
    Missing { path: PathBuf },
    #[error("the clip folder must be a full path, not \"{text}\"")]
    RelativeFolder { text: String },
    #[error("type a folder for new clips first")]
    EmptyFolder,
    #[error("cannot {action} \"{}\": {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LibraryError + 'a {
    move |source| LibraryError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The file stem a user-typed name becomes: trimmed, a typed ".wav" dropped. Refuses what
/// would leave the folder, hide the file or fail on one of the three desktop systems.
pub fn validate_name(text: &str) -> Result<String, LibraryError> {
    let invalid = |why| LibraryError::InvalidName {
        name: text.to_string(),
        why,
    };
    let name = text.trim();
    let name = name
        .strip_suffix(".wav")
        .or_else(|| name.strip_suffix(".WAV"))
        .unwrap_or(name)
        .trim_end();
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.starts_with('.') {
        return Err(invalid("it may not start with a dot"));
    }
    if name
        .chars()
        .any(|c| matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control())
    {
        return Err(invalid("it may not contain / \\ : * ? \" < > | or control characters"));
    }
    if name.ends_with('.') {
        return Err(invalid("it may not end with a dot"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid("it is too long"));
    }
    Ok(name.to_string())
}

/// The name the library shows: the WAV's file stem.
pub fn display_name(meta: &ClipMeta) -> String {
    meta.path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Renames the clip at `path` to `name` (in its folder): the WAV is renamed, the sidecar is
/// rewritten under the new name with the new path and the old one removed, and the project's
/// list follows. Refuses a name that is taken (WAV or sidecar) or invalid. Returns the updated
/// metadata.
pub fn rename(clips: &ClipList, path: &Path, name: &str) -> Result<ClipMeta, LibraryError> {
    let meta = clips.find(path).ok_or_else(|| LibraryError::NotListed { path: path.into() })?;
    let stem = validate_name(name)?;
    let folder = path.parent().unwrap_or(Path::new(""));
    let new_path = folder.join(format!("{stem}.wav"));
    if new_path == path {
        return Ok(meta);
    }
    let renamed = ClipMeta {
        path: new_path.clone(),
        ..meta.clone()
    };
    for taken in [&new_path, &renamed.sidecar_path()] {
        if taken.exists() {
            return Err(LibraryError::Exists { path: taken.clone() });
        }
    }
    if !path.exists() {
        return Err(LibraryError::Missing { path: path.into() });
    }
    std::fs::rename(path, &new_path).map_err(io_err("rename", path))?;
    if let Err(e) = renamed.write_sidecar().map_err(io_err("write", &renamed.sidecar_path())) {
        // Leave things as they were rather than half renamed.
        let _ = std::fs::rename(&new_path, path);
        return Err(e);
    }
    let old_sidecar = meta.sidecar_path();
    if old_sidecar.exists() {
        std::fs::remove_file(&old_sidecar).map_err(io_err("remove", &old_sidecar))?;
    }
    clips.update(path, |m| m.path = new_path.clone());
    Ok(renamed)
}

/// A deleted clip, kept for "Undo" during the session: its row and where its files went.
#[derive(Debug, Clone, PartialEq)]
pub struct Trashed {
    pub meta: ClipMeta,
    /// Its position in the project's list (oldest first).
    pub index: usize,
    /// Where the WAV and the sidecar were moved (`None`: there was no such file).
    pub wav: Option<PathBuf>,
    pub sidecar: Option<PathBuf>,
}

/// The trash folder of a clip: [`TRASH_DIR`] in the clip's own folder (same file system, so the
/// move is a rename).
pub fn trash_dir(clip: &Path) -> PathBuf {
    clip.parent().unwrap_or(Path::new("")).join(TRASH_DIR)
}

/// A file name in `dir` not used yet: `name`, else `stem (2).ext`, `stem (3).ext`, ...
fn free_name(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    (1..)
        .map(|i| match i {
            1 => dir.join(format!("{stem}.{ext}")),
            _ => dir.join(format!("{stem} ({i}).{ext}")),
        })
        .find(|p| !p.exists())
        .expect("an unused name exists")
}

/// Moves the clip at `path` (WAV and sidecar) into its folder's trash and removes its row. A
/// clip whose file is already gone just loses its row.
pub fn delete(clips: &ClipList, path: &Path) -> Result<Trashed, LibraryError> {
    let meta = clips.find(path).ok_or_else(|| LibraryError::NotListed { path: path.into() })?;
    let trash = trash_dir(path);
    let stem = display_name(&meta);
    // Both files get the same free stem, so they still pair up inside the trash.
    let mut wav = None;
    let mut sidecar = None;
    let old_sidecar = meta.sidecar_path();
    if path.exists() || old_sidecar.exists() {
        std::fs::create_dir_all(&trash).map_err(io_err("create", &trash))?;
        let target = (1..)
            .map(|i| match i {
                1 => stem.clone(),
                _ => format!("{stem} ({i})"),
            })
            .find(|s| !trash.join(format!("{s}.wav")).exists() && !trash.join(format!("{s}.json")).exists())
            .expect("an unused name exists");
        if path.exists() {
            let to = free_name(&trash, &target, "wav");
            std::fs::rename(path, &to).map_err(io_err("move to the trash", path))?;
            wav = Some(to);
        }
        if old_sidecar.exists() {
            let to = free_name(&trash, &target, "json");
            if let Err(e) = std::fs::rename(&old_sidecar, &to) {
                if let Some(w) = &wav {
                    let _ = std::fs::rename(w, path);
                }
                return Err(io_err("move to the trash", &old_sidecar)(e));
            }
            sidecar = Some(to);
        }
    }
    let (index, meta) = clips
        .remove(path)
        .ok_or_else(|| LibraryError::NotListed { path: path.into() })?;
    Ok(Trashed {
        meta,
        index,
        wav,
        sidecar,
    })
}

/// Undoes [`delete`]: the files go back where they were and the row returns to its place.
/// Refuses when a new file took the clip's name meanwhile.
pub fn undo(clips: &ClipList, trashed: &Trashed) -> Result<(), LibraryError> {
    let path = &trashed.meta.path;
    let sidecar = trashed.meta.sidecar_path();
    for (from, to) in [(&trashed.wav, path), (&trashed.sidecar, &sidecar)] {
        if from.is_some() && to.exists() {
            return Err(LibraryError::Exists { path: to.clone() });
        }
    }
    if let Some(wav) = &trashed.wav {
        std::fs::rename(wav, path).map_err(io_err("restore", wav))?;
    }
    if let Some(json) = &trashed.sidecar {
        std::fs::rename(json, &sidecar).map_err(io_err("restore", json))?;
    }
    clips.insert(trashed.index, trashed.meta.clone());
    Ok(())
}

/// Checks a folder typed by the user for new clips: a full path (a leading `~` is the home
/// folder), created if needed, and writable. Returns the folder to store.
pub fn prepare_clip_dir(text: &str) -> Result<PathBuf, LibraryError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(LibraryError::EmptyFolder);
    }
    let path = match text.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '\\']) => match dirs::home_dir() {
            Some(home) => home.join(rest.trim_start_matches(['/', '\\'])),
            None => PathBuf::from(text),
        },
        _ => PathBuf::from(text),
    };
    if !path.is_absolute() {
        return Err(LibraryError::RelativeFolder { text: text.into() });
    }
    std::fs::create_dir_all(&path).map_err(io_err("create the folder", &path))?;
    // Writable? (Read-only mounts and permissions only show when a file is made.)
    let probe = path.join(format!(".melodygen-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(io_err("write into", &path))?;
    let _ = std::fs::remove_file(&probe);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use melodygen_engine::wav::{self, Audio};
    use melodygen_engine::record::CaptureAnchor;
use crate::worker::clip::Clip;
    use melodygen_engine::record::{GenerationParams, JobSettings};

    /// A clip saved the way the worker saves it (WAV + sidecar), listed in `clips`.
    fn saved_clip(dir: &Path, job: u64, clips: &ClipList) -> ClipMeta {
        let mut clip = Clip {
            meta: ClipMeta {
                path: PathBuf::new(),
                settings: JobSettings {
                    prompt: format!("prompt {job}"),
                    params: GenerationParams {
                        seed: 1000 + job,
                        ..Default::default()
                    },
                },
                model_dir: None,
                seconds: 0.001,
                sample_rate: 48_000,
                frames: 48,
                model_rate: 32_000,
                anchor: CaptureAnchor::default(),
                created: "2026-01-01T00:00:00Z".into(),
                melody: None,
            },
            audio: Audio {
                sample_rate: 48_000,
                channels: vec![vec![job as f32 / 10.0; 48], vec![-(job as f32) / 10.0; 48]],
            },
        };
        clip.save(dir, job).unwrap();
        clips.push(clip.meta.clone());
        clip.meta
    }

    fn sidecar_of(path: &Path) -> ClipMeta {
        serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap()).unwrap()
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(validate_name("  Verse take 2.wav ").unwrap(), "Verse take 2");
        assert_eq!(validate_name("bass → lo-fi").unwrap(), "bass → lo-fi");
        for bad in ["", "   ", ".wav", "../x", "a/b", "a\\b", ".hidden", "what?", "dot.", "a\nb"] {
            assert!(
                matches!(validate_name(bad), Err(LibraryError::InvalidName { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(validate_name(&"x".repeat(MAX_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn rename_moves_wav_and_sidecar_and_updates_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let clips = ClipList::default();
        let a = saved_clip(dir.path(), 1, &clips);
        let audio = wav::read(&a.path).unwrap();

        let renamed = rename(&clips, &a.path, "Chorus idea").unwrap();
        let new_path = dir.path().join("Chorus idea.wav");
        assert_eq!(renamed.path, new_path);
        assert!(!a.path.exists() && !a.sidecar_path().exists(), "old files left behind");
        assert_eq!(wav::read(&new_path).unwrap(), audio);
        // The sidecar moved with it and names the new WAV; everything else is unchanged.
        assert_eq!(sidecar_of(&new_path), renamed);
        assert_eq!(renamed, ClipMeta { path: new_path.clone(), ..a.clone() });
        assert_eq!(clips.with(|c| c.to_vec()), vec![renamed.clone()]);
        // Same name again: nothing to do.
        assert_eq!(rename(&clips, &new_path, "Chorus idea.wav").unwrap(), renamed);
    }

    #[test]
    fn rename_refuses_taken_and_invalid_names_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let clips = ClipList::default();
        let a = saved_clip(dir.path(), 1, &clips);
        let b = saved_clip(dir.path(), 2, &clips);
        let before = clips.with(|c| c.to_vec());
        let b_name = display_name(&b);
        let err = rename(&clips, &a.path, &b_name).unwrap_err();
        assert!(matches!(&err, LibraryError::Exists { path } if *path == b.path), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        // A stray sidecar of that name blocks it too (it would be overwritten).
        std::fs::write(dir.path().join("taken.json"), "{}").unwrap();
        assert!(matches!(rename(&clips, &a.path, "taken"), Err(LibraryError::Exists { .. })));
        assert!(matches!(rename(&clips, &a.path, "a/b"), Err(LibraryError::InvalidName { .. })));
        assert!(matches!(
            rename(&clips, &dir.path().join("unlisted.wav"), "x"),
            Err(LibraryError::NotListed { .. })
        ));
        assert_eq!(clips.with(|c| c.to_vec()), before);
        assert!(a.path.exists() && b.path.exists());
        assert_eq!(sidecar_of(&a.path), a);
    }

    #[test]
    fn delete_moves_files_to_the_trash_and_undo_restores_files_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let clips = ClipList::default();
        let a = saved_clip(dir.path(), 1, &clips);
        let b = saved_clip(dir.path(), 2, &clips);
        let c = saved_clip(dir.path(), 3, &clips);
        let wav_b = std::fs::read(&b.path).unwrap();

        let t = delete(&clips, &b.path).unwrap();
        assert_eq!(t.index, 1);
        assert_eq!(clips.with(|v| v.to_vec()), vec![a.clone(), c.clone()]);
        assert!(!b.path.exists() && !b.sidecar_path().exists());
        let trash = dir.path().join(TRASH_DIR);
        assert_eq!(t.wav.as_deref().unwrap().parent().unwrap(), trash);
        assert_eq!(std::fs::read(t.wav.as_ref().unwrap()).unwrap(), wav_b);
        assert_eq!(sidecar_of(t.wav.as_ref().unwrap()), b, "the sidecar stays paired in the trash");

        undo(&clips, &t).unwrap();
        assert_eq!(clips.with(|v| v.to_vec()), vec![a, b.clone(), c], "the row is back in place");
        assert_eq!(std::fs::read(&b.path).unwrap(), wav_b);
        assert_eq!(sidecar_of(&b.path), b);
        assert!(std::fs::read_dir(&trash).unwrap().next().is_none(), "trash is empty again");
    }

    #[test]
    fn deleting_twice_the_same_name_keeps_both_in_the_trash() {
        let dir = tempfile::tempdir().unwrap();
        let clips = ClipList::default();
        let a = saved_clip(dir.path(), 1, &clips);
        let first = delete(&clips, &a.path).unwrap();
        // A new clip takes the same name, and is deleted too.
        let again = saved_clip(dir.path(), 1, &clips);
        assert_eq!(again.path, a.path);
        let second = delete(&clips, &again.path).unwrap();
        assert_ne!(first.wav, second.wav);
        assert!(first.wav.as_ref().unwrap().exists() && second.wav.as_ref().unwrap().exists());
        assert_eq!(sidecar_of(second.wav.as_ref().unwrap()), again);
        // Undoing the older one while the name is free again works; then the other is refused.
        undo(&clips, &first).unwrap();
        assert!(matches!(undo(&clips, &second), Err(LibraryError::Exists { .. })));
        assert_eq!(clips.len(), 1);
    }

    #[test]
    fn a_missing_clip_is_deleted_as_a_row_only() {
        let dir = tempfile::tempdir().unwrap();
        let clips = ClipList::default();
        let a = saved_clip(dir.path(), 1, &clips);
        std::fs::remove_file(&a.path).unwrap();
        std::fs::remove_file(a.sidecar_path()).unwrap();
        let t = delete(&clips, &a.path).unwrap();
        assert_eq!((t.wav, t.sidecar), (None, None));
        assert!(clips.is_empty());
        assert!(matches!(rename(&clips, &a.path, "x"), Err(LibraryError::NotListed { .. })));
    }

    #[test]
    fn the_clip_folder_is_created_checked_and_must_be_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = dir.path().join("new").join("clips");
        let text = format!("  {}  ", wanted.display());
        assert_eq!(prepare_clip_dir(&text).unwrap(), wanted);
        assert!(wanted.is_dir());
        assert!(std::fs::read_dir(&wanted).unwrap().next().is_none(), "the write check leaves nothing");
        assert!(matches!(prepare_clip_dir("clips/here"), Err(LibraryError::RelativeFolder { .. })));
        assert!(matches!(prepare_clip_dir(" "), Err(LibraryError::EmptyFolder)));
        // A file where the folder should be.
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = prepare_clip_dir(&file.join("sub").display().to_string()).unwrap_err();
        assert!(err.to_string().contains("cannot create the folder"), "{err}");
    }
}
