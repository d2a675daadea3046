//! Typed views of the headers every layer reads (RFC 3261 20.x), borrowed from a
//! parsed message: the request [`Method`], the top [`Via`], From/To/Contact as
//! [`NameAddr`] (with their tags), [`CSeq`]. The parser checks these once
//! ([`super::message::parse`]); the views are slices of the message, no allocation.

use super::normalize::{find_byte, is_ascii_ws, rfind_byte, trim};
use std::fmt;

macro_rules! methods {
    ($($v:ident => $s:literal,)*) => {
        /// A request method (RFC 3261 7.1, 25.1 `Method`): the ones we know, or any other
        /// `token` (`extension-method`, answered 501 by the core). Compares with `&str`
        /// (case-sensitive, RFC 3261 7.1) and derefs to the method name.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Method {
            $(#[doc = $s] $v,)*
            /// An extension method, as received.
            Other(Box<str>),
        }

        impl Method {
            /// The method's name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Method::$v => $s,)*
                    Method::Other(s) => s,
                }
            }

            /// The method named `s` (case-sensitive).
            pub fn from_name(s: &str) -> Method {
                match s {
                    $($s => Method::$v,)*
                    other => Method::Other(other.into()),
                }
            }
        }
    };
}

methods! {
    Ack => "ACK", Bye => "BYE", Cancel => "CANCEL", Info => "INFO", Invite => "INVITE",
    Message => "MESSAGE", Notify => "NOTIFY", Options => "OPTIONS", Prack => "PRACK",
    Publish => "PUBLISH", Refer => "REFER", Register => "REGISTER",
    Subscribe => "SUBSCRIBE", Update => "UPDATE",
}

