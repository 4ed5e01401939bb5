//! Model download against a fake Hugging Face hub on 127.0.0.1 (`tests/support/fake_hub.rs`).
//!
//! Checks: the downloaded model resolves by name and loads, byte-identical to the fixture; files
//! the plugin does not need are not fetched; a second download fetches nothing; unknown repo,
//! gated repo, damaged transfer and a repo without safetensors give their messages. (The
//! plugin's download service and the CLI are tested in their own crates with the same hub.)

#[path = "../../tests/support/fake_hub.rs"]
mod fake_hub;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device};
use fake_hub::*;
use melodygen_engine::checkpoint::download::{self, DownloadError, DownloadProgress};
use melodygen_engine::checkpoint::resolve_in_cache;
use melodygen_engine::musicgen::MusicGen;

#[test]
fn a_sharded_model_downloads_resolves_by_name_and_loads() {
    let fake = stereo_hub();
    let cache = tempfile::tempdir().unwrap();
    let hub = fake.hub(cache.path());
    let cancel = AtomicBool::new(false);
    let mut seen: Vec<DownloadProgress> = Vec::new();
    let t = Instant::now();
    let dir = download::download(&hub, "test-org/tiny-stereo", "main", &cancel, &mut |p| seen.push(p.clone()))
        .unwrap();
    let took = t.elapsed();

    // Where huggingface_hub would put it, and what the plugin resolves the name to.
    let repo_dir = cache.path().join("models--test-org--tiny-stereo");
    assert_eq!(dir, repo_dir.join("snapshots").join(COMMIT));
    assert_eq!(resolve_in_cache(cache.path(), "test-org/tiny-stereo").unwrap(), dir);
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap().trim(), COMMIT);

    // Byte-identical to the fixture, every file of it, and nothing else.
    let mut expected: Vec<String> = std::fs::read_dir(fixture())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    let mut got: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, expected);
    for name in &expected {
        assert!(
            std::fs::read(dir.join(name)).unwrap() == std::fs::read(fixture().join(name)).unwrap(),
            "{name} differs"
        );
        // Snapshot entries link into blobs/, like huggingface_hub's.
        #[cfg(unix)]
        assert!(std::fs::symlink_metadata(dir.join(name)).unwrap().file_type().is_symlink(), "{name}");
    }
    let fetched: Vec<String> = fake.requests().into_iter().filter(|r| r.contains("/resolve/")).collect();
    assert_eq!(fetched.len(), expected.len(), "{fetched:?}");
    assert!(!fetched.iter().any(|r| r.ends_with(".bin") || r.ends_with("README.md")), "{fetched:?}");
    assert!(files_ending(cache.path(), ".incomplete").is_empty());

    // Progress: per file and overall, ending at the sum of the files.
    let total: u64 = expected.iter().map(|n| std::fs::metadata(fixture().join(n)).unwrap().len()).sum();
    let last = seen.last().unwrap();
    assert_eq!((last.done, last.total, last.file_count), (total, total, expected.len()));
    assert!(seen.windows(2).all(|w| w[1].done >= w[0].done), "overall progress never goes back");
    assert!(seen.iter().all(|p| p.file_done <= p.file_size && p.done <= p.total));
    let files_reported: std::collections::BTreeSet<&str> = seen.iter().map(|p| p.file.as_str()).collect();
    assert_eq!(files_reported.len(), expected.len(), "{files_reported:?}");

    // The plugin's loader takes it.
    let model = MusicGen::load(&dir, &Device::Cpu, DType::F32).unwrap();
    assert_eq!(model.sample_rate(), 32_000);

    // A second download finds everything in place: only the listing is asked for.
    let before = fake.requests().len();
    let again = download::download(&hub, "test-org/tiny-stereo", "main", &cancel, &mut |_| {}).unwrap();
    assert_eq!(again, dir);
    let new: Vec<String> = fake.requests()[before..].to_vec();
    assert!(new.len() == 1 && new[0].starts_with("/api/models/"), "{new:?}");
    eprintln!("downloaded {total} bytes in {took:?}");
}

#[test]
fn unknown_gated_damaged_and_unloadable_repos_are_named() {
    let mut gated = FakeRepo::from_folder(&fixture());
    gated.status = Some(401);
    let mut damaged = FakeRepo::from_folder(&fixture());
    let shard = damaged.files.iter_mut().find(|f| f.name == "model-00002-of-00004.safetensors").unwrap();
    let mut bad = shard.content.to_vec();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    shard.sent = Some(Arc::new(bad));
    let mut no_safetensors = FakeRepo::from_folder(&fixture());
    no_safetensors.files.retain(|f| !f.name.starts_with("model"));
    let fake = FakeHub::start(HashMap::from([
        ("test-org/gated".to_string(), gated),
        ("test-org/damaged".to_string(), damaged),
        ("test-org/bins-only".to_string(), no_safetensors),
    ]));
    let cache = tempfile::tempdir().unwrap();
    let hub = fake.hub(cache.path());
    let get = |repo: &str| download::download(&hub, repo, "main", &AtomicBool::new(false), &mut |_| {}).unwrap_err();

    let err = get("test-org/musicgen-melodyy");
    assert!(matches!(err, DownloadError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no model called \"test-org/musicgen-melodyy\"") && err.to_string().contains("spelling"), "{err}");

    let err = get("test-org/gated");
    assert!(matches!(err, DownloadError::NotAuthorized { status: 401, .. }), "{err:?}");
    assert!(err.to_string().contains("gated") && err.to_string().contains("HF_TOKEN"), "{err}");

    let err = get("test-org/damaged");
    assert!(matches!(err, DownloadError::Corrupt { ref file, .. } if file == "model-00002-of-00004.safetensors"), "{err:?}");
    assert!(resolve_in_cache(cache.path(), "test-org/damaged").is_err(), "a damaged download is not a model");
    assert!(files_ending(cache.path(), ".incomplete").is_empty());

    let err = get("test-org/bins-only");
    assert!(matches!(err, DownloadError::NotLoadable { .. }), "{err:?}");
    assert!(err.to_string().contains("safetensors"), "{err}");

    let err = get("not a name");
    assert!(matches!(err, DownloadError::NotARepoName { .. }), "{err:?}");
}
