//! Best-effort answer to a request that failed to parse: a 400 whose reason phrase names
//! the defect, echoing whatever of Via, From, To, Call-ID and CSeq can be found
//! (RFC 3261 8.2.6.2 / 21.4.1). Responses that fail to parse are dropped, not answered.

use bytes::Bytes;

/// Long names of the headers a response echoes, with their compact forms (RFC 3261 7.3.3).
const ECHO: &[(&str, &str)] = &[
    ("Via", "v"),
    ("From", "f"),
    ("To", "t"),
    ("Call-ID", "i"),
    ("CSeq", ""),
];

/// Builds the 400 head for `raw`, or `None` when `raw` is a response (or not even a
/// request line). The reason is sanitized to a single printable line of at most 200
/// characters.
pub fn bad_request(raw: &[u8], reason: &str) -> Option<Bytes> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    if first.starts_with("SIP/") || !first.contains(' ') {
        return None;
    }
    // Unfold continuation lines (RFC 3261 7.3.1).
    let mut headers: Vec<String> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            headers.push(line.to_string());
        }
    }
    let phrase: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let mut out = format!("SIP/2.0 400 {phrase}\r\n");
    for (long, short) in ECHO {
        for h in &headers {
            let Some((name, value)) = h.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if name.eq_ignore_ascii_case(long)
                || (!short.is_empty() && name.eq_ignore_ascii_case(short))
            {
                out.push_str(long);
                out.push_str(": ");
                out.push_str(value.trim());
                out.push_str("\r\n");
            }
        }
    }
    out.push_str("Server: ");
    out.push_str(super::SERVER_HEADER);
    out.push_str("\r\nContent-Length: 0\r\n\r\n");
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_what_it_finds_in_long_and_compact_form() {
        let raw = b"INFO sip:a@b SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\ni: abc\r\nCSeq: x INFO\r\n\r\n";
        let out = bad_request(raw, "bad CSeq: \"x INFO\"\r\n").unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.starts_with("SIP/2.0 400 bad CSeq: \"x INFO\"  \r\n"),
            "{s}"
        );
        assert!(s.contains("Via: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"));
        assert!(s.contains("Call-ID: abc\r\n"));
        assert!(s.contains("CSeq: x INFO\r\n"));
        assert!(s.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn responses_and_garbage_are_not_answered() {
        assert!(bad_request(b"SIP/2.0 200 OK\r\n\r\n", "x").is_none());
        assert!(bad_request(b"garbage", "x").is_none());
        assert!(bad_request(&[0xff, 0xfe], "x").is_none());
    }
}
