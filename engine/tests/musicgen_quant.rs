//! The quantized CPU path against f32 on the tiny checkpoints: teacher-forced logits within the
//! error q8_0 rounding implies, greedy codes agreement, fallbacks for layers whose size does not
//! fit a format's blocks, and the errors a bad choice gives.
//!
//! The tiny decoders are 32 wide with a 64-wide feed-forward: every inner size fits q8_0's
//! 32-weight blocks and none fits q4k's 256, so q4k must fall back to q8_0 on every layer (the
//! q4k kernels themselves are checked at real sizes by the unit tests in
//! `engine/src/musicgen/qlinear.rs` and by scripts/bench.py).

#[path = "../../tests/support/fixtures.rs"]
mod common;

use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device, Tensor};
use common::fixtures;
use melodygen_engine::error::EngineError;
use melodygen_engine::musicgen::delay::DelayPattern;
use melodygen_engine::musicgen::teacher::teacher_forced_logits;
use melodygen_engine::musicgen::{GenerationRequest, LoadOptions, MusicGen, Prompt, Quant};

const PROMPT: &str = "90s rock song with loud guitars and heavy drums";
const STEPS: usize = 40;

fn load(name: &str, quant: Quant) -> MusicGen {
    MusicGen::load_with(&fixtures().join(name), &Device::Cpu, &LoadOptions { quant, ..Default::default() }).unwrap()
}

fn greedy_codes(model: &MusicGen, guidance: f32) -> Vec<Vec<u32>> {
    let req = GenerationRequest::greedy(Prompt::Text(PROMPT.into()), STEPS, guidance);
    let melody = melody();
    let melody = model.is_melody().then_some(melody.as_slice());
    model.generate(&req, melody, &mut |_| {}, &AtomicBool::new(false)).unwrap().codes
}

/// A one-hot chroma walking up the pitch classes (melody models).
fn melody() -> Vec<[f32; 12]> {
    (0..50)
        .map(|i| {
            let mut f = [0.0f32; 12];
            f[i % 12] = 1.0;
            f
        })
        .collect()
}

fn rms(t: &Tensor) -> f32 {
    t.sqr().unwrap().mean_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap()
}

/// Relative RMS error that q8_0 rounding implies for the logits of a decoder with `matmuls`
/// quantized matrix products on every path from the input to a logit.
///
/// One q8_0 product `y = Σ w·x` rounds each weight to a step `d_w = max|w| / 127` over its block
/// of 32, and candle rounds the activations the same way (q8_0 or q8k blocks, `d_x = max|x| /
/// 127`). Rounding errors are uniform, standard deviation `d / √12`, and independent, so the
/// error of `y` relative to its own size is about `(c_w + c_x) / (127·√12)`, where `c = max / rms`
/// is the crest factor of a block (≈ 2.5 for 32 Gaussian values, ≈ 3 for 256). Taking 3 for both
/// gives 1.4 % per product. Errors from independent products add in quadrature: `√matmuls` of
/// that. The bound is twice this estimate, leaving room for crest factors above 3 and for
/// LayerNorm and the softmax passing errors on unevenly; a kernel that reads a block wrong or
/// drops a scale gives errors of the order of the logits themselves (relative error ≈ 1).
fn q8_0_bound(matmuls: usize) -> f32 {
    let per_product = (3.0 + 3.0) / (127.0 * 12f32.sqrt());
    2.0 * (matmuls as f32).sqrt() * per_product
}

/// Quantized products a logit passes through: per layer q, k, v, out of self-attention, the
/// cross-attention's four (text models), fc1, fc2; then one LM head.
fn matmuls_on_path(model: &MusicGen) -> usize {
    let layers = model.config().decoder.num_hidden_layers;
    let per_layer = if model.is_melody() { 6 } else { 10 };
    layers * per_layer + 1
}

#[test]
fn q8_0_teacher_forced_logits_stay_within_the_rounding_bound() {
    for name in ["tiny-musicgen", "tiny-musicgen-stereo", "tiny-musicgen-melody"] {
        let f32_model = load(name, Quant::F32);
        let q8 = load(name, Quant::Q8_0);
        let report = q8.quant_report();
        assert_eq!((report.q8_0_layers, report.f32_layers, report.fallbacks.len()), (report.layers(), 0, 0), "{name}: {report}");
        let codes = greedy_codes(&f32_model, 1.0);
        let ids = f32_model.tokenize(&Prompt::Text(PROMPT.into())).unwrap();
        let melody = melody();
        let melody = f32_model.is_melody().then_some(melody.as_slice());
        let reference = teacher_forced_logits(&f32_model, &ids, melody, &codes, STEPS, 1.0).unwrap();
        let quantized = teacher_forced_logits(&q8, &ids, melody, &codes, STEPS, 1.0).unwrap();
        assert_eq!(reference.dims(), quantized.dims());
        // Teacher forcing itself is right: f32's own arg-max at every valid cell is its greedy code.
        let argmax: Vec<Vec<u32>> = reference.argmax(2).unwrap().to_dtype(DType::U32).unwrap().to_vec2().unwrap();
        let k = codes.len();
        let pattern = DelayPattern::for_new_tokens(k, f32_model.channels(), STEPS).unwrap();
        for (book, row) in codes.iter().enumerate() {
            let delay = pattern.delay(book);
            for (frame, &code) in row.iter().enumerate() {
                assert_eq!(argmax[delay + frame][book], code, "{name}: book {book} frame {frame}");
            }
        }
        let diff = (&quantized - &reference).unwrap();
        let rel = rms(&diff) / rms(&reference);
        let max = diff.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        let bound = q8_0_bound(matmuls_on_path(&q8));
        println!("{name} ({k} books): q8_0 teacher-forced logits, relative RMS error {rel:.4} (bound {bound:.4}), max abs {max:.4}, logit RMS {:.3}", rms(&reference));
        assert!(rel < bound, "{name}: relative error {rel} >= {bound}");
        assert!(rel > 1e-5, "{name}: q8_0 gave f32's logits exactly: nothing was quantized");
    }
}

