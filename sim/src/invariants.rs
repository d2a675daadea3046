//! End-of-run invariants, checked from what the clients saw (the transcript) and what
//! the server kept (its store file, which outlives crashes):
//!
//! 1. every post acknowledged with 200 OK is in its room's history;
//! 2. no post is stored more often than it was sent (a retried envelope - same
//!    Call-ID and envid, or same client message id on any dialog - counts once);
//! 3. no client is relayed a post more often than it was sent;
//! 4. every relayed post is in history, and each client receives a room's posts in
//!    history order (so all receivers see one order);
//! 5. a relay in a dialog the client abandoned (answered 487) does not count;
//! 6. sessions of a crashed server are cleaned up: after a `crash`, the server never
//!    uses a dialog established before it - no client is relayed, on such a dialog, a
//!    post first sent after the crash, and no request sent on such a dialog after the
//!    crash is answered 2xx (it must get 481) - and (with compliance on) every JOIN
//!    gets its PART before the user's next JOIN in the room, even when the server that
//!    recorded the JOIN crashed;
//! 7. completeness: every client joined before a post was sent and connected to the
//!    end receives it (`crate::completeness`, which says precisely what "connected"
//!    means under crashes, loss, disconnects and abandoned dialogs);
//! 8. compliance oracle (with `[compliance] enabled`): `compliance verify` finds no
//!    event missing, duplicated or unpaired across the store's outbox, the compliance
//!    database and the adapter output;
//! 9. with `[pool]`, the pool-wide ones of `crate::pool_invariants` (a session closed
//!    once). 1-8 hold across the pool as they are: the transcript names every member
//!    `server`, and the store is the members' one file.
//!
//! Each violation is one line naming the room, author and text (or the dialog, or the
//! event ids).

use crate::completeness::key;
use crate::scenario::Scenario;
use crate::transcript::Transcript;
use pchat_server::compliance::verify::verify;
use pchat_server::compliance::ComplianceDb;
use pchat_server::sip::{parse, SipMessage};
use pchat_server::store::{SqliteStore, Store};
use pchat_server::xccos::{self, Body};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A post's identity as the invariants compare it: (room URI, author URI, text).
type Post = (String, String, String);

/// The files a simulated run leaves behind, which the invariants read.
#[derive(Debug, Clone, Copy)]
pub struct RunFiles<'a> {
    /// The server's store (SQLite file; it outlives crashes).
    pub store: &'a Path,
    /// With compliance on: the compliance database (mgccomp) and the adapter's output
    /// directory.
    pub compliance: Option<(&'a Path, &'a Path)>,
}

