//! Header normalization in front of rsip 0.4.0, which accepts neither compact header
//! forms, nor folded lines, nor whitespace before the colon - all of which RFC 3261
//! requires a receiver to accept (7.3.1 folding and LWS, 7.3.3 compact form).
//!
//! Output: the start line unchanged, each header as `Canonical-Name: value` on one line,
//! the empty line, the body byte for byte.

use super::ParseError;

/// Compact header forms (RFC 3261 7.3.3 and the RFCs that registered more) -> long names.
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("n", "Identity-Info"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// Canonical spelling of common long names (header names are case-insensitive).
const CANONICAL: &[&str] = &[
    "Accept",
    "Allow",
    "Allow-Events",
    "Call-ID",
    "Contact",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Event",
    "Expires",
    "From",
    "Max-Forwards",
    "Require",
    "Retry-After",
    "Server",
    "Session-Expires",
    "Subject",
    "Supported",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
];

/// Headers whose value is free text: left as received (after unfolding).
const FREE_TEXT: &[&str] = &[
    "Subject",
    "User-Agent",
    "Server",
    "Warning",
    "Organization",
    "Date",
    "Retry-After",
];

/// Headers whose comma-separated values are split into one header each
/// (RFC 3261 7.3.1: equivalent forms), since rsip parses one value per header.
const LIST_HEADERS: &[&str] = &["Via", "Route", "Record-Route", "Contact"];

/// Removes linear white space around the separators `/ ; = ,` outside quoted strings
/// and collapses other runs of white space to one SP (RFC 3261 25.1: `SWS` around
/// SLASH, SEMI, EQUAL and COMMA is not significant). List commas come out as `, `.
pub fn tighten(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut quoted, mut escaped) = (false, false);
    let mut space = false;
    let mut after_sep = true;
    // A comma is written as ", " (the usual list form), whatever the input had.
    let mut after_comma = false;
    for c in value.chars() {
        if quoted {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' => space = true,
            '/' | ';' | '=' | ',' => {
                out.push(c);
                space = false;
                after_sep = true;
                after_comma = c == ',';
            }
            _ => {
                if (space && !after_sep) || after_comma {
                    out.push(' ');
                }
                after_comma = false;
                space = false;
                after_sep = false;
                quoted = c == '"';
                out.push(c);
            }
        }
    }
    out
}

/// Splits a header value at commas that are outside quoted strings and `<...>`.
fn split_top_level(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    for c in value.chars() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c == '"' {
            quoted = true;
        } else if c == '<' {
            angle = true;
        } else if c == '>' {
            angle = false;
        } else if c == ',' && !angle {
            parts.push(std::mem::take(&mut cur).trim().to_string());
            continue;
        }
        cur.push(c);
    }
    parts.push(cur.trim().to_string());
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        parts.push(String::new());
    }
    parts
}

/// A normalized message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Request-Line or Status-Line, as received.
    pub start_line: String,
    /// Headers in order, names in long canonical form, values unfolded and trimmed.
    pub headers: Vec<(String, String)>,
    /// Offset of the body in the raw input.
    pub body_offset: usize,
    /// The whole normalized message (what rsip is given).
    pub bytes: Vec<u8>,
}

/// Whether `c` may appear in a header name (RFC 3261 25.1 `token`).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// The long, canonical form of a header name.
pub fn canonical_name(name: &str) -> String {
    if name.len() == 1 {
        if let Some((_, long)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            return (*long).to_string();
        }
    }
    CANONICAL
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_string(), |c| (*c).to_string())
}

