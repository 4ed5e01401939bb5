use super::*;
use melodygen_engine::record::{CaptureAnchor, ClipMeta, JobSettings};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the look-ups and answers a model status the test sets.
#[derive(Clone)]
struct Counting {
    models: Arc<AtomicUsize>,
    exists: Arc<AtomicUsize>,
    answer: Arc<Mutex<ModelStatus>>,
}

impl Counting {
    fn new() -> Self {
        Self {
            models: Arc::default(),
            exists: Arc::default(),
            answer: Arc::new(Mutex::new(missing())),
        }
    }
    fn models(&self) -> usize {
        self.models.load(Ordering::Relaxed)
    }
    fn exists_calls(&self) -> usize {
        self.exists.load(Ordering::Relaxed)
    }
}

impl DiskChecker for Counting {
    fn model(&mut self, _spec: &str) -> ModelStatus {
        self.models.fetch_add(1, Ordering::Relaxed);
        self.answer.lock().clone()
    }
    fn exists(&mut self, _path: &Path) -> bool {
        self.exists.fetch_add(1, Ordering::Relaxed);
        true
    }
}

fn missing() -> ModelStatus {
    ModelStatus::Missing {
        message: "not here".into(),
        downloadable: true,
    }
}

fn ready() -> ModelStatus {
    ModelStatus::Ready {
        dir: "/models/m".into(),
        weights_bytes: 1,
    }
}

fn meta(path: &Path) -> ClipMeta {
    ClipMeta {
        path: path.to_path_buf(),
        settings: JobSettings::default(),
        model_dir: None,
        seconds: 1.0,
        sample_rate: 48_000,
        frames: 48_000,
        model_rate: 32_000,
        anchor: CaptureAnchor::default(),
        created: "2026-01-01T00:00:00Z".into(),
        melody: None,
    }
}

const TICK: Duration = crate::dispatch::POLL_INTERVAL;

/// Runs the dispatcher's refresh every tick for `span`, starting at `*now`.
fn run(refresh: &mut DiskRefresh, status: &DiskStatus, clips: &ClipList, open: bool, now: &mut Instant, span: Duration) {
    let end = *now + span;
    while *now < end {
        *now += TICK;
        refresh.refresh_at(status, clips, open, *now);
    }
}

#[test]
fn the_first_model_text_is_checked_at_once_and_then_not_again_while_ready() {
    let fake = Counting::new();
    *fake.answer.lock() = ready();
    let mut refresh = DiskRefresh::new(Box::new(fake.clone()));
    let (status, clips) = (DiskStatus::default(), ClipList::default());
    let mut now = Instant::now();
    // Nothing is looked up before the editor asks.
    run(&mut refresh, &status, &clips, true, &mut now, Duration::from_secs(1));
    assert_eq!(fake.models(), 0);

    status.want_model("facebook/musicgen-melody");
    assert_eq!(status.model_status("facebook/musicgen-melody"), None, "no answer before the dispatcher looks");
    refresh.refresh_at(&status, &clips, true, now);
    assert_eq!(fake.models(), 1, "the first text is checked at once, without waiting for the debounce");
    assert_eq!(status.model_status("facebook/musicgen-melody"), Some(ready()));
    // Ready is not looked at again, however long the editor stays open.
    run(&mut refresh, &status, &clips, true, &mut now, Duration::from_secs(10));
    assert_eq!(fake.models(), 1);
}

#[test]
fn typing_ten_keys_quickly_checks_once_after_the_pause() {
    let fake = Counting::new();
    let mut refresh = DiskRefresh::new(Box::new(fake.clone()));
    let (status, clips) = (DiskStatus::default(), ClipList::default());
    let mut now = Instant::now();
    status.want_model("a");
    refresh.refresh_at(&status, &clips, true, now);
    assert_eq!(fake.models(), 1);
    *fake.answer.lock() = ready();

    // Ten keystrokes, 80 ms apart, the dispatcher ticking in between.
    let mut text = String::from("a");
    for key in "bcdefghijk".chars() {
        text.push(key);
        status.want_model(&text);
        run(&mut refresh, &status, &clips, true, &mut now, Duration::from_millis(80));
    }
    assert_eq!(fake.models(), 1, "no check while typing");
    assert_eq!(status.model_status(&text), None, "the new text is not answered yet");
    // The pause: one check once it has lasted the debounce time, none after.
    run(&mut refresh, &status, &clips, true, &mut now, DEBOUNCE - Duration::from_millis(80) - TICK);
    assert_eq!(fake.models(), 1, "checked before the pause was long enough");
    run(&mut refresh, &status, &clips, true, &mut now, Duration::from_millis(40));
    assert_eq!(fake.models(), 2);
    assert_eq!(status.model_status(&text), Some(ready()));
    run(&mut refresh, &status, &clips, true, &mut now, Duration::from_secs(5));
    assert_eq!(fake.models(), 2);
}

