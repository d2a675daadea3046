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

/// What the parser and the validators need to know of a known header name (bits of
/// [`Known::flags`]): free text, never tightened ([`FREE_TEXT`]).
pub(crate) const F_FREE: u8 = 1;
/// A comma list split into one header per value ([`LIST_HEADERS`]).
pub(crate) const F_LIST: u8 = 2;
/// At most once per message (RFC 3261 7.3.1, RFC 4475 3.3.8).
pub(crate) const F_SINGLE: u8 = 4;
/// A name-addr / addr-spec value (RFC 3261 20.10, 20.20, 20.39, ...).
pub(crate) const F_ADDRESS: u8 = 8;
/// The top Via: checked by `validate::via`.
pub(crate) const F_VIA: u8 = 16;

/// A header name the parser knows: its usual spelling, whether a received long name is
/// rewritten to it ([`CANONICAL`]), and its [`F_FREE`]... bits. List and address bits
/// of a name that is not rewritten hold only for that exact spelling (as the name
/// tables always did: `Route`, not `route`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    pub(crate) name: &'static str,
    pub(crate) canon: bool,
    pub(crate) flags: u8,
}

const fn k(name: &'static str, canon: bool, flags: u8) -> Known {
    Known { name, canon, flags }
}

/// Every name of [`CANONICAL`], [`COMPACT`], [`FREE_TEXT`] and [`LIST_HEADERS`]; the
/// slot of a name is its index here plus one (0: unknown). The first ones are the
/// [`slot`] constants.
pub(crate) const KNOWN: &[Known] = &[
    k("Via", true, F_LIST | F_VIA),
    k("From", true, F_SINGLE | F_ADDRESS),
    k("To", true, F_SINGLE | F_ADDRESS),
    k("Call-ID", true, F_SINGLE),
    k("CSeq", true, F_SINGLE),
    k("Content-Length", true, F_SINGLE),
    k("Max-Forwards", true, F_SINGLE),
    k("Contact", true, F_LIST | F_ADDRESS),
    k("Content-Type", true, 0),
    k("Route", false, F_LIST | F_ADDRESS),
    k("Record-Route", false, F_LIST | F_ADDRESS),
    k("Accept", true, 0),
    k("Allow", true, 0),
    k("Allow-Events", true, 0),
    k("Content-Encoding", true, 0),
    k("Event", true, 0),
    k("Expires", true, 0),
    k("Require", true, 0),
    k("Retry-After", true, F_FREE),
    k("Server", true, F_FREE),
    k("Session-Expires", true, 0),
    k("Subject", true, F_FREE),
    k("Supported", true, 0),
    k("Unsupported", true, 0),
    k("User-Agent", true, F_FREE),
    k("Warning", true, F_FREE),
    k("Organization", false, F_FREE),
    k("Date", false, F_FREE),
    k("Accept-Contact", false, 0),
    k("Referred-By", false, 0),
    k("Request-Disposition", false, 0),
    k("Reject-Contact", false, 0),
    k("Identity-Info", false, 0),
    k("Refer-To", false, 0),
    k("Identity", false, 0),
];

/// Slots of the headers the parser and the typed view read (index in [`KNOWN`] + 1).
pub(crate) mod slot {
    pub(crate) const VIA: u8 = 1;
    pub(crate) const FROM: u8 = 2;
    pub(crate) const TO: u8 = 3;
    pub(crate) const CALL_ID: u8 = 4;
    pub(crate) const CSEQ: u8 = 5;
    pub(crate) const CONTENT_LENGTH: u8 = 6;
    pub(crate) const MAX_FORWARDS: u8 = 7;
    pub(crate) const CONTACT: u8 = 8;
    pub(crate) const CONTENT_TYPE: u8 = 9;
}

/// The bucket of a name of two bytes or more in [`BY_HASH`]: its length and its first
/// and last bytes, case-folded.
const fn name_hash(len: usize, first: u8, last: u8) -> usize {
    let (f, l) = (
        first.to_ascii_lowercase() as usize,
        last.to_ascii_lowercase() as usize,
    );
    (len * 7 + f * 3 + l * 5) & 255
}

