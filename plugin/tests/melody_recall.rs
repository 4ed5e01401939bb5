//! Reproducing a clip from what its sidecar records: the worker stores the melody conditioning
//! the model followed (`ClipMeta::melody`), and replaying that record through the worker or
//! through `melodygen generate --from-clip` makes the same audio, bit for bit, whatever is
//! captured by then. Runs the real MusicGen engine on the tiny melody checkpoint.

use melodygen_engine::wav;
use melodygen_engine::record::ClipMeta;
use melodygen::worker::clip::Clip;
use melodygen_engine::record::{ClipLength, GenerationParams, JobSettings, Melody, MelodySource, Quant};
use melodygen::worker::job::{Job, JobError, WorkerToInstance};
use melodygen_engine::record::MelodyRecord;
use melodygen::worker::Worker;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

/// The `melodygen` CLI of the same build. It is another package's binary (the CLI links no
/// plugin code), so cargo gives no `CARGO_BIN_EXE_` for it here: it sits in the profile folder
/// above this test's `deps/`, built by the same `cargo test --workspace` (as `cargo xtask test`
/// runs it) before any test starts.
fn cli_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).expect("tests run from <target>/<profile>/deps");
    let cli = profile_dir.join(format!("melodygen{}", std::env::consts::EXE_SUFFIX));
    assert!(cli.is_file(), "{} is missing: run the workspace's tests (cargo test --workspace), which build the CLI", cli.display());
    cli
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

/// A captured melody: a fixture recording (not made by our code), as the track would play it.
fn captured(name: &str) -> Melody {
    let audio = wav::read(&fixture("chroma").join(name)).unwrap();
    Melody::Audio { samples: audio.channels[0].clone(), sample_rate: audio.sample_rate }
}

fn generate(worker: &Worker, model: &Path, melody: Melody, host_rate: u32, dir: &Path) -> Result<Clip, JobError> {
    let (tx, rx) = crossbeam_channel::unbounded();
    worker.submit(Job {
        id: 0,
        instance: melodygen::worker::job::new_instance_id(),
        settings: JobSettings {
            prompt: "warm synth arpeggio".into(),
            params: GenerationParams {
                model: model.to_string_lossy().into_owned(),
                length: ClipLength::Seconds(1.0),
                seed: 1234,
                seed_locked: true,
                melody_source: MelodySource::Audio,
                preview_while_generating: false,
                quant: Quant::Q8_0,
                ..Default::default()
            },
        },
        melody,
        seconds: 1.0,
        host_rate: Arc::new(AtomicU32::new(host_rate)),
        anchor: Default::default(),
        clip_dir: dir.to_path_buf(),
        cancel: Arc::default(),
        progress: Arc::default(),
        reply: tx,
    });
    loop {
        if let WorkerToInstance::Finished { result, .. } = rx.recv_timeout(Duration::from_secs(300)).expect("no reply in 300 s") {
            return result;
        }
    }
}

fn sidecar(clip: &Clip) -> ClipMeta {
    serde_json::from_str(&std::fs::read_to_string(clip.meta.sidecar_path()).unwrap()).unwrap()
}

fn max_diff(a: &wav::Audio, b: &wav::Audio) -> f32 {
    a.channels.iter().flatten().zip(b.channels.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn a_clip_is_made_again_from_its_sidecar_bit_for_bit() {
    let model = fixture("tiny-musicgen-melody");
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::shared();

    // The original: the melody as captured then, at a host rate (48 kHz).
    let original = generate(&worker, &model, captured("melody.wav"), 48_000, dir.path()).unwrap();
    let meta = sidecar(&original);
    let record = meta.melody.clone().expect("a melody model with a melody records it");
    assert_eq!(record.source, MelodySource::Audio);
    // 1 + samples/4096 frames of the capture at 32 kHz, as the chroma extractor makes them.
    let expected = melodygen_engine::chroma::melody_from_file(&fixture("chroma").join("melody.wav")).unwrap();
    assert_eq!(record.frames(), expected.frames());
    assert_eq!(record.one_hot().unwrap(), expected.one_hot().to_vec(), "the record is what the model followed");
    assert_eq!(meta, original.meta, "the sidecar holds the record");

    // Something else is captured now: the same seed and settings make another clip (the
    // library's session 5 symptom), so the melody matters and the check below can fail.
    let other = generate(&worker, &model, captured("chords.wav"), 48_000, dir.path()).unwrap();
    let moved = max_diff(&other.audio, &original.audio);
    assert!(moved > 1e-3, "another melody changes the clip (max diff {moved})");
    assert_ne!(other.meta.melody, meta.melody);

    // Replaying the sidecar's record: identical audio, and the same record stored again.
    let again = generate(&worker, &model, Melody::Recorded(record.clone()), 48_000, dir.path()).unwrap();
    assert_eq!(again.audio.frames(), original.audio.frames());
    assert_eq!(again.audio.channels, original.audio.channels, "bit-identical remake");
    assert_eq!(again.meta.melody.as_ref(), Some(&record));
    eprintln!("remake identical; another melody moved the clip by up to {moved}");

    // A text-only model records no melody.
    let text = generate(&worker, &fixture("tiny-musicgen"), captured("melody.wav"), 48_000, dir.path()).unwrap();
    assert_eq!((text.meta.melody.as_ref(), sidecar(&text).melody), (None, None));

    // The CLI from the sidecar, against a clip kept at the model rate (no host conversion).
    let at_model_rate = generate(&worker, &model, captured("melody.wav"), 32_000, dir.path()).unwrap();
    assert_eq!(at_model_rate.meta.model_rate, 32_000);
    let out = dir.path().join("from-clip.wav");
    let run = Command::new(cli_binary())
        .args(["generate", "--from-clip"])
        .arg(at_model_rate.meta.sidecar_path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let cli = wav::read(&out).unwrap();
    let file = wav::read(&at_model_rate.meta.path).unwrap();
    assert_eq!(cli.sample_rate, 32_000);
    // The plugin's file is stereo (mono model doubled); the CLI writes the model's channel.
    assert_eq!(cli.channels.len(), 1);
    assert_eq!(cli.channels[0], file.channels[0], "--from-clip reproduces the clip's audio bit for bit");
    assert!(String::from_utf8_lossy(&run.stderr).contains("seed: 1234"));
}

/// An old sidecar (no `melody` field) still loads, as `None`; a record survives JSON.
#[test]
fn sidecars_without_a_record_load_and_records_round_trip() {
    let record = MelodyRecord::from_pitch_classes(MelodySource::Midi, &[0, 4, 7, 11, 11, 2]).unwrap();
    let json = serde_json::to_string(&record).unwrap();
    assert!(json.contains("\"pitch_classes\":\"047bb2\""), "{json}");
    assert_eq!(serde_json::from_str::<MelodyRecord>(&json).unwrap(), record);
    let old = r#"{"path":"/clips/a.wav","settings":{"prompt":"x","seed":3},"model_dir":null,"seconds":8.0,
        "sample_rate":48000,"frames":384000,"model_rate":32000,"anchor":{},"created":"2026-01-01T00:00:00Z"}"#;
    let meta: ClipMeta = serde_json::from_str(old).unwrap();
    assert_eq!(meta.melody, None);
    let with = ClipMeta { melody: Some(record.clone()), ..meta };
    let back: ClipMeta = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
    assert_eq!(back.melody, Some(record));
}
