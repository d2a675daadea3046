//! The core's side of the web services: every HTTP request that reads or changes state
//! is handled here, inside the core's batch transaction (`Input::Http` in,
//! `Action::Http` out), so uploads, downloads and room changes are ordered with SIP
//! traffic and stay deterministic. Authorization is [`authz`]'s, room management is
//! `cmd::manage`'s - the same rules as XCCOS.
//!
//! A reply that reports a write (upload, download event, room change) is released only
//! after the commit; if the batch does not commit, 503 `busy` goes instead and the file
//! token is usable again (`Tokens::end_batch`). Refused
//! requests change nothing: the file token stays unused, no file is written.

use super::api::{
    FileInfo, HttpReply, HttpReqId, HttpRequest, RoomCreate, RoomList, RoomUpdate, RoomView,
};
use super::tokens::{Direction, TokenError};
use crate::channel::authz::{self, Op};
use crate::channel::{DialogId, Room};
use crate::cmd::manage::{RoleChange, RoomAttrs};
use crate::cmd::{CmdError, Ctx};
use crate::compliance::record::{event_at, with_event};
use crate::compliance::EventKind;
use crate::core::{Action, BatchCx};
use crate::files::{check_name, FileStore, Staged};
use crate::store::{FileRecord, NewMessage};
use crate::xccos::{codes, ChanRef};

pub use super::state::WebState;

mod site;

type Reply = Result<HttpReply, HttpReply>;

fn unauthorized() -> HttpReply {
    HttpReply::error(
        401,
        "unauthorized",
        "missing, unknown or expired bearer token (get one with cmd:gethttptok)",
    )
}

fn internal(e: impl std::fmt::Display) -> HttpReply {
    tracing::error!("web service: {e}");
    HttpReply::error(500, "internal", e.to_string())
}

/// A refused XCCOS-style operation as an HTTP error.
pub fn from_cmd_error(e: CmdError) -> HttpReply {
    let (status, code) = match e.code {
        codes::BAD_REQUEST => (400, "bad_request"),
        codes::NO_PERMISSION => (403, "forbidden"),
        codes::NO_SUCH_ROOM => (404, "no_such_room"),
        codes::CONFLICT => (409, "conflict"),
        codes::TOO_LARGE => (413, "too_large"),
        _ => (500, "internal"),
    };
    HttpReply::error(status, code, e.reason)
}

fn token_error(e: TokenError) -> HttpReply {
    let (status, code, msg) = match e {
        TokenError::Unknown => (403, "bad_token", "unknown file token"),
        TokenError::WrongUser => (
            403,
            "token_wrong_user",
            "the token was issued to another user",
        ),
        TokenError::WrongRoom => (403, "token_wrong_room", "the token is for another room"),
        TokenError::WrongFile => (403, "token_wrong_file", "the token is for another file"),
        TokenError::WrongDirection => (
            403,
            "token_wrong_direction",
            "the token is for the other direction (getfutok uploads, getfdtok downloads)",
        ),
        TokenError::Used => (409, "token_used", "the token was already used (single use)"),
        TokenError::Expired => (410, "token_expired", "the token has expired"),
    };
    HttpReply::error(status, code, msg)
}

/// The user and dialog a bearer token stands for. Errors: 401.
fn identify(cx: &BatchCx, bearer: &str) -> Result<(String, DialogId), HttpReply> {
    let now = cx.now_ms;
    let b = cx.web.tokens.bearer(bearer, now).ok_or_else(unauthorized)?;
    // The token dies with its dialog.
    match cx.dialogs().get(b.dialog) {
        Some(d) if d.user == b.user => Ok((b.user.clone(), b.dialog)),
        _ => Err(unauthorized()),
    }
}

