//! SIP over TCP (RFC 3261): stream framing, and one parse of each message into the view
//! every layer works with (the server's reader, auth gate and core; the simulator's
//! client).
//!
//! Pipeline for every message read from a connection:
//! 1. [`framing::Framer`] cuts the byte stream into messages by `Content-Length`
//!    (RFC 3261 18.3), skipping keep-alive CRLFs (RFC 5626 4.4.1).
//! 2. [`message::parse_frame`] reads the header section once: unfolds continuation
//!    lines (7.3.1), expands compact header names (7.3.3), trims white space around the
//!    colon and separators (7.3.1, 25.1 `SWS`; helpers in [`normalize`]), keeping values
//!    that need no change as spans of one copy of the header section ([`Headers`]); the
//!    body is a slice of the frame.
//! 3. [`validate`] and `message` check what RFC 3261 8.1.1 / 8.2 and the 25.1 ABNF
//!    require; [`typed`] gives the dialog headers typed (Method, Via, From, To, CSeq,
//!    Call-ID, Contact, tags). rsip 0.4.0 also checks out-of-dialog requests
//!    (docs/rsip-notes.md says which check is whose, and why).

pub mod framing;
pub mod headers;
pub mod in_dialog;
mod lines;
pub mod message;
pub mod normalize;
pub mod reject;
mod swar;
pub mod typed;
pub mod validate;

pub use framing::{Framer, FramingError};
pub use headers::Headers;
pub use in_dialog::InDialog;
pub use message::{
    encode_response_for, parse, parse_frame, response_for, ParseError, Request, Response,
    SipMessage,
};
pub use typed::{CSeq, Method, NameAddr, Typed, Via};

#[cfg(test)]
mod reference;
#[cfg(test)]
mod torture;
