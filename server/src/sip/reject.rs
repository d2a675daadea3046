//! Answers to requests refused before the channel service sees them (framing and parse
//! errors): a status line with the code and a reason naming the defect, and whatever of
//! Via, From, To, Call-ID and CSeq can be found in the raw bytes (RFC 3261 8.2.6.2,
//! 21.4.1). Responses are never answered (RFC 3261 8.2: only requests get responses;
//! RFC 4475 3.1.2.19 "simply drop it").

use bytes::Bytes;

/// Long names of the headers a response echoes, with their compact forms (RFC 3261 7.3.3).
const ECHO: &[(&str, &str)] = &[
    ("Via", "v"),
    ("From", "f"),
    ("To", "t"),
    ("Call-ID", "i"),
    ("CSeq", ""),
];

/// Whether `raw` starts like a SIP response (`SIP/<digit>`), which is never answered.
pub fn looks_like_response(raw: &[u8]) -> bool {
    raw.len() > 4 && raw.starts_with(b"SIP/") && raw[4].is_ascii_digit()
}

/// Whether the request whose bytes start `raw` may carry a To tag (RFC 3261 12.1: a
/// request inside a dialog): `false` only when no To header value holds `tag=` at all,
/// so a `false` is certain (a new session) and a `true` may still be none (the parser
/// decides). For the door, which refuses new sessions before parsing them.
pub fn may_have_to_tag(raw: &[u8]) -> bool {
    header_lines(raw).iter().any(|h| {
        h.split_once(':').is_some_and(|(name, value)| {
            let name = name.trim();
            (name.eq_ignore_ascii_case("To") || name.eq_ignore_ascii_case("t"))
                && value.to_ascii_lowercase().contains("tag=")
        })
    })
}

/// Whether the To of the request whose bytes start `raw` has no tag or a
/// [`super::message::transaction_tag`] (given by one of our answers that opened no
/// dialog): the request belongs to no dialog of ours. The reader absorbs such ACKs.
pub fn to_names_no_dialog(raw: &[u8]) -> bool {
    let headers = header_lines(raw);
    match first_value(&headers, "To", "t") {
        None => true,
        Some(to) => match super::typed::tag_of(&to) {
            None => true,
            Some(tag) => super::message::is_transaction_tag(tag),
        },
    }
}

/// The first value of the header `long` (or its compact form `short`), trimmed.
fn first_value(headers: &[String], long: &str, short: &str) -> Option<String> {
    headers.iter().find_map(|h| {
        let (name, value) = h.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case(long) || (!short.is_empty() && name.eq_ignore_ascii_case(short)))
            .then(|| value.trim().to_string())
    })
}

/// The header lines of `raw` (up to the empty line or the end), continuation lines
/// unfolded (RFC 3261 7.3.1); the start line is skipped.
fn header_lines(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut headers: Vec<String> = Vec::new();
    for line in head.split("\r\n").skip(1) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            headers.push(line.to_string());
        }
    }
    headers
}

