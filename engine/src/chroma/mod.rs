//! Melody → 12-bin chroma, the conditioning MusicGen-Melody takes.
//!
//! Two sources, one frame grid (hop 4096 samples at 32 kHz, frame `t` centred at
//! `t · 4096 / 32000` s, at most 235 frames = 30 s):
//! - audio ([`audio::ChromaExtractor`]): the exact transformers `MusicgenMelodyFeatureExtractor`
//!   computation (which is librosa's chroma filter bank on a centred power STFT);
//! - MIDI notes ([`midi`]): host note events or a standard MIDI file, one-hot on the pitch class
//!   that sounds longest in each frame; rests hold the previous class.
//!
//! [`melody_from_file`] is the single entry point the CLI and the MusicGen side use for a
//! `--melody` file: it picks WAV or MIDI by content.

pub mod audio;
pub mod filterbank;
pub mod midi;
pub mod spectrogram;

use std::path::{Path, PathBuf};

pub use audio::ChromaExtractor;
pub use filterbank::N_CHROMA;
pub use midi::{chroma_from_notes, chroma_from_smf, NoteEvent, NoteEventKind};

/// Rate the chroma is computed at (MusicGen's rate).
pub const SAMPLE_RATE: u32 = 32_000;
/// FFT size and window length.
pub const N_FFT: usize = 16_384;
/// Hop between frames, in samples at [`SAMPLE_RATE`].
pub const HOP: usize = 4_096;
/// Longest melody used: 30 s (longer input is truncated, as transformers does).
pub const MAX_SAMPLES: usize = 30 * SAMPLE_RATE as usize;
/// Frames of a 30 s melody: `1 + 960000 / 4096`.
pub const MAX_FRAMES: usize = 1 + MAX_SAMPLES / HOP;

/// A melody chroma: `frames × 12`, pitch class 0 = C … 11 = B.
#[derive(Debug, Clone, PartialEq)]
pub struct Chroma {
    /// Per-frame chroma before one-hot: for audio, the filter-bank energies divided by their
    /// frame maximum (what transformers takes the argmax of); for MIDI, equal to the one-hot.
    normalized: Vec<[f32; N_CHROMA]>,
    one_hot: Vec<[f32; N_CHROMA]>,
    argmax: Vec<u8>,
}

impl Chroma {
    /// Builds the one-hot from per-frame values; the first maximum wins ties (as torch's
    /// argmax, so a silent frame reads as C, exactly like transformers).
    pub(crate) fn from_normalized(normalized: Vec<[f32; N_CHROMA]>) -> Self {
        let argmax: Vec<u8> = normalized
            .iter()
            .map(|f| {
                let mut best = 0;
                for c in 1..N_CHROMA {
                    if f[c] > f[best] {
                        best = c;
                    }
                }
                best as u8
            })
            .collect();
        let one_hot = argmax
            .iter()
            .map(|&c| {
                let mut row = [0.0; N_CHROMA];
                row[usize::from(c)] = 1.0;
                row
            })
            .collect();
        Self {
            normalized,
            one_hot,
            argmax,
        }
    }

    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.argmax.len()
    }

    /// The one-hot frames MusicGen-Melody is conditioned on (`frames × 12`).
    pub fn one_hot(&self) -> &[[f32; N_CHROMA]] {
        &self.one_hot
    }

    /// The pitch class of every frame (0 = C … 11 = B).
    pub fn argmax(&self) -> &[u8] {
        &self.argmax
    }

    /// Per-frame chroma before the one-hot (see the field doc).
    pub fn normalized(&self) -> &[[f32; N_CHROMA]] {
        &self.normalized
    }
}

