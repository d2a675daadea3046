//! `grpchat` from a client (call-flows.md find-a-room steps 4-5; XCCOS.md "grpchat").
//!
//! The post is written inside the batch's store transaction; the INFO's 200 OK and the
//! relays to every other dialog joined to the room are released only after the commit
//! (DESIGN.md: acknowledged only after its row is committed). If the commit fails the
//! poster gets 503 + Retry-After instead and nothing is relayed. The server sets
//! `author` (the dialog's user) and `ts`; whatever the client put there is ignored.
//! The relayed body is serialized once and shared by all recipients. Followers who are
//! online but not in the room get `ntc:newcontent` ([`super::newcontent`]).
//!
//! A retried post (same dialog and envid) is answered 200 OK once stored and is not
//! stored or relayed again (core/dedup.rs). A post carrying a client message id
//! (`msgid`, design: docs/protocol.md) is stored once per author and id, whatever the
//! dialog and across server restarts: a copy of a stored one is answered 200 OK and
//! neither stored nor relayed (the id is the idempotency key: the first copy's text
//! stands). A `msgid` that is empty or longer than [`MAX_MSGID_CHARS`] gets 400.
//!
//! A refused post gets a SIP error response instead of 200, because clients treat 200
//! as "delivered": 400 (no chanUri), 403 (not joined / may not post: closed room and
//! not a member, auditorium and not a presenter), 404 (no such room,
//! or a secret room the user may not know of), 413 (text over `messageSizeLimit`
//! characters), 503 + `Retry-After` (the store failed to write it: I/O error, busy,
//! disk full - RFC 3261 21.5.4, "temporarily unable"; the client retries the same
//! envelope, call-flows.md sign-in step 2). Every refusal carries a `Warning: 399`
//! naming the cause.

use super::{room_op, CmdError, Ctx};
use crate::channel::authz::Op;
use crate::clock::iso8601;
use crate::compliance::record::{event_at, pool_entry, with_event};
use crate::compliance::EventKind;
use crate::core::{Action, BatchCx};
use crate::sip::{response_for, Request};
use crate::store::{LogKind, NewMessage};
use crate::xccos::{codes, Body, ChanRef, GrpChat};

fn refuse(cx: &mut BatchCx, ctx: &Ctx, req: &Request, code: u16, reason: &str) {
    let phrase = match code {
        codes::NO_SUCH_ROOM => "Not Found",
        codes::NO_PERMISSION => "Forbidden",
        codes::TOO_LARGE => "Request Entity Too Large",
        codes::BAD_REQUEST => "Bad Request",
        codes::SERVICE_UNAVAILABLE => "Service Unavailable",
        _ => "Server Internal Error",
    };
    tracing::debug!(user = %ctx.user, code, "grpchat refused: {reason}");
    let mut resp = response_for(req, code, phrase).with_header(
        "Warning",
        format!("399 pchat \"{}\"", reason.replace('"', "'")),
    );
    if code == codes::SERVICE_UNAVAILABLE {
        resp = resp.with_header("Retry-After", cx.cfg.sip.retry_after_s.to_string());
    }
    cx.out.respond(ctx.conn, resp, false);
}

/// Longest client message id (`msgid`), in characters.
pub const MAX_MSGID_CHARS: usize = 128;

/// Handles a grpchat INFO (see module docs for the answers).
pub fn handle(cx: &mut BatchCx, ctx: &Ctx, req: &Request, chat: GrpChat) {
    use crate::core::dedup::{msgid_key, post_key};
    if let Some(m) = &chat.msgid {
        let chars = m.chars().count();
        if chars == 0 || chars > MAX_MSGID_CHARS {
            let why = format!("msgid must have 1 to {MAX_MSGID_CHARS} characters, not {chars}");
            return refuse(cx, ctx, req, codes::BAD_REQUEST, &why);
        }
    }
    let key = match &chat.msgid {
        Some(m) => msgid_key(&ctx.user, m),
        None => post_key(ctx.dialog, ctx.envid, &chat.chan_uri, &chat.text),
    };
    if cx.answer_retried_post(ctx.conn, key, req) {
        return; // a retry of a stored post (cx/dedup.rs)
    }
    if answered_as_stored_copy(cx, ctx, req, &chat) {
        return;
    }
    match postable_room(cx, ctx, &chat) {
        Ok(guid) => store_and_relay(cx, ctx, req, chat, guid, key),
        Err(e) => refuse(cx, ctx, req, e.code, &e.reason),
    }
}

/// A post whose client message id is already stored (by an earlier dialog or an
/// earlier run of the server) is answered 200 without storing it again; a store
/// failure while looking is answered 503. Returns whether the post was answered.
fn answered_as_stored_copy(cx: &mut BatchCx, ctx: &Ctx, req: &Request, chat: &GrpChat) -> bool {
    let Some(m) = chat
        .msgid
        .as_deref()
        .filter(|_| cx.faults.retry_dedup_enabled())
    else {
        return false;
    };
    match cx.store.find_client_message(&ctx.user, m) {
        Ok(None) => false,
        Ok(Some(id)) => {
            tracing::debug!(user = %ctx.user, msgid = m, id, "copy of a stored post answered, not stored again");
            cx.out
                .respond(ctx.conn, response_for(req, 200, "OK"), false);
            true
        }
        Err(e) => {
            refuse(cx, ctx, req, codes::SERVICE_UNAVAILABLE, &e.to_string());
            true
        }
    }
}

