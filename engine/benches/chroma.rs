//! Speed of the audio → chroma path on the worst case the plugin meets: 30 s of 48 kHz stereo
//! (downmix, 48k → 32k resampling, 235 STFT frames of 16384, filter bank, one-hot).
//!
//!     cargo bench -p melodygen --bench chroma
//!
//! Single-threaded by construction (realfft, rubato and the filter bank run on the calling
//! thread); pin it with `taskset -c 0` to be sure. Target: well under 250 ms.

use std::time::{Duration, Instant};

use melodygen_engine::chroma::ChromaExtractor;
use melodygen_engine::resample::Resampler;

fn main() {
    let rate = 48_000u32;
    let n = 30 * rate as usize;
    // A melody-like signal: a few harmonics gliding through pitches, different per channel.
    let channel = |detune: f64| -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let f = 220.0 * 2f64.powf(((t * 2.0).floor() % 12.0) / 12.0) * detune;
                (0.2 * (2.0 * std::f64::consts::PI * f * t).sin()
                    + 0.1 * (4.0 * std::f64::consts::PI * f * t).sin()) as f32
            })
            .collect()
    };
    let stereo = [channel(1.0), channel(1.003)];

    let t0 = Instant::now();
    let mut ex = ChromaExtractor::new();
    let setup = t0.elapsed();
    let _ = ex.chroma(&stereo, rate).unwrap(); // warm-up (also builds the 48k resampler)

    let runs = 10;
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let c = ex.chroma(&stereo, rate).unwrap();
            let e = t.elapsed();
            assert_eq!(c.frames(), 235);
            e
        })
        .collect();
    times.sort();

    // The parts: resampling alone, and the 32 kHz chroma alone.
    let mono: Vec<f32> = stereo[0]
        .iter()
        .zip(&stereo[1])
        .map(|(a, b)| 0.5 * (a + b))
        .collect();
    let mut rs = Resampler::new(rate, 32_000, 1).unwrap();
    let t = Instant::now();
    let at32 = rs.process(&[&mono]).unwrap();
    let resample = t.elapsed();
    let t = Instant::now();
    let _ = ex.chroma_32k(&at32[0]);
    let chroma32 = t.elapsed();

    println!("chroma of 30 s 48 kHz stereo: median {:.1} ms, min {:.1} ms, max {:.1} ms over {runs} runs (extractor setup {:.1} ms)",
        ms(times[runs / 2]), ms(times[0]), ms(times[runs - 1]), ms(setup));
    println!(
        "  of which: 48k→32k resampling {:.1} ms, 32 kHz chroma (STFT + filter bank) {:.1} ms",
        ms(resample),
        ms(chroma32)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
