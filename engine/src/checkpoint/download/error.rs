//! Why a download did not complete, in words a producer can act on.

use std::path::PathBuf;

use super::format::format_bytes;
use super::FILES_BY_HAND;

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

/// Why a connection failed, in a few plain words ("connection refused", "the address could not
/// be looked up") rather than the full error chain with the URL.
pub(super) fn transport_detail(t: &ureq::Transport) -> String {
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
