//! What a command handler returns, below the handlers and the compliance recorder
//! (`compliance/record.rs` reports its failures as a [`CmdError`]) so neither imports
//! the other's module.

use crate::xccos::RplData;

/// A refused command: XCCOS reply code (docs/xccos-codes.md) and the reason, logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError {
    /// Reply code, e.g. 404.
    pub code: u16,
    /// Human-readable reason (never sent for secret rooms' details).
    pub reason: String,
}

impl CmdError {
    /// An error with `code` and `reason`.
    pub fn new(code: u16, reason: impl Into<String>) -> CmdError {
        CmdError {
            code,
            reason: reason.into(),
        }
    }
}

/// What a command handler returns: the reply data, or why it was refused.
pub type CmdResult = Result<RplData, CmdError>;
