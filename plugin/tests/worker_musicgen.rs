//! The worker with the real MusicGen engine on the tiny test checkpoints: melody capture in,
//! clip at the host rate out; model sharing between instances; cancellation; model errors as
//! messages. (The same paths in real hosts are in tests/clap-host and tests/hosts.)
//!
//! One test function, because the worker is process-wide and the model-load counter it keeps is
//! what is being checked.

use melodygen_engine::wav;
use melodygen_engine::record::CaptureAnchor;
use melodygen_engine::record::{ClipLength, GenerationParams, JobSettings, Melody, MelodySource, Note};
use melodygen::worker::job::{Job, JobError, WorkerToInstance};
use melodygen::worker::progress::{Progress, Stage};
use melodygen::worker::Worker;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

struct Instance {
    id: u64,
    progress: Arc<Progress>,
    cancel: Arc<AtomicBool>,
    rate: Arc<AtomicU32>,
    tx: crossbeam_channel::Sender<WorkerToInstance>,
    rx: crossbeam_channel::Receiver<WorkerToInstance>,
}

impl Instance {
    fn new(rate: u32) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self {
            id: melodygen::worker::job::new_instance_id(),
            progress: Arc::default(),
            cancel: Arc::default(),
            rate: Arc::new(AtomicU32::new(rate)),
            tx,
            rx,
        }
    }

    fn job(&self, model: &str, melody: Melody, seconds: f32, seed: u64) -> Job {
        let source = match melody {
            Melody::Audio { .. } => MelodySource::Audio,
            Melody::Notes { .. } => MelodySource::Midi,
            Melody::None => MelodySource::None,
            Melody::Recorded(_) => MelodySource::Audio,
        };
        Job {
            id: 0,
            instance: self.id,
            settings: JobSettings {
                prompt: "a test melody".into(),
                params: GenerationParams {
                    model: model.into(),
                    length: ClipLength::Seconds(seconds),
                    seed,
                    melody_source: source,
                    ..Default::default()
                },
            },
            melody,
            seconds,
            host_rate: self.rate.clone(),
            anchor: CaptureAnchor {
                seconds: Some(1.5),
                ..Default::default()
            },
            clip_dir: std::env::temp_dir()
                .join(format!("melodygen-worker-musicgen-{}", std::process::id())),
            cancel: self.cancel.clone(),
            progress: self.progress.clone(),
            reply: self.tx.clone(),
        }
    }

    fn wait(&self) -> Result<melodygen::worker::clip::Clip, JobError> {
        self.wait_with_partials().0
    }

    /// The job's result and the partial pieces (start frame, audio) that came before it.
    fn wait_with_partials(
        &self,
    ) -> (Result<melodygen::worker::clip::Clip, JobError>, Vec<(u64, wav::Audio)>) {
        let mut partials = Vec::new();
        loop {
            match self
                .rx
                .recv_timeout(Duration::from_secs(300))
                .expect("no reply in 300 s")
            {
                WorkerToInstance::Finished { result, .. } => return (result, partials),
                WorkerToInstance::Partial { start, audio, .. } => partials.push((start, audio)),
            }
        }
    }
}

fn sine_melody(rate: u32) -> Melody {
    let notes = [261.63f32, 329.63, 392.0, 523.25];
    let per = rate as usize / 2;
    let samples = (0..per * 4)
        .map(|i| 0.3 * (std::f32::consts::TAU * notes[i / per] * i as f32 / rate as f32).sin())
        .collect();
    Melody::Audio {
        samples,
        sample_rate: rate,
    }
}

