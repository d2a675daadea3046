//! XCCOS codec: the XML chat commands carried in SIP INFO bodies
//! (`/work/shared/protocol/XCCOS.md`, sections "Envelope" through "grpchat").
//!
//! - [`model`]: typed messages ([`Envelope`] and friends); a command travels as its
//!   element ([`Body::Cmd`]) and is decoded by the command registry (`crate::cmd`,
//!   one file per command family);
//! - [`elem`]: the element codec the commands share ([`Elem`], [`elem::DataParser`]);
//! - [`parse`](mod@parse): `parse(&[u8]) -> Result<Envelope, XccosError>`;
//! - [`write`](mod@write): [`Envelope::write`] / [`Envelope::to_xml`], a compact deterministic serializer;
//! - [`codes`]: the (design) reply codes and tokens.
//!
//! `parse(write(x)) == x` for every envelope whose strings contain only XML-legal
//! characters and whose reply/notice data matches its id (see [`RplData`]).

pub mod codes;
pub mod elem;
pub mod model;
pub mod parse;
pub mod write;

pub use self::elem::{reply_id_for, ChanRef, Elem};
pub use self::model::*;
pub use self::parse::{parse, XccosError, MAX_BODY, MAX_DEPTH};

#[cfg(test)]
mod tests;