/// The room with GUID `guid` if `user` may do `op` there. Errors: 404 (unknown, or not
/// to be known: secret), 403.
fn room_for<'a>(cx: &'a BatchCx, user: &str, guid: &str, op: Op) -> Result<&'a Room, HttpReply> {
    let room = cx
        .rooms
        .get(guid)
        .ok_or_else(|| HttpReply::error(404, "no_such_room", "no such room"))?;
    authz::check(cx.rooms, room, user, op).map_err(|code| {
        if code == codes::NO_SUCH_ROOM {
            HttpReply::error(404, "no_such_room", "no such room")
        } else {
            HttpReply::error(403, "forbidden", format!("{user} may not {op:?} this room"))
        }
    })?;
    Ok(room)
}

fn file_stores(cx: &BatchCx) -> Result<(FileStore, FileStore), HttpReply> {
    cx.web
        .files
        .clone()
        .ok_or_else(|| internal("web services are not configured"))
}

/// Handles one HTTP request (see the module docs). Every path pushes exactly one
/// `Action::Http` for `req` (plus its 503 alternative when it needs the commit).
pub(crate) fn handle(cx: &mut BatchCx, req: HttpReqId, request: HttpRequest) {
    let (result, needs_commit) = match request {
        HttpRequest::Upload {
            bearer,
            room,
            name,
            token,
            staged,
        } => (upload(cx, &bearer, &room, &name, &token, &staged), true),
        HttpRequest::Download {
            bearer,
            room,
            name,
            token,
        } => (download(cx, &bearer, &room, &name, &token), true),
        HttpRequest::ListRooms { bearer } => (list_rooms(cx, &bearer), false),
        HttpRequest::CreateRoom { bearer, body } => (create_room(cx, &bearer, body), true),
        HttpRequest::UpdateRoom { bearer, room, body } => {
            (update_room(cx, &bearer, &room, *body), true)
        }
        HttpRequest::Site(r) => site::handle(cx, r),
    };
    match result {
        Ok(reply) => {
            cx.out.push(Action::Http { req, reply }, needs_commit);
            if needs_commit {
                cx.out.push_on_abort(Action::Http {
                    req,
                    reply: HttpReply::error(
                        503,
                        "busy",
                        "not stored; retry (the token is still valid)",
                    ),
                });
            }
        }
        Err(reply) => cx.out.push(Action::Http { req, reply }, false),
    }
}

/// The text of the grpchat that announces an uploaded file **(design)**:
/// `[file] <name> (<size> bytes, sha256 <hex>)`.
pub fn announcement(name: &str, size: u64, sha256: &str) -> String {
    format!("[file] {name} ({size} bytes, sha256 {sha256})")
}

/// Who uploads, on which dialog, into which room URI - if the upload may happen:
/// bearer (401), file name (400), file token (4xx), size (413), rights in the room now
/// (403/404; the room may have changed since the token was issued), the category's
/// `file_upload` (403).
fn upload_allowed_now(
    cx: &BatchCx,
    bearer: &str,
    guid: &str,
    name: &str,
    token: &str,
    size: u64,
) -> Result<(String, DialogId, String), HttpReply> {
    let (user, dialog) = identify(cx, bearer)?;
    check_name(name).map_err(|why| HttpReply::error(400, "bad_file_name", why))?;
    cx.web
        .tokens
        .check_file(token, &user, guid, name, Direction::Upload, cx.now_ms)
        .map_err(token_error)?;
    let max = cx.cfg.http.as_ref().map_or(0, |h| h.max_file_bytes);
    if size > max {
        return Err(HttpReply::error(
            413,
            "file_too_large",
            format!("{size} bytes exceed max_file_bytes {max}"),
        ));
    }
    let room = room_for(cx, &user, guid, Op::Post)?;
    if !crate::cmd::filetok::upload_allowed(cx, room) {
        return Err(HttpReply::error(
            403,
            "upload_not_allowed",
            "file upload is off in this room's category",
        ));
    }
    Ok((user, dialog, room.uri.clone()))
}

