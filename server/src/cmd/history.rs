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
use crate::core::BatchCx;
use crate::store::HistoryQuery;
use crate::xccos::elem::{chanref_elem, Elem};
use crate::xccos::{codes, ChanRef, GrpChat, RplData};

command! {
    /// `cmd:bccontext`: `<data><chanib uri="…"/><bcq><last cnt="25"/></bcq></data>`:
    /// fetch room history.
    BcContext ["cmd:bccontext"] -> "rpl:bccontext" {
        /// The room.
        pub chan: ChanRef,
        /// Which messages.
        pub query: BcQuery,
    }
    parse(p, data) {
        let d = p.data(data)?;
        let chan = p.first_chanref(d)?;
        let bcq = p.child(d, "bcq")?;
        let opt = |q: &Elem, k: &str| q.attr(k).map(str::to_owned);
        let query = match bcq.children.first() {
            None => return Err(p.bad("empty bcq, expected <last cnt>")),
            Some(q) if q.name == "last" => BcQuery::Last {
                cnt: p.u32_attr(q, "cnt")?,
            },
            Some(q) if q.name == "before" => BcQuery::Before {
                id: p.u64_attr(q, "id")?,
                cnt: p.u32_attr(q, "cnt")?,
            },
            Some(q) if q.name == "since" => BcQuery::Since {
                ts: p.attr(q, "ts")?.to_owned(),
                cnt: p.u32_attr(q, "cnt")?,
            },
            Some(q) if q.name == "search" => BcQuery::Search {
                keyword: q.attr("keyword").unwrap_or("").to_owned(),
                author: opt(q, "author"),
                from: opt(q, "from"),
                to: opt(q, "to"),
                cnt: p.u32_attr(q, "cnt")?,
            },
            Some(q) => return Err(p.bad(format!("unsupported bcq query <{}>", q.name))),
        };
        Ok(BcContext { chan, query })
    }
    data(self) {
        let q = match &self.query {
            BcQuery::Last { .. } => Elem::new("last"),
            BcQuery::Before { id, .. } => Elem::new("before").with("id", id.to_string()),
            BcQuery::Since { ts, .. } => Elem::new("since").with("ts", ts.as_str()),
            BcQuery::Search {
                keyword,
                author,
                from,
                to,
                ..
            } => Elem::new("search")
                .with("keyword", keyword.as_str())
                .with_opt("author", author.as_ref())
                .with_opt("from", from.as_ref())
                .with_opt("to", to.as_ref()),
        };
        let q = q.with("cnt", self.query.cnt().to_string());
        Elem::data([chanref_elem(&self.chan), Elem::new("bcq").push(q)])
    }
    apply(self, cx, ctx) { bccontext(cx, ctx, &self.chan, &self.query) }
}

/// The history query of `cmd:bccontext` (`<bcq>` element). In the reply each
/// `msg`'s `seqid` is the message id that `before` takes **(design)**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BcQuery {
    /// `<bcq><last cnt="25"/></bcq>`: the newest `cnt` messages.
    Last {
        /// Number of messages wanted.
        cnt: u32,
    },
    /// `<bcq><before id="N" cnt="25"/></bcq>` **(design)**: the newest `cnt` messages
    /// older than message id `N`.
    Before {
        /// Message id (a `msg` `seqid` of an earlier reply).
        id: u64,
        /// Number of messages wanted.
        cnt: u32,
    },
    /// `<bcq><since ts="2026-01-01T00:00:00Z" cnt="25"/></bcq>` **(design)**: the
    /// first `cnt` messages posted at or after `ts` (ISO 8601 UTC).
    Since {
        /// ISO 8601 time, as sent.
        ts: String,
        /// Number of messages wanted.
        cnt: u32,
    },
    /// `<bcq><search keyword="…" author="sip:…" from="ISO" to="ISO" cnt="25"/></bcq>`
    /// **(design)**: the newest `cnt` messages matching every attribute given
    /// (keyword: case-insensitive substring; author: exact URI; from/to: inclusive).
    Search {
        /// Keyword (`""`: any text).
        keyword: String,
        /// Author URI.
        author: Option<String>,
        /// Earliest time, ISO 8601.
        from: Option<String>,
        /// Latest time, ISO 8601.
        to: Option<String>,
        /// Number of messages wanted.
        cnt: u32,
    },
}

impl BcQuery {
    /// The `cnt` of the query.
    pub fn cnt(&self) -> u32 {
        match self {
            BcQuery::Last { cnt }
            | BcQuery::Before { cnt, .. }
            | BcQuery::Since { cnt, .. }
            | BcQuery::Search { cnt, .. } => *cnt,
        }
    }
}

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
pub fn bccontext(cx: &mut BatchCx, ctx: &Ctx, chan: &ChanRef, query: &BcQuery) -> CmdResult {
    let (guid, uri, logged) = {
        let room = room_op(cx, &ctx.user, chan, Op::ReadHistory)?;
        let logged = cx.rooms.category_of(room).is_some_and(|c| c.history);
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
    let cnt = query.cnt().min(cx.cfg.limits.history_limit);
    // BACKCHAT compliance event, in the same transaction as the read (issue 4).
    record(
        cx,
        EventKind::Backchat,
        &guid,
        &ctx.user,
        &describe(&q, cnt),
    )?;
    let msgs = if logged {
        cx.store.history(&guid, &q, cnt).map_err(store_err)?
    } else {
        Vec::new()
    };
    if q == HistoryQuery::Last {
        cx.store.mark_read(&ctx.user, &guid).map_err(store_err)?;
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