/// Builds the answer (`SIP/2.0 <code> <reason>`, the echoed headers, `extra` headers,
/// `Server: <server>`, `Content-Length: 0`) to the request whose bytes start `raw`,
/// or `None` when `raw` is a response. The reason is made one printable line of at most
/// 200 characters; anything that is not a response is answered, even a junk start line
/// (then with nothing to echo).
pub fn response(
    raw: &[u8],
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
    server: &str,
) -> Option<Bytes> {
    if looks_like_response(raw) {
        return None;
    }
    let headers = header_lines(raw);
    let phrase: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let mut out = format!("SIP/2.0 {code} {phrase}\r\n");
    for (long, short) in ECHO {
        for h in &headers {
            let Some((name, value)) = h.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if name.eq_ignore_ascii_case(long)
                || (!short.is_empty() && name.eq_ignore_ascii_case(short))
            {
                let mut value: String = value
                    .trim()
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                if *long == "To" && super::typed::tag_of(&value).is_none() {
                    // RFC 3261 8.2.6.2: a final answer tags To (see `transaction_tag`).
                    value.push_str(";tag=");
                    value.push_str(&tag_for(&headers));
                }
                out.push_str(long);
                out.push_str(": ");
                out.push_str(&value);
                out.push_str("\r\n");
            }
        }
    }
    for (name, value) in extra {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("Server: ");
    out.push_str(server);
    out.push_str("\r\nContent-Length: 0\r\n\r\n");
    Some(Bytes::from(out))
}

/// The [`super::message::transaction_tag`] of the request with these header lines.
fn tag_for(headers: &[String]) -> String {
    let get = |long, short| first_value(headers, long, short).unwrap_or_default();
    super::message::transaction_tag(
        &get("Call-ID", "i"),
        &get("From", "f"),
        &get("CSeq", ""),
        &get("Via", "v"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_tag_to_and_acks_to_them_name_no_dialog() {
        let invite = b"INVITE sip:p@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:p@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        let head = response(invite, 503, "Service Unavailable", &[], "t").expect("a request");
        let text = String::from_utf8(head.to_vec()).unwrap();
        let to = text
            .lines()
            .find(|l| l.starts_with("To: "))
            .expect("To echoed");
        let tag = super::super::typed::tag_of(&to[4..]).expect("RFC 3261 8.2.6.2: tagged");
        assert!(super::super::message::is_transaction_tag(tag), "{to}");
        let again = response(invite, 503, "Service Unavailable", &[], "t").unwrap();
        assert_eq!(head, again, "a retransmission gets the same tag");
        let ack = format!("ACK sip:p@h SIP/2.0\r\n{to}\r\n\r\n");
        assert!(to_names_no_dialog(ack.as_bytes()));
        assert!(to_names_no_dialog(
            b"ACK sip:p@h SIP/2.0\r\nTo: <sip:p@h>\r\n\r\n"
        ));
        let in_dialog = b"ACK sip:p@h SIP/2.0\r\nTo: <sip:p@h>;tag=0123456789abcdef\r\n\r\n";
        assert!(
            !to_names_no_dialog(in_dialog),
            "a dialog's tag is hex digits"
        );
    }

    #[test]
    fn a_to_tag_is_seen_in_long_and_compact_forms_any_case() {
        let new = b"INVITE sip:p@h SIP/2.0\r\nTo: <sip:p@h>\r\nFrom: <sip:a@h>;tag=1\r\n\r\nv=0";
        assert!(!may_have_to_tag(new), "the From tag is not a To tag");
        for to in [
            "To: <sip:p@h>;tag=x",
            "t: <sip:p@h>;TAG=x",
            "to:  sip:p@h ;tag=x",
        ] {
            let raw = format!("INVITE sip:p@h SIP/2.0\r\n{to}\r\n\r\n");
            assert!(may_have_to_tag(raw.as_bytes()), "{to}");
        }
        let in_body = b"INVITE sip:p@h SIP/2.0\r\nTo: <sip:p@h>\r\n\r\nTo: x;tag=1";
        assert!(!may_have_to_tag(in_body), "the body is not a header");
    }

    #[test]
    fn echoes_headers_and_extra_ones() {
        let raw = b"OPTIONS sip:a@b SIP/7.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\ni: abc\r\nCSeq: 1\r\n OPTIONS\r\n\r\n";
        let out = response(raw, 505, "Version Not Supported", &[("X", "y")], "s").unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.starts_with("SIP/2.0 505 Version Not Supported\r\n"),
            "{s}"
        );
        assert!(s.contains("Via: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: abc\r\nCSeq: 1 OPTIONS\r\nX: y\r\nServer: s\r\n"));
        assert!(s.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn junk_is_answered_responses_are_not() {
        assert!(response(b"SIP/2.0 200 OK\r\n\r\n", 400, "x", &[], "s").is_none());
        let out = response(b"x\r\n\r\n", 400, "bad\r\nline", &[], "s").unwrap();
        assert!(out.starts_with(b"SIP/2.0 400 bad  line\r\nServer: s\r\n"));
        assert!(response(&[0, 0xff, 0xfe], 400, "x", &[], "s").is_some());
        // A NUL in an echoed value does not reach the answer.
        let out = response(b"\0\r\nCall-ID: a\0b\r\n\r\n", 400, "x", &[], "s").unwrap();
        assert!(out.windows(11).any(|w| w == b"Call-ID: a "));
    }
}
