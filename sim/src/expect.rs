//! Checking a step's expectations ([`Expect`]) against what came back: SIP responses,
//! XCCOS replies and received messages. Shared by the SIP steps (`crate::steps`) and the
//! web-service steps (`crate::http_steps`); depends on neither.

use crate::step::{Expect, ReceiveKind};
use pchat_server::ids::{room_guid, room_uri};
use pchat_server::sip::Response;
use pchat_server::xccos::{Body, Envelope, NtcData, Rpl, RplData};

/// A step's one-line summary on success, or what was expected and what came instead.
pub type StepResult = Result<String, String>;

/// The URI of the room named `name` in `domain` (room GUIDs are name-based, so this is
/// the same on the simulated and on a live server configured with that room).
pub fn room_uri_of(domain: &str, name: &str) -> String {
    room_uri(domain, &room_guid(domain, name))
}

/// Checks the SIP status of `resp` (`expect.status`, default `default`) and
/// `reason_contains`.
pub fn check_status(resp: &Response, expect: &Expect, default: u16) -> Result<(), String> {
    let want = expect.status.unwrap_or(default);
    if resp.code != want {
        let warning = resp.headers.get("Warning").unwrap_or("");
        return Err(format!(
            "expected SIP {want}, got {} {} {warning}",
            resp.code, resp.reason
        ));
    }
    if let Some(sub) = &expect.reason_contains {
        let text = format!(
            "{} {}",
            resp.reason,
            resp.headers.get("Warning").unwrap_or("")
        );
        if !text.contains(sub.as_str()) {
            return Err(format!(
                "expected reason containing {sub:?}, got {:?}",
                text.trim()
            ));
        }
    }
    Ok(())
}

/// Checks `contains`, `excludes` and `matches` (regular expressions) on `text`.
pub fn check_contains(text: &str, expect: &Expect) -> Result<(), String> {
    for s in expect.contains.iter().flatten() {
        if !text.contains(s.as_str()) {
            return Err(format!(
                "expected the message to contain {s:?}; it was: {text}"
            ));
        }
    }
    for s in expect.excludes.iter().flatten() {
        if text.contains(s.as_str()) {
            return Err(format!(
                "expected the message NOT to contain {s:?}; it was: {text}"
            ));
        }
    }
    for re in expect.matches.iter().flatten() {
        if !regex::Regex::new(re).is_ok_and(|r| r.is_match(text)) {
            return Err(format!(
                "expected the message to match /{re}/; it was: {text}"
            ));
        }
    }
    Ok(())
}

/// Checks an XCCOS reply: `code` (default 200), `contains`/`excludes`/`matches` on its
/// XML, `rooms`, `participants`, `messages`. Ok: `"<rpl id> <code>"`.
pub fn check_rpl(rpl: &Rpl, expect: &Expect) -> Result<String, String> {
    let code = rpl.resp.as_ref().map_or(500, |r| r.code);
    let want = expect.code.unwrap_or(200);
    if code != want {
        return Err(format!(
            "expected reply code {want}, got {code} ({})",
            rpl.id
        ));
    }
    let xml = Envelope {
        envid: 0,
        body: Body::Rpl(rpl.clone()),
    }
    .to_xml();
    check_contains(&xml, expect)?;
    if let Some(want_rooms) = &expect.rooms {
        let got: Vec<String> = match &rpl.data {
            RplData::Search(hits) | RplData::SearchCapped { hits, .. } => {
                hits.iter().map(|h| h.name.clone()).collect()
            }
            RplData::Rooms { rooms, .. } => rooms.iter().map(|r| r.name.clone()).collect(),
            _ => Vec::new(),
        };
        if &got != want_rooms {
            return Err(format!("expected rooms {want_rooms:?}, got {got:?}"));
        }
    }
    if let Some(want) = &expect.participants {
        let got: Vec<String> = match &rpl.data {
            RplData::Rooms { rooms, users } => rooms
                .first()
                .map(|r| {
                    r.participants
                        .iter()
                        .filter_map(|id| users.iter().find(|u| u.id == *id).map(|u| u.uri.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let (mut g, mut w) = (got.clone(), want.clone());
        g.sort();
        w.sort();
        if g != w {
            return Err(format!("expected participants {want:?}, got {got:?}"));
        }
    }
    if let Some(want) = &expect.messages {
        let got: Vec<String> = match &rpl.data {
            RplData::History { msgs, .. } => msgs.iter().map(|m| m.text.clone()).collect(),
            _ => Vec::new(),
        };
        // Suffix match: a live server keeps history from earlier runs.
        if got.len() < want.len() || &got[got.len() - want.len()..] != want.as_slice() {
            return Err(format!(
                "expected history ending with {want:?}, got {got:?}"
            ));
        }
    }
    Ok(format!("{} {}", rpl.id, code))
}

/// Whether `env` is a message of `kind` about the room with URI `room` ("" = any room).
pub fn matches_kind(env: &Envelope, kind: ReceiveKind, room: &str) -> bool {
    match (&env.body, kind.name()) {
        (Body::GrpChat(g), "grpchat") => room.is_empty() || g.chan_uri == room,
        (Body::Ntc(n), k) if n.id == k => match &n.data {
            NtcData::Join { room_guid, .. } => {
                room.is_empty() || room.ends_with(&format!("/{room_guid}"))
            }
            NtcData::Part { chan_uri, .. } | NtcData::NewContent { chan_uri, .. } => {
                room.is_empty() || chan_uri == room
            }
            NtcData::ChanUpdate(info) => room.is_empty() || info.uri == room,
            _ => false,
        },
        _ => false,
    }
}

/// Checks a received message: `author`, `text`, `user`, and the substring and pattern
/// keys on its XML.
pub fn check_received(env: &Envelope, e: &Expect) -> Result<(), String> {
    match &env.body {
        Body::GrpChat(g) => {
            if let Some(a) = &e.author {
                if g.author.as_deref() != Some(a.as_str()) {
                    return Err(format!("expected author {a:?}, got {:?}", g.author));
                }
            }
            if let Some(t) = &e.text {
                if &g.text != t {
                    return Err(format!("expected text {t:?}, got {:?}", g.text));
                }
            }
            if g.ts.is_none() {
                return Err("relayed grpchat has no ts".into());
            }
        }
        Body::Ntc(n) => {
            let user = match &n.data {
                NtcData::Join { user, .. } | NtcData::Part { user, .. } => Some(user),
                _ => None,
            };
            if let Some(u) = &e.user {
                if user != Some(u) {
                    return Err(format!("expected notice about {u:?}, got {user:?}"));
                }
            }
        }
        _ => {}
    }
    check_contains(&env.to_xml(), e)
}
