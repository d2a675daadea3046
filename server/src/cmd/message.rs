//! A whole XCCOS message with its command decoded: the typed view the client library
//! (sim/), the tests and the benches use. [`parse`] is [`crate::xccos::parse`] followed
//! by [`super::decode`] for a `<cmd>`; [`Envelope::to_xml`] writes the command through
//! its [`super::Command::data`] and the envelope writer. The server reads envelopes
//! with `xccos::parse` and decodes commands itself (`cmd::on_xccos`).

use super::{decode, Cmd};
use crate::xccos::{self, XccosError};

/// One XCCOS message (`XCCOS.md` "Envelope"), command decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Sender-chosen message id (`envid` attribute).
    pub envid: u64,
    /// The single child element of the root.
    pub body: Body,
}

/// The single child element of `<xccos>`, command decoded.
pub type Body = xccos::Body<Cmd>;

/// Parses one XCCOS body and decodes its command, if any.
///
/// # Errors
/// [`crate::xccos::parse`]'s, then [`super::decode`]'s (400, 501).
pub fn parse(input: &[u8]) -> Result<Envelope, XccosError> {
    let env = xccos::parse(input)?;
    let envid = env.envid;
    let body = env.body.try_map_cmd(|el| decode(envid, &el))?;
    Ok(Envelope { envid, body })
}

impl Envelope {
    /// The wire form (the command as its element).
    pub fn to_wire(&self) -> xccos::Envelope {
        xccos::Envelope {
            envid: self.envid,
            body: self.body.clone().map_cmd(|c| c.to_elem()),
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
