//! The completeness invariant ("everyone got it"), from the transcript alone, so it
//! holds for simulated and live runs alike:
//!
//! every client that was joined to a room (its `rpl:join`/`rpl:bjoin` answered 200)
//! before a post to that room was sent, and stayed joined and connected to the end of
//! the run, receives that post (if it was acknowledged with 200 OK) - unless it is the
//! author. With the invariants on duplicates and order (`crate::invariants`) this makes
//! "exactly once, in order".
//!
//! "Connected to the end" is precise, not assumed: a client's membership in a room ends
//! at its `rpl:part` 200, at a new INVITE of the client (a `reconnect`, or a reconnection
//! under `keep_going` after its connection died), at its BYE, at a `disconnect` step of
//! the client, at a server `crash` (the server forgets every dialog; clients join again
//! and that is a new membership) and at a `loss` fault (a lost simulated TCP segment
//! stalls its connection for good). A `partition` does not end it: held traffic is
//! delivered on repair, so a post sent during a partition must still arrive.
//!
//! A relay can still be in flight when the run ends; so a client is only held to a post
//! when it is known to have been reachable after the post was committed: it received an
//! answer to a request it sent after the author had the post's 200 OK (the server wrote
//! the relay before that answer, on the same connection, and TCP keeps the order), or a
//! `wait` step of at least [`SETTLE_MS`] began after that 200 OK with no fault step or
//! `[[fault]]` after it (relays take milliseconds without faults). A relay the client
//! refused with 487 (an abandoned dialog) does not count.

/// A `wait` at least this long (ms), with no fault after the post's 200 OK, lets every
/// relay of the post arrive.
pub const SETTLE_MS: u64 = 1000;

use crate::scenario::Scenario;
use crate::transcript::Transcript;
use pchat_server::sip::{parse, SipMessage};
use pchat_server::xccos::{self, Body, RplData};
use std::collections::{BTreeMap, BTreeSet};

/// A post as compared here: (room URI, author URI, text).
type Post = (String, String, String);

/// (client, Call-ID, CSeq): one request and its answers.
pub(crate) type Key = (String, String, u32);

#[derive(Default)]
struct State {
    /// (client, room) -> transcript position where the membership began.
    open: BTreeMap<(String, String), usize>,
    /// Posts sent: request key -> (post, first position sent).
    posts: BTreeMap<Key, Post>,
    /// Post -> (position first sent, author client).
    first_sent: BTreeMap<Post, (usize, String)>,
    /// Post -> position of its first 200 OK at the author.
    acked: BTreeMap<Post, usize>,
    /// Client requests: key -> position sent.
    requests: BTreeMap<Key, usize>,
    /// Client -> positions of requests (sent) that got a final answer.
    answered: BTreeMap<String, Vec<usize>>,
    /// Relays: key -> (receiver, post); those answered 487 are dropped at the end.
    relays: BTreeMap<Key, Post>,
    /// Relay keys answered 487 by the client.
    refused: BTreeSet<Key>,
    /// Positions of `wait` steps of at least [`SETTLE_MS`].
    settles: Vec<usize>,
    /// Positions of fault notes.
    faults: Vec<usize>,
}

impl State {
    fn close_client(&mut self, client: &str) {
        self.open.retain(|(c, _), _| c != client);
    }

    fn note(&mut self, at: usize, scenario: &Scenario, text: &str) {
        if text.starts_with("fault ") {
            self.faults.push(at);
        }
        if let Some(rest) = text.strip_prefix("step ") {
            let n: usize = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if let Some(step) = n.checked_sub(1).and_then(|i| scenario.file.steps.get(i)) {
                let step = step.get_ref();
                if step.kind().is_fault() {
                    self.faults.push(at);
                } else if step.kind() == crate::step::ActionKind::Wait
                    && step.ms().unwrap_or(0) >= SETTLE_MS
                {
                    self.settles.push(at);
                }
            }
        }
        match crashed(text) {
            Some(None) => return self.open.clear(),
            Some(Some(clients)) => {
                for c in clients {
                    self.close_client(&c);
                }
                return;
            }
            None => {}
        }
        let inner = text
            .split_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map_or("", |(i, _)| i);
        let words: Vec<&str> = inner.split_whitespace().collect();
        if words.contains(&"loss") {
            self.open.clear();
        } else if words.get(1) == Some(&"disconnect") {
            for c in scenario.clients_of(words[0]) {
                self.close_client(&c);
            }
        }
    }

    fn client_sent(&mut self, at: usize, client: &str, msg: &SipMessage, uri: &str) {
        let key = key(client, msg);
        match msg {
            SipMessage::Request(r) => {
                self.requests.insert(key.clone(), at);
                if r.method == "INVITE" || r.method == "BYE" {
                    self.close_client(client);
                }
                if let Some(g) = chat(&r.body) {
                    let post = (g.chan_uri.clone(), uri.to_string(), g.text.clone());
                    self.first_sent
                        .entry(post.clone())
                        .or_insert((at, client.to_string()));
                    self.posts.insert(key, post);
                }
            }
            SipMessage::Response(r) => {
                if r.code == 487 {
                    self.refused.insert(key);
                }
            }
        }
    }