#[derive(Default)]
struct Seen {
    /// Post -> distinct (Call-ID, envid) envelopes that carried it.
    sent: BTreeMap<Post, BTreeSet<(String, u64)>>,
    /// Posts whose INFO got 200 OK.
    acked: Vec<Post>,
    /// Receiver -> relays it accepted, in order.
    relays: BTreeMap<String, Vec<Post>>,
    /// Uses of dialogs established before a crash, after it (invariant 6).
    stale_dialog_uses: Vec<String>,
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
    let uris = scenario.client_uris();
    let mut seen = Seen::default();
    // (client, Call-ID, CSeq) -> post, for matching responses.
    let mut posts: BTreeMap<(String, String, u32), Post> = BTreeMap::new();
    let mut relays: BTreeMap<(String, String, u32), Post> = BTreeMap::new();
    let mut answers: BTreeMap<(String, String, u32), u16> = BTreeMap::new();
    let mut relay_order = Vec::new();
    let mut crashes = Crashes::default();
    for (at, e) in transcript.entries().into_iter().enumerate() {
        if e.from == "#" {
            crashes.note(at, &e.bytes);
            continue;
        }
        let Ok(msg) = parse(&e.bytes) else { continue };
        // A grpchat INFO's post: its author is the sending client for a post, the
        // `author` attribute for a relay.
        let chat = match &msg {
            SipMessage::Request(r) if r.method == "INFO" => grpchat(&r.body),
            _ => None,
        };
        let post: Option<Post> = chat.as_ref().map(|(_, g)| {
            let author = match e.to == "server" {
                true => uris.get(e.from.as_str()).copied().unwrap_or_default(),
                false => g.author.as_deref().unwrap_or_default(),
            };
            (g.chan_uri.clone(), author.to_string(), g.text.clone())
        });
        crashes.message(at, &e.from, &e.to, &msg, post.as_ref());
        match (&msg, e.to == "server") {
            (SipMessage::Request(r), true) => {
                if let (Some((envid, g)), Some(post)) = (chat, post) {
                    // Copies with one client message id are one post, on any dialog.
                    let envelope = match &g.msgid {
                        Some(m) => (format!("msgid {m}"), 0),
                        None => (r.call_id().unwrap_or_default().to_string(), envid),
                    };
                    seen.sent.entry(post.clone()).or_default().insert(envelope);
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
            (SipMessage::Request(_), false) => {
                if let Some(post) = post {
                    let k = key(&e.to, &msg);
                    relays.insert(k.clone(), post);
                    relay_order.push(k);
                }
            }
            (SipMessage::Response(r), true) => {
                answers.insert(key(&e.from, &msg), r.code);
            }
        }
    }
    seen.stale_dialog_uses = crashes.violations();
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

/// Invariant 6 from the transcript: where the crashes were, when each dialog was
/// established, when each post was first sent, and what went over old dialogs.
#[derive(Default)]
struct Crashes {
    /// Transcript positions and texts of `crash` notes, with the clients a pool
    /// member's crash concerns (`None`: every client).
    at: Vec<(usize, String, Option<BTreeSet<String>>)>,
    /// Call-ID -> position of the INVITE's 200 OK (dialog established).
    established: BTreeMap<String, usize>,
    /// (room, author, text) -> position of its first sending.
    first_sent: BTreeMap<Post, usize>,
    /// Relays: (receiver, Call-ID, position, post).
    relays: Vec<(String, String, usize, Post)>,
    /// Client requests: (client, Call-ID, CSeq, method, position).
    requests: Vec<(String, String, u32, String, usize)>,
    /// The server's final answers to them: (client, Call-ID, CSeq) -> status.
    answers: BTreeMap<(String, String, u32), u16>,
}

impl Crashes {
    fn note(&mut self, at: usize, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        if let Some(clients) = crate::completeness::crashed(&text) {
            self.at.push((at, text.into_owned(), clients));
        }
    }

    fn message(&mut self, at: usize, from: &str, to: &str, msg: &SipMessage, post: Option<&Post>) {
        match msg {
            SipMessage::Response(r) if to != "server" => {
                let call = r.call_id().unwrap_or_default().to_string();
                let invite = r.cseq().is_some_and(|c| c.1 == "INVITE");
                if invite && (200..300).contains(&r.code) {
                    self.established.entry(call.clone()).or_insert(at);
                }
                if r.code >= 200 {
                    let cseq = r.cseq().map_or(0, |c| c.0);
                    self.answers.insert((to.to_string(), call, cseq), r.code);
                }
            }
            SipMessage::Request(r) if to == "server" => {
                let call = r.call_id().unwrap_or_default().to_string();
                let cseq = r.cseq().map_or(0, |c| c.0);
                if r.method != "ACK" && r.method != "INVITE" {
                    self.requests
                        .push((from.to_string(), call, cseq, r.method.to_string(), at));
                }
                if let Some(post) = post {
                    self.first_sent.entry(post.clone()).or_insert(at);
                }
            }
            SipMessage::Request(r) => {
                if let Some(post) = post {
                    let call = r.call_id().unwrap_or_default().to_string();
                    self.relays.push((to.to_string(), call, at, post.clone()));
                }
            }
            _ => {}
        }
    }

    /// The crash (position, note) of `client`'s server between `established` and
    /// `at`, if any (the latest).
    fn crash_between(&self, client: &str, established: usize, at: usize) -> Option<(usize, &str)> {
        self.at
            .iter()
            .rev()
            .filter(|(_, _, who)| who.as_ref().is_none_or(|w| w.contains(client)))
            .find(|(c, _, _)| established < *c && *c < at)
            .map(|(c, note, _)| (*c, note.as_str()))
    }

    /// The violations found.
    fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (client, call, at, post) in &self.relays {
            let Some(&est) = self.established.get(call) else {
                continue;
            };
            let Some((crash, note)) = self.crash_between(client, est, *at) else {
                continue;
            };
            // A post first sent after the crash was relayed by a later run of the
            // server: that run used a dialog of the crashed one.
            if self.first_sent.get(post).is_some_and(|sent| *sent > crash) {
                out.push(format!(
                    "{client} was relayed post {:?} by {} on a dialog established before the server crashed ({note}): the crashed run's session was not cleaned up",
                    post.2, post.1
                ));
            }
        }
        for (client, call, cseq, method, at) in &self.requests {
            let Some(&est) = self.established.get(call) else {
                continue;
            };
            let Some((_, note)) = self.crash_between(client, est, *at) else {
                continue;
            };
            let key = (client.clone(), call.clone(), *cseq);
            if let Some(code) = self.answers.get(&key).filter(|c| (200..300).contains(*c)) {
                out.push(format!(
                    "{client}'s {method} (CSeq {cseq}) on a dialog established before the server crashed ({note}) was answered {code}, not 481: the crashed run's session was not cleaned up"
                ));
            }
        }
        out
    }
}

/// Invariant 8 (and 6's compliance half): `compliance verify` over the run's files,
/// one violation per problem it reports.
fn compliance_oracle(store: &Path, db: &Path, output_dir: &Path) -> Vec<String> {
    let report = (|| {
        let mut store = SqliteStore::open(store).map_err(|e| e.to_string())?;
        let mut db = ComplianceDb::open(db).map_err(|e| e.to_string())?;
        verify(&mut store, Some(&mut db), output_dir)
    })();
    match report {
        Ok(r) => r
            .problems()
            .into_iter()
            .map(|p| format!("compliance oracle: {p}"))
            .collect(),
        Err(e) => vec![format!("compliance oracle: cannot verify: {e}")],
    }
}

/// Checks the invariants (module docs) of a finished simulated run from its transcript
/// and the `files` it left; returns the violations, empty if all hold.
pub fn check(scenario: &Scenario, transcript: &Transcript, files: &RunFiles<'_>) -> Vec<String> {
    let store = files.store;
    let mut seen = collect(scenario, transcript);
    let mut out = std::mem::take(&mut seen.stale_dialog_uses);
    out.extend(crate::completeness::check(scenario, transcript));
    if let Some((db, output_dir)) = files.compliance {
        out.extend(compliance_oracle(store, db, output_dir));
    }
    if scenario.file.pool.is_some() {
        out.extend(crate::pool_invariants::check(transcript, store));
    }
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
        out.extend(relay_checks(client, relays, &seen, &histories));
    }
    out
}

/// Invariants 3 and 4 for the relays one client accepted: none more often than sent,
/// each in history, a room's posts in history order.
fn relay_checks(
    client: &str,
    relays: &[Post],
    seen: &Seen,
    histories: &BTreeMap<String, Vec<(String, String)>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let stored = |p: &Post| {
        histories.get(&p.0).map_or(0, |h| {
            h.iter().filter(|(a, t)| *a == p.1 && *t == p.2).count()
        })
    };
    let label = |p: &Post| format!("post {:?} by {} in {}", p.2, p.1, p.0);
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "ma-chan://contoso.com/r1";

    fn scenario() -> Scenario {
        let text = "name = \"t\"\n\
                    [[client]]\nname = \"user1\"\nuri = \"sip:user1@contoso.com\"\n\
                    [[client]]\nname = \"user2\"\nuri = \"sip:user2@contoso.com\"\n\
                    [[step]]\nclient = \"user1\"\naction = \"sign-in\"\n";
        Scenario::parse(text, Path::new("t.toml")).unwrap()
    }

    fn ok_invite(call: &str) -> String {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP c;branch=z9hG4bK{call}\r\nFrom: <sip:u@contoso.com>;tag=a\r\n\
             To: <sip:pchat@contoso.com>;tag=b\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn info(call: &str, cseq: u32, author: &str, text: &str) -> String {
        let body = format!(
            "<xccos ver=\"1\" envid=\"{cseq}\" xmlns=\"urn:parlano:xml:ns:xccos\"><grpchat id=\"grpchat\" \
             seqid=\"1\" chanUri=\"{ROOM}\" author=\"{author}\"><chat>{text}</chat></grpchat></xccos>"
        );
        format!(
            "INFO sip:x SIP/2.0\r\nVia: SIP/2.0/TCP c;branch=z9hG4bK{call}{cseq}\r\nFrom: <sip:u@contoso.com>;tag=a\r\n\
             To: <sip:pchat@contoso.com>;tag=b\r\nCall-ID: {call}\r\nCSeq: {cseq} INFO\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn answer(call: &str, cseq: u32, code: u16) -> String {
        format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/TCP c;branch=z9hG4bK{call}{cseq}\r\nFrom: <sip:u@contoso.com>;tag=a\r\n\
             To: <sip:pchat@contoso.com>;tag=b\r\nCall-ID: {call}\r\nCSeq: {cseq} INFO\r\nContent-Length: 0\r\n\r\n"
        )
    }

    /// user1's dialog `old` predates a crash; user2 posts `text` after it, and it is
    /// relayed to user1 on `old`.
    fn run(relay_text: &str, stale_request_code: u16) -> Vec<String> {
        let t = Transcript::default();
        let (u1, u2) = ("sip:user1@contoso.com", "sip:user2@contoso.com");
        t.record("server", "user1", ok_invite("old").as_bytes());
        t.record("user2", "server", info("u2a", 2, u2, "before").as_bytes());
        t.note("step 2 ( crash): server crashed");
        t.note("step 3 ( restart): server restarted");
        t.record("server", "user2", ok_invite("new2").as_bytes());
        t.record("user2", "server", info("new2", 2, u2, "after").as_bytes());
        t.record("server", "user1", info("old", 7, u2, relay_text).as_bytes());
        t.record("user1", "server", info("old", 3, u1, "mine").as_bytes());
        t.record(
            "server",
            "user1",
            answer("old", 3, stale_request_code).as_bytes(),
        );
        for e in t.entries().iter().filter(|e| e.from != "#") {
            parse(&e.bytes).unwrap();
        }
        let mut seen = collect(&scenario(), &t);
        std::mem::take(&mut seen.stale_dialog_uses)
    }

    #[test]
    fn a_crashed_runs_dialog_used_after_the_crash_is_a_violation() {
        // A relay in flight from before the crash, and a request refused with 481: fine.
        assert!(run("before", 481).is_empty(), "{:?}", run("before", 481));
        // A post first sent after the crash relayed on the old dialog.
        let v = run("after", 481);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("\"after\"") && v[0].contains("step 2 ( crash)"),
            "{v:?}"
        );
        // A request on the old dialog answered 200 after the crash.
        let v = run("before", 200);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("INFO (CSeq 3)") && v[0].contains("not 481"),
            "{v:?}"
        );
    }
}