/// Errors name the file (or "host notes" / "MIDI data") so a producer knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ChromaError {
    /// A melody file could not be read.
    #[error("cannot read melody file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A melody file whose contents are neither RIFF/WAVE nor `MThd` (whatever its extension).
    #[error(
        "melody file {path} is neither a WAV nor a standard MIDI file (expected a .wav or .mid)"
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A WAV melody file could not be decoded.
    #[error(transparent)]
    Wav(#[from] crate::wav::WavError),
    /// MIDI data that does not parse as a standard MIDI file.
    #[error("cannot parse MIDI {origin}: {source}")]
    Midi {
        /// The file's path, or "MIDI data" for bytes.
        origin: String,
        /// What midly reported.
        source: midly::Error,
    },
    /// A MIDI file timed in SMPTE frames rather than ticks per quarter note.
    #[error("MIDI {origin} uses SMPTE timecode timing, which is not supported; re-export it with metrical (PPQ) timing")]
    MidiTimecode {
        /// The file's path, or "MIDI data" for bytes.
        origin: String,
    },
    /// The melody (MIDI file or host notes) has no pitched note to follow.
    #[error("the melody ({origin}) contains no notes")]
    NoNotes {
        /// The file's path, "MIDI data" or "host notes".
        origin: String,
    },
    /// Melody audio with no samples.
    #[error("the melody audio is empty (0 samples)")]
    EmptyAudio,
    /// Melody audio whose channels differ in length.
    #[error("melody audio has channels of different lengths")]
    UnequalChannels,
    /// A sample rate of 0 Hz was given for melody audio or host notes.
    #[error("sample rate must be positive")]
    ZeroSampleRate,
    /// Converting melody audio to 32 kHz failed.
    #[error(transparent)]
    Resample(#[from] crate::resample::ResampleError),
    /// A melody file read fine but its audio could not be analysed (empty, zero rate, a rate
    /// the resampler refuses): the file is named, since the inner error cannot know it.
    #[error("melody file {path}: {source}")]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<ChromaError>,
    },
}

impl ChromaError {
    /// Names `path` as the origin of a MIDI error raised on in-memory data.
    fn with_path(self, path: &Path) -> Self {
        let origin = format!("file {}", path.display());
        match self {
            Self::Midi { source, .. } => Self::Midi { origin, source },
            Self::MidiTimecode { .. } => Self::MidiTimecode { origin },
            Self::NoNotes { .. } => Self::NoNotes { origin },
            other => other,
        }
    }
}

/// What a melody file holds, decided from its first bytes (the extension is only a fallback
/// for the error message: producers rename files).
fn sniff(path: &Path, head: &[u8]) -> Result<Kind, ChromaError> {
    if head.starts_with(b"RIFF") || head.starts_with(b"RF64") {
        Ok(Kind::Wav)
    } else if head.starts_with(b"MThd") {
        Ok(Kind::Midi)
    } else {
        Err(ChromaError::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}

enum Kind {
    Wav,
    Midi,
}

/// Chroma of a melody file: a WAV (any rate, any channel count) or a standard MIDI file
/// (`.mid`), chosen by content. This is what `melodygen chroma` and
/// `melodygen generate --melody` call.
pub fn melody_from_file(path: &Path) -> Result<Chroma, ChromaError> {
    let bytes = std::fs::read(path).map_err(|source| ChromaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match sniff(path, &bytes[..bytes.len().min(4)])? {
        Kind::Wav => {
            let audio = crate::wav::read(path)?;
            ChromaExtractor::new()
                .chroma(&audio.channels, audio.sample_rate)
                .map_err(|source| ChromaError::InFile { path: path.to_path_buf(), source: Box::new(source) })
        }
        Kind::Midi => chroma_from_smf(&bytes).map_err(|e| e.with_path(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_first_class_and_one_hot_matches_argmax() {
        let mut a = [0.0; N_CHROMA];
        a[4] = 1.0;
        a[7] = 1.0;
        let c = Chroma::from_normalized(vec![[0.0; N_CHROMA], a]);
        assert_eq!(c.argmax(), &[0, 4]);
        assert_eq!(c.one_hot()[1].iter().sum::<f32>(), 1.0);
        assert_eq!(c.one_hot()[1][4], 1.0);
        assert_eq!(MAX_FRAMES, 235);
    }

    #[test]
    fn unknown_files_are_refused_by_name() {
        let path =
            std::env::temp_dir().join(format!("melodygen-notmelody-{}.txt", std::process::id()));
        std::fs::write(&path, b"hello").unwrap();
        let e = melody_from_file(&path).unwrap_err();
        assert!(matches!(e, ChromaError::UnknownFormat { .. }), "{e}");
        assert!(e.to_string().contains("notmelody"), "{e}");
    }
}
