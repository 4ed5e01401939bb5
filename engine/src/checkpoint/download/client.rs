//! One download's connection to the hub: the HTTP agent (timeouts, proxy, token), the URLs
//! hf-hub builds, and what a failed request means for the producer.

use std::time::Duration;

use hf_hub::{Repo, RepoType};

use super::error::transport_detail;
use super::{DownloadError, Hub};

/// How long a connection attempt may take before the hub counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a read may stall before the download counts as broken off.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One download's connection to the hub.
pub(super) struct Client<'a> {
    pub(super) hub: &'a Hub,
    pub(super) repo: &'a str,
    api: Option<hf_hub::api::sync::Api>,
    agent: ureq::Agent,
}

impl<'a> Client<'a> {
    pub(super) fn new(hub: &'a Hub, repo: &'a str) -> Self {
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

    pub(super) fn get(&self, url: &str) -> ureq::Request {
        let request = self.agent.get(url);
        match &self.hub.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    pub(super) fn offline(&self, detail: String) -> DownloadError {
        DownloadError::Offline {
            host: self.hub.host().to_string(),
            repo: self.repo.to_string(),
            folder: self.hub.manual_folder(self.repo),
            detail,
        }
    }

    /// Maps a failed request to what it means for the producer. `listing` tells a missing repo
    /// (404 on the listing) from a missing file.
    pub(super) fn request_error(&self, err: ureq::Error, url: &str, revision: &str, listing: bool) -> DownloadError {
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
    pub(super) fn listing_url(&self, revision: &str) -> String {
        let repo = Repo::with_revision(self.repo.to_string(), RepoType::Model, revision.to_string());
        match &self.api {
            Some(api) => api.repo(repo).info_request().url().to_string(),
            None => format!("{}/api/{}", self.hub.endpoint, repo.api_url()),
        }
    }

    /// URL of `file` at `commit`.
    pub(super) fn file_url(&self, commit: &str, file: &str) -> String {
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
}
