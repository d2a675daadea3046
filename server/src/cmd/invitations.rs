//! `cmd:getinv` (call-flows.md sign-in step 7): the rooms the user was invited to and
//! has not seen. Reply (design): `rpl:getinv` in the `rpl:join` data form, oldest
//! invitation first.
//!
//! An invitation is created when a manager adds the user to a room whose effective
//! invitations are on (room `invitations`, category `invitations`; see
//! [`super::manage`]); it is returned by every `getinv` until the user joins the room
//! (joining is seeing it). Rooms the user may no longer find are left out.

use super::{join::rooms_reply, store_err, CmdResult, Ctx};
use crate::channel::authz;
use crate::core::BatchCx;

command! {
    /// `cmd:getinv`: `<data><inv inviteId="1" domain="D"/></data>`.
    GetInv ["cmd:getinv"] -> "rpl:getinv" <"inv"> {
        /// `inviteId` attribute (opaque).
        pub invite_id: String = req "inviteId",
        /// `domain` attribute.
        pub domain: String = req "domain",
    }
    apply(self, cx, ctx) { getinv(cx, ctx) }
}

/// Unseen invitations of `ctx.user`. Errors: 500 on store failure.
pub fn getinv(cx: &mut BatchCx, ctx: &Ctx) -> CmdResult {
    let mut guids: Vec<String> = Vec::new();
    for inv in cx.store.invitations(&ctx.user).map_err(store_err)? {
        let visible = cx
            .rooms
            .get(&inv.room_guid)
            .is_some_and(|r| authz::can_find(cx.rooms, r, &ctx.user));
        if visible && !guids.contains(&inv.room_guid) {
            guids.push(inv.room_guid);
        }
    }
    Ok(rooms_reply(cx, &guids))
}
