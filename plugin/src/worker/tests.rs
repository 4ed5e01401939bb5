//! The worker against a fake engine: queueing across instances, cancellation, panics, partial
//! audio, host rate changes and shutdown.

use melodygen_engine::record::{GenerationParams, JobSettings, Melody};
use super::models::fake::FakeBackend;
use super::progress::Progress;
use super::*;
use super::clip::{self, Clip};
use std::time::{Duration, Instant};
use melodygen_engine::wav::Audio;
use crossbeam_channel::Receiver;
use std::sync::atomic::AtomicU32;

struct TestInstance {
    instance: u64,
    progress: Arc<Progress>,
    cancel: Arc<AtomicBool>,
    rate: Arc<AtomicU32>,
    rx: Receiver<WorkerToInstance>,
    tx: crossbeam_channel::Sender<WorkerToInstance>,
}

impl TestInstance {
    fn new(rate: u32) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self {
            instance: job::new_instance_id(),
            progress: Arc::default(),
            cancel: Arc::default(),
            rate: Arc::new(AtomicU32::new(rate)),
            rx,
            tx,
        }
    }
    fn job(&self, model: &str, prompt: &str, seconds: f32) -> Job {
        Job {
            id: 0,
            instance: self.instance,
            settings: JobSettings {
                prompt: prompt.into(),
                params: GenerationParams {
                    model: model.into(),
                    ..Default::default()
                },
            },
            melody: Melody::None,
            seconds,
            host_rate: self.rate.clone(),
            anchor: Default::default(),
            clip_dir: std::env::temp_dir()
                .join(format!("melodygen-worker-test-{}", std::process::id())),
            cancel: self.cancel.clone(),
            progress: self.progress.clone(),
            reply: self.tx.clone(),
        }
    }
    fn wait(&self) -> (u64, Result<Clip, JobError>) {
        let (job, result, _) = self.wait_with_partials();
        (job, result)
    }
    /// The job's reply and the partial pieces that came before it.
    fn wait_with_partials(&self) -> (u64, Result<Clip, JobError>, Vec<(u64, Audio)>) {
        let mut partials = Vec::new();
        loop {
            match self
                .rx
                .recv_timeout(Duration::from_secs(20))
                .expect("no reply within 20 s")
            {
                WorkerToInstance::Finished { job, result } => return (job, result, partials),
                WorkerToInstance::Partial { start, audio, .. } => partials.push((start, audio)),
            }
        }
    }
}

fn worker(step_ms: u64) -> Arc<Worker> {
    worker_and_backend(step_ms).0
}

/// A private worker over a fake engine, and that engine (to see which models are in memory).
fn worker_and_backend(step_ms: u64) -> (Arc<Worker>, Arc<FakeBackend>) {
    let backend = Arc::new(FakeBackend::new(Duration::from_millis(step_ms)));
    (Worker::with_backend(backend.clone()), backend)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn jobs_from_several_instances_run_in_order_and_share_the_model() {
    let w = worker(2);
    assert!(
        !w.is_running(),
        "the thread starts with the first job, not before"
    );
    let a = TestInstance::new(44_100);
    let b = TestInstance::new(48_000);
    let c = TestInstance::new(48_000);
    let ja = w.submit(a.job("tiny", "a", 0.3));
    let jb = w.submit(b.job("tiny", "b", 0.1));
    let jc = w.submit(c.job("tiny-stereo", "c", 0.1));
    // While a runs, b and c wait at positions 1 and 2.
    wait_for("a to generate", || a.progress.stage() == Stage::Generating);
    let (sb, sc) = (b.progress.snapshot(), c.progress.snapshot());
    assert_eq!(
        (sb.stage, sb.queue_position, sc.stage, sc.queue_position),
        (Stage::Queued, 1, Stage::Queued, 2)
    );

    let (id, clip_a) = a.wait();
    let clip_a = clip_a.unwrap();
    assert_eq!(
        (id, clip_a.audio.sample_rate, clip_a.audio.frames()),
        (ja, 44_100, 13_230)
    );
    assert_eq!(clip_a.audio.channels.len(), 2);
    assert_eq!(
        clip_a.audio.channels[0], clip_a.audio.channels[1],
        "mono model → same signal on both sides"
    );
    let (id, clip_b) = b.wait();
    assert_eq!((id, clip_b.unwrap().meta.frames), (jb, 4_800));
    let (id, clip_c) = c.wait();
    assert_eq!(id, jc);
    assert!(clip_c.unwrap().meta.path.exists());
    assert_eq!(
        w.model_loads(),
        2,
        "tiny loaded once for a and b, tiny-stereo once"
    );
    assert_eq!((a.progress.stage(), w.queued()), (Stage::Done, 0));
    let s = a.progress.snapshot();
    assert!(
        s.step == s.total && s.total == 30 && s.steps_per_sec > 0.0,
        "{s:?}"
    );
}

#[test]
fn cancelling_stops_running_and_queued_jobs_and_the_worker_goes_on() {
    let w = worker(5);
    let a = TestInstance::new(48_000);
    let b = TestInstance::new(48_000);
    let c = TestInstance::new(48_000);
    w.submit(a.job("tiny", "long", 60.0));
    let jb = w.submit(b.job("tiny", "queued", 60.0));
    w.submit(c.job("tiny", "short", 0.05));
    wait_for("a to start", || a.progress.snapshot().step > 2);
    let t = Instant::now();
    w.cancel(jb);
    assert_eq!(b.wait().1.unwrap_err(), JobError::Cancelled);
    assert_eq!(
        c.progress.snapshot().queue_position,
        1,
        "c moves up when b leaves"
    );
    a.cancel.store(true, Ordering::Relaxed);
    assert_eq!(a.wait().1.unwrap_err(), JobError::Cancelled);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "cancel took {:?}",
        t.elapsed()
    );
    assert_eq!(a.progress.stage(), Stage::Cancelled);
    assert!(c.wait().1.is_ok());
}