/// For each [`name_hash`] bucket, the indices in [`KNOWN`] of the names (two bytes or
/// more) in it, `u8::MAX` when unused: [`classify`] compares a name with those only.
/// The build fails if a bucket would need more than two.
static BY_HASH: [[u8; 2]; 256] = by_hash();

const fn by_hash() -> [[u8; 2]; 256] {
    let mut t = [[u8::MAX; 2]; 256];
    let mut i = 0;
    while i < KNOWN.len() {
        let n = KNOWN[i].name.as_bytes();
        let h = name_hash(n.len(), n[0], n[n.len() - 1]);
        if t[h][0] == u8::MAX {
            t[h][0] = i as u8;
        } else if t[h][1] == u8::MAX {
            t[h][1] = i as u8;
        } else {
            panic!("more than two known names in one bucket");
        }
        i += 1;
    }
    t
}

/// For each compact form `a`..`z` (RFC 3261 7.3.3, [`COMPACT`]), the index in
/// [`KNOWN`] of its long name, `u8::MAX` when none.
static COMPACT_KNOWN: [u8; 26] = compact_known();

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn compact_known() -> [u8; 26] {
    let mut t = [u8::MAX; 26];
    let mut c = 0;
    while c < COMPACT.len() {
        let (letter, long) = COMPACT[c];
        let mut i = 0;
        while i < KNOWN.len() {
            if same(KNOWN[i].name.as_bytes(), long.as_bytes()) {
                t[(letter - b'a') as usize] = i as u8;
            }
            i += 1;
        }
        c += 1;
    }
    t
}

/// A header name classified once: its slot (0 when unknown), the static spelling it is
/// stored under (compact forms expanded, [`CANONICAL`] names rewritten; `None`: kept
/// as received) and its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class {
    pub(crate) slot: u8,
    pub(crate) spelling: Option<&'static str>,
    pub(crate) flags: u8,
}

/// Classifies a header name (case-insensitive; compact forms, RFC 3261 7.3.3): what
/// `expand_compact`, `canonical_long` and the name tables say of it, in one look-up.
pub(crate) fn classify(name: &str) -> Class {
    let unknown = Class {
        slot: 0,
        spelling: None,
        flags: 0,
    };
    let n = name.as_bytes();
    let (Some(&first), Some(&last)) = (n.first(), n.last()) else {
        return unknown;
    };
    if n.len() == 1 {
        let i = first.to_ascii_lowercase().wrapping_sub(b'a');
        let Some(&i) = COMPACT_KNOWN.get(usize::from(i)) else {
            return unknown;
        };
        return match KNOWN.get(usize::from(i)) {
            Some(kn) => Class {
                slot: i + 1,
                spelling: Some(kn.name),
                flags: kn.flags,
            },
            None => unknown,
        };
    }
    for &i in &BY_HASH[name_hash(n.len(), first, last)] {
        let Some(kn) = KNOWN.get(usize::from(i)) else {
            break;
        };
        let c = kn.name.as_bytes();
        // Names nearly always come in their usual spelling: one plain compare.
        let same = super::swar::same_bytes(c, n);
        if same || c.eq_ignore_ascii_case(n) {
            let exact = kn.canon || same;
            return Class {
                slot: i + 1,
                spelling: kn.canon.then_some(kn.name),
                flags: if exact {
                    kn.flags
                } else {
                    kn.flags & !(F_LIST | F_ADDRESS)
                },
            };
        }
    }
    unknown
}

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
    if memchr::memchr(b',', bytes).is_none() {
        // One value (the usual case): the loop below would give the same one part.
        let t = trim(value);
        if t.is_empty() {
            return each(0, 0);
        }
        let s = t.as_ptr() as usize - value.as_ptr() as usize;
        return each(s, s + t.len());
    }
    let (mut quotes, mut angle) = (Quotes::default(), false);
    let (mut start, mut any) = (0usize, false);
    let mut part = |s: usize, e: usize, any: &mut bool| {
        let v = &value[s..e];
        let t = trim(v);
        // `t` is a slice of `v`.
        let s = s + (t.as_ptr() as usize - v.as_ptr() as usize);
        let e = s + t.len();
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

/// `s.trim()` (Unicode white space, as `str::trim`), with a byte loop for ASCII ends.
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_ascii_ws(b[i]) {
        i += 1;
    }
    let mut j = b.len();
    while j > i && is_ascii_ws(b[j - 1]) {
        j -= 1;
    }
    if b.get(i).is_some_and(|c| *c >= 0x80) || (j > i && b[j - 1] >= 0x80) {
        return s.trim(); // possibly Unicode white space at an end
    }
    // `i` and `j` sit next to ASCII bytes: char boundaries.
    s.get(i..j).unwrap_or_default()
}

