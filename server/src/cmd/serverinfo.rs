//! `cmd:getserverinfo` -> `rpl:getservinfo` with `<sib .../>`: the service's
//! configuration and limits (call-flows.md sign-in step 3; XCCOS.md "Commands observed").

use super::CmdResult;
use crate::clock::iso8601;
use crate::core::BatchCx;
use crate::xccos::{RplData, ServerInfo};

command! {
    /// `cmd:getserverinfo`, `<data><sib domain="D" infoType="123"/></data>`; answered by
    /// `rpl:getservinfo` as seen in the field.
    GetServerInfo ["cmd:getserverinfo"] -> "rpl:getservinfo" <"sib"> {
        /// `domain` attribute of `sib`.
        pub domain: String = req "domain",
        /// `infoType` attribute of `sib` (opaque, e.g. `"123"`).
        pub info_type: String = req "infoType",
    }
    apply(self, cx, _) { handle(cx, &self.info_type) }
}

/// Replies with server time (ISO 8601 UTC), the configured limits (search results,
/// message and story size in characters), the root category URI and the store's schema
/// version as a GUID. `info_type` is echoed.
pub fn handle(cx: &BatchCx, info_type: &str) -> CmdResult {
    let domain = &cx.cfg.domain;
    let l = &cx.cfg.limits;
    Ok(RplData::ServerInfo(ServerInfo {
        info_type: info_type.to_string(),
        server_time: iso8601(cx.now_ms),
        search_limit: l.search_limit,
        message_size_limit: l.message_size_limit,
        story_size_limit: l.story_size_limit,
        root_uri: format!(
            "ma-cat://{domain}/{}",
            crate::ids::room_guid(domain, "#root-category")
        ),
        db_version: crate::ids::room_guid("pchat", "#schema-1"),
    }))
}
