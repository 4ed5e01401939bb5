//! The scene of the drag-out tests (`plugin/tests/drag_x11.rs`): a private display with a window
//! manager (`display`), the GTK drop target (`drop_target`), the "plugin window" that starts the
//! drag and the windows beside it (`source_window`), and the clip file being dragged.

mod display;
mod drop_target;
mod source_window;

pub use display::{xdotool, Display};
pub use drop_target::{events_within, next_event, DropTarget};
pub use source_window::{press_and_drag, Harness};

use display::start_display;
use drop_target::start_drop_target;
use melodygen::drag::DragOptions;
use source_window::start_harness;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const TARGET_TITLE: &str = "MelodyGen drop target";

pub fn options(display: &str) -> DragOptions {
    DragOptions {
        x11_display: Some(display.to_string()),
        // Generous: the GTK target is a Python process sharing 2 loaded cores with builds.
        status_timeout: Duration::from_secs(5),
        finish_timeout: Duration::from_secs(10),
        max_duration: Duration::from_secs(30),
        ..DragOptions::default()
    }
}

/// A clip WAV like the plugin writes (stereo f32, 48 kHz, a path that needs URI encoding).
fn write_clip(dir: &Path) -> (PathBuf, Vec<f32>) {
    let path = dir.join("Klänge clip #1 (100%).wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let samples: Vec<f32> = (0..12_000)
        .flat_map(|n| {
            let t = n as f32 / 48_000.0;
            [
                0.5 * (std::f32::consts::TAU * 440.0 * t).sin(),
                0.25 * (std::f32::consts::TAU * 660.0 * t).sin(),
            ]
        })
        .collect();
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for s in &samples {
        writer.write_sample(*s).unwrap();
    }
    writer.finalize().unwrap();
    (path, samples)
}

pub struct Scene {
    pub display: Display,
    pub target: DropTarget,
    pub harness: Harness,
    pub clip: PathBuf,
    pub samples: Vec<f32>,
    _dir: tempfile::TempDir,
}

pub fn scene() -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let (clip, samples) = write_clip(dir.path());
    let display = start_display();
    let target = start_drop_target(&display);
    let harness = start_harness(&display, clip.clone());
    Scene {
        display,
        target,
        harness,
        clip,
        samples,
        _dir: dir,
    }
}
