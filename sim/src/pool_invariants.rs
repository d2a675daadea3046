//! Pool-wide invariants of a simulated pool run (`[pool]`, docs/pool.md), beside
//! those of `crate::invariants` (which hold across the pool unchanged: the transcript
//! names the pool as `server`, whichever member a client is on, and the store is the
//! members' one SQLite file):
//!
//! 1. a user's session is closed once: no client is sent two `ntc:part` about one user
//!    in one room without an `ntc:join`/`ntc:bjoin` of that user there in between - a
//!    dead member's sessions are closed by exactly one survivor (and not again by the
//!    member when it restarts);
//! 2. the store's room log agrees: no member logged two `part` entries for one user
//!    and room without a `join`/`bjoin` entry between them (the log is what every
//!    member relays from, in the store's commit order).

use crate::transcript::Transcript;
use pchat_server::sip::{parse, SipMessage};
use pchat_server::store::{LogKind, SqliteStore, Store};
use pchat_server::xccos::{self, Body, NtcData};
use std::collections::BTreeMap;
use std::path::Path;

/// Invariants 1 and 2 (module docs); one line per violation.
pub fn check(transcript: &Transcript, store: &Path) -> Vec<String> {
    let mut out = parts_received_once(transcript);
    out.extend(parts_logged_once(store));
    out
}

/// A notice about `user` in room `guid`: `Some(true)` a part, `Some(false)` a join.
fn notice(body: &[u8]) -> Option<(String, String, bool)> {
    let Body::Ntc(n) = xccos::parse(body).ok()?.body else {
        return None;
    };
    match n.data {
        NtcData::Part { chan_uri, user } => {
            let guid = chan_uri.rsplit('/').next().unwrap_or_default().to_string();
            Some((guid, user, true))
        }
        NtcData::Join {
            user, room_guid, ..
        } => Some((room_guid, user, false)),
        _ => None,
    }
}

/// Invariant 1, from what the clients received.
fn parts_received_once(transcript: &Transcript) -> Vec<String> {
    // (receiver, room, user) -> parts since the last join notice.
    let mut parts: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    let mut out = Vec::new();
    for e in transcript.entries() {
        if e.from != "server" {
            continue;
        }
        let Ok(SipMessage::Request(r)) = parse(&e.bytes) else {
            continue;
        };
        let Some((room, user, part)) = (r.method == "INFO").then(|| notice(&r.body)).flatten()
        else {
            continue;
        };
        let n = parts
            .entry((e.to.clone(), room.clone(), user.clone()))
            .or_default();
        if !part {
            *n = 0;
            continue;
        }
        *n += 1;
        if *n == 2 {
            out.push(format!(
                "{} was sent ntc:part about {user} in room {room} twice without a join between (a session closed twice)",
                e.to
            ));
        }
    }
    out
}

/// Invariant 2, from the store's room log.
fn parts_logged_once(store: &Path) -> Vec<String> {
    let read = || -> Result<Vec<String>, String> {
        let mut s = SqliteStore::open(store).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (guid, _) in s.log_heads().map_err(|e| e.to_string())? {
            let log = s.log_after(&guid, 0, u32::MAX).map_err(|e| e.to_string())?;
            let mut open: BTreeMap<&str, u32> = BTreeMap::new();
            for e in &log {
                let n = open.entry(e.head.user.as_str()).or_default();
                match e.head.kind {
                    LogKind::Part => *n += 1,
                    LogKind::Join | LogKind::BJoin => *n = 0,
                    LogKind::Chat | LogKind::Room => {}
                }
                if e.head.kind == LogKind::Part && *n == 2 {
                    out.push(format!(
                        "the pool's log of room {guid} has two parts of {} without a join between (the second by {}, seq {})",
                        e.head.user, e.head.origin, e.seq
                    ));
                }
            }
        }
        Ok(out)
    };
    read().unwrap_or_else(|e| vec![format!("cannot read the pool's log: {e}")])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(user: &str, cseq: u32) -> String {
        let body = format!(
            "<xccos ver=\"1\" envid=\"{cseq}\" xmlns=\"urn:parlano:xml:ns:xccos\"><ntc id=\"ntc:part\" seqid=\"1\">\
             <data><chanib uri=\"ma-chan://contoso.com/r1\"><uib uri=\"{user}\"/></chanib></data></ntc></xccos>"
        );
        format!(
            "INFO sip:x SIP/2.0\r\nVia: SIP/2.0/TCP c;branch=z9hG4bKp{cseq}\r\nFrom: <sip:pchat@contoso.com>;tag=a\r\n\
             To: <sip:u@contoso.com>;tag=b\r\nCall-ID: c1\r\nCSeq: {cseq} INFO\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn a_second_part_without_a_join_is_a_violation() {
        let t = Transcript::default();
        t.record("server", "alice", part("sip:bob@contoso.com", 1).as_bytes());
        t.record(
            "server",
            "alice",
            part("sip:dave@contoso.com", 2).as_bytes(),
        );
        t.record("server", "carol", part("sip:bob@contoso.com", 3).as_bytes());
        assert_eq!(parts_received_once(&t), Vec::<String>::new());
        t.record("server", "alice", part("sip:bob@contoso.com", 4).as_bytes());
        let v = parts_received_once(&t);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("alice") && v[0].contains("sip:bob@contoso.com"),
            "{v:?}"
        );
    }
}
