//! The header-value rules of RFC 3261 a receiver must apply before reading a value, as
//! byte-level helpers the single-pass parser ([`super::message::parse`]) calls per
//! header: compact header names (7.3.3), canonical spelling of long names (names are
//! case-insensitive, 7.3.5), linear white space around separators (25.1 `SWS`), and
//! comma lists split into one value each (7.3.1). rsip 0.4.0 accepts none of the first
//! three (docs/rsip-notes.md).

use std::borrow::Cow;

/// Compact header forms (RFC 3261 7.3.3 and the RFCs that registered more) -> long names.
pub const COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'n', "Identity-Info"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// Canonical spelling of common long names (header names are case-insensitive).
pub const CANONICAL: &[&str] = &[
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
pub const FREE_TEXT: &[&str] = &[
    "Subject",
    "User-Agent",
    "Server",
    "Warning",
    "Organization",
    "Date",
    "Retry-After",
];

/// Headers whose comma-separated values are split into one header each
/// (RFC 3261 7.3.1: equivalent forms).
pub const LIST_HEADERS: &[&str] = &["Via", "Route", "Record-Route", "Contact"];

/// Runs the [`tighten`] state machine over `value`, handing each output byte to `emit`.
/// Only ASCII bytes are inserted or removed, so UTF-8 stays valid.
fn tighten_with(value: &[u8], mut emit: impl FnMut(u8)) {
    let mut quotes = Quotes::default();
    let mut space = false;
    let mut after_sep = true;
    // A comma is written as ", " (the usual list form), whatever the input had.
    let mut after_comma = false;
    for &c in value {
        if quotes.inside(c) {
            emit(c);
            continue;
        }
        match c {
            b' ' | b'\t' => space = true,
            b'/' | b';' | b'=' | b',' => {
                emit(c);
                space = false;
                after_sep = true;
                after_comma = c == b',';
            }
            _ => {
                if (space && !after_sep) || after_comma {
                    emit(b' ');
                }
                after_comma = false;
                space = false;
                after_sep = false;
                emit(c);
            }
        }
    }
}

/// Whether [`tighten`] leaves `value` as it is (the common case: then the parser keeps
/// borrowing the value from the frame). One pass, no allocation.
pub fn is_tight(value: &str) -> bool {
    let bytes = value.as_bytes();
    if let Some(tight) = is_tight_simple(bytes) {
        return tight;
    }
    let (mut j, mut same) = (0usize, true);
    tighten_with(bytes, |c| {
        same &= bytes.get(j) == Some(&c);
        j += 1;
    });
    same && j == bytes.len()
}

/// [`is_tight`] for values without quotes, commas or tabs (nearly all of them), in one
/// plain pass: such a value is tight exactly when every space is single, neither first
/// nor last, and next to no separator `/ ; =`. `None` when the value has a quote, a
/// comma or a tab (the state machine decides).
fn is_tight_simple(bytes: &[u8]) -> Option<bool> {
    let sep_or_space = |c: u8| matches!(c, b'/' | b';' | b'=' | b' ');
    let mut prev: Option<u8> = None;
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'"' | b',' | b'\t' => return None,
            b' ' => {
                let before = prev.is_some_and(|p| !sep_or_space(p));
                let after = bytes.get(i + 1).is_some_and(|n| !sep_or_space(*n));
                if !(before && after) {
                    return Some(false);
                }
            }
            _ => {}
        }
        prev = Some(c);
    }
    Some(true)
}

/// Removes linear white space around the separators `/ ; = ,` outside quoted strings
/// and collapses other runs of white space to one SP (RFC 3261 25.1: `SWS` around
/// SLASH, SEMI, EQUAL and COMMA is not significant). List commas come out as `, `.
pub fn tighten(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len());
    tighten_with(value.as_bytes(), |c| out.push(c));
    // Only ASCII separators and white space were added or dropped.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Byte ranges (within `value`) of the values of a comma list: split at commas outside
