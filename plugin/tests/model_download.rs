//! Model download against a fake Hugging Face hub on 127.0.0.1: the listing endpoint
//! (`/api/models/<repo>/revision/<rev>?blobs=true`) and file endpoint
//! (`/<repo>/resolve/<commit>/<file>`) answered the way huggingface.co answers them (JSON with
//! `sha`, `siblings[].rfilename/blobId/size/lfs.sha256`; files with Content-Length, ETag,
//! X-Repo-Commit; 401/404 for gated or missing repos), serving the sharded tiny stereo checkpoint.
//!
//! Checks: the downloaded model resolves by name and loads, byte-identical to the fixture; files
//! the plugin does not need are not fetched; a second download fetches nothing; several callers
//! share one download; cancel stops a trickling transfer quickly and leaves nothing resolvable;
//! no connection, unknown repo, gated repo, damaged transfer and a repo without safetensors give
//! their messages; the `melodygen download` CLI does the same through HF_ENDPOINT/HF_HUB_CACHE.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use melodygen::engine::checkpoint::download::{self, DownloadError, DownloadProgress, Hub};
use melodygen::engine::checkpoint::resolve_in_cache;
use melodygen::engine::musicgen::MusicGen;
use melodygen::worker::download::{self as service, DownloadState};
use sha2::{Digest, Sha256};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Tests that use the process-wide download service run one at a time: one of them cancels
/// every download in the process.
static SERVICE: Mutex<()> = Mutex::new(());

fn service_lock() -> std::sync::MutexGuard<'static, ()> {
    SERVICE.lock().unwrap_or_else(|e| e.into_inner())
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-musicgen-stereo")
}

#[derive(Clone)]
struct FakeFile {
    name: String,
    content: Arc<Vec<u8>>,
    lfs: bool,
    /// Bytes actually sent instead of `content` (a damaged transfer), same length.
    sent: Option<Arc<Vec<u8>>>,
}

#[derive(Clone, Default)]
struct FakeRepo {
    files: Vec<FakeFile>,
    /// Answer every request with this status (401 for a gated repo).
    status: Option<u16>,
    /// Send file bodies in pieces of this many bytes, one per 10 ms.
    trickle: Option<usize>,
}