/// The first `c` in `s`: eight bytes at a time for short slices (most header values:
/// no call and no CPU dispatch, `swar::find_byte`), `memchr` for longer ones.
pub(crate) fn find_byte(c: u8, s: &[u8]) -> Option<usize> {
    if s.len() < 48 {
        super::swar::find_byte(c, s)
    } else {
        memchr::memchr(c, s)
    }
}

/// The last `c` in `s`: [`find_byte`] from the end (`memchr::memrchr` for long slices).
pub(crate) fn rfind_byte(c: u8, s: &[u8]) -> Option<usize> {
    if s.len() < 48 {
        super::swar::rfind_byte(c, s)
    } else {
        memchr::memrchr(c, s)
    }
}

/// The ASCII bytes `char::is_whitespace` accepts (U+0009..U+000D, U+0020).
pub(crate) fn is_ascii_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `s.contains(char::is_whitespace)`, byte-wise while `s` is ASCII.
pub(crate) fn has_white_space(s: &str) -> bool {
    for c in s.bytes() {
        if is_ascii_ws(c) {
            return true;
        }
        if c >= 0x80 {
            return s.contains(char::is_whitespace);
        }
    }
    false
}

/// A 256-entry membership table: ASCII letters and digits when `alnum`, and `extra`.
pub(crate) const fn byte_table(alnum: bool, extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = alnum && b.is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// [`is_token_byte`] as a table.
static TOKEN: [bool; 256] = byte_table(true, b"-.!%*_+`'~");

/// Whether `c` may appear in a header name or method (RFC 3261 25.1 `token`).
pub fn is_token_byte(c: u8) -> bool {
    TOKEN[usize::from(c)]
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

    #[test]
    fn classify_finds_every_known_name() {
        for (i, kn) in KNOWN.iter().enumerate() {
            for name in [kn.name.to_string(), kn.name.to_ascii_lowercase()] {
                let c = classify(&name);
                assert_eq!(usize::from(c.slot), i + 1, "{name}");
            }
        }
        assert_eq!(classify("X-Odd").slot, 0);
        assert_eq!(classify("").slot, 0);
        assert_eq!(classify("v").spelling, Some("Via"));
    }

    proptest::proptest! {
        #[test]
        fn classify_agrees_with_the_linear_search(
            name in "(Via|via|VIA|v|V|From|To|Call-ID|call-id|CSeq|Contact|Route|route|\
                      Record-Route|X-a|Date|date|[a-zA-Z-]{0,20}|é|)",
        ) {
            proptest::prop_assert_eq!(classify(&name), super::super::reference::classify(&name));
        }

        #[test]
        fn find_byte_is_memchr(v in proptest::collection::vec(0u8..4, 0..120), c in 0u8..4) {
            proptest::prop_assert_eq!(find_byte(c, &v), memchr::memchr(c, &v));
            proptest::prop_assert_eq!(rfind_byte(c, &v), memchr::memrchr(c, &v));
        }
    }

    #[test]
    fn tables_match_the_rules() {
        for c in 0..=255u8 {
            let token = c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c);
            assert_eq!(is_token_byte(c), token, "{c}");
            assert_eq!(
                is_ascii_ws(c),
                c < 0x80 && char::from(c).is_whitespace(),
                "{c}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_trim_and_white_space_agree_with_str(v in "[ \t\r\n\u{b}\u{c}\u{a0}\u{85}\u{2003}aé;]{0,10}") {
            proptest::prop_assert_eq!(trim(&v), v.trim());
            proptest::prop_assert_eq!(has_white_space(&v), v.contains(char::is_whitespace));
        }

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
