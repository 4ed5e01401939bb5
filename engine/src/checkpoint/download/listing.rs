//! What a repo on the hub holds and which of its files a MusicGen download fetches.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::Deserialize;

use crate::checkpoint::resolve::looks_like_repo_id;
use super::client::Client;
use super::disk::io_error;
use super::transfer::check;
use super::{DownloadError, Plan, RemoteFile};

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

impl Client<'_> {
    /// Lists the repo at `revision` and picks the files to fetch: the small files it has, and
    /// the single weights file or the index with the shards it names.
    pub(super) fn plan(&self, revision: &str, cancel: &AtomicBool) -> Result<Plan, DownloadError> {
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
}

/// The distinct shard file names an index maps tensors to, sorted.
pub(super) fn shard_names(index: &Path, name: &str) -> Result<Vec<String>, DownloadError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
