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
//!
//! The module is laid out by concern: `hub` (where from and to), `client` (one download's
//! connection and how its failures read), `listing` (what a repo holds and what to fetch),
//! `transfer` (streaming one file with cancel and hash check), `cache` (blobs, temporary files
//! and the snapshot in the `huggingface_hub` layout), `disk` (free space and write failures),
//! `error` (what a producer is told) and `format` (sizes for dialogs).

mod cache;
mod client;
mod disk;
mod error;
mod format;
mod hub;
mod listing;
mod transfer;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use client::Client;

pub use error::DownloadError;
pub use format::format_bytes;
pub use hub::{Hub, DEFAULT_ENDPOINT};

/// What to put in a folder by hand, for messages.
pub const FILES_BY_HAND: &str = "config.json, generation_config.json, tokenizer.json and \
     model.safetensors (or model.safetensors.index.json with its model-0000N-of-0000M.safetensors \
     shards)";

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
    /// The repo id, `owner/name`.
    pub repo: String,
    /// The revision asked for (a branch such as `main`, a tag or a commit).
    pub revision: String,
    /// The commit it points to now; files are fetched from that commit.
    pub commit: String,
    /// Every file to fetch, in download order.
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
    /// Files in the plan.
    pub file_count: usize,
    /// Bytes of the current file received so far.
    pub file_done: u64,
    /// Size of the current file in bytes (bytes received so far when the hub did not say).
    pub file_size: u64,
    /// Bytes of the whole model present so far (files already in the cache count as done).
    pub done: u64,
    /// Bytes of the whole model (the sum of the known file sizes).
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