/// The room (GUID) the post goes to, if the user may post there now: a `chanUri`
/// (400), a room the user may post in (`room_op`'s 404/403) and has joined on this
/// dialog (403), text within `messageSizeLimit` (413).
fn postable_room(cx: &BatchCx, ctx: &Ctx, chat: &GrpChat) -> Result<String, CmdError> {
    if chat.chan_uri.is_empty() {
        return Err(CmdError::new(codes::BAD_REQUEST, "grpchat without chanUri"));
    }
    let room = room_op(
        cx,
        &ctx.user,
        &ChanRef::Uri(chat.chan_uri.clone()),
        Op::Post,
    )?;
    if !room.joined.contains_key(&ctx.dialog) {
        return Err(CmdError::new(
            codes::NO_PERMISSION,
            "join the room before posting",
        ));
    }
    let limit = cx.cfg.limits.message_size_limit as usize;
    let chars = chat.text.chars().count();
    if chars > limit {
        let reason = format!("message of {chars} characters exceeds messageSizeLimit {limit}");
        return Err(CmdError::new(codes::TOO_LARGE, reason));
    }
    Ok(room.guid.clone())
}

/// Stores an accepted post with its compliance event (one savepoint), answers 200 after
/// the commit (503 + Retry-After if the commit fails) and relays it.
fn store_and_relay(
    cx: &mut BatchCx,
    ctx: &Ctx,
    req: &Request,
    chat: GrpChat,
    guid: String,
    key: crate::core::dedup::PostKey,
) {
    let ts_ms = cx.now_ms;
    let msg = NewMessage {
        // (The planted no-retry-dedup bug ignores the id altogether.)
        client_msgid: chat
            .msgid
            .clone()
            .filter(|_| cx.faults.retry_dedup_enabled()),
        room_guid: guid.clone(),
        author: ctx.user.clone(),
        ts_ms,
        text: chat.text,
    };
    let ev = event_at(cx, EventKind::Chat, &guid, &ctx.user, ts_ms, &msg.text);
    // In a pool the post also goes to the room's log, in its savepoint: every member
    // (this one too) relays it from there once committed (crate::pool).
    let pooled = cx.cfg.pooled();
    let entry = pooled.then(|| pool_entry(cx, LogKind::Chat, &guid, &ctx.user, ctx.dialog));
    let stored = with_event(cx, ev, |store| match entry {
        None => store.append_message(&msg),
        Some(mut entry) => {
            // Message and log entry together or neither (also without compliance).
            store.savepoint()?;
            let r = store.append_message(&msg).and_then(|id| {
                entry.msg_id = Some(id);
                store.log_append(&entry).map(|_| id)
            });
            store.release_savepoint(r.is_ok())?;
            r
        }
    });
    if let Err(e) = stored {
        // The post's savepoint was rolled back: nothing of it is kept, so a retry of
        // the same envelope is stored normally once the store recovers.
        return refuse(cx, ctx, req, codes::SERVICE_UNAVAILABLE, &e.to_string());
    }
    cx.dedup.stored(key);
    cx.out.respond(ctx.conn, response_for(req, 200, "OK"), true);
    let head = crate::core::retry_later(req, cx.cfg.sip.retry_after_s);
    cx.out.push_on_abort(Action::Send {
        conn: ctx.conn,
        head,
        body: bytes::Bytes::new(),
    });
    if pooled {
        // Relays and `ntc:newcontent` come from the log, on every member (crate::pool).
        return;
    }
    relay(
        cx,
        &guid,
        chat.chan_uri,
        msg.author,
        ts_ms,
        msg.text,
        ctx.dialog,
    );
}

/// Relays a committed post (a grpchat by `author` at `ts_ms` in room `guid`) to every
/// dialog joined to the room but `except` (released only after the commit), counts it
/// and tells followers not in the room (`ntc:newcontent`). Also used by the web
/// service to announce an uploaded file (`crate::web::ops`).
pub(crate) fn relay(
    cx: &mut BatchCx,
    guid: &str,
    chan_uri: String,
    author: String,
    ts_ms: i64,
    text: String,
    except: crate::channel::DialogId,
) {
    let targets: Vec<_> = cx
        .rooms
        .get(guid)
        .map(|r| r.joined.keys().copied().filter(|d| *d != except).collect())
        .unwrap_or_default();
    let body = cx.out.encode_envelope(Body::GrpChat(GrpChat {
        msgid: None,
        seqid: 1,
        chan_uri,
        author: Some(author),
        ts: Some(iso8601(ts_ms)),
        text,
    }));
    let mut relays = 0;
    for d in targets {
        if cx.out.send_info(d, body.clone(), true) {
            relays += 1;
        }
    }
    cx.count_post(relays);
    super::newcontent::notify(cx, guid);
}
