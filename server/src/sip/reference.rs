//! The checks of `validate` (address, Via) and `typed::CSeq::parse` as they were
//! before their byte-level fast paths (main `abe5034`), kept as the reference the
//! proptests below compare the fast paths with on arbitrary input: same result, same
//! error text. (The others changed only by `normalize::trim`, `memchr` for `find` and
//! byte tables, which have proptests and table tests of their own.)
#![allow(dead_code)]

use super::normalize::is_token_byte;
use super::ParseError;

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

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

/// `typed::CSeq::parse` as (number, method): `1*DIGIT LWS Method`, two words.
pub fn cseq(value: &str) -> Option<(u32, &str)> {
    let mut it = value.split_whitespace();
    let num = it.next()?.parse().ok()?;
    let method = it.next()?;
    it.next().is_none().then_some((num, method))
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
        fn address_and_via_checks(v in VALUE, name in "(From|Contact|Route)") {
            prop_assert_eq!(validate::address(&name, &v), super::address(&name, &v));
            prop_assert_eq!(validate::via(&v), super::via(&v));
        }

        #[test]
        fn cseq(v in VALUE, n in "[0-9+]{0,3}") {
            let cseq = format!("{n}{v}");
            let fast = typed::CSeq::parse(&cseq).map(|c| (c.num, c.method));
            prop_assert_eq!(fast, super::cseq(&cseq));
        }
    }
}
