//! `cmd:requri` -> `rpl:requri` with `<uib uri="..."/>`: the pool endpoint the client
//! should INVITE (what SIPE asks `sip:ocschat@<domain>`; XCCOS.md "Commands observed").

use super::CmdResult;
use crate::core::Core;
use crate::xccos::RplData;

command! {
    /// `cmd:requri`, `<data/>`: ask for the pool endpoint URI.
    RequestUri ["cmd:requri"] -> "rpl:requri";
    apply(self, core, _) { handle(core) }
}

/// Replies with the first pool URI.
pub fn handle(core: &Core) -> CmdResult {
    let uri = core
        .cfg
        .pool_uris()
        .into_iter()
        .next()
        .unwrap_or_else(|| format!("sip:pchat@{}", core.cfg.domain));
    Ok(RplData::Uib(uri))
}
