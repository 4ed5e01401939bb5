//! Property tests of every engine parser that reads outside data: WAV files (`wav::read`), MIDI
//! files (`chroma::chroma_from_smf`), melody files of either kind (`chroma::melody_from_file`),
//! a checkpoint's `config.json` and `generation_config.json`, and clip sidecars
//! (`ClipMeta::read_sidecar`, with the melody record it carries).
//!
//! The property, for random bytes and for valid files truncated or mutated: the parser never
//! panics, and when it refuses the input its typed error names the input (the path, or the
//! origin of in-memory data), so a producer knows which file is broken.
//!
//! Case counts are kept small (the whole file runs in a few seconds) because CI runs it on every
//! change; the strategies concentrate on the edges (headers, lengths, field values) rather than
//! on volume.

use melodygen_engine::checkpoint::{GenerationConfig, MusicgenConfig};
use melodygen_engine::chroma::{self, ChromaError};
use melodygen_engine::record::{ClipMeta, SidecarError};
use melodygen_engine::wav;
use proptest::prelude::*;
use serde_json::Value;
use std::io::Cursor;
use std::path::{Path, PathBuf};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// A scratch file named after the test, so an error that names it can be checked for it.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("melodygen-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `bytes` cut at `cut` (a fraction of the length) with the bytes at `flips` replaced: how a
/// broken download, a crash mid-write or a damaged disk leaves a file.
fn damage(bytes: &[u8], cut: f64, flips: &[(f64, u8)]) -> Vec<u8> {
    let mut out = bytes[..((bytes.len() as f64 * cut) as usize).min(bytes.len())].to_vec();
    for &(at, value) in flips {
        if !out.is_empty() {
            let i = ((out.len() as f64 * at) as usize).min(out.len() - 1);
            out[i] = value;
        }
    }
    out
}

fn flips() -> impl Strategy<Value = Vec<(f64, u8)>> {
    prop::collection::vec((0.0..1.0f64, any::<u8>()), 0..6)
}

// --- WAV -------------------------------------------------------------------------------------

/// A valid WAV in memory, in one of the formats hound writes.
fn valid_wav(format: usize, channels: u16, rate: u32, frames: usize) -> Vec<u8> {
    let (bits, sample_format) = [
        (8, hound::SampleFormat::Int),
        (16, hound::SampleFormat::Int),
        (24, hound::SampleFormat::Int),
        (32, hound::SampleFormat::Int),
        (32, hound::SampleFormat::Float),
    ][format % 5];
    let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format };
    let mut bytes = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut bytes, spec).unwrap();
    for i in 0..frames * channels as usize {
        let x = ((i as f32) * 0.37).sin() * 0.5;
        match sample_format {
            hound::SampleFormat::Float => w.write_sample(x).unwrap(),
            hound::SampleFormat::Int => w.write_sample((x * ((1i64 << (bits - 1)) - 1) as f32) as i32).unwrap(),
        }
    }
    w.finalize().unwrap();
    bytes.into_inner()
}

fn check_wav(path: &Path) {
    // The melody path reads the same file and goes on to the chroma. Its cost is the audio's
    // duration (up to 30 s resampled), and a damaged rate field can make a few hundred frames
    // last minutes: keep CI fast by analysing only what lasts at most a few seconds.
    match wav::read(path) {
        Ok(audio) => {
            assert!(!audio.channels.is_empty());
            assert!(audio.channels.iter().all(|c| c.len() == audio.frames()), "channels of unequal length");
            if audio.sample_rate == 0 || audio.frames() as f64 / f64::from(audio.sample_rate) <= 2.0 {
                check_melody_file(path);
            }
        }
        Err(e) => {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            check_melody_file(path);
        }
    }
}

