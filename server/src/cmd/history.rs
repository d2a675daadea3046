//! `cmd:bccontext` (call-flows.md sign-in step 6, find-a-room step 3): a room's recent
//! history, `<bcq><last cnt="N"/></bcq>`, oldest first, capped at `[limits]
//! history_limit`. Same permission as joining.

use super::{room_for, CmdError, CmdResult, Ctx};
use crate::clock::iso8601;
use crate::compliance::{record::record, EventKind};
use crate::core::Core;
use crate::xccos::{codes, BcQuery, ChanRef, GrpChat, RplData};

/// The last `cnt` messages of the room. Errors: 404/403 as for join, 500 on store failure.
pub fn bccontext(core: &mut Core, ctx: &Ctx, chan: &ChanRef, query: &BcQuery) -> CmdResult {
    let (guid, uri) = {
        let room = room_for(core, &ctx.user, chan)?;
        (room.guid.clone(), room.uri.clone())
    };
    let BcQuery::Last { cnt } = query;
    let cnt = (*cnt).min(core.cfg.limits.history_limit);
    record(
        core,
        EventKind::Backchat,
        &guid,
        &ctx.user,
        &format!("last {cnt}"),
    )?;
    let msgs = core
        .store
        .last_messages(&guid, cnt)
        .map_err(|e| CmdError::new(codes::INTERNAL_ERROR, e.to_string()))?;
    Ok(RplData::History {
        chan_uri: uri.clone(),
        msgs: msgs
            .into_iter()
            .map(|m| GrpChat {
                seqid: 1,
                chan_uri: uri.clone(),
                author: Some(m.author),
                ts: Some(iso8601(m.ts_ms)),
                text: m.text,
            })
            .collect(),
    })
}