    fn client_got(&mut self, at: usize, client: &str, msg: &SipMessage) {
        let key = key(client, msg);
        match msg {
            SipMessage::Response(r) if r.code >= 200 => {
                if let Some(&sent) = self.requests.get(&key) {
                    self.answered
                        .entry(client.to_string())
                        .or_default()
                        .push(sent);
                }
                if let Some(post) = self.posts.get(&key).filter(|_| r.code == 200) {
                    self.acked.entry(post.clone()).or_insert(at);
                }
            }
            SipMessage::Request(r) if r.method == "INFO" => {
                if let Some(g) = chat(&r.body) {
                    let author = g.author.clone().unwrap_or_default();
                    self.relays
                        .insert(key, (g.chan_uri.clone(), author, g.text.clone()));
                    return;
                }
                self.reply(at, client, &r.body);
            }
            _ => {}
        }
    }

    /// `rpl:join`/`rpl:bjoin` 200 opens memberships; `rpl:part` 200 ends one.
    fn reply(&mut self, at: usize, client: &str, body: &[u8]) {
        let Ok(xccos::Envelope {
            body: Body::Rpl(rpl),
            ..
        }) = xccos::parse(body)
        else {
            return;
        };
        if rpl.resp.as_ref().map_or(0, |r| r.code) != 200 {
            return;
        }
        match (rpl.id.as_str(), &rpl.data) {
            ("rpl:join" | "rpl:bjoin", RplData::Rooms { rooms, .. }) => {
                for r in rooms {
                    self.open
                        .entry((client.to_string(), r.uri.clone()))
                        .or_insert(at);
                }
            }
            ("rpl:part", RplData::Chan(uri)) => {
                self.open.remove(&(client.to_string(), uri.clone()));
            }
            _ => {}
        }
    }
}

/// A message's `(client, Call-ID, CSeq number)`: how a response finds its request.
pub(crate) fn key(client: &str, m: &SipMessage) -> Key {
    let (call, cseq) = match m {
        SipMessage::Request(r) => (r.call_id(), r.cseq()),
        SipMessage::Response(r) => (r.call_id(), r.cseq()),
    };
    (
        client.to_string(),
        call.unwrap_or_default().to_string(),
        cseq.map_or(0, |c| c.0),
    )
}

/// What a transcript note says crashed: `None`, not a crash; `Some(None)` the server
/// (`...: server crashed`); `Some(Some(clients))` pool members, with the clients that
/// were connected to them (`...: member2 crashed: user2 user6; member3 crashed: ...`).
pub(crate) fn crashed(text: &str) -> Option<Option<BTreeSet<String>>> {
    if text.ends_with(": server crashed") {
        return Some(None);
    }
    let (_, summary) = text.split_once("): ")?;
    let mut clients = BTreeSet::new();
    let mut any = false;
    for part in summary.split("; ") {
        if let Some((_, names)) = part
            .split_once(" crashed: ")
            .or_else(|| part.strip_suffix(" crashed:").map(|h| (h, "")))
        {
            any = true;
            clients.extend(names.split_whitespace().map(str::to_string));
        }
    }
    any.then_some(Some(clients))
}

fn chat(body: &[u8]) -> Option<xccos::GrpChat> {
    match xccos::parse(body).ok()?.body {
        Body::GrpChat(g) => Some(g),
        _ => None,
    }
}

/// Checks the completeness invariant (module docs) on a finished run's transcript;
/// one line per client and post it should have received and did not.
pub fn check(scenario: &Scenario, transcript: &Transcript) -> Vec<String> {
    let uris = scenario.client_uris();
    let mut st = State::default();
    for (at, e) in transcript.entries().into_iter().enumerate() {
        if e.from == "#" {
            st.note(at, scenario, &String::from_utf8_lossy(&e.bytes));
            continue;
        }
        let Ok(msg) = parse(&e.bytes) else { continue };
        if e.to == "server" {
            let uri = uris.get(e.from.as_str()).copied().unwrap_or_default();
            st.client_sent(at, &e.from, &msg, uri);
        } else {
            st.client_got(at, &e.to, &msg);
        }
    }
    missing(&st)
}

fn missing(st: &State) -> Vec<String> {
    let mut got: BTreeMap<(&str, &Post), usize> = BTreeMap::new();
    for (k, post) in &st.relays {
        if !st.refused.contains(k) {
            *got.entry((k.0.as_str(), post)).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    for (post, &acked) in &st.acked {
        let Some((sent, author)) = st.first_sent.get(post) else {
            continue;
        };
        for ((client, room), &since) in &st.open {
            let settled =
                st.settles.iter().any(|&w| w > acked) && !st.faults.iter().any(|&f| f > acked);
            let reachable = settled
                || st
                    .answered
                    .get(client)
                    .is_some_and(|v| v.iter().any(|&s| s > acked));
            if room != &post.0 || client == author || since > *sent || !reachable {
                continue;
            }
            if got.get(&(client.as_str(), post)).copied().unwrap_or(0) == 0 {
                out.push(format!(
                    "{client} never received post {:?} by {} in {} (joined before it was sent, connected to the end, and answered after it was committed)",
                    post.2, post.1, post.0
                ));
            }
        }
    }
    out
}
