//! The disk a download writes to: free space checked before any transfer, and write failures
//! told apart (a full disk says how much room is needed).

use std::path::Path;

use super::DownloadError;

pub(super) fn create_dir(dir: &Path) -> Result<(), DownloadError> {
    std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))
}

pub(super) fn io_error(path: &Path, source: std::io::Error) -> DownloadError {
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
pub(super) fn write_error(path: &Path, source: std::io::Error, remaining: u64) -> DownloadError {
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
pub(super) fn check_space(dir: &Path, needed: u64) -> Result<(), DownloadError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
