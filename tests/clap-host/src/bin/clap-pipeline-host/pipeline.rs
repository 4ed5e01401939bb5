//! The pipeline steps (see `main.rs`).

use anyhow::{bail, ensure, Context, Result};
use clack_host::events::event_types::{TransportEvent, TransportFlags};
use clack_host::events::{EventFlags, EventHeader};
use clack_host::utils::{BeatTime, SecondsTime};
use clap_test_host::instance::{open_entry, render_many};
use clap_test_host::steps::{GENERATE, PLUGIN_ID};
use clap_test_host::{state, LoadedPlugin, ParamEvent};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const STEPS: [&str; 10] = [
    "generate-44100",
    "generate-48000",
    "four-instances",
    "cancel",
    "remove",
    "rate-change",
    "corrupt-model",
    "reopen",
    "follow-transport",
    "preview-while-generating",
];

/// Processing block size.
const BLOCK: usize = 512;
/// Longest a step waits for a job.
const JOB_TIMEOUT: Duration = Duration::from_secs(240);
/// Length of the generated clips, seconds (short: the tiny model is random anyway).
const CLIP_SECONDS: f64 = 1.0;

pub fn run(step: &str, bundle: &Path) -> Result<()> {
    match step {
        "generate-44100" => generate(bundle, 44_100.0),
        "generate-48000" => generate(bundle, 48_000.0),
        "four-instances" => four_instances(bundle),
        "cancel" => cancel(bundle),
        "remove" => remove(bundle),
        "rate-change" => rate_change(bundle),
        "corrupt-model" => corrupt_model(bundle),
        "reopen" => reopen(bundle),
        "follow-transport" => follow_transport(bundle),
        "preview-while-generating" => preview_while_generating(bundle),
        other => bail!("unknown step '{other}' (steps: {})", STEPS.join(", ")),
    }
}

/// A two-second melody (C4 E4 G4 C5, half a second each) on both channels.
fn melody(rate: f64) -> [Vec<f32>; 2] {
    let notes = [261.63f64, 329.63, 392.0, 523.25];
    let per = (rate * 0.5) as usize;
    let mono: Vec<f32> = (0..per * notes.len())
        .map(|i| (0.3 * (std::f64::consts::TAU * notes[i / per] * i as f64 / rate).sin()) as f32)
        .collect();
    [mono.clone(), mono]
}

fn silence(frames: usize) -> [Vec<f32>; 2] {
    [vec![0.0; frames], vec![0.0; frames]]
}

/// A persisted field's value (nice-plug stores each as JSON text).
fn field(saved: &Value, name: &str) -> Result<Value> {
    let text = saved["fields"][name]
        .as_str()
        .with_context(|| format!("state has no field '{name}'"))?;
    serde_json::from_str(text).with_context(|| format!("field '{name}' is not JSON"))
}

fn set_field(saved: &mut Value, name: &str, value: &Value) -> Result<()> {
    saved["fields"]
        .as_object_mut()
        .context("state has no 'fields' object")?
        .insert(name.into(), Value::String(serde_json::to_string(value)?));
    Ok(())
}

