//! A whole XCCOS message with its command decoded: the typed view the client library
//! (sim/), the tests and the benches use. [`parse`] is [`crate::xccos::parse`] followed
//! by [`super::decode`] for a `<cmd>`; [`Envelope::to_xml`] writes the command through
//! its [`super::Command::data`] and the envelope writer. The server reads envelopes
//! with `xccos::parse` and decodes commands itself (`cmd::on_xccos`).

use super::{decode, Cmd};
use crate::xccos::{self, GrpChat, Ntc, Rpl, XccosError};

/// One XCCOS message (`XCCOS.md` "Envelope"), command decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Sender-chosen message id (`envid` attribute).
    pub envid: u64,
    /// The single child element of the root.
    pub body: Body,
}

/// The single child element of `<xccos>`, command decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `<cmd>`: client request.
    Cmd(Cmd),
    /// `<rpl>`: server reply to a `cmd`.
    Rpl(Rpl),
    /// `<ntc>`: unsolicited server notice.
    Ntc(Ntc),
    /// `<grpchat>`: a chat message, either direction.
    GrpChat(GrpChat),
}

/// Parses one XCCOS body and decodes its command, if any.
///
/// # Errors
/// [`crate::xccos::parse`]'s, then [`super::decode`]'s (400, 501).
pub fn parse(input: &[u8]) -> Result<Envelope, XccosError> {
    let env = xccos::parse(input)?;
    let body = match env.body {
        xccos::Body::Cmd(el) => Body::Cmd(decode(env.envid, &el)?),
        xccos::Body::Rpl(r) => Body::Rpl(r),
        xccos::Body::Ntc(n) => Body::Ntc(n),
        xccos::Body::GrpChat(g) => Body::GrpChat(g),
    };
    Ok(Envelope {
        envid: env.envid,
        body,
    })
}

impl Envelope {
    /// The wire form (the command as its element).
    pub fn to_wire(&self) -> xccos::Envelope {
        let body = match &self.body {
            Body::Cmd(c) => xccos::Body::Cmd(c.to_elem()),
            Body::Rpl(r) => xccos::Body::Rpl(r.clone()),
            Body::Ntc(n) => xccos::Body::Ntc(n.clone()),
            Body::GrpChat(g) => xccos::Body::GrpChat(g.clone()),
        };
        xccos::Envelope {
            envid: self.envid,
            body,
        }
    }

    /// The envelope's XML (see [`crate::xccos::Envelope::write`]).
    pub fn to_xml(&self) -> String {
        self.to_wire().to_xml()
    }

    /// The envelope's XML as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_wire().to_bytes()
    }
}

impl Cmd {
    /// This command in an envelope with `envid`, as the wire form.
    pub fn envelope(&self, envid: u64) -> xccos::Envelope {
        xccos::Envelope {
            envid,
            body: xccos::Body::Cmd(self.to_elem()),
        }
    }
}
