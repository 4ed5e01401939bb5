//! What the project saves besides parameters: the generation settings, the clip folder, the list
//! of clips (paths + metadata; the audio stays in the files) and a read-only diagnostics report.
//!
//! These are `#[persist]` fields of [`crate::params::MelodyGenParams`]. None of them is touched on
//! the audio thread.

use melodygen_engine::record::ClipMeta;
use crate::worker::progress::Progress;
use nice_plug::params::persist::PersistentField;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The project's clips, oldest first. Loading a project replaces the list and raises
/// [`ClipList::reloaded`], so the dispatcher reopens the newest clip from its file (no
/// regeneration).
#[derive(Default)]
pub struct ClipList {
    clips: RwLock<Vec<ClipMeta>>,
    pub reloaded: AtomicBool,
    /// Bumped by every change to the list, so the dispatcher can tell when to look at the clip
    /// files again (see `crate::dispatch::disk_status`).
    changes: AtomicU64,
}

impl ClipList {
    pub fn push(&self, meta: ClipMeta) {
        self.clips.write().push(meta);
        self.changed();
    }

    /// How many times the list has changed (any edit, or a project load).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    pub fn newest(&self) -> Option<ClipMeta> {
        self.clips.read().last().cloned()
    }

    /// Runs `f` on the clips (oldest first) under the read lock, without copying them. GUI and
    /// dispatcher threads only; the audio thread never touches the clip list.
    pub fn with<R>(&self, f: impl FnOnce(&[ClipMeta]) -> R) -> R {
        f(&self.clips.read())
    }

    /// The clip whose WAV is `path`, if listed.
    pub fn find(&self, path: &Path) -> Option<ClipMeta> {
        self.clips.read().iter().find(|m| m.path == path).cloned()
    }

    /// Edits the clip whose WAV is `path` in place; false when it is not listed. Library edits
    /// (rename) go through here, so the next state save carries them.
    pub fn update(&self, path: &Path, f: impl FnOnce(&mut ClipMeta)) -> bool {
        let mut clips = self.clips.write();
        let found = clips.iter_mut().find(|m| m.path == path).map(f).is_some();
        drop(clips);
        if found {
            self.changed();
        }
        found
    }

    /// Takes the clip whose WAV is `path` out of the list, with the index it had (for undo).
    pub fn remove(&self, path: &Path) -> Option<(usize, ClipMeta)> {
        let mut clips = self.clips.write();
        let index = clips.iter().position(|m| m.path == path)?;
        let removed = clips.remove(index);
        drop(clips);
        self.changed();
        Some((index, removed))
    }

    /// Puts a clip back at `index` (clamped to the end): undoing a removal.
    pub fn insert(&self, index: usize, meta: ClipMeta) {
        let mut clips = self.clips.write();
        let index = index.min(clips.len());
        clips.insert(index, meta);
        drop(clips);
        self.changed();
    }

    pub fn len(&self) -> usize {
        self.clips.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> PersistentField<'a, Vec<ClipMeta>> for ClipList {
    fn set(&self, new_value: Vec<ClipMeta>) {
        *self.clips.write() = new_value;
        self.changed();
        self.reloaded.store(true, Ordering::Release);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&Vec<ClipMeta>) -> R,
    {
        f(&self.clips.read())
    }
}

/// Counters the dispatcher keeps up to date, saved in the state as a read-only report. They are
/// how the host tests observe model sharing and job outcomes through an ordinary state save
/// (pedalboard's `raw_state`, CLAP's state extension); the same numbers are useful in a bug
/// report. Loading a state never changes them.
#[derive(Default)]
pub struct Diagnostics {
    /// Models the process-wide worker has loaded (not reused) so far.
    pub model_loads: AtomicU64,
    pub jobs_finished: AtomicU64,
    pub jobs_failed: AtomicU64,
    pub jobs_cancelled: AtomicU64,
    /// Clips of the project whose file could not be opened.
    pub clips_missing: AtomicU64,
    pub last_error: Mutex<String>,
    /// The instance's job progress (the same atomics the editor shows).
    pub progress: std::sync::Arc<Progress>,
}

