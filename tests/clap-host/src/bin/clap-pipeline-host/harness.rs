//! What every step does as the DAW: the test melody and silence to feed, an instance configured
//! through its saved state, a momentary press of a parameter, and processing until the job's
//! diagnostics say it is done. The plugin's state is read back for its `diagnostics` and `clips`.

use anyhow::{bail, ensure, Context, Result};
use clap_test_host::instance::render_many;
use clap_test_host::steps::{GENERATE, PLUGIN_ID};
use clap_test_host::{state, LoadedPlugin, ParamEvent};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Processing block size.
pub const BLOCK: usize = 512;
/// Longest a step waits for a job.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(240);
/// Length of the generated clips, seconds (short: the tiny model is random anyway).
pub const CLIP_SECONDS: f64 = 1.0;

/// A two-second melody (C4 E4 G4 C5, half a second each) on both channels.
pub fn melody(rate: f64) -> [Vec<f32>; 2] {
    let notes = [261.63f64, 329.63, 392.0, 523.25];
    let per = (rate * 0.5) as usize;
    let mono: Vec<f32> = (0..per * notes.len())
        .map(|i| (0.3 * (std::f64::consts::TAU * notes[i / per] * i as f64 / rate).sin()) as f32)
        .collect();
    [mono.clone(), mono]
}

pub fn silence(frames: usize) -> [Vec<f32>; 2] {
    [vec![0.0; frames], vec![0.0; frames]]
}

/// A persisted field's value (nice-plug stores each as JSON text).
pub fn field(saved: &Value, name: &str) -> Result<Value> {
    let text = saved["fields"][name]
        .as_str()
        .with_context(|| format!("state has no field '{name}'"))?;
    serde_json::from_str(text).with_context(|| format!("field '{name}' is not JSON"))
}

pub fn set_field(saved: &mut Value, name: &str, value: &Value) -> Result<()> {
    saved["fields"]
        .as_object_mut()
        .context("state has no 'fields' object")?
        .insert(name.into(), Value::String(serde_json::to_string(value)?));
    Ok(())
}

/// A fresh instance with `prompt` and the given settings (merged over the plugin's defaults),
/// loaded through the state as a session would.
pub fn configured(
    entry: &clack_host::prelude::PluginEntry,
    prompt: &str,
    settings: Value,
) -> Result<LoadedPlugin> {
    let mut plugin = LoadedPlugin::new(entry, PLUGIN_ID)?;
    let mut saved = state::decode(&plugin.save_state()?)?;
    let mut merged = field(&saved, "settings")?;
    for (k, v) in settings.as_object().context("settings must be an object")? {
        merged[k] = v.clone();
    }
    set_field(&mut saved, "settings", &merged)?;
    let saved = state::with_prompt(&saved, prompt)?;
    plugin.load_state(&state::encode(&saved))?;
    Ok(plugin)
}

/// The preview while generating is off: these steps compare the finished clip, heard from its
/// first sample without a gap, with its file, and this host renders far faster than the engine
/// decodes, so a growing preview would pause (plugin/src/dispatch/partial_preview.rs tests it).
pub fn default_settings(seed: u64) -> Value {
    json!({"length": {"seconds": CLIP_SECONDS}, "seed": seed, "seed_locked": true, "melody_source": "audio",
           "preview_while_generating": false})
}

pub fn diagnostics(plugin: &mut LoadedPlugin) -> Result<Value> {
    field(&state::decode(&plugin.save_state()?)?, "diagnostics")
}

pub fn clips(plugin: &mut LoadedPlugin) -> Result<Vec<Value>> {
    Ok(field(&state::decode(&plugin.save_state()?)?, "clips")?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Events that raise "Generate" at `frame` and lower it a block later (a momentary press).
pub fn press(plugin: &mut LoadedPlugin, name: &str, frame: u32) -> Result<[ParamEvent; 2]> {
    let id = plugin.param_named(name)?.id;
    Ok([
        ParamEvent::Value {
            frame,
            id,
            value: 1.0,
        },
        ParamEvent::Value {
            frame: frame + BLOCK as u32,
            id,
            value: 0.0,
        },
    ])
}

/// "Generate" pressed two blocks before the end of `input`, so the capture holds all of it.
pub fn press_generate_before_end(
    plugin: &mut LoadedPlugin,
    input: &[Vec<f32>; 2],
) -> Result<[ParamEvent; 2]> {
    press(plugin, GENERATE, input[0].len() as u32 - 2 * BLOCK as u32)
}

/// What a render loop saw.
pub struct Waited {
    /// Output rendered while waiting (silence in), concatenated.
    pub output: [Vec<f32>; 2],
    pub diagnostics: Value,
}

/// Keeps processing silence in chunks of `chunk` frames until `done(diagnostics)` or the timeout.
pub fn process_until(
    plugins: &mut [LoadedPlugin],
    rate: f64,
    chunk: usize,
    mut done: impl FnMut(&[Value]) -> bool,
) -> Result<Vec<Waited>> {
    let start = Instant::now();
    let mut outs: Vec<[Vec<f32>; 2]> = plugins.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    loop {
        let rendered = render_many(plugins, rate, BLOCK, &silence(chunk), &[])?;
        for (o, r) in outs.iter_mut().zip(rendered) {
            o[0].extend_from_slice(&r[0]);
            o[1].extend_from_slice(&r[1]);
        }
        let diags = plugins
            .iter_mut()
            .map(diagnostics)
            .collect::<Result<Vec<_>>>()?;
        if done(&diags) {
            return Ok(outs
                .into_iter()
                .zip(diags)
                .map(|(output, diagnostics)| Waited {
                    output,
                    diagnostics,
                })
                .collect());
        }
        if start.elapsed() > JOB_TIMEOUT {
            bail!("no result after {JOB_TIMEOUT:?}; diagnostics: {diags:?}");
        }
    }
}

/// Feeds the test melody with Generate pressed two blocks before its end (so the capture holds
/// the whole melody), then processes silence until the job has finished or failed.
pub fn generate_and_wait(plugin: &mut LoadedPlugin, rate: f64) -> Result<Waited> {
    let input = melody(rate);
    let events = press_generate_before_end(plugin, &input)?;
    plugin.render(rate, BLOCK, &input, &events)?;
    let mut waited = process_until(std::slice::from_mut(plugin), rate, BLOCK * 8, |d| {
        finished_or_failed(&d[0])
    })?;
    Ok(waited.remove(0))
}

pub fn count(d: &Value, key: &str) -> u64 {
    d[key].as_u64().unwrap_or(0)
}

pub fn finished_or_failed(d: &Value) -> bool {
    count(d, "jobs_finished") + count(d, "jobs_failed") + count(d, "jobs_cancelled") > 0
}

/// Starts a long job and returns once it is generating.
pub fn start_long_job(plugin: &mut LoadedPlugin, rate: f64) -> Result<()> {
    let input = melody(rate);
    let events = press_generate_before_end(plugin, &input)?;
    plugin.render(rate, BLOCK, &input, &events)?;
    process_until(std::slice::from_mut(plugin), rate, BLOCK, |d| {
        d[0]["stage"] == "Generating" && count(&d[0], "step") > 0 || finished_or_failed(&d[0])
    })?;
    let d = diagnostics(plugin)?;
    ensure!(
        !finished_or_failed(&d),
        "the long job ended before it could be interrupted: {d}"
    );
    Ok(())
}

pub fn long_settings() -> Value {
    json!({"length": {"seconds": 30.0}, "seed": 1, "melody_source": "audio"})
}
