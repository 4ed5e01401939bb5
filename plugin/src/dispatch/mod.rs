//! The per-instance dispatcher: a small non-realtime thread that does everything the audio
//! thread must not. Every [`POLL_INTERVAL`] it
//!
//! - turns a new "Generate" request (a counter the audio thread or the editor bumps) into a job:
//!   copies the captured melody, reads the persisted settings, submits to the shared worker;
//! - forwards cancel requests;
//! - receives finished clips, records them in the project's clip list and hands them to the
//!   audio thread; frees the clips the audio thread sends back;
//! - reopens the newest clip from its file after a project load;
//! - has the playing clip converted again (by `worker::host_rate`, the one owner of that
//!   conversion) when the host's sample rate changed;
//! - carries out the library's commands from the editor (audition, rename, delete, undo,
//!   reveal, clip folder; see `crate::dispatch::library`) and publishes the current clip's waveform.
//!
//! It runs whether or not the editor is open, so automation alone can start a job.

pub mod current_clip;
pub mod disk_status;
pub mod library;
pub mod melody_preview;
mod partial_preview;
pub mod peaks;

use crate::dispatch::current_clip::{CurrentClip, Peaks, PEAK_BUCKETS};
use library::LibraryCommand;
use crate::params::MelodyGenParams;
use crate::audio::playback::{PlayableClip, PlayerRemote};
use crate::shared::SharedState;
use crate::worker::clip::{self, Clip};
use crate::worker::host_rate;
use melodygen_engine::record::{GenerationParams, JobSettings, Melody, MelodySource};
use crate::worker::job::{Job, JobError, WorkerToInstance};
use crate::worker::progress::Stage;
use crate::worker::Worker;
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use crate::worker::models::catch;
use std::sync::Arc;
use std::time::Duration;

/// How often the dispatcher looks for work. Bounds the latency of "Generate" and of clip
/// handoff; costs nothing measurable.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Owns the dispatcher thread. Dropping it asks the thread to stop and returns at once: the
/// thread notices within one [`POLL_INTERVAL`], cancels this instance's job, tells the worker
/// the instance is gone and ends on its own (the library stays loaded until it has, see
/// `crate::threads`). Nothing here ever waits for it on the host's thread.
pub struct Dispatcher {
    stop: Arc<AtomicBool>,
}

impl Dispatcher {
    /// Starts the thread, taking the clip rings out of `remote`. Not realtime-safe: call from
    /// `activate()`. When the thread cannot be started `remote` is left as it was, so a later
    /// activation can try again.
    pub fn start(
        params: Arc<MelodyGenParams>,
        shared: Arc<SharedState>,
        remote: &mut Option<PlayerRemote>,
    ) -> std::io::Result<Self> {
        Self::start_with(params, shared, remote, Worker::shared())
    }

    /// [`Dispatcher::start`] submitting to `worker` (tests give it a fake engine).
    pub fn start_with(
        params: Arc<MelodyGenParams>,
        shared: Arc<SharedState>,
        remote: &mut Option<PlayerRemote>,
        worker: Arc<Worker>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // Read before the thread starts: a request the audio thread raises right after
        // activation, before the new thread runs, must not be taken for an old one.
        let seen_generate = shared.generate_requests.load(Ordering::Relaxed);
        let seen_cancel = shared.cancel_requests.load(Ordering::Relaxed);
        // The rings go to the thread through this slot, so that they come back if it never starts.
        let rings = Arc::new(parking_lot::Mutex::new(remote.take()));
        let thread_rings = rings.clone();
        let spawned = crate::threads::spawn("melodygen-dispatch", move || {
            let Some(remote) = thread_rings.lock().take() else { return };
            let (tx, rx) = crossbeam_channel::unbounded();
            let library = shared.library.receiver();
            let mut state = State {
                params,
                seen_generate,
                seen_cancel,
                shared,
                remote,
                instance: crate::worker::job::new_instance_id(),
                worker,
                tx,
                rx,
                job: None,
                source: None,
                prepared_rate: 0,
                pending: None,
                partial: Default::default(),
                preview: Default::default(),
                library,
                clip_ids: 0,
                audition: false,
                disk: Default::default(),
            };
            while !flag.load(Ordering::Relaxed) {
                // A panic in one tick is reported and the next tick runs: the instance keeps
                // its passthrough (the audio thread is untouched), library and later jobs.
                if let Err(panic) = catch(|| state.tick()) {
                    state.shared.report_internal_error("doing this instance's background work", &panic);
                }
                std::thread::sleep(POLL_INTERVAL);
            }
            let _ = catch(|| state.cancel_job());
        });
        match spawned {
            Ok(_) => Ok(Self { stop }),
            Err(e) => {
                *remote = rings.lock().take();
                Err(e)
            }
        }
    }
}

