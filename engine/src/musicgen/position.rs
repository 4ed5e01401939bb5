//! MusicGen's sinusoidal position table.
//!
//! Checkpoints do not carry it (old files may, and it is ignored): it is a fixed function of the
//! hidden size, so we compute it. It is built in f32 with the same operation order as
//! transformers (frequency in f32, product in f32, cos half first) so the table agrees with the
//! reference to rounding, then cast to the decoder's dtype.

use candle_core::{DType, Device, Result, Tensor};

/// `table[p] = concat(cos(p·f), sin(p·f))` with `f_i = exp(−i·ln(10000)/(H/2 − 1))`, shape
/// `(num_positions, hidden)`, as f32 values on the CPU.
pub fn sinusoidal_values(num_positions: usize, hidden: usize) -> Vec<f32> {
    let half = hidden / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let freqs: Vec<f32> = (0..half).map(|i| (i as f32 * -step).exp()).collect();
    let mut table = vec![0f32; num_positions * hidden];
    for p in 0..num_positions {
        let row = &mut table[p * hidden..(p + 1) * hidden];
        for (i, &f) in freqs.iter().enumerate() {
            let angle = p as f32 * f;
            row[i] = angle.cos();
            row[half + i] = angle.sin();
        }
    }
    table
}

/// The table as a tensor on `device` in `dtype`.
pub fn sinusoidal_table(num_positions: usize, hidden: usize, device: &Device, dtype: DType) -> Result<Tensor> {
    Tensor::from_vec(sinusoidal_values(num_positions, hidden), (num_positions, hidden), device)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form_in_f64() {
        let (n, h) = (2048, 32);
        let t = sinusoidal_values(n, h);
        let half = h / 2;
        for p in [0usize, 1, 2, 15, 100, 1000, 2047] {
            for i in 0..half {
                let f = (-(i as f64) * 10000f64.ln() / (half as f64 - 1.0)).exp();
                let a = p as f64 * f;
                // f32 rounding of the angle grows with p (≈ p·2⁻²⁴ rad).
                let tol = 1e-6 + p as f64 * 2e-7;
                assert!((t[p * h + i] as f64 - a.cos()).abs() <= tol, "cos p={p} i={i}");
                assert!((t[p * h + half + i] as f64 - a.sin()).abs() <= tol, "sin p={p} i={i}");
            }
        }
        // Position 0 is cos 0 = 1 then sin 0 = 0.
        assert!(t[..half].iter().all(|&v| v == 1.0));
        assert!(t[half..h].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn tensor_has_the_right_shape() {
        let t = sinusoidal_table(10, 8, &Device::Cpu, DType::F32).unwrap();
        assert_eq!(t.dims(), &[10, 8]);
    }
}