fn check_melody_file(path: &Path) {
    if let Err(e) = chroma::melody_from_file(path) {
        assert!(e.to_string().contains(&path.display().to_string()), "error does not name the file: {e}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn wav_random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256), riff in any::<bool>()) {
        let bytes = if riff { [b"RIFF".as_slice(), &body].concat() } else { body };
        check_wav(&scratch("random.wav", &bytes));
    }

    #[test]
    fn wav_damaged_never_panics(
        format in 0usize..5,
        channels in 1u16..4,
        rate in prop::sample::select(vec![1u32, 8_000, 32_000, 44_100, 48_000, 192_000]),
        frames in 0usize..600,
        cut in 0.0..1.2f64,
        flips in flips(),
    ) {
        let bytes = damage(&valid_wav(format, channels, rate, frames), cut, &flips);
        check_wav(&scratch("damaged.wav", &bytes));
    }

    /// The header fields a broken writer gets wrong: channel count, rate, bits, format tag and
    /// the chunk lengths (a length larger than the file must not make the reader reserve it).
    #[test]
    fn wav_header_fields_never_panic(
        field in prop::sample::select(vec![4usize, 20, 22, 24, 28, 32, 34, 40]),
        value in prop::sample::select(vec![0u32, 1, 2, 7, 33, 64, 65, 0xffff, 0x7fff_ffff, u32::MAX]),
        frames in 0usize..64,
    ) {
        let mut bytes = valid_wav(1, 2, 48_000, frames);
        let width = if matches!(field, 20 | 22 | 32 | 34) { 2 } else { 4 };
        bytes[field..field + width].copy_from_slice(&value.to_le_bytes()[..width]);
        check_wav(&scratch("header.wav", &bytes));
    }
}

// --- MIDI ------------------------------------------------------------------------------------

fn valid_smf() -> Vec<u8> {
    std::fs::read(fixtures().join("chroma/melody_tempo.mid")).unwrap()
}

fn check_smf(bytes: &[u8]) {
    if let Err(e) = chroma::chroma_from_smf(bytes) {
        assert!(e.to_string().contains("MIDI data"), "error does not name its origin: {e}");
    }
    let path = scratch("damaged.mid", bytes);
    check_melody_file(&path);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn midi_random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        check_smf(&[b"MThd\0\0\0\x06".as_slice(), &body].concat());
    }

    #[test]
    fn midi_damaged_never_panics(cut in 0.0..1.2f64, flips in flips()) {
        check_smf(&damage(&valid_smf(), cut, &flips));
    }

    /// A well-formed file with arbitrary events: huge deltas, tempo 0, notes never released,
    /// every channel; parsed, it must give chroma or a typed error.
    #[test]
    fn midi_arbitrary_events_never_panic(
        tpq in 1u16..0x7fff,
        events in prop::collection::vec((0u32..0x0fff_ffff, 0u8..4, 0u8..16, 0u8..128, 0u8..128), 0..40),
    ) {
        use midly::num::{u15, u24, u28, u4, u7};
        use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
        let mut track: Vec<TrackEvent> = events
            .iter()
            .map(|&(delta, kind, channel, key, vel)| TrackEvent {
                delta: u28::new(delta >> (kind as u32 * 6)),
                kind: match kind {
                    0 => TrackEventKind::Midi { channel: u4::new(channel), message: MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) } },
                    1 => TrackEventKind::Midi { channel: u4::new(channel), message: MidiMessage::NoteOff { key: u7::new(key), vel: u7::new(vel) } },
                    2 => TrackEventKind::Meta(MetaMessage::Tempo(u24::new(u32::from(key) * u32::from(vel) * 997))),
                    _ => TrackEventKind::Midi { channel: u4::new(channel), message: MidiMessage::Controller { controller: u7::new(key), value: u7::new(vel) } },
                },
            })
            .collect();
        track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
        let smf = Smf { header: Header { format: Format::SingleTrack, timing: Timing::Metrical(u15::new(tpq)) }, tracks: vec![track] };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        check_smf(&bytes);
    }
}

// --- config.json and generation_config.json --------------------------------------------------

fn tiny_config(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name).join("config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every leaf of `v`, as JSON pointers.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| leaves(x, format!("{at}/{k}"), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| leaves(x, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

/// Values a hand-edited or foreign config may hold where a number is expected.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![0i64, -1, 1, 2, 3, 7, 1 << 20, 1 << 40, 1 << 62, i64::MAX]).prop_map(Value::from),
        prop::sample::select(vec![0.0f64, -0.5, 0.5, 1e-300, 1e300, 2.2]).prop_map(Value::from),
        Just(Value::Null),
        Just(Value::from("x")),
        Just(Value::from(true)),
        Just(serde_json::json!([])),
        Just(serde_json::json!([0])),
        Just(serde_json::json!([1u64 << 40, 1u64 << 40])),
    ]
}

