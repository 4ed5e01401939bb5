//! Fetching a MusicGen model from the Hugging Face hub into the local Hugging Face cache.
//!
//! Why it is built this way:
//! - Files land exactly where `huggingface_hub` puts them (`models--org--name/blobs/<hash>`,
//!   `snapshots/<commit>/<file>` linking to the blob, `refs/<revision>` naming the commit), so
//!   [`super::resolve_model`] and the Python tools find the model with no setting at all.
//! - The hf-hub crate supplies what it does well: the endpoint and repo URLs, the user's token
//!   file, and writing `refs/`. Its own file download cannot be stopped mid-file (its progress
//!   callback has no way to say "stop") and MusicGen weights are gigabytes, so files are streamed
//!   here with ureq (the version hf-hub uses), checking the cancel flag between reads.
//! - Nothing becomes resolvable before everything is complete and verified: each file is written
//!   to a temporary name in `blobs/` and renamed when whole (size and, for weights, SHA-256
//!   checked); the snapshot folder is assembled outside `snapshots/` and moved in last, then
//!   `refs/` is written. A cancelled or failed download leaves at most whole blobs, which the next
//!   attempt reuses instead of fetching again.
//! - Errors say what a producer can do: no connection names the folder to fill by hand, a
//!   misspelt or gated name says so, a full disk says how much room is needed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hf_hub::{Repo, RepoType};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::resolve::{hf_cache_root, looks_like_repo_id};

/// The public hub, used unless `HF_ENDPOINT` names a mirror.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Small files a MusicGen folder may hold besides the weights; the ones the repo has are fetched.
/// `config.json` and `tokenizer.json` are required, the others optional.
const SMALL_FILES: [&str; 6] = [
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];
const SINGLE_WEIGHTS: &str = "model.safetensors";
const WEIGHTS_INDEX: &str = "model.safetensors.index.json";

/// What to put in a folder by hand, for messages.
pub const FILES_BY_HAND: &str = "config.json, generation_config.json, tokenizer.json and \
     model.safetensors (or model.safetensors.index.json with its model-0000N-of-0000M.safetensors \
     shards)";

/// How long a connection attempt may take before the hub counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a read may stall before the download counts as broken off.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes read between two looks at the cancel flag.
const CHUNK: usize = 256 * 1024;

/// Where to download from and to.
#[derive(Debug, Clone, PartialEq)]
pub struct Hub {
    /// Base URL of the hub, without a trailing slash.
    pub endpoint: String,
    /// The HF hub cache root (the folder holding `models--*`).
    pub cache: PathBuf,
    /// Access token for gated or private models.
    pub token: Option<String>,
}

impl Hub {
    /// The hub at `endpoint` with the cache at `cache`, no token.
    pub fn new(endpoint: &str, cache: PathBuf) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            cache,
            token: None,
        }
    }

    /// As `huggingface_hub` sets itself up: `HF_ENDPOINT` (else huggingface.co), the cache of
    /// [`hf_cache_root`], the token from `HF_TOKEN` or the file `huggingface-cli login` writes.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let mut hub = Self::new(endpoint.trim(), hf_cache_root());
        hub.token = var("HF_TOKEN").or_else(|| hf_hub::Cache::from_env().token());
        hub
    }

    /// The host name messages show ("huggingface.co").
    pub fn host(&self) -> &str {
        let rest = self.endpoint.split("://").nth(1).unwrap_or(&self.endpoint);
        rest.split('/').next().unwrap_or(rest)
    }

    /// The folder of `repo` in the cache (`models--org--name`).
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        super::resolve::repo_cache_dir(&self.cache, repo)
    }

    /// A folder a producer can fill by hand that [`super::resolve_model`] finds for `repo`.
    pub fn manual_folder(&self, repo: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join("main")
    }
}

