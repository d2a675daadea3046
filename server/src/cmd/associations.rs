//! `cmd:getassociations` (design: `<data><assoc role="member|manager"/></data>`):
//! the rooms the user is a member of, or manages (call-flows.md sign-in step 4).
//! Reply shape: `rpl:getassociations` with the `rpl:join` data form.

use super::{join::rooms_reply, CmdResult, Ctx};
use crate::channel::authz;
use crate::core::Core;
use crate::xccos::AssocRole;

/// Rooms where the user is a member (managers and presenters included) or a manager,
/// by name; only rooms the user may find (a denied user gets none).
pub fn handle(core: &Core, ctx: &Ctx, role: AssocRole) -> CmdResult {
    let guids: Vec<String> = core
        .rooms
        .by_name_order()
        .filter(|r| match role {
            AssocRole::Member => r.members.contains(&ctx.user),
            AssocRole::Manager => r.managers.contains(&ctx.user),
        })
        // A denied user, or a room whose category is gone: not listed.
        .filter(|r| authz::can_find(&core.rooms, r, &ctx.user))
        .map(|r| r.guid.clone())
        .collect();
    Ok(rooms_reply(core, &guids))
}
