//! A generated clip: stereo audio at the host rate plus everything needed to reproduce it, saved
//! as a 32-bit float WAV with a JSON sidecar of the same name (`clip.wav` + `clip.json`).
//! Converting a clip to the host rate is `host_rate`'s job, not this file's.

use super::job::JobError;
use melodygen_engine::record::ClipMeta;
use melodygen_engine::wav::{self, Audio};

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// How a save writes bytes into a file (a seam for the tests' failing disk).
type WriteFn = dyn Fn(&mut std::fs::File, &[u8]) -> std::io::Result<()>;

/// The clip as a 32-bit float WAV, in memory (so a write error can only come from the disk).
fn encode_wav(audio: &Audio) -> Result<Vec<u8>, hound::Error> {
    let spec = hound::WavSpec {
        channels: audio.channels.len() as u16,
        sample_rate: audio.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut bytes = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec)?;
    for i in 0..audio.frames() {
        for ch in &audio.channels {
            writer.write_sample(ch[i])?;
        }
    }
    writer.finalize()?;
    Ok(bytes.into_inner())
}

/// `bytes` in a new hidden temporary file in `dir`, flushed to the disk. Dropped unpersisted
/// (an error on the way), the file is removed.
fn write_temp(dir: &Path, bytes: &[u8], write: &WriteFn) -> std::io::Result<NamedTempFile> {
    let mut tmp = tempfile::Builder::new().prefix(".melodygen-").suffix(".tmp").tempfile_in(dir)?;
    write(tmp.as_file_mut(), bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// A full disk said in plain words.
fn disk_error(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::StorageFull {
        format!("the disk is full ({e})")
    } else {
        e.to_string()
    }
}

/// Environment variable that overrides the clip folder (the tests use it).
pub const CLIP_DIR_ENV: &str = "MELODYGEN_CLIP_DIR";

/// The default clip folder: `$MELODYGEN_CLIP_DIR`, else the platform's data folder
/// (`$XDG_DATA_HOME/MelodyGen/clips` on Linux), else the temporary folder.
pub fn default_clip_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CLIP_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("MelodyGen")
        .join("clips")
}

/// A clip ready to be played: stereo at [`Audio::sample_rate`].
#[derive(Debug, Clone)]
pub struct Clip {
    pub meta: ClipMeta,
    pub audio: Audio,
}

impl Clip {
    /// Writes the WAV and its sidecar into `dir` (created if needed) under a name unique to this
    /// process and job, and records the path in the metadata.
    ///
    /// Never leaves a half clip that looks whole: both files are written under temporary names
    /// in `dir` and flushed to disk, then the WAV is renamed, then the sidecar. A clip counts as
    /// whole only once its sidecar is there, so a crash at any point leaves at worst a hidden
    /// temporary file or a WAV without sidecar. An error (a full disk) removes what was written.
    pub fn save(&mut self, dir: &Path, job_id: u64) -> Result<(), JobError> {
        self.save_with(dir, job_id, &|file, bytes| file.write_all(bytes))
    }

    /// [`Clip::save`] with the writes going through `write` (tests inject a failing disk).
    fn save_with(&mut self, dir: &Path, job_id: u64, write: &WriteFn) -> Result<(), JobError> {
        let save_err = |what: &Path, e: &dyn std::fmt::Display| {
            JobError::Save(format!("cannot save the clip as {}: {e}", what.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| save_err(dir, &e))?;
        let stamp = self.meta.created.replace([':', '-'], "").replace('Z', "");
        let name = format!(
            "melodygen-{stamp}-{}-{job_id}-seed{}",
            std::process::id(),
            self.meta.settings.params.seed
        );
        self.meta.path = dir.join(format!("{name}.wav"));
        let wav_path = self.meta.path.clone();
        let json_path = self.meta.sidecar_path();
        let wav_bytes = encode_wav(&self.audio).map_err(|e| save_err(&wav_path, &e))?;
        let json = serde_json::to_vec_pretty(&self.meta).map_err(|e| save_err(&json_path, &e))?;
        let wav_tmp = write_temp(dir, &wav_bytes, write).map_err(|e| save_err(&wav_path, &disk_error(e)))?;
        let json_tmp = write_temp(dir, &json, write).map_err(|e| save_err(&json_path, &disk_error(e)))?;
        wav_tmp.persist(&wav_path).map_err(|e| save_err(&wav_path, &e.error))?;
        if let Err(e) = json_tmp.persist(&json_path) {
            let _ = std::fs::remove_file(&wav_path);
            return Err(save_err(&json_path, &e.error));
        }
        // The renames themselves survive a power cut once the folder is flushed too.
        #[cfg(unix)]
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    }
    /// Reopens a saved clip from its WAV file (the metadata comes from the project).
    pub fn load(meta: &ClipMeta) -> Result<Clip, String> {
        let audio = wav::read(&meta.path).map_err(|e| e.to_string())?;
        Ok(Clip {
            meta: meta.clone(),
            audio: to_stereo(audio),
        })
    }
}

/// The current time as RFC 3339 UTC, second precision.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Mono becomes the same signal on both channels; stereo stays; more channels keep the first two.
pub fn to_stereo(mut audio: Audio) -> Audio {
    match audio.channels.len() {
        0 => audio.channels = vec![Vec::new(), Vec::new()],
        1 => audio.channels.push(audio.channels[0].clone()),
        _ => audio.channels.truncate(2),
    }
    audio
}

#[cfg(test)]
mod tests {
    use super::*;
    use melodygen_engine::record::{CaptureAnchor, JobSettings};

    #[test]
    fn mono_becomes_two_equal_channels() {
        let a = to_stereo(Audio {
            sample_rate: 8000,
            channels: vec![vec![0.5, -0.5]],
        });
        assert_eq!(a.channels, vec![vec![0.5, -0.5], vec![0.5, -0.5]]);
    }

    #[test]
    fn saved_clip_reopens_with_its_metadata() {
        let dir = std::env::temp_dir().join(format!("melodygen-clip-{}", std::process::id()));
        let mut clip = Clip {
            meta: ClipMeta {
                path: PathBuf::new(),
                settings: JobSettings {
                    prompt: "piano".into(),
                    params: melodygen_engine::record::GenerationParams {
                        seed: 42,
                        ..Default::default()
                    },
                },
                model_dir: None,
                seconds: 0.5,
                sample_rate: 48_000,
                frames: 3,
                model_rate: 32_000,
                anchor: CaptureAnchor {
                    seconds: Some(2.0),
                    beats: Some(4.0),
                    bar: Some(1),
                    tempo: Some(120.0),
                },
                created: now_rfc3339(),
                melody: None,
            },
            audio: Audio {
                sample_rate: 48_000,
                channels: vec![vec![0.1, 0.2, 0.3], vec![-0.1, -0.2, -0.3]],
            },
        };
        clip.save(&dir, 7).unwrap();
        assert!(clip.meta.path.starts_with(&dir) && clip.meta.path.exists());
        let sidecar: ClipMeta =
            serde_json::from_str(&std::fs::read_to_string(clip.meta.sidecar_path()).unwrap())
                .unwrap();
        assert_eq!(sidecar, clip.meta);
        let back = Clip::load(&clip.meta).unwrap();
        assert_eq!(back.audio, clip.audio);
        std::fs::remove_file(&clip.meta.path).unwrap();
        assert!(Clip::load(&clip.meta)
            .unwrap_err()
            .contains(&*clip.meta.path.to_string_lossy()));
    }

    fn clip() -> Clip {
        Clip {
            meta: ClipMeta {
                path: PathBuf::new(),
                settings: JobSettings::default(),
                model_dir: None,
                seconds: 0.01,
                sample_rate: 48_000,
                frames: 480,
                model_rate: 32_000,
                anchor: CaptureAnchor::default(),
                created: "2026-01-01T00:00:00Z".into(),
                melody: None,
            },
            audio: Audio { sample_rate: 48_000, channels: vec![vec![0.25; 480]; 2] },
        }
    }

    /// A disk that fills up after `room` bytes: writes what fits, then fails as a full disk does.
    fn full_after(room: usize) -> impl Fn(&mut std::fs::File, &[u8]) -> std::io::Result<()> {
        let used = std::cell::Cell::new(0usize);
        move |file, bytes| {
            let fits = room.saturating_sub(used.get()).min(bytes.len());
            file.write_all(&bytes[..fits])?;
            used.set(used.get() + fits);
            if fits < bytes.len() {
                return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
            }
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_is_a_clear_error_and_leaves_no_file() {
        let wav_len = encode_wav(&clip().audio).unwrap().len();
        // Full in the middle of the WAV, and in the middle of the sidecar.
        for room in [wav_len / 2, wav_len + 10] {
            let dir = tempfile::tempdir().unwrap();
            let mut c = clip();
            let err = c.save_with(dir.path(), 1, &full_after(room)).unwrap_err();
            assert!(err.to_string().contains("the disk is full"), "{err}");
            assert!(!c.meta.path.exists() && !c.meta.sidecar_path().exists());
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "files left behind: {left:?}");
        }
        // With room enough the same save writes both files, whole.
        let dir = tempfile::tempdir().unwrap();
        let mut c = clip();
        c.save_with(dir.path(), 1, &full_after(usize::MAX)).unwrap();
        assert_eq!(wav::read(&c.meta.path).unwrap(), c.audio);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "only the WAV and its sidecar");
    }
}