/// Why a download did not complete. Every message is meant for a producer.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "\"{repo}\" is not a Hugging Face model name: write it as owner/name, for example \
         facebook/musicgen-melody"
    )]
    NotARepoName { repo: String },
    #[error(
        "no connection to {host} ({detail}). Download the model on a computer that is online \
         with `huggingface-cli download {repo}` and copy its Hugging Face cache over, or put the \
         files ({FILES_BY_HAND}) in {folder}"
    )]
    Offline {
        host: String,
        repo: String,
        folder: PathBuf,
        detail: String,
    },
    #[error(
        "{host} has no model called \"{repo}\" (revision {revision}): check the spelling, for \
         example facebook/musicgen-melody"
    )]
    NotFound {
        host: String,
        repo: String,
        revision: String,
    },
    #[error(
        "{host} refused \"{repo}\" (HTTP {status}): the name is misspelt, or the model is gated \
         or private. For a gated model, accept its terms on its page on {host}, then log in with \
         `huggingface-cli login` (or set HF_TOKEN) and try again"
    )]
    NotAuthorized {
        host: String,
        repo: String,
        status: u16,
    },
    #[error("{host} answered HTTP {status} for {url}; try again later")]
    Http {
        host: String,
        url: String,
        status: u16,
    },
    #[error("{host} sent a listing of \"{repo}\" that could not be read: {detail}")]
    BadListing {
        host: String,
        repo: String,
        detail: String,
    },
    #[error(
        "\"{repo}\" is not a MusicGen model the plugin can load: it has no {missing} (MusicGen \
         models such as facebook/musicgen-melody or facebook/musicgen-small are)"
    )]
    NotLoadable { repo: String, missing: String },
    #[error(
        "not enough disk space in {folder}{}; free some space or point HF_HUB_CACHE at a bigger \
         disk",
        space_detail(*.needed, *.available)
    )]
    DiskFull {
        folder: PathBuf,
        needed: u64,
        available: Option<u64>,
    },
    #[error("the download of {file} broke off ({detail}); press Download again to continue")]
    Interrupted { file: String, detail: String },
    #[error("{file} arrived damaged ({detail}); press Download again")]
    Corrupt { file: String, detail: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("download cancelled")]
    Cancelled,
}

impl DownloadError {
    /// Whether the hub could not be reached at all (the window shows the by-hand instructions).
    pub fn is_offline(&self) -> bool {
        matches!(self, DownloadError::Offline { .. })
    }
}

/// One file of a model on the hub.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    /// Path inside the repo, e.g. `model.safetensors`.
    pub name: String,
    /// Size in bytes, when the hub said.
    pub size: Option<u64>,
    /// The blob's name in the cache: the SHA-256 for large (LFS) files, the git object id
    /// otherwise, as `huggingface_hub` names them.
    pub blob: String,
    /// The expected SHA-256 of the content (large files only).
    pub sha256: Option<String>,
}

/// What a download will fetch: a repo at one commit, and its files.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub repo: String,
    /// The revision asked for (a branch such as `main`, a tag or a commit).
    pub revision: String,
    /// The commit it points to now; files are fetched from that commit.
    pub commit: String,
    pub files: Vec<RemoteFile>,
}

impl Plan {
    /// Sum of the known file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().filter_map(|f| f.size).sum()
    }
}

/// Where a download stands, reported after every chunk read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownloadProgress {
    /// The file being fetched.
    pub file: String,
    /// Its position in the plan, from 0.
    pub file_index: usize,
    pub file_count: usize,
    pub file_done: u64,
    pub file_size: u64,
    /// Bytes of the whole model present so far (files already in the cache count as done).
    pub done: u64,
    pub total: u64,
    /// Bytes actually received over the network so far (for a speed figure).
    pub transferred: u64,
}

