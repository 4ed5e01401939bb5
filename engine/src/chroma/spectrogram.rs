//! The power spectrogram the chroma is taken from, as transformers computes it (torchaudio
//! `Spectrogram(normalized=True, power=2, center=True)`, reflect padding, periodic Hann), which is
//! also `|librosa.stft(..., window="hann", center=True, pad_mode="reflect")|² / Σw²`.
//!
//! The FFT plan, window and every scratch buffer are made once in [`PowerSpectrogram::new`]; a
//! frame costs one real FFT and no allocation, so the extractor can be reused by the worker.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Short-time power spectrogram with a fixed FFT size and hop.
pub struct PowerSpectrogram {
    n_fft: usize,
    hop: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    /// Periodic Hann window, scaled by 1/√Σw² so |X|² comes out already divided by Σw².
    window: Vec<f32>,
    padded: Vec<f32>,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl PowerSpectrogram {
    /// Plans the FFT of size `n_fft` (window length = `n_fft`) with hop `hop`.
    pub fn new(n_fft: usize, hop: usize) -> Self {
        assert!(
            n_fft >= 2 && n_fft.is_multiple_of(2) && hop > 0,
            "n_fft must be even, hop positive"
        );
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        // Periodic Hann: w[n] = 0.5 − 0.5·cos(2πn/N). Built in f64, like librosa/scipy.
        let w: Vec<f64> = (0..n_fft)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / n_fft as f64).cos())
            .collect();
        let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
        let window = w.iter().map(|v| (v / norm) as f32).collect();
        Self {
            n_fft,
            hop,
            window,
            padded: Vec::new(),
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
        }
    }

    /// One-sided bins per frame (`n_fft/2 + 1`).
    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Frames a centred STFT of `len` samples has: `1 + len / hop`.
    pub fn n_frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }

    /// Runs the centred STFT of `signal` (at least `n_fft/2 + 1` samples, the reflect-padding
    /// limit) and calls `each(frame_index, power)` with the one-sided power `|X|²/Σw²` of every
    /// frame. `power` is scratch owned by `self`; it is only valid during the call.
    pub fn for_each_frame(&mut self, signal: &[f32], mut each: impl FnMut(usize, &[f32])) {
        let half = self.n_fft / 2;
        assert!(
            signal.len() > half,
            "reflect padding needs more than n_fft/2 samples"
        );
        // Reflect padding (edge sample not repeated), as numpy/torch "reflect".
        self.padded.clear();
        self.padded.extend((1..=half).rev().map(|k| signal[k]));
        self.padded.extend_from_slice(signal);
        let last = signal.len() - 1;
        self.padded.extend((1..=half).map(|k| signal[last - k]));

        let mut power = vec![0.0f32; self.n_bins()];
        for t in 0..self.n_frames(signal.len()) {
            let start = t * self.hop;
            let src = &self.padded[start..start + self.n_fft];
            for ((dst, s), w) in self.frame.iter_mut().zip(src).zip(&self.window) {
                *dst = s * w;
            }
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
                .expect("buffers were made by the plan, so their sizes match");
            for (p, x) in power.iter_mut().zip(&self.spectrum) {
                *p = x.norm_sqr();
            }
            each(t, &power);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sine exactly on bin k, full-scale amplitude A, has |X_k|² = (A·Σw/2)² → after the Σw²
    /// normalisation (Σw = N/2, Σw² = 3N/8 for periodic Hann) the peak is A²·N/6.
    #[test]
    fn bin_centred_sine_has_the_textbook_peak_power() {
        let (n, hop, k) = (1024usize, 256usize, 37usize);
        let signal: Vec<f32> = (0..4096)
            .map(|i| (2.0 * std::f64::consts::PI * k as f64 * i as f64 / n as f64).sin() as f32)
            .collect();
        let mut spec = PowerSpectrogram::new(n, hop);
        let mut frames = 0;
        spec.for_each_frame(&signal, |t, power| {
            frames += 1;
            if t == 8 {
                let peak = power
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap();
                assert_eq!(peak.0, k);
                let expected = n as f32 / 6.0;
                assert!(
                    (peak.1 - expected).abs() < 1e-3 * expected,
                    "{} vs {expected}",
                    peak.1
                );
            }
        });
        assert_eq!(frames, 1 + 4096 / hop);
    }
}