fn upload(
    cx: &mut BatchCx,
    bearer: &str,
    guid: &str,
    name: &str,
    token: &str,
    staged: &Staged,
) -> Reply {
    let (user, dialog, chan_uri) = upload_allowed_now(cx, bearer, guid, name, token, staged.size)?;
    let now = cx.now_ms;
    let (files, compliance_files) = file_stores(cx)?;
    // Hashed, written and fsynced by the web handler before this turn: only renames
    // (and a link for the compliance copy) happen here.
    files.adopt(staged).map_err(internal)?;
    let sha256 = staged.sha256.clone();
    if cx.cfg.compliance.enabled {
        let stored = files.path_of(&sha256).map_err(internal)?;
        compliance_files
            .link_from(&stored, &sha256)
            .map_err(internal)?;
    }
    let size = staged.size;
    let text = announcement(name, size, &sha256);
    let msg = NewMessage {
        client_msgid: None,
        room_guid: guid.to_string(),
        author: user.clone(),
        ts_ms: now,
        text: text.clone(),
    };
    let rec = FileRecord {
        room_guid: guid.to_string(),
        name: name.to_string(),
        sha256: sha256.clone(),
        size,
        uploader: user.clone(),
        ts_ms: now,
    };
    let ev = event_at(cx, EventKind::FileUpload, guid, &user, now, name);
    let message_id = with_event(cx, ev, |store| {
        store.put_file(&rec)?;
        store.append_message(&msg)
    })
    .map_err(internal)?;
    cx.web.tokens.consume(token);
    tracing::info!(%user, room = %guid, %name, size, "file uploaded");
    crate::cmd::grpchat::relay(cx, guid, chan_uri.clone(), user.clone(), now, text, dialog);
    Ok(HttpReply::json(
        201,
        FileInfo {
            room: chan_uri,
            name: name.to_string(),
            size,
            sha256,
            uploader: user,
            message_id,
        },
    ))
}

fn download(cx: &mut BatchCx, bearer: &str, guid: &str, name: &str, token: &str) -> Reply {
    let (user, _) = identify(cx, bearer)?;
    check_name(name).map_err(|why| HttpReply::error(400, "bad_file_name", why))?;
    let now = cx.now_ms;
    cx.web
        .tokens
        .check_file(token, &user, guid, name, Direction::Download, now)
        .map_err(token_error)?;
    let reply = download_as(cx, &user, guid, name)?;
    cx.web.tokens.consume(token);
    Ok(reply)
}

/// A file of room `guid` for `user` (right to read history; FILEDOWNLOAD recorded;
/// the web pages call this too). Errors: 404/403, 404 `no_such_file`, 500.
fn download_as(cx: &mut BatchCx, user: &str, guid: &str, name: &str) -> Reply {
    room_for(cx, user, guid, Op::ReadHistory)?;
    let rec = cx
        .store
        .get_file(guid, name)
        .map_err(internal)?
        .ok_or_else(|| HttpReply::error(404, "no_such_file", "no such file in this room"))?;
    let (files, _) = file_stores(cx)?;
    // Only the file's presence is checked here (a `stat`): the web handler reads it
    // after this turn, off the core task.
    let path = files.path_of(&rec.sha256).map_err(internal)?;
    if !path.is_file() {
        return Err(internal(format!("stored file {} is missing", rec.sha256)));
    }
    crate::compliance::record::record(cx, EventKind::FileDownload, guid, user, name)
        .map_err(from_cmd_error)?;
    tracing::info!(%user, room = %guid, %name, "file downloaded");
    Ok(HttpReply {
        status: 200,
        body: super::api::ReplyBody::File {
            name: name.to_string(),
            path,
        },
    })
}

/// The web API's view of a room.
pub fn room_view(room: &Room, user: &str) -> RoomView {
    RoomView {
        uri: room.uri.clone(),
        id: room.guid.clone(),
        name: room.attrs.name.clone(),
        category: room.attrs.category.clone(),
        description: room.attrs.description.clone(),
        topic: room.attrs.topic.clone(),
        privacy: room.attrs.privacy.as_str().to_string(),
        members: room.roles.members.iter().cloned().collect(),
        managers: room.roles.managers.iter().cloned().collect(),
        manager: room.roles.managers.contains(user),
    }
}

fn list_rooms(cx: &mut BatchCx, bearer: &str) -> Reply {
    let (user, _) = identify(cx, bearer)?;
    let rooms = my_rooms(cx, &user);
    Ok(HttpReply::json(200, RoomList { rooms }))
}