impl std::ops::Deref for Method {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Method {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Method {
    fn from(s: &str) -> Method {
        Method::from_name(s)
    }
}

impl From<String> for Method {
    fn from(s: String) -> Method {
        Method::from_name(&s)
    }
}

impl PartialEq<str> for Method {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Method {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Method> for &str {
    fn eq(&self, other: &Method) -> bool {
        *self == other.as_str()
    }
}

/// `name=value` (or bare `name`) parameters after `;` (RFC 3261 25.1 `generic-param`):
/// the value of the first one named `name` (case-insensitive); a bare one reads as "".
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    if let Some(v) = first_param(params, name) {
        return Some(v);
    }
    param_general(params, name)
}

/// [`param`] when `params` starts with `;<name>=` exactly (the usual `;tag=...`,
/// `;branch=...`): the value up to the next `;`, trimmed. `None` otherwise (then the
/// general loop decides), and for a `name` that is not a `token`.
fn first_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    let (b, n) = (params.as_bytes(), name.as_bytes());
    let ok = b.first() == Some(&b';')
        && b.get(n.len() + 1) == Some(&b'=')
        && !n.is_empty()
        && n.iter().all(|c| super::normalize::is_token_byte(*c))
        && b.get(1..=n.len())?.eq_ignore_ascii_case(n);
    if !ok {
        return None;
    }
    let rest = params.get(n.len() + 2..)?;
    let end = find_byte(b';', rest.as_bytes()).unwrap_or(rest.len());
    Some(trim(rest.get(..end)?))
}

/// [`param`]'s general loop: every `;`-separated part, name and value trimmed.
pub(crate) fn param_general<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = params;
    loop {
        let (p, next) = match split_byte(rest, b';') {
            Some((p, next)) => (p, Some(next)),
            None => (rest, None),
        };
        let (k, v) = split_byte(p, b'=').unwrap_or((p, ""));
        if trim(k).eq_ignore_ascii_case(name) {
            return Some(trim(v));
        }
        rest = next?;
    }
}

/// `s.split_once(c)` for an ASCII `c`, found with `memchr`.
pub(crate) fn split_byte(s: &str, c: u8) -> Option<(&str, &str)> {
    let i = find_byte(c, s.as_bytes())?;
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
            .filter(|t| !t.is_empty() && t.bytes().all(super::normalize::is_token_byte))?;
        let end = find_byte(b';', rest.as_bytes()).unwrap_or(rest.len());
        let sent_by = trim(&rest[..end]);
        let host = if sent_by.starts_with('[') {
            let close = sent_by.find(']')?;
            let port = &sent_by[close + 1..];
            if !port.is_empty() && !port_ok(port.strip_prefix(':')?) {
                return None;
            }
            &sent_by[..=close]
        } else {
            match rfind_byte(b':', sent_by.as_bytes()) {
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
        NameAddr::parse_simple(value).or_else(|| NameAddr::parse_general(value))
    }

    /// [`NameAddr::parse`] without its fast path (the reference the fast path is
    /// compared with).
    pub(crate) fn parse_general(value: &'a str) -> Option<NameAddr<'a>> {
        let close = rfind_byte(b'>', value.as_bytes());
        if let (Some(s), Some(e)) = (close.and_then(|_| angle_start(value)), close) {
            if s >= e {
                return None;
            }
            let uri = trim(&value[s + 1..e]);
            return (!uri.is_empty()).then(|| NameAddr {
                display: trim(&value[..s]),
                uri,
                params: trim(&value[e + 1..]),
            });
        }
        let (uri, params) = match find_byte(b';', value.as_bytes()) {
            Some(i) => (&value[..i], &value[i..]),
            None => (value, ""),
        };
        let uri = trim(uri);
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

/// The bytes of an address the fast path ([`NameAddr::parse_simple`]) accepts:
/// printable ASCII but the space, `"`, `\\`, `,`, `<` and `>` (those two are placed
/// by the caller).
static SIMPLE_ADDR: [bool; 256] = simple_addr_bytes();

const fn simple_addr_bytes() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0x21;
    while c < 0x7f {
        t[c] = !matches!(c as u8, b'"' | b'\\' | b',' | b'<' | b'>');
        c += 1;
    }
    t
}

impl<'a> NameAddr<'a> {
    /// The usual From / To / Contact value `<uri>` + `;param...` read in one pass:
    /// `Some` only when the value has no display name, no white space, quote or comma,
    /// one `<` (first) and one `>`, a non-empty URI and no empty parameter. Such a value
    /// passes `validate::address` and reads as [`NameAddr::parse`] reads it (a
    /// proptest compares both); `None` sends the caller to those general readers.
    pub(crate) fn parse_simple(value: &'a str) -> Option<NameAddr<'a>> {
        let b = value.as_bytes();
        if b.first() != Some(&b'<') {
            return None;
        }
        let mut i = 1;
        while super::swar::word_at(b, i)
            .is_some_and(|x| super::swar::printable_except(x, [b'"', b'\\', b',', b'<', b'>']))
        {
            i += 8;
        }
        while i < b.len() && SIMPLE_ADDR[usize::from(b[i])] {
            i += 1;
        }
        if i == 1 || b.get(i) != Some(&b'>') {
            return None;
        }
        let close = i;
        // Parameters: `;` then a non-empty part, repeated; nothing else.
        let mut part = 0usize;
        i += 1;
        if i < b.len() && b[i] != b';' {
            return None;
        }
        while i < b.len() {
            let plain = super::swar::word_at(b, i).is_some_and(|x| {
                super::swar::printable_except(x, [b'"', b'\\', b',', b'<', b'>', b';'])
            });
            if plain {
                (part, i) = (part + 8, i + 8);
                continue;
            }
            match b[i] {
                b';' if i > close + 1 && part == 0 => return None,
                b';' => part = 0,
                c if SIMPLE_ADDR[usize::from(c)] => part += 1,
                _ => return None,
            }
            i += 1;
        }
        if close + 1 < b.len() && part == 0 {
            return None;
        }
        Some(NameAddr {
            display: "",
            uri: value.get(1..close)?,
            params: value.get(close + 1..)?,
        })
    }
}

/// The first `<` outside a quoted display name.
fn angle_start(value: &str) -> Option<usize> {
    let mut quotes = super::normalize::Quotes::default();
    value.bytes().position(|c| !quotes.inside(c) && c == b'<')
}

/// The `tag` parameter of a From/To value, without checking the rest of it.
pub fn tag_of(value: &str) -> Option<&str> {
    let params = match rfind_byte(b'>', value.as_bytes()) {
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
        if value.is_ascii() {
            // The words between ASCII white space (all of it, for an ASCII value).
            let b = value.as_bytes();
            let word = |from: usize| {
                let s = (from..b.len()).find(|&i| !is_ascii_ws(b[i]))?;
                let e = (s..b.len()).find(|&i| is_ascii_ws(b[i])).unwrap_or(b.len());
                Some((s, e))
            };
            let (s1, e1) = word(0)?;
            let (s2, e2) = word(e1)?;
            let num = value[s1..e1].parse().ok()?;
            let method = &value[s2..e2];
            return word(e2).is_none().then_some(CSeq { num, method });
        }
        let mut it = value.split_whitespace();
        let num = it.next()?.parse().ok()?;
        let method = it.next()?;
        it.next().is_none().then_some(CSeq { num, method })
    }
}

/// The dialog headers of a parsed message, typed: what the auth gate, the core and the
/// simulator's client read. Built from a message `parse` accepted, it is always there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typed<'a> {
    /// The top Via.
    pub via: Via<'a>,
    /// From.
    pub from: NameAddr<'a>,
    /// To.
    pub to: NameAddr<'a>,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq.
    pub cseq: CSeq<'a>,
    /// The first Contact, if any.
    pub contact: Option<NameAddr<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn first_param_agrees_with_the_loop(
            p in "[;=a-cgt \t\u{a0}é]{0,14}",
            name in "(tag|TAG|t|a b||=|;)",
        ) {
            proptest::prop_assert_eq!(param(&p, &name), param_general(&p, &name));
            let tagged = format!(";{name}={p}");
            proptest::prop_assert_eq!(param(&tagged, &name), param_general(&tagged, &name));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn simple_addresses_read_and_check_as_the_general_path(
            v in "[<>;=a-c:@ \t\"\\\\,é*]{0,14}",
            prefix in "(<sip:a@b>|<sip:a@b>;tag=|<sip:a@b;lr>;x|<|)",
        ) {
            let v = format!("{prefix}{v}");
            if let Some(a) = NameAddr::parse_simple(&v) {
                proptest::prop_assert_eq!(Some(a), NameAddr::parse_general(&v));
                proptest::prop_assert!(super::super::validate::address("From", &v).is_ok());
                proptest::prop_assert!(super::super::validate::address("Contact", &v).is_ok());
            }
        }
    }

    #[test]
    fn simple_addresses() {
        for v in ["<sip:a@b>", "<sip:a@b>;tag=1", "<sip:a@b;lr>;x;y=2"] {
            assert!(NameAddr::parse_simple(v).is_some(), "{v}");
        }
        for v in [
            "<>",
            "<sip:a@b>;",
            "<sip:a@b>;;x",
            "<sip:a@b>x",
            "<sip:a@b>;x>",
            "<sip:a b>",
            "\"A\" <sip:a@b>",
            "sip:a@b;tag=1",
        ] {
            assert_eq!(NameAddr::parse_simple(v), None, "{v}");
        }
    }

    #[test]
    fn methods_compare_with_str() {
        let m = Method::from("INFO");
        assert_eq!(m, Method::Info);
        assert!(m == "INFO");
        assert!("INFO" == m);
        assert_eq!(&*m, "INFO");
        let x = Method::from("FROBNICATE");
        assert_eq!(x.as_str(), "FROBNICATE");
        assert_ne!(Method::from("info"), Method::Info);
    }

    #[test]
    fn vias() {
        let v = Via::parse("SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK1;rport").unwrap();
        assert_eq!(
            (v.transport, v.sent_by, v.branch()),
            ("TCP", "10.0.0.5:5060", Some("z9hG4bK1"))
        );
        assert!(Via::parse("SIP/2.0/TLS [2001:db8::1]:5061").is_some());
        assert!(Via::parse("SIP/2.0/TCP h:port").is_none());
        assert!(Via::parse("SIP/3.0/TCP h").is_none());
        assert!(Via::parse("SIP/2.0/TCP").is_none());
    }

    #[test]
    fn name_addrs_and_cseq() {
        let a = NameAddr::parse("\"A <b>\" <sip:a@b;x>;tag=1").unwrap();
        assert_eq!((a.uri, a.tag()), ("sip:a@b;x", Some("1")));
        let a = NameAddr::parse("sip:a@b;tag=2").unwrap();
        assert_eq!((a.uri, a.tag()), ("sip:a@b", Some("2")));
        assert_eq!(tag_of("<sip:a@b>;TAG=3"), Some("3"));
        assert_eq!(
            CSeq::parse("7 INFO"),
            Some(CSeq {
                num: 7,
                method: "INFO"
            })
        );
        assert_eq!(CSeq::parse("7 INFO x"), None);
    }
}
