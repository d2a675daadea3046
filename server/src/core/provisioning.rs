//! In-band provisioning (call-flows.md sign-in step 1): the answer to
//! `SUBSCRIBE` with `Event: vnd-microsoft-provisioning-v2`, saying whether Persistent
//! Chat is enabled for the user and listing the pool's SIP URIs. The element names
//! follow Lync's provisioning group list; the exact document is **(design)**, see
//! docs/protocol.md. Written through [`crate::xml::Doc`] (XML 1.0 character rules).

use super::Core;
use crate::channel::authz::in_scope;

/// Content-Type of the provisioning document.
pub const CONTENT_TYPE: &str = "application/vnd-microsoft-roaming-provisioning-v2+xml";

/// The provisioning document for `user` (a SIP URI): enabled with the pool URIs when
/// the user is in the scope of at least one category, disabled with no pools otherwise.
pub fn document(core: &Core, user: &str) -> String {
    let enabled = core.rooms.categories().any(|c| in_scope(c, user));
    let pools = if enabled {
        core.cfg.pool_uris()
    } else {
        Vec::new()
    };
    let mut d = crate::xml::Doc::new();
    d.start(
        "provisionGroupList",
        &[(
            "xmlns",
            "http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification",
        )],
    )
    .start("provisionGroup", &[("name", "persistentChatConfiguration")])
    .start("propertyEntryList", &[])
    .text_elem(
        "property",
        &[("name", "EnablePersistentChat")],
        if enabled { "true" } else { "false" },
    );
    if let Some(first) = pools.first() {
        d.text_elem(
            "property",
            &[("name", "DefaultPersistentChatPoolUri")],
            first,
        );
    }
    d.end("propertyEntryList").start("persistentChatPools", &[]);
    for p in &pools {
        d.empty("pool", &[("uri", p)]);
    }
    d.end("persistentChatPools")
        .end("provisionGroup")
        .end("provisionGroupList");
    d.into_string()
}
