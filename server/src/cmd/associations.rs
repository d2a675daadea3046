//! `cmd:getassociations` (design: `<data><assoc role="member|manager"/></data>`):
//! the rooms the user is a member of, or manages (call-flows.md sign-in step 4).
//! Reply shape: `rpl:getassociations` with the `rpl:join` data form.

use super::{join::rooms_reply, CmdResult, Ctx};
use crate::channel::authz;
use crate::core::BatchCx;
use crate::xccos::elem::Elem;

command! {
    /// `cmd:getassociations` **(design)**: `<data><assoc role="member|manager"/></data>`;
    /// a missing `assoc` element (or `role`) means [`AssocRole::Member`].
    GetAssociations ["cmd:getassociations"] -> "rpl:getassociations" {
        /// Whose associations: rooms the user is a member of, or manages.
        pub role: AssocRole,
    }
    parse(p, data) {
        let role = match data.and_then(|d| d.child("assoc")) {
            None => AssocRole::Member,
            Some(a) => match a.attr("role").map(str::trim) {
                None => AssocRole::Member,
                Some(r) if r.eq_ignore_ascii_case("member") => AssocRole::Member,
                Some(r) if r.eq_ignore_ascii_case("manager") => AssocRole::Manager,
                Some(r) => {
                    return Err(p.bad(format!("assoc role \"{r}\" is neither member nor manager")))
                }
            },
        };
        Ok(GetAssociations { role })
    }
    data(self) { Elem::data([Elem::new("assoc").with("role", self.role.as_str())]) }
    apply(self, cx, ctx) { handle(cx, ctx, self.role) }
}

/// Role filter of `cmd:getassociations` **(design)**: `role="member"` or `role="manager"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssocRole {
    /// Rooms the user is a member (participant) of. Wire value `member`.
    Member,
    /// Rooms the user manages. Wire value `manager`.
    Manager,
}

impl AssocRole {
    /// The wire value: `"member"` or `"manager"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AssocRole::Member => "member",
            AssocRole::Manager => "manager",
        }
    }
}

/// Rooms where the user is a member (managers and presenters included) or a manager,
/// by name; only rooms the user may find (a denied user gets none).
pub fn handle(cx: &BatchCx, ctx: &Ctx, role: AssocRole) -> CmdResult {
    let guids: Vec<String> = cx
        .rooms
        .by_name_order()
        .filter(|r| match role {
            AssocRole::Member => r.roles.members.contains(&ctx.user),
            AssocRole::Manager => r.roles.managers.contains(&ctx.user),
        })
        // A denied user, or a room whose category is gone: not listed.
        .filter(|r| authz::can_find(cx.rooms, r, &ctx.user))
        .map(|r| r.guid.clone())
        .collect();
    Ok(rooms_reply(cx, &guids))
}