/// Downloads `repo` at `revision` into the cache of `hub` and returns its snapshot folder (what
/// [`super::resolve_model`] resolves the name to). Blocks for as long as the download takes:
/// run it on a background thread. Returns [`DownloadError::Cancelled`] soon after `cancel` is
/// set.
pub fn download(
    hub: &Hub,
    repo: &str,
    revision: &str,
    cancel: &AtomicBool,
    on_progress: &mut dyn FnMut(&DownloadProgress),
) -> Result<PathBuf, DownloadError> {
    let client = Client::new(hub, repo);
    let plan = client.plan(revision, cancel)?;
    client.fetch(&plan, cancel, on_progress)
}

/// Lists what [`download`] of `repo` at `revision` would fetch. Fetches the weights index of a
/// sharded model (a small file) to learn its shards.
pub fn plan(
    hub: &Hub,
    repo: &str,
    revision: &str,
    cancel: &AtomicBool,
) -> Result<Plan, DownloadError> {
    Client::new(hub, repo).plan(revision, cancel)
}

/// Fetches the files of `plan` (from [`plan`]) and assembles the snapshot; see [`download`].
pub fn fetch(
    hub: &Hub,
    plan: &Plan,
    cancel: &AtomicBool,
    on_progress: &mut dyn FnMut(&DownloadProgress),
) -> Result<PathBuf, DownloadError> {
    Client::new(hub, &plan.repo).fetch(plan, cancel, on_progress)
}

/// A size in the units a download dialog uses (decimal, like the hub): "532 B", "12.3 MB",
/// "3.41 GB".
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let decimals = if value < 10.0 { 2 } else if value < 100.0 { 1 } else { 0 };
    format!("{value:.decimals$} {}", UNITS[unit])
}

/// ": the model needs 3.41 GB more, 1.20 GB free", as much of it as is known.
fn space_detail(needed: u64, available: Option<u64>) -> String {
    let mut s = String::new();
    if needed > 0 {
        s += &format!(": the model needs {} more", format_bytes(needed));
    }
    if let Some(a) = available {
        s += &format!("{}{} free", if s.is_empty() { ": " } else { ", " }, format_bytes(a));
    }
    s
}

/// The hub's listing of a repo (`/api/models/<repo>/revision/<rev>?blobs=true`).
#[derive(Debug, Deserialize)]
struct Listing {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default, rename = "blobId")]
    blob_id: Option<String>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Debug, Deserialize)]
struct Lfs {
    sha256: String,
    #[serde(default)]
    size: Option<u64>,
}

impl Sibling {
    fn remote(&self) -> RemoteFile {
        let sha256 = self.lfs.as_ref().map(|l| l.sha256.to_ascii_lowercase());
        RemoteFile {
            name: self.rfilename.clone(),
            size: self.lfs.as_ref().and_then(|l| l.size).or(self.size),
            blob: sha256
                .clone()
                .or_else(|| self.blob_id.clone())
                .unwrap_or_default(),
            sha256,
        }
    }
}

/// One download's connection to the hub.
struct Client<'a> {
    hub: &'a Hub,
    repo: &'a str,
    api: Option<hf_hub::api::sync::Api>,
    agent: ureq::Agent,
}