#[test]
fn engine_panics_and_bad_models_become_messages() {
    let w = worker(0);
    let a = TestInstance::new(48_000);
    w.submit(a.job("tiny", "please panic", 0.1));
    let e = a.wait().1.unwrap_err();
    assert!(
        matches!(&e, JobError::Panic(m) if m.contains("planted engine panic")),
        "{e:?}"
    );
    assert_eq!(a.progress.stage(), Stage::Failed);
    w.submit(a.job("tiny-corrupt", "x", 0.1));
    let e = a.wait().1.unwrap_err().to_string();
    assert!(
        e.contains("could not load model \"tiny-corrupt\"") && e.contains("not valid JSON"),
        "{e}"
    );
    w.submit(a.job("tiny", "fine", 0.1));
    assert!(a.wait().1.is_ok(), "the worker survives a panic");
}

/// Concatenates partial pieces as an instance would (a piece at frame 0 starts over).
fn assemble(partials: &[(u64, Audio)]) -> Audio {
    let mut out = Audio { sample_rate: 0, channels: vec![Vec::new(), Vec::new()] };
    for (start, a) in partials {
        if *start == 0 {
            out = Audio { sample_rate: a.sample_rate, channels: vec![Vec::new(), Vec::new()] };
        }
        assert_eq!((*start as usize, a.sample_rate), (out.frames(), out.sample_rate), "pieces in order");
        for (o, c) in out.channels.iter_mut().zip(&a.channels) {
            o.extend_from_slice(c);
        }
    }
    out
}

/// Audio arrives while the job runs (before Finished, many pieces, the first long before
/// the end), at the host rate, and the pieces make exactly the finished clip.
#[test]
fn partial_audio_comes_before_the_clip_and_makes_the_clip() {
    let w = worker(2);
    let a = TestInstance::new(44_100);
    w.submit(a.job("tiny", "partial", 1.0)); // 100 steps of 2 ms, 320 samples each
    let mut partials = Vec::new();
    let mut first_sound_at_step = None;
    let clip = loop {
        match a.rx.recv_timeout(Duration::from_secs(20)).unwrap() {
            WorkerToInstance::Partial { start, audio, .. } => {
                if audio.frames() > 0 && first_sound_at_step.is_none() {
                    first_sound_at_step = Some(a.progress.snapshot().step);
                }
                partials.push((start, audio));
            }
            WorkerToInstance::Finished { result, .. } => break result.unwrap(),
        }
    };
    // The resampler settles audio a block (4096 samples = 13 steps) behind the engine.
    let step = first_sound_at_step.expect("no audio before Finished");
    assert!(step < 40, "first audio heard at step {step} of 100");
    // 32 000 model samples = 7 whole resampler blocks while generating, the rest at the end.
    let sounding = partials.iter().filter(|(_, p)| p.frames() > 0).count();
    assert!(sounding >= 7, "{sounding} pieces with audio");
    assert_eq!((partials[0].0, partials[0].1.sample_rate), (0, 44_100));
    let heard = assemble(&partials);
    assert_eq!(heard.frames(), 44_100);
    assert_eq!(heard, clip.audio, "the pieces are the clip, bit for bit");
    // The clip is the streamed pieces (not resampled again), so check it against the
    // one-shot resampling of what the engine made.
    let engine = super::models::fake::FakeModel::new(32_000, 1, Duration::ZERO);
    let one_shot = super::host_rate::convert(&clip::to_stereo(engine.tone(0..32_000)), 44_100).unwrap();
    assert_eq!(clip.audio, one_shot, "the streamed clip is the one-shot resampling, bit for bit");
}