/// Normalizes a framed message (see module docs). Errors name the defect: no empty
/// line after the headers, a header section that is not UTF-8, a header line without
/// a colon or with an invalid name, a continuation line with nothing to continue,
/// whitespace before the start line.
pub fn normalize(raw: &[u8]) -> Result<Normalized, ParseError> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ParseError::new("no empty line after the header section"))?;
    let head = std::str::from_utf8(&raw[..head_end])
        .map_err(|_| ParseError::new("header section is not valid UTF-8"))?;
    let mut lines = head.split("\r\n");
    let start_line = lines.next().unwrap_or("");
    if start_line.is_empty() || start_line.starts_with([' ', '\t']) {
        return Err(ParseError::new(
            "start line is empty or begins with whitespace",
        ));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.starts_with([' ', '\t']) {
            // Folded continuation (7.3.1): replaced by a single SP.
            let Some((_, value)) = headers.last_mut() else {
                return Err(ParseError::new("continuation line before any header"));
            };
            let cont = line.trim();
            if !cont.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(cont);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::new(format!(
                "header line {} has no colon: {:?}",
                n + 2,
                clip(line)
            )));
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(ParseError::new(format!(
                "invalid header name {:?}",
                clip(name)
            )));
        }
        headers.push((canonical_name(name), value.trim().to_string()));
    }
    let headers = headers
        .into_iter()
        .flat_map(|(name, value)| {
            let value = if FREE_TEXT.iter().any(|f| f.eq_ignore_ascii_case(&name)) {
                value
            } else {
                tighten(&value)
            };
            if LIST_HEADERS.contains(&name.as_str()) {
                split_top_level(&value)
                    .into_iter()
                    .map(|v| (name.clone(), v))
                    .collect::<Vec<_>>()
            } else {
                vec![(name, value)]
            }
        })
        .collect::<Vec<_>>();
    let body_offset = head_end + 4;
    let mut bytes = Vec::with_capacity(raw.len() + 32);
    bytes.extend_from_slice(start_line.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    for (name, value) in &headers {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(&raw[body_offset..]);
    Ok(Normalized {
        start_line: start_line.to_string(),
        headers,
        body_offset,
        bytes,
    })
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_folded_and_spaced_headers() {
        let raw = b"INFO sip:a@b SIP/2.0\r\nv : SIP/2.0/TCP h;branch=z9hG4bK1\r\ni:abc\r\nSubject: one\r\n\t two\r\n   three\r\nL: 0\r\n\r\n";
        let n = normalize(raw).unwrap();
        assert_eq!(
            n.headers,
            vec![
                (
                    "Via".to_string(),
                    "SIP/2.0/TCP h;branch=z9hG4bK1".to_string()
                ),
                ("Call-ID".to_string(), "abc".to_string()),
                ("Subject".to_string(), "one two three".to_string()),
                ("Content-Length".to_string(), "0".to_string()),
            ]
        );
        assert!(String::from_utf8(n.bytes)
            .unwrap()
            .contains("\r\nSubject: one two three\r\n"));
    }

    #[test]
    fn separators_lose_their_white_space() {
        assert_eq!(
            tighten("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw"),
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw"
        );
        assert_eq!(
            tighten("sip:a@b ;   tag    = 1918181833n"),
            "sip:a@b;tag=1918181833n"
        );
        assert_eq!(
            tighten("\"J R \\\"\"   <sip:j@e> ; tag = 9"),
            "\"J R \\\"\" <sip:j@e>;tag=9"
        );
        assert_eq!(tighten("INVITE,ACK ,  BYE"), "INVITE, ACK, BYE");
        assert_eq!(
            split_top_level("a;b=1 , \"x,y\" <sip:c,d>,e"),
            vec!["a;b=1", "\"x,y\" <sip:c,d>", "e"]
        );
    }

    #[test]
    fn defects_are_named() {
        assert!(normalize(b"X sip:a SIP/2.0\r\nVia")
            .unwrap_err()
            .reason
            .contains("empty line"));
        assert!(normalize(b"X sip:a SIP/2.0\r\nNoColon\r\n\r\n")
            .unwrap_err()
            .reason
            .contains("no colon"));
        assert!(normalize(b"X sip:a SIP/2.0\r\n folded\r\n\r\n")
            .unwrap_err()
            .reason
            .contains("continuation"));
        assert!(normalize(b" X sip:a SIP/2.0\r\n\r\n")
            .unwrap_err()
            .reason
            .contains("whitespace"));
        assert!(normalize(b"X sip:a SIP/2.0\r\nBad Name: 1\r\n\r\n")
            .unwrap_err()
            .reason
            .contains("invalid header name"));
        assert!(normalize(b"X sip:a SIP/2.0\r\nA: \xff\r\n\r\n")
            .unwrap_err()
            .reason
            .contains("UTF-8"));
    }
}