/// Greedy decoding with guidance (the plugin's way), f32 against q8_0.
///
/// Free-running, one differing token changes the context of everything after it, so the codes
/// part ways at the first close call and the overall agreement mostly measures how soon that
/// happens: random tiny models have flat logits (top-2 gaps of a few hundredths are common), so
/// it is printed and held only above what a wrong kernel would give (chance is 1/2048 per
/// code). Teacher-forced (both models see f32's codes), each step's arg-max is compared on the
/// same context: a flip needs a top-2 gap below the logit error, so most must agree.
#[test]
fn q8_0_greedy_codes_mostly_agree_with_f32() {
    for name in ["tiny-musicgen", "tiny-musicgen-melody"] {
        let f32_model = load(name, Quant::F32);
        let q8 = load(name, Quant::Q8_0);
        let a = greedy_codes(&f32_model, 3.0);
        let b = greedy_codes(&q8, 3.0);
        let frames = a[0].len();
        let same_frame = |f: usize| a.iter().zip(&b).all(|(x, y)| x[f] == y[f]);
        let first_diff = (0..frames).find(|&f| !same_frame(f)).unwrap_or(frames);
        let equal = a.iter().flatten().zip(b.iter().flatten()).filter(|(x, y)| x == y).count();
        let total = a.iter().map(Vec::len).sum::<usize>();
        let free = equal as f64 / total as f64;

        let ids = f32_model.tokenize(&Prompt::Text(PROMPT.into())).unwrap();
        let melody = melody();
        let melody = f32_model.is_melody().then_some(melody.as_slice());
        let argmax = |m: &MusicGen| -> Vec<u32> {
            let l = teacher_forced_logits(m, &ids, melody, &a, STEPS, 3.0).unwrap();
            l.argmax(2).unwrap().to_dtype(DType::U32).unwrap().flatten_all().unwrap().to_vec1().unwrap()
        };
        let (x, y) = (argmax(&f32_model), argmax(&q8));
        let forced = x.iter().zip(&y).filter(|(p, q)| p == q).count() as f64 / x.len() as f64;
        println!(
            "{name}: q8_0 vs f32 greedy codes (guidance 3): free-running {free:.3} equal, {first_diff}/{frames} frames \
             before the first difference; teacher-forced arg-max {forced:.3} equal"
        );
        assert!(forced >= 0.9, "{name}: teacher-forced arg-max agreement {forced:.3}");
        assert!(free >= 0.25 && first_diff >= 1, "{name}: free-running agreement {free:.3}, first difference at {first_diff}");
    }
}

#[test]
fn q4k_falls_back_to_q8_0_on_unfit_layers_and_reports_each() {
    let q4 = load("tiny-musicgen", Quant::Q4K);
    let r = q4.quant_report().clone();
    let d = &q4.config().decoder;
    // Per layer 4 self-attention + 4 cross-attention projections, fc1, fc2; one head per book.
    let expected = d.num_hidden_layers * 10 + d.num_codebooks;
    assert_eq!((r.q4k_layers, r.q8_0_layers, r.f32_layers), (0, expected, 0), "{r}");
    assert_eq!(r.fallbacks.len(), expected);
    assert!(r.fallbacks.iter().all(|f| f.wanted == Quant::Q4K && f.got == Quant::Q8_0));
    assert!(r.fallbacks.iter().any(|f| f.name == "decoder.model.decoder.layers.1.fc2.weight" && f.shape == (32, 64)));
    assert!(r.fallbacks.iter().any(|f| f.name == "decoder.lm_heads.3.weight" && f.shape == (2048, 32)));
    let line = r.to_string();
    assert!(line.contains(&format!("{expected} fell back")) && line.contains("q4k -> q8_0"), "{line}");
    // The fallen-back layers are exactly q8_0 ones: same codes as a q8_0 load.
    assert_eq!(greedy_codes(&q4, 3.0), greedy_codes(&load("tiny-musicgen", Quant::Q8_0), 3.0));
}

#[test]
fn quantized_half_precision_and_unknown_names_are_clear_errors() {
    let e = MusicGen::load_with(
        &fixtures().join("tiny-musicgen"),
        &Device::Cpu,
        &LoadOptions { dtype: DType::F16, quant: Quant::Q8_0, ..Default::default() },
    )
    .err()
    .unwrap();
    assert!(matches!(e, EngineError::UnsupportedQuant { quant: Quant::Q8_0, .. }), "{e}");
    assert!(e.to_string().contains("f32 activations"), "{e}");

    let e: EngineError = "int4".parse::<Quant>().unwrap_err().into();
    assert_eq!(e.to_string(), "unknown quantization \"int4\": choose one of f32, q8_0 (8-bit), q4k (4-bit)");
}
