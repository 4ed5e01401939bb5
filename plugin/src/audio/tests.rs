//! Tests of [`AudioThread::process`] as a host drives it: a fake process context, real
//! parameters, real buffers.

use super::*;
use nice_plug::context::process::SendEventError;
use std::collections::VecDeque;

const RATE: f32 = 48_000.0;
const BLOCK: usize = 64;

/// What a host hands `process()`: its transport and the block's note events.
struct FakeContext {
    transport: Transport,
    events: VecDeque<PluginNoteEvent<MelodyGen>>,
}

impl FakeContext {
    fn new() -> Self {
        Self { transport: Transport::new(RATE), events: VecDeque::new() }
    }
}

impl ProcessContext<MelodyGen> for FakeContext {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute_background(&self, _task: ()) {}
    fn execute_gui(&self, _task: ()) {}
    fn transport(&self) -> &Transport {
        &self.transport
    }
    fn next_event(&mut self) -> Option<PluginNoteEvent<MelodyGen>> {
        self.events.pop_front()
    }
    fn try_send_event(
        &mut self,
        event: PluginNoteEvent<MelodyGen>,
    ) -> Result<(), (PluginNoteEvent<MelodyGen>, SendEventError)> {
        Err((event, SendEventError::NoOutputBuffer))
    }
    fn set_latency_samples(&self, _samples: u32) {}
    fn request_restart(&self) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// One instance's audio side, as `MelodyGen` holds it after `activate()`.
struct Instance {
    audio: AudioThread,
    params: MelodyGenParams,
    shared: SharedState,
}

impl Instance {
    fn new() -> Self {
        let (player, _remote) = playback::player();
        let mut audio = AudioThread::new(player);
        audio.set_capture(Arc::new(Capture::new(RATE as u32)));
        Self { audio, params: MelodyGenParams::default(), shared: SharedState::default() }
    }

    /// Sets a parameter the way the wrapper does before it calls `process()`.
    fn set(&self, param: &impl Param, normalized: f32) {
        // SAFETY: the pointer points into `self.params`, alive for the call.
        unsafe { param.as_ptr()._internal_set_normalized_value(normalized) };
    }

    /// Processes one stereo block of `input`; returns the output.
    fn block(&mut self, input: f32) -> [Vec<f32>; 2] {
        let mut channels = [vec![input; BLOCK], vec![input; BLOCK]];
        {
            let [left, right] = &mut channels;
            let mut buffer = Buffer::default();
            // SAFETY: both slices outlive `buffer` and are BLOCK long.
            unsafe {
                buffer.set_slices(BLOCK, |slices| {
                    slices.clear();
                    slices.push(left.as_mut_slice());
                    slices.push(right.as_mut_slice());
                })
            };
            self.audio.process(&self.params, &self.shared, &mut buffer, &mut FakeContext::new());
        }
        channels
    }

    fn requests(&self) -> (u64, u64) {
        (
            self.shared.generate_requests.load(Ordering::Relaxed),
            self.shared.cancel_requests.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn a_trigger_that_is_on_when_processing_starts_is_no_press() {
    let mut p = Instance::new();
    // A project saved with both triggers on: activation, reset, blocks.
    p.set(&p.params.generate, 1.0);
    p.set(&p.params.cancel, 1.0);
    p.audio.reset(&p.params);
    for _ in 0..4 {
        p.block(0.0);
    }
    assert_eq!(p.requests(), (0, 0), "a saved or restored 'on' started something");
    // The host restarts processing (or calls reset()) with them still on: nothing either.
    p.audio.reset(&p.params);
    p.block(0.0);
    assert_eq!(p.requests(), (0, 0));
    // A real press during processing: one request each.
    p.set(&p.params.generate, 0.0);
    p.set(&p.params.cancel, 0.0);
    p.block(0.0);
    p.set(&p.params.generate, 1.0);
    p.block(0.0);
    p.block(0.0);
    assert_eq!(p.requests(), (1, 0));
    p.set(&p.params.cancel, 1.0);
    p.block(0.0);
    assert_eq!(p.requests(), (1, 1));
    // Reset while pressed, then released and pressed again: one more.
    p.audio.reset(&p.params);
    p.block(0.0);
    p.set(&p.params.generate, 0.0);
    p.block(0.0);
    p.set(&p.params.generate, 1.0);
    p.block(0.0);
    assert_eq!(p.requests(), (2, 1));
}

#[test]
fn a_press_in_the_first_block_after_a_reset_counts() {
    // Automation that switches Generate on at the first sample after the host starts
    // processing: the wrapper applies it after reset() and before process().
    let mut p = Instance::new();
    p.audio.reset(&p.params);
    p.set(&p.params.generate, 1.0);
    p.block(0.0);
    assert_eq!(p.requests(), (1, 0));
}

#[test]
fn denormal_input_is_flushed_inside_process_and_only_there() {
    let mut p = Instance::new();
    p.audio.reset(&p.params);
    // Dry level -6 dB, settled, so every input sample is multiplied.
    p.set(&p.params.dry_level, p.params.dry_level.preview_normalized(0.5));
    p.params.dry_level.smoothed.reset(0.5);
    let tiny = f32::MIN_POSITIVE / 8.0;
    assert!(tiny.is_subnormal());
    let out = p.block(tiny);
    assert!(
        out.iter().flatten().all(|&s| s == 0.0),
        "a subnormal input × gain must come out as 0 (flush-to-zero / denormals-are-zero), got {:?}",
        &out[0][..4]
    );
    // A normal input is untouched by the flags.
    let out = p.block(0.25);
    assert!(out.iter().flatten().all(|&s| s == 0.125), "{:?}", &out[0][..4]);
    // The flags are the host's again after process(): subnormals exist out here.
    let half = std::hint::black_box(f32::MIN_POSITIVE) * std::hint::black_box(0.5);
    assert!(half.is_subnormal(), "process() left flush-to-zero set on the caller's thread");
}
