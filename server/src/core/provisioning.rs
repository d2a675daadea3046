//! In-band provisioning (call-flows.md sign-in step 1): the answer to
//! `SUBSCRIBE` with `Event: vnd-microsoft-provisioning-v2`, saying whether Persistent
//! Chat is enabled for the user and listing the pool's SIP URIs. The element names
//! follow Lync's provisioning group list; the exact document is **(design)**, see
//! docs/protocol.md. Written through [`crate::xml::Doc`] (XML 1.0 character rules).

use super::Core;
use crate::channel::authz::in_scope;
use crate::sip::{Request, Response};

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

/// Whether the SUBSCRIBE offers `Supported: ms-piggyback-first-notify` (what Lync
/// clients and SIPE send): the first NOTIFY's content then rides in the 200 OK.
pub fn wants_piggyback(req: &Request) -> bool {
    req.headers
        .get_all("Supported")
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("ms-piggyback-first-notify"))
}

/// Marks a provisioning 200 OK as carrying the first notification (the
/// `ms-piggyback-first-notify` extension): `Event: vnd-microsoft-provisioning-v2` and
/// `ms-piggyback-cseq: <the SUBSCRIBE's CSeq number>`. SIPE reads the body of a 200
/// only when `ms-piggyback-cseq` is present (sipe-subscriptions.c,
/// `process_subscribe_response`).
pub fn piggyback_headers(resp: Response, req: &Request) -> Response {
    let cseq = req.cseq().map_or(1, |c| c.0);
    resp.with_header("Event", "vnd-microsoft-provisioning-v2")
        .with_header("ms-piggyback-cseq", cseq.to_string())
}
