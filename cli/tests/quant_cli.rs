//! The CLI's `--quant`: a quantized generation reports its layers and fallbacks, and an unknown
//! format is refused by name. (The quantized path itself is tested in the engine.)

#[path = "../../tests/support/fixtures.rs"]
mod common;

use std::process::Command;

use common::fixtures;

const PROMPT: &str = "90s rock song with loud guitars and heavy drums";

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_melodygen")).args(args).output().unwrap()
}

#[test]
fn cli_quant_generates_reports_and_refuses_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("tiny-musicgen");
    let (wav, timings) = (dir.path().join("q.wav"), dir.path().join("t.json"));
    let out = cli(&[
        "generate", "--model", model.to_str().unwrap(), "--prompt", PROMPT, "--max-new-tokens", "12", "--seed", "3",
        "--quant", "q4k", "--out", wav.to_str().unwrap(), "--timings-json", timings.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("decoder weights q4k") && stderr.contains("fell back"), "{stderr}");
    let t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&timings).unwrap()).unwrap();
    assert_eq!(t["quant"], "q4k");
    assert_eq!(t["quant_layers"]["q8_0"], 24);
    assert_eq!(t["quant_fallbacks"], 24);
    assert!(wav.is_file());

    let out = cli(&["generate", "--model", model.to_str().unwrap(), "--prompt", PROMPT, "--quant", "int4", "--out", wav.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("unknown quantization \"int4\"") && stderr.contains("q8_0"), "{stderr}");
}
