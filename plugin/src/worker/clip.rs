//! A generated clip: stereo audio at the host rate plus everything needed to reproduce it, saved
//! as a 32-bit float WAV with a JSON sidecar of the same name (`clip.wav` + `clip.json`).
//! Converting a clip to the host rate is `host_rate`'s job, not this file's.

use super::job::JobError;
use melodygen_engine::record::ClipMeta;
use melodygen_engine::wav::{self, Audio};
use std::path::{Path, PathBuf};

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
    pub fn save(&mut self, dir: &Path, job_id: u64) -> Result<(), JobError> {
        let save_err = |e: String| JobError::Save(e);
        std::fs::create_dir_all(dir).map_err(|e| save_err(format!("{}: {e}", dir.display())))?;
        let stamp = self.meta.created.replace([':', '-'], "").replace('Z', "");
        let name = format!(
            "melodygen-{stamp}-{}-{job_id}-seed{}",
            std::process::id(),
            self.meta.settings.params.seed
        );
        self.meta.path = dir.join(format!("{name}.wav"));
        wav::write_f32(&self.meta.path, &self.audio).map_err(|e| save_err(e.to_string()))?;
        self.meta
            .write_sidecar()
            .map_err(|e| save_err(format!("{}: {e}", self.meta.sidecar_path().display())))
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
}
