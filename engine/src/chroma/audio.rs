//! Chroma of melody audio, computed exactly as transformers' `MusicgenMelodyFeatureExtractor`:
//! mono → 32 kHz → truncate to 30 s (or zero-pad to one window, centred) → centred power STFT
//! (n_fft 16384, hop 4096, periodic Hann, reflect padding, |X|²/Σw²) → librosa chroma filter
//! bank → divide each frame by its maximum (eps 1e-6) → argmax → one-hot.

use super::filterbank::{ChromaFilterBank, N_CHROMA};
use super::spectrogram::PowerSpectrogram;
use super::{Chroma, ChromaError, HOP, MAX_SAMPLES, N_FFT, SAMPLE_RATE};
use crate::resample::{Resampler, SINC_LEN};

/// Reusable audio → chroma extractor. The FFT plan, filter bank and buffers are made once; the
/// resampler is kept for the last input rate (the worker sees the same host rate every time).
pub struct ChromaExtractor {
    spectrogram: PowerSpectrogram,
    filters: ChromaFilterBank,
    resampler: Option<Resampler>,
    mono: Vec<f32>,
    resampled: Vec<Vec<f32>>,
    padded: Vec<f32>,
}

impl Default for ChromaExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl ChromaExtractor {
    /// An extractor with its FFT plan and filter bank built (the costly part: make one and keep it).
    pub fn new() -> Self {
        Self {
            spectrogram: PowerSpectrogram::new(N_FFT, HOP),
            filters: ChromaFilterBank::new(SAMPLE_RATE, N_FFT),
            resampler: None,
            mono: Vec::new(),
            resampled: vec![Vec::new()],
            padded: Vec::new(),
        }
    }

    /// Chroma of multichannel audio (`channels[c][frame]`) at any `sample_rate`: channels are
    /// averaged to mono, then resampled to 32 kHz (see `engine::resample` for the quality).
    pub fn chroma<S: AsRef<[f32]>>(
        &mut self,
        channels: &[S],
        sample_rate: u32,
    ) -> Result<Chroma, ChromaError> {
        if sample_rate == 0 {
            return Err(ChromaError::ZeroSampleRate);
        }
        let len = channels.first().map_or(0, |c| c.as_ref().len());
        if channels.iter().any(|c| c.as_ref().len() != len) {
            return Err(ChromaError::UnequalChannels);
        }
        if len == 0 {
            return Err(ChromaError::EmptyAudio);
        }
        // Only the first 30 s are used: resample just those (plus the sinc's reach) so a long
        // take costs no more than 30 s.
        let needed = (MAX_SAMPLES as u64 * u64::from(sample_rate)).div_ceil(u64::from(SAMPLE_RATE))
            as usize
            + SINC_LEN;
        let len = len.min(needed);
        let scale = 1.0 / channels.len() as f32;
        self.mono.clear();
        self.mono
            .extend((0..len).map(|i| channels.iter().map(|c| c.as_ref()[i]).sum::<f32>() * scale));
        if sample_rate == SAMPLE_RATE {
            let mono = std::mem::take(&mut self.mono);
            let chroma = self.chroma_32k(&mono);
            self.mono = mono;
            return Ok(chroma);
        }
        if self
            .resampler
            .as_ref()
            .is_none_or(|r| r.from_rate() != sample_rate)
        {
            self.resampler = Some(Resampler::new(sample_rate, SAMPLE_RATE, 1)?);
        }
        let resampler = self.resampler.as_mut().expect("just made");
        resampler.process_into(&[&self.mono], &mut self.resampled)?;
        let resampled = std::mem::take(&mut self.resampled);
        let chroma = self.chroma_32k(&resampled[0]);
        self.resampled = resampled;
        Ok(chroma)
    }

    /// Chroma of mono audio already at 32 kHz (the transformers feature extractor's input).
    /// An empty input reads as silence (one window of zeros), as in transformers.
    pub fn chroma_32k(&mut self, mono: &[f32]) -> Chroma {
        let raw = self.raw_32k(mono);
        let normalized = raw
            .iter()
            .map(|frame| {
                let max = frame.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
                frame.map(|v| v / max)
            })
            .collect();
        Chroma::from_normalized(normalized)
    }

    /// Filter-bank energies per frame before the max-normalisation (`frames × 12`), for mono
    /// audio at 32 kHz: `librosa.filters.chroma(...) @ (|STFT|² / Σw²)`.
    pub fn raw_32k(&mut self, mono: &[f32]) -> Vec<[f32; N_CHROMA]> {
        let signal = &mono[..mono.len().min(MAX_SAMPLES)];
        // Shorter than one window: zero-pad centred (the odd sample goes to the right).
        let signal = if signal.len() < N_FFT {
            let left = (N_FFT - signal.len()) / 2;
            self.padded.clear();
            self.padded.resize(left, 0.0);
            self.padded.extend_from_slice(signal);
            self.padded.resize(N_FFT, 0.0);
            &self.padded[..]
        } else {
            signal
        };
        let mut raw = vec![[0.0f32; N_CHROMA]; self.spectrogram.n_frames(signal.len())];
        let filters = &self.filters;
        self.spectrogram
            .for_each_frame(signal, |t, power| filters.apply(power, &mut raw[t]));
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chroma::MAX_FRAMES;
    use std::f64::consts::PI;

    fn tone(rate: u32, hz: f64, secs: f64) -> Vec<f32> {
        (0..(secs * f64::from(rate)) as usize)
            .map(|i| (0.3 * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    #[test]
    fn frame_counts_follow_the_transformers_rule() {
        let mut ex = ChromaExtractor::new();
        assert_eq!(ex.chroma_32k(&[0.0; 100]).frames(), 5); // padded to 16384 → 1 + 4
        assert_eq!(
            ex.chroma_32k(&vec![0.0; 40_000]).frames(),
            1 + 40_000 / 4096
        );
        assert_eq!(ex.chroma_32k(&vec![0.0; 40 * 32_000]).frames(), MAX_FRAMES);
    }

    #[test]
    fn a_stereo_44k_a440_reads_as_a_everywhere() {
        let mut ex = ChromaExtractor::new();
        let a = tone(44_100, 440.0, 2.0);
        let chroma = ex.chroma(&[a.clone(), a], 44_100).unwrap();
        assert_eq!(chroma.frames(), 1 + 64_000 / 4096);
        assert!(
            chroma.argmax().iter().all(|&c| c == 9),
            "{:?}",
            chroma.argmax()
        );
        // The extractor is reusable and deterministic.
        let again = ex.chroma(&[tone(44_100, 440.0, 2.0)], 44_100).unwrap();
        assert_eq!(again, chroma);
    }

    #[test]
    fn empty_and_ragged_input_are_refused() {
        let mut ex = ChromaExtractor::new();
        assert!(matches!(
            ex.chroma::<Vec<f32>>(&[vec![]], 48_000),
            Err(ChromaError::EmptyAudio)
        ));
        assert!(matches!(
            ex.chroma(&[vec![0.0; 3], vec![0.0; 4]], 48_000),
            Err(ChromaError::UnequalChannels)
        ));
    }
}
