//! Checkpoint loading on the tiny fixtures: configs, both weight-norm namings, sharding, f16
//! storage, HF-cache resolution, and the typed errors a producer sees for broken folders.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use melodygen_engine::checkpoint::{resolve_in_cache, Checkpoint, ModelType};
use melodygen_engine::encodec::EncodecDecoder;
use melodygen_engine::error::EngineError;

#[path = "../../tests/support/fixtures.rs"]
mod common;
use common::{fixtures, max_abs_diff};

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// Copies the config/tokenizer files of a fixture into `dst` (weights are the caller's business).
fn copy_metadata(src: &Path, dst: &Path) {
    for f in ["config.json", "generation_config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
}

#[test]
fn configs_of_all_three_families() {
    let mono = Checkpoint::open(&fixture("tiny-musicgen")).unwrap();
    assert_eq!(mono.config.model_type, ModelType::Musicgen);
    assert_eq!(mono.config.decoder.num_codebooks, 4);
    assert_eq!(mono.config.decoder.audio_channels, 1);
    assert_eq!(mono.config.decoder.hidden_size, 32);
    assert_eq!(mono.config.audio_encoder.num_quantizers(), 4);
    assert_eq!(mono.config.audio_encoder.hop_length(), 640);
    assert_eq!(mono.config.audio_encoder.frame_rate(), 50);
    assert!(mono.config.melody.is_none());
    assert_eq!(mono.weight_files.len(), 1);
    assert_eq!(mono.generation.guidance_scale, 3.0);
    assert!(mono.generation.do_sample);
    assert!(mono.tokenizer_path().unwrap().ends_with("tokenizer.json"));

    let stereo = Checkpoint::open(&fixture("tiny-musicgen-stereo")).unwrap();
    assert_eq!(stereo.config.decoder.num_codebooks, 8);
    assert_eq!(stereo.config.decoder.audio_channels, 2);
    assert_eq!(stereo.config.decoder.codebooks_per_channel(), 4);
    assert!(stereo.weight_files.len() >= 2, "stereo fixture is sharded");

    let melody = Checkpoint::open(&fixture("tiny-musicgen-melody")).unwrap();
    assert_eq!(melody.config.model_type, ModelType::MusicgenMelody);
    let m = melody.config.melody.clone().unwrap();
    assert_eq!((m.num_chroma, m.chroma_length), (12, 235));
}

/// Old mono configs have no `decoder.audio_channels`: it must default to 1.
#[test]
fn absent_audio_channels_defaults_to_mono() {
    let text = std::fs::read_to_string(fixture("tiny-musicgen/config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["decoder"]
        .as_object_mut()
        .unwrap()
        .remove("audio_channels");
    let cfg = melodygen_engine::checkpoint::MusicgenConfig::from_json(
        &v.to_string(),
        Path::new("config.json"),
    )
    .unwrap();
    assert_eq!(cfg.decoder.audio_channels, 1);
}

/// Both weight-norm namings are answered from either file: the hub-named mono file and the
/// transformers-5-named stereo shards give the same tensor under both names.
#[test]
fn weight_norm_aliases_and_f16_shards() {
    for name in ["tiny-musicgen", "tiny-musicgen-stereo"] {
        let ckpt = Checkpoint::open(&fixture(name)).unwrap();
        let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
        let vb = vb.pp("audio_encoder.decoder.layers.0.conv");
        let g_hub = vb.get_unchecked("weight_g").unwrap();
        let g_tf5 = vb
            .get_unchecked("parametrizations.weight.original0")
            .unwrap();
        let v_hub = vb.get_unchecked("weight_v").unwrap();
        let v_tf5 = vb
            .get_unchecked("parametrizations.weight.original1")
            .unwrap();
        assert_eq!(
            g_hub.dtype(),
            DType::F32,
            "{name}: converted to the requested dtype"
        );
        assert_eq!(max_abs_diff(&g_hub, &g_tf5), 0.0);
        assert_eq!(max_abs_diff(&v_hub, &v_tf5), 0.0);
        assert_eq!(v_hub.dims(), &[64, 16, 7]);
    }
}

/// The T5 config conversion is right: candle's T5 encoder loaded through our VarBuilder
/// reproduces transformers' hidden states for prompt 0 (mask-less T5 is exact per prompt).
#[test]
fn text_encoder_config_converts_to_candle_t5() {
    for name in [
        "tiny-musicgen",
        "tiny-musicgen-stereo",
        "tiny-musicgen-melody",
    ] {
        let ckpt = Checkpoint::open(&fixture(name)).unwrap();
        let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
        let cfg = ckpt.config.text_encoder.to_t5().unwrap();
        let mut t5 =
            candle_transformers::models::t5::T5EncoderModel::load(vb.pp("text_encoder"), &cfg)
                .unwrap();
        let refs = candle_core::safetensors::load(
            fixture(&format!("refs/{name}.safetensors")),
            &Device::Cpu,
        )
        .unwrap();
        let ids = refs["prompt_ids_0"]
            .to_dtype(DType::U32)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let hidden = t5.forward(&ids).unwrap();
        let err = max_abs_diff(&hidden, &refs["t5_hidden_0"]);
        println!("{name} t5_hidden_0: max |err| = {err:e}");
        assert!(err <= 1e-5, "{name}: {err}");
    }
}

#[test]
fn missing_folder() {
    let err = Checkpoint::open(Path::new("/definitely/not/here")).unwrap_err();
    assert!(
        matches!(&err, EngineError::ModelFolderMissing { path } if path == Path::new("/definitely/not/here"))
    );
    assert!(err.to_string().contains("/definitely/not/here"));
}

#[test]
fn missing_config_weights_and_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, EngineError::MissingFile { path, .. } if path.ends_with("config.json")),
        "{err}"
    );

    copy_metadata(&fixture("tiny-musicgen"), dir.path());
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(matches!(&err, EngineError::MissingWeights { .. }), "{err}");

    // Index listing a shard that is absent.
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        r#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, EngineError::MissingFile { path, .. } if path.ends_with("model-00001-of-00002.safetensors")),
        "{err}"
    );

    std::fs::remove_file(dir.path().join("model.safetensors.index.json")).unwrap();
    std::fs::copy(
        fixture("tiny-musicgen/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    let err = ckpt.tokenizer_path().unwrap_err();
    assert!(
        matches!(&err, EngineError::MissingFile { path, .. } if path.ends_with("tokenizer.json")),
        "{err}"
    );
}

#[test]
fn unknown_model_type() {
    let dir = tempfile::tempdir().unwrap();
    copy_metadata(&fixture("tiny-musicgen"), dir.path());
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        text.replace("\"model_type\": \"musicgen\"", "\"model_type\": \"bark\""),
    )
    .unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, EngineError::UnknownModelType { found, .. } if found == "bark"),
        "{err}"
    );
}

