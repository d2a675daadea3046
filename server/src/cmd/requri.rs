//! `cmd:requri` -> `rpl:requri` with `<uib uri="..."/>`: the pool endpoint the client
//! should INVITE (what SIPE asks `sip:ocschat@<domain>`; XCCOS.md "Commands observed").

use super::{CmdResult, Command, Ctx};
use crate::core::Core;
use crate::xccos::elem::{DataParser, Elem};
use crate::xccos::{RplData, XccosError};

/// `cmd:requri`, `<data/>`: ask for the pool endpoint URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUri;

impl Command for RequestUri {
    const IDS: &'static [&'static str] = &["cmd:requri"];
    const REPLY_ID: &'static str = "rpl:requri";
    fn parse(_: &DataParser<'_>, _: Option<&Elem>) -> Result<Self, XccosError> {
        Ok(RequestUri)
    }
    fn data(&self) -> Elem {
        Elem::new("data")
    }
    fn apply(&self, core: &mut Core, _: &Ctx) -> CmdResult {
        handle(core)
    }
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
