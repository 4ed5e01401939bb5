//! What is stored beside a clip (its JSON sidecar): the settings it was made with, the melody it
//! followed, where on the host timeline it belongs and what the WAV holds.

use super::{JobSettings, MelodyRecord};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a clip sidecar could not be read. Both name the file: a sidecar comes from disk, where a
/// producer (or a crash, or another version) may have left anything.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("cannot read clip sidecar {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a MelodyGen clip sidecar: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
}

/// Where the captured melody began on the host timeline, so the clip can be played against the
/// material it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct CaptureAnchor {
    /// Host position in seconds (always known when the host reports a position).
    pub seconds: Option<f64>,
    /// Host position in quarter notes, when reported.
    pub beats: Option<f64>,
    /// Bar number, when reported.
    pub bar: Option<i32>,
    /// Tempo at the capture start, when reported.
    pub tempo: Option<f64>,
}

/// Everything stored beside a clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipMeta {
    /// The WAV file.
    pub path: PathBuf,
    /// The prompt and every setting the clip was made with.
    pub settings: JobSettings,
    /// The folder the model was loaded from (the resolved form of `settings.model`).
    pub model_dir: Option<PathBuf>,
    /// The length asked for, in seconds.
    pub seconds: f32,
    /// Sample rate of the WAV file (the host rate when it was made).
    pub sample_rate: u32,
    /// Frames in the WAV file (samples per channel, at `sample_rate`).
    pub frames: u64,
    /// Rate the model generated at.
    pub model_rate: u32,
    /// Where the captured melody began on the host timeline.
    pub anchor: CaptureAnchor,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// The melody the model followed, frame by frame (melody models with a melody only), so
    /// the clip can be made again without the capture it came from. Absent in clips made
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub melody: Option<MelodyRecord>,
}

impl ClipMeta {
    /// The sidecar file next to the WAV.
    pub fn sidecar_path(&self) -> PathBuf {
        self.path.with_extension("json")
    }

    /// Reads the sidecar at `path` (a clip's `.json`).
    pub fn read_sidecar(path: &Path) -> Result<Self, SidecarError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SidecarError::Io { path: path.to_path_buf(), source })?;
        Self::from_sidecar_json(&text, path)
    }

    /// Parses sidecar JSON; `path` (where it came from) is only used in the error.
    pub fn from_sidecar_json(text: &str, path: &Path) -> Result<Self, SidecarError> {
        serde_json::from_str(text).map_err(|source| SidecarError::Json { path: path.to_path_buf(), source })
    }

    /// Writes this metadata as the sidecar beside its WAV: when the clip is saved, and again
    /// when the library renames it.
    pub fn write_sidecar(&self) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(self.sidecar_path(), json)
    }
}
