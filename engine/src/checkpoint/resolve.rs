//! Turning a model argument (local folder or Hugging Face repo id) into a folder on disk.
//!
//! Producers either point at a folder or name a hub model downloaded with the HF tools or the
//! plugin's Download button (`super::download`, which writes the same layout); resolving never
//! touches the network: a repo id is looked up in the local HF cache using the same layout and
//! environment variables as `huggingface_hub`.
use std::path::{Path, PathBuf};

use crate::error::EngineError;

/// Resolves `spec` to a model folder: an existing local folder, or a repo id such as
/// `facebook/musicgen-melody` found in the Hugging Face cache
/// (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
pub fn resolve_model(spec: &str) -> Result<PathBuf, EngineError> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !looks_like_repo_id(spec) {
        return Err(EngineError::ModelFolderMissing {
            path: path.to_path_buf(),
        });
    }
    resolve_in_cache(&hf_cache_root(), spec)
}

/// The HF hub cache root, from the environment as `huggingface_hub` computes it:
/// `$HF_HUB_CACHE`, else the legacy `$HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub` (also on Windows and macOS).
pub fn hf_cache_root() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    cache_root_from(&CacheEnv {
        hf_hub_cache: var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")),
        hf_home: var("HF_HOME"),
        xdg_cache_home: var("XDG_CACHE_HOME"),
        home: dirs::home_dir(),
    })
}

/// The environment [`hf_cache_root`] reads, passed explicitly so the precedence can be tested
/// without touching process-global environment variables.
#[derive(Debug, Default)]
struct CacheEnv {
    hf_hub_cache: Option<PathBuf>,
    hf_home: Option<PathBuf>,
    xdg_cache_home: Option<PathBuf>,
    home: Option<PathBuf>,
}

fn cache_root_from(env: &CacheEnv) -> PathBuf {
    let set = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = set(&env.hf_hub_cache) {
        return p;
    }
    if let Some(p) = set(&env.hf_home) {
        return p.join("hub");
    }
    let cache = set(&env.xdg_cache_home).unwrap_or_else(|| {
        set(&env.home)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".cache")
    });
    cache.join("huggingface").join("hub")
}

/// `owner/name` with no path-like decoration: exactly one slash, no leading `.`, `/` or `~`.
pub fn looks_like_repo_id(spec: &str) -> bool {
    let mut parts = spec.split('/');
    let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    ok(owner) && ok(name)
}

/// The folder of model `repo` under the cache root `cache` (`models--{owner}--{name}`, hub's own
/// naming), where resolving looks and downloads write.
pub fn repo_cache_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(hf_hub::Repo::model(repo.to_string()).folder_name())
}

/// Finds the snapshot folder of `repo` under the cache root `cache`:
/// `models--{owner}--{name}/snapshots/<refs/main>`, or the newest snapshot when `refs/main` is
/// absent or points at a snapshot that is not there (e.g. a partial copy).
pub fn resolve_in_cache(cache: &Path, repo: &str) -> Result<PathBuf, EngineError> {
    let not_found = || EngineError::ModelNotInCache {
        repo: repo.to_string(),
        looked_in: cache.to_path_buf(),
    };
    let repo_dir = repo_cache_dir(cache, repo);
    let snapshots = repo_dir.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo_dir.join("refs").join("main")) {
        let dir = snapshots.join(rev.trim());
        if !rev.trim().is_empty() && dir.is_dir() {
            return Ok(dir);
        }
    }
    let entries = std::fs::read_dir(&snapshots).map_err(|_| not_found())?;
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_told_apart_from_paths() {
        assert!(looks_like_repo_id("facebook/musicgen-melody"));
        assert!(looks_like_repo_id("facebook/musicgen-stereo-small"));
        assert!(!looks_like_repo_id("./models/melody"));
        assert!(!looks_like_repo_id("/abs/path"));
        assert!(!looks_like_repo_id("a/b/c"));
        assert!(!looks_like_repo_id("musicgen"));
        assert!(!looks_like_repo_id("~/models"));
    }

    #[test]
    fn cache_root_precedence_matches_huggingface_hub() {
        let p = |s: &str| Some(PathBuf::from(s));
        let env = |hub: Option<PathBuf>, home_: Option<PathBuf>, xdg: Option<PathBuf>| CacheEnv {
            hf_hub_cache: hub,
            hf_home: home_,
            xdg_cache_home: xdg,
            home: p("/home/u"),
        };
        let root = |e: CacheEnv| cache_root_from(&e);
        assert_eq!(root(env(p("/c"), p("/h"), p("/x"))), PathBuf::from("/c"));
        assert_eq!(root(env(None, p("/h"), p("/x"))), PathBuf::from("/h/hub"));
        assert_eq!(
            root(env(None, None, p("/x"))),
            PathBuf::from("/x/huggingface/hub")
        );
        assert_eq!(
            root(env(None, None, None)),
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
        // Empty variables count as unset, as in huggingface_hub.
        assert_eq!(root(env(p(""), p("/h"), None)), PathBuf::from("/h/hub"));
    }

    #[test]
    fn finds_snapshot_via_refs_main_then_falls_back() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--facebook--musicgen-melody");
        let old = repo.join("snapshots").join("aaaa");
        let new = repo.join("snapshots").join("bbbb");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::create_dir_all(&new).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join("main"), "aaaa\n").unwrap();
        assert_eq!(
            resolve_in_cache(cache.path(), "facebook/musicgen-melody").unwrap(),
            old
        );

        // refs/main pointing at a missing snapshot, then absent: newest snapshot wins.
        std::fs::write(repo.join("refs").join("main"), "cccc").unwrap();
        let t = std::time::SystemTime::now();
        filetime_touch(&old, t - std::time::Duration::from_secs(100));
        filetime_touch(&new, t);
        assert_eq!(
            resolve_in_cache(cache.path(), "facebook/musicgen-melody").unwrap(),
            new
        );
        std::fs::remove_file(repo.join("refs").join("main")).unwrap();
        assert_eq!(
            resolve_in_cache(cache.path(), "facebook/musicgen-melody").unwrap(),
            new
        );
    }

    #[test]
    fn missing_repo_names_repo_and_cache() {
        let cache = tempfile::tempdir().unwrap();
        let err = resolve_in_cache(cache.path(), "facebook/musicgen-small").unwrap_err();
        match &err {
            EngineError::ModelNotInCache { repo, looked_in } => {
                assert_eq!(repo, "facebook/musicgen-small");
                assert_eq!(looked_in, cache.path());
            }
            other => panic!("unexpected error {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("facebook/musicgen-small") && msg.contains("huggingface-cli download"),
            "{msg}"
        );
    }

    #[test]
    fn missing_local_folder_is_reported() {
        let err = resolve_model("./no/such/folder").unwrap_err();
        assert!(
            matches!(err, EngineError::ModelFolderMissing { .. }),
            "{err:?}"
        );
    }

    /// Sets a folder's modification time (std has no portable setter for directories).
    fn filetime_touch(dir: &Path, t: std::time::SystemTime) {
        let f = std::fs::File::open(dir).unwrap();
        f.set_modified(t).unwrap();
    }
}
