//! Media negotiation refusals of a new INVITE, made before the session description is
//! looked at (RFC 3261 21.4.7 and 21.4.16; RFC 4475 3.3.6 and 3.3.15): a body of a
//! type we do not understand gets 415 with `Accept`, an `Accept` that excludes the only
//! answer we can give (`application/sdp`) gets 406.

use crate::sip::{response_for, Request, Response};

/// The one body type an INVITE may carry, and the one we answer with.
const SDP: &str = "application/sdp";

/// Whether an `Accept` media range (`type/subtype;params`) admits `application/sdp`.
fn admits_sdp(range: &str) -> bool {
    let r = range.split(';').next().unwrap_or("").trim();
    r.eq_ignore_ascii_case(SDP) || r.eq_ignore_ascii_case("application/*") || r == "*/*"
}

/// 415 (a Content-Type other than `application/sdp`) or 406 (`Accept` headers present
/// and none admits `application/sdp`, RFC 3261 20.1: an empty Accept admits nothing)
/// for a new INVITE, `None` when its media types are acceptable.
pub(super) fn refuse_invite_media(req: &Request) -> Option<Response> {
    if let Some(ct) = req.content_type() {
        let mt = ct.split(';').next().unwrap_or("").trim();
        if !mt.eq_ignore_ascii_case(SDP) {
            return Some(
                response_for(req, 415, "Unsupported Media Type").with_header("Accept", SDP),
            );
        }
    }
    let mut accepts = req.headers.get_all("Accept").peekable();
    if accepts.peek().is_some() && !accepts.flat_map(|a| a.split(',')).any(admits_sdp) {
        return Some(
            response_for(req, 406, "Not Acceptable")
                .with_header("Warning", "399 pchat \"answer would be application/sdp\""),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, SipMessage};

    fn invite(extra: &str) -> Request {
        let raw = format!(
            "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
             From: <sip:a@contoso.com>;tag=1\r\nTo: <sip:pchat@contoso.com>\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse(raw.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn unsupported_type_415_unacceptable_accept_406() {
        let r = refuse_invite_media(&invite("Content-Type: application/unknownformat\r\n"));
        let r = r.unwrap();
        assert_eq!((r.code, r.headers.get("Accept")), (415, Some(SDP)));
        let r = refuse_invite_media(&invite("Accept: text/nobodyKnowsThis\r\n")).unwrap();
        assert_eq!(r.code, 406);
        for ok in [
            "",
            "Content-Type: Application/SDP;charset=utf-8\r\n",
            "Accept: text/plain, application/sdp\r\n",
            "Accept: */*\r\n",
            "Accept: text/plain\r\nAccept: application/*\r\n",
        ] {
            assert!(refuse_invite_media(&invite(ok)).is_none(), "{ok}");
        }
    }
}