/// A job whose settings turn the preview off streams nothing: no piece comes before its
/// reply, and the clip is the one-shot conversion of what the engine made.
#[test]
fn without_the_preview_no_pieces_are_sent_and_the_clip_is_converted_once() {
    let w = worker(1);
    let a = TestInstance::new(44_100);
    let mut job = a.job("tiny", "no preview", 0.5);
    job.settings.params.preview_while_generating = false;
    w.submit(job);
    let (_, clip, partials) = a.wait_with_partials();
    assert!(partials.is_empty(), "{} pieces sent", partials.len());
    let engine = super::models::fake::FakeModel::new(32_000, 1, Duration::ZERO);
    let one_shot = super::host_rate::convert(&clip::to_stereo(engine.tone(0..16_000)), 44_100).unwrap();
    assert_eq!(clip.unwrap().audio, one_shot);
}

/// A host rate change mid-job restarts the pieces at the new rate (from frame 0), and they
/// still make exactly the finished clip.
#[test]
fn partial_audio_follows_a_rate_change() {
    let w = worker(5);
    let a = TestInstance::new(44_100);
    w.submit(a.job("tiny", "x", 0.5));
    wait_for("generation", || a.progress.snapshot().step > 10);
    a.rate.store(48_000, Ordering::Relaxed);
    let (_, clip, partials) = a.wait_with_partials();
    let clip = clip.unwrap();
    assert!(partials.iter().any(|(s, a)| *s == 0 && a.sample_rate == 48_000));
    assert_eq!(assemble(&partials), clip.audio);
}

#[test]
fn a_rate_change_mid_job_gives_a_clip_at_the_new_rate() {
    let w = worker(5);
    let a = TestInstance::new(44_100);
    w.submit(a.job("tiny", "x", 0.5));
    wait_for("generation", || a.progress.snapshot().step > 1);
    a.rate.store(48_000, Ordering::Relaxed);
    let clip = a.wait().1.unwrap();
    assert_eq!(
        (
            clip.audio.sample_rate,
            clip.audio.frames(),
            clip.meta.sample_rate
        ),
        (48_000, 24_000, 48_000)
    );
}

#[test]
fn the_thread_stops_when_the_last_handle_goes_even_mid_job() {
    let w = worker(5);
    let a = TestInstance::new(48_000);
    w.submit(a.job("tiny", "x", 60.0));
    wait_for("generation", || a.progress.snapshot().step > 1);
    let t = Instant::now();
    drop(w);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "drop stalled for {:?}",
        t.elapsed()
    );
    // The running job was cancelled and answered before the thread returned.
    assert_eq!(a.wait().1.unwrap_err(), JobError::Cancelled);
}

#[test]
fn instances_share_one_process_worker_until_the_last_goes() {
    let a = Worker::shared();
    let b = Worker::shared();
    assert!(Arc::ptr_eq(&a, &b));
    let weak = Arc::downgrade(&a);
    drop(a);
    assert!(weak.upgrade().is_some(), "still held by b");
    drop(b);
    assert!(weak.upgrade().is_none(), "gone with the last instance");
    let c = Worker::shared();
    assert!(!c.is_running());
}

/// The last handle going in the middle of a model load that ignores cancellation returns at
/// once; the thread finishes the load by itself, answers the job and ends.
#[test]
fn dropping_the_last_handle_mid_load_returns_at_once_and_the_thread_ends() {
    let w = worker(1);
    let a = TestInstance::new(48_000);
    w.submit(a.job("tiny-stubbornload", "x", 0.1));
    wait_for("the load", || a.progress.stage() == Stage::Loading);
    let probe = w.probe();
    let t = Instant::now();
    drop(w);
    let took = t.elapsed();
    assert!(took < Duration::from_millis(50), "drop blocked for {took:?}");
    assert!(!probe.ended(), "the load is still running");
    assert_eq!(a.wait().1.unwrap_err(), JobError::Cancelled);
    wait_for("the thread to end", || probe.ended());
}

/// A job cancelled while its model loads stops within the load's cancel checks.
#[test]
fn cancelling_during_a_model_load_stops_the_load() {
    let (w, backend) = worker_and_backend(1);
    let a = TestInstance::new(48_000);
    w.submit(a.job("tiny-slowload", "x", 0.1));
    wait_for("the load", || a.progress.stage() == Stage::Loading);
    let t = Instant::now();
    a.cancel.store(true, Ordering::Relaxed);
    assert_eq!(a.wait().1.unwrap_err(), JobError::Cancelled);
    assert!(t.elapsed() < Duration::from_millis(100), "cancel took {:?}", t.elapsed());
    assert_eq!((w.model_loads(), backend.alive_count()), (0, 0), "a cancelled load is not kept");
}

