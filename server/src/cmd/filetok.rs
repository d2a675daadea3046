//! Tokens for the web services (call-flows.md "Web services"; docs/web.md).
//!
//! - `cmd:getfutok` / `cmd:getfdtok` (XCCOS.md table): `<ftdb channelUri="…"
//!   fileUrl="name"/>` -> `rpl:getftok` `<token token="<guid>" serveruri="<base
//!   URL>"/>`: a single-use token for uploading (`futok`) or downloading (`fdtok`) that
//!   file in that room, bound to the dialog's user, expiring after `[http]
//!   file_token_ttl_ms`. Upload needs the right to post and the category's
//!   `file_upload`; download needs the right to read history and an existing file.
//! - `cmd:gethttptok` **(design)**: `<data/>` -> `rpl:gethttptok` `<token token="<guid>"
//!   serveruri="<base URL>"/>`: the bearer token for `Authorization: Bearer` that
//!   identifies this dialog's user to the web service, so HTTP never trusts a user name
//!   it was merely told. It ends with the dialog or after `[http] bearer_ttl_ms`.
//!
//! Errors: 400 when `[http]` is not configured (the reason says so), 400 (bad file name), 404 (no such room / not visible, no such file), 403 (may
//! not post or read, file upload off).

use super::{room_op, store_err, CmdError, CmdResult, Ctx};
use crate::channel::authz::Op;
use crate::core::BatchCx;
use crate::web::tokens::{Bearer, Direction};
use crate::xccos::elem::Elem;
use crate::xccos::{codes, ChanRef, RplData};

command! {
    /// `cmd:getfutok` (upload) / `cmd:getfdtok` (download): `<data><ftdb
    /// channelUri="ma-chan://…" fileUrl="report.txt"/></data>` (`XCCOS.md` table); reply
    /// `rpl:getftok` with a single-use file token for the web service.
    GetFileToken ["cmd:getfutok", "cmd:getfdtok"] -> "rpl:getftok" {
        /// `true` for `cmd:getfutok`, `false` for `cmd:getfdtok`.
        pub upload: bool,
        /// `channelUri`.
        pub chan_uri: String,
        /// `fileUrl`: the file name in the room.
        pub file: String,
    }
    id(self) { Self::IDS[usize::from(!self.upload)] }
    parse(p, data) {
        let ftdb = p.child(p.data(data)?, "ftdb")?;
        Ok(GetFileToken {
            upload: p.id == "cmd:getfutok",
            chan_uri: p.attr(ftdb, "channelUri")?.to_owned(),
            file: p.attr(ftdb, "fileUrl")?.to_owned(),
        })
    }
    data(self) {
        let ftdb = Elem::new("ftdb")
            .with("channelUri", self.chan_uri.as_str())
            .with("fileUrl", self.file.as_str());
        Elem::data([ftdb])
    }
    apply(self, cx, ctx) { file_token(cx, ctx, self.upload, &self.chan_uri, &self.file) }
}

command! {
    /// `cmd:gethttptok` **(design)**: `<data/>`; reply `rpl:gethttptok` with a bearer
    /// token that identifies this dialog's user to the web service (docs/protocol.md).
    GetHttpToken ["cmd:gethttptok"] -> "rpl:gethttptok";
    apply(self, cx, ctx) { http_token(cx, ctx) }
}

fn base_url(cx: &BatchCx) -> Result<String, CmdError> {
    cx.cfg
        .http
        .as_ref()
        .map(|h| h.base_url())
        .ok_or_else(|| CmdError::new(codes::BAD_REQUEST, "web services are off ([http] absent)"))
}

/// `cmd:getfutok` (`upload`) / `cmd:getfdtok`. See the module docs.
pub fn file_token(
    cx: &mut BatchCx,
    ctx: &Ctx,
    upload: bool,
    chan_uri: &str,
    file: &str,
) -> CmdResult {
    let server_uri = base_url(cx)?;
    crate::files::check_name(file).map_err(|why| CmdError::new(codes::BAD_REQUEST, why))?;
    let op = if upload { Op::Post } else { Op::ReadHistory };
    let room = room_op(cx, &ctx.user, &ChanRef::Uri(chan_uri.to_string()), op)?;
    let guid = room.guid.clone();
    if upload && !upload_allowed(cx, room) {
        return Err(CmdError::new(
            codes::NO_PERMISSION,
            "file upload is off in this room's category",
        ));
    }
    if !upload && cx.store.get_file(&guid, file).map_err(store_err)?.is_none() {
        return Err(CmdError::new(
            codes::NO_SUCH_ROOM,
            "no such file in this room",
        ));
    }
    let direction = if upload {
        Direction::Upload
    } else {
        Direction::Download
    };
    let token = issue_file_token(cx, &ctx.user, &guid, file, direction);
    Ok(RplData::Token { token, server_uri })
}

/// `cmd:gethttptok` **(design)**. See the module docs.
pub fn http_token(cx: &mut BatchCx, ctx: &Ctx) -> CmdResult {
    let server_uri = base_url(cx)?;
    let ttl = cx
        .cfg
        .http
        .as_ref()
        .map_or(0, |h| i64::try_from(h.bearer_ttl_ms).unwrap_or(i64::MAX));
    let token = cx.ids().guid();
    let expires_ms = cx.now_ms.saturating_add(ttl);
    cx.web.tokens.add_bearer(
        token.clone(),
        Bearer {
            user: ctx.user.clone(),
            dialog: ctx.dialog,
            expires_ms,
        },
    );
    Ok(RplData::Token { token, server_uri })
}

/// Issues a file token (`cmd:getfutok` / `cmd:getfdtok`) for the web services.
fn issue_file_token(
    cx: &mut BatchCx,
    user: &str,
    room_guid: &str,
    name: &str,
    direction: Direction,
) -> String {
    let token = cx.ids().guid();
    let ttl = cx.cfg.http.as_ref().map_or(0, |h| {
        i64::try_from(h.file_token_ttl_ms).unwrap_or(i64::MAX)
    });
    let expires_ms = cx.now_ms.saturating_add(ttl);
    cx.web.tokens.add_file(
        token.clone(),
        crate::web::tokens::FileToken {
            user: user.to_string(),
            room_guid: room_guid.to_string(),
            name: name.to_string(),
            direction,
            expires_ms,
            used: false,
        },
    );
    token
}

/// Whether uploads are allowed in the room's category (`file_upload`).
pub(crate) fn upload_allowed(cx: &BatchCx, room: &crate::channel::Room) -> bool {
    cx.rooms.category_of(room).is_some_and(|c| c.file_upload)
}