impl<'a> Client<'a> {
    fn new(hub: &'a Hub, repo: &'a str) -> Self {
        let api = hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(hub.cache.clone()))
            .with_endpoint(hub.endpoint.clone())
            .with_token(hub.token.clone())
            .with_progress(false)
            .build()
            .ok();
        let agent = ureq::AgentBuilder::new()
            .try_proxy_from_env(true)
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout_read(READ_TIMEOUT)
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("melodygen/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            hub,
            repo,
            api,
            agent,
        }
    }

    fn get(&self, url: &str) -> ureq::Request {
        let request = self.agent.get(url);
        match &self.hub.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    fn offline(&self, detail: String) -> DownloadError {
        DownloadError::Offline {
            host: self.hub.host().to_string(),
            repo: self.repo.to_string(),
            folder: self.hub.manual_folder(self.repo),
            detail,
        }
    }

    /// Maps a failed request to what it means for the producer. `listing` tells a missing repo
    /// (404 on the listing) from a missing file.
    fn request_error(&self, err: ureq::Error, url: &str, revision: &str, listing: bool) -> DownloadError {
        let host = self.hub.host().to_string();
        let repo = self.repo.to_string();
        match err {
            ureq::Error::Status(401 | 403, _) => DownloadError::NotAuthorized {
                host,
                repo,
                status: 401,
            },
            ureq::Error::Status(404, _) if listing => DownloadError::NotFound {
                host,
                repo,
                revision: revision.to_string(),
            },
            ureq::Error::Status(status, _) => DownloadError::Http {
                host,
                url: url.to_string(),
                status,
            },
            ureq::Error::Transport(t) => self.offline(transport_detail(&t)),
        }
    }

    /// URL of the hub's listing of the repo at `revision`.
    fn listing_url(&self, revision: &str) -> String {
        let repo = Repo::with_revision(self.repo.to_string(), RepoType::Model, revision.to_string());
        match &self.api {
            Some(api) => api.repo(repo).info_request().url().to_string(),
            None => format!("{}/api/{}", self.hub.endpoint, repo.api_url()),
        }
    }

    /// URL of `file` at `commit`.
    fn file_url(&self, commit: &str, file: &str) -> String {
        let repo = Repo::with_revision(self.repo.to_string(), RepoType::Model, commit.to_string());
        match &self.api {
            Some(api) => api.repo(repo).url(file),
            None => format!(
                "{}/{}/resolve/{}/{file}",
                self.hub.endpoint,
                repo.url(),
                repo.url_revision()
            ),
        }
    }

    fn plan(&self, revision: &str, cancel: &AtomicBool) -> Result<Plan, DownloadError> {
        if !looks_like_repo_id(self.repo) {
            return Err(DownloadError::NotARepoName {
                repo: self.repo.to_string(),
            });
        }
        let url = self.listing_url(revision);
        let response = self
            .get(&url)
            .query("blobs", "true")
            .call()
            .map_err(|e| self.request_error(e, &url, revision, true))?;
        let listing: Listing = serde_json::from_reader(response.into_reader()).map_err(|e| {
            DownloadError::BadListing {
                host: self.hub.host().to_string(),
                repo: self.repo.to_string(),
                detail: e.to_string(),
            }
        })?;
        check(cancel)?;
        let by_name: BTreeMap<&str, &Sibling> = listing
            .siblings
            .iter()
            .map(|s| (s.rfilename.as_str(), s))
            .collect();
        let not_loadable = |missing: &str| DownloadError::NotLoadable {
            repo: self.repo.to_string(),
            missing: missing.to_string(),
        };
        for required in ["config.json", "tokenizer.json"] {
            if !by_name.contains_key(required) {
                return Err(not_loadable(required));
            }
        }
        let mut files: Vec<RemoteFile> = SMALL_FILES
            .iter()
            .filter_map(|name| by_name.get(name).map(|s| s.remote()))
            .collect();
        let mut plan = Plan {
            repo: self.repo.to_string(),
            revision: revision.to_string(),
            commit: listing.sha.clone(),
            files: Vec::new(),
        };
        if let Some(single) = by_name.get(SINGLE_WEIGHTS) {
            files.push(single.remote());
        } else if let Some(index) = by_name.get(WEIGHTS_INDEX) {
            // The shards are whatever the index maps tensors to; fetch it (small) to know them.
            let index = index.remote();
            let path = self.fetch_blob(&plan, &index, cancel, &mut |_, _| {})?;
            for shard in shard_names(&path, &index.name)? {
                let sibling = by_name
                    .get(shard.as_str())
                    .ok_or_else(|| not_loadable(&format!("{shard} (listed in {WEIGHTS_INDEX})")))?;
                files.push(sibling.remote());
            }
            files.push(index);
        } else {
            return Err(not_loadable(&format!(
                "weights in safetensors format ({SINGLE_WEIGHTS} or {WEIGHTS_INDEX})"
            )));
        }
        plan.files = files;
        Ok(plan)
    }

    fn fetch(
        &self,
        plan: &Plan,
        cancel: &AtomicBool,
        on_progress: &mut dyn FnMut(&DownloadProgress),
    ) -> Result<PathBuf, DownloadError> {
        let blobs = self.hub.repo_dir(&plan.repo).join("blobs");
        create_dir(&blobs)?;
        remove_abandoned(&blobs);
        let missing: u64 = plan
            .files
            .iter()
            .filter(|f| !blob_complete(&blobs.join(&f.blob), f.size))
            .filter_map(|f| f.size)
            .sum();
        check_space(&blobs, missing)?;

        let mut progress = DownloadProgress {
            file_count: plan.files.len(),
            total: plan.total_bytes(),
            ..Default::default()
        };
        let mut paths = Vec::with_capacity(plan.files.len());
        for (index, file) in plan.files.iter().enumerate() {
            check(cancel)?;
            progress.file = file.name.clone();
            progress.file_index = index;
            progress.file_size = file.size.unwrap_or(0);
            progress.file_done = 0;
            on_progress(&progress);
            let start_done = progress.done;
            let start_transferred = progress.transferred;
            let path = self.fetch_blob(plan, file, cancel, &mut |received, size| {
                progress.file_done = received;
                progress.file_size = size;
                progress.done = start_done + received;
                progress.transferred = start_transferred + received;
                on_progress(&progress);
            })?;
            // A file already in the cache counts as done without being transferred.
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            progress.file_done = size;
            progress.done = start_done + size;
            on_progress(&progress);
            paths.push((file, path));
        }
        self.assemble(plan, &paths)
    }

    /// Makes `blobs/<file.blob>` hold the whole file (reusing it when already there) and returns
    /// its path. `on_chunk(received, size)` follows the transfer.
    fn fetch_blob(
        &self,
        plan: &Plan,
        file: &RemoteFile,
        cancel: &AtomicBool,
        on_chunk: &mut dyn FnMut(u64, u64),
    ) -> Result<PathBuf, DownloadError> {
        let blobs = self.hub.repo_dir(&plan.repo).join("blobs");
        create_dir(&blobs)?;
        let blob_name = if file.blob.is_empty() {
            // A hub that gave no object id: name the blob after its content once fetched.
            None
        } else {
            Some(file.blob.clone())
        };
        if let Some(name) = &blob_name {
            let path = blobs.join(name);
            if blob_complete(&path, file.size) {
                return Ok(path);
            }
        }
        let url = self.file_url(&plan.commit, &file.name);
        let response = self
            .get(&url)
            .call()
            .map_err(|e| self.request_error(e, &url, &plan.revision, false))?;
        let size = file.size.or_else(|| {
            response
                .header("Content-Length")
                .and_then(|v| v.trim().parse().ok())
        });
        let temp = TempFile::create(&blobs, &file.name)?;
        let mut reader = response.into_reader();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut received = 0u64;
        let mut out = std::io::BufWriter::with_capacity(CHUNK, &temp.file);
        loop {
            check(cancel)?;
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(DownloadError::Interrupted {
                        file: file.name.clone(),
                        detail: e.to_string(),
                    })
                }
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| write_error(&temp.path, e, size.unwrap_or(0).saturating_sub(received)))?;
            received += n as u64;
            on_chunk(received, size.unwrap_or(received).max(received));
        }
        out.flush()
            .map_err(|e| write_error(&temp.path, e, 0))?;
        drop(out);
        temp.file
            .sync_all()
            .map_err(|e| write_error(&temp.path, e, 0))?;
        let corrupt = |detail: String| DownloadError::Corrupt {
            file: file.name.clone(),
            detail,
        };
        if let Some(expected) = size {
            if received != expected {
                return Err(if received < expected {
                    DownloadError::Interrupted {
                        file: file.name.clone(),
                        detail: format!(
                            "got {} of {}",
                            format_bytes(received),
                            format_bytes(expected)
                        ),
                    }
                } else {
                    corrupt(format!("{received} bytes instead of {expected}"))
                });
            }
        }
        let digest = hex(&hasher.finalize());
        if let Some(expected) = &file.sha256 {
            if &digest != expected {
                return Err(corrupt(format!(
                    "SHA-256 {digest} instead of the hub's {expected}"
                )));
            }
        }
        let path = blobs.join(blob_name.unwrap_or(digest));
        temp.persist(&path)?;
        Ok(path)
    }

    /// Links every file into `snapshots/<commit>/` and points `refs/<revision>` at it. The
    /// snapshot is built beside `snapshots/` and moved in whole, so the model becomes
    /// resolvable in one step.
    fn assemble(&self, plan: &Plan, paths: &[(&RemoteFile, PathBuf)]) -> Result<PathBuf, DownloadError> {
        let repo_dir = self.hub.repo_dir(&plan.repo);
        let snapshots = repo_dir.join("snapshots");
        let snapshot = snapshots.join(&plan.commit);
        let target = if snapshot.is_dir() {
            // Already there (an earlier download of this commit, maybe by other tools): add
            // what it lacks in place; the files linked are whole.
            snapshot.clone()
        } else {
            // Same depth below the repo folder as `snapshots/<commit>`, so relative links stay
            // valid after the move.
            let staging = repo_dir
                .join(".melodygen-staging")
                .join(format!("{}-{}", plan.commit, unique()));
            create_dir(&staging)?;
            staging
        };
        for (file, blob) in paths {
            let link = target.join(&file.name);
            if let Some(parent) = link.parent() {
                create_dir(parent)?;
            }
            if link.symlink_metadata().is_ok() {
                std::fs::remove_file(&link).map_err(|source| io_error(&link, source))?;
            }
            link_blob(blob, &link, file.name.split('/').count())?;
        }
        if target != snapshot {
            create_dir(&snapshots)?;
            match std::fs::rename(&target, &snapshot) {
                Ok(()) => {}
                // Another download of the same commit finished first: its snapshot is whole.
                Err(_) if snapshot.is_dir() => {
                    let _ = std::fs::remove_dir_all(&target);
                }
                Err(source) => return Err(io_error(&snapshot, source)),
            }
            let _ = std::fs::remove_dir(repo_dir.join(".melodygen-staging"));
        }
        if plan.revision != plan.commit {
            hf_hub::Cache::new(self.hub.cache.clone())
                .repo(Repo::with_revision(
                    plan.repo.clone(),
                    RepoType::Model,
                    plan.revision.clone(),
                ))
                .create_ref(&plan.commit)
                .map_err(|source| io_error(&repo_dir.join("refs").join(&plan.revision), source))?;
        }
        Ok(snapshot)
    }
}

