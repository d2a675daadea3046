//! Executes one scenario step on a client and checks its expectations. Each function
//! returns a one-line summary on success, or a message saying what was expected and what
//! came instead.

use crate::client::{Client, ClientError, Incoming};
use crate::expect::{check_contains, check_received, check_rpl, check_status, matches_kind};
pub use crate::expect::{room_uri_of, StepResult};
use crate::step::{Action, Expect, ReceiveKind, Role, Step};
use bytes::Bytes;
use pchat_server::cmd::associations::AssocRole;
use pchat_server::cmd::history::BcQuery;
use pchat_server::cmd::{
    BJoin, BcContext, ChanSrch, CmdKind, GetAssociations, GetInv, GetServerInfo, Join, Part,
    RequestUri,
};
use pchat_server::ids::room_guid;
use pchat_server::xccos::{ChanRef, RplData};
use std::time::Duration;

fn step_room(client: &Client, step: &Step) -> String {
    let r = step.room();
    match (r.uri, r.name) {
        (Some(uri), _) => uri.to_string(),
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

async fn command(client: &mut Client, kind: CmdKind, expect: &Expect) -> StepResult {
    let (resp, rpl) = client.command(kind).await.map_err(|e| e.0)?;
    check_status(&resp, expect, 200)?;
    match rpl {
        Some(rpl) => check_rpl(&rpl, expect),
        None => Ok(format!("SIP {}", resp.code)),
    }
}

/// `bjoin` references (`chanid` by GUID) of rooms named `rooms`.
fn bjoin_chans(domain: &str, rooms: &[toml::Spanned<String>]) -> Vec<ChanRef> {
    rooms
        .iter()
        .enumerate()
        .map(|(i, r)| ChanRef::Id {
            key: i as u32,
            domain: domain.to_string(),
            value: room_guid(domain, r.get_ref()),
        })
        .collect()
}

/// Runs `step` on `client`, with the step's `timeout_ms` (if any) as the client's wait
/// for each answer or message, and checks `expect.within_ms` on how long it took.
pub async fn exec(client: &mut Client, step: &Step) -> StepResult {
    let saved = client.timeout;
    if let Some(ms) = step.timeout_ms {
        client.timeout = Duration::from_millis(ms);
    }
    let started = tokio::time::Instant::now();
    let result = exec_action(client, step).await;
    client.timeout = saved;
    let took = started.elapsed();
    match (result, step.expect.within_ms) {
        (Ok(_), Some(ms)) if took > Duration::from_millis(ms) => Err(format!(
            "expected the step to take at most {ms} ms, it took {} ms",
            took.as_millis()
        )),
        (r, _) => r,
    }
}

async fn exec_action(client: &mut Client, step: &Step) -> StepResult {
    let e = &step.expect;
    let room = step_room(client, step);
    let domain = client.domain.clone();
    match step.action.get_ref() {
        Action::SignIn { rooms } => sign_in(client, rooms).await,
        Action::Subscribe {} => {
            let resp = client.subscribe_provisioning().await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            check_contains(&String::from_utf8_lossy(&resp.body), e)?;
            Ok(format!("SIP {}, pool {}", resp.code, client.pool_uri))
        }
        Action::Invite { to } => {
            let target = to.clone().unwrap_or_else(|| client.pool_uri.clone());
            let resp = client.invite(&target).await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            check_contains(&String::from_utf8_lossy(&resp.encode()), e)?;
            Ok(format!("SIP {}", resp.code))
        }
        Action::Requri {} => requri(client, e).await,
        Action::Getserverinfo {} => {
            let info_type = "123".into();
            command(
                client,
                CmdKind::GetServerInfo(GetServerInfo { domain, info_type }),
                e,
            )
            .await
        }
        Action::Getassociations { role } => {
            let role = match role {
                Some(Role::Manager) => AssocRole::Manager,
                _ => AssocRole::Member,
            };
            command(
                client,
                CmdKind::GetAssociations(GetAssociations { role }),
                e,
            )
            .await
        }
        Action::Bjoin { rooms } => {
            let chans = bjoin_chans(&domain, rooms);
            command(client, CmdKind::BJoin(BJoin { chans }), e).await
        }
        Action::Join { .. } => command(client, CmdKind::Join(Join { chan: chan(&room) }), e).await,
        Action::Part { .. } => command(client, CmdKind::Part(Part { chan: chan(&room) }), e).await,
        Action::Bccontext { count, .. } => {
            let query = BcQuery::Last {
                cnt: count.unwrap_or(25),
            };
            command(
                client,
                CmdKind::BcContext(BcContext {
                    chan: chan(&room),
                    query,
                }),
                e,
            )
            .await
        }
        Action::Getinv {} => {
            let invite_id = "1".into();
            command(client, CmdKind::GetInv(GetInv { invite_id, domain }), e).await
        }
        Action::Chansrch { criteria, extended } => {
            let kind = CmdKind::ChanSrch(ChanSrch {
                qtype: "BYNAME".into(),
                criteria: criteria.clone(),
                extended: *extended,
            });
            command(client, kind, e).await
        }
        _ => exec_more(client, step, &room).await,
    }
}

/// The actions past the XCCOS commands: posts, receiving, raw messages, the dialog.
async fn exec_more(client: &mut Client, step: &Step, room: &str) -> StepResult {
    let e = &step.expect;
    match step.action.get_ref() {
        Action::Post {
            text,
            msgid,
            no_wait: true,
            ..
        } => {
            let (_, cseq) = client
                .post_no_wait(room, text, msgid.as_deref())
                .await
                .map_err(|e| e.0)?;
            Ok(format!("sent (CSeq {cseq}); not waiting for the answer"))
        }
        Action::Answer {} => {
            let item = client
                .wait_for("answer to a post sent with no_wait", |i| {
                    matches!(i, Incoming::Response(r)
                        if r.code >= 200 && r.cseq().is_some_and(|c| c.1 == "INFO"))
                })
                .await
                .map_err(|e| e.0)?;
            let Incoming::Response(resp) = item else {
                return Err("unreachable: matched a response".into());
            };
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {}", resp.code))
        }
        Action::Post { text, msgid, .. } => {
            let resp = client
                .post_with_id(room, text, msgid.as_deref())
                .await
                .map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {}", resp.code))
        }
        Action::Receive { kind, .. } => receive(client, *kind, room, e).await,
        Action::Quiet { kind, ms, .. } => quiet(client, *kind, room, ms.unwrap_or(500)).await,
        Action::Xccos { body } => xccos(client, body, e).await,
        Action::Raw { data } => raw(client, data, e).await,
        Action::Bye {} => {
            let resp = client.bye().await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {}", resp.code))
        }
        Action::Update {} => {
            let resp = client.update().await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {}", resp.code))
        }
        Action::Reconnect {} => {
            let resp = client.reconnect().await.map_err(|e| e.0)?;
            check_status(&resp, e, 200)?;
            Ok(format!("SIP {} (new Call-ID)", resp.code))
        }
        Action::Disconnect {} | Action::Wait { .. } => Ok(String::new()),
        Action::Http { http, room } => {
            let room = room.as_ref().map(|r| r.get_ref().as_str());
            crate::http_steps::exec(client, http, room, e).await
        }
        other => Err(format!(
            "`{}` is run by the driver, not a client",
            other.kind().name()
        )),
    }
}

async fn requri(client: &mut Client, e: &Expect) -> StepResult {
    let (resp, rpl) = client
        .command(CmdKind::RequestUri(RequestUri))
        .await
        .map_err(|e| e.0)?;
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

/// Waits for the first `kind` about `room` that meets `e` (others stay queued for later
/// steps); on a timeout, says what of that kind came instead.
async fn receive(client: &mut Client, kind: ReceiveKind, room: &str, e: &Expect) -> StepResult {
    let want = kind.name();
    let got = client
        .wait_for(want, |i| {
            matches!(i, Incoming::Xccos(env)
                if matches_kind(env, kind, room) && check_received(env, e).is_ok())
        })
        .await;
    match got {
        Ok(_) => Ok(format!("received {want}")),
        Err(err) => {
            // What did come of that kind (if anything), to say why none matched.
            let other = next_of_kind(client, kind, room, Duration::ZERO).await;
            match other {
                Ok(Incoming::Xccos(env)) => {
                    Err(check_received(&env, e).err().map_or(err.0.clone(), |m| {
                        format!("{}; the first {want} that came: {m}", err.0)
                    }))
                }
                _ => Err(err.0),
            }
        }
    }
}

/// The first `kind` about `room` that comes within `wait` (instead of the client's
/// timeout, which is restored after).
async fn next_of_kind(
    client: &mut Client,
    kind: ReceiveKind,
    room: &str,
    wait: Duration,
) -> Result<Incoming, ClientError> {
    let saved = client.timeout;
    client.timeout = wait;
    let got = client
        .wait_for(
            kind.name(),
            |i| matches!(i, Incoming::Xccos(env) if matches_kind(env, kind, room)),
        )
        .await;
    client.timeout = saved;
    got
}

async fn quiet(client: &mut Client, kind: ReceiveKind, room: &str, ms: u64) -> StepResult {
    let want = kind.name();
    let got = next_of_kind(client, kind, room, Duration::from_millis(ms)).await;
    match got {
        Ok(Incoming::Xccos(env)) => Err(format!("expected no {want}, got {}", env.to_xml())),
        _ => Ok(format!("no {want}")),
    }
}

async fn xccos(client: &mut Client, body: &str, e: &Expect) -> StepResult {
    let body = expand_rooms(&client.domain, body);
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

async fn sign_in(client: &mut Client, rooms: &[toml::Spanned<String>]) -> StepResult {
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
            CmdKind::GetServerInfo(GetServerInfo {
                domain: domain.clone(),
                info_type: "123".into(),
            }),
        ),
        (
            "4 getassociations member",
            CmdKind::GetAssociations(GetAssociations {
                role: AssocRole::Member,
            }),
        ),
        (
            "4 getassociations manager",
            CmdKind::GetAssociations(GetAssociations {
                role: AssocRole::Manager,
            }),
        ),
    ];
    for (label, kind) in cmds {
        command(client, kind, &ok)
            .await
            .map_err(|m| format!("sign-in step {label}: {m}"))?;
    }
    if !rooms.is_empty() {
        let chans = bjoin_chans(&domain, rooms);
        command(
            client,
            CmdKind::BJoin(BJoin {
                chans: chans.clone(),
            }),
            &ok,
        )
        .await
        .map_err(|m| format!("sign-in step 5 bjoin: {m}"))?;
        for c in chans {
            let query = BcQuery::Last { cnt: 25 };
            command(
                client,
                CmdKind::BcContext(BcContext { chan: c, query }),
                &ok,
            )
            .await
            .map_err(|m| format!("sign-in step 6 bccontext: {m}"))?;
        }
    }
    let invite_id = "1".into();
    command(client, CmdKind::GetInv(GetInv { invite_id, domain }), &ok)
        .await
        .map_err(|m| format!("sign-in step 7 getinv: {m}"))?;
    Ok("signed in".into())
}

/// Expands placeholders in a raw SIP message and makes line ends CRLF:
/// `{user}` (the client's URI), `{domain}`, `{local}` (client host:port), `{call-id}`
/// (the dialog's Call-ID, or a fixed one), `{from-tag}`/`{to-tag}` (dialog tags),
/// `{cseq}` (next dialog CSeq), `{body-length}` (bytes after the blank line),
/// `{authorization}` (the last `Authorization` value this client sent, on any of its
/// connections: replaying a captured Digest answer), and `{room:NAME}` /
/// `{room-guid:NAME}` as in `xccos` bodies.
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
    let text = match text.contains("{authorization}") {
        true => text.replace("{authorization}", &last_authorization(client)),
        false => text,
    };
    let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let body_len = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    text.replace("{body-length}", &body_len.to_string())
        .into_bytes()
}

/// The last Digest `Authorization` value `client` sent ("" before any).
fn last_authorization(client: &Client) -> String {
    client
        .digest
        .lock()
        .ok()
        .and_then(|d| d.last_authorization.clone())
        .unwrap_or_default()
}

async fn raw(client: &mut Client, data: &str, e: &Expect) -> StepResult {
    let local = client.local_addr().to_string();
    let bytes = expand_raw(client, data, &local);
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
    raw_answer(client, e).await
}

/// The answer to a raw message: its status, reason and text, checked against `e`.
async fn raw_answer(client: &mut Client, e: &Expect) -> StepResult {
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
