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
            },
        }
    }
}
