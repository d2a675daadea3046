//! The compliance pipeline (call-flows.md "Call flow 3", DESIGN.md "Storage and the
//! compliance pipeline"): every audited action leaves an event that reaches the
//! compliance adapter's output **exactly once**, across crashes.
//!
//! ```text
//! action (cmd/*.rs) --same store transaction--> outbox (store table compliance_outbox)
//!   -> queue.rs:   move to the compliance database (mgccomp, its own SQLite file),
//!                  INSERT OR IGNORE keyed by event id, then delete from the outbox
//!   -> worker.rs:  every run_interval: record a batch (deterministic id) in mgccomp,
//!                  hand it to the adapter, delete its events only after the adapter
//!                  confirmed
//!   -> xml.rs / jsonl.rs: one file per batch (or per batch and room), written
//!                  atomically: temp file, fsync, rename, fsync of the directory
//! verify.rs: compares the store, mgccomp and the adapter output (missing, duplicated).
//! ```
//!
//! Why nothing is lost or duplicated:
//! - The outbox row is written in the action's transaction (group commit), so a
//!   committed action always has its event and a rolled-back one never does.
//! - Event ids come from the outbox's `AUTOINCREMENT` key: unique, never reused, dense.
//! - Moving is idempotent (keyed by id); an event leaves the outbox only after mgccomp
//!   committed it, and the worker moves before it exports, so a re-moved event is
//!   always still in mgccomp (never re-inserted after export).
//! - A batch's id and event set are committed before the adapter runs; a re-run writes
//!   the same files with the same bytes (file names derive from the batch id), so
//!   output written before a crash is replaced, not repeated.
//!
//! Fault points ([`FaultPoint`]) let tests stop the pipeline at each step (then crash
//! the host); production passes no hook.

pub mod adapter;
pub mod batch;
pub mod db;
pub mod jsonl;
pub mod queue;
pub mod record;
pub mod verify;
pub mod worker;
pub mod xml;

pub use adapter::{Adapter, AdapterError, Batch};
pub use db::ComplianceDb;
pub use worker::{Worker, WorkerError};

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What an event records (XCCOS.md, compliance section: message types; plus SEARCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventKind {
    /// A user came online in a room (first dialog joined: join or bjoin).
    Join,
    /// A user left a room (last dialog left: part, BYE, connection closed, expiry).
    Part,
    /// A chat message posted (grpchat); `content` is the text.
    Chat,
    /// Chat history viewed (`bccontext`); `content` is the query, e.g. `last 25`.
    Backchat,
    /// A file uploaded to a room (web services; not recorded yet).
    FileUpload,
    /// A file downloaded from a room (web services; not recorded yet).
    FileDownload,
    /// A search (`chansrch`); no room; `content` is `BYNAME:<criteria>`.
    Search,
}

impl EventKind {
    /// The upper-case name used in the outbox, mgccomp and adapter output
    /// (`Message type="..."` in the XML format).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "JOIN",
            EventKind::Part => "PART",
            EventKind::Chat => "CHAT",
            EventKind::Backchat => "BACKCHAT",
            EventKind::FileUpload => "FILEUPLOAD",
            EventKind::FileDownload => "FILEDOWNLOAD",
            EventKind::Search => "SEARCH",
        }
    }

    /// Inverse of [`EventKind::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "JOIN" => EventKind::Join,
            "PART" => EventKind::Part,
            "CHAT" => EventKind::Chat,
            "BACKCHAT" => EventKind::Backchat,
            "FILEUPLOAD" => EventKind::FileUpload,
            "FILEDOWNLOAD" => EventKind::FileDownload,
            "SEARCH" => EventKind::Search,
            _ => return None,
        })
    }
}

/// An event to record (its id is assigned by the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// What happened (`type` in JSON).
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// `ma-chan://<domain>/<guid>` of the room; empty for events without a room (SEARCH).
    pub room_uri: String,
    /// Room name at the time of the event; empty without a room.
    pub room_name: String,
    /// SIP URI of the user who acted, e.g. `sip:user1@contoso.com`.
    pub user: String,
    /// Server time of the action, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Message text (CHAT), query (BACKCHAT, SEARCH), file name (FILE*); else empty.
    pub content: String,
}

/// A recorded event: [`NewEvent`] plus its unique id; its fields read through `Deref`
/// (`event.user`). Serialized as one JSON Lines record by the jsonl adapter, the id
/// first (`{"id":1,"type":"CHAT","room_uri":..}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique event id (the outbox key: positive, never reused).
    pub id: i64,
    /// What happened, where, who, when.
    #[serde(flatten)]
    pub ev: NewEvent,
}

impl Event {
    /// The event `ev` with id `id`.
    pub fn new(id: i64, ev: NewEvent) -> Event {
        Event { id, ev }
    }
}

impl std::ops::Deref for Event {
    type Target = NewEvent;
    fn deref(&self) -> &NewEvent {
        &self.ev
    }
}

impl std::ops::DerefMut for Event {
    fn deref_mut(&mut self) -> &mut NewEvent {
        &mut self.ev
    }
}

/// A step of the pipeline where a test can stop it (see [`FaultHook`]). Serialized
/// in kebab-case (`after-move`, ...) in replayable schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultPoint {
    /// Events committed to mgccomp, still in the outbox.
    AfterMove,
    /// Moved events deleted from the outbox.
    AfterOutboxDelete,
    /// A batch (id + events) committed in mgccomp, adapter not yet run.
    AfterBatchRecorded,
    /// Half of an output file written to its temp file (no fsync, no rename yet).
    MidAdapterWrite,
    /// An output file renamed into place (directory fsynced), batch not yet deleted.
    AfterRename,
    /// The batch's events deleted from mgccomp and the batch marked done.
    AfterBatchDone,
}

impl FaultPoint {
    /// Every fault point, in pipeline order.
    pub const ALL: [FaultPoint; 6] = [
        FaultPoint::AfterMove,
        FaultPoint::AfterOutboxDelete,
        FaultPoint::AfterBatchRecorded,
        FaultPoint::MidAdapterWrite,
        FaultPoint::AfterRename,
        FaultPoint::AfterBatchDone,
    ];
}

/// What the pipeline does at a fault point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Go on (production behaviour).
    Continue,
    /// Stop the worker right here, as if the process died (the test then crashes the
    /// host; on-disk state is exactly what this point left).
    Halt,
    /// The adapter reports a failure here (only at adapter points: MidAdapterWrite,
    /// AfterRename); the batch stays pending and is retried at the next run.
    FailAdapter,
}

/// A test's hook, called at every [`FaultPoint`]. Production runs without one.
pub type FaultHook = Arc<dyn Fn(FaultPoint) -> Fault + Send + Sync>;

/// Calls `hook` (if any) at `point`.
pub(crate) fn at(hook: Option<&FaultHook>, point: FaultPoint) -> Fault {
    hook.map_or(Fault::Continue, |h| h(point))
}