impl Drop for Dispatcher {
    /// Asks the thread to stop; never waits for it (see the type's docs).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct State {
    params: Arc<MelodyGenParams>,
    shared: Arc<SharedState>,
    remote: PlayerRemote,
    /// This instance's id on its jobs (see `worker::job::new_instance_id`).
    instance: u64,
    worker: Arc<Worker>,
    tx: Sender<WorkerToInstance>,
    rx: Receiver<WorkerToInstance>,
    /// The job in flight: its id and cancel flag.
    job: Option<(u64, Arc<AtomicBool>)>,
    /// The current clip as generated or loaded from its file, kept to convert it again (from
    /// the original, not from an earlier conversion) when the host rate changes.
    source: Option<Clip>,
    /// Host rate of the version last prepared for the audio thread (0: none yet).
    prepared_rate: u32,
    /// A prepared clip the audio thread's ring had no room for; retried every tick, and
    /// replaced by anything newer.
    pending: Option<Box<PlayableClip>>,
    /// The clip being generated, previewed as it grows (see `crate::dispatch::partial_preview`).
    partial: crate::dispatch::partial_preview::PartialPreview,
    /// Commands from the editor's library panel.
    library: Receiver<LibraryCommand>,
    /// Last id given to a current clip (its `PlayableClip`s carry it, so the editor can tell
    /// which clip the audio thread holds).
    clip_ids: u64,
    /// Whether the current clip is an audition (played at once whatever the preview mode).
    audition: bool,
    /// Makes the melody view's preview of the capture (see `crate::dispatch::melody_preview`).
    preview: crate::dispatch::melody_preview::PreviewMaker,
    seen_generate: u64,
    seen_cancel: u64,
    /// Looks up the model folder and clip files for the editor (see `disk_status`).
    disk: disk_status::DiskRefresh,
}

impl Drop for State {
    /// The instance is gone: the worker may free the model its last job used.
    fn drop(&mut self) {
        self.worker.forget_instance(self.instance);
    }
}