/// A fresh instance with `prompt` and the given settings (merged over the plugin's defaults),
/// loaded through the state as a session would.
fn configured(
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
/// decodes, so a growing preview would pause (plugin/src/plugin/partial_preview.rs tests it).
fn default_settings(seed: u64) -> Value {
    json!({"length": {"seconds": CLIP_SECONDS}, "seed": seed, "seed_locked": true, "melody_source": "audio",
           "preview_while_generating": false})
}

fn diagnostics(plugin: &mut LoadedPlugin) -> Result<Value> {
    field(&state::decode(&plugin.save_state()?)?, "diagnostics")
}

fn clips(plugin: &mut LoadedPlugin) -> Result<Vec<Value>> {
    Ok(field(&state::decode(&plugin.save_state()?)?, "clips")?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Events that raise "Generate" at `frame` and lower it a block later (a momentary press).
fn press(plugin: &mut LoadedPlugin, name: &str, frame: u32) -> Result<[ParamEvent; 2]> {
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

/// What a render loop saw.
struct Waited {
    /// Output rendered while waiting (silence in), concatenated.
    output: [Vec<f32>; 2],
    diagnostics: Value,
}

/// Keeps processing silence in chunks of `chunk` frames until `done(diagnostics)` or the timeout.
fn process_until(
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
fn generate_and_wait(plugin: &mut LoadedPlugin, rate: f64) -> Result<Waited> {
    let input = melody(rate);
    let events = press(plugin, GENERATE, input[0].len() as u32 - 2 * BLOCK as u32)?;
    plugin.render(rate, BLOCK, &input, &events)?;
    let mut waited = process_until(std::slice::from_mut(plugin), rate, BLOCK * 8, |d| {
        finished_or_failed(&d[0])
    })?;
    Ok(waited.remove(0))
}

fn count(d: &Value, key: &str) -> u64 {
    d[key].as_u64().unwrap_or(0)
}

fn finished_or_failed(d: &Value) -> bool {
    count(d, "jobs_finished") + count(d, "jobs_failed") + count(d, "jobs_cancelled") > 0
}

/// Reads a clip WAV as two channels.
fn read_wav(path: &Path) -> Result<(u32, [Vec<f32>; 2])> {
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
fn render_until_heard(
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
fn check_heard(output: &[Vec<f32>; 2], clip: &[Vec<f32>; 2], what: &str) -> Result<()> {
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

/// The basic pipeline at one rate: melody in, Generate by parameter, clip out at the host rate,
/// saved with its metadata and heard in the output.
fn generate(bundle: &Path, rate: f64) -> Result<()> {
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
fn four_instances(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut plugins = (0..4u64)
        .map(|i| configured(&entry, &format!("instance {i}"), default_settings(i)))
        .collect::<Result<Vec<_>>>()?;
    let input = melody(rate);
    let events = press(
        &mut plugins[0],
        GENERATE,
        input[0].len() as u32 - 2 * BLOCK as u32,
    )?;
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
fn preview_while_generating(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut settings = default_settings(11);
    settings["preview_while_generating"] = json!(true);
    settings["length"] = json!({"seconds": 8.0});
    let mut plugin = configured(&entry, "preview while generating", settings)?;
    let input = melody(rate);
    let events = press(&mut plugin, GENERATE, input[0].len() as u32 - 2 * BLOCK as u32)?;
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
        ensure!(start.elapsed() < JOB_TIMEOUT, "no result after {JOB_TIMEOUT:?}: {d}");
    };
    ensure!(count(&d, "jobs_finished") == 1, "the job did not finish: {d}");
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
        ensure!(worst < 1e-6, "channel {ch}: heard audio differs from the clip file by {worst}");
    }
    println!(
        "preview while generating: {frames_heard_while_running} of {} clip frames heard before the job finished",
        audio[0].len()
    );
    Ok(())
}

/// Starts a long job and returns once it is generating.
fn start_long_job(plugin: &mut LoadedPlugin, rate: f64) -> Result<()> {
    let input = melody(rate);
    let events = press(plugin, GENERATE, input[0].len() as u32 - 2 * BLOCK as u32)?;
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

fn long_settings() -> Value {
    json!({"length": {"seconds": 30.0}, "seed": 1, "melody_source": "audio"})
}

/// "Cancel" by parameter mid-job: the job stops promptly, the host keeps running, and the next
/// job works.
fn cancel(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut plugin = configured(&entry, "cancel me", long_settings())?;
    start_long_job(&mut plugin, rate)?;
    let t = Instant::now();
    let events = press(&mut plugin, "Cancel", 0)?;
    plugin.render(rate, BLOCK, &silence(BLOCK * 4), &events)?;
    let w = process_until(std::slice::from_mut(&mut plugin), rate, BLOCK, |d| {
        finished_or_failed(&d[0])
    })?;
    let d = &w[0].diagnostics;
    ensure!(
        count(d, "jobs_cancelled") == 1 && count(d, "jobs_finished") == 0,
        "after cancel: {d}"
    );
    println!("cancelled in {:.2} s", t.elapsed().as_secs_f64());
    ensure!(
        t.elapsed() < Duration::from_secs(10),
        "cancelling took {:?}",
        t.elapsed()
    );
    ensure!(
        clips(&mut plugin)?.is_empty(),
        "a cancelled job left a clip"
    );
    Ok(())
}

/// Removing an instance mid-job neither crashes nor stalls the host; another instance then works.
fn remove(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut doomed = configured(&entry, "removed mid-job", long_settings())?;
    start_long_job(&mut doomed, rate)?;
    let t = Instant::now();
    drop(doomed);
    println!(
        "instance removed mid-job in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    ensure!(
        t.elapsed() < Duration::from_secs(5),
        "removing the instance stalled for {:?}",
        t.elapsed()
    );
    let mut next = configured(&entry, "after removal", default_settings(3))?;
    let w = generate_and_wait(&mut next, rate)?;
    ensure!(
        count(&w.diagnostics, "jobs_finished") == 1,
        "job after removal: {}",
        w.diagnostics
    );
    Ok(())
}

/// The host changes its rate while a job runs: the clip arrives at the new rate and is heard.
fn rate_change(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let mut plugin = configured(
        &entry,
        "rate change",
        json!({"length": {"seconds": 10.0}, "seed": 5, "preview_while_generating": false}),
    )?;
    start_long_job(&mut plugin, 44_100.0)?;
    let w = process_until(
        std::slice::from_mut(&mut plugin),
        48_000.0,
        BLOCK * 8,
        |d| finished_or_failed(&d[0]),
    )?;
    ensure!(
        count(&w[0].diagnostics, "jobs_finished") == 1,
        "after the rate change: {}",
        w[0].diagnostics
    );
    let c = clips(&mut plugin)?;
    let path = PathBuf::from(c[0]["path"].as_str().context("no path")?);
    let (file_rate, audio) = read_wav(&path)?;
    ensure!(
        file_rate == 48_000,
        "clip saved at {file_rate} Hz after the host moved to 48000"
    );
    let mut out = w.into_iter().next().unwrap().output;
    let more = plugin.render(48_000.0, BLOCK, &silence(audio[0].len() + BLOCK), &[])?;
    out[0].extend_from_slice(&more[0]);
    out[1].extend_from_slice(&more[1]);
    check_heard(&out, &audio, "after 44100 → 48000")
}

/// A corrupt model file: the error reaches the user as a message naming the problem; the host
/// keeps running and processing.
fn corrupt_model(bundle: &Path) -> Result<()> {
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
fn reopen(bundle: &Path) -> Result<()> {
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

/// Tempo of the follow-transport song (4/4).
const TEMPO: f64 = 120.0;

/// The transport of a 4/4 song at [`TEMPO`], at `seconds`.
fn transport(playing: bool, seconds: f64) -> TransportEvent {
    let beats = seconds * TEMPO / 60.0;
    let bar = (beats / 4.0).floor();
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_SECONDS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(beats),
        song_pos_seconds: SecondsTime::from_float(seconds),
        tempo: TEMPO,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_int(0),
        loop_end_beats: BeatTime::from_int(0),
        loop_start_seconds: SecondsTime::from_int(0),
        loop_end_seconds: SecondsTime::from_int(0),
        bar_start: BeatTime::from_float(bar * 4.0),
        bar_number: bar as i32,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    }
}

/// Default modes (capture and preview follow the transport) in a host that reports one: the
/// take starts when playback starts, the clip is anchored there, is silent while the transport
/// is stopped and plays sample-aligned against the song when it plays again, looping on request.
fn follow_transport(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut plugin = configured(&entry, "follow the song", default_settings(21))?;
    let stopped_at = |s: f64| move |_: usize| Some(transport(false, s));
    let playing_from = |s: f64| move |frame: usize| Some(transport(true, s + frame as f64 / rate));

    // Stopped at 0 with material coming in: not part of any take.
    let noise = clap_test_host::steps::noise(rate as usize / 2, 5);
    plugin.render_with_transport(rate, BLOCK, &noise, &[], &stopped_at(0.0))?;
    // Play from 3 s (beat 6, bar 1) with the melody; press Generate near its end; then stop.
    let anchor = 3.0;
    let input = melody(rate);
    let events = press(
        &mut plugin,
        GENERATE,
        input[0].len() as u32 - 2 * BLOCK as u32,
    )?;
    plugin.render_with_transport(rate, BLOCK, &input, &events, &playing_from(anchor))?;
    let start = Instant::now();
    loop {
        let out = plugin.render_with_transport(
            rate,
            BLOCK,
            &silence(BLOCK * 8),
            &[],
            &stopped_at(anchor + 2.0),
        )?;
        ensure!(
            out.iter().flatten().all(|s| *s == 0.0),
            "the clip played while the transport was stopped"
        );
        let d = diagnostics(&mut plugin)?;
        if finished_or_failed(&d) {
            ensure!(
                count(&d, "jobs_finished") == 1,
                "the job did not finish: {d}"
            );
            break;
        }
        ensure!(
            start.elapsed() < JOB_TIMEOUT,
            "no result after {JOB_TIMEOUT:?}: {d}"
        );
    }
    // Let the dispatcher hand the clip over (it polls every 20 ms), still stopped.
    for _ in 0..20 {
        plugin.render_with_transport(
            rate,
            BLOCK,
            &silence(BLOCK),
            &[],
            &stopped_at(anchor + 2.0),
        )?;
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = clips(&mut plugin)?;
    let meta = &c[0];
    let a = &meta["anchor"];
    ensure!(
        a["seconds"] == anchor && a["beats"] == 6.0 && a["bar"] == 1 && a["tempo"] == TEMPO,
        "capture anchor {a}, expected 3 s / beat 6 / bar 1 / 120 BPM"
    );
    let (_, audio) = read_wav(&PathBuf::from(meta["path"].as_str().context("no path")?))?;
    let n = audio[0].len();

    // Play again from half a second before the anchor: silence, then the clip sample-aligned to
    // the song position it was captured at, then silence after its end.
    let lead = (rate * 0.5) as usize;
    let out = plugin.render_with_transport(
        rate,
        BLOCK,
        &silence(lead + n + lead),
        &[],
        &playing_from(anchor - 0.5),
    )?;
    let mut worst = 0f32;
    for ch in 0..2 {
        for (k, &y) in out[ch].iter().enumerate() {
            let want = if (lead..lead + n).contains(&k) {
                audio[ch][k - lead]
            } else {
                0.0
            };
            worst = worst.max((y - want).abs());
        }
    }
    ensure!(
        worst < 1e-6,
        "following the transport: output differs from the aligned clip by {worst}"
    );
    println!("follow transport: clip frame 0 at song position {anchor} s exactly; {n} frames, max error {worst:e}");

    // Looping: from one clip length after the anchor, the clip plays again from its start.
    let loop_id = plugin.param_named("Loop Preview")?.id;
    let events = [ParamEvent::Value {
        frame: 0,
        id: loop_id,
        value: 1.0,
    }];
    let out = plugin.render_with_transport(
        rate,
        BLOCK,
        &silence(n),
        &events,
        &playing_from(anchor + n as f64 / rate),
    )?;
    let worst = (0..2)
        .flat_map(|ch| out[ch].iter().zip(&audio[ch]).map(|(y, x)| (y - x).abs()))
        .fold(0f32, f32::max);
    ensure!(
        worst < 1e-6,
        "looping: the second pass differs from the clip by {worst}"
    );
    Ok(())
}
