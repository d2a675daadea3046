//! Transcripts: every SIP message a run's clients sent and received, in order, with the
//! identifiers that change from run to run or seed to seed normalized - Call-IDs, tags,
//! branches, GUIDs and envids become `call-1`, `tag-1`, `z9hG4bK-1`, `guid-1`, `envid-1`
//! by order of first appearance - so a transcript can be snapshot-tested (insta) and
//! compared byte for byte.

use bytes::Bytes;
use regex::{Captures, Regex};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// One message as seen by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sender label (`user1`, `server`).
    pub from: String,
    /// Receiver label.
    pub to: String,
    /// The message bytes exactly as on the wire (shared with the frame they came in, no
    /// copy: [`Transcript::record_bytes`]).
    pub bytes: Bytes,
    /// When it was recorded: simulated time since the start of the simulation in the
    /// simulator, wall-clock time since the first entry in a live run. Not part of the
    /// rendered transcript (pcap timestamps, ladders).
    pub at: std::time::Duration,
}

/// Entries per chunk of a [`Transcript`].
const CHUNK: usize = 4096;

/// A shared, append-only transcript (clients of one run append to the same one).
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// The entries in order, in chunks of [`CHUNK`]: appending never moves the
    /// entries already recorded (one `Vec` grown by doubling copied each of them about
    /// twice, ~4 % of a 100-client run; issue 14).
    entries: Arc<Mutex<Vec<Vec<Entry>>>>,
    /// Live runs: when the first entry was recorded.
    start: Arc<OnceLock<std::time::Instant>>,
}

impl Transcript {
    /// Appends a message (a copy of `bytes`).
    pub fn record(&self, from: &str, to: &str, bytes: &[u8]) {
        self.record_bytes(from, to, Bytes::copy_from_slice(bytes));
    }

    /// Appends a message the caller already holds as [`Bytes`] (a received frame, an
    /// encoded request): kept as it is, without copying.
    pub fn record_bytes(&self, from: &str, to: &str, bytes: Bytes) {
        let at = turmoil::sim_elapsed()
            .unwrap_or_else(|| self.start.get_or_init(std::time::Instant::now).elapsed());
        if let Ok(mut chunks) = self.entries.lock() {
            if chunks.last().is_none_or(|c| c.len() >= CHUNK) {
                chunks.push(Vec::with_capacity(CHUNK));
            }
            let Some(e) = chunks.last_mut() else { return };
            e.push(Entry {
                from: from.to_string(),
                to: to.to_string(),
                bytes,
                at,
            });
        }
    }

    /// Appends a comment line (step boundaries), shown as `# text`.
    pub fn note(&self, text: &str) {
        self.record("#", "", text.as_bytes());
    }

    /// A copy of the entries so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .map(|chunks| chunks.iter().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of SIP messages recorded (notes excluded).
    pub fn message_count(&self) -> usize {
        self.entries
            .lock()
            .map(|c| c.iter().flatten().filter(|e| e.from != "#").count())
            .unwrap_or(0)
    }

    /// The raw (not normalized) text: one block per message.
    pub fn render_raw(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        for e in self.entries() {
            if e.from == "#" {
                out.push_str(&format!("# {}\n\n", String::from_utf8_lossy(&e.bytes)));
                continue;
            }
            n += 1;
            out.push_str(&format!("=== {n}. {} -> {}\n", e.from, e.to));
            let text = String::from_utf8_lossy(&e.bytes).replace("\r\n", "\n");
            out.push_str(text.trim_end_matches('\n'));
            out.push_str("\n\n");
        }
        out
    }

    /// A digest for transcripts too long to review message by message: how many
    /// messages went client->server and server->client, by method or status line.
    pub fn summary(&self) -> String {
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for e in self.entries() {
            if e.from == "#" {
                continue;
            }
            let dir = if e.to == "server" {
                "client -> server"
            } else {
                "server -> client"
            };
            let text = String::from_utf8_lossy(&e.bytes);
            let first = text.lines().next().unwrap_or("");
            let what = if let Some(status) = first.strip_prefix("SIP/2.0 ") {
                status.to_string()
            } else {
                first.split(' ').next().unwrap_or("").to_string()
            };
            *counts.entry((dir.to_string(), what)).or_default() += 1;
        }
        let mut out = format!("{} messages\n", self.message_count());
        for ((dir, what), n) in counts {
            out.push_str(&format!("{dir} {what}: {n}\n"));
        }
        out
    }

