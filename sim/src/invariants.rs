//! End-of-run invariants, checked from what the clients saw (the transcript) and what
//! the server kept (its store file, which outlives crashes):
//!
//! 1. every post acknowledged with 200 OK is in its room's history;
//! 2. no post is stored more often than it was sent (a retried envelope - same
//!    Call-ID and envid - counts once);
//! 3. no client is relayed a post more often than it was sent;
//! 4. every relayed post is in history, and each client receives a room's posts in
//!    history order (so all receivers see one order);
//! 5. a relay in a dialog the client abandoned (answered 487) does not count.
//!
//! Each violation is one line naming the room, author and text.

use crate::scenario::Scenario;
use crate::transcript::Transcript;
use pchat_server::sip::{parse, SipMessage};
use pchat_server::store::{SqliteStore, Store};
use pchat_server::xccos::{self, Body};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A post's identity as the invariants compare it: (room URI, author URI, text).
type Post = (String, String, String);

#[derive(Default)]
struct Seen {
    /// Post -> distinct (Call-ID, envid) envelopes that carried it.
    sent: BTreeMap<Post, BTreeSet<(String, u64)>>,
    /// Posts whose INFO got 200 OK.
    acked: Vec<Post>,
    /// Receiver -> relays it accepted, in order.
    relays: BTreeMap<String, Vec<Post>>,
}

fn grpchat(body: &[u8]) -> Option<(u64, xccos::GrpChat)> {
    match xccos::parse(body).ok()? {
        xccos::Envelope {
            envid,
            body: Body::GrpChat(g),
        } => Some((envid, g)),
        _ => None,
    }
}

fn collect(scenario: &Scenario, transcript: &Transcript) -> Seen {
    let uris: BTreeMap<&str, &str> = scenario
        .file
        .clients
        .iter()
        .map(|c| (c.name.as_str(), c.uri.as_str()))
        .collect();
    let mut seen = Seen::default();
    // (client, Call-ID, CSeq) -> post, for matching responses.
    let mut posts: BTreeMap<(String, String, u32), Post> = BTreeMap::new();
    let mut relays: BTreeMap<(String, String, u32), Post> = BTreeMap::new();
    let mut answers: BTreeMap<(String, String, u32), u16> = BTreeMap::new();
    let mut relay_order = Vec::new();
    for e in transcript.entries() {
        if e.from == "#" {
            continue;
        }
        let Ok(msg) = parse(&e.bytes) else { continue };
        let key = |client: &str, m: &SipMessage| {
            let (call, cseq) = match m {
                SipMessage::Request(r) => (r.call_id(), r.cseq()),
                SipMessage::Response(r) => (r.call_id(), r.cseq()),
            };
            (
                client.to_string(),
                call.unwrap_or_default().to_string(),
                cseq.map_or(0, |c| c.0),
            )
        };
        match (&msg, e.to == "server") {
            (SipMessage::Request(r), true) if r.method == "INFO" => {
                if let Some((envid, g)) = grpchat(&r.body) {
                    let author = uris.get(e.from.as_str()).copied().unwrap_or_default();
                    let post = (g.chan_uri.clone(), author.to_string(), g.text.clone());
                    let call = r.call_id().unwrap_or_default().to_string();
                    seen.sent
                        .entry(post.clone())
                        .or_default()
                        .insert((call, envid));
                    posts.insert(key(&e.from, &msg), post);
                }
            }
            (SipMessage::Response(r), false) => {
                if let Some(post) = posts.get(&key(&e.to, &msg)) {
                    if r.code == 200 {
                        seen.acked.push(post.clone());
                    }
                }
            }
            (SipMessage::Request(r), false) if r.method == "INFO" => {
                if let Some((_, g)) = grpchat(&r.body) {
                    let post = (g.chan_uri, g.author.unwrap_or_default(), g.text);
                    let k = key(&e.to, &msg);
                    relays.insert(k.clone(), post);
                    relay_order.push(k);
                }
            }
            (SipMessage::Response(r), true) => {
                answers.insert(key(&e.from, &msg), r.code);
            }
            _ => {}
        }
    }
    for k in relay_order {
        if answers.get(&k) == Some(&487) {
            continue;
        }
        if let Some(post) = relays.get(&k) {
            seen.relays
                .entry(k.0.clone())
                .or_default()
                .push(post.clone());
        }
    }
    seen
}

/// Room history as (author, text), oldest first, read from the store at `store`.
fn history(store: &Path, room_uri: &str) -> Result<Vec<(String, String)>, String> {
    let mut s = SqliteStore::open(store).map_err(|e| e.to_string())?;
    let guid = room_uri.rsplit('/').next().unwrap_or_default();
    Ok(s.last_messages(guid, u32::MAX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|m| (m.author, m.text))
        .collect())
}

/// Checks the invariants (module docs) of a finished simulated run whose server kept
/// its store at `store`; returns the violations, empty if all hold.
pub fn check(scenario: &Scenario, transcript: &Transcript, store: &Path) -> Vec<String> {
    let seen = collect(scenario, transcript);
    let mut out = Vec::new();
    let rooms: BTreeSet<&String> = seen
        .sent
        .keys()
        .map(|p| &p.0)
        .chain(seen.relays.values().flatten().map(|p| &p.0))
        .collect();
    let mut histories = BTreeMap::new();
    for room in rooms {
        match history(store, room) {
            Ok(h) => {
                histories.insert(room.clone(), h);
            }
            Err(e) => out.push(format!("cannot read the history of {room}: {e}")),
        }
    }
    let stored = |p: &Post| {
        histories.get(&p.0).map_or(0, |h| {
            h.iter().filter(|(a, t)| *a == p.1 && *t == p.2).count()
        })
    };
    let label = |p: &Post| format!("post {:?} by {} in {}", p.2, p.1, p.0);
    for p in &seen.acked {
        if stored(p) == 0 {
            out.push(format!("acknowledged {} is missing from history", label(p)));
        }
    }
    for (p, envelopes) in &seen.sent {
        let n = stored(p);
        if n > envelopes.len() {
            out.push(format!(
                "{} stored {n} times but sent as {} envelope(s) (retry not de-duplicated)",
                label(p),
                envelopes.len()
            ));
        }
    }
    for (client, relays) in &seen.relays {
        let mut counts: BTreeMap<&Post, usize> = BTreeMap::new();
        for p in relays {
            *counts.entry(p).or_default() += 1;
        }
        for (p, n) in counts {
            let sent = seen.sent.get(p).map_or(0, BTreeSet::len);
            if n > sent.max(1) {
                out.push(format!("{client} was relayed {} {n} times", label(p)));
            }
            if stored(p) == 0 {
                out.push(format!(
                    "{client} was relayed {} which is not in history",
                    label(p)
                ));
            }
        }
        let mut by_room: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for p in relays {
            by_room
                .entry(p.0.as_str())
                .or_default()
                .push((p.1.as_str(), p.2.as_str()));
        }
        for (room, got) in by_room {
            let Some(h) = histories.get(room) else {
                continue;
            };
            let mut it = h.iter();
            let in_order = got
                .iter()
                .all(|(a, t)| it.any(|(ha, ht)| ha == a && ht == t));
            if !in_order {
                out.push(format!(
                    "{client} received the posts of {room} out of history order: {:?}",
                    got.iter().map(|(_, t)| *t).collect::<Vec<_>>()
                ));
            }
        }
    }
    out
}