/// The rooms `user` is a member or manager of (and may find), by name.
fn my_rooms(cx: &BatchCx, user: &str) -> Vec<RoomView> {
    cx.rooms
        .by_name_order()
        .filter(|r| r.roles.members.contains(user) || r.roles.managers.contains(user))
        .filter(|r| authz::can_find(cx.rooms, r, user))
        .map(|r| room_view(r, user))
        .collect()
}

/// A `Ctx` for `cmd::manage` on behalf of an HTTP request: no XCCOS reply is sent, and
/// `DialogId::MAX` as the dialog means every joined dialog (the user's own SIP client
/// included) gets the room's notices.
fn manage_ctx(cx: &BatchCx, user: String, dialog: DialogId) -> Ctx {
    Ctx {
        conn: cx
            .dialogs()
            .get(dialog)
            .map_or(crate::core::ConnId(0), |d| d.conn),
        dialog: DialogId::MAX,
        user,
        envid: 0,
        seqid: 0,
    }
}

fn roles(users: &[String], role: &str) -> Vec<RoleChange> {
    users
        .iter()
        .map(|u| RoleChange {
            uri: u.clone(),
            role: role.to_string(),
        })
        .collect()
}

fn create_room(cx: &mut BatchCx, bearer: &str, body: RoomCreate) -> Reply {
    let (user, dialog) = identify(cx, bearer)?;
    let ctx = manage_ctx(cx, user.clone(), dialog);
    create_room_as(cx, &ctx, body)
}

/// Creates a room for `ctx.user` (`cmd::manage::create`; the web pages call this too).
fn create_room_as(cx: &mut BatchCx, ctx: &Ctx, body: RoomCreate) -> Reply {
    let user = ctx.user.clone();
    let attrs = RoomAttrs {
        name: Some(body.name.clone()),
        description: body.description,
        topic: body.topic,
        privacy: body.privacy,
        category: body.category,
        ..RoomAttrs::default()
    };
    let mut users = roles(&body.members, "member");
    users.extend(roles(&body.managers, "manager"));
    crate::cmd::manage::create(cx, ctx, &attrs, &users).map_err(from_cmd_error)?;
    let guid = crate::ids::room_guid(&cx.cfg.domain, body.name.trim());
    let room = cx
        .rooms
        .get(&guid)
        .ok_or_else(|| internal("created room not found"))?;
    Ok(HttpReply::json(201, room_view(room, &user)))
}

fn update_room(cx: &mut BatchCx, bearer: &str, guid: &str, body: RoomUpdate) -> Reply {
    let (user, dialog) = identify(cx, bearer)?;
    let ctx = manage_ctx(cx, user, dialog);
    update_room_as(cx, &ctx, guid, body)
}

/// Updates a room for `ctx.user` (`cmd::manage::update`; the web pages call this too).
fn update_room_as(cx: &mut BatchCx, ctx: &Ctx, guid: &str, body: RoomUpdate) -> Reply {
    let user = ctx.user.clone();
    let uri = crate::ids::room_uri(&cx.cfg.domain, guid);
    let attrs = RoomAttrs {
        description: body.description,
        topic: body.topic,
        privacy: body.privacy,
        room_type: body.room_type,
        ..RoomAttrs::default()
    };
    let mut add = roles(&body.add_members, "member");
    add.extend(roles(&body.add_managers, "manager"));
    add.extend(roles(&body.add_presenters, "presenter"));
    let mut remove = roles(&body.remove_members, "member");
    remove.extend(roles(&body.remove_managers, "manager"));
    remove.extend(roles(&body.remove_presenters, "presenter"));
    crate::cmd::manage::update(cx, ctx, &ChanRef::Uri(uri), &attrs, &add, &remove)
        .map_err(from_cmd_error)?;
    let room = cx
        .rooms
        .get(guid)
        .ok_or_else(|| internal("updated room not found"))?;
    Ok(HttpReply::json(200, room_view(room, &user)))
}
