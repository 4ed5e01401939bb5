//! Steps that generate and check the clip: the basic pipeline at 44.1 and 48 kHz, four instances
//! sharing one model, and the preview heard while the job still runs.

use crate::harness::{
    clips, configured, count, default_settings, diagnostics, finished_or_failed, generate_and_wait,
    melody, press_generate_before_end, process_until, silence, BLOCK, CLIP_SECONDS, JOB_TIMEOUT,
};
use crate::heard::{check_heard, read_wav};
use anyhow::{ensure, Context, Result};
use clap_test_host::instance::{open_entry, render_many};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The basic pipeline at one rate: melody in, Generate by parameter, clip out at the host rate,
/// saved with its metadata and heard in the output.
pub fn generate(bundle: &Path, rate: f64) -> Result<()> {
    let entry = open_entry(bundle)?;
    let mut plugin = configured(&entry, "a test melody", default_settings(7))?;
    let t = Instant::now();
    let waited = generate_and_wait(&mut plugin, rate)?;
    let d = &waited.diagnostics;
    ensure!(
        count(d, "jobs_finished") == 1,
        "the job did not finish: {d}"
    );
    println!(
        "{rate} Hz: clip ready after {:.1} s; diagnostics {d}",
        t.elapsed().as_secs_f64()
    );
    let clips = clips(&mut plugin)?;
    ensure!(
        clips.len() == 1,
        "expected one clip in the state, got {clips:?}"
    );
    let meta = &clips[0];
    let path = PathBuf::from(meta["path"].as_str().context("clip has no path")?);
    ensure!(
        path.with_extension("json").exists(),
        "no sidecar next to {}",
        path.display()
    );
    ensure!(
        meta["settings"]["prompt"] == "a test melody" && meta["settings"]["seed"] == 7,
        "metadata: {meta}"
    );
    let (file_rate, audio) = read_wav(&path)?;
    ensure!(
        file_rate == rate as u32,
        "clip is at {file_rate} Hz, host at {rate}"
    );
    ensure!(
        meta["sample_rate"] == file_rate && meta["frames"] == audio[0].len() as u64,
        "metadata {meta} vs file"
    );
    let model_rate = meta["model_rate"].as_u64().context("no model_rate")? as f64;
    let model_seconds = meta["seconds"].as_f64().unwrap_or(0.0);
    ensure!(
        (model_seconds - CLIP_SECONDS).abs() < 1e-6,
        "asked for {CLIP_SECONDS} s, metadata says {model_seconds}"
    );
    // The clip is the model's output converted to the host rate: its duration is kept (within a
    // model frame, 20 ms).
    let secs = audio[0].len() as f64 / rate;
    ensure!(
        (secs - CLIP_SECONDS).abs() <= 0.02 + 1.0 / model_rate,
        "clip lasts {secs} s, expected ~{CLIP_SECONDS}"
    );
    // Keep processing long enough to hear the whole clip.
    let mut out = waited.output;
    let more = plugin.render(rate, BLOCK, &silence(audio[0].len() + BLOCK), &[])?;
    out[0].extend_from_slice(&more[0]);
    out[1].extend_from_slice(&more[1]);
    check_heard(&out, &audio, &format!("{rate} Hz"))
}

/// Four instances in one process share one loaded model and all finish.
pub fn four_instances(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut plugins = (0..4u64)
        .map(|i| configured(&entry, &format!("instance {i}"), default_settings(i)))
        .collect::<Result<Vec<_>>>()?;
    let input = melody(rate);
    let events = press_generate_before_end(&mut plugins[0], &input)?;
    render_many(&mut plugins, rate, BLOCK, &input, &events)?;
    let waited = process_until(&mut plugins, rate, BLOCK * 8, |ds| {
        ds.iter().all(finished_or_failed)
    })?;
    for (i, w) in waited.iter().enumerate() {
        let d = &w.diagnostics;
        ensure!(
            count(d, "jobs_finished") == 1,
            "instance {i} did not finish: {d}"
        );
        ensure!(
            count(d, "model_loads") == 1,
            "instance {i}: the process loaded {} models, expected 1",
            count(d, "model_loads")
        );
    }
    for (i, p) in plugins.iter_mut().enumerate() {
        let c = clips(p)?;
        ensure!(
            c.len() == 1 && c[0]["settings"]["prompt"] == format!("instance {i}"),
            "instance {i} clips: {c:?}"
        );
    }
    println!("4 instances finished, model loaded once");
    Ok(())
}

/// Preview while generating (on by default; the other steps turn it off): in "Play now" the
/// job's audio is heard while the job still runs, and what is heard is the clip file's audio,
/// in order, with nothing skipped or repeated. Where the engine had not caught up with the
/// playback the preview waits, so the output holds silence there, never other audio.
pub fn preview_while_generating(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut settings = default_settings(11);
    settings["preview_while_generating"] = json!(true);
    settings["length"] = json!({"seconds": 8.0});
    let mut plugin = configured(&entry, "preview while generating", settings)?;
    let input = melody(rate);
    let events = press_generate_before_end(&mut plugin, &input)?;
    plugin.render(rate, BLOCK, &input, &events)?;
    let mut heard = [Vec::new(), Vec::new()];
    let mut frames_heard_while_running = 0usize;
    let start = Instant::now();
    let d = loop {
        let out = plugin.render(rate, BLOCK, &silence(BLOCK * 2), &[])?;
        // Read after the render: a job still running now was running during it.
        let d = diagnostics(&mut plugin)?;
        heard[0].extend_from_slice(&out[0]);
        heard[1].extend_from_slice(&out[1]);
        if finished_or_failed(&d) {
            break d;
        }
        frames_heard_while_running += out[0].iter().filter(|v| **v != 0.0).count();
        ensure!(
            start.elapsed() < JOB_TIMEOUT,
            "no result after {JOB_TIMEOUT:?}: {d}"
        );
    };
    ensure!(
        count(&d, "jobs_finished") == 1,
        "the job did not finish: {d}"
    );
    ensure!(
        frames_heard_while_running > 0,
        "nothing was heard before the job finished"
    );
    let c = clips(&mut plugin)?;
    let path = PathBuf::from(c[0]["path"].as_str().context("no path")?);
    let (_, audio) = read_wav(&path)?;
    let more = plugin.render(rate, BLOCK, &silence(audio[0].len() + BLOCK), &[])?;
    for ch in 0..2 {
        heard[ch].extend_from_slice(&more[ch]);
        let sound: Vec<f32> = heard[ch].iter().copied().filter(|v| *v != 0.0).collect();
        let expected: Vec<f32> = audio[ch].iter().copied().filter(|v| *v != 0.0).collect();
        ensure!(
            sound.len() == expected.len(),
            "channel {ch}: {} frames of sound heard, the clip has {}",
            sound.len(),
            expected.len()
        );
        let worst = sound
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        ensure!(
            worst < 1e-6,
            "channel {ch}: heard audio differs from the clip file by {worst}"
        );
    }
    println!(
        "preview while generating: {frames_heard_while_running} of {} clip frames heard before the job finished",
        audio[0].len()
    );
    Ok(())
}
