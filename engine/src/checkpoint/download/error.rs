//! Why a download did not complete, in words a producer can act on.

use std::path::PathBuf;

use super::format::format_bytes;
use super::FILES_BY_HAND;

/// Why a download did not complete. Every message is meant for a producer.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The name given is not of the form `owner/name`.
    #[error(
        "\"{repo}\" is not a Hugging Face model name: write it as owner/name, for example \
         facebook/musicgen-melody"
    )]
    NotARepoName {
        /// The name as given.
        repo: String,
    },
    /// The hub could not be reached (no network, DNS or TLS failure); the message says how to
    /// install the model by hand.
    #[error(
        "no connection to {host} ({detail}). Download the model on a computer that is online \
         with `huggingface-cli download {repo}` and copy its Hugging Face cache over, or put the \
         files ({FILES_BY_HAND}) in {folder}"
    )]
    Offline {
        /// The hub's host name, e.g. `huggingface.co`.
        host: String,
        /// The repo id asked for.
        repo: String,
        /// The folder to put the files in by hand.
        folder: PathBuf,
        /// Why the connection failed, in a few plain words.
        detail: String,
    },
    /// The hub has no such repo or revision (HTTP 404).
    #[error(
        "{host} has no model called \"{repo}\" (revision {revision}): check the spelling, for \
         example facebook/musicgen-melody"
    )]
    NotFound {
        /// The hub's host name.
        host: String,
        /// The repo id asked for.
        repo: String,
        /// The revision asked for.
        revision: String,
    },
    /// The hub refused access (HTTP 401/403): a misspelt, gated or private repo.
    #[error(
        "{host} refused \"{repo}\" (HTTP {status}): the name is misspelt, or the model is gated \
         or private. For a gated model, accept its terms on its page on {host}, then log in with \
         `huggingface-cli login` (or set HF_TOKEN) and try again"
    )]
    NotAuthorized {
        /// The hub's host name.
        host: String,
        /// The repo id asked for.
        repo: String,
        /// The HTTP status (401 for both 401 and 403).
        status: u16,
    },
    /// Any other HTTP error status (usually a server-side problem).
    #[error("{host} answered HTTP {status} for {url}; try again later")]
    Http {
        /// The hub's host name.
        host: String,
        /// The URL that failed.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The repo's file listing is not what the hub API sends.
    #[error("{host} sent a listing of \"{repo}\" that could not be read: {detail}")]
    BadListing {
        /// The hub's host name.
        host: String,
        /// The repo id asked for.
        repo: String,
        /// What could not be read.
        detail: String,
    },
    /// The repo exists but lacks a file every MusicGen checkpoint has.
    #[error(
        "\"{repo}\" is not a MusicGen model the plugin can load: it has no {missing} (MusicGen \
         models such as facebook/musicgen-melody or facebook/musicgen-small are)"
    )]
    NotLoadable {
        /// The repo id asked for.
        repo: String,
        /// The missing file, e.g. `tokenizer.json`.
        missing: String,
    },
    /// The cache's disk has too little room, found before the transfer or on a failed write.
    #[error(
        "not enough disk space in {folder}{}; free some space or point HF_HUB_CACHE at a bigger \
         disk",
        space_detail(*.needed, *.available)
    )]
    DiskFull {
        /// The folder written to.
        folder: PathBuf,
        /// Bytes still to write (0 when unknown).
        needed: u64,
        /// Free bytes on that disk, when known.
        available: Option<u64>,
    },
    /// A transfer ended early (connection lost or fewer bytes than announced); the blobs
    /// already whole are kept and the next attempt continues from them.
    #[error("the download of {file} broke off ({detail}); press Download again to continue")]
    Interrupted {
        /// The file's path in the repo.
        file: String,
        /// What happened, e.g. "got 1.2 GB of 3.4 GB".
        detail: String,
    },
    /// A file arrived with the wrong size or SHA-256, or an index that does not parse.
    #[error("{file} arrived damaged ({detail}); press Download again")]
    Corrupt {
        /// The file's path in the repo.
        file: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A file or folder in the cache could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The cancel flag was set; the cache holds at most whole blobs.
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
