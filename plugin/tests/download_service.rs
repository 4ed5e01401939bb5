//! The plugin's model download service (`worker::download`) against a fake Hugging Face hub on
//! 127.0.0.1 (`tests/support/fake_hub.rs`): several callers share one download; cancel stops a
//! trickling transfer quickly and leaves nothing resolvable; the last plugin instance going stops
//! downloads; no connection is reported in plain words for the window.

#[path = "../../tests/support/fake_hub.rs"]
mod fake_hub;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_hub::*;
use melodygen::worker::download::{self as service, DownloadState};
use melodygen_engine::checkpoint::download::{self, Hub};
use melodygen_engine::checkpoint::resolve_in_cache;

/// Tests that use the process-wide download service run one at a time: one of them cancels
/// every download in the process.
static SERVICE: Mutex<()> = Mutex::new(());

fn service_lock() -> std::sync::MutexGuard<'static, ()> {
    SERVICE.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn several_callers_share_one_download_through_the_service() {
    let _serial = service_lock();
    let fake = stereo_hub();
    let cache = tempfile::tempdir().unwrap();
    let a = service::start_with(fake.hub(cache.path()), "test-org/tiny-stereo", "main");
    let b = service::start_with(fake.hub(cache.path()), "test-org/tiny-stereo", "main");
    assert!(Arc::ptr_eq(&a, &b), "a second instance joins the running download");
    assert!(Arc::ptr_eq(&service::find("test-org/tiny-stereo").unwrap(), &a));
    let outcome = a.wait(Duration::from_secs(30)).expect("finished").clone();
    let dir = outcome.unwrap();
    assert_eq!(a.state(), DownloadState::Done);
    assert_eq!(resolve_in_cache(cache.path(), "test-org/tiny-stereo").unwrap(), dir);
    let listings = fake.requests().iter().filter(|r| r.starts_with("/api/")).count();
    assert_eq!(listings, 1, "one download for both callers");
    let s = a.snapshot();
    assert_eq!((s.done, s.state), (s.total, DownloadState::Done));
}

#[test]
fn cancel_stops_a_transfer_quickly_and_leaves_nothing_resolvable() {
    let _serial = service_lock();
    // A 64 MB weight file sent at about 1.6 MB/s: it would take some 40 s.
    let fake = FakeHub::start(HashMap::from([("test-org/slow".to_string(), slow_repo())]));
    let cache = tempfile::tempdir().unwrap();
    let d = service::start_with(fake.hub(cache.path()), "test-org/slow", "main");
    let t = Instant::now();
    while d.snapshot().file != "model.safetensors" || d.snapshot().file_done < 256 * 1024 {
        assert!(t.elapsed() < Duration::from_secs(20), "the big file never started: {:?}", d.snapshot());
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = d.snapshot();
    assert!(s.total > 64_000_000 && s.done < s.total && s.file_size == 64 * 1024 * 1024, "{s:?}");
    let t = Instant::now();
    d.cancel();
    let outcome = d.wait(Duration::from_secs(5)).expect("stopped").clone();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(500), "cancel took {took:?}");
    assert_eq!(d.state(), DownloadState::Cancelled);
    assert!(outcome.unwrap_err().message.contains("cancelled"));
    eprintln!("cancel took {took:?}");

    // Nothing that looks like a model, no half file; the small files fetched are kept as blobs.
    assert!(resolve_in_cache(cache.path(), "test-org/slow").is_err());
    let repo_dir = cache.path().join("models--test-org--slow");
    assert!(!repo_dir.join("snapshots").exists() && !repo_dir.join("refs").exists());
    assert!(files_ending(cache.path(), ".incomplete").is_empty());
    let blobs: Vec<u64> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert!(blobs.iter().all(|&len| len < 1_000_000), "only whole small files stay: {blobs:?}");
}

#[test]
fn the_last_plugin_instance_going_stops_downloads() {
    let _serial = service_lock();
    let fake = FakeHub::start(HashMap::from([("test-org/slow-too".to_string(), slow_repo())]));
    let cache = tempfile::tempdir().unwrap();
    let d = service::start_with(fake.hub(cache.path()), "test-org/slow-too", "main");
    let t = Instant::now();
    while d.snapshot().file != "model.safetensors" {
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", d.snapshot());
        std::thread::sleep(Duration::from_millis(5));
    }
    // Every plugin instance holds a registration for its whole life; the last one dropped is the
    // plugin going away.
    let instance = service::InstanceRegistration::new();
    let t = Instant::now();
    drop(instance);
    // Removing the plugin never waits for the download thread (it may be the host's thread);
    // the thread stops at its next read by itself.
    assert!(t.elapsed() < Duration::from_millis(50), "removing the plugin took {:?}", t.elapsed());
    assert!(d.wait(Duration::from_secs(10)).is_some(), "the download thread has not ended");
    assert_eq!(d.state(), DownloadState::Cancelled, "the download thread has ended");
    assert!(files_ending(cache.path(), ".incomplete").is_empty());
}

#[test]
fn no_connection_says_so_and_names_the_folder_to_fill_by_hand() {
    // A port nobody listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(&format!("http://127.0.0.1:{port}"), cache.path().to_path_buf());
    let t = Instant::now();
    let err = download::download(&hub, "facebook/musicgen-melody", "main", &AtomicBool::new(false), &mut |_| {})
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    assert!(err.is_offline(), "{err:?}");
    let msg = err.to_string();
    let folder = cache.path().join("models--facebook--musicgen-melody").join("snapshots").join("main");
    for part in [
        &format!("no connection to 127.0.0.1:{port}"),
        "huggingface-cli download facebook/musicgen-melody",
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        &folder.display().to_string(),
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    // Nothing was created.
    assert!(!cache.path().join("models--facebook--musicgen-melody").exists());

    // The service reports it as offline for the window.
    let _serial = service_lock();
    let d = service::start_with(hub, "facebook/musicgen-melody", "main");
    let failure = d.wait(Duration::from_secs(10)).unwrap().clone().unwrap_err();
    assert!(failure.offline && failure.message == msg, "{failure:?}");
    assert_eq!(failure.by_hand, Some((folder, "connection refused".to_string())), "plain words for the window");
    assert_eq!(d.state(), DownloadState::Failed);
}
