//! The compliance bookkeeping of one batch (a field of the core): what to undo and
//! which server-originated events to carry over when the batch does not commit.
//! A plain data type below `core`; `record.rs` fills and drains it.

use super::NewEvent;
use crate::channel::DialogId;

/// An in-memory effect to undo if the batch does not commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The dialog joined the room (guid): remove it again.
    Joined(String, DialogId),
    /// The dialog (of user) left the room (guid): put it back if the dialog still exists.
    Parted(String, DialogId, String),
}

/// Compliance bookkeeping of the batch being handled (a field of the core).
#[derive(Debug, Default)]
pub struct BatchState {
    /// In-memory effects to undo if the batch does not commit, oldest first.
    pub(crate) undo: Vec<Undo>,
    /// PART events of dialogs the server dropped in this batch.
    pub(crate) server_events: Vec<NewEvent>,
    /// Events carried over from a batch that did not commit, recorded first in the next.
    pub(crate) carry: Vec<NewEvent>,
}