/// quoted strings and `<...>`, each trimmed, empty ones dropped; one empty range when
/// nothing is left (RFC 3261 7.3.1).
pub fn split_top_level(value: &str, each: &mut dyn FnMut(usize, usize)) {
    let bytes = value.as_bytes();
    let (mut quotes, mut angle) = (Quotes::default(), false);
    let (mut start, mut any) = (0usize, false);
    let mut part = |s: usize, e: usize, any: &mut bool| {
        let v = &value[s..e];
        let t = v.trim_start();
        let s = s + (v.len() - t.len());
        let e = s + t.trim_end().len();
        if e > s {
            *any = true;
            each(s, e);
        }
    };
    for (i, &c) in bytes.iter().enumerate() {
        if quotes.inside(c) {
            continue;
        }
        if c == b'<' {
            angle = true;
        } else if c == b'>' {
            angle = false;
        } else if c == b',' && !angle {
            part(start, i, &mut any);
            start = i + 1;
        }
    }
    part(start, bytes.len(), &mut any);
    if !any {
        each(0, 0);
    }
}

/// Where a header value's bytes stand relative to quoted strings (RFC 3261 25.1
/// `quoted-string`: `"` ... `"` with `\` escaping the next byte), fed one byte at a time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quotes {
    quoted: bool,
    escaped: bool,
}

impl Quotes {
    /// Feeds `c`: whether it lies inside a quoted string, the closing `"` included and
    /// the opening one not (that one starts the string).
    pub fn inside(&mut self, c: u8) -> bool {
        if !self.quoted {
            self.quoted = c == b'"';
            return false;
        }
        if self.escaped {
            self.escaped = false;
        } else if c == b'\\' {
            self.escaped = true;
        } else if c == b'"' {
            self.quoted = false;
        }
        true
    }
}

/// Whether `c` may appear in a header name or method (RFC 3261 25.1 `token`).
pub fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// The long form of a compact name (`v` -> `Via`, either case), if it is one.
pub fn expand_compact(name: &str) -> Option<&'static str> {
    match name.as_bytes() {
        [c] => COMPACT
            .iter()
            .find(|(k, _)| *k == c.to_ascii_lowercase())
            .map(|(_, long)| *long),
        _ => None,
    }
}

/// The canonical spelling of a long name in [`CANONICAL`], if it is one.
pub fn canonical_long(name: &str) -> Option<&'static str> {
    CANONICAL
        .iter()
        .find(|c| c.len() == name.len() && c.eq_ignore_ascii_case(name))
        .copied()
}

/// The long, canonical form of a header name: compact forms expanded, the names of
/// [`CANONICAL`] in their usual spelling, any other name as given.
pub fn canonical_name(name: &str) -> Cow<'_, str> {
    match expand_compact(name).or_else(|| canonical_long(name)) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Borrowed(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(v: &str) -> Vec<&str> {
        let mut out = Vec::new();
        split_top_level(v, &mut |s, e| out.push(&v[s..e]));
        out
    }

    #[test]
    fn separators_lose_their_white_space() {
        for (raw, tight) in [
            (
                "SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw",
                "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw",
            ),
            (
                "sip:a@b ;   tag    = 1918181833n",
                "sip:a@b;tag=1918181833n",
            ),
            (
                "\"J R \\\"\"   <sip:j@e> ; tag = 9",
                "\"J R \\\"\" <sip:j@e>;tag=9",
            ),
            ("INVITE,ACK ,  BYE", "INVITE, ACK, BYE"),
            ("a\tb", "a b"),
        ] {
            assert_eq!(tighten(raw), tight);
            assert!(!is_tight(raw), "{raw}");
            assert!(is_tight(tight), "{tight}");
        }
        assert!(is_tight("\"Ünïcode  name\" <sip:u@c>;tag=1"));
        assert_eq!(
            split("a;b=1 , \"x,y\" <sip:c,d>,e"),
            vec!["a;b=1", "\"x,y\" <sip:c,d>", "e"]
        );
        assert_eq!(split(" , "), vec![""]);
    }

    proptest::proptest! {
        #[test]
        fn simple_tightness_agrees_with_the_state_machine(v in "[a-c /;=,\t\"\\\\]{0,12}") {
            let slow = tighten(&v) == v;
            proptest::prop_assert_eq!(is_tight(&v), slow, "{:?}", v);
        }
    }

    #[test]
    fn names() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("cseq"), "CSeq");
        assert_eq!(canonical_name("X-Odd"), "X-Odd");
        assert_eq!(canonical_name("accept-contact"), "accept-contact");
    }
}
