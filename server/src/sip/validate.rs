//! Checks our own code makes on a normalized message, following the RFC 3261 ABNF
//! (section 25.1) where rsip 0.4.0 cannot be used (docs/rsip-notes.md): the
//! Request-URI (scheme, user part, headers), single-instance headers, and the shape of
//! name-addr / addr-spec values and of Via parameters. Each error carries the status a
//! UAS answers with: 416 for a Request-URI scheme we do not serve (RFC 3261 8.2.2.1),
//! 400 otherwise.

use super::ParseError;

/// Headers a request carries at most once (RFC 3261 7.3.1: only comma-list headers may
/// repeat; RFC 4475 3.3.8).
const SINGLE: &[&str] = &[
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Length",
];

/// Headers holding name-addr / addr-spec values (RFC 3261 20.10, 20.20, 20.39, ...).
const ADDRESS: &[&str] = &["From", "To", "Contact", "Route", "Record-Route"];

use super::normalize::{byte_table, find_byte, has_white_space, is_ascii_ws, rfind_byte, trim};
use super::typed::split_byte;

/// RFC 3261 25.1 `unreserved` + `escaped` `%` + `user-unreserved` + `password` extras:
/// every character allowed in a SIP URI's userinfo (before `@`).
static USERINFO: [bool; 256] = byte_table(true, b"-_.!~*'()%&=+$,;?/:");

/// Characters of host, port, `uri-parameters` and `headers` (after `@`).
static HOSTPART: [bool; 256] = byte_table(true, b"-_.!~*'()%[]:;=&+$/?@");

/// Characters of a URI scheme after its first letter (RFC 3986 3.1).
static SCHEME: [bool; 256] = byte_table(true, b"+-.");

/// The scheme of a URI (`scheme ":"`, RFC 3986 3.1), if it has one.
fn scheme(uri: &str) -> Option<&str> {
    let (s, _) = split_byte(uri, b':')?;
    let b = s.as_bytes();
    let ok = b.first().is_some_and(u8::is_ascii_alphabetic)
        && b[1..].iter().all(|c| SCHEME[usize::from(*c)]);
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
    let (userinfo, hostpart) = match rfind_byte(b'@', rest.as_bytes()) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => ("", rest),
    };
    // Byte-wise: every allowed character is ASCII, so a non-ASCII byte fails as its
    // character would.
    let all = |t: &[bool; 256], s: &str| s.bytes().all(|c| t[usize::from(c)]);
    if !all(&USERINFO, userinfo) || !all(&HOSTPART, hostpart) {
        return Err(ParseError::new(format!(
            "malformed Request-URI {:?}",
            clip(uri)
        )));
    }
    let host_end = memchr::memchr2(b';', b'?', hostpart.as_bytes()).unwrap_or(hostpart.len());
    let host = &hostpart[..host_end];
    if host.is_empty() || host.starts_with(':') {
        return Err(ParseError::new("Request-URI without a host"));
    }
    if find_byte(b'?', hostpart.as_bytes()).is_some() {
        return Err(ParseError::new("Request-URI with headers (?...)"));
    }
    Ok(())
}

/// Rejects a second instance of a single-instance header (RFC 4475 3.3.8).
pub fn single_instance<'a>(mut names: impl Iterator<Item = &'a str>) -> Result<(), ParseError> {
    let mut seen = [false; SINGLE.len()];
    names.try_for_each(
        |n| match SINGLE.iter().position(|s| s.eq_ignore_ascii_case(n)) {
            Some(i) if seen[i] => Err(ParseError::new(format!("repeated {} header", SINGLE[i]))),
            Some(i) => {
                seen[i] = true;
                Ok(())
            }
            None => Ok(()),
        },
    )
}

/// Splits `value` at the first `<` outside a quoted string: (display part, rest).
/// Errors: an unterminated quoted string (RFC 4475 3.1.2.6).
fn split_display(value: &str) -> Result<(&str, Option<&str>), ParseError> {
    // Byte-wise: `"`, `\\` and `<` are ASCII, and an escaped multi-byte character's
    // other bytes (0x80 and above) are none of them.
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.bytes().enumerate() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                quoted = false;
            }
        } else if c == b'"' {
            quoted = true;
        } else if c == b'<' {
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
    let d = trim(d);
    if d.starts_with('"') {
        return d.len() >= 2 && d.ends_with('"');
    }
    if d.is_ascii() {
        return d
            .bytes()
            .all(|c| is_ascii_ws(c) || super::normalize::is_token_byte(c));
    }
    d.split_whitespace()
        .all(|t| t.bytes().all(super::normalize::is_token_byte))
}