/// The saved form of [`Diagnostics`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiagnosticsReport {
    pub model_loads: u64,
    pub jobs_finished: u64,
    pub jobs_failed: u64,
    pub jobs_cancelled: u64,
    pub clips_missing: u64,
    pub last_error: String,
    /// Stage of the current or last job ("Idle", "Generating", "Done", ...).
    pub stage: String,
    pub step: u32,
    pub total: u32,
}

impl Diagnostics {
    pub fn report(&self) -> DiagnosticsReport {
        let progress = self.progress.snapshot();
        DiagnosticsReport {
            model_loads: self.model_loads.load(Ordering::Relaxed),
            jobs_finished: self.jobs_finished.load(Ordering::Acquire),
            jobs_failed: self.jobs_failed.load(Ordering::Acquire),
            jobs_cancelled: self.jobs_cancelled.load(Ordering::Acquire),
            clips_missing: self.clips_missing.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
            stage: format!("{:?}", progress.stage),
            step: progress.step,
            total: progress.total,
        }
    }
}

impl<'a> PersistentField<'a, DiagnosticsReport> for Diagnostics {
    /// Read-only: a loaded project's report describes another session, so it is ignored.
    fn set(&self, _new_value: DiagnosticsReport) {}

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&DiagnosticsReport) -> R,
    {
        f(&self.report())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use melodygen_engine::record::CaptureAnchor;
    use melodygen_engine::record::JobSettings;

    /// A two-second clip at /clips/a.wav, as the worker records it.
    fn clip_meta() -> ClipMeta {
        ClipMeta {
            path: "/clips/a.wav".into(),
            settings: JobSettings::default(),
            model_dir: None,
            seconds: 2.0,
            sample_rate: 48_000,
            frames: 96_000,
            model_rate: 32_000,
            anchor: CaptureAnchor::default(),
            created: "2026-01-01T00:00:00Z".into(),
            melody: None,
        }
    }

    #[test]
    fn loading_a_clip_list_flags_a_reload_and_round_trips() {
        let list = ClipList::default();
        let meta = clip_meta();
        list.push(meta.clone());
        assert!(!list.reloaded.load(Ordering::Relaxed));
        let saved = list.map(|v| serde_json::to_string(v).unwrap());
        let other = ClipList::default();
        other.set(serde_json::from_str(&saved).unwrap());
        assert!(other.reloaded.load(Ordering::Relaxed));
        assert_eq!(other.newest(), Some(meta));
    }

    #[test]
    fn every_edit_of_the_clip_list_counts_as_a_change() {
        let list = ClipList::default();
        let mut meta = clip_meta();
        let mut last = list.changes();
        let mut changed = |what: &str| {
            let now = list.changes();
            assert!(now > last, "{what} did not count as a change");
            last = now;
        };
        list.push(meta.clone());
        changed("push");
        assert!(list.update(&meta.path, |m| m.path = "/clips/b.wav".into()));
        changed("update");
        meta.path = "/clips/b.wav".into();
        let (index, removed) = list.remove(&meta.path).unwrap();
        changed("remove");
        list.insert(index, removed);
        changed("insert");
        list.set(vec![meta]);
        changed("project load");
        let before = list.changes();
        assert!(!list.update(Path::new("/nowhere.wav"), |_| {}));
        assert_eq!(list.changes(), before, "a miss is no change");
    }

    #[test]
    fn diagnostics_ignore_loaded_values() {
        let d = Diagnostics::default();
        d.model_loads.store(1, Ordering::Relaxed);
        d.set(DiagnosticsReport {
            model_loads: 9,
            ..Default::default()
        });
        assert_eq!(d.map(|r| r.model_loads), 1);
    }

    /// The persisted fields as nice-plug hands them over when a host loads a project: random
    /// text, valid fields truncated or damaged, and fields written by older versions. Loading
    /// never panics; a field that does not parse is skipped (nice-plug logs its name) and the
    /// others still load.
    mod loading_any_text {
        use crate::params::MelodyGenParams;
        use melodygen_engine::record::Quant;
        use nice_plug::params::Params;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        const FIELDS: [&str; 6] = ["prompt", "settings", "recalled_melody", "clip_dir", "clips", "diagnostics"];

        /// The fields of a project with a clip, as a save writes them.
        fn saved() -> BTreeMap<String, String> {
            let params = MelodyGenParams::default();
            *params.prompt.write() = "lofi \"808\"".into();
            params.clips.push(serde_json::from_value(serde_json::json!({
                "path": "/clips/a.wav", "settings": {"prompt": "lofi", "seed": 3}, "model_dir": null,
                "seconds": 2.0, "sample_rate": 48000, "frames": 96000, "model_rate": 32000,
                "anchor": {"seconds": 0.0, "beats": null, "bar": null, "tempo": null},
                "created": "2026-01-01T00:00:00Z",
                "melody": {"source": "audio", "pitch_classes": "047", "frame_rate": 7.8125}
            })).unwrap());
            params.serialize_fields()
        }

        /// Reads back what the plugin reads after a load: all of it must still be usable.
        fn read_back(params: &MelodyGenParams) {
            let _ = params.settings.read().clone();
            params.clips.with(|c| c.iter().for_each(|m| { let _ = m.settings.request(m.seconds); }));
            let _ = params.serialize_fields();
        }

        /// Loads one field into `params`. A field that does not parse is skipped by the code
        /// nice-plug's derive generates, after logging "Could not deserialize '<field>'"; in a
        /// `cfg(test)` build of this crate that log is a debug assertion (nice-plug's
        /// `nice_debug_assert_failure!` checks `cfg!(test)` where it expands, here), so the
        /// panic is caught and must be exactly that one, naming the field. Any other panic is
        /// ours and fails the test. Returns whether the field was taken.
        fn load_field(params: &MelodyGenParams, key: &str, text: &str) -> bool {
            let fields = BTreeMap::from([(key.to_string(), text.to_string())]);
            let quiet = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| params.deserialize_fields(&fields)));
            std::panic::set_hook(quiet);
            match result {
                Ok(()) => true,
                Err(panic) => {
                    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                    assert!(message.contains(&format!("Could not deserialize '{key}'")), "panic while loading '{key}' from {text:?}: {message}");
                    false
                }
            }
        }

        fn load(fields: &BTreeMap<String, String>) -> MelodyGenParams {
            let params = MelodyGenParams::default();
            params.deserialize_fields(fields);
            read_back(&params);
            params
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn random_text_never_panics(
                texts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 6),
            ) {
                let params = MelodyGenParams::default();
                for (key, text) in FIELDS.iter().zip(&texts) {
                    load_field(&params, key, &String::from_utf8_lossy(text));
                }
                read_back(&params);
            }

            #[test]
            fn a_damaged_field_never_panics_and_leaves_the_rest(
                field in 0usize..6, cut in 0.0..1.0f64, flip in (0.0..1.0f64, any::<u8>()),
            ) {
                let good = saved();
                let params = load(&good);
                let key = FIELDS[field];
                let text = good.get(key).cloned().unwrap_or_default();
                let mut bytes = text.as_bytes()[..(text.len() as f64 * cut) as usize].to_vec();
                if !bytes.is_empty() {
                    let i = ((bytes.len() as f64 * flip.0) as usize).min(bytes.len() - 1);
                    bytes[i] = flip.1;
                }
                let taken = load_field(&params, key, &String::from_utf8_lossy(&bytes));
                read_back(&params);
                if key != "prompt" || !taken {
                    let prompt = params.prompt.read().clone();
                    prop_assert_eq!(prompt.as_str(), "lofi \"808\"");
                }
                if key != "clips" || !taken {
                    prop_assert_eq!(params.clips.len(), 1);
                }
            }
        }

        /// A project saved before the weight-format setting and the recorded melody existed.
        #[test]
        fn an_old_project_loads_with_its_defaults() {
            let mut fields = BTreeMap::new();
            fields.insert("settings".to_string(), r#"{"model":"m","length":{"seconds":4.0},"seed":5}"#.to_string());
            fields.insert("clips".to_string(), r#"[{"path":"/c/a.wav","settings":{"prompt":"x"},"model_dir":null,"seconds":4.0,"sample_rate":44100,"frames":176400,"model_rate":32000,"anchor":{"seconds":null,"beats":null,"bar":null,"tempo":null},"created":"2025-01-01T00:00:00Z"}]"#.to_string());
            let params = load(&fields);
            assert_eq!(params.settings.read().quant, Quant::F32);
            assert_eq!(params.settings.read().seed, 5);
            assert_eq!(params.clips.newest().unwrap().melody, None);
        }
    }
}