/// Re-adding an instance while the old worker is still finishing a load takes that worker back:
/// one thread, one cache, never two models (or two loads) at once.
#[test]
fn a_new_handle_while_the_old_thread_finishes_takes_it_back_and_loads_once() {
    static SLOT: Slot = Slot::new();
    let backend = Arc::new(FakeBackend::new(Duration::from_millis(1)));
    let make = || -> Arc<dyn Backend> { backend.clone() };
    let w = Worker::shared_in(&SLOT, make);
    let a = TestInstance::new(48_000);
    w.submit(a.job("tiny-slowload", "x", 0.1));
    wait_for("the load", || a.progress.stage() == Stage::Loading);
    let probe = w.probe();
    drop(w); // the last instance goes mid-load (its job is cancelled)...
    let w = Worker::shared_in(&SLOT, || panic!("a second worker was made")); // ...and comes back
    assert!(!probe.ended() && w.is_running(), "the same worker and thread");
    let b = TestInstance::new(48_000);
    w.submit(b.job("tiny-slowload", "y", 0.1));
    assert_eq!(a.wait().1.unwrap_err(), JobError::Cancelled);
    assert!(b.wait().1.is_ok());
    assert_eq!(w.model_loads(), 1, "one model loaded");
    assert_eq!(backend.most_loads_at_once.load(Ordering::SeqCst), 1, "never two loads at once");
    assert_eq!(backend.most_alive.load(Ordering::SeqCst), 1, "never two models in memory");
    // The model stays loaded for the next job of the instance.
    w.submit(b.job("tiny-slowload", "z", 0.1));
    assert!(b.wait().1.is_ok());
    assert_eq!(w.model_loads(), 1);
    // Once the last handle goes for good, the thread frees the model and ends.
    let probe = w.probe();
    drop(w);
    wait_for("the thread to end", || probe.ended());
    assert_eq!(backend.alive_count(), 0);
}

/// Models are bounded by what the live instances use: switching frees the model nobody is on,
/// an instance that goes frees its own, a model another instance uses stays.
#[test]
fn switching_models_frees_the_one_no_instance_uses() {
    use melodygen_engine::record::Quant;
    let (w, backend) = worker_and_backend(0);
    let a = TestInstance::new(48_000);
    let b = TestInstance::new(48_000);
    let job = |i: &TestInstance, model: &str, quant: Quant| {
        let mut job = i.job(model, "x", 0.05);
        job.settings.params.quant = quant;
        w.submit(job);
        assert!(i.wait().1.is_ok());
    };
    job(&a, "melody", Quant::F32);
    job(&b, "melody", Quant::F32);
    job(&a, "melody", Quant::Q8_0);
    assert!(backend.alive("melody", Quant::F32), "b is still on it");
    job(&b, "large", Quant::F32);
    assert!(!backend.alive("melody", Quant::F32), "nobody is on melody f32 any more");
    assert!(backend.alive("melody", Quant::Q8_0) && backend.alive("large", Quant::F32));
    w.forget_instance(a.instance);
    wait_for("a's model to be freed", || !backend.alive("melody", Quant::Q8_0));
    assert!(backend.alive("large", Quant::F32), "b's model stays");
    assert_eq!((w.model_loads(), backend.most_alive.load(Ordering::SeqCst)), (3, 2));
}

/// A panic in the worker's own code (not the engine's generation) is reported in plain words,
/// and the worker runs the next job.
#[test]
fn a_panic_outside_the_engine_is_reported_and_the_next_job_works() {
    let w = worker(0);
    let a = TestInstance::new(48_000);
    w.submit(a.job("tiny-melodypanic", "x", 0.1));
    let e = a.wait().1.unwrap_err();
    assert!(
        matches!(&e, JobError::Internal { during, detail } if during == "preparing the melody" && detail.contains("planted worker panic")),
        "{e:?}"
    );
    let shown = e.to_string();
    assert!(shown.contains("MelodyGen hit an internal error while preparing the melody") && shown.contains("your clips are safe"), "{shown}");
    assert_eq!(a.progress.stage(), Stage::Failed);
    w.submit(a.job("tiny", "fine", 0.1));
    assert!(a.wait().1.is_ok(), "the worker survives");
}

/// A worker thread that cannot be started fails the job (with a message), not the caller; the
/// next submission starts it.
#[test]
fn a_worker_thread_that_cannot_start_fails_the_job_not_the_caller() {
    let w = worker(0);
    let a = TestInstance::new(48_000);
    crate::threads::tests::fail_next_spawn();
    w.submit(a.job("tiny", "x", 0.1));
    let e = a.wait().1.unwrap_err();
    assert!(matches!(&e, JobError::Spawn(m) if m.contains("planted spawn failure")), "{e:?}");
    assert!(e.to_string().contains("could not start"), "{e}");
    assert_eq!((w.queued(), w.is_running()), (0, false));
    w.submit(a.job("tiny", "x", 0.1));
    assert!(a.wait().1.is_ok());
}
