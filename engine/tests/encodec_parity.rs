//! EnCodec decoder parity against transformers 5.23 on the tiny checkpoints.
//!
//! References come from `scripts/make_tiny_checkpoints.py` (tests/fixtures/refs): fixed random
//! codes decoded by `EncodecModel.decode`, plus the codes transformers produced during greedy
//! generation and the audio it decoded from them.
use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, IndexOp, Tensor};
use melodygen_engine::checkpoint::Checkpoint;
use melodygen_engine::encodec::EncodecDecoder;
use melodygen_engine::error::EngineError;

#[path = "../../tests/support/fixtures.rs"]
mod common;
use common::{fixtures, max_abs_diff};

const TOL: f32 = 1e-5;

fn load(name: &str) -> (EncodecDecoder, HashMap<String, Tensor>) {
    let ckpt = Checkpoint::open(&fixtures().join(name)).unwrap();
    let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
    let dec = EncodecDecoder::new(&ckpt.config.audio_encoder, vb.pp("audio_encoder")).unwrap();
    let refs = candle_core::safetensors::load(
        fixtures().join(format!("refs/{name}.safetensors")),
        &Device::Cpu,
    )
    .unwrap();
    (dec, refs)
}

/// Decodes i64 codes (n_q, F) → (1, hop·F) for one channel.
fn decode(dec: &EncodecDecoder, codes: &Tensor) -> Tensor {
    dec.decode(&codes.unsqueeze(0).unwrap())
        .unwrap()
        .squeeze(0)
        .unwrap()
}

fn check_fixed_codes(name: &str) {
    let (dec, refs) = load(name);
    for (codes, audio) in [
        ("encodec_codes", "encodec_audio"),
        ("encodec_codes_1f", "encodec_audio_1f"),
    ] {
        let t = Instant::now();
        let out = decode(&dec, &refs[codes]);
        let elapsed = t.elapsed();
        let err = max_abs_diff(&out, &refs[audio]);
        println!(
            "{name} {codes}: max |err| = {err:e} ({} samples, {elapsed:?})",
            out.dims()[1]
        );
        assert!(err <= TOL, "{name} {codes}: max error {err} > {TOL}");
    }
}

#[test]
fn mono_hub_naming_fixed_codes() {
    check_fixed_codes("tiny-musicgen");
}

#[test]
fn stereo_sharded_f16_transformers5_naming_fixed_codes() {
    check_fixed_codes("tiny-musicgen-stereo");
}

#[test]
fn melody_fixed_codes() {
    check_fixed_codes("tiny-musicgen-melody");
}

/// The codes transformers generated, decoded by us, must give the audio transformers returned
/// (stereo: even codebooks → left, odd → right).
#[test]
fn generated_codes_decode_to_transformers_audio() {
    for (name, pairs) in [
        (
            "tiny-musicgen",
            &[
                ("greedy_codes_nocfg", "greedy_audio_nocfg"),
                ("greedy_codes_cfg", "greedy_audio_cfg"),
            ],
        ),
        (
            "tiny-musicgen-stereo",
            &[
                ("greedy_codes_nocfg", "greedy_audio_nocfg"),
                ("greedy_codes_cfg", "greedy_audio_cfg"),
            ],
        ),
        (
            "tiny-musicgen-melody",
            &[
                ("melody_codes_chroma", "melody_audio_chroma"),
                ("melody_codes_textonly", "melody_audio_textonly"),
            ],
        ),
    ] {
        let (dec, refs) = load(name);
        for (codes, audio) in pairs {
            let codes = &refs[*codes];
            let out = if codes.dims()[0] == 8 {
                let idx = |start: u32| {
                    Tensor::new(&[start, start + 2, start + 4, start + 6], &Device::Cpu).unwrap()
                };
                let left = decode(&dec, &codes.index_select(&idx(0), 0).unwrap());
                let right = decode(&dec, &codes.index_select(&idx(1), 0).unwrap());
                Tensor::cat(&[left, right], 0).unwrap()
            } else {
                decode(&dec, codes)
            };
            let err = max_abs_diff(&out, &refs[*audio]);
            println!("{name} {audio}: max |err| = {err:e}");
            assert!(err <= TOL, "{name} {audio}: max error {err}");
        }
    }
}

/// A batch of 2 decodes as each element alone would (transformers' padded-batch generation).
#[test]
fn batch_decode() {
    let (dec, refs) = load("tiny-musicgen");
    let out = dec.decode(&refs["batch_codes_cfg"]).unwrap();
    let err = max_abs_diff(&out, &refs["batch_audio_cfg"]);
    println!("batch_audio_cfg: max |err| = {err:e}");
    assert!(err <= TOL);
    // u32 input (what the generator produces) gives the same result.
    let out_u32 = dec
        .decode(&refs["batch_codes_cfg"].to_dtype(DType::U32).unwrap())
        .unwrap();
    assert_eq!(max_abs_diff(&out, &out_u32), 0.0);
}

#[test]
fn invalid_codes_are_rejected() {
    let (dec, refs) = load("tiny-musicgen");
    let codes = refs["encodec_codes"].clone();
    // Code 2048 is the BOS/pad id: never a valid codec code.
    let bad = codes.i((.., 0..3)).unwrap();
    let bad = Tensor::cat(
        &[bad, Tensor::full(2048i64, (4, 1), &Device::Cpu).unwrap()],
        1,
    )
    .unwrap();
    let err = dec.decode(&bad.unsqueeze(0).unwrap()).unwrap_err();
    assert!(
        matches!(&err, EngineError::InvalidCodes(m) if m.contains("2048")),
        "{err}"
    );
    let err = dec.decode(&codes).unwrap_err(); // rank 2
    assert!(matches!(err, EngineError::InvalidCodes(_)), "{err}");
    let five = Tensor::zeros((1, 5, 3), DType::U32, &Device::Cpu).unwrap();
    assert!(matches!(
        dec.decode(&five).unwrap_err(),
        EngineError::InvalidCodes(_)
    ));
}

/// Speed of a real-size (facebook/musicgen-* 32 kHz codec: 64 filters, 128 hidden) decode of
/// 10 s (500 frames). Weights are zeros (NaN after weight norm), so only timing is meaningful.
/// Run with `cargo test -p melodygen --test encodec_parity -- --ignored --nocapture`.
#[test]
#[ignore = "timing only"]
fn real_size_decode_timing() {
    let cfg: melodygen_engine::checkpoint::EncodecConfig = serde_json::from_str("{}").unwrap();
    let vb = candle_nn::VarBuilder::zeros(DType::F32, &Device::Cpu);
    let dec = EncodecDecoder::new(&cfg, vb).unwrap();
    let codes = Tensor::zeros((1, 4, 500), DType::U32, &Device::Cpu).unwrap();
    let t = Instant::now();
    let audio = dec.decode(&codes).unwrap();
    println!(
        "real-size EnCodec decode of 500 frames (10 s): {:?}",
        t.elapsed()
    );
    assert_eq!(audio.dims(), &[1, 1, 320_000]);
}
