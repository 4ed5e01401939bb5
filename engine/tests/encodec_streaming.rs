//! Streaming decode (audio while generating) against the references: transformers' audio for
//! its own generated codes, and our one-shot decode (itself checked against transformers in
//! encodec_parity.rs). Also: the frames the generation calls complete really are final, and
//! the streaming facade gives the same clip as `MusicGen::generate`.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use melodygen_engine::checkpoint::Checkpoint;
use melodygen_engine::encodec::{EncodecDecoder, EncodecStream};
use melodygen_engine::error::EngineError;
use melodygen_engine::musicgen::{
    AudioChunk, GenerationRequest, MusicGen, Prompt, SamplingConfig, StreamConfig, StreamingDecoder,
};
use melodygen_engine::wav::Audio;

#[path = "../../tests/support/fixtures.rs"]
mod common;
use common::{fixtures, max_abs_diff};

/// Same tolerance as the one-shot parity tests against transformers.
const TRANSFORMERS_TOL: f32 = 1e-5;
/// Streaming against our own one-shot decode: the same sums, in differently shaped products.
const ONE_SHOT_TOL: f32 = 1e-6;
/// Small chunks, so the tiny clips (17 frames) stream in several pieces.
const SMALL: StreamConfig = StreamConfig { first_chunk_frames: 2, chunk_frames: 3 };

fn model(name: &str) -> MusicGen {
    MusicGen::load(&fixtures().join(name), &Device::Cpu, DType::F32).unwrap()
}

fn audio_tensor(a: &Audio) -> Tensor {
    Tensor::from_vec(a.channels.concat(), (a.channels.len(), a.frames()), &Device::Cpu).unwrap()
}

fn max_diff(a: &Audio, b: &Audio) -> f32 {
    max_abs_diff(&audio_tensor(a), &audio_tensor(b))
}

/// Concatenates chunks, checking they come in order without gaps and only the last is last.
fn concat(chunks: &[AudioChunk], rate: u32) -> Audio {
    let channels = chunks[0].audio.channels.len();
    let mut out = vec![Vec::new(); channels];
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.start, out[0].len(), "chunk {i} starts where the previous ended");
        assert_eq!(c.last, i + 1 == chunks.len(), "only the final chunk is last");
        for (o, n) in out.iter_mut().zip(&c.audio.channels) {
            o.extend_from_slice(n);
        }
    }
    Audio { sample_rate: rate, channels: out }
}

/// transformers' generated codes, pushed one frame at a time, decode to transformers' audio.
#[test]
fn streamed_transformers_codes_give_transformers_audio() {
    for (name, codes_ref, audio_ref) in [
        ("tiny-musicgen", "greedy_codes_cfg", "greedy_audio_cfg"),
        ("tiny-musicgen-stereo", "greedy_codes_cfg", "greedy_audio_cfg"),
        ("tiny-musicgen-melody", "melody_codes_chroma", "melody_audio_chroma"),
    ] {
        let m = model(name);
        let refs = candle_core::safetensors::load(fixtures().join(format!("refs/{name}.safetensors")), &Device::Cpu).unwrap();
        let codes: Vec<Vec<u32>> = refs[codes_ref].to_dtype(DType::U32).unwrap().to_vec2().unwrap();
        let frames = codes[0].len();
        let mut dec = StreamingDecoder::new(&m, SMALL).unwrap();
        let mut chunks = Vec::new();
        for f in 0..frames {
            let frame: Vec<Vec<u32>> = codes.iter().map(|r| vec![r[f]]).collect();
            chunks.extend(dec.push(&frame).unwrap());
        }
        let streamed_before_end = chunks.len();
        chunks.push(dec.finish().unwrap());
        assert!(streamed_before_end >= 3, "{name}: only {streamed_before_end} chunks before the end");
        let streamed = concat(&chunks, m.sample_rate());
        let theirs = &refs[audio_ref];
        let theirs = theirs.reshape((streamed.channels.len(), ())).unwrap();
        let d_tf = max_abs_diff(&audio_tensor(&streamed), &theirs);
        let d_one = max_diff(&streamed, &m.decode(&codes).unwrap());
        println!("{name}: streamed vs transformers {d_tf:e}, vs our one-shot {d_one:e} ({} chunks)", chunks.len());
        assert!(d_tf <= TRANSFORMERS_TOL, "{name}: {d_tf} from transformers");
        assert!(d_one <= ONE_SHOT_TOL, "{name}: {d_one} from the one-shot decode");
    }
}

/// `generate_streaming` gives the clip `generate` gives (greedy: same codes), with audio
/// delivered while steps remain, for mono with guidance, stereo and melody.
#[test]
fn streaming_generation_matches_one_shot_generation() {
    let cancel = AtomicBool::new(false);
    for (name, guidance) in [("tiny-musicgen", 3.0), ("tiny-musicgen-stereo", 1.0), ("tiny-musicgen-melody", 3.0)] {
        let m = model(name);
        let req = GenerationRequest::greedy(Prompt::Text("lo-fi piano".into()), 40, guidance);
        let chroma: Vec<[f32; 12]> = (0..20).map(|i| std::array::from_fn(|c| (c == i % 12) as u8 as f32)).collect();
        let melody = m.is_melody().then_some(&chroma[..]);
        let one_shot = m.generate(&req, melody, &mut |_| {}, &cancel).unwrap();
        let step = std::cell::Cell::new(0);
        let mut arrivals = Vec::new();
        let mut chunks = Vec::new();
        let streamed = m
            .generate_streaming(&req, melody, SMALL, &mut |p| step.set(p.step), &mut |c| {
                arrivals.push(step.get());
                chunks.push(c.clone());
            }, &cancel)
            .unwrap();
        assert_eq!(streamed.codes, one_shot.codes, "{name}: codes");
        assert_eq!(concat(&chunks, m.sample_rate()), streamed.audio, "{name}: result = the chunks");
        let d = max_diff(&streamed.audio, &one_shot.audio);
        println!("{name}: streaming vs one-shot generation audio {d:e}; chunks after steps {arrivals:?}");
        assert!(d <= ONE_SHOT_TOL, "{name}: {d}");
        // Kc = 4: first chunk (2 frames) + context 3 + look-ahead 3 = 8 frames → after step 11.
        assert_eq!(arrivals[0], 11, "{name}: first audio after step {}", arrivals[0]);
        assert!(arrivals.iter().filter(|&&s| s < 40).count() >= 5, "{name}: {arrivals:?}");
    }
}

