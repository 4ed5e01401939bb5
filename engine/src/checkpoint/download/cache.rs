//! The Hugging Face cache layout a download writes: blobs under temporary names until whole,
//! snapshot links to them, the snapshot moved in last and `refs/` written, and the clean-up of
//! half files that ended processes left behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hf_hub::{Repo, RepoType};

use super::client::Client;
use super::disk::{create_dir, io_error};
use super::{DownloadError, Plan, RemoteFile};

impl Client<'_> {
    /// Links every file into `snapshots/<commit>/` and points `refs/<revision>` at it. The
    /// snapshot is built beside `snapshots/` and moved in whole, so the model becomes
    /// resolvable in one step.
    pub(super) fn assemble(&self, plan: &Plan, paths: &[(&RemoteFile, PathBuf)]) -> Result<PathBuf, DownloadError> {
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
pub(super) struct TempFile {
    pub(super) path: PathBuf,
    pub(super) file: std::fs::File,
    kept: bool,
}

impl TempFile {
    pub(super) fn create(dir: &Path, name: &str) -> Result<Self, DownloadError> {
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

    pub(super) fn persist(mut self, to: &Path) -> Result<(), DownloadError> {
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
pub(super) fn remove_abandoned(blobs: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
