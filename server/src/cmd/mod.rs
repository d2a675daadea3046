//! XCCOS commands, one file per command family (like mini-redis's `cmd/`).
//!
//! Flow (call-flows.md sign-in step 2): the INFO carrying a command gets 200 OK at once;
//! the reply follows as a separate INFO whose `<commandid>` carries the command's seqid
//! and envid. A grpchat INFO is different: its 200 OK means "stored", so it is sent only
//! after the post is committed ([`grpchat`]). Malformed or unknown XCCOS gets 200 OK and
//! then a reply with an error code (docs/xccos-codes.md); nothing is stored for it.

pub mod associations;
pub mod error;
pub mod filetok;
pub mod grpchat;
pub mod history;
pub mod invitations;
pub mod join;
pub mod manage;
pub mod newcontent;
pub mod prefs;
pub mod requri;
pub mod search;
pub mod serverinfo;

pub use self::error::{CmdError, CmdResult};
use crate::channel::authz::{self, Op};
use crate::channel::{DialogId, Room};
use crate::core::{ConnId, Core};
use crate::sip::{response_for, Request};
use crate::xccos::{codes, Body, ChanRef, CmdKind, CommandRef, Resp, Rpl, RplData};

/// Who sent a command, on which dialog, and how to address the reply.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Connection of the dialog.
    pub conn: ConnId,
    /// Dialog the command arrived on (the reply goes back on it).
    pub dialog: DialogId,
    /// The dialog's user, e.g. `sip:user1@contoso.com`.
    pub user: String,
    /// envid of the command's envelope.
    pub envid: u64,
    /// seqid of the command.
    pub seqid: u64,
}

/// Entry point for an INFO body inside a dialog (called by the SIP layer).
pub(crate) fn on_xccos(core: &mut Core, conn: ConnId, dialog: DialogId, req: Request) {
    let Some(user) = core.dialogs.get(dialog).map(|d| d.user.clone()) else {
        return;
    };
    match crate::xccos::parse(&req.body) {
        Ok(env) => {
            let ctx = |seqid| Ctx {
                conn,
                dialog,
                user: user.clone(),
                envid: env.envid,
                seqid,
            };
            match env.body {
                Body::GrpChat(chat) => grpchat::handle(core, &ctx(chat.seqid), &req, chat),
                Body::Cmd(cmd) => {
                    core.respond(conn, response_for(&req, 200, "OK"), false);
                    let ctx = ctx(cmd.seqid);
                    let result = dispatch(core, &ctx, &cmd.kind);
                    send_reply(core, &ctx, cmd.kind.reply_id(), result);
                }
                Body::Rpl(_) | Body::Ntc(_) => {
                    // Only the server sends replies and notices; acknowledge and ignore.
                    tracing::debug!(dialog = %dialog, "client sent a rpl/ntc; ignored");
                    core.respond(conn, response_for(&req, 200, "OK"), false);
                }
            }
        }
        Err(e) => {
            tracing::debug!(dialog = %dialog, code = e.code, "bad XCCOS: {}", e.reason);
            core.respond(conn, response_for(&req, 200, "OK"), false);
            // Address the error reply to the command when its envid and id were
            // readable (XCCOS.md "Request and reply"); otherwise a bare rpl:error.
            let rpl = e.to_rpl().unwrap_or_else(|| Rpl {
                id: "rpl:error".to_string(),
                seqid: e.seqid.unwrap_or(1),
                command: e.envid.map(|envid| CommandRef {
                    seqid: e.seqid.unwrap_or(1),
                    envid,
                }),
                resp: Some(Resp {
                    code: e.code,
                    token: codes::token(e.code).to_string(),
                }),
                data: RplData::None,
            });
            let body = core.encode_envelope(Body::Rpl(rpl));
            core.send_info(dialog, body, false);
        }
    }
}

