//! The `melodygen chroma` CLI on WAV and MIDI files, against the transformers references.

#[path = "../../tests/support/fixtures.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;

use common::chroma_reference as reference;
use serde_json::Value;

fn fixtures() -> PathBuf {
    common::fixtures().join("chroma")
}

#[test]
fn cli_prints_chromas_for_wav_and_midi() {
    let bin = env!("CARGO_BIN_EXE_melodygen");
    let out = Command::new(bin)
        .args(["chroma", "--json"])
        .arg(fixtures().join("scale.wav"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = reference("scale", "transformers_argmax");
    assert_eq!(json["frames"], want.len());
    let argmax: Vec<u8> = json["argmax"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(argmax, want);
    let one_hot = json["one_hot"].as_array().unwrap();
    assert_eq!(one_hot.len(), want.len());
    for (row, &c) in one_hot.iter().zip(&want) {
        let row: Vec<f64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(row.len(), 12);
        assert_eq!(row[usize::from(c)], 1.0);
        assert_eq!(row.iter().sum::<f64>(), 1.0);
    }

    let out = Command::new(bin)
        .args(["chroma", "--midi"])
        .arg(fixtures().join("melody_tempo.mid"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("frames: 63"));
    assert_eq!(lines.next(), Some("0\t9\tA"), "the melody starts on A4");
    assert_eq!(lines.count(), 62);

    let out = Command::new(bin)
        .args(["chroma", "/nonexistent/tune.wav"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tune.wav"));
}
