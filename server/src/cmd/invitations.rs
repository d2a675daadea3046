//! `cmd:getinv` (call-flows.md sign-in step 7): rooms the user was invited to and has not
//! seen. Reply (design): `rpl:getinv` in the `rpl:join` data form.
//!
//! The walking skeleton has no operation that creates invitations yet (room management
//! arrives with the room-model issue), so the honest answer is the empty list.

use super::{join::rooms_reply, CmdResult, Ctx};
use crate::core::Core;

/// Unseen invitations of `ctx.user` (none exist yet; see module docs).
pub fn getinv(core: &Core, _ctx: &Ctx) -> CmdResult {
    Ok(rooms_reply(core, &[]))
}
