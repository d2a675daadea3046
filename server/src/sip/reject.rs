//! Answers to requests refused before the channel service sees them (framing and parse
//! errors): a status line with the code and a reason naming the defect, and whatever of
//! Via, From, To, Call-ID and CSeq can be found in the raw bytes (RFC 3261 8.2.6.2,
//! 21.4.1). Responses are never answered (RFC 3261 8.2: only requests get responses;
//! RFC 4475 3.1.2.19 "simply drop it").

use bytes::Bytes;
use std::borrow::Cow;

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
    fields(raw).any(|(name, value)| {
        is_named(&name, "To", "t")
            && value
                .as_bytes()
                .windows(4)
                .any(|w| w.eq_ignore_ascii_case(b"tag="))
    })
}

/// Whether the To of the request whose bytes start `raw` has no tag or a
/// [`super::message::transaction_tag`] (given by one of our answers that opened no
/// dialog): the request belongs to no dialog of ours. The reader absorbs such ACKs.
pub fn to_names_no_dialog(raw: &[u8]) -> bool {
    match first_value(fields(raw), "To", "t") {
        None => true,
        Some(to) => match super::typed::tag_of(&to) {
            None => true,
            Some(tag) => super::message::is_transaction_tag(tag),
        },
    }
}

/// Whether a header `name` is `long` or its compact form `short` (any case).
fn is_named(name: &[u8], long: &str, short: &str) -> bool {
    name.eq_ignore_ascii_case(long.as_bytes())
        || (!short.is_empty() && name.eq_ignore_ascii_case(short.as_bytes()))
}

/// The first value of the header `long` (or its compact form `short`) among `fields`.
fn first_value<'a, I>(mut fields: I, long: &str, short: &str) -> Option<Cow<'a, str>>
where
    I: Iterator<Item = (Cow<'a, [u8]>, Cow<'a, str>)>,
{
    fields.find_map(|(name, value)| is_named(&name, long, short).then_some(value))
}

/// A header name without the white space around it (any Unicode white space, as
/// `str::trim`; bytes that are not UTF-8 are left as they are: they name no header).
fn trim_name(name: &[u8]) -> &[u8] {
    std::str::from_utf8(name).map_or(name, |n| n.trim().as_bytes())
}

/// The header fields of `raw` ([`Fields`]).
fn fields(raw: &[u8]) -> Fields<'_> {
    let rest = match memchr::memmem::find(raw, b"\r\n") {
        Some(i) => &raw[i + 2..],
        None => &[],
    };
    Fields { rest }
}

/// The header fields of a raw message, from a scan that allocates nothing for a usual
/// (unfolded, UTF-8) line: each line's name and value, both trimmed (RFC 3261 7.3.1: continuation lines
/// joined to their header with one space; a line without a colon, or a continuation with
/// no header before it, is skipped), up to the
/// empty line or the end. The start line is skipped; values are read as UTF-8 (invalid
/// bytes replaced).
struct Fields<'a> {
    /// What is left of the header section.
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The next line (without its CRLF), or `None` at the empty line or the end.
    fn line(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() || self.rest.starts_with(b"\r\n") {
            return None;
        }
        let end = memchr::memmem::find(self.rest, b"\r\n").unwrap_or(self.rest.len());
        let line = &self.rest[..end];
        self.rest = self.rest.get(end + 2..).unwrap_or(&[]);
        Some(line)
    }

    /// The continuation lines that follow, trimmed, each after one space (`None`: none).
    fn continuation(&mut self) -> Option<String> {
        let mut more: Option<String> = None;
        while self.rest.starts_with(b" ") || self.rest.starts_with(b"\t") {
            let line = self.line().unwrap_or_default();
            let joined = more.get_or_insert_with(String::new);
            joined.push(' ');
            joined.push_str(String::from_utf8_lossy(line).trim());
        }
        more
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (Cow<'a, [u8]>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.line()?;
            let more = self.continuation();
            if line.starts_with(b" ") || line.starts_with(b"\t") {
                continue; // a continuation with no header before it
            }
            if let Some(more) = more {
                // Folded: the joined text is split (its colon may even be on a
                // continuation line).
                let joined = format!("{}{more}", String::from_utf8_lossy(line));
                let Some((name, value)) = joined.split_once(':') else {
                    continue;
                };
                let name = Cow::Owned(name.trim().as_bytes().to_vec());
                return Some((name, Cow::Owned(value.trim().to_string())));
            }
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            let value = match String::from_utf8_lossy(&line[colon + 1..]) {
                Cow::Borrowed(v) => Cow::Borrowed(v.trim()),
                v => Cow::Owned(v.trim().to_string()),
            };
            return Some((Cow::Borrowed(trim_name(&line[..colon])), value));
        }
    }
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
    let headers: Vec<_> = fields(raw).collect();
    let phrase: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let mut out = format!("SIP/2.0 {code} {phrase}\r\n");
    for (long, short) in ECHO {
        for (name, value) in &headers {
            if is_named(name, long, short) {
                let mut value: String = value
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
fn tag_for(headers: &[(Cow<'_, [u8]>, Cow<'_, str>)]) -> String {
    let get = |long, short| first_value(headers.iter().cloned(), long, short).unwrap_or_default();
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

    /// The header reader of before (one `String` per line), kept as the reference.
    fn reference_fields(raw: &[u8]) -> Vec<(Vec<u8>, String)> {
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
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(n, v)| (n.trim().as_bytes().to_vec(), v.trim().to_string()))
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn fields_read_what_the_reference_reads(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "\r\n", "\r", "\n", " ", "\t", ":", "To", "t", "tag=", "\u{b}",
                    "\u{a0}", "\u{fffd}", "a", ";", "\r\n\r\n", "\r\n ", "\r\n\t",
                ]),
                0..40,
            ),
            invalid in proptest::option::of(0usize..40),
        ) {
            let mut raw = format!("INFO sip:a@b SIP/2.0\r\n{}", parts.concat()).into_bytes();
            if let Some(at) = invalid {
                raw.insert(at.min(raw.len()), 0xff); // a byte that is not UTF-8
            }
            // A name that is not UTF-8 is kept as bytes (it names no header): compared
            // here as the reference read it.
            let got: Vec<(Vec<u8>, String)> = fields(&raw)
                .map(|(n, v)| {
                    (String::from_utf8_lossy(&n).trim().as_bytes().to_vec(), v.into_owned())
                })
                .collect();
            proptest::prop_assert_eq!(got, reference_fields(&raw));
        }
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