    /// The normalized text (see module docs): stable across seeds and runs.
    pub fn render(&self) -> String {
        normalize(&self.render_raw())
    }
}

struct Patterns {
    call_id: Regex,
    tag: Regex,
    branch: Regex,
    guid: Regex,
    envid: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        call_id: Regex::new(r"(?mi)^(Call-ID|i)( *: *)(\S+)").expect("static regex"),
        tag: Regex::new(r"(;tag=)([^;>\s,]+)").expect("static regex"),
        branch: Regex::new(r"(branch=z9hG4bK)([^;>\s,]+)").expect("static regex"),
        guid: Regex::new(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        )
        .expect("static regex"),
        envid: Regex::new(r#"(envid=")(\d+)(")"#).expect("static regex"),
    })
}

/// Replaces each distinct value with `prefix-N`, N by order of first appearance.
struct Namer {
    prefix: &'static str,
    seen: BTreeMap<String, usize>,
}

impl Namer {
    fn new(prefix: &'static str) -> Namer {
        Namer {
            prefix,
            seen: BTreeMap::new(),
        }
    }
    fn name(&mut self, value: &str) -> String {
        let next = self.seen.len() + 1;
        let n = *self.seen.entry(value.to_string()).or_insert(next);
        format!("{}-{n}", self.prefix)
    }
}

/// Normalizes a rendered transcript (see module docs).
pub fn normalize(text: &str) -> String {
    let p = patterns();
    let mut calls = Namer::new("call");
    let s = p.call_id.replace_all(text, |c: &Captures| {
        format!("{}{}{}", &c[1], &c[2], calls.name(&c[3]))
    });
    let mut tags = Namer::new("tag");
    let s = p
        .tag
        .replace_all(&s, |c: &Captures| format!("{}{}", &c[1], tags.name(&c[2])));
    let mut branches = Namer::new("");
    let s = p.branch.replace_all(&s, |c: &Captures| {
        format!("{}{}", &c[1], branches.name(&c[2]))
    });
    let mut guids = Namer::new("guid");
    let s = p.guid.replace_all(&s, |c: &Captures| guids.name(&c[0]));
    let mut envids = Namer::new("envid");
    let s = p.envid.replace_all(&s, |c: &Captures| {
        format!("{}{}{}", &c[1], envids.name(&c[2]), &c[3])
    });
    s.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_by_first_appearance() {
        let t = Transcript::default();
        t.record(
            "user1",
            "server",
            b"INFO sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKaaa\r\nFrom: <sip:a@b>;tag=111\r\nTo: <sip:c@d>;tag=222\r\nCall-ID: abc\r\n\r\n<xccos envid=\"42\"><chanib uri=\"ma-chan://d/6f0a0000-0000-4000-8000-000000000001\"/></xccos>",
        );
        t.record(
            "server",
            "user1",
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKaaa\r\nFrom: <sip:a@b>;tag=111\r\nTo: <sip:c@d>;tag=222\r\ni: abc\r\n\r\n<commandid envid=\"42\"/><x envid=\"43\"/>",
        );
        let out = t.render();
        for normalized in [
            "=== 1. user1 -> server\n",
            "branch=z9hG4bK-1",
            "From: <sip:a@b>;tag=tag-1",
            "To: <sip:c@d>;tag=tag-2",
            "Call-ID: call-1",
            "i: call-1",
            "ma-chan://d/guid-1",
            "<commandid envid=\"envid-1\"/><x envid=\"envid-2\"/>",
        ] {
            assert!(out.contains(normalized), "{normalized}: {out}");
        }
        assert!(!out.contains("abc") && !out.contains("111"), "{out}");
    }
}