impl State {
    fn tick(&mut self) {
        #[cfg(test)]
        if self.shared.planted_panic.swap(false, Ordering::Relaxed) {
            panic!("planted dispatcher panic");
        }
        let g = self.shared.generate_requests.load(Ordering::Relaxed);
        if g != self.seen_generate {
            self.seen_generate = g;
            if self.job.is_some() {
                self.shared
                    .set_message("Already generating: cancel first to start another.");
            } else {
                self.submit();
            }
        }
        let c = self.shared.cancel_requests.load(Ordering::Relaxed);
        if c != self.seen_cancel {
            self.seen_cancel = c;
            self.cancel_job();
        }
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                WorkerToInstance::Finished { job, result } => {
                    if self.job.as_ref().is_some_and(|(id, _)| *id == job) {
                        self.job = None;
                    }
                    self.partial.finished(job);
                    self.finished(result);
                }
                // The clip so far replaces what the audio thread plays (sent by `deliver`).
                WorkerToInstance::Partial { job, start, audio } => {
                    if let Some(prefix) = self.partial.push(job, start, &audio) {
                        self.pending = Some(prefix);
                    }
                }
            }
        }
        // Clips the audio thread replaced are freed here.
        while self.remote.from_audio.pop().is_ok() {}
        if self.params.clips.reloaded.swap(false, Ordering::Acquire) {
            self.reopen_newest();
        }
        while let Ok(command) = self.library.try_recv() {
            match command {
                LibraryCommand::Audition(path) => self.audition(&path),
                other => library::service::apply(other, &self.params, &self.shared),
            }
        }
        self.update_melody_preview();
        self.disk.refresh(&self.params, &self.shared);
        self.deliver();
        self.params
            .diagnostics
            .model_loads
            .store(self.worker.model_loads(), Ordering::Relaxed);
    }

    /// The settings for the next job. An unlocked seed is drawn afresh and written back to the
    /// project's settings, so the seed shown and saved is always the one the last clip used.
    fn next_settings(&self) -> GenerationParams {
        let mut settings = self.params.settings.write();
        if !settings.seed_locked {
            settings.seed = rand::random();
        }
        settings.clone()
    }

    fn submit(&mut self) {
        // No prompt, no job: say what to do instead of letting the engine reject it.
        let prompt = self.params.prompt.read().clone();
        if prompt.trim().is_empty() {
            self.shared.set_message("Type a prompt first: describe the music you want (genre, instruments, mood, tempo).");
            self.shared.progress.set_stage(Stage::Failed);
            return;
        }
        let settings = JobSettings {
            prompt,
            params: self.next_settings(),
        };
        let capture = self.shared.capture.lock().clone();
        let (melody, anchor) = match capture {
            Some(c) => {
                let snap = c.snapshot();
                (
                    snap.melody(settings.params.melody_source, c.sample_rate),
                    snap.anchor,
                )
            }
            None => (Melody::None, Default::default()),
        };
        // Silent audio is no melody (see `melody_preview::SILENCE_PEAK`): the prompt alone.
        let silent = matches!(&melody, Melody::Audio { samples, .. }
            if !samples.is_empty() && crate::dispatch::melody_preview::is_silent(samples));
        let melody = if silent { Melody::None } else { melody };
        // A melody recalled from a clip replaces the capture until the producer clears it
        // (the melody view says which); the melody source "none" still means text only.
        let recalled = self.params.recalled_melody.read().clone();
        let (melody, silent) = match recalled {
            Some(r) if settings.params.melody_source != MelodySource::None => (Melody::Recorded(r.record), false),
            _ => (melody, silent),
        };
        let time_sig = self.shared.time_signature();
        let seconds = settings.params.length.seconds(self.shared.tempo(), time_sig);
        let clip_dir = self
            .params
            .clip_dir
            .read()
            .clone()
            .unwrap_or_else(clip::default_clip_dir);
        let cancel = Arc::new(AtomicBool::new(false));
        let preview_partials = settings.params.preview_while_generating;
        let job = Job {
            id: 0,
            instance: self.instance,
            settings,
            melody,
            seconds,
            host_rate: self.shared.host_rate.clone(),
            anchor,
            clip_dir,
            cancel: cancel.clone(),
            progress: self.shared.progress.clone(),
            reply: self.tx.clone(),
        };
        self.shared.set_message(if silent { crate::dispatch::melody_preview::SILENT_MESSAGE } else { "" });
        let id = self.worker.submit(job);
        // The worker streams no pieces for a job that is not previewed; job 0 (never an id)
        // makes sure none would be taken.
        self.partial.start(if preview_partials { id } else { 0 }, &anchor);
        self.job = Some((id, cancel));
    }

    fn cancel_job(&mut self) {
        if let Some((id, flag)) = &self.job {
            flag.store(true, Ordering::Relaxed);
            self.worker.cancel(*id);
        }
    }

    /// Records a job's outcome. The counters are bumped last (with release ordering), so that
    /// whoever sees a count change also sees the clip or the error message it counts.
    fn finished(&mut self, result: Result<Clip, JobError>) {
        let diag = &self.params.diagnostics;
        match result {
            Ok(clip) => {
                self.params.clips.push(clip.meta.clone());
                self.shared
                    .set_message(&format!("Clip ready: {}", clip.meta.path.display()));
                self.play(clip, false);
                self.deliver();
                self.params
                    .diagnostics
                    .jobs_finished
                    .fetch_add(1, Ordering::Release);
            }
            Err(JobError::Cancelled) => {
                self.shared.set_message("Cancelled.");
                diag.jobs_cancelled.fetch_add(1, Ordering::Release);
            }
            Err(e) => {
                *diag.last_error.lock() = e.to_string();
                self.shared.set_message(&e.to_string());
                diag.jobs_failed.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Makes `clip` the current one and publishes its waveform; the next tick hands it to the
    /// audio thread.
    fn play(&mut self, clip: Clip, audition: bool) {
        self.clip_ids += 1;
        self.shared.set_current_clip(CurrentClip {
            id: self.clip_ids,
            meta: clip.meta.clone(),
            peaks: Arc::new(Peaks::compute(&clip.audio.channels, PEAK_BUCKETS)),
            audition,
        });
        self.source = Some(clip);
        self.audition = audition;
        self.prepared_rate = 0;
    }

    /// Plays a library clip from its file (converted to the host rate by `deliver`).
    fn audition(&mut self, path: &std::path::Path) {
        let loaded = match self.params.clips.find(path) {
            Some(meta) => Clip::load(&meta),
            None => Err("it is no longer in the library".into()),
        };
        match loaded {
            Ok(clip) => self.play(clip, true),
            Err(e) => self
                .shared
                .library
                .set_message(format!("Cannot play {}: {e}", path.display())),
        }
        *self.shared.library.loading.lock() = None;
    }

    /// Hands the current clip to the audio thread, converted to the host rate if it is not there
    /// yet; retries a full ring.
    fn deliver(&mut self) {
        let rate = self.shared.host_rate.load(Ordering::Relaxed);
        if self.source.is_some() && self.prepared_rate != rate {
            self.prepare(rate);
        }
        if let Some(clip) = self.pending.take() {
            if let Err(rtrb::PushError::Full(clip)) = self.remote.to_audio.push(clip) {
                self.pending = Some(clip);
            }
        }
    }

    /// Has the current clip converted to `rate` (from the original, never from an earlier
    /// conversion) and queues it for the audio thread.
    fn prepare(&mut self, rate: u32) {
        let Some(source) = &self.source else { return };
        match host_rate::convert(&source.audio, rate) {
            Ok(audio) => {
                let converted = Clip {
                    meta: source.meta.clone(),
                    audio,
                };
                let mut playable = PlayableClip::from_clip(&converted);
                playable.id = self.clip_ids;
                playable.audition = self.audition;
                playable.continues = self.partial.take_continue();
                self.pending = Some(playable);
                self.prepared_rate = rate;
            }
            Err(e) => {
                self.shared
                    .set_message(&format!("Cannot convert the clip to {rate} Hz: {e}"));
                self.source = None;
            }
        }
    }

    /// Publishes a fresh preview of the captured melody for the editor when one is due (only
    /// while the editor is open; throttled while a take grows).
    fn update_melody_preview(&mut self) {
        let capture = self.shared.capture.lock().clone();
        let source = self.params.settings.read().melody_source;
        let open = self.params.editor_state.is_open();
        self.preview.update(capture.as_ref(), source, open, &self.shared.melody_preview);
    }

    /// After a project load: reopen the newest clip from its file; a missing file is reported,
    /// not fatal.
    fn reopen_newest(&mut self) {
        let missing = self.params.clips.with(|clips| clips.iter().filter(|m| !m.path.exists()).count());
        self.params
            .diagnostics
            .clips_missing
            .store(missing as u64, Ordering::Relaxed);
        let Some(meta) = self.params.clips.newest() else {
            return;
        };
        match Clip::load(&meta) {
            Ok(clip) => {
                self.shared.progress.set_stage(Stage::Idle);
                self.play(clip, false);
            }
            Err(e) => self.shared.set_message(&format!("Clip file missing: {e}")),
        }
    }
}

impl SharedState {
    /// The host's tempo as last seen by the audio thread (for bar lengths), if it reports one.
    pub fn tempo(&self) -> Option<f64> {
        let tempo = f64::from_bits(self.tempo_bits.load(Ordering::Relaxed));
        (!tempo.is_nan()).then_some(tempo)
    }

    pub fn time_signature(&self) -> Option<(i32, i32)> {
        let (n, d) = (
            self.time_sig_num.load(Ordering::Relaxed),
            self.time_sig_den.load(Ordering::Relaxed),
        );
        (n > 0 && d > 0).then_some((n, d))
    }

    pub fn set_message(&self, m: &str) {
        let mut msg = self.message.lock();
        msg.clear();
        msg.push_str(m);
    }
}

#[cfg(test)]
mod tests;
