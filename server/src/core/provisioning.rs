//! In-band provisioning (call-flows.md sign-in step 1): the answer to
//! `SUBSCRIBE` with `Event: vnd-microsoft-provisioning-v2`, saying whether Persistent
//! Chat is enabled for the user and listing the pool's SIP URIs. The element names
//! follow Lync's provisioning group list; the exact document is **(design)**, see
//! docs/protocol.md.

use super::Core;
use crate::channel::authz::in_scope;

/// Content-Type of the provisioning document.
pub const CONTENT_TYPE: &str = "application/vnd-microsoft-roaming-provisioning-v2+xml";

fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// The provisioning document for `user` (a SIP URI): enabled with the pool URIs when
/// the user is in the scope of at least one category, disabled with no pools otherwise.
pub fn document(core: &Core, user: &str) -> String {
    let enabled = core.rooms.categories().any(|c| in_scope(c, user));
    let pools = if enabled {
        core.cfg.pool_uris()
    } else {
        Vec::new()
    };
    let mut s = String::from(
        "<provisionGroupList xmlns=\"http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification\">\
         <provisionGroup name=\"persistentChatConfiguration\"><propertyEntryList>",
    );
    s.push_str(&format!(
        "<property name=\"EnablePersistentChat\">{enabled}</property>"
    ));
    if let Some(first) = pools.first() {
        s.push_str(&format!(
            "<property name=\"DefaultPersistentChatPoolUri\">{}</property>",
            esc(first)
        ));
    }
    s.push_str("</propertyEntryList><persistentChatPools>");
    for p in &pools {
        s.push_str(&format!("<pool uri=\"{}\"/>", esc(p)));
    }
    s.push_str("</persistentChatPools></provisionGroup></provisionGroupList>");
    s
}
