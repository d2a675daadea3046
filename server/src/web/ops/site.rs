//! The core's side of the web pages (issue 16; docs/web.md "Pages"): sessions, sign-in
//! against the SIP users' secrets and brute-force guard (`auth::password`), and the
//! page actions - each through the same code as its JSON API and XCCOS twins
//! (`cmd::manage` for changes, `cmd::history::bccontext` for history, the parent
//! module's download), so the same rules table (`channel::authz`) decides and the same
//! compliance events are written.
//!
//! A change needs the session's CSRF token (`bad_csrf`, 403, checked before anything
//! else: nothing changes). Sessions are in memory, keyed by a random id from the core's
//! seeded generator, and end at sign-out or after `[http] bearer_ttl_ms`.

use super::{
    create_room_as, download_as, from_cmd_error, internal, my_rooms, room_for, update_room_as,
    Reply,
};
use crate::auth::password::PasswordError;
use crate::channel::authz::{self, Op};
use crate::channel::{DialogId, Room};
use crate::cmd::history::BcQuery;
use crate::cmd::Ctx;
use crate::core::{BatchCx, ConnId};
use crate::web::api::site::{
    HistoryItem, MyRooms, RoomDetails, RoomPage, SignInForm, SignedIn, SiteRequest, HISTORY_PAGE,
};
use crate::web::api::HttpReply;
use crate::web::state::WebSession;
use crate::xccos::{ChanRef, RplData};

/// Most sessions held at once; signing in beyond it ends the session closest to expiry.
pub const MAX_SESSIONS: usize = 10_000;

/// Handles one page request; returns the reply and whether it waits for the commit.
pub(super) fn handle(cx: &mut BatchCx, r: SiteRequest) -> (Reply, bool) {
    match r {
        SiteRequest::SignInForm => {
            let csrf = cx.ids().guid().replace('-', "");
            (Ok(HttpReply::json(200, SignInForm { csrf })), false)
        }
        SiteRequest::SignIn {
            username,
            password,
            addr,
        } => (sign_in(cx, &username, &password, &addr), false),
        SiteRequest::SignOut { session, csrf } => (sign_out(cx, &session, &csrf), false),
        SiteRequest::MyRooms { session } => (my_rooms_page(cx, &session), false),
        SiteRequest::Room {
            session,
            room,
            before,
            search,
        } => (room_page(cx, &session, &room, before, search), true),
        SiteRequest::Create {
            session,
            csrf,
            mut body,
        } => {
            for list in [&mut body.members, &mut body.managers] {
                normalize(&cx.cfg.domain, list);
            }
            let r = changer(cx, &session, &csrf).and_then(|ctx| create_room_as(cx, &ctx, body));
            (r, true)
        }
        SiteRequest::Update {
            session,
            csrf,
            room,
            mut body,
        } => {
            let lists = [
                &mut body.add_members,
                &mut body.remove_members,
                &mut body.add_managers,
                &mut body.remove_managers,
                &mut body.add_presenters,
                &mut body.remove_presenters,
            ];
            for list in lists {
                normalize(&cx.cfg.domain, list);
            }
            let r =
                changer(cx, &session, &csrf).and_then(|ctx| update_room_as(cx, &ctx, &room, *body));
            (r, true)
        }
        SiteRequest::Download {
            session,
            room,
            name,
        } => {
            let r = signed_in(cx, &session).and_then(|s| {
                crate::files::check_name(&name)
                    .map_err(|why| HttpReply::error(400, "bad_file_name", why))?;
                download_as(cx, &s.user, &room, &name)
            });
            (r, true)
        }
    }
}

/// User names as typed into a form -> SIP URIs: `user` -> `sip:user@<domain>`,
/// `user@d` -> `sip:user@d`, lower case; empty entries dropped.
fn normalize(domain: &str, list: &mut Vec<String>) {
    *list = list
        .iter()
        .map(|u| u.trim().to_lowercase())
        .filter(|u| !u.is_empty())
        .map(|u| match (u.starts_with("sip:"), u.contains('@')) {
            (true, _) => u,
            (false, true) => format!("sip:{u}"),
            (false, false) => format!("sip:{u}@{}", domain.to_lowercase()),
        })
        .collect();
}