#[test]
fn musicgen_through_the_worker() {
    let melody_model = fixture("tiny-musicgen-melody");
    let worker = Worker::shared();

    // Audio melody at both host rates: the clip comes back at that rate, 1 s long, stereo,
    // written with its sidecar.
    for rate in [44_100u32, 48_000] {
        let inst = Instance::new(rate);
        let t = Instant::now();
        worker.submit(inst.job(&melody_model, sine_melody(rate), 1.0, 3));
        let (clip, partials) = inst.wait_with_partials();
        let clip = clip.unwrap_or_else(|e| panic!("{rate} Hz: {e}"));
        // The preview pieces (streaming decode + streaming resampling) came before the clip
        // and are exactly the clip.
        let mut heard = vec![Vec::new(), Vec::new()];
        for (start, piece) in &partials {
            assert_eq!((*start as usize, piece.sample_rate), (heard[0].len(), rate));
            for (h, c) in heard.iter_mut().zip(&piece.channels) {
                h.extend_from_slice(c);
            }
        }
        let sounding = partials.iter().filter(|(_, p)| p.frames() > 0).count();
        assert!(sounding >= 3, "{rate} Hz: {sounding} pieces with audio");
        assert_eq!(heard, clip.audio.channels, "{rate} Hz: pieces = clip");
        println!("{rate} Hz: 1 s clip in {:.2} s", t.elapsed().as_secs_f64());
        assert_eq!(
            (clip.audio.sample_rate, clip.audio.frames()),
            (rate, rate as usize),
            "{rate} Hz"
        );
        assert_eq!(clip.audio.channels.len(), 2);
        assert_eq!(clip.meta.model_rate, 32_000);
        let file = wav::read(&clip.meta.path).unwrap();
        assert_eq!(file, clip.audio, "the file holds exactly the clip");
        assert!(clip.meta.sidecar_path().exists());
        assert!(
            clip.audio.channels[0].iter().any(|s| s.abs() > 1e-4),
            "silent clip"
        );
        assert_eq!(inst.progress.stage(), Stage::Done);
    }
    assert_eq!(
        worker.model_loads(),
        1,
        "the melody model is loaded once for both jobs"
    );

    // MIDI notes as the melody, and text only.
    let inst = Instance::new(48_000);
    let notes = vec![
        Note {
            start: 0,
            end: 24_000,
            key: 60,
            velocity: 0.8,
        },
        Note {
            start: 24_000,
            end: 48_000,
            key: 67,
            velocity: 0.8,
        },
    ];
    worker.submit(inst.job(
        &melody_model,
        Melody::Notes {
            notes,
            frames: 48_000,
            sample_rate: 48_000,
        },
        0.5,
        4,
    ));
    assert_eq!(inst.wait().unwrap().audio.frames(), 24_000);
    worker.submit(inst.job(&melody_model, Melody::None, 0.5, 4));
    assert_eq!(inst.wait().unwrap().audio.frames(), 24_000);

    // Same seed, same settings: the same clip (reproducibility).
    let a = Instance::new(48_000);
    worker.submit(a.job(&melody_model, sine_melody(48_000), 0.5, 9));
    let first = a.wait().unwrap();
    worker.submit(a.job(&melody_model, sine_melody(48_000), 0.5, 9));
    assert_eq!(first.audio, a.wait().unwrap().audio);

    // Four instances queue behind each other and share the model.
    let four: Vec<Instance> = (0..4).map(|_| Instance::new(48_000)).collect();
    for (i, inst) in four.iter().enumerate() {
        worker.submit(inst.job(&melody_model, sine_melody(48_000), 0.5, i as u64));
    }
    for inst in &four {
        assert_eq!(inst.wait().unwrap().audio.frames(), 24_000);
    }
    assert_eq!(worker.model_loads(), 1);

    // A second model is a second load; the text-only and stereo checkpoints work too.
    let stereo = Instance::new(44_100);
    worker.submit(stereo.job(&fixture("tiny-musicgen-stereo"), Melody::None, 0.5, 1));
    let clip = stereo.wait().unwrap();
    assert_ne!(
        clip.audio.channels[0], clip.audio.channels[1],
        "stereo model: two different channels"
    );
    assert_eq!(worker.model_loads(), 2);

    // Cancel mid-job.
    let long = Instance::new(48_000);
    worker.submit(long.job(&melody_model, sine_melody(48_000), 30.0, 1));
    let t = Instant::now();
    while long.progress.snapshot().step < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the long job never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    long.cancel.store(true, Ordering::Relaxed);
    assert_eq!(long.wait().unwrap_err(), JobError::Cancelled);
    println!("cancelled after {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(5));

    // Model errors reach the user as messages naming the problem.
    let bad = Instance::new(48_000);
    let dir = std::env::temp_dir().join(format!("melodygen-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(&melody_model).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 3]).unwrap();
    worker.submit(bad.job(&dir.to_string_lossy(), Melody::None, 0.5, 1));
    let e = bad.wait().unwrap_err().to_string();
    println!("corrupt: {e}");
    assert!(
        e.contains("could not load model") && e.contains("model.safetensors"),
        "{e}"
    );
    worker.submit(bad.job("/nonexistent/model", Melody::None, 0.5, 1));
    let e = bad.wait().unwrap_err().to_string();
    assert!(e.contains("/nonexistent/model"), "{e}");
    // An empty capture is explained, not a crash.
    worker.submit(bad.job(
        &melody_model,
        Melody::Audio {
            samples: vec![],
            sample_rate: 48_000,
        },
        0.5,
        1,
    ));
    let e = bad.wait().unwrap_err().to_string();
    assert!(e.contains("no melody was captured"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(worker.model_loads(), 2, "failed loads are not counted");
}
