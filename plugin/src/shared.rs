//! What one instance's threads share: the audio thread, its dispatcher and its editor each
//! hold an `Arc<SharedState>`. The audio thread only touches the atomics (and the `Arc`s it was
//! handed in `activate()`); the locks guard pointer swaps and short copies between the two
//! non-realtime threads.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};
use std::sync::Arc;

/// State shared between the audio thread, the editor and the dispatcher. The audio thread only
/// touches the atomics; the locks are for the non-realtime threads.
pub struct SharedState {
    /// How many generation requests were raised (rising edges of the "Generate" parameter seen
    /// by the audio thread, or presses of the editor's button). The dispatcher compares against
    /// the last value it handled.
    pub generate_requests: AtomicU64,
    /// Like `generate_requests`, for cancelling the instance's job.
    pub cancel_requests: AtomicU64,
    /// Progress of this instance's job, written by the worker.
    pub progress: Arc<crate::worker::progress::Progress>,
    /// The host's sample rate, set in `activate()`; shared with the job so a rate change while it
    /// runs is honoured.
    pub host_rate: Arc<AtomicU32>,
    /// Host tempo as `f64` bits (NaN: unknown) and time signature (0: unknown), written by the
    /// audio thread, for clip lengths in bars.
    pub tempo_bits: AtomicU64,
    pub time_sig_num: AtomicI32,
    pub time_sig_den: AtomicI32,
    /// The capture buffers of the current activation (replaced when the rate changes).
    pub capture: parking_lot::Mutex<Option<Arc<crate::audio::capture::Capture>>>,
    /// Status or error line for the editor.
    pub message: parking_lot::Mutex<String>,
    /// The captured melody's preview for the editor's melody view, made off the GUI thread by
    /// the dispatcher (see `melody_preview`).
    pub melody_preview: crate::dispatch::melody_preview::PreviewSlot,
    /// Play / Stop / seek and the playhead, shared with the audio thread's player.
    pub playback: Arc<crate::audio::playback::PlayState>,
    /// The clip the instance plays now, with its waveform (published by the dispatcher).
    pub current_clip: parking_lot::Mutex<Option<Arc<crate::dispatch::current_clip::CurrentClip>>>,
    /// The library's commands (editor → dispatcher), undo list and messages.
    pub library: crate::dispatch::library::LibraryShared,
    /// File states the dispatcher looks up for the editor (model folder, clip files), so the
    /// editor never touches the disk per frame (see `crate::dispatch::disk_status`).
    pub disk: crate::dispatch::disk_status::DiskStatus,
    /// Keeps model downloads running while this instance exists (see `worker::download`). Never
    /// read: it works through its `Drop`, which lets the last instance stop the downloads.
    #[allow(dead_code)]
    pub downloads: crate::worker::download::InstanceRegistration,
    /// Makes the dispatcher's next tick panic (the panic-recovery tests).
    #[cfg(test)]
    pub planted_panic: std::sync::atomic::AtomicBool,
}

impl SharedState {
    /// Reports a panic caught on one of this instance's threads: the window's status line says,
    /// in plain words, what MelodyGen was doing and that nothing is lost
    /// ([`crate::worker::job::internal_error_message`], the words the worker uses too); the
    /// details also go to stderr, where hosts keep plugin logs.
    pub fn report_internal_error(&self, during: &str, detail: &str) {
        eprintln!("MelodyGen: internal error while {during}: {detail}");
        let message = crate::worker::job::internal_error_message(during, detail);
        let mut msg = self.message.lock();
        msg.clear();
        msg.push_str(&message);
    }
}

impl Default for SharedState {
    fn default() -> Self {
        Self {
            generate_requests: AtomicU64::new(0),
            cancel_requests: AtomicU64::new(0),
            progress: Arc::default(),
            host_rate: Arc::new(AtomicU32::new(0)),
            tempo_bits: AtomicU64::new(f64::NAN.to_bits()),
            time_sig_num: AtomicI32::new(0),
            time_sig_den: AtomicI32::new(0),
            capture: parking_lot::Mutex::new(None),
            message: parking_lot::Mutex::new(String::new()),
            melody_preview: Default::default(),
            playback: Arc::default(),
            current_clip: parking_lot::Mutex::new(None),
            library: Default::default(),
            disk: Default::default(),
            downloads: Default::default(),
            #[cfg(test)]
            planted_panic: Default::default(),
        }
    }
}