fn dispatch(core: &mut Core, ctx: &Ctx, kind: &CmdKind) -> CmdResult {
    match kind {
        CmdKind::RequestUri => requri::handle(core),
        CmdKind::GetServerInfo { info_type, .. } => serverinfo::handle(core, info_type),
        CmdKind::GetAssociations { role } => associations::handle(core, ctx, *role),
        CmdKind::Join { chan } => join::join(core, ctx, std::slice::from_ref(chan), false),
        CmdKind::BJoin { chans } => join::join(core, ctx, chans, true),
        CmdKind::Part { chan } => join::part(core, ctx, chan),
        CmdKind::BcContext { chan, query } => history::bccontext(core, ctx, chan, query),
        CmdKind::GetInv { .. } => invitations::getinv(core, ctx),
        CmdKind::ChanSrch {
            qtype,
            criteria,
            extended,
        } => search::chansrch(core, ctx, qtype, criteria, *extended)
            .and_then(|r| search::record(core, ctx, qtype, criteria).map(|()| r)),
        CmdKind::NodesPermCreateChild => manage::may_create(core, ctx),
        CmdKind::GetPref {
            label,
            create_default,
            ..
        } => prefs::getpref(core, ctx, label, *create_default),
        CmdKind::SetPref { label, content, .. } => prefs::setpref(core, ctx, label, content),
        CmdKind::CreateRoom { attrs, users } => manage::create(core, ctx, attrs, users),
        CmdKind::UpdateRoom {
            chan,
            attrs,
            add,
            remove,
        } => manage::update(core, ctx, chan, attrs, add, remove),
        CmdKind::GetFileToken {
            upload,
            chan_uri,
            file,
        } => filetok::file_token(core, ctx, *upload, chan_uri, file),
        CmdKind::GetHttpToken => filetok::http_token(core, ctx),
    }
}

/// Sends the reply for a command: 200 SUCCESS_OK with data, or the error code.
pub(crate) fn send_reply(core: &mut Core, ctx: &Ctx, reply_id: &str, result: CmdResult) {
    let (resp, data) = match result {
        Ok(data) => (Resp::ok(), data),
        Err(e) => {
            tracing::debug!(user = %ctx.user, code = e.code, "{reply_id} refused: {}", e.reason);
            (
                Resp {
                    code: e.code,
                    token: codes::token(e.code).to_string(),
                },
                RplData::None,
            )
        }
    };
    let rpl = Rpl {
        id: reply_id.to_string(),
        seqid: ctx.seqid,
        command: Some(CommandRef {
            seqid: ctx.seqid,
            envid: ctx.envid,
        }),
        resp: Some(resp),
        data,
    };
    // After the commit: a reply must not report a write (follow, compliance event)
    // that a failed commit undid.
    core.send_reply_after_commit(ctx.dialog, rpl);
}

/// Finds the room a command names and checks that `user` may join/read it
/// (see [`room_op`]).
pub(crate) fn room_for<'a>(
    core: &'a Core,
    user: &str,
    chan: &ChanRef,
) -> Result<&'a Room, CmdError> {
    room_op(core, user, chan, Op::Join)
}

/// Finds the room a command names and checks that `user` may do `op` there
/// ([`authz::check`]). Errors: 404 for a malformed URI, another domain, an unknown
/// room, or a room the user may not know of (secret); 403 when the user may know of it
/// but not do `op`. The reason never repeats the URI: it may end up in a `Warning`
/// header sent to someone who must not learn anything about the room.
pub(crate) fn room_op<'a>(
    core: &'a Core,
    user: &str,
    chan: &ChanRef,
    op: Op,
) -> Result<&'a Room, CmdError> {
    let uri = chan.to_uri();
    let not_found = || {
        tracing::debug!(%user, %uri, ?op, "no such room (or not visible to the user)");
        CmdError::new(codes::NO_SUCH_ROOM, "no such room")
    };
    let (domain, guid) = crate::ids::split_room_uri(&uri).ok_or_else(not_found)?;
    if !domain.eq_ignore_ascii_case(&core.cfg.domain) {
        return Err(not_found());
    }
    let room = core.rooms.get(guid).ok_or_else(not_found)?;
    authz::check(&core.rooms, room, user, op).map_err(|code| {
        if code == codes::NO_SUCH_ROOM {
            not_found()
        } else {
            CmdError::new(code, format!("{user} may not {op:?} this room"))
        }
    })?;
    Ok(room)
}

/// A store failure as a 500 reply.
pub(crate) fn store_err(e: crate::store::StoreError) -> CmdError {
    CmdError::new(codes::INTERNAL_ERROR, e.to_string())
}
