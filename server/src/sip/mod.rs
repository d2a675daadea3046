//! SIP over TCP (RFC 3261): stream framing, header normalization, and parsing through
//! rsip 0.4.0 into the small owned view the core works with.
//!
//! Pipeline for every message read from a connection:
//! 1. [`framing::Framer`] cuts the byte stream into messages by `Content-Length`
//!    (RFC 3261 18.3), skipping keep-alive CRLFs (RFC 5626 4.4.1).
//! 2. [`normalize::normalize`] unfolds continuation lines (7.3.1), expands compact
//!    header names (7.3.3) and trims whitespace around the colon (7.3.1) - rsip 0.4.0
//!    accepts none of these (docs/rsip-notes.md).
//! 3. rsip parses the normalized message; its typed headers validate Via, From, To,
//!    CSeq and Call-ID; [`message::parse`] checks what RFC 3261 8.1.1 requires and
//!    returns a [`Request`] or [`Response`].

pub mod framing;
pub mod in_dialog;
pub mod message;
pub mod normalize;
pub mod reject;
pub mod validate;

pub use framing::{Framer, FramingError};
pub use in_dialog::InDialog;
pub use message::{parse, response_for, Headers, ParseError, Request, Response, SipMessage};

#[cfg(test)]
mod torture;
