//! Where a download comes from (the hub's endpoint and token) and where it goes (the Hugging Face
//! cache), set up the way `huggingface_hub` sets itself up so both find the same files.

use std::path::PathBuf;

use crate::checkpoint::resolve::hf_cache_root;

/// The public hub, used unless `HF_ENDPOINT` names a mirror.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

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
        crate::checkpoint::resolve::repo_cache_dir(&self.cache, repo)
    }

    /// A folder a producer can fill by hand that [`crate::checkpoint::resolve_model`] finds for `repo`.
    pub fn manual_folder(&self, repo: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join("main")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            crate::checkpoint::resolve_in_cache(cache.path(), "facebook/musicgen-melody").unwrap(),
            folder
        );
    }
}
