//! Streaming one file from the hub into a blob: cancellable between reads, checked for size and
//! SHA-256 before it is given its final name.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use super::cache::{remove_abandoned, TempFile};
use super::client::Client;
use super::disk::{check_space, create_dir, write_error};
use super::{format_bytes, DownloadError, DownloadProgress, Plan, RemoteFile};

/// Bytes read between two looks at the cancel flag.
const CHUNK: usize = 256 * 1024;

impl Client<'_> {
    /// Fetches every file of `plan` (reporting progress) and assembles the snapshot.
    pub(super) fn fetch(
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
    pub(super) fn fetch_blob(
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
}

pub(super) fn check(cancel: &AtomicBool) -> Result<(), DownloadError> {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
