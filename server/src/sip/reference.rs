//! The checks and typed views of `validate` and `typed` as they were before their
//! byte-level fast paths (main `abe5034`), kept as the reference the proptests below
//! compare the fast paths with on arbitrary input: same result, same error text.
#![allow(dead_code)]

use super::normalize::{is_token_byte, Quotes};
use super::ParseError;

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// RFC 3261 25.1 `unreserved` + `escaped` `%` + `user-unreserved` + `password` extras:
/// every character allowed in a SIP URI's userinfo (before `@`).
fn is_userinfo_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.!~*'()%&=+$,;?/:".contains(&c)
}

/// Characters of host, port, `uri-parameters` and `headers` (after `@`).
fn is_hostpart_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.!~*'()%[]:;=&+$/?@".contains(&c)
}

/// The scheme of a URI (`scheme ":"`, RFC 3986 3.1), if it has one.
fn scheme(uri: &str) -> Option<&str> {
    let (s, _) = uri.split_once(':')?;
    let mut chars = s.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    ok.then_some(s)
}

/// Checks a Request-URI: a SIP or SIPS URI (else 416), whose userinfo and host part use
/// only their ABNF characters, with a non-empty host and no `?headers`
/// (RFC 4475 3.1.2.11: escaped headers do not belong in a Request-URI).
pub fn request_uri(uri: &str) -> Result<(), ParseError> {
    let Some(s) = scheme(uri) else {
        return Err(ParseError::new(format!(
            "Request-URI {:?} has no scheme",
            clip(uri)
        )));
    };
    if !s.eq_ignore_ascii_case("sip") && !s.eq_ignore_ascii_case("sips") {
        return Err(ParseError::with_code(
            416,
            format!("Unsupported URI Scheme {s:?}"),
        ));
    }
    let rest = &uri[s.len() + 1..];
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => ("", rest),
    };
    // Byte-wise: every allowed character is ASCII, so a non-ASCII byte fails as its
    // character would.
    if !userinfo.bytes().all(is_userinfo_char) || !hostpart.bytes().all(is_hostpart_char) {
        return Err(ParseError::new(format!(
            "malformed Request-URI {:?}",
            clip(uri)
        )));
    }
    let host = hostpart.split([';', '?']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(ParseError::new("Request-URI without a host"));
    }
    if hostpart.contains('?') {
        return Err(ParseError::new("Request-URI with headers (?...)"));
    }
    Ok(())
}

/// Splits `value` at the first `<` outside a quoted string: (display part, rest).
/// Errors: an unterminated quoted string (RFC 4475 3.1.2.6).
fn split_display(value: &str) -> Result<(&str, Option<&str>), ParseError> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
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
            return Ok((&value[..i], Some(&value[i..])));
        }
    }
    if quoted {
        return Err(ParseError::new("unterminated quoted string"));
    }
    Ok((value, None))
}

/// A display name: empty, one quoted string, or tokens separated by white space
/// (RFC 3261 25.1 `display-name`; RFC 4475 3.1.2.15 rejects unquoted `Bell, Alexander`).
fn display_name_ok(d: &str) -> bool {
    let d = d.trim();
    if d.starts_with('"') {
        return d.len() >= 2 && d.ends_with('"');
    }
    d.split_whitespace().all(|t| t.bytes().all(is_token_byte))
}

/// Header parameters (`;name[=value]`, RFC 3261 25.1 `generic-param`): none empty.
fn params_ok(params: &str) -> bool {
    params.is_empty()
        || (params.starts_with(';') && params[1..].split(';').all(|p| !p.trim().is_empty()))
}

