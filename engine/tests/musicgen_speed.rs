//! Decoder speed at real sizes (random weights, no checkpoint needed). Ignored by default:
//! `cargo test --release -p melodygen --test musicgen_speed -- --ignored --nocapture`.
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use melodygen_engine::checkpoint::DecoderConfig;
use melodygen_engine::musicgen::conditioning::Conditioning;
use melodygen_engine::musicgen::decoder::Decoder;
use melodygen_engine::musicgen::{GenerationState, SamplingConfig};

fn steps_per_second(cfg_json: &str, steps: usize) -> f64 {
    let cfg: DecoderConfig = serde_json::from_str(cfg_json).unwrap();
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let decoder = Decoder::new(&cfg, true, vb.pp("decoder")).unwrap();
    let states = Tensor::randn(0f32, 1.0, (2, 12, cfg.hidden_size), &Device::Cpu).unwrap();
    let cond = Conditioning::CrossAttention { states, valid: vec![12, 0] };
    let sampling = SamplingConfig { top_k: 250, top_p: 0.0, temperature: 1.0, greedy: false };
    let mut state = GenerationState::new(&decoder, cond, 1, steps, sampling, 0, 3.0).unwrap();
    let start = Instant::now();
    state.run(&mut |_| {}, &AtomicBool::new(false)).unwrap();
    steps as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore]
fn musicgen_small_decoder_speed() {
    let sps = steps_per_second("{}", 100);
    println!("musicgen-small-sized decoder, CFG batch of 2, CPU f32: {sps:.1} steps/s (50 steps = 1 s of audio)");
}
