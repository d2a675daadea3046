//! `cmd:requri` -> `rpl:requri` with `<uib uri="..."/>`: the pool endpoint the client
//! should INVITE (what SIPE asks `sip:ocschat@<domain>`; XCCOS.md "Commands observed").

use super::CmdResult;
use crate::core::BatchCx;
use crate::xccos::RplData;

command! {
    /// `cmd:requri`, `<data/>`: ask for the pool endpoint URI.
    RequestUri ["cmd:requri"] -> "rpl:requri";
    apply(self, cx, _) { handle(cx) }
}

/// Replies with the first pool URI.
pub fn handle(cx: &BatchCx) -> CmdResult {
    let uri = cx
        .cfg
        .pool_uris()
        .into_iter()
        .next()
        .unwrap_or_else(|| format!("sip:pchat@{}", cx.cfg.domain));
    Ok(RplData::Uib(uri))
}
