//! The clip an instance plays now, as the dispatcher publishes it for the editor: its metadata
//! and its waveform already reduced to [`Peaks`] (when it becomes current, on the dispatcher
//! thread), so the editor draws a 1 s or a 30 s clip at the same cost and never reads a file.

pub use crate::dispatch::peaks::{Peaks, PEAK_BUCKETS};
use crate::shared::SharedState;
use melodygen_engine::record::ClipMeta;
use std::path::Path;
use std::sync::Arc;

/// The clip the instance plays now, as the dispatcher published it.
#[derive(Debug, Clone)]
pub struct CurrentClip {
    /// The id its [`crate::audio::playback::PlayableClip`]s carry; [`PlayState::clip_id`] equal to it
    /// means the audio thread holds this clip.
    pub id: u64,
    pub meta: ClipMeta,
    pub peaks: Arc<Peaks>,
    /// Made current by an audition (Play in the library) rather than by a generation or a load.
    pub audition: bool,
}

impl SharedState {
    /// The current clip, if any. GUI thread: a short lock that only guards a pointer swap.
    pub fn current_clip(&self) -> Option<Arc<CurrentClip>> {
        self.current_clip.lock().clone()
    }

    /// Publishes a new current clip. Dispatcher thread.
    pub fn set_current_clip(&self, clip: CurrentClip) {
        *self.current_clip.lock() = Some(Arc::new(clip));
    }

    /// Follows a rename of the current clip's file.
    pub fn update_current_clip(&self, old: &Path, new: &Path) {
        let mut current = self.current_clip.lock();
        if let Some(c) = current.as_ref().filter(|c| c.meta.path == old) {
            let mut renamed = CurrentClip::clone(c);
            renamed.meta.path = new.to_path_buf();
            *current = Some(Arc::new(renamed));
        }
    }

    /// Whether the clip at `path` is the one sounding now (for the library's Play/Stop).
    pub fn is_playing(&self, path: &Path) -> bool {
        self.current_clip().is_some_and(|c| {
            c.meta.path == path && self.playback.clip_id() == c.id && self.playback.playhead().is_some()
        })
    }
}
