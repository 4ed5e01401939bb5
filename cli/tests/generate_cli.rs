//! `melodygen generate` end to end: runs the built binary on the tiny checkpoints and checks the
//! WAV (channels, rate, length = 640·frames, samples) and the codes JSON against the transformers
//! references in greedy mode.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device, Tensor};
use melodygen_engine::chroma::melody_from_file;
use melodygen_engine::musicgen::{GenerationRequest, MusicGen, Prompt};
use melodygen_engine::wav;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn refs(name: &str) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join(format!("refs/{name}.safetensors")), &Device::Cpu).unwrap()
}

/// Runs `melodygen generate <args>`; returns (success, stderr).
fn generate(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_melodygen")).arg("generate").args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn read_codes(path: &Path) -> Vec<Vec<u32>> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value(v["codes"].clone()).unwrap()
}

fn ids_arg(t: &Tensor) -> String {
    let ids: Vec<i64> = t.to_vec1().unwrap();
    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

fn max_diff(audio: &wav::Audio, reference: &Tensor) -> f32 {
    let (c, s) = reference.dims2().unwrap();
    assert_eq!((audio.channels.len(), audio.frames()), (c, s));
    let ours = Tensor::from_vec(audio.channels.concat(), (c, s), &Device::Cpu).unwrap();
    (ours - reference).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn mono_greedy_matches_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let (wav_path, codes_path) = (dir.path().join("out.wav"), dir.path().join("codes.json"));
    let r = refs("tiny-musicgen");
    let model = fixtures().join("tiny-musicgen");
    let (ok, err) = generate(&[
        "--model", model.to_str().unwrap(),
        "--token-ids", &ids_arg(&r["prompt_ids_0"]),
        "--max-new-tokens", "20",
        "--greedy", "--guidance", "1",
        "--out", wav_path.to_str().unwrap(),
        "--codes-out", codes_path.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let expected: Vec<Vec<u32>> = r["greedy_codes_nocfg"].to_dtype(DType::U32).unwrap().to_vec2().unwrap();
    let codes = read_codes(&codes_path);
    assert_eq!((codes.len(), codes[0].len()), (4, 17));
    assert_eq!(codes, expected);
    let audio = wav::read(&wav_path).unwrap();
    assert_eq!((audio.sample_rate, audio.channels.len(), audio.frames()), (32000, 1, 640 * 17));
    let d = max_diff(&audio, &r["greedy_audio_nocfg"]);
    assert!(d <= 1e-4, "audio differs by {d}");
    assert!(err.contains("seed: "), "the seed must be printed: {err}");
}

#[test]
fn stereo_text_prompt_with_guidance_matches_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let (wav_path, codes_path) = (dir.path().join("out.wav"), dir.path().join("codes.json"));
    let r = refs("tiny-musicgen-stereo");
    let model = fixtures().join("tiny-musicgen-stereo");
    let (ok, err) = generate(&[
        "--model", model.to_str().unwrap(),
        "--prompt", "80s pop track with bassy drums and synth",
        "--max-new-tokens", "20",
        "--greedy",
        "--out", wav_path.to_str().unwrap(),
        "--codes-out", codes_path.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let expected: Vec<Vec<u32>> = r["greedy_codes_cfg"].to_dtype(DType::U32).unwrap().to_vec2().unwrap();
    assert_eq!(read_codes(&codes_path), expected, "8 interleaved rows L0,R0,L1,R1…");
    let audio = wav::read(&wav_path).unwrap();
    assert_eq!((audio.sample_rate, audio.channels.len(), audio.frames()), (32000, 2, 640 * 17));
    let d = max_diff(&audio, &r["greedy_audio_cfg"]);
    assert!(d <= 1e-4, "audio differs by {d}");
}

/// `--melody FILE` goes through engine::chroma and conditions exactly like the facade given the
/// same chroma; `--duration` gives exactly 50·N frames.
#[test]
fn melody_file_and_duration() {
    let dir = tempfile::tempdir().unwrap();
    let (wav_path, codes_path) = (dir.path().join("out.wav"), dir.path().join("codes.json"));
    let model_dir = fixtures().join("tiny-musicgen-melody");
    let melody = fixtures().join("chroma/melody.wav");
    let prompt = "90s rock song with loud guitars and heavy drums";
    let (ok, err) = generate(&[
        "--model", model_dir.to_str().unwrap(),
        "--prompt", prompt,
        "--melody", melody.to_str().unwrap(),
        "--duration", "1",
        "--seed", "11",
        "--out", wav_path.to_str().unwrap(),
        "--codes-out", codes_path.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let audio = wav::read(&wav_path).unwrap();
    assert_eq!((audio.sample_rate, audio.channels.len(), audio.frames()), (32000, 1, 32000));
    let codes = read_codes(&codes_path);
    assert_eq!((codes.len(), codes[0].len()), (4, 50));

    let model = MusicGen::load(&model_dir, &Device::Cpu, DType::F32).unwrap();
    let chroma = melody_from_file(&melody).unwrap();
    let req = GenerationRequest { max_new_tokens: 53, ..GenerationRequest::new(Prompt::Text(prompt.into()), 11) };
    let direct = model.generate(&req, Some(chroma.one_hot()), &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(codes, direct.codes);
    let text_only = model.generate(&req, None, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_ne!(codes, text_only.codes, "the melody must change the result");
}

#[test]
fn seeds_reproduce_and_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("tiny-musicgen");
    let run = |seed: &str, name: &str| {
        let codes = dir.path().join(name);
        let (ok, err) = generate(&[
            "--model", model.to_str().unwrap(),
            "--prompt", "lofi",
            "--max-new-tokens", "12",
            "--seed", seed,
            "--out", dir.path().join("x.wav").to_str().unwrap(),
            "--codes-out", codes.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        assert!(err.contains(&format!("seed: {seed}")), "{err}");
        read_codes(&codes)
    };
    assert_eq!(run("5", "a.json"), run("5", "b.json"));
    assert_ne!(run("5", "a.json"), run("6", "c.json"));

    let (ok, err) = generate(&[
        "--model", model.to_str().unwrap(),
        "--prompt", "lofi",
        "--melody", fixtures().join("chroma/melody.wav").to_str().unwrap(),
        "--out", dir.path().join("x.wav").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("MusicGen-Melody"), "{err}");
    let (ok, err) = generate(&["--model", "/nonexistent/model", "--prompt", "x", "--out", "/tmp/x.wav"]);
    assert!(!ok && err.contains("/nonexistent/model"), "{err}");
    let (ok, _) = generate(&["--model", model.to_str().unwrap(), "--out", "/tmp/x.wav"]);
    assert!(!ok, "a prompt is required");
}


/// Streaming (the default) writes the same WAV as `--no-stream` and reports its first audio
/// well before the end; `--no-stream` reports the end as its first audio.
#[test]
fn streaming_reports_first_audio_early_and_writes_the_same_clip() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("tiny-musicgen");
    let run = |name: &str, extra: &[&str]| {
        let (wav_path, timings) = (dir.path().join(format!("{name}.wav")), dir.path().join(format!("{name}.json")));
        let mut args = vec![
            "--model", model.to_str().unwrap(),
            "--prompt", "lo-fi piano",
            "--max-new-tokens", "120",
            "--seed", "5",
            "--out", wav_path.to_str().unwrap(),
            "--timings-json", timings.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (ok, err) = generate(&args);
        assert!(ok, "{err}");
        let t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(timings).unwrap()).unwrap();
        (wav::read(&wav_path).unwrap(), t)
    };
    let (streamed, t) = run("streamed", &[]);
    let (whole, t_whole) = run("whole", &["--no-stream"]);
    assert_eq!(streamed.channels, whole.channels, "same clip either way");
    let f = |t: &serde_json::Value, k: &str| t[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {t}"));
    let step_ends: Vec<f64> = serde_json::from_value(t["step_end_s"].clone()).unwrap();
    // Kc = 4, first chunk 10 frames + 3 context + 3 look-ahead: audio right after step 19.
    assert!(f(&t, "first_audio_s") >= step_ends[18] && f(&t, "first_audio_s") < step_ends[19], "{t}");
    assert!(f(&t, "first_audio_s") < f(&t, "total_s") && t["streamed"] == true);
    assert_eq!((f(&t_whole, "first_audio_s"), t_whole["streamed"].as_bool()), (f(&t_whole, "total_s"), Some(false)));
}