/// Why a connection failed, in a few plain words ("connection refused", "the address could not
/// be looked up") rather than the full error chain with the URL.
fn transport_detail(t: &ureq::Transport) -> String {
    use std::error::Error;
    if t.kind() == ureq::ErrorKind::Dns {
        return "the address could not be looked up".into();
    }
    match t.source() {
        Some(source) => {
            let text = source.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).trim();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => t.kind().to_string(),
            }
        }
        None => t.kind().to_string().to_lowercase(),
    }
}

/// The distinct shard file names an index maps tensors to, sorted.
fn shard_names(index: &Path, name: &str) -> Result<Vec<String>, DownloadError> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|source| io_error(index, source))?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| DownloadError::Corrupt {
        file: name.to_string(),
        detail: e.to_string(),
    })?;
    let mut shards: Vec<String> = parsed.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

fn check(cancel: &AtomicBool) -> Result<(), DownloadError> {
    if cancel.load(Ordering::Relaxed) {
        Err(DownloadError::Cancelled)
    } else {
        Ok(())
    }
}

/// Whether `path` is a whole blob: present, and of the expected size when known.
fn blob_complete(path: &Path, size: Option<u64>) -> bool {
    match std::fs::metadata(path) {
        Ok(m) => m.is_file() && size.is_none_or(|s| s == m.len()),
        Err(_) => false,
    }
}

