//! The clip file and what the host heard: reading a clip WAV, rendering until the clip is heard,
//! and checking the output against the file sample for sample.

use crate::harness::{silence, BLOCK};
use anyhow::{ensure, Context, Result};
use clap_test_host::LoadedPlugin;
use std::path::Path;
use std::time::{Duration, Instant};

/// Reads a clip WAV as two channels.
pub fn read_wav(path: &Path) -> Result<(u32, [Vec<f32>; 2])> {
    let mut reader = hound::WavReader::open(path)
        .with_context(|| format!("cannot open clip {}", path.display()))?;
    let spec = reader.spec();
    ensure!(
        spec.channels == 2,
        "clip {} has {} channels, expected 2",
        path.display(),
        spec.channels
    );
    let samples: Vec<f32> = reader
        .samples::<f32>()
        .collect::<std::result::Result<_, _>>()?;
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    Ok((spec.sample_rate, [left, right]))
}

/// Renders silence until the output is no longer silent (the clip reached the audio thread; the
/// plugin reopens it off the audio thread, so it takes a moment), then `frames` more.
pub fn render_until_heard(
    plugin: &mut LoadedPlugin,
    rate: f64,
    frames: usize,
) -> Result<[Vec<f32>; 2]> {
    let start = Instant::now();
    let mut out = [Vec::new(), Vec::new()];
    loop {
        let o = plugin.render(rate, BLOCK, &silence(BLOCK * 8), &[])?;
        out[0].extend_from_slice(&o[0]);
        out[1].extend_from_slice(&o[1]);
        if o.iter().flatten().any(|s| *s != 0.0) {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "the clip was never heard"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let more = plugin.render(rate, BLOCK, &silence(frames), &[])?;
    out[0].extend_from_slice(&more[0]);
    out[1].extend_from_slice(&more[1]);
    Ok(out)
}

/// The clip must be heard: since the input is silent while we wait, the output from the first
/// non-zero sample on must be the clip itself (clip level 0 dB), sample for sample.
pub fn check_heard(output: &[Vec<f32>; 2], clip: &[Vec<f32>; 2], what: &str) -> Result<()> {
    let first = output[0]
        .iter()
        .zip(&output[1])
        .position(|(l, r)| *l != 0.0 || *r != 0.0)
        .with_context(|| format!("{what}: the clip is never heard (output stayed silent)"))?;
    let n = clip[0].len().min(output[0].len() - first);
    ensure!(
        n >= clip[0].len() / 2,
        "{what}: only {n} of {} clip frames were rendered",
        clip[0].len()
    );
    let mut worst = 0f32;
    for ch in 0..2 {
        for i in 0..n {
            worst = worst.max((output[ch][first + i] - clip[ch][i]).abs());
        }
    }
    ensure!(
        worst < 1e-6,
        "{what}: output differs from the clip file by up to {worst}"
    );
    println!("{what}: clip heard from output frame {first}, {n} frames equal to the file (max error {worst:e})");
    Ok(())
}
