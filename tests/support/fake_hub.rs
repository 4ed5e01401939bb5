//! A fake Hugging Face hub on 127.0.0.1 for the download tests of the engine, the plugin's
//! download service and the CLI (each test crate includes this file with `#[path]`): the listing
//! endpoint (`/api/models/<repo>/revision/<rev>?blobs=true`) and the file endpoint
//! (`/<repo>/resolve/<commit>/<file>`) answered the way huggingface.co answers them (JSON with
//! `sha`, `siblings[].rfilename/blobId/size/lfs.sha256`; files with Content-Length, ETag,
//! X-Repo-Commit; 401/404 for gated or missing repos), serving the sharded tiny stereo checkpoint.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use melodygen_engine::checkpoint::download::Hub;
use sha2::{Digest, Sha256};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-musicgen-stereo")
}

#[derive(Clone)]
pub struct FakeFile {
    pub name: String,
    pub content: Arc<Vec<u8>>,
    pub lfs: bool,
    /// Bytes actually sent instead of `content` (a damaged transfer), same length.
    pub sent: Option<Arc<Vec<u8>>>,
}

#[derive(Clone, Default)]
pub struct FakeRepo {
    pub files: Vec<FakeFile>,
    /// Answer every request with this status (401 for a gated repo).
    pub status: Option<u16>,
    /// Send file bodies in pieces of this many bytes, one per 10 ms.
    pub trickle: Option<usize>,
}

impl FakeRepo {
    /// The files of a checkpoint folder, `.safetensors` as LFS files, plus files a repo carries
    /// that the plugin must not fetch.
    pub fn from_folder(dir: &Path) -> Self {
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
pub struct FakeHub {
    pub server: Arc<tiny_http::Server>,
    pub endpoint: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHub {
    pub fn start(repos: HashMap<String, FakeRepo>) -> Self {
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

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub fn hub(&self, cache: &Path) -> Hub {
        Hub::new(&self.endpoint, cache.to_path_buf())
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

pub fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hands out `piece` bytes per 10 ms.
pub struct Trickle {
    pub data: Arc<Vec<u8>>,
    pub at: usize,
    pub piece: usize,
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

pub fn respond(request: tiny_http::Request, repos: &HashMap<String, FakeRepo>) {
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

pub fn stereo_hub() -> FakeHub {
    FakeHub::start(HashMap::from([("test-org/tiny-stereo".to_string(), FakeRepo::from_folder(&fixture()))]))
}

/// Every file under `dir` (recursively) whose name ends with `suffix`.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
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









/// A slow repo: the tiny checkpoint's small files and a 64 MB weight file sent at about 1.6 MB/s.
pub fn slow_repo() -> FakeRepo {
    let mut repo = FakeRepo::from_folder(&fixture());
    repo.files.retain(|f| !f.name.starts_with("model"));
    let big: Vec<u8> = (0..64 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    repo.files.push(FakeFile { name: "model.safetensors".into(), lfs: true, content: Arc::new(big), sent: None });
    repo.trickle = Some(16 * 1024);
    repo
}
