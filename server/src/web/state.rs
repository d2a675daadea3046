//! The core's web state (a field of the core): tokens and the file stores. A plain
//! data type below `core`; `ops.rs` uses it.

use super::tokens::Tokens;
use crate::files::FileStore;

/// The core's web state: tokens and the file stores (when `[http]` is configured).
#[derive(Debug, Default)]
pub struct WebState {
    /// Bearer and file tokens.
    pub tokens: Tokens,
    /// The file store and the compliance file store.
    pub files: Option<(FileStore, FileStore)>,
    /// Web page sessions (issue 16) by session id (the `pchat_session` cookie).
    pub sessions: std::collections::BTreeMap<String, WebSession>,
}

/// A signed-in browser (web pages, issue 16): in memory, so a restart signs everyone
/// out; ends at sign-out or `expires_ms` (`[http] bearer_ttl_ms` after sign-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The user's SIP URI.
    pub user: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: i64,
}

impl WebState {
    /// The state for `[http]` (`None`: web services off).
    pub fn new(cfg: Option<&crate::config::HttpConfig>) -> WebState {
        match cfg {
            None => WebState::default(),
            Some(h) => WebState {
                tokens: Tokens::new(i64::try_from(h.file_token_ttl_ms).unwrap_or(i64::MAX)),
                files: Some((
                    FileStore::new(&h.file_store),
                    FileStore::new(&h.compliance_file_store),
                )),
                sessions: Default::default(),
            },
        }
    }
}