fn check_config(text: &str, path: &Path) {
    if let Err(e) = MusicgenConfig::from_json(text, path) {
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_field_values_never_panic(
        model in prop::sample::select(vec!["tiny-musicgen", "tiny-musicgen-stereo", "tiny-musicgen-melody"]),
        edits in prop::collection::vec((any::<prop::sample::Index>(), odd_value(), any::<bool>()), 1..4),
    ) {
        let mut cfg = tiny_config(model);
        for (pick, value, remove) in edits {
            let mut all = Vec::new();
            leaves(&cfg, String::new(), &mut all);
            let pointer = pick.get(&all).clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match cfg.pointer_mut(parent) {
                Some(Value::Object(m)) if remove => { m.remove(key); }
                Some(slot) => { if let Some(leaf) = slot.pointer_mut(&format!("/{key}")) { *leaf = value; } }
                None => {}
            }
        }
        let path = PathBuf::from(format!("/models/{model}/config.json"));
        check_config(&cfg.to_string(), &path);
    }

    #[test]
    fn config_damaged_text_never_panics(
        model in prop::sample::select(vec!["tiny-musicgen", "tiny-musicgen-stereo", "tiny-musicgen-melody"]),
        cut in 0.0..1.2f64,
        flips in flips(),
    ) {
        let bytes = std::fs::read(fixtures().join(model).join("config.json")).unwrap();
        let text = String::from_utf8_lossy(&damage(&bytes, cut, &flips)).into_owned();
        check_config(&text, &PathBuf::from(format!("/models/{model}/config.json")));
        let path = scratch("generation_config.json", text.as_bytes());
        if let Err(e) = GenerationConfig::from_file_or_default(&path) {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
    }
}

// --- clip sidecars ---------------------------------------------------------------------------

/// A sidecar as the plugin writes it, with a recorded melody.
fn valid_sidecar() -> Value {
    serde_json::json!({
        "path": "/clips/take.wav",
        "settings": {"prompt": "lofi", "model": "facebook/musicgen-melody", "length": {"seconds": 8.0},
                      "seed": 7, "seed_locked": false, "top_k": 250, "top_p": 0.0, "temperature": 1.0,
                      "guidance": 3.0, "greedy": false, "melody_source": "audio",
                      "preview_while_generating": true, "quant": "q8_0"},
        "model_dir": "/models/melody",
        "seconds": 8.0, "sample_rate": 48000, "frames": 384000, "model_rate": 32000,
        "anchor": {"seconds": 1.5, "beats": 3.0, "bar": 0, "tempo": 120.0},
        "created": "2026-01-01T00:00:00Z",
        "melody": {"source": "audio", "pitch_classes": "0047b", "frame_rate": 7.8125}
    })
}

fn check_sidecar(text: &str) {
    let path = scratch("take.json", text.as_bytes());
    match ClipMeta::read_sidecar(&path) {
        Ok(meta) => {
            // What reading a sidecar leads to: its request and its melody, refused by name.
            let _ = meta.settings.request(meta.seconds);
            if let Some(m) = &meta.melody {
                let _ = m.one_hot();
            }
        }
        Err(e @ (SidecarError::Io { .. } | SidecarError::Json { .. })) => {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}")
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sidecar_damaged_text_never_panics(cut in 0.0..1.2f64, flips in flips()) {
        let bytes = serde_json::to_vec_pretty(&valid_sidecar()).unwrap();
        check_sidecar(&String::from_utf8_lossy(&damage(&bytes, cut, &flips)));
    }

    #[test]
    fn sidecar_field_values_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), odd_value(), any::<bool>()), 1..4),
        classes in prop::collection::vec(prop::sample::select(b"0123456789abz".to_vec()), 0..300)
            .prop_map(|v| String::from_utf8(v).unwrap()),
    ) {
        let mut meta = valid_sidecar();
        meta["melody"]["pitch_classes"] = Value::from(classes);
        for (pick, value, remove) in edits {
            let mut all = Vec::new();
            leaves(&meta, String::new(), &mut all);
            let pointer = pick.get(&all).clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match meta.pointer_mut(parent) {
                Some(Value::Object(m)) if remove => { m.remove(key); }
                Some(slot) => { if let Some(leaf) = slot.pointer_mut(&format!("/{key}")) { *leaf = value; } }
                None => {}
            }
        }
        check_sidecar(&meta.to_string());
    }
}

#[test]
fn a_sidecar_that_is_not_one_is_refused_by_name() {
    let path = scratch("notes.json", b"{\"path\": 3}");
    let e = ClipMeta::read_sidecar(&path).unwrap_err();
    assert!(matches!(e, SidecarError::Json { .. }) && e.to_string().contains("notes.json"), "{e}");
    let missing = Path::new("/nonexistent/take.json");
    assert!(ClipMeta::read_sidecar(missing).unwrap_err().to_string().contains("/nonexistent/take.json"));
    assert!(matches!(chroma::chroma_from_smf(b"MThd"), Err(ChromaError::Midi { .. })));
}

/// Numbers a config multiplies together (the codec's upsampling ratios, the bandwidth against
/// the frame rate) are refused when their product does not fit, instead of overflowing.
#[test]
fn a_config_whose_products_overflow_is_refused_by_name() {
    let path = Path::new("/models/huge/config.json");
    for ratios in [serde_json::json!([1u64 << 62, 8]), serde_json::json!([u64::MAX, 2, 2])] {
        let mut cfg = tiny_config("tiny-musicgen");
        cfg["audio_encoder"]["upsampling_ratios"] = ratios;
        let e = MusicgenConfig::from_json(&cfg.to_string(), path).unwrap_err();
        assert!(e.to_string().contains("/models/huge/config.json"), "{e}");
    }
}