/// Checks one name-addr / addr-spec value (after normalization: one value, LWS around
/// separators removed). Errors name the defect: unterminated quote, unquoted display
/// name with separators, white space inside `<>`, an addr-spec with `?headers` or
/// white space (it must then be a name-addr, RFC 4475 3.1.2.13), empty parameters.
pub fn address(name: &str, value: &str) -> Result<(), ParseError> {
    if name == "Contact" && value.trim() == "*" {
        return Ok(());
    }
    let bad = |what: &str| Err(ParseError::new(format!("malformed {name}: {what}")));
    let (display, angle) = split_display(value)
        .map_err(|e| ParseError::new(format!("malformed {name}: {}", e.reason)))?;
    match angle {
        Some(rest) => {
            let Some(end) = rest.find('>') else {
                return bad("'<' without '>'");
            };
            let inner = &rest[1..end];
            if !display_name_ok(display) {
                return bad("display name must be a token list or a quoted string");
            }
            if inner.is_empty() || inner.trim() != inner || inner.contains(char::is_whitespace) {
                return bad("white space inside <>");
            }
            if !params_ok(rest[end + 1..].trim()) {
                return bad("empty parameter");
            }
        }
        None => {
            let v = display.trim();
            if v.contains(char::is_whitespace) {
                return bad("white space in an addr-spec (name-addr needs <>)");
            }
            let after_user = v.rfind('@').map_or(v, |at| &v[at + 1..]);
            if after_user.contains('?') {
                return bad("a URI with headers must be enclosed in <>");
            }
            if let Some(i) = after_user.find(';') {
                if !params_ok(&after_user[i..]) {
                    return bad("empty parameter");
                }
            }
        }
    }
    Ok(())
}

/// Checks one Via value: `SIP/2.0/<transport> <sent-by>` and no empty parameter
/// (RFC 4475 3.1.2.1).
pub fn via(value: &str) -> Result<(), ParseError> {
    let (proto, rest) = value.split_once(' ').unwrap_or((value, ""));
    if proto.split('/').count() != 3 || rest.trim().is_empty() {
        return Err(ParseError::new(format!("malformed Via {:?}", clip(value))));
    }
    let params = rest.find(';').map_or("", |i| &rest[i..]);
    if !params_ok(params) {
        return Err(ParseError::new("malformed Via: empty parameter"));
    }
    Ok(())
}

/// `name=value` (or bare `name`) parameters after `;` (RFC 3261 25.1 `generic-param`):
/// the value of the first one named `name` (case-insensitive); a bare one reads as "".
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = params;
    loop {
        let (p, next) = match split_byte(rest, b';') {
            Some((p, next)) => (p, Some(next)),
            None => (rest, None),
        };
        let (k, v) = split_byte(p, b'=').unwrap_or((p, ""));
        if k.trim().eq_ignore_ascii_case(name) {
            return Some(v.trim());
        }
        rest = next?;
    }
}

/// `s.split_once(c)` for an ASCII `c`, found with `memchr`.
fn split_byte(s: &str, c: u8) -> Option<(&str, &str)> {
    let i = memchr::memchr(c, s.as_bytes())?;
    // An ASCII byte is a char boundary on both sides.
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// A Via value (RFC 3261 20.42): `SIP/2.0/<transport> <sent-by>;params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Transport, e.g. `TCP`.
    pub transport: &'a str,
    /// `host[:port]`.
    pub sent_by: &'a str,
    /// Everything after the sent-by, starting with `;` (or empty).
    pub params: &'a str,
}

impl<'a> Via<'a> {
    /// Reads a (normalized) Via value. `None` unless `SIP/2.0/<token> <sent-by>` with a
    /// host of host characters and an optional numeric port (RFC 3261 25.1 `via-parm`).
    pub fn parse(value: &'a str) -> Option<Via<'a>> {
        let (proto, rest) = split_byte(value, b' ')?;
        let transport = proto
            .strip_prefix("SIP/2.0/")
            .or_else(|| {
                let mut it = proto.splitn(3, '/');
                let (n, v, t) = (it.next()?, it.next()?, it.next()?);
                (n.eq_ignore_ascii_case("SIP") && v == "2.0").then_some(t)
            })
            .filter(|t| !t.is_empty() && t.bytes().all(is_token_byte))?;
        let end = memchr::memchr(b';', rest.as_bytes()).unwrap_or(rest.len());
        let sent_by = rest[..end].trim();
        let host = if sent_by.starts_with('[') {
            let close = sent_by.find(']')?;
            let port = &sent_by[close + 1..];
            if !port.is_empty() && !port_ok(port.strip_prefix(':')?) {
                return None;
            }
            &sent_by[..=close]
        } else {
            match memchr::memrchr(b':', sent_by.as_bytes()) {
                Some(i) if port_ok(&sent_by[i + 1..]) => &sent_by[..i],
                Some(_) => return None,
                None => sent_by,
            }
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-.[]:".contains(&c));
        host_ok.then_some(Via {
            transport,
            sent_by,
            params: &rest[end..],
        })
    }

    /// The `branch` parameter (RFC 3261 20.42).
    pub fn branch(&self) -> Option<&'a str> {
        param(self.params, "branch")
    }
}

fn port_ok(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit())
}