impl FakeRepo {
    /// The files of a checkpoint folder, `.safetensors` as LFS files, plus files a repo carries
    /// that the plugin must not fetch.
    fn from_folder(dir: &Path) -> Self {
        let mut files: Vec<FakeFile> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| FakeFile {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                lfs: p.extension().is_some_and(|e| e == "safetensors"),
                content: Arc::new(std::fs::read(&p).unwrap()),
                sent: None,
            })
            .collect();
        for (name, size) in [("pytorch_model.bin", 4096), ("README.md", 100), ("state_dict.bin", 4096)] {
            files.push(FakeFile {
                name: name.into(),
                lfs: name.ends_with(".bin"),
                content: Arc::new(vec![7u8; size]),
                sent: None,
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Self { files, ..Default::default() }
    }
}

/// A hub on 127.0.0.1 serving `repos`; records the paths asked for.
struct FakeHub {
    server: Arc<tiny_http::Server>,
    endpoint: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHub {
    fn start(repos: HashMap<String, FakeRepo>) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let endpoint = format!("http://{}", server.server_addr().to_ip().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s, r, repos) = (server.clone(), requests.clone(), Arc::new(repos));
        std::thread::spawn(move || {
            for request in s.incoming_requests() {
                r.lock().unwrap().push(request.url().to_string());
                let repos = repos.clone();
                std::thread::spawn(move || respond(request, &repos));
            }
        });
        Self { server, endpoint, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn hub(&self, cache: &Path) -> Hub {
        Hub::new(&self.endpoint, cache.to_path_buf())
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hands out `piece` bytes per 10 ms.
struct Trickle {
    data: Arc<Vec<u8>>,
    at: usize,
    piece: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.data.len() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(10));
        let n = buf.len().min(self.piece).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn respond(request: tiny_http::Request, repos: &HashMap<String, FakeRepo>) {
    let url = request.url().to_string();
    let path = url.split('?').next().unwrap_or("").trim_start_matches('/').to_string();
    let error = |status: u16, message: &str| {
        tiny_http::Response::from_string(format!("{{\"error\":\"{message}\"}}"))
            .with_status_code(status)
            .with_header(header("Content-Type", "application/json"))
    };
    let parts: Vec<&str> = path.split('/').collect();
    // /api/models/<org>/<name>/revision/<rev>
    if let ["api", "models", org, name, "revision", _rev] = parts.as_slice() {
        let Some(repo) = repos.get(&format!("{org}/{name}")) else {
            let _ = request.respond(error(404, "Repository not found"));
            return;
        };
        if let Some(status) = repo.status {
            let _ = request.respond(error(status, "Access to model is restricted"));
            return;
        }
        let siblings: Vec<serde_json::Value> = repo
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut s = serde_json::json!({
                    "rfilename": f.name,
                    "blobId": format!("{:040x}", i + 1),
                    "size": if f.lfs { 134 } else { f.content.len() },
                });
                if f.lfs {
                    s["lfs"] = serde_json::json!({
                        "sha256": sha256_hex(&f.content),
                        "size": f.content.len(),
                        "pointerSize": 134,
                    });
                }
                s
            })
            .collect();
        let body = serde_json::json!({ "id": format!("{org}/{name}"), "sha": COMMIT, "siblings": siblings });
        let _ = request.respond(
            tiny_http::Response::from_string(body.to_string())
                .with_header(header("Content-Type", "application/json")),
        );
        return;
    }
    // /<org>/<name>/resolve/<commit>/<file>
    if let [org, name, "resolve", rev, file] = parts.as_slice() {
        let Some(repo) = repos.get(&format!("{org}/{name}")) else {
            let _ = request.respond(error(404, "Repository not found"));
            return;
        };
        let Some(f) = repo.files.iter().find(|f| f.name == *file) else {
            let _ = request.respond(error(404, "Entry not found"));
            return;
        };
        assert_eq!(*rev, COMMIT, "files must be fetched from the listed commit");
        let data = f.sent.clone().unwrap_or_else(|| f.content.clone());
        let headers = vec![
            header("ETag", &format!("\"{}\"", sha256_hex(&f.content))),
            header("X-Repo-Commit", COMMIT),
            header("Content-Type", "application/octet-stream"),
        ];
        let len = data.len();
        let reader: Box<dyn Read + Send> = match repo.trickle {
            Some(piece) => Box::new(Trickle { data, at: 0, piece }),
            None => Box::new(std::io::Cursor::new(data.to_vec())),
        };
        let _ = request.respond(tiny_http::Response::new(200.into(), headers, reader, Some(len), None));
        return;
    }
    let _ = request.respond(error(404, "no such endpoint"));
}

fn stereo_hub() -> FakeHub {
    FakeHub::start(HashMap::from([("test-org/tiny-stereo".to_string(), FakeRepo::from_folder(&fixture()))]))
}

/// Every file under `dir` (recursively) whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_ending(&p, suffix));
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out
}

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

/// A slow repo: the tiny checkpoint's small files and a 64 MB weight file sent at about 1.6 MB/s.
fn slow_repo() -> FakeRepo {
    let mut repo = FakeRepo::from_folder(&fixture());
    repo.files.retain(|f| !f.name.starts_with("model"));
    let big: Vec<u8> = (0..64 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    repo.files.push(FakeFile { name: "model.safetensors".into(), lfs: true, content: Arc::new(big), sent: None });
    repo.trickle = Some(16 * 1024);
    repo
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
    assert!(t.elapsed() < Duration::from_secs(1), "removing the plugin took {:?}", t.elapsed());
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

#[test]
fn the_cli_downloads_into_the_cache_the_environment_names() {
    let fake = stereo_hub();
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("hub-cache");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_melodygen"))
        .args(["download", "test-org/tiny-stereo"])
        .env("HF_ENDPOINT", &fake.endpoint)
        .env("HF_HUB_CACHE", &cache)
        .env("HF_HOME", home.path())
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let printed = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(printed, resolve_in_cache(&cache, "test-org/tiny-stereo").unwrap());
    assert!(stderr.contains("[1/8] config.json") && stderr.contains("is ready in"), "{stderr}");

    // Offline, the CLI says what to do and fails.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_melodygen"))
        .args(["download", "musicgen-small"])
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("HF_HUB_CACHE", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no connection") && stderr.contains("huggingface-cli download facebook/musicgen-small"), "{stderr}");
}