/// What `complete_frames` calls complete never changes afterwards (sampling, so every step
/// draws new tokens).
#[test]
fn complete_frames_are_final() {
    let m = model("tiny-musicgen");
    let ids = m.tokenize(&Prompt::Text("drums".into())).unwrap();
    let sampling = SamplingConfig { top_k: 250, top_p: 0.0, temperature: 1.0, greedy: false };
    let mut state = m.start(&[ids], &[None], 30, sampling, 7, 3.0).unwrap();
    let mut seen = Vec::new();
    while !state.is_done() {
        state.step().unwrap();
        let n = state.complete_frames();
        seen.push((n, state.frame_codes(0, 0..n)));
    }
    let last = state.codes().pop().unwrap();
    assert_eq!(seen.last().unwrap().0, last[0].len(), "all frames complete at the end");
    assert_eq!(seen[2].0, 0, "nothing complete before step Kc");
    assert_eq!(seen[3].0, 1, "frame 0 complete after step Kc = 4");
    for (n, codes) in seen {
        let prefix: Vec<Vec<u32>> = last.iter().map(|r| r[..n].to_vec()).collect();
        assert_eq!(codes, prefix, "{n} frames reported complete");
    }
}

/// Cancelling from the chunk callback stops the generation with the typed error.
#[test]
fn cancel_stops_a_streaming_generation() {
    let m = model("tiny-musicgen");
    let req = GenerationRequest { max_new_tokens: 60, ..GenerationRequest::new(Prompt::Text("x".into()), 1) };
    let cancel = AtomicBool::new(false);
    let mut chunks = 0;
    let steps = std::cell::Cell::new(0);
    let r = m.generate_streaming(&req, None, SMALL, &mut |p| steps.set(p.step), &mut |_| {
        chunks += 1;
        cancel.store(true, Ordering::Relaxed);
    }, &cancel);
    assert!(matches!(r, Err(EngineError::Cancelled)), "{:?}", r.err());
    assert_eq!((chunks, steps.get()), (1, 11), "stopped right after the first chunk");
}

/// Real-size EnCodec (random weights made by `scripts/bench.py` in target/bench-models):
/// 10 s of random codes, streamed frame by frame with the default chunking, against the
/// one-shot decode; prints the difference and both decode times. Needs those weights (another
/// folder through `MELODYGEN_BENCH_MODELS`), so run by hand: `cargo test -p melodygen --test encodec_streaming -- --ignored --nocapture`.
#[test]
#[ignore = "needs target/bench-models (scripts/bench.py makes them)"]
fn real_size_streaming_matches_one_shot() {
    let dir = std::env::var_os("MELODYGEN_BENCH_MODELS")
        .map_or_else(|| fixtures().join("../../target/bench-models"), Into::into)
        .join("musicgen-small-random");
    let ckpt = Checkpoint::open(&dir).unwrap();
    let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
    let dec = EncodecDecoder::new(&ckpt.config.audio_encoder, vb.pp("audio_encoder")).unwrap();
    let frames = 500;
    let codes: Vec<Vec<u32>> = (0..4u32).map(|q| (0..frames as u32).map(|f| (f * 7919 + q * 104_729) % 2048).collect()).collect();
    let t = Instant::now();
    let flat: Vec<u32> = codes.iter().flatten().copied().collect();
    let one_shot: Vec<f32> =
        dec.decode(&Tensor::from_vec(flat, (1, 4, frames), &Device::Cpu).unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let one_shot_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut s = EncodecStream::new(&dec, 4, StreamConfig::default()).unwrap();
    let mut out = Vec::new();
    let mut first = None;
    for f in 0..frames {
        let frame: Vec<Vec<u32>> = codes.iter().map(|r| vec![r[f]]).collect();
        let a = s.push(&frame).unwrap();
        if first.is_none() && !a.is_empty() {
            first = Some((f + 1, t.elapsed().as_secs_f64()));
        }
        out.extend(a);
    }
    out.extend(s.finish().unwrap());
    let stream_s = t.elapsed().as_secs_f64();
    let d = out.iter().zip(&one_shot).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let peak = one_shot.iter().fold(0f32, |m, v| m.max(v.abs()));
    println!(
        "real-size 10 s: streamed vs one-shot max |diff| {d:e} (peak {peak:.3}); one-shot decode {one_shot_s:.2} s, \
         streamed total {stream_s:.2} s; first chunk after {:?} (frames known, seconds)",
        first
    );
    assert_eq!(out.len(), one_shot.len());
    assert!(d <= ONE_SHOT_TOL * peak.max(1.0), "{d}");
}
