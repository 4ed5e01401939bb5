//! Cancellation inside a model load and inside a decoder step (the first step's prefill), on the
//! tiny fixtures: a flag set by another thread part-way stops the work before it completes.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::Device;

use super::decoder::test_hook;
use super::{GenerationRequest, LoadOptions, MusicGen, Prompt, Quant, StreamConfig};
use crate::checkpoint::read_hook;
use crate::error::EngineError;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

/// Sets `flag` from another thread (and waits for it), as the plugin's dispatcher does.
fn cancel_from_another_thread(flag: &Arc<AtomicBool>) {
    let flag = flag.clone();
    std::thread::spawn(move || flag.store(true, Ordering::Relaxed)).join().unwrap();
}

#[test]
fn a_load_cancelled_before_it_starts_returns_cancelled() {
    let cancel = Arc::new(AtomicBool::new(true));
    let opts = LoadOptions { cancel: Some(cancel), ..LoadOptions::quant(Quant::Q8_0) };
    let got = MusicGen::load_with(&fixture("tiny-musicgen"), &Device::Cpu, &opts);
    assert!(matches!(got, Err(EngineError::Cancelled)), "{:?}", got.err());
}

/// The flag is set by another thread after 5 tensor reads; the load must stop at the next read,
/// long before the few dozen reads of a whole model.
#[test]
fn a_load_cancelled_part_way_stops_at_the_next_tensor() {
    let cancel = Arc::new(AtomicBool::new(false));
    let reads = Rc::new(Cell::new(0usize));
    let (r, c) = (reads.clone(), cancel.clone());
    read_hook::set(move || {
        r.set(r.get() + 1);
        if r.get() == 5 {
            cancel_from_another_thread(&c);
        }
    });
    let opts = LoadOptions { cancel: Some(cancel), ..LoadOptions::quant(Quant::Q8_0) };
    let got = MusicGen::load_with(&fixture("tiny-musicgen-melody"), &Device::Cpu, &opts);
    read_hook::clear();
    assert!(matches!(got, Err(EngineError::Cancelled)), "{:?}", got.err());
    assert_eq!(reads.get(), 5, "no tensor is read after the flag is set");

    // The same load without a flag reads many more tensors and succeeds.
    let all = Rc::new(Cell::new(0usize));
    let a = all.clone();
    read_hook::set(move || a.set(a.get() + 1));
    let ok = MusicGen::load_with(&fixture("tiny-musicgen-melody"), &Device::Cpu, &LoadOptions::quant(Quant::Q8_0));
    read_hook::clear();
    assert!(ok.is_ok());
    assert!(all.get() > 10, "{} reads", all.get());
}

/// The melody model's first step runs the conditioning prefix through every layer. The flag is
/// set by another thread after the first layer: the step must stop there (the second layer never
/// runs, no step completes), not at the next check between steps.
#[test]
fn a_generation_cancelled_during_the_first_step_stops_after_that_layer() {
    let model = MusicGen::load_with(&fixture("tiny-musicgen-melody"), &Device::Cpu, &LoadOptions::default()).unwrap();
    let layers = model.config().decoder.num_hidden_layers;
    assert!(layers >= 2, "the fixture needs two layers for this test");
    let req = GenerationRequest::greedy(Prompt::Text("a melody".into()), 20, 3.0);
    let melody = vec![[0.0f32; 12]; 40].into_iter().enumerate().map(|(i, mut f)| { f[i % 12] = 1.0; f }).collect::<Vec<_>>();

    let cancel = Arc::new(AtomicBool::new(false));
    let ran = Rc::new(Cell::new(0usize));
    let (r, c) = (ran.clone(), cancel.clone());
    test_hook::set(move |_layer| {
        r.set(r.get() + 1);
        if r.get() == 1 {
            cancel_from_another_thread(&c);
        }
    });
    let mut steps = 0;
    let got = model.generate_streaming(&req, Some(&melody), StreamConfig::default(), &mut |_| steps += 1, &mut |_| {}, &cancel);
    test_hook::clear();
    assert!(matches!(got, Err(EngineError::Cancelled)), "{:?}", got.err());
    assert_eq!(ran.get(), 1, "layers run after the flag was set");
    assert_eq!(steps, 0, "no step may complete");
}
