//! `cmd:getserverinfo` -> `rpl:getservinfo` with `<sib .../>`: the service's
//! configuration and limits (call-flows.md sign-in step 3; XCCOS.md "Commands observed").

use super::{CmdResult, Command, Ctx};
use crate::clock::iso8601;
use crate::core::Core;
use crate::xccos::elem::{DataParser, Elem};
use crate::xccos::{RplData, ServerInfo, XccosError};

/// `cmd:getserverinfo`, `<data><sib domain="D" infoType="123"/></data>`; answered by
/// `rpl:getservinfo` as seen in the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetServerInfo {
    /// `domain` attribute of `sib`.
    pub domain: String,
    /// `infoType` attribute of `sib` (opaque, e.g. `"123"`).
    pub info_type: String,
}

impl Command for GetServerInfo {
    const IDS: &'static [&'static str] = &["cmd:getserverinfo"];
    const REPLY_ID: &'static str = "rpl:getservinfo";
    fn parse(p: &DataParser<'_>, data: Option<&Elem>) -> Result<Self, XccosError> {
        let sib = p.child(p.data(data)?, "sib")?;
        Ok(GetServerInfo {
            domain: p.attr(sib, "domain")?.to_owned(),
            info_type: p.attr(sib, "infoType")?.to_owned(),
        })
    }
    fn data(&self) -> Elem {
        let sib = Elem::new("sib")
            .with("domain", self.domain.as_str())
            .with("infoType", self.info_type.as_str());
        Elem::data([sib])
    }
    fn apply(&self, core: &mut Core, _: &Ctx) -> CmdResult {
        handle(core, &self.info_type)
    }
}

/// Replies with server time (ISO 8601 UTC), the configured limits (search results,
/// message and story size in characters), the root category URI and the store's schema
/// version as a GUID. `info_type` is echoed.
pub fn handle(core: &Core, info_type: &str) -> CmdResult {
    let domain = &core.cfg.domain;
    let l = &core.cfg.limits;
    Ok(RplData::ServerInfo(ServerInfo {
        info_type: info_type.to_string(),
        server_time: iso8601(core.now_ms()),
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
