//! `cmd:getpref` / `cmd:setpref` (XCCOS.md "Commands observed"): per-user preferences
//! kept on the server, so every client of a user sees the same values.
//!
//! Request: `<pref label="…" seqid="N" createdefault="true"/>` (setpref adds
//! `content="<base64>"`). Reply `rpl:getpref` / `rpl:setpref`:
//! `<data><pref label="…" seqid="V" content="<base64>"/></data>`, `V` the stored
//! version (0: nothing stored; each setpref adds 1).
//!
//! The label [`FOLLOWED_PREF`] (`kedzie.GroupChannels`) is the followed-rooms list -
//! the list a client bjoins at sign-in - and is the same list `join` adds to and `part`
//! removes from. Its content **(design)** is the base64 of the room URIs separated by
//! line feeds, in follow order; only rooms the user may still find are listed. A
//! setpref of it replaces the list; any URI the user may not find makes the whole
//! setpref fail with 404 (without saying which), changing nothing.

use super::{store_err, CmdError, CmdResult, Ctx};
use crate::channel::authz;
use crate::core::BatchCx;
use crate::xccos::{codes, RplData};
use base64::Engine;

command! {
    /// `cmd:getpref`: `<data><pref label="kedzie.GroupChannels" seqid="71" createdefault="true"/></data>`.
    /// A missing `seqid` is 0, a missing `createdefault` is `false`.
    GetPref ["cmd:getpref"] -> "rpl:getpref" <"pref"> {
        /// `label` attribute.
        pub label: String = req "label",
        /// `seqid` attribute (the version the client has; informative).
        pub seqid: u64 = opt "seqid",
        /// `createdefault` attribute: create an empty preference if none is stored.
        pub create_default: bool = opt "createdefault",
    }
    apply(self, cx, ctx) { getpref(cx, ctx, &self.label, self.create_default) }
}

command! {
    /// `cmd:setpref`: `<data><pref label="…" seqid="71" content="<base64>"/></data>`.
    SetPref ["cmd:setpref"] -> "rpl:setpref" <"pref"> {
        /// `label` attribute.
        pub label: String = req "label",
        /// `seqid` attribute (informative; the server assigns the new version).
        pub seqid: u64 = opt "seqid",
        /// `content` attribute, base64.
        pub content: String = req "content",
    }
    apply(self, cx, ctx) { setpref(cx, ctx, &self.label, &self.content) }
}

/// Label of the followed-rooms preference.
pub const FOLLOWED_PREF: &str = "kedzie.GroupChannels";

/// Largest preference content accepted, in bytes of base64.
pub const MAX_PREF_BYTES: usize = 64 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The followed rooms of `user` that the user may still find, as URIs.
fn followed_uris(cx: &mut BatchCx, user: &str) -> Result<Vec<String>, CmdError> {
    let guids = cx.store.followed(user).map_err(store_err)?;
    Ok(guids
        .iter()
        .filter_map(|g| cx.rooms.get(g))
        .filter(|r| authz::can_find(cx.rooms, r, user))
        .map(|r| r.uri.clone())
        .collect())
}

fn followed_content(cx: &mut BatchCx, user: &str) -> Result<String, CmdError> {
    Ok(B64.encode(followed_uris(cx, user)?.join("\n")))
}

/// `cmd:getpref`. Errors: 500 on store failure.
pub fn getpref(cx: &mut BatchCx, ctx: &Ctx, label: &str, create_default: bool) -> CmdResult {
    let stored = cx.store.get_pref(&ctx.user, label).map_err(store_err)?;
    let seqid = match stored.as_ref() {
        Some(p) => p.seqid,
        None if create_default => cx.store.set_pref(&ctx.user, label, "").map_err(store_err)?,
        None => 0,
    };
    let content = if label == FOLLOWED_PREF {
        followed_content(cx, &ctx.user)?
    } else {
        stored.map(|p| p.content).unwrap_or_default()
    };
    Ok(RplData::Pref {
        label: label.to_string(),
        seqid,
        content,
    })
}

/// `cmd:setpref`. Errors: 400 content not base64 (or, for the followed list, not
/// UTF-8), 413 content over [`MAX_PREF_BYTES`], 404 a followed room the user may not
/// find, 500 store failure.
pub fn setpref(cx: &mut BatchCx, ctx: &Ctx, label: &str, content: &str) -> CmdResult {
    if content.len() > MAX_PREF_BYTES {
        return Err(CmdError::new(
            codes::TOO_LARGE,
            format!(
                "pref content of {} bytes exceeds {MAX_PREF_BYTES}",
                content.len()
            ),
        ));
    }
    let bytes = B64.decode(content.trim()).map_err(|e| {
        CmdError::new(
            codes::BAD_REQUEST,
            format!("pref content is not base64: {e}"),
        )
    })?;
    if label == FOLLOWED_PREF {
        let text = String::from_utf8(bytes)
            .map_err(|_| CmdError::new(codes::BAD_REQUEST, "followed list is not UTF-8 text"))?;
        let mut guids = Vec::new();
        for uri in text.split_whitespace() {
            let chan = crate::xccos::ChanRef::Uri(uri.to_string());
            let room = super::room_op(cx, &ctx.user, &chan, authz::Op::Find)?;
            guids.push(room.guid.clone());
        }
        cx.store
            .set_followed(&ctx.user, &guids)
            .map_err(store_err)?;
        for guid in &guids {
            cx.rooms.follows_mut().add(&ctx.user, guid);
        }
    }
    let seqid = cx
        .store
        .set_pref(&ctx.user, label, content.trim())
        .map_err(store_err)?;
    let content = if label == FOLLOWED_PREF {
        followed_content(cx, &ctx.user)?
    } else {
        content.trim().to_string()
    };
    Ok(RplData::Pref {
        label: label.to_string(),
        seqid,
        content,
    })
}