#[test]
fn corrupt_and_truncated_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    copy_metadata(&fixture("tiny-musicgen"), dir.path());
    let bytes = std::fs::read(fixture("tiny-musicgen/model.safetensors")).unwrap();
    let weights = dir.path().join("model.safetensors");
    for (what, data) in [
        ("truncated", &bytes[..bytes.len() / 2]),
        ("garbage", &b"<html>404 Not Found</html>"[..]),
    ] {
        std::fs::write(&weights, data).unwrap();
        let ckpt = Checkpoint::open(dir.path()).unwrap();
        let err = ckpt
            .var_builder(DType::F32, &Device::Cpu)
            .err()
            .expect(what);
        assert!(
            matches!(&err, EngineError::CorruptWeights { path, .. } if path == &weights),
            "{what}: {err}"
        );
        println!("{what}: {err}");
    }
}

/// A checkpoint whose file lacks a tensor, or has it with the wrong shape: the EnCodec loader
/// reports the full tensor name and both shapes.
#[test]
fn missing_tensor_and_wrong_shape() {
    let name = "audio_encoder.quantizer.layers.2.codebook.embed";
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixture("tiny-musicgen/model.safetensors"), &Device::Cpu)
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_metadata(&fixture("tiny-musicgen"), dir.path());
    let weights = dir.path().join("model.safetensors");

    let embed = tensors.remove(name).unwrap();
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
    let err = EncodecDecoder::new(&ckpt.config.audio_encoder, vb.pp("audio_encoder")).unwrap_err();
    assert!(
        matches!(&err, EngineError::MissingTensor { name: n, expected } if n == name && expected == &[2048, 16]),
        "{err}"
    );
    assert!(
        err.to_string().contains(name) && err.to_string().contains("[2048, 16]"),
        "{err}"
    );

    tensors.insert(
        name.to_string(),
        embed.narrow(1, 0, 8).unwrap().contiguous().unwrap(),
    );
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
    let err = EncodecDecoder::new(&ckpt.config.audio_encoder, vb.pp("audio_encoder")).unwrap_err();
    assert!(
        matches!(&err, EngineError::TensorShape { name: n, expected, actual } if n == name && expected == &[2048, 16] && actual == &[2048, 8]),
        "{err}"
    );
    // Through candle's own `get`, the message still names the tensor and both shapes.
    let msg = vb.get((2048, 16), name).unwrap_err().to_string();
    assert!(msg.contains(name) && msg.contains("[2048, 8]"), "{msg}");
}

/// A repo id resolves through a temporary HF cache (passed explicitly: env vars are
/// process-global and tests run in parallel) and opens like a folder.
#[test]
fn hf_cache_resolution() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--acme--tiny-musicgen-melody");
    let snap = repo.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    for entry in std::fs::read_dir(fixture("tiny-musicgen-melody")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), snap.join(entry.file_name())).unwrap();
    }
    let dir = resolve_in_cache(cache.path(), "acme/tiny-musicgen-melody").unwrap();
    assert_eq!(dir, snap);
    let ckpt = Checkpoint::open(&dir).unwrap();
    assert_eq!(ckpt.config.model_type, ModelType::MusicgenMelody);

    let err = resolve_in_cache(cache.path(), "acme/other").unwrap_err();
    assert!(
        matches!(&err, EngineError::ModelNotInCache { repo, looked_in } if repo == "acme/other" && looked_in == cache.path()),
        "{err}"
    );
}

/// The model builds from a checkpoint opened once (the checkpoint reads the tokenizer and maps
/// the weights), and it is the model `MusicGen::load` makes of the same folder.
#[test]
fn the_model_builds_from_an_opened_checkpoint() {
    use melodygen_engine::musicgen::{LoadOptions, MusicGen, Prompt};
    let ckpt = Checkpoint::open(&fixture("tiny-musicgen")).unwrap();
    let built = MusicGen::from_checkpoint(&ckpt, &Device::Cpu, &LoadOptions::default()).unwrap();
    let loaded = MusicGen::load(&ckpt.dir, &Device::Cpu, DType::F32).unwrap();
    let prompt = Prompt::Text("lofi beat".into());
    let ids = built.tokenize(&prompt).unwrap();
    assert_eq!(ids, ckpt.tokenizer().unwrap().encode("lofi beat", true).unwrap().get_ids());
    assert_eq!(ids, loaded.tokenize(&prompt).unwrap());
    let codes = vec![vec![1u32, 2, 3]; 4];
    assert_eq!(built.decode(&codes).unwrap().channels, loaded.decode(&codes).unwrap().channels);
}