/// A name-addr or addr-spec value of From, To, Contact (RFC 3261 20.10, 20.20, 20.39):
/// `"Display" <uri>;params` or `uri;params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as received (quotes kept), or "".
    pub display: &'a str,
    /// The URI, without `<>` and header parameters.
    pub uri: &'a str,
    /// The header parameters, starting with `;` (or empty).
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    /// Reads a value; `None` when a `<` has no `>` or the URI is empty. The full shape
    /// (quotes, display-name tokens) is checked by `validate::address` at parse time.
    pub fn parse(value: &'a str) -> Option<NameAddr<'a>> {
        if let (Some(s), Some(e)) = (angle_start(value), value.rfind('>')) {
            if s >= e {
                return None;
            }
            let uri = value[s + 1..e].trim();
            return (!uri.is_empty()).then(|| NameAddr {
                display: value[..s].trim(),
                uri,
                params: value[e + 1..].trim(),
            });
        }
        let (uri, params) = match value.find(';') {
            Some(i) => (&value[..i], &value[i..]),
            None => (value, ""),
        };
        let uri = uri.trim();
        (!uri.is_empty()).then_some(NameAddr {
            display: "",
            uri,
            params,
        })
    }

    /// The `tag` parameter (RFC 3261 19.3).
    pub fn tag(&self) -> Option<&'a str> {
        param(self.params, "tag")
    }
}

/// The first `<` outside a quoted display name.
fn angle_start(value: &str) -> Option<usize> {
    let mut quotes = Quotes::default();
    value.bytes().position(|c| !quotes.inside(c) && c == b'<')
}

/// The `tag` parameter of a From/To value, without checking the rest of it.
pub fn tag_of(value: &str) -> Option<&str> {
    let params = match memchr::memrchr(b'>', value.as_bytes()) {
        Some(i) => &value[i + 1..],
        None => split_byte(value, b';').map_or("", |(_, p)| p),
    };
    param(params, "tag")
}

/// A CSeq value (RFC 3261 20.16): sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (below 2^31 once parsed, RFC 3261 8.1.1.5).
    pub num: u32,
    /// The method, as written.
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    /// Reads `1*DIGIT LWS Method`; `None` otherwise (also for more than two words).
    pub fn parse(value: &'a str) -> Option<CSeq<'a>> {
        let mut it = value.split_whitespace();
        let num = it.next()?.parse().ok()?;
        let method = it.next()?;
        it.next().is_none().then_some(CSeq { num, method })
    }
}

mod agree {
    use super::super::{typed, validate};
    use proptest::prelude::*;

    /// Values built from the bytes the checks look at, ASCII white space of every
    /// kind, and multi-byte characters (one of them Unicode white space).
    const VALUE: &str = "[a-c0-9 \\t\\u{b}\\u{a0}é\"\\\\<>;=@?:/,.*%\\[\\]+-]{0,24}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn address_via_and_uri_checks(v in VALUE, name in "(From|Contact|Route)") {
            prop_assert_eq!(validate::address(&name, &v), super::address(&name, &v));
            prop_assert_eq!(validate::via(&v), super::via(&v));
            prop_assert_eq!(validate::request_uri(&v), super::request_uri(&v));
            let sip = format!("sip:{v}");
            prop_assert_eq!(validate::request_uri(&sip), super::request_uri(&sip));
        }

        #[test]
        fn typed_views(v in VALUE, n in "[0-9+]{0,3}") {
            prop_assert_eq!(typed::NameAddr::parse(&v), super::NameAddr::parse(&v).map(|a| typed::NameAddr { display: a.display, uri: a.uri, params: a.params }));
            prop_assert_eq!(typed::Via::parse(&v), super::Via::parse(&v).map(|a| typed::Via { transport: a.transport, sent_by: a.sent_by, params: a.params }));
            let via = format!("SIP/2.0/TCP {v}");
            prop_assert_eq!(typed::Via::parse(&via), super::Via::parse(&via).map(|a| typed::Via { transport: a.transport, sent_by: a.sent_by, params: a.params }));
            prop_assert_eq!(typed::param(&v, "tag"), super::param(&v, "tag"));
            prop_assert_eq!(typed::tag_of(&v), super::tag_of(&v));
            let cseq = format!("{n}{v}");
            prop_assert_eq!(typed::CSeq::parse(&cseq).map(|c| (c.num, c.method)), super::CSeq::parse(&cseq).map(|c| (c.num, c.method)));
        }
    }
}
