//! The adapter interface (the seed's "compliance adapter") and the file adapter that
//! the XML and JSON Lines formats plug into.
//!
//! Contract: [`Adapter::deliver`] must be idempotent per batch id - delivering the same
//! [`Batch`] again (after a crash, or a failure) must not duplicate anything downstream.
//! [`FileAdapter`] gets that by naming files after the batch id and writing them
//! atomically (temp file, fsync, rename, fsync of the directory) with bytes that depend
//! only on the batch: a re-run replaces a file with an identical one.

use super::{at, Event, Fault, FaultHook, FaultPoint};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A batch handed to the adapter: its deterministic id and its events, id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Batch id (recorded in the compliance database before the adapter runs).
    pub id: u64,
    /// Events, lowest id first.
    pub events: Vec<Event>,
}

/// Why an adapter did not confirm a batch. The batch stays pending and is delivered
/// again at the next run.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// Writing the output failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The adapter refused the batch (an injected failure in tests, or a remote error).
    #[error("adapter failed: {0}")]
    Failed(String),
    /// A test's fault hook halted the pipeline here (simulated process death).
    #[error("halted by fault hook")]
    Halted,
}

/// Something that takes batches of events somewhere (files, an archive service...).
pub trait Adapter: Send {
    /// Short name for logs, e.g. `xml`.
    fn name(&self) -> &str;
    /// Delivers `batch`; `Ok` means it is durably accepted and may be deleted. Must be
    /// idempotent per batch id (see the module docs). `hook` is the test fault hook
    /// (call it at [`FaultPoint::MidAdapterWrite`] and [`FaultPoint::AfterRename`]).
    fn deliver(&mut self, batch: &Batch, hook: Option<&FaultHook>) -> Result<(), AdapterError>;
}

/// An output file format for [`FileAdapter`].
pub trait Format: Send + Sync {
    /// Short name (`xml`, `jsonl`).
    fn name(&self) -> &str;
    /// File extension without the dot (default: the name); `verify` reads back files
    /// with it.
    fn extension(&self) -> &str {
        self.name()
    }
    /// The file's bytes for `events` (all from one batch, id order). Must depend only on
    /// `events` (no clock, no randomness): a re-run must write identical bytes.
    fn render(&self, events: &[Event]) -> Vec<u8>;
    /// Reads back the events of a file written by [`Format::render`]. Errors: a message
    /// naming what is malformed (with line where it applies).
    fn parse(&self, bytes: &[u8]) -> Result<Vec<Event>, String>;
}

/// The adapter that writes each batch as files of a [`Format`] into a directory.
pub struct FileAdapter {
    dir: PathBuf,
    format: Box<dyn Format>,
    one_room_per_file: bool,
}

/// Prefix of every output file name: `pchat-compliance-<batch:08>[-<room>].<ext>`.
pub const FILE_PREFIX: &str = "pchat-compliance-";

impl FileAdapter {
    /// Writes into `dir` (created when needed); `one_room_per_file` splits each batch
    /// by room (events without a room go to the `-none` file).
    pub fn new(dir: PathBuf, format: Box<dyn Format>, one_room_per_file: bool) -> FileAdapter {
        FileAdapter {
            dir,
            format,
            one_room_per_file,
        }
    }

    /// The files (name, events) a batch becomes, in name order.
    pub fn files_for(&self, batch: &Batch) -> Vec<(String, Vec<Event>)> {
        let ext = self.format.extension();
        if !self.one_room_per_file {
            return vec![(
                format!("{FILE_PREFIX}{:08}.{ext}", batch.id),
                batch.events.clone(),
            )];
        }
        let mut by_room: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for e in &batch.events {
            let key = crate::ids::split_room_uri(&e.room_uri)
                .map(|(_, guid)| sanitize(guid))
                .unwrap_or_else(|| "none".to_string());
            by_room.entry(key).or_default().push(e.clone());
        }
        by_room
            .into_iter()
            .map(|(room, evs)| (format!("{FILE_PREFIX}{:08}-{room}.{ext}", batch.id), evs))
            .collect()
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Adapter for FileAdapter {
    fn name(&self) -> &str {
        self.format.name()
    }

    fn deliver(&mut self, batch: &Batch, hook: Option<&FaultHook>) -> Result<(), AdapterError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| AdapterError::Io {
            path: self.dir.clone(),
            source,
        })?;
        for (name, events) in self.files_for(batch) {
            let bytes = self.format.render(&events);
            write_atomic(&self.dir, &name, &bytes, hook)?;
        }
        Ok(())
    }
}

fn fault(hook: Option<&FaultHook>, point: FaultPoint) -> Result<(), AdapterError> {
    match at(hook, point) {
        Fault::Continue => Ok(()),
        Fault::Halt => Err(AdapterError::Halted),
        Fault::FailAdapter => Err(AdapterError::Failed(format!("injected at {point:?}"))),
    }
}

/// Writes `bytes` to `dir/name` atomically: `dir/.name.tmp` is written and fsynced,
/// renamed over `dir/name`, then the directory is fsynced (so the rename is durable).
/// A crash leaves either the old file, the new one, or a stray temp file (ignored by
/// readers and overwritten by the next attempt) - never a partial `name`.
pub fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    hook: Option<&FaultHook>,
) -> Result<(), AdapterError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AdapterError::Io { path, source }
    };
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half]).map_err(io(&tmp))?;
        fault(hook, FaultPoint::MidAdapterWrite)?;
        f.write_all(&bytes[half..]).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &dst).map_err(io(&dst))?;
    sync_dir(dir).map_err(io(dir))?;
    fault(hook, FaultPoint::AfterRename)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// An event found in adapter output, with the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// File name (no directory).
    pub file: String,
    /// The event as written.
    pub event: Event,
}

/// Reads every output file in `dir` written by one of `formats` (by extension; temp
/// files are skipped), in file name order. A missing directory reads as empty.
/// Errors: `file: reason` for an unreadable or malformed file.
pub fn read_output(dir: &Path, formats: &[&dyn Format]) -> Result<Vec<Exported>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(FILE_PREFIX))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Some(format) = formats
            .iter()
            .find(|f| name.ends_with(&format!(".{}", f.extension())))
        else {
            continue;
        };
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let events = format
            .parse(&bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        out.extend(events.into_iter().map(|event| Exported {
            file: name.clone(),
            event,
        }));
    }
    Ok(out)
}
