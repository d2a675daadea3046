//! XCCOS commands, one file per command family (like mini-redis's `cmd/`).
//!
//! Each family file holds its typed requests (one struct per wire id, or one for a
//! pair such as `cmd:getfutok`/`cmd:getfdtok`), their [`Command`] impl - the wire ids,
//! the reply id, the decoder of `<data>` from the shared element codec
//! ([`crate::xccos::elem`]), the encoder back into an element, and the handler - and
//! whatever else the family needs. [`commands!`] below is the registration table: one
//! line per request type builds [`CmdKind`] and the lookup by wire id ([`decode`]).
//! `xccos/` keeps the envelope and the element codecs several commands share. Handlers
//! get a [`BatchCx`] (core/cx.rs), never the whole core.
//!
//! Flow (call-flows.md sign-in step 2): the INFO carrying a command gets 200 OK at once;
//! the reply follows as a separate INFO whose `<commandid>` carries the command's seqid
//! and envid. A grpchat INFO is different: its 200 OK means "stored", so it is sent only
//! after the post is committed ([`grpchat`]). Malformed or unknown XCCOS gets 200 OK and
//! then a reply with an error code (docs/xccos-codes.md); nothing is stored for it.

/// Declares one request type and its [`Command`] impl in one place: the struct (docs,
/// `Debug, Clone, PartialEq, Eq`), its wire ids and reply id, and the bodies of
/// [`Command::parse`], [`Command::data`] and [`Command::apply`] (and [`Command::id`]
/// for a type of several ids). A request without `<data>` content (a unit struct)
/// gives only `apply`: it parses from any `<data>` and writes `<data/>`. A request
/// that is one element of attributes (`<data><el a="…" b="…"/></data>`) names the
/// element and each field's attribute, `req` (absent: 400) or `opt` (absent: the
/// type's default), and gets `parse` and `data` from [`AttrValue`](crate::xccos::elem::AttrValue):
/// `GetInv ["cmd:getinv"] -> "rpl:getinv" <"inv"> { pub domain: String = req "domain", }`.
///
/// ```text
/// command! {
///     /// `cmd:part`: ...
///     Part ["cmd:part"] -> "rpl:part" { /// The room. pub chan: ChanRef, }
///     parse(p, data) { Ok(Part { chan: p.first_chanref(p.data(data)?)? }) }
///     data(self) { Elem::data([chanref_elem(&self.chan)]) }
///     apply(self, cx, ctx) { part(cx, ctx, &self.chan) }
/// }
/// ```
macro_rules! command {
    (
        $(#[$meta:meta])*
        $name:ident [$($id:literal),+] -> $reply:literal <$el:literal> {
            $($(#[$fm:meta])* pub $field:ident: $ty:ty = $how:ident $attr:literal,)+
        }
        $(#[$am:meta])*
        apply($sa:ident, $cx:pat_param, $ctx:pat_param) $apply:block
    ) => {
        command! {
            $(#[$meta])*
            $name [$($id),+] -> $reply { $($(#[$fm])* pub $field: $ty,)+ }
            parse(p, data) {
                use $crate::xccos::elem::AttrValue;
                let el = p.child(p.data(data)?, $el)?;
                Ok($name { $($field: AttrValue::$how(p, el, $attr)?,)+ })
            }
            data(self) {
                use $crate::xccos::elem::{AttrValue, Elem};
                Elem::data([Elem::new($el)$(.with($attr, self.$field.to_attr()))+])
            }
            $(#[$am])*
            apply($sa, $cx, $ctx) $apply
        }
    };
    (
        $(#[$meta:meta])*
        $name:ident [$($id:literal),+] -> $reply:literal;
        apply($s:ident, $cx:pat_param, $ctx:pat_param) $apply:block
    ) => {
        command! {
            $(#[$meta])*
            $name [$($id),+] -> $reply;
            parse(_, _) { Ok($name) }
            data(self) { $crate::xccos::elem::Elem::new("data") }
            apply($s, $cx, $ctx) $apply
        }
    };
    (
        $(#[$meta:meta])*
        $name:ident [$($id:literal),+] -> $reply:literal $fields:tt
        $(id($si:ident) $idb:block)?
        parse($p:pat_param, $data:pat_param) $parse:block
        $(#[$dm:meta])*
        data($sd:ident) $write:block
        $(#[$am:meta])*
        apply($sa:ident, $cx:pat_param, $ctx:pat_param) $apply:block
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name $fields

        impl $crate::cmd::Command for $name {
            const IDS: &'static [&'static str] = &[$($id),+];
            const REPLY_ID: &'static str = $reply;
            $(fn id(&$si) -> &'static str $idb)?
            fn parse(
                $p: &$crate::xccos::elem::DataParser<'_>,
                $data: Option<&$crate::xccos::elem::Elem>,
            ) -> Result<Self, $crate::xccos::XccosError> $parse
            $(#[$dm])*
            fn data(&$sd) -> $crate::xccos::elem::Elem $write
            $(#[$am])*
            fn apply(&$sa, $cx: &mut $crate::core::BatchCx, $ctx: &$crate::cmd::Ctx) -> $crate::cmd::CmdResult $apply
        }
    };
}

pub mod associations;
pub mod error;
pub mod filetok;
pub mod grpchat;
pub mod history;
pub mod invitations;
pub mod join;
pub mod manage;
pub mod message;
pub mod newcontent;
pub mod prefs;
pub mod requri;
pub mod search;
pub mod serverinfo;

pub use self::error::{CmdError, CmdResult};
use crate::channel::authz::{self, Op};
use crate::channel::{DialogId, Room};
use crate::core::{BatchCx, ConnId};
use crate::sip::{response_for, Request};
use crate::xccos::elem::{parse_u64, DataParser, Elem};
use crate::xccos::{codes, Body, ChanRef, CommandRef, Resp, Rpl, RplData, XccosError};

/// One XCCOS command type: its wire ids, its reply id, the codec of its `<data>` and
/// its handler. Implemented by one struct per command in the family files.
pub trait Command: Sized {
    /// The wire ids this type decodes, e.g. `["cmd:join"]`; the first is the default
    /// id written (a type for several ids overrides [`Command::id`]).
    const IDS: &'static [&'static str];
    /// The reply's wire id, e.g. `rpl:join` (XCCOS.md table).
    const REPLY_ID: &'static str;
    /// The wire id of this request.
    fn id(&self) -> &'static str {
        Self::IDS[0]
    }
    /// Decodes the command's `<data>` (`None`: the element is absent); `p.id` is the
    /// wire id. Errors: 400 with a precise reason (see [`DataParser`]).
    fn parse(p: &DataParser<'_>, data: Option<&Elem>) -> Result<Self, XccosError>;
    /// Encodes the request as its `<data>` element (`parse` reads it back unchanged).
    fn data(&self) -> Elem;
    /// Handles the command from `ctx.user` on `ctx.dialog` with what the batch lends it
    /// (`cx`: rooms, store transaction, outbox, ids, `now_ms`, config; see
    /// [`BatchCx`]): the reply's data or an error.
    fn apply(&self, cx: &mut BatchCx, ctx: &Ctx) -> CmdResult;
}

/// The registration table: `Variant => module` for each request type
/// `module::Variant` (a [`Command`]). Builds [`CmdKind`] (one variant per type,
/// re-exported here), its id/reply id/data/handler dispatch and the lookup by wire id.
macro_rules! commands {
    ($($variant:ident => $module:ident),* $(,)?) => {
        $(pub use self::$module::$variant;)*

        /// Every registered command, with its typed request (XCCOS.md "Commands
        /// observed" and the **(design)** ones). Any other `cmd` id is answered 501.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum CmdKind {
            $(
                #[doc = concat!("[`", stringify!($module), "::", stringify!($variant), "`]")]
                $variant($module::$variant),
            )*
        }

        impl CmdKind {
            /// The wire id, e.g. `"cmd:join"`.
            pub fn id(&self) -> &'static str {
                match self { $(CmdKind::$variant(c) => c.id(),)* }
            }
            /// The reply's wire id, e.g. `"rpl:join"`.
            pub fn reply_id(&self) -> &'static str {
                match self { $(CmdKind::$variant(_) => <$module::$variant as Command>::REPLY_ID,)* }
            }
            /// The `<data>` element of the request.
            pub fn data(&self) -> Elem {
                match self { $(CmdKind::$variant(c) => c.data(),)* }
            }
            fn apply(&self, cx: &mut BatchCx, ctx: &Ctx) -> CmdResult {
                match self { $(CmdKind::$variant(c) => c.apply(cx, ctx),)* }
            }
            /// Decodes `<data>` for wire id `p.id`; `None` for an unregistered id.
            fn parse(p: &DataParser<'_>, data: Option<&Elem>) -> Option<Result<CmdKind, XccosError>> {
                $(
                    if <$module::$variant as Command>::IDS.contains(&p.id) {
                        return Some(<$module::$variant as Command>::parse(p, data).map(CmdKind::$variant));
                    }
                )*
                None
            }
            /// The wire ids of every registered command, in table order.
            pub fn registered() -> impl Iterator<Item = &'static str> {
                [$(<$module::$variant as Command>::IDS),*].into_iter().flatten().copied()
            }
        }
    };
}

commands! {
    RequestUri => requri,
    GetHttpToken => filetok,
    GetFileToken => filetok,
    NodesPermCreateChild => manage,
    GetServerInfo => serverinfo,
    GetAssociations => associations,
    BJoin => join,
    Join => join,
    Part => join,
    BcContext => history,
    GetInv => invitations,
    ChanSrch => search,
    GetPref => prefs,
    SetPref => prefs,
    CreateRoom => manage,
    UpdateRoom => manage,
}

/// A decoded client request: `<cmd id="cmd:…" seqid="N"><data>…</data></cmd>`
/// (`XCCOS.md` "Request and reply").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// `seqid` attribute; clients send `1` on every command.
    pub seqid: u64,
    /// Which command, with its decoded `<data>`.
    pub kind: CmdKind,
}

impl Cmd {
    /// The `<cmd id seqid>` element carrying this request (what [`decode`] reads).
    pub fn to_elem(&self) -> Elem {
        Elem::new("cmd")
            .with("id", self.kind.id())
            .with("seqid", self.seqid.to_string())
            .push(self.kind.data())
    }

    /// A reply to this command (carried in the envelope `envid`): id = the command's
    /// reply id, seqid and `commandid` copied from the command, `resp` = `code` with its
    /// token from [`codes::token`].
    pub fn reply(&self, envid: u64, code: u16, data: RplData) -> Rpl {
        Rpl {
            id: self.kind.reply_id().to_owned(),
            seqid: self.seqid,
            command: Some(CommandRef {
                seqid: self.seqid,
                envid,
            }),
            resp: Some(Resp::new(code)),
            data,
        }
    }
}

/// Decodes a `<cmd>` element of the envelope `envid` by its id (the registration
/// table). Errors: 400 for a missing id, a missing or non-numeric seqid, or bad data
/// (reason prefixed with the id); 501 for an id nobody registered.
pub fn decode(envid: u64, el: &Elem) -> Result<Cmd, XccosError> {
    let seqid = el.attr("seqid").and_then(parse_u64);
    let id = el.attr("id").unwrap_or("cmd");
    let p = DataParser::new(id, Some(envid), seqid);
    if el.attr("id").is_none() {
        return Err(p.err(codes::BAD_REQUEST, "cmd: missing id attribute"));
    }
    if !CmdKind::registered().any(|known| known == id) {
        return Err(p.err(codes::UNKNOWN_COMMAND, format!("unknown command \"{id}\"")));
    }
    let seqid = match el.attr("seqid") {
        None => return Err(p.bad("missing seqid attribute")),
        Some(v) => parse_u64(v)
            .ok_or_else(|| p.bad(format!("seqid \"{v}\" is not an unsigned integer")))?,
    };
    match CmdKind::parse(&p, el.child("data")) {
        Some(kind) => Ok(Cmd { seqid, kind: kind? }),
        None => Err(p.err(codes::UNKNOWN_COMMAND, format!("unknown command \"{id}\""))),
    }
}

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
pub(crate) fn on_xccos(cx: &mut BatchCx, conn: ConnId, dialog: DialogId, req: Request) {
    let Some(user) = cx.dialogs().get(dialog).map(|d| d.user.clone()) else {
        return;
    };
    let env = match crate::xccos::parse(&req.body) {
        Ok(env) => env,
        Err(e) => {
            cx.out.respond(conn, response_for(&req, 200, "OK"), false);
            return send_error_reply(cx, dialog, e);
        }
    };
    let ctx = |seqid| Ctx {
        conn,
        dialog,
        user: user.clone(),
        envid: env.envid,
        seqid,
    };
    match env.body {
        Body::GrpChat(chat) => grpchat::handle(cx, &ctx(chat.seqid), &req, chat),
        Body::Cmd(el) => {
            cx.out.respond(conn, response_for(&req, 200, "OK"), false);
            match decode(env.envid, &el) {
                Ok(cmd) => {
                    let ctx = ctx(cmd.seqid);
                    let result = cmd.kind.apply(cx, &ctx);
                    send_reply(cx, &ctx, cmd.kind.reply_id(), result);
                }
                Err(e) => send_error_reply(cx, dialog, e),
            }
        }
        Body::Rpl(_) | Body::Ntc(_) => {
            // Only the server sends replies and notices; acknowledge and ignore.
            tracing::debug!(dialog = %dialog, "client sent a rpl/ntc; ignored");
            cx.out.respond(conn, response_for(&req, 200, "OK"), false);
        }
    }
}

/// The error reply to XCCOS that could not be decoded: addressed to the command when
/// its envid and id were readable (XCCOS.md "Request and reply"), else a bare
/// `rpl:error`.
fn send_error_reply(cx: &mut BatchCx, dialog: DialogId, e: XccosError) {
    tracing::debug!(dialog = %dialog, code = e.code, "bad XCCOS: {}", e.reason);
    let rpl = e.to_rpl().unwrap_or_else(|| Rpl {
        id: "rpl:error".to_string(),
        seqid: e.seqid.unwrap_or(1),
        command: e.envid.map(|envid| CommandRef {
            seqid: e.seqid.unwrap_or(1),
            envid,
        }),
        resp: Some(Resp::new(e.code)),
        data: RplData::None,
    });
    let body = cx.out.encode_envelope(Body::Rpl(rpl));
    cx.out.send_info(dialog, body, false);
}

/// Sends the reply for a command: 200 SUCCESS_OK with data, or the error code.
pub(crate) fn send_reply(cx: &mut BatchCx, ctx: &Ctx, reply_id: &str, result: CmdResult) {
    let (resp, data) = match result {
        Ok(data) => (Resp::ok(), data),
        Err(e) => {
            tracing::debug!(user = %ctx.user, code = e.code, "{reply_id} refused: {}", e.reason);
            (Resp::new(e.code), RplData::None)
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
    cx.out.send_reply_after_commit(ctx.dialog, rpl);
}

/// Finds the room a command names and checks that `user` may join/read it
/// (see [`room_op`]).
pub(crate) fn room_for<'a>(
    cx: &'a BatchCx,
    user: &str,
    chan: &ChanRef,
) -> Result<&'a Room, CmdError> {
    room_op(cx, user, chan, Op::Join)
}

/// Finds the room a command names and checks that `user` may do `op` there
/// ([`authz::check`]). Errors: 404 for a malformed URI, another domain, an unknown
/// room, or a room the user may not know of (secret); 403 when the user may know of it
/// but not do `op`. The reason never repeats the URI: it may end up in a `Warning`
/// header sent to someone who must not learn anything about the room.
pub(crate) fn room_op<'a>(
    cx: &'a BatchCx,
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
    if !domain.eq_ignore_ascii_case(&cx.cfg.domain) {
        return Err(not_found());
    }
    let room = cx.rooms.get(guid).ok_or_else(not_found)?;
    authz::check(cx.rooms, room, user, op).map_err(|code| {
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