/// The live session `id`. Errors: 401 `signed_out`.
fn signed_in(cx: &BatchCx, id: &str) -> Result<WebSession, HttpReply> {
    let now = cx.now_ms;
    cx.web
        .sessions
        .get(id)
        .filter(|s| !id.is_empty() && now < s.expires_ms)
        .cloned()
        .ok_or_else(|| {
            HttpReply::error(
                401,
                "signed_out",
                "not signed in, or the session has ended: sign in again",
            )
        })
}

/// A command context for `user` without a SIP dialog: no XCCOS reply is sent, and
/// `DialogId::MAX` means every joined dialog gets the room's notices.
fn ctx_for(user: String) -> Ctx {
    Ctx {
        conn: ConnId(0),
        dialog: DialogId::MAX,
        user,
        envid: 0,
        seqid: 0,
    }
}

/// The context of a change: a live session and its CSRF token. Errors: 401, 403
/// `bad_csrf`.
fn changer(cx: &BatchCx, session: &str, csrf: &str) -> Result<Ctx, HttpReply> {
    let s = signed_in(cx, session)?;
    if csrf.is_empty() || !crate::auth::digest::same(csrf, &s.csrf) {
        return Err(HttpReply::error(
            403,
            "bad_csrf",
            "the form's CSRF token is missing or wrong: reload the page and try again",
        ));
    }
    Ok(ctx_for(s.user))
}

fn sign_in(cx: &mut BatchCx, username: &str, password: &str, addr: &str) -> Reply {
    let now = cx.now_ms;
    let user = cx
        .auth()
        .check_password(username, password, addr, now)
        .map_err(|e| match e {
            PasswordError::Wrong => {
                HttpReply::error(401, "bad_password", "wrong user name or password")
            }
            PasswordError::Locked => {
                HttpReply::error(429, "locked", "too many failed attempts: try again later")
            }
        })?;
    let ttl = cx
        .cfg
        .http
        .as_ref()
        .map_or(0, |h| i64::try_from(h.bearer_ttl_ms).unwrap_or(i64::MAX));
    let sessions = &mut cx.web.sessions;
    sessions.retain(|_, s| now < s.expires_ms);
    if sessions.len() >= MAX_SESSIONS {
        let oldest = sessions
            .iter()
            .min_by_key(|(_, s)| s.expires_ms)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            sessions.remove(&k);
        }
    }
    let session = format!("{}{}", cx.ids().guid(), cx.ids().guid()).replace('-', "");
    let csrf = cx.ids().guid().replace('-', "");
    cx.web.sessions.insert(
        session.clone(),
        WebSession {
            user: user.clone(),
            csrf,
            expires_ms: now.saturating_add(ttl),
        },
    );
    tracing::info!(%user, "web sign-in");
    Ok(HttpReply::json(200, SignedIn { user, session }))
}

fn sign_out(cx: &mut BatchCx, session: &str, csrf: &str) -> Reply {
    if changer(cx, session, csrf).is_ok() {
        cx.web.sessions.remove(session);
    }
    Ok(HttpReply::json(200, serde_json::json!({})))
}

fn my_rooms_page(cx: &BatchCx, session: &str) -> Reply {
    let s = signed_in(cx, session)?;
    let categories = cx
        .rooms
        .categories()
        .filter(|c| authz::check_create(c, &s.user).is_ok())
        .map(|c| c.name.clone())
        .collect();
    Ok(HttpReply::json(
        200,
        MyRooms {
            rooms: my_rooms(cx, &s.user),
            user: s.user,
            csrf: s.csrf,
            categories,
        },
    ))
}

