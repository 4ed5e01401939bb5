//! librosa's chroma filter bank (`librosa.filters.chroma` with its defaults: tuning 0, centre
//! octave 5, octave width 2, L2 column norm, rows starting at C), rebuilt from its definition.
//!
//! Why rebuilt rather than loaded: it is a closed formula of (sample rate, FFT size), so computing
//! it costs ~1 ms once per extractor and needs no 400 kB table in the repo. It is evaluated in f64
//! and stored in f32, as librosa does, so the weights agree with librosa's to f32 rounding.

/// Number of chroma bins (pitch classes), C first.
pub const N_CHROMA: usize = 12;

/// Chroma weights, row-major `N_CHROMA × (n_fft/2 + 1)`: `weights[c * n_bins + k]` is the weight
/// of FFT bin `k` in pitch class `c` (0 = C, 1 = C♯, … 11 = B).
#[derive(Debug, Clone)]
pub struct ChromaFilterBank {
    n_bins: usize,
    weights: Vec<f32>,
}

impl ChromaFilterBank {
    /// Builds the bank for `sample_rate` and `n_fft`.
    pub fn new(sample_rate: u32, n_fft: usize) -> Self {
        const CENTRE_OCTAVE: f64 = 5.0;
        const OCTAVE_WIDTH: f64 = 2.0;
        let n_chroma = N_CHROMA as f64;
        let sr = f64::from(sample_rate);
        // Every FFT bin (full spectrum, not just one-sided) in "chroma bins above C0-ish":
        // 12·log2(f / (440/16)); bin 0 (DC) has no log, so it is put 1.5 octaves below bin 1.
        let mut position = Vec::with_capacity(n_fft);
        position.push(0.0);
        for k in 1..n_fft {
            let hz = sr * k as f64 / n_fft as f64;
            position.push(n_chroma * (hz / (440.0 / 16.0)).log2());
        }
        position[0] = position[1] - 1.5 * n_chroma;
        // Gaussian width per bin: the spacing to the next bin, at least one chroma bin.
        let width: Vec<f64> = (0..n_fft)
            .map(|k| {
                if k + 1 < n_fft {
                    (position[k + 1] - position[k]).max(1.0)
                } else {
                    1.0
                }
            })
            .collect();
        let half = (n_chroma / 2.0).round();
        let n_bins = n_fft / 2 + 1;
        let mut columns = vec![[0.0f64; N_CHROMA]; n_bins];
        for (k, column) in columns.iter_mut().enumerate() {
            // Distance from every chroma centre, wrapped to [-6, 6).
            for (c, w) in column.iter_mut().enumerate() {
                let d =
                    (position[k] - c as f64 + half + 10.0 * n_chroma).rem_euclid(n_chroma) - half;
                *w = (-0.5 * (2.0 * d / width[k]).powi(2)).exp();
            }
            let norm = column.iter().map(|w| w * w).sum::<f64>().sqrt();
            // librosa leaves columns whose norm is below the smallest normal f64 untouched.
            if norm > f64::MIN_POSITIVE {
                column.iter_mut().for_each(|w| *w /= norm);
            }
            // Emphasise the octaves around C5 (≈ 523 Hz): the melody register.
            let octave = (position[k] / n_chroma - CENTRE_OCTAVE) / OCTAVE_WIDTH;
            let emphasis = (-0.5 * octave * octave).exp();
            column.iter_mut().for_each(|w| *w *= emphasis);
        }
        // The formula's row 0 is A; roll by −3 so that row 0 is C.
        let mut weights = vec![0.0f32; N_CHROMA * n_bins];
        for (k, column) in columns.iter().enumerate() {
            for c in 0..N_CHROMA {
                weights[c * n_bins + k] = column[(c + 3) % N_CHROMA] as f32;
            }
        }
        Self { n_bins, weights }
    }

    /// One-sided FFT bins per row (`n_fft/2 + 1`).
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// The weights of pitch class `c` over the one-sided bins.
    pub fn row(&self, c: usize) -> &[f32] {
        &self.weights[c * self.n_bins..(c + 1) * self.n_bins]
    }

    /// `out[c] = Σ_k row(c)[k] · power[k]`, accumulated in f64 so that the many tiny far-away
    /// weights do not lose the few large ones to rounding.
    pub fn apply(&self, power: &[f32], out: &mut [f32; N_CHROMA]) {
        debug_assert_eq!(power.len(), self.n_bins);
        for (c, o) in out.iter_mut().enumerate() {
            let row = self.row(c);
            // Four partial sums keep the loop vectorisable.
            let mut acc = [0.0f64; 4];
            let mut chunks_r = row.chunks_exact(4);
            let mut chunks_p = power.chunks_exact(4);
            for (r, p) in (&mut chunks_r).zip(&mut chunks_p) {
                for i in 0..4 {
                    acc[i] += f64::from(r[i]) * f64::from(p[i]);
                }
            }
            let mut sum = acc.iter().sum::<f64>();
            for (r, p) in chunks_r.remainder().iter().zip(chunks_p.remainder()) {
                sum += f64::from(*r) * f64::from(*p);
            }
            *o = sum as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a440_lands_in_row_a_and_c_major_rows_are_c_first() {
        let fb = ChromaFilterBank::new(32_000, 16_384);
        assert_eq!(fb.n_bins(), 8193);
        // 440 Hz is bin 440·16384/32000 = 225.28 → bin 225.
        let col: Vec<f32> = (0..N_CHROMA).map(|c| fb.row(c)[225]).collect();
        let best = (0..N_CHROMA)
            .max_by(|&a, &b| col[a].total_cmp(&col[b]))
            .unwrap();
        assert_eq!(best, 9, "440 Hz should weigh most on A (row 9): {col:?}");
        // 261.6 Hz (C4) is bin 133.9 → bin 134.
        let col: Vec<f32> = (0..N_CHROMA).map(|c| fb.row(c)[134]).collect();
        let best = (0..N_CHROMA)
            .max_by(|&a, &b| col[a].total_cmp(&col[b]))
            .unwrap();
        assert_eq!(best, 0, "C4 should weigh most on C (row 0): {col:?}");
    }
}
