//! `cmd:bccontext` (call-flows.md sign-in step 6, find-a-room step 3): a room's
//! history, oldest first, at most min(`cnt`, `[limits] history_limit`) messages:
//! `<last cnt>`, `<before id cnt>`, `<since ts cnt>`, and a history search
//! `<search keyword author from to cnt>` (see [`BcQuery`]). Each `msg`'s `seqid` is the
//! message id that `before` takes (design). Same permission as joining
//! ([`Op::ReadHistory`]); in a category with `history = false` the answer is an empty
//! history. Reading the newest messages clears the room's unread count.

use super::{room_op, store_err, CmdError, CmdResult, Ctx};
use crate::channel::authz::Op;
use crate::clock::{iso8601, parse_iso8601};
use crate::compliance::{record::record, EventKind};
use crate::core::Core;
use crate::store::HistoryQuery;
use crate::xccos::{codes, BcQuery, ChanRef, GrpChat, RplData};

fn time(what: &str, s: &str) -> Result<i64, CmdError> {
    parse_iso8601(s).ok_or_else(|| {
        CmdError::new(
            codes::BAD_REQUEST,
            format!("{what} {s:?} is not an ISO 8601 UTC time like 2026-01-01T00:00:00Z"),
        )
    })
}

/// What a history read asked for, as the BACKCHAT event's content.
fn describe(q: &HistoryQuery, cnt: u32) -> String {
    match q {
        HistoryQuery::Last => format!("last {cnt}"),
        HistoryQuery::Before(id) => format!("before {id} last {cnt}"),
        HistoryQuery::Since(ms) => format!("since {} last {cnt}", iso8601(*ms)),
        HistoryQuery::Search {
            keyword,
            author,
            from_ms,
            to_ms,
        } => format!(
            "search keyword={} author={} from={} to={} last {cnt}",
            keyword,
            author.as_deref().unwrap_or(""),
            from_ms.map(iso8601).unwrap_or_default(),
            to_ms.map(iso8601).unwrap_or_default()
        ),
    }
}

/// Runs the query. Errors: 404/403 as for join, 400 for an unreadable time or an id
/// out of range, 500 on store failure.
pub fn bccontext(core: &mut Core, ctx: &Ctx, chan: &ChanRef, query: &BcQuery) -> CmdResult {
    let (guid, uri, logged) = {
        let room = room_op(core, &ctx.user, chan, Op::ReadHistory)?;
        let logged = core.rooms.category_of(room).is_some_and(|c| c.history);
        (room.guid.clone(), room.uri.clone(), logged)
    };
    let q = match query {
        BcQuery::Last { .. } => HistoryQuery::Last,
        BcQuery::Before { id, .. } => HistoryQuery::Before(
            i64::try_from(*id)
                .map_err(|_| CmdError::new(codes::BAD_REQUEST, "before id out of range"))?,
        ),
        BcQuery::Since { ts, .. } => HistoryQuery::Since(time("since ts", ts)?),
        BcQuery::Search {
            keyword,
            author,
            from,
            to,
            ..
        } => HistoryQuery::Search {
            keyword: keyword.clone(),
            author: author.clone(),
            from_ms: from
                .as_deref()
                .map(|f| time("search from", f))
                .transpose()?,
            to_ms: to.as_deref().map(|t| time("search to", t)).transpose()?,
        },
    };
    let cnt = query.cnt().min(core.cfg.limits.history_limit);
    // BACKCHAT compliance event, in the same transaction as the read (issue 4).
    record(
        core,
        EventKind::Backchat,
        &guid,
        &ctx.user,
        &describe(&q, cnt),
    )?;
    let msgs = if logged {
        core.store.history(&guid, &q, cnt).map_err(store_err)?
    } else {
        Vec::new()
    };
    if q == HistoryQuery::Last {
        core.store.mark_read(&ctx.user, &guid).map_err(store_err)?;
    }
    Ok(RplData::History {
        chan_uri: uri.clone(),
        msgs: msgs
            .into_iter()
            .map(|m| GrpChat {
                msgid: None,
                seqid: u64::try_from(m.id).unwrap_or(0),
                chan_uri: uri.clone(),
                author: Some(m.author),
                ts: Some(iso8601(m.ts_ms)),
                text: m.text,
            })
            .collect(),
    })
}
