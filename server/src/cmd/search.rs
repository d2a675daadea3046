//! `cmd:chansrch` (call-flows.md find-a-room step 1): room search. `qtype="BYNAME"` with
//! `criteria` matches a case-insensitive substring of the name; empty criteria lists all
//! rooms visible to the user. Results are ordered by name and capped at `searchLimit`.
//! Secret rooms are visible only to their members.

use super::{CmdError, CmdResult, Ctx};
use crate::channel::authz;
use crate::config::Privacy;
use crate::core::Core;
use crate::xccos::{codes, RplData, SearchExtended, SearchHit};

/// Runs a search. Errors: 400 for a query type other than BYNAME.
pub fn chansrch(core: &Core, ctx: &Ctx, qtype: &str, criteria: &str, extended: bool) -> CmdResult {
    if !qtype.eq_ignore_ascii_case("BYNAME") {
        return Err(CmdError::new(
            codes::BAD_REQUEST,
            format!("unsupported qtype {qtype:?}"),
        ));
    }
    let needle = criteria.trim().to_lowercase();
    let hits = core
        .rooms
        .by_name_order()
        .filter(|r| authz::can_find(r, &ctx.user, &core.cfg.domain))
        .filter(|r| needle.is_empty() || r.name.to_lowercase().contains(&needle))
        .take(core.cfg.limits.search_limit as usize)
        .map(|r| SearchHit {
            uri: r.uri.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            extended: extended.then(|| SearchExtended {
                user_count: r.online_users().len() as u32,
                visibility: match r.privacy {
                    Privacy::Open => "public",
                    Privacy::Closed => "private",
                    Privacy::Secret => "secret",
                }
                .to_string(),
                filepost: false,
                invite: false,
                logged: true,
            }),
        })
        .collect();
    Ok(RplData::Search(hits))
}

/// Records the search as a compliance SEARCH event (`BYNAME:<criteria>`, no room).
/// Errors: 500 when the event could not be written.
pub fn record(core: &mut Core, ctx: &Ctx, qtype: &str, criteria: &str) -> Result<(), CmdError> {
    let content = format!("{}:{}", qtype.to_ascii_uppercase(), criteria.trim());
    crate::compliance::record::record(
        core,
        crate::compliance::EventKind::Search,
        "",
        &ctx.user,
        &content,
    )
}