/// Header parameters (`;name[=value]`, RFC 3261 25.1 `generic-param`): none empty.
fn params_ok(params: &str) -> bool {
    if params.is_empty() {
        return true;
    }
    if !params.starts_with(';') {
        return false;
    }
    if !params.is_ascii() {
        return params[1..].split(';').all(|p| !p.trim().is_empty());
    }
    // Each `;`-separated part holds a byte that is not white space.
    let mut filled = false;
    for &c in &params.as_bytes()[1..] {
        if c == b';' {
            if !filled {
                return false;
            }
            filled = false;
        } else if !is_ascii_ws(c) {
            filled = true;
        }
    }
    filled
}

/// Checks one name-addr / addr-spec value (after normalization: one value, LWS around
/// separators removed). Errors name the defect: unterminated quote, unquoted display
/// name with separators, white space inside `<>`, an addr-spec with `?headers` or
/// white space (it must then be a name-addr, RFC 4475 3.1.2.13), empty parameters.
pub fn address(name: &str, value: &str) -> Result<(), ParseError> {
    if name == "Contact" && trim(value) == "*" {
        return Ok(());
    }
    let bad = |what: &str| Err(ParseError::new(format!("malformed {name}: {what}")));
    let (display, angle) = split_display(value)
        .map_err(|e| ParseError::new(format!("malformed {name}: {}", e.reason)))?;
    match angle {
        Some(rest) => {
            let Some(end) = find_byte(b'>', rest.as_bytes()) else {
                return bad("'<' without '>'");
            };
            let inner = &rest[1..end];
            if !display_name_ok(display) {
                return bad("display name must be a token list or a quoted string");
            }
            // Without white space inside, `inner` is also trimmed.
            if inner.is_empty() || has_white_space(inner) {
                return bad("white space inside <>");
            }
            if !params_ok(trim(&rest[end + 1..])) {
                return bad("empty parameter");
            }
        }
        None => {
            let v = trim(display);
            if has_white_space(v) {
                return bad("white space in an addr-spec (name-addr needs <>)");
            }
            let after_user = rfind_byte(b'@', v.as_bytes()).map_or(v, |at| &v[at + 1..]);
            if find_byte(b'?', after_user.as_bytes()).is_some() {
                return bad("a URI with headers must be enclosed in <>");
            }
            if let Some(i) = find_byte(b';', after_user.as_bytes()) {
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
    let (proto, rest) = split_byte(value, b' ').unwrap_or((value, ""));
    if proto.bytes().filter(|&c| c == b'/').count() != 2 || trim(rest).is_empty() {
        return Err(ParseError::new(format!("malformed Via {:?}", clip(value))));
    }
    let params = find_byte(b';', rest.as_bytes()).map_or("", |i| &rest[i..]);
    if !params_ok(params) {
        return Err(ParseError::new("malformed Via: empty parameter"));
    }
    Ok(())
}

/// Runs [`single_instance`], [`address`] and [`via`] over normalized headers.
pub fn headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<(), ParseError> {
    single_instance(headers.clone().map(|(n, _)| n))?;
    for (name, value) in headers {
        if ADDRESS.contains(&name) {
            address(name, value)?;
        } else if name == "Via" {
            via(value)?;
        }
    }
    Ok(())
}

/// [`headers`] over (slot, flags, name, value) of headers the parser classified
/// (`normalize::KNOWN`, `normalize::F_*`): the same checks in the same order, without
/// comparing names again.
///
/// `first` gets the first From and To read by the fast path
/// ([`super::typed::NameAddr::parse_simple`]; `None` when it did not read them), so
/// the typed view does not read them again.
pub(crate) fn flagged_headers<'a>(
    headers: impl Iterator<Item = (u8, u8, &'a str, &'a str)>,
    first: &mut [Option<super::typed::NameAddr<'a>>; 2],
) -> Result<(), ParseError> {
    use super::normalize::{slot as s, F_ADDRESS, F_SINGLE, F_VIA, KNOWN};
    // One pass; a repeated header is reported before any shape error, as when the
    // repeats were checked first: the first shape error waits in `shape`.
    let mut seen = 0u64;
    let mut shape = Ok(());
    for (slot, flags, name, value) in headers {
        if flags & F_SINGLE != 0 {
            let bit = 1u64 << (slot & 63);
            if seen & bit != 0 {
                let name = KNOWN
                    .get(usize::from(slot).wrapping_sub(1))
                    .map_or("", |k| k.name);
                return Err(ParseError::new(format!("repeated {name} header")));
            }
            seen |= bit;
        }
        if shape.is_err() {
            continue;
        }
        if flags & F_ADDRESS != 0 {
            // The usual `<uri>;tag=...` passes without the general checks.
            match super::typed::NameAddr::parse_simple(value) {
                // From and To are single-instance: this is the first of its slot.
                Some(a) if slot == s::FROM => first[0] = Some(a),
                Some(a) if slot == s::TO => first[1] = Some(a),
                Some(_) => {}
                None => shape = address(name, value),
            }
        } else if flags & F_VIA != 0 {
            shape = via(value);
        }
    }
    shape
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_uris() {
        assert!(request_uri("sip:user;par=u%40example.net@example.com").is_ok());
        assert!(request_uri(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"
        )
        .is_ok());
        assert!(request_uri("sips:a@[2001:db8::1]:5061;transport=tcp").is_ok());
        assert_eq!(
            request_uri("nobodyKnowsThisScheme:x").unwrap_err().code,
            416
        );
        assert_eq!(
            request_uri("soap.beep://192.0.2.103:3002")
                .unwrap_err()
                .code,
            416
        );
        assert_eq!(request_uri("tel:+1555").unwrap_err().code, 416);
        let e = request_uri("sip:user@example.com?Route=%3Csip:example.com%3E").unwrap_err();
        assert_eq!((e.code, e.reason.contains("headers")), (400, true));
        assert_eq!(request_uri("nocolon").unwrap_err().code, 400);
        assert_eq!(request_uri("sip:").unwrap_err().code, 400);
        assert_eq!(request_uri("sip:a@b\"c").unwrap_err().code, 400);
    }

    #[test]
    fn byte_tables_hold_the_abnf_characters() {
        for c in 0..=255u8 {
            let alnum = c.is_ascii_alphanumeric();
            let userinfo = alnum || b"-_.!~*'()%&=+$,;?/:".contains(&c);
            let hostpart = alnum || b"-_.!~*'()%[]:;=&+$/?@".contains(&c);
            assert_eq!(USERINFO[usize::from(c)], userinfo, "{c}");
            assert_eq!(HOSTPART[usize::from(c)], hostpart, "{c}");
            assert_eq!(SCHEME[usize::from(c)], alnum || b"+-.".contains(&c), "{c}");
        }
    }

    #[test]
    fn single_instance_headers() {
        assert!(single_instance(["Via", "Via", "To", "From"].into_iter()).is_ok());
        let e = single_instance(["To", "CSeq", "to"].into_iter()).unwrap_err();
        assert!(e.reason.contains("repeated To"), "{e}");
        assert!(single_instance(["Content-Length", "Content-Length"].into_iter()).is_err());
    }

    #[test]
    fn addresses() {
        for ok in [
            "\"J Rosenberg \\\\\\\"\" <sip:jdrosen@example.com>;tag=98asjd8",
            "caller<sip:caller@example.com>;tag=323",
            "sip:caller@example.net;tag=93942939o2",
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"x\";tag=_token~1'+`*%!-.",
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
            "isbn:2983792873",
            "<sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>",
        ] {
            assert!(address("To", ok).is_ok(), "{ok}");
        }
        for (bad, word) in [
            ("\"Mr. J. User <sip:j.user@example.com>", "unterminated"),
            ("\"Joe\" <sip:joe@example.org>;;;;", "empty parameter"),
            (
                "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
                "enclosed",
            ),
            (
                "\"Watson, Thomas\" < sip:t.watson@example.org >",
                "white space",
            ),
            (
                "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
                "display name",
            ),
            ("<sip:a@b", "without '>'"),
        ] {
            let e = address("To", bad).unwrap_err();
            assert!(e.reason.contains(word), "{bad}: {e}");
        }
        assert!(address("Contact", "*").is_ok());
    }

    #[test]
    fn vias() {
        assert!(via("SIP/2.0/UDP 192.0.2.2;rport;branch=390skdjuw").is_ok());
        assert!(via("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en").is_ok());
        assert!(via("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(via(";").is_err());
        assert!(via("SIP/2.0 host").is_err());
    }
}
