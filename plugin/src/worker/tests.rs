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
    Worker::with_backend(Arc::new(FakeBackend {
        step_delay: Duration::from_millis(step_ms),
    }))
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
    let engine = super::models::fake::FakeModel { rate: 32_000, channels: 1, step_delay: Duration::ZERO };
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
    let engine = super::models::fake::FakeModel { rate: 32_000, channels: 1, step_delay: Duration::ZERO };
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