/// What the page shows of `room`: its web API view ([`super::room_view`]) with the
/// role lists only when `readable`, and `manager` as given.
fn details(room: &Room, readable: bool, manager: bool) -> RoomDetails {
    let mut view = super::room_view(room, "");
    view.manager = manager;
    let presenters = if readable {
        room.roles.presenters.iter().cloned().collect()
    } else {
        view.members.clear();
        view.managers.clear();
        Vec::new()
    };
    RoomDetails {
        view,
        room_type: room.attrs.room_type.as_str().to_string(),
        presenters,
    }
}

fn room_page(
    cx: &mut BatchCx,
    session: &str,
    guid: &str,
    before: Option<u64>,
    search: Option<String>,
) -> Reply {
    let s = signed_in(cx, session)?;
    let room = room_for(cx, &s.user, guid, Op::Find)?;
    let readable = authz::check(cx.rooms, room, &s.user, Op::ReadHistory).is_ok();
    let manager = authz::check(cx.rooms, room, &s.user, Op::Manage).is_ok();
    let details = details(room, readable || manager, manager);
    let search = search.filter(|k| !k.trim().is_empty());
    let (history, older, history_note) = if readable {
        let (h, o) = history(cx, &s.user, &details.view.uri, before, search.as_deref())?;
        (h, o, None)
    } else {
        let note = "only members can read this room's history".to_string();
        (Vec::new(), None, Some(note))
    };
    Ok(HttpReply::json(
        200,
        RoomPage {
            user: s.user,
            csrf: s.csrf,
            room: details,
            history,
            history_note,
            older,
            search,
        },
    ))
}

/// A page of history through `cmd:bccontext`'s code (BACKCHAT event, same limits):
/// the messages and the `before` id of the previous page, if there may be one.
fn history(
    cx: &mut BatchCx,
    user: &str,
    uri: &str,
    before: Option<u64>,
    search: Option<&str>,
) -> Result<(Vec<HistoryItem>, Option<u64>), HttpReply> {
    let cnt = HISTORY_PAGE;
    let q = match (search, before) {
        (Some(k), _) => BcQuery::Search {
            keyword: k.to_string(),
            author: None,
            from: None,
            to: None,
            cnt,
        },
        (None, Some(id)) => BcQuery::Before { id, cnt },
        (None, None) => BcQuery::Last { cnt },
    };
    let ctx = ctx_for(user.to_string());
    let chan = ChanRef::Uri(uri.to_string());
    let data = crate::cmd::history::bccontext(cx, &ctx, &chan, &q).map_err(from_cmd_error)?;
    let RplData::History { msgs, .. } = data else {
        return Err(internal("bccontext answered something else than a history"));
    };
    let guid = uri.rsplit('/').next().unwrap_or_default().to_string();
    let full = msgs.len() == cnt as usize;
    let older = msgs
        .first()
        .map(|m| m.seqid)
        .filter(|_| full && search.is_none());
    let mut items = Vec::with_capacity(msgs.len());
    for m in msgs {
        let file = match announced_file(&m.text) {
            Some(name) => cx
                .store
                .get_file(&guid, name)
                .map_err(internal)?
                .map(|f| f.name),
            None => None,
        };
        items.push(HistoryItem {
            id: m.seqid,
            author: m.author.unwrap_or_default(),
            ts: m.ts.unwrap_or_default(),
            text: m.text,
            file,
        });
    }
    Ok((items, older))
}

/// The file name of an upload's announcement, `[file] <name> (<size> bytes, sha256
/// <hex>)` (`super::announcement`).
pub fn announced_file(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("[file] ")?;
    let (name, tail) = rest.rsplit_once(" (")?;
    (tail.ends_with(')') && tail.contains(" bytes, sha256 ")).then_some(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn announced_file_names_the_file_of_an_announcement_only() {
        let a = super::super::announcement("a (1).txt", 3, "ab");
        assert_eq!(super::announced_file(&a), Some("a (1).txt"));
        assert_eq!(super::announced_file("[file] x"), None);
        assert_eq!(super::announced_file("hello (3 bytes, sha256 ab)"), None);
    }
}
