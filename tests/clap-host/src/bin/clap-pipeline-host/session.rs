//! Steps about what a session brings with it: a corrupt model file, and a session reopened from
//! its saved state (its clip played from the file, or reported missing).

use crate::harness::{
    clips, configured, count, default_settings, diagnostics, finished_or_failed, generate_and_wait,
    melody, press, process_until, BLOCK,
};
use crate::heard::{check_heard, read_wav, render_until_heard};
use anyhow::{ensure, Context, Result};
use clap_test_host::instance::open_entry;
use clap_test_host::steps::{GENERATE, PLUGIN_ID};
use clap_test_host::LoadedPlugin;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A corrupt model file: the error reaches the user as a message naming the problem; the host
/// keeps running and processing.
pub fn corrupt_model(bundle: &Path) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("melodygen-corrupt-model-{}", std::process::id()));
    let good =
        PathBuf::from(std::env::var("MELODYGEN_MODEL").context("MELODYGEN_MODEL is not set")?);
    std::fs::create_dir_all(&dir)?;
    for f in std::fs::read_dir(&good)? {
        let f = f?;
        std::fs::copy(f.path(), dir.join(f.file_name()))?;
    }
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights)?;
    std::fs::write(&weights, &bytes[..bytes.len() / 3])?; // truncated: a broken download
    let entry = open_entry(bundle)?;
    let mut settings = default_settings(1);
    settings["model"] = json!(dir.to_string_lossy());
    let mut plugin = configured(&entry, "corrupt", settings)?;
    let rate = 48_000.0;
    let input = melody(rate);
    let events = press(&mut plugin, GENERATE, 0)?;
    plugin.render(rate, BLOCK, &input, &events)?;
    let w = process_until(std::slice::from_mut(&mut plugin), rate, BLOCK * 8, |d| {
        finished_or_failed(&d[0])
    })?;
    let d = &w[0].diagnostics;
    let message = d["last_error"].as_str().unwrap_or("");
    println!("corrupt model error: {message}");
    ensure!(count(d, "jobs_failed") == 1, "expected a failed job: {d}");
    ensure!(
        message.contains("could not load model") && message.contains(&*dir.to_string_lossy()),
        "message: {message:?}"
    );
    // Still processing: exact passthrough of the melody.
    let out = plugin.render(rate, BLOCK, &input, &[])?;
    ensure!(
        out == input,
        "after the error the plugin no longer passes audio through"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A session reopened from saved state plays its clip from the file without regenerating; a
/// missing file is reported, not fatal.
pub fn reopen(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut first = configured(&entry, "reopen me", default_settings(11))?;
    generate_and_wait(&mut first, rate)?;
    let saved = first.save_state()?;
    let c = clips(&mut first)?;
    ensure!(c.len() == 1, "no clip to reopen: {c:?}");
    drop(first);

    let mut second = LoadedPlugin::new(&entry, PLUGIN_ID)?;
    second.load_state(&saved)?;
    let path = PathBuf::from(c[0]["path"].as_str().unwrap());
    let (_, audio) = read_wav(&path)?;
    let out = render_until_heard(&mut second, rate, audio[0].len())?;
    check_heard(&out, &audio, "reopened session")?;
    let d = diagnostics(&mut second)?;
    ensure!(
        count(&d, "jobs_finished") == 0,
        "the reopened session generated again: {d}"
    );

    // The file goes missing: reopening reports it and keeps processing.
    std::fs::rename(&path, path.with_extension("moved"))?;
    let mut third = LoadedPlugin::new(&entry, PLUGIN_ID)?;
    third.load_state(&saved)?;
    let w = process_until(std::slice::from_mut(&mut third), rate, BLOCK * 8, |d| {
        count(&d[0], "clips_missing") == 1
    })?;
    ensure!(
        w[0].output.iter().flatten().all(|s| *s == 0.0),
        "a missing clip still played something"
    );
    std::fs::rename(path.with_extension("moved"), &path)?;
    Ok(())
}
