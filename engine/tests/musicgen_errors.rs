//! Typed load errors of the MusicGen facade: unknown model type, missing and misshapen tensors.
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use melodygen_engine::error::EngineError;
use melodygen_engine::musicgen::MusicGen;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-musicgen")
}

/// A copy of the tiny mono checkpoint with `edit` applied to its tensors.
fn copy_with(dir: &Path, edit: impl FnOnce(&mut std::collections::HashMap<String, Tensor>)) {
    for f in ["config.json", "generation_config.json", "tokenizer.json"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    let mut tensors = candle_core::safetensors::load(fixture().join("model.safetensors"), &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
}

fn load(dir: &Path) -> Result<MusicGen, EngineError> {
    MusicGen::load(dir, &Device::Cpu, DType::F32)
}

#[test]
fn missing_decoder_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let name = "decoder.model.decoder.layers.1.encoder_attn.k_proj.weight";
    copy_with(dir.path(), |t| {
        t.remove(name).unwrap();
    });
    match load(dir.path()) {
        Err(EngineError::MissingTensor { name: n, expected }) => {
            assert_eq!(n, name);
            assert_eq!(expected, vec![32, 32]);
        }
        other => panic!("expected MissingTensor, got {:?}", other.err()),
    }
}

#[test]
fn misshapen_projection_is_named() {
    let dir = tempfile::tempdir().unwrap();
    copy_with(dir.path(), |t| {
        t.insert("enc_to_dec_proj.weight".into(), Tensor::zeros((32, 20), DType::F32, &Device::Cpu).unwrap());
    });
    match load(dir.path()) {
        Err(EngineError::TensorShape { name, expected, actual }) => {
            assert_eq!(name, "enc_to_dec_proj.weight");
            assert_eq!((expected, actual), (vec![32, 24], vec![32, 20]));
        }
        other => panic!("expected TensorShape, got {:?}", other.err()),
    }
}

#[test]
fn unknown_model_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_with(dir.path(), |_| {});
    let cfg = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let cfg = cfg.replacen("\"model_type\": \"musicgen\"", "\"model_type\": \"bark\"", 1);
    assert!(cfg.contains("bark"), "fixture config layout changed");
    std::fs::write(dir.path().join("config.json"), cfg).unwrap();
    match load(dir.path()) {
        Err(EngineError::UnknownModelType { found, .. }) => assert_eq!(found, "bark"),
        other => panic!("expected UnknownModelType, got {:?}", other.err()),
    }
}

#[test]
fn missing_tokenizer_is_named() {
    let dir = tempfile::tempdir().unwrap();
    copy_with(dir.path(), |_| {});
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    assert!(matches!(load(dir.path()), Err(EngineError::MissingFile { .. })));
}
