//! The dispatcher's lifecycle against a worker over the fake engine: removing an instance never
//! waits for its threads, a panic in a tick is reported and the next tick runs, and a thread
//! that cannot start is an error, not a panic.

use super::*;
use crate::audio::playback;
use crate::worker::models::fake::FakeBackend;
use std::time::Instant;

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An instance's state as the plugin makes it (see `MelodyGen::default`), asking for `model`.
fn instance(model: &str) -> (Arc<MelodyGenParams>, Arc<SharedState>, Option<PlayerRemote>) {
    let (_player, remote) = playback::player();
    let params = Arc::new(MelodyGenParams::default());
    *params.prompt.write() = "lo-fi piano".into();
    params.settings.write().model = model.into();
    *params.clip_dir.write() =
        Some(std::env::temp_dir().join(format!("melodygen-dispatch-test-{}", std::process::id())));
    let shared = Arc::new(SharedState {
        progress: params.diagnostics.progress.clone(),
        playback: remote.state.clone(),
        ..Default::default()
    });
    shared.host_rate.store(48_000, Ordering::Relaxed);
    (params, shared, Some(remote))
}

fn fake_worker() -> Arc<Worker> {
    Worker::with_backend(Arc::new(FakeBackend::new(Duration::from_millis(1))))
}

/// Removing the last instance while its job's model load runs (one that ignores cancellation,
/// like a load between its cancel checks) returns at once; the dispatcher and worker threads
/// end by themselves afterwards.
#[test]
fn dropping_the_dispatcher_mid_load_returns_at_once_and_its_threads_end() {
    let (params, shared, mut remote) = instance("tiny-stubbornload");
    let worker = fake_worker();
    let (handle, probe) = (Arc::downgrade(&worker), worker.probe());
    let dispatcher = Dispatcher::start_with(params, shared.clone(), &mut remote, worker).unwrap();
    shared.generate_requests.fetch_add(1, Ordering::Relaxed);
    wait_for("the load", || shared.progress.stage() == Stage::Loading);
    let t = Instant::now();
    drop(dispatcher);
    let took = t.elapsed();
    assert!(took < Duration::from_millis(50), "removing the instance blocked for {took:?}");
    wait_for("the dispatcher thread to end", || handle.strong_count() == 0);
    wait_for("the worker thread to end", || probe.ended());
}

/// A panic in a dispatcher tick is shown in the window in plain words and the dispatcher goes
/// on: the next request is handled and a job still runs.
#[test]
fn a_panic_in_a_tick_is_reported_and_the_instance_keeps_working() {
    let (params, shared, mut remote) = instance("tiny");
    let dispatcher = Dispatcher::start_with(params.clone(), shared.clone(), &mut remote, fake_worker()).unwrap();
    shared.planted_panic.store(true, Ordering::Relaxed);
    wait_for("the panic report", || shared.message.lock().contains("internal error"));
    let shown = shared.message.lock().clone();
    assert!(
        shown.starts_with("MelodyGen hit an internal error while") && shown.contains("your clips are safe"),
        "{shown}"
    );
    shared.generate_requests.fetch_add(1, Ordering::Relaxed);
    let finished = &params.diagnostics.jobs_finished;
    wait_for("the next job", || finished.load(Ordering::Acquire) == 1);
    assert!(shared.message.lock().starts_with("Clip ready"), "{}", shared.message.lock());
    drop(dispatcher);
}

/// A dispatcher thread that cannot be started is an error for `activate()` to return, and the
/// clip rings stay with the instance for the next try.
#[test]
fn a_dispatcher_that_cannot_start_is_an_error_not_a_panic() {
    let (params, shared, mut remote) = instance("tiny");
    crate::threads::tests::fail_next_spawn();
    let e = Dispatcher::start_with(params.clone(), shared.clone(), &mut remote, fake_worker()).err();
    assert!(e.is_some_and(|e| e.to_string().contains("planted spawn failure")));
    assert!(remote.is_some(), "the rings are given back");
    let _again = Dispatcher::start_with(params, shared, &mut remote, fake_worker()).unwrap();
    assert!(remote.is_none());
}
