//! WAV reading and writing for the engine (any rate, any channel count in; 32-bit float out).

use std::path::Path;

/// Multichannel audio as separate channel buffers of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second, in Hz.
    pub sample_rate: u32,
    /// One `Vec` per channel, all of the same length.
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Average of all channels, the form melody analysis wants.
    pub fn to_mono(&self) -> Vec<f32> {
        let n = self.channels.len().max(1) as f32;
        (0..self.frames())
            .map(|i| self.channels.iter().map(|c| c[i]).sum::<f32>() / n)
            .collect()
    }
}

/// Why a WAV file could not be read or written; messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file does not exist, is not a WAV, or uses an encoding hound cannot read.
    #[error("cannot read WAV file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What hound reported.
        source: hound::Error,
    },
    /// The file could not be created or written.
    #[error("cannot write WAV file {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What hound reported.
        source: hound::Error,
    },
    /// A WAV header that declares zero channels (the file's path).
    #[error("WAV file {0} has no channels")]
    NoChannels(String),
}

/// Reads any PCM or float WAV as f32 in [-1, 1], de-interleaved.
pub fn read(path: &Path) -> Result<Audio, WavError> {
    let err = |source| WavError::Read { path: path.display().to_string(), source };
    let mut reader = hound::WavReader::open(path).map_err(err)?;
    let spec = reader.spec();
    let n_ch = spec.channels as usize;
    if n_ch == 0 {
        return Err(WavError::NoChannels(path.display().to_string()));
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>().map_err(err)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
    };
    let frames = interleaved.len() / n_ch;
    let channels = (0..n_ch)
        .map(|c| (0..frames).map(|i| interleaved[i * n_ch + c]).collect())
        .collect();
    Ok(Audio { sample_rate: spec.sample_rate, channels })
}

/// Writes 32-bit float WAV, one WAV channel per entry of `audio.channels`.
pub fn write_f32(path: &Path, audio: &Audio) -> Result<(), WavError> {
    let err = |source| WavError::Write { path: path.display().to_string(), source };
    let spec = hound::WavSpec {
        channels: audio.channels.len() as u16,
        sample_rate: audio.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(err)?;
    for i in 0..audio.frames() {
        for ch in &audio.channels {
            writer.write_sample(ch[i]).map_err(err)?;
        }
    }
    writer.finalize().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_round_trip_keeps_every_sample_and_channel() {
        let dir = std::env::temp_dir().join(format!("melodygen-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rt.wav");
        let audio = Audio {
            sample_rate: 44_100,
            channels: vec![vec![0.0, 0.5, -0.25, 1.0], vec![-1.0, 0.125, 0.0, 0.75]],
        };
        write_f32(&path, &audio).unwrap();
        assert_eq!(read(&path).unwrap(), audio);
    }

    #[test]
    fn int16_is_scaled_to_unit_range() {
        let path = std::env::temp_dir().join(format!("melodygen-i16-{}.wav", std::process::id()));
        let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for s in [i16::MIN, 0, 16384] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let audio = read(&path).unwrap();
        assert_eq!(audio.channels, vec![vec![-1.0, 0.0, 0.5]]);
        assert_eq!(audio.to_mono(), vec![-1.0, 0.0, 0.5]);
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = read(Path::new("/nonexistent/melody.wav")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/melody.wav"), "{e}");
    }
}