fn create_dir(dir: &Path) -> Result<(), DownloadError> {
    std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))
}

fn io_error(path: &Path, source: std::io::Error) -> DownloadError {
    if is_disk_full(&source) {
        return DownloadError::DiskFull {
            folder: path.parent().unwrap_or(path).to_path_buf(),
            needed: 0,
            available: free_space(path),
        };
    }
    DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A write failed: a full disk is named as such, with what was still to come.
fn write_error(path: &Path, source: std::io::Error, remaining: u64) -> DownloadError {
    if is_disk_full(&source) {
        DownloadError::DiskFull {
            folder: path.parent().unwrap_or(path).to_path_buf(),
            needed: remaining,
            available: free_space(path),
        }
    } else {
        io_error(path, source)
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Fails before any transfer when the disk holding `dir` has less room than `needed`.
fn check_space(dir: &Path, needed: u64) -> Result<(), DownloadError> {
    match free_space(dir) {
        Some(available) if available < needed => Err(DownloadError::DiskFull {
            folder: dir.to_path_buf(),
            needed,
            available: Some(available),
        }),
        _ => Ok(()),
    }
}

/// Free bytes for this user on the disk holding `path` (or its nearest existing parent).
#[cfg(unix)]
fn free_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    let c_path = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_space(_path: &Path) -> Option<u64> {
    None
}

/// Points `link` at `blob` the way `huggingface_hub` does: a relative symlink
/// (`../../blobs/<hash>` for a top-level file), or where symlinks are not allowed (Windows
/// without developer mode) a hard link, else a copy.
fn link_blob(blob: &Path, link: &Path, depth: usize) -> Result<(), DownloadError> {
    let mut relative = PathBuf::new();
    for _ in 0..=depth {
        relative.push("..");
    }
    relative.push("blobs");
    relative.push(blob.file_name().unwrap_or_default());
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(&relative, link);
    #[cfg(windows)]
    let linked = std::os::windows::fs::symlink_file(&relative, link);
    #[cfg(not(any(unix, windows)))]
    let linked: std::io::Result<()> = Err(std::io::ErrorKind::Unsupported.into());
    if linked.is_ok() {
        return Ok(());
    }
    if std::fs::hard_link(blob, link).is_ok() {
        return Ok(());
    }
    std::fs::copy(blob, link)
        .map(|_| ())
        .map_err(|source| io_error(link, source))
}

/// A file being downloaded, under a name nothing resolves (`*.incomplete`), removed unless it
/// is persisted whole.
struct TempFile {
    path: PathBuf,
    file: std::fs::File,
    kept: bool,
}

impl TempFile {
    fn create(dir: &Path, name: &str) -> Result<Self, DownloadError> {
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        let path = dir.join(format!("{safe}.{}.incomplete", unique()));
        let file = std::fs::File::create(&path).map_err(|source| io_error(&path, source))?;
        Ok(Self {
            path,
            file,
            kept: false,
        })
    }

    fn persist(mut self, to: &Path) -> Result<(), DownloadError> {
        std::fs::rename(&self.path, to).map_err(|source| io_error(to, source))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the temporary files of downloads whose process is gone (a CLI stopped with Ctrl-C, a
/// host that crashed), which would otherwise fill the disk with half files nobody finishes.
/// Files of live processes (another DAW downloading the same model) are left alone.
fn remove_abandoned(blobs: &Path) {
    let Ok(entries) = std::fs::read_dir(blobs) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".incomplete") else { continue };
        // `<file>.<pid>-<n>.incomplete`, as [`TempFile::create`] names them.
        let pid = stem
            .rsplit('.')
            .next()
            .and_then(|tag| tag.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let abandoned = match pid {
            Some(pid) if pid == std::process::id() => false,
            Some(pid) => !process_alive(pid),
            None => false,
        };
        if abandoned {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id exists.
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Without a cheap check elsewhere, every other process's file counts as in use.
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// A name part no other download in this or another process uses at the same time.
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_download_dialog() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(999), "999 B");
        assert_eq!(format_bytes(1_000), "1.00 KB");
        assert_eq!(format_bytes(12_345_678), "12.3 MB");
        assert_eq!(format_bytes(999_960_000), "1.00 GB");
        assert_eq!(format_bytes(3_410_000_000), "3.41 GB");
        assert_eq!(format_bytes(250_000_000), "250 MB");
    }

    #[test]
    fn hub_names_its_host_and_cache_folders() {
        let hub = Hub::new("https://huggingface.co/", PathBuf::from("/c"));
        assert_eq!(hub.endpoint, "https://huggingface.co");
        assert_eq!(hub.host(), "huggingface.co");
        assert_eq!(
            hub.repo_dir("facebook/musicgen-melody"),
            PathBuf::from("/c/models--facebook--musicgen-melody")
        );
        assert_eq!(Hub::new("http://127.0.0.1:9/", "/c".into()).host(), "127.0.0.1:9");
    }

    /// A folder filled by hand at the place the offline message names is what the name resolves
    /// to.
    #[test]
    fn the_manual_folder_is_resolvable() {
        let cache = tempfile::tempdir().unwrap();
        let hub = Hub::new(DEFAULT_ENDPOINT, cache.path().to_path_buf());
        let folder = hub.manual_folder("facebook/musicgen-melody");
        std::fs::create_dir_all(&folder).unwrap();
        assert_eq!(
            super::super::resolve_in_cache(cache.path(), "facebook/musicgen-melody").unwrap(),
            folder
        );
    }

    #[test]
    fn listing_entries_name_blobs_like_huggingface_hub() {
        let listing: Listing = serde_json::from_str(
            r#"{"sha":"abc","siblings":[
                {"rfilename":"config.json","blobId":"1234","size":10},
                {"rfilename":"model.safetensors","blobId":"99","size":133,
                 "lfs":{"sha256":"ABCDEF","size":5000,"pointerSize":133}}]}"#,
        )
        .unwrap();
        let files: Vec<RemoteFile> = listing.siblings.iter().map(|s| s.remote()).collect();
        assert_eq!(files[0].blob, "1234");
        assert_eq!((files[0].size, files[0].sha256.as_deref()), (Some(10), None));
        // LFS: blob named by the content hash, size of the content (not the pointer).
        assert_eq!(files[1].blob, "abcdef");
        assert_eq!((files[1].size, files[1].sha256.as_deref()), (Some(5000), Some("abcdef")));
    }

    #[test]
    fn a_temp_file_goes_away_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let t = TempFile::create(dir.path(), "model.safetensors").unwrap();
        let path = t.path.clone();
        assert!(path.exists() && path.to_string_lossy().ends_with(".incomplete"));
        drop(t);
        assert!(!path.exists());
        let t = TempFile::create(dir.path(), "a/b.json").unwrap();
        t.persist(&dir.path().join("blob")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn half_files_of_ended_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let ours = TempFile::create(dir.path(), "model.safetensors").unwrap();
        let dead = dir.path().join(format!("model.safetensors.{gone}-0.incomplete"));
        let blob = dir.path().join("abcdef");
        std::fs::write(&dead, b"half").unwrap();
        std::fs::write(&blob, b"whole").unwrap();
        remove_abandoned(dir.path());
        assert!(!dead.exists(), "the ended process's half file goes");
        assert!(ours.path.exists() && blob.exists(), "a running download and whole blobs stay");
    }

    #[test]
    fn too_little_space_is_refused_before_downloading() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_space(dir.path(), u64::MAX).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DownloadError::DiskFull { .. }), "{err:?}");
        assert!(msg.contains("not enough disk space") && msg.contains("free"), "{msg}");
        check_space(dir.path(), 1).unwrap();
    }
}
