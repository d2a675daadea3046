//! `cmd:chansrch` (call-flows.md find-a-room step 1): room search over the rooms the
//! user may find ([`authz::Op::Find`]; secret rooms only for their members).
//!
//! `qtype` (case-insensitive):
//! - `BYNAME`: `criteria` is a case-insensitive substring of the name; empty = all;
//! - `BYDESC` / `BYKEYWORDS` **(design)**: every whitespace-separated word of `criteria`
//!   is a case-insensitive substring of the description, name or topic;
//! - `BYMEMBER` **(design)**: rooms the user is a member of ("rooms I am in");
//! - `BYMANAGER` **(design)**: rooms the user manages;
//!
//! the last two further filtered by `criteria` on the name. Results are ordered by name
//! and capped at `searchLimit`; a capped list ends with `<more limit="N"/>`. With
//! `extended="true"` each hit has `info` (user count online, visibility
//! `public`/`private`/`secret`) and `prop` (filepost = category file upload, invite =
//! the room's effective invitations, logged = category history).

use super::{CmdError, CmdResult, Ctx};
use crate::channel::{authz, Room};
use crate::config::Privacy;
use crate::core::BatchCx;
use crate::xccos::{codes, RplData, SearchExtended, SearchHit};

command! {
    /// `cmd:chansrch`: `<data><qib qtype="BYNAME" criteria="" extended="false"/></data>`.
    /// A missing `criteria` is `""`, a missing `extended` is `false`.
    ChanSrch ["cmd:chansrch"] -> "rpl:chansrch" <"qib"> {
        /// `qtype` attribute, e.g. `BYNAME`.
        pub qtype: String = req "qtype",
        /// `criteria` attribute (search text; may be empty).
        pub criteria: String = opt "criteria",
        /// `extended` attribute: ask for `info`/`prop` children in the result.
        pub extended: bool = opt "extended",
    }
    /// Runs the search, then records it (compliance SEARCH event).
    apply(self, cx, ctx) {
        let reply = chansrch(cx, ctx, &self.qtype, &self.criteria, self.extended)?;
        record(cx, ctx, &self.qtype, &self.criteria)?;
        Ok(reply)
    }
}

/// What a query type matches on.
enum By {
    Name,
    Keywords,
    Member,
    Manager,
}

/// Runs a search. Errors: 400 for an unknown query type.
pub fn chansrch(cx: &BatchCx, ctx: &Ctx, qtype: &str, criteria: &str, extended: bool) -> CmdResult {
    let by = match qtype.to_ascii_uppercase().as_str() {
        "BYNAME" => By::Name,
        "BYDESC" | "BYKEYWORDS" => By::Keywords,
        "BYMEMBER" => By::Member,
        "BYMANAGER" => By::Manager,
        _ => {
            return Err(CmdError::new(
                codes::BAD_REQUEST,
                format!(
                    "unsupported qtype {qtype:?} (BYNAME, BYDESC, BYKEYWORDS, BYMEMBER, BYMANAGER)"
                ),
            ))
        }
    };
    let needle = criteria.trim().to_lowercase();
    let words: Vec<&str> = needle.split_whitespace().collect();
    let name_matches =
        |r: &Room| needle.is_empty() || r.attrs.name.to_lowercase().contains(&needle);
    let limit = cx.cfg.limits.search_limit as usize;
    let mut found = cx
        .rooms
        .by_name_order()
        .filter(|r| authz::can_find(cx.rooms, r, &ctx.user))
        .filter(|r| match by {
            By::Name => name_matches(r),
            By::Keywords => {
                let hay = format!(
                    "{}\n{}\n{}",
                    r.attrs.description, r.attrs.name, r.attrs.topic
                )
                .to_lowercase();
                words.iter().all(|w| hay.contains(w))
            }
            By::Member => r.roles.members.contains(&ctx.user) && name_matches(r),
            By::Manager => r.roles.managers.contains(&ctx.user) && name_matches(r),
        });
    let hits: Vec<SearchHit> = found
        .by_ref()
        .take(limit)
        .map(|r| hit(cx, r, extended))
        .collect();
    if found.next().is_some() {
        return Ok(RplData::SearchCapped {
            hits,
            limit: cx.cfg.limits.search_limit,
        });
    }
    Ok(RplData::Search(hits))
}

/// Records the search as a compliance SEARCH event (`BYNAME:<criteria>`, no room).
/// Errors: 500 when the event could not be written.
pub fn record(cx: &mut BatchCx, ctx: &Ctx, qtype: &str, criteria: &str) -> Result<(), CmdError> {
    let content = format!("{}:{}", qtype.to_ascii_uppercase(), criteria.trim());
    crate::compliance::record::record(
        cx,
        crate::compliance::EventKind::Search,
        "",
        &ctx.user,
        &content,
    )
}

fn hit(cx: &BatchCx, r: &Room, extended: bool) -> SearchHit {
    let cat = cx.rooms.category_of(r);
    SearchHit {
        uri: r.uri.clone(),
        name: r.attrs.name.clone(),
        description: r.attrs.description.clone(),
        extended: extended.then(|| SearchExtended {
            user_count: r.online_users().len() as u32,
            visibility: match r.attrs.privacy {
                Privacy::Open => "public",
                Privacy::Closed => "private",
                Privacy::Secret => "secret",
            }
            .to_string(),
            filepost: cat.is_some_and(|c| c.file_upload),
            invite: r
                .attrs
                .invitations
                .effective(cat.is_some_and(|c| c.invitations)),
            logged: cat.is_some_and(|c| c.history),
        }),
    }
}