#[test]
fn a_missing_model_is_looked_for_every_three_seconds_while_the_editor_is_open() {
    let fake = Counting::new();
    let mut refresh = DiskRefresh::new(Box::new(fake.clone()));
    let (status, clips) = (DiskStatus::default(), ClipList::default());
    let mut now = Instant::now();
    status.want_model("facebook/musicgen-small");
    refresh.refresh_at(&status, &clips, true, now);
    assert_eq!(fake.models(), 1);
    run(&mut refresh, &status, &clips, true, &mut now, Duration::from_millis(9_010));
    assert_eq!(fake.models(), 4, "once at first, then every 3 s");
    // With the editor closed nobody is looking: nothing is checked.
    run(&mut refresh, &status, &clips, false, &mut now, Duration::from_secs(9));
    assert_eq!(fake.models(), 4);
    // A finished download asks for a look at once.
    status.recheck_model();
    *fake.answer.lock() = ready();
    refresh.refresh_at(&status, &clips, true, now);
    assert_eq!(fake.models(), 5);
    assert_eq!(status.model_status("facebook/musicgen-small"), Some(ready()));
}

#[test]
fn clip_files_are_looked_at_once_a_second_or_when_the_list_changes_and_only_while_open() {
    let fake = Counting::new();
    let mut refresh = DiskRefresh::new(Box::new(fake.clone()));
    let (status, clips) = (DiskStatus::default(), ClipList::default());
    for name in ["a", "b", "c"] {
        clips.push(meta(Path::new(&format!("/clips/{name}.wav"))));
    }
    let mut now = Instant::now();
    run(&mut refresh, &status, &clips, false, &mut now, Duration::from_secs(5));
    assert_eq!(fake.exists_calls(), 0, "the editor is closed: no look-ups");

    // Three seconds open, ticking every 20 ms: the first tick and then once a second.
    run(&mut refresh, &status, &clips, true, &mut now, Duration::from_millis(3_010));
    assert_eq!(fake.exists_calls(), 4 * 3);
    // A new clip is looked at on the next tick.
    clips.push(meta(Path::new("/clips/d.wav")));
    run(&mut refresh, &status, &clips, true, &mut now, TICK);
    assert_eq!(fake.exists_calls(), 4 * 3 + 4);
    assert!(status.clip_files().exists.contains_key(Path::new("/clips/d.wav")));
}

#[test]
fn a_model_folder_created_or_deleted_shows_only_after_the_dispatchers_refresh() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("my-model");
    let spec = folder.to_string_lossy().into_owned();
    let editor = crate::editor::model_panel::ModelCheck::default();
    let mut refresh = DiskRefresh::new(Box::new(RealDisk));
    let (status, clips) = (DiskStatus::default(), ClipList::default());
    let mut now = Instant::now();

    // The editor asks; only the dispatcher's look answers.
    assert_eq!(editor.status(&status, &spec), None);
    refresh.refresh_at(&status, &clips, true, now);
    assert!(matches!(editor.status(&status, &spec), Some(ModelStatus::Missing { .. })));

    // The folder appears (an empty folder is found but is not a model). The editor's frames go
    // on showing the old answer until the dispatcher's next look at a missing model.
    std::fs::create_dir(&folder).unwrap();
    for _ in 0..20 {
        assert!(matches!(editor.status(&status, &spec), Some(ModelStatus::Missing { .. })));
    }
    run(&mut refresh, &status, &clips, true, &mut now, RECHECK_MISSING);
    assert!(matches!(editor.status(&status, &spec), Some(ModelStatus::Broken { dir, .. }) if dir == folder));

    // The folder goes away; the same text is not looked up again (it was not missing).
    std::fs::remove_dir(&folder).unwrap();
    run(&mut refresh, &status, &clips, true, &mut now, RECHECK_MISSING);
    assert!(matches!(editor.status(&status, &spec), Some(ModelStatus::Broken { .. })));
    // A changed text is, after the pause.
    let other = format!("{spec}/nope");
    assert_eq!(editor.status(&status, &other), None);
    run(&mut refresh, &status, &clips, true, &mut now, DEBOUNCE + TICK);
    assert!(matches!(
        editor.status(&status, &other),
        Some(ModelStatus::Missing { downloadable: false, .. })
    ));
}

#[test]
fn a_deleted_clip_file_shows_only_after_the_dispatchers_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("clip.wav");
    std::fs::write(&wav, b"RIFF").unwrap();
    let clips = ClipList::default();
    clips.push(meta(&wav));
    let status = DiskStatus::default();
    let mut refresh = DiskRefresh::new(Box::new(RealDisk));
    let mut now = Instant::now();
    refresh.refresh_at(&status, &clips, true, now);
    assert!(status.clip_files().exists(&wav));

    std::fs::remove_file(&wav).unwrap();
    assert!(status.clip_files().exists(&wav), "the editor's snapshot changes only when the dispatcher looks");
    run(&mut refresh, &status, &clips, true, &mut now, CLIP_REFRESH);
    assert!(!status.clip_files().exists(&wav));
}

#[test]
fn a_real_checkpoint_is_ready_with_the_size_of_its_weights() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-musicgen-stereo");
    let shards: u64 = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    match ModelStatus::check(&fixture.to_string_lossy()) {
        ModelStatus::Ready { weights_bytes, .. } => assert_eq!(weights_bytes, shards),
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_hub_names_offer_a_download() {
    let status = ModelStatus::check("no-such-owner-x/no-such-model-y");
    assert!(matches!(status, ModelStatus::Missing { downloadable: true, .. }), "{status:?}");
    let status = ModelStatus::check("./not/a/folder");
    assert!(matches!(status, ModelStatus::Missing { downloadable: false, .. }), "{status:?}");
}
