//! Executes one scenario step on a client and checks its expectations. Each function
//! returns a one-line summary on success, or a message saying what was expected and what
//! came instead.

use crate::client::{Client, Incoming};
use crate::scenario::{ActionKind, Expect, Step};
use bytes::Bytes;
use pchat_server::ids::{room_guid, room_uri};
use pchat_server::sip::Response;
use pchat_server::xccos::{
    AssocRole, BcQuery, Body, ChanRef, CmdKind, Envelope, NtcData, Rpl, RplData,
};
use std::time::Duration;

/// A failed expectation or a client error, as text.
pub type StepResult = Result<String, String>;

/// The URI of the room named `name` in `domain` (room GUIDs are name-based, so this is
/// the same on the simulated and on a live server configured with that room).
pub fn room_uri_of(domain: &str, name: &str) -> String {
    room_uri(domain, &room_guid(domain, name))
}

fn step_room(client: &Client, step: &Step) -> String {
    match (&step.room_uri, &step.room) {
        (Some(uri), _) => uri.clone(),
        (None, Some(name)) => room_uri_of(&client.domain, name.get_ref()),
        (None, None) => String::new(),
    }
}

/// Replaces every `{room:NAME}` in an `xccos` body by that room's URI, and every
/// `{room-guid:NAME}` by its GUID (a `chanid value`).
pub fn expand_rooms(domain: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let expanded = tail.find('}').and_then(|end| {
            let inner = &tail[1..end];
            let value = if let Some(name) = inner.strip_prefix("room:") {
                room_uri_of(domain, name)
            } else if let Some(name) = inner.strip_prefix("room-guid:") {
                room_guid(domain, name)
            } else {
                return None;
            };
            Some((value, end + 1))
        });
        match expanded {
            Some((value, used)) => {
                out.push_str(&value);
                rest = &tail[used..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn chan(uri: &str) -> ChanRef {
    ChanRef::Uri(uri.to_string())
}

fn check_status(resp: &Response, expect: &Expect, default: u16) -> Result<(), String> {
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

fn check_contains(text: &str, expect: &Expect) -> Result<(), String> {
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
    Ok(())
}

fn check_rpl(rpl: &Rpl, expect: &Expect) -> Result<String, String> {
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

async fn command(client: &mut Client, kind: CmdKind, expect: &Expect) -> StepResult {
    let (resp, rpl) = client.command(kind).await.map_err(|e| e.0)?;
    check_status(&resp, expect, 200)?;
    match rpl {
        Some(rpl) => check_rpl(&rpl, expect),
        None => Ok(format!("SIP {}", resp.code)),
    }
}

fn matches_kind(env: &Envelope, kind: &str, room: &str) -> bool {
    match (&env.body, kind) {
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

/// Runs `step` on `client`.
pub async fn exec(client: &mut Client, step: &Step) -> StepResult {
    let Some(kind) = step.action.as_ref().map(|a| *a.get_ref()) else {
        return Err("step without action".into());
    };
    let e = &step.expect;
    let room = step_room(client, step);
    match kind {
        ActionKind::SignIn => sign_in(client, step).await,
        ActionKind::Subscribe => {
            let resp = client.subscribe_provisioning().await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            check_contains(&String::from_utf8_lossy(&resp.body), e)?;
            Ok(format!("SIP {}, pool {}", resp.code, client.pool_uri))
        }
        ActionKind::Invite => {
            let target = step.to.clone().unwrap_or_else(|| client.pool_uri.clone());
            let resp = client.invite(&target).await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            check_contains(&String::from_utf8_lossy(&resp.encode()), e)?;
            Ok(format!("SIP {}", resp.code))
        }
        ActionKind::Requri => {
            let (resp, rpl) = client.command(CmdKind::RequestUri).await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            let Some(rpl) = rpl else {
                return Ok(format!("SIP {}", resp.code));
            };
            let summary = check_rpl(&rpl, e)?;
            if let RplData::Uib(uri) = &rpl.data {
                client.pool_uri = uri.clone();
            }
            Ok(summary)
        }
        ActionKind::Getserverinfo => {
            let domain = client.domain.clone();
            command(
                client,
                CmdKind::GetServerInfo {
                    domain,
                    info_type: "123".into(),
                },
                e,
            )
            .await
        }
        ActionKind::Getassociations => {
            let role = match step.role.as_deref() {
                Some("manager") => AssocRole::Manager,
                _ => AssocRole::Member,
            };
            command(client, CmdKind::GetAssociations { role }, e).await
        }
        ActionKind::Bjoin => {
            let chans = step
                .rooms
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let uri = room_uri_of(&client.domain, r.get_ref());
                    let value = uri.rsplit('/').next().unwrap_or("").to_string();
                    ChanRef::Id {
                        key: i as u32,
                        domain: client.domain.clone(),
                        value,
                    }
                })
                .collect();
            command(client, CmdKind::BJoin { chans }, e).await
        }
        ActionKind::Join => command(client, CmdKind::Join { chan: chan(&room) }, e).await,
        ActionKind::Part => command(client, CmdKind::Part { chan: chan(&room) }, e).await,
        ActionKind::Bccontext => {
            let query = BcQuery::Last {
                cnt: step.count.unwrap_or(25),
            };
            command(
                client,
                CmdKind::BcContext {
                    chan: chan(&room),
                    query,
                },
                e,
            )
            .await
        }
        ActionKind::Getinv => {
            let domain = client.domain.clone();
            command(
                client,
                CmdKind::GetInv {
                    invite_id: "1".into(),
                    domain,
                },
                e,
            )
            .await
        }
        ActionKind::Chansrch => {
            let kind = CmdKind::ChanSrch {
                qtype: "BYNAME".into(),
                criteria: step.criteria.clone().unwrap_or_default(),
                extended: step.extended,
            };
            command(client, kind, e).await
        }
        ActionKind::Post => {
            let text = step.text.clone().unwrap_or_default();
            let resp = client
                .post_with_id(&room, &text, step.msgid.as_deref())
                .await
                .map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {}", resp.code))
        }
        ActionKind::Receive => {
            let want = step.kind.clone().unwrap_or_default();
            let item = client
                .wait_for(
                    &want,
                    |i| matches!(i, Incoming::Xccos(env) if matches_kind(env, &want, &room)),
                )
                .await
                .map_err(|e| e.0)?;
            let Incoming::Xccos(env) = item else {
                return Err("unreachable".into());
            };
            check_received(&env, e)?;
            Ok(format!("received {want}"))
        }
        ActionKind::Quiet => {
            let want = step.kind.clone().unwrap_or_default();
            let saved = client.timeout;
            client.timeout = Duration::from_millis(step.ms.unwrap_or(500));
            let got = client
                .wait_for(
                    &want,
                    |i| matches!(i, Incoming::Xccos(env) if matches_kind(env, &want, &room)),
                )
                .await;
            client.timeout = saved;
            match got {
                Ok(Incoming::Xccos(env)) => {
                    Err(format!("expected no {want}, got {}", env.to_xml()))
                }
                _ => Ok(format!("no {want}")),
            }
        }
        ActionKind::Xccos => {
            let body = expand_rooms(&client.domain, step.body.as_deref().unwrap_or_default());
            let envid = pchat_server::xccos::parse(body.as_bytes())
                .ok()
                .map(|env| env.envid);
            let (resp, rpl) = client
                .command_raw(Bytes::from(body), envid)
                .await
                .map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            match rpl {
                Some(rpl) => check_rpl(&rpl, e),
                None => Ok(format!("SIP {}", resp.code)),
            }
        }
        ActionKind::Raw => raw(client, step).await,
        ActionKind::Bye => {
            let resp = client.bye().await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {}", resp.code))
        }
        ActionKind::Update => {
            let resp = client.update().await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {}", resp.code))
        }
        ActionKind::Reconnect => {
            let resp = client.reconnect().await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {} (new Call-ID)", resp.code))
        }
        ActionKind::Disconnect | ActionKind::Wait => Ok(String::new()),
        ActionKind::Http => crate::http_steps::exec(client, step).await,
        k if k.is_fault() => Err(format!("`{}` is run by the driver, not a client", k.name())),
        _ => Err("unreachable action".into()),
    }
}

fn check_received(env: &Envelope, e: &Expect) -> Result<(), String> {
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

async fn sign_in(client: &mut Client, step: &Step) -> StepResult {
    let ok = Expect::default();
    let resp = client.subscribe_provisioning().await.map_err(|e| e.0)?;
    check_status(&resp, &ok, 200).map_err(|m| format!("sign-in step 1 (SUBSCRIBE): {m}"))?;
    let pool = client.pool_uri.clone();
    let resp = client.invite(&pool).await.map_err(|e| e.0)?;
    check_status(&resp, &ok, 200).map_err(|m| format!("sign-in step 2 (INVITE): {m}"))?;
    let domain = client.domain.clone();
    let cmds = [
        (
            "3 getserverinfo",
            CmdKind::GetServerInfo {
                domain: domain.clone(),
                info_type: "123".into(),
            },
        ),
        (
            "4 getassociations member",
            CmdKind::GetAssociations {
                role: AssocRole::Member,
            },
        ),
        (
            "4 getassociations manager",
            CmdKind::GetAssociations {
                role: AssocRole::Manager,
            },
        ),
    ];
    for (label, kind) in cmds {
        command(client, kind, &ok)
            .await
            .map_err(|m| format!("sign-in step {label}: {m}"))?;
    }
    if !step.rooms.is_empty() {
        let chans: Vec<ChanRef> = step
            .rooms
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let uri = room_uri_of(&domain, r.get_ref());
                let value = uri.rsplit('/').next().unwrap_or("").to_string();
                ChanRef::Id {
                    key: i as u32,
                    domain: domain.clone(),
                    value,
                }
            })
            .collect();
        command(
            client,
            CmdKind::BJoin {
                chans: chans.clone(),
            },
            &ok,
        )
        .await
        .map_err(|m| format!("sign-in step 5 bjoin: {m}"))?;
        for c in chans {
            command(
                client,
                CmdKind::BcContext {
                    chan: c,
                    query: BcQuery::Last { cnt: 25 },
                },
                &ok,
            )
            .await
            .map_err(|m| format!("sign-in step 6 bccontext: {m}"))?;
        }
    }
    command(
        client,
        CmdKind::GetInv {
            invite_id: "1".into(),
            domain,
        },
        &ok,
    )
    .await
    .map_err(|m| format!("sign-in step 7 getinv: {m}"))?;
    Ok("signed in".into())
}

/// Expands placeholders in a raw SIP message and makes line ends CRLF:
/// `{user}` (the client's URI), `{domain}`, `{local}` (client host:port), `{call-id}`
/// (the dialog's Call-ID, or a fixed one), `{from-tag}`/`{to-tag}` (dialog tags),
/// `{cseq}` (next dialog CSeq), `{body-length}` (bytes after the blank line), and
/// `{room:NAME}` / `{room-guid:NAME}` as in `xccos` bodies.
pub fn expand_raw(client: &mut Client, data: &str, local: &str) -> Vec<u8> {
    let (call_id, from_tag, to_tag, cseq) = match client.dialog.as_mut() {
        Some(d) => {
            d.cseq += 1;
            let tag = |h: &str| {
                h.split(";tag=")
                    .nth(1)
                    .unwrap_or("")
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .to_string()
            };
            (d.call_id.clone(), tag(&d.from), tag(&d.to), d.cseq)
        }
        None => (
            "raw-call-id@pchat-sim".to_string(),
            "raw-tag".to_string(),
            String::new(),
            1,
        ),
    };
    let text = expand_rooms(&client.domain, data)
        .replace("{user}", &client.uri)
        .replace("{domain}", &client.domain)
        .replace("{local}", local)
        .replace("{call-id}", &call_id)
        .replace("{from-tag}", &from_tag)
        .replace("{to-tag}", &to_tag)
        .replace("{cseq}", &cseq.to_string());
    let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let body_len = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    text.replace("{body-length}", &body_len.to_string())
        .into_bytes()
}

async fn raw(client: &mut Client, step: &Step) -> StepResult {
    let e = &step.expect;
    let local = client.local_addr().to_string();
    let bytes = expand_raw(client, step.data.as_deref().unwrap_or(""), &local);
    client
        .send_bytes(Bytes::from(bytes))
        .await
        .map_err(|e| e.0)?;
    if e.closed == Some(true) {
        let got = client
            .wait_for("connection close", |i| matches!(i, Incoming::Closed))
            .await;
        return got
            .map(|_| "connection closed".to_string())
            .map_err(|m| m.0);
    }
    let item = client
        .wait_for("response", |i| {
            matches!(
                i,
                Incoming::Response(_) | Incoming::Unparsed(..) | Incoming::Closed
            )
        })
        .await
        .map_err(|m| m.0)?;
    let (code, reason, text) = match item {
        Incoming::Response(resp) => {
            let text = String::from_utf8_lossy(&resp.encode()).into_owned();
            let warning = resp.headers.get("Warning").unwrap_or("").to_string();
            (resp.code, format!("{} {warning}", resp.reason), text)
        }
        Incoming::Unparsed(raw, _) => {
            // A response that could not echo what the request lacked: read its status line.
            let text = String::from_utf8_lossy(&raw).into_owned();
            let line = text.lines().next().unwrap_or("");
            let mut parts = line.splitn(3, ' ');
            let code = parts.nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            (code, parts.next().unwrap_or("").to_string(), text)
        }
        _ => return Err("the server closed the connection instead of answering".into()),
    };
    let want = e.status.unwrap_or(200);
    if code != want {
        return Err(format!("expected SIP {want}, got {code} {reason}"));
    }
    if let Some(sub) = &e.reason_contains {
        if !reason.contains(sub.as_str()) {
            return Err(format!(
                "expected reason containing {sub:?}, got {:?}",
                reason.trim()
            ));
        }
    }
    check_contains(&text, e)?;
    Ok(format!("SIP {code} {}", reason.trim()))
}
