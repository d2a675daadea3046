//! The SIP message view the server and the client library work with, parsed through
//! rsip 0.4.0 after [`super::normalize`], and the encoders for what we send.

use super::normalize::{canonical_name, normalize};
use bytes::Bytes;
use rsip::headers::untyped::ToTypedHeader;
use rsip::headers::UntypedHeader;

/// Why a message could not be parsed; `reason` names the defect (it becomes the reason
/// phrase of the answer), `code` is the status a UAS answers a request with: 400, or
/// 505 for another SIP version (RFC 3261 8.2.2... 21.5.9), 416 for a Request-URI scheme
/// we do not serve (8.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// Human-readable defect, e.g. `missing Call-ID header`.
    pub reason: String,
    /// Status code of the answer (400, 416 or 505).
    pub code: u16,
}

impl ParseError {
    /// A 400 error with this reason.
    pub fn new(reason: impl Into<String>) -> ParseError {
        ParseError::with_code(400, reason)
    }

    /// An error answered with `code`.
    pub fn with_code(code: u16, reason: impl Into<String>) -> ParseError {
        ParseError {
            reason: reason.into(),
            code,
        }
    }
}

/// Headers in order; names in canonical long form; lookups are case-insensitive and
/// also accept compact forms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Value of the first header named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = canonical_name(name);
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// Values of every header named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name);
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((canonical_name(name), value.into()));
    }

    /// Replaces every header named `name` with one (at the first one's place, else at
    /// the end).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let name = canonical_name(name);
        let value = value.into();
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(i) => {
                self.0[i].1 = value;
                let mut k = 0;
                self.0.retain(|(n, _)| {
                    k += 1;
                    k - 1 == i || !n.eq_ignore_ascii_case(&name)
                });
            }
            None => self.0.push((name, value)),
        }
    }

    /// Removes every header named `name`.
    pub fn remove(&mut self, name: &str) {
        let name = canonical_name(name);
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
    }

    /// (name, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn write(&self, out: &mut Vec<u8>, body_len: usize) {
        for (n, v) in &self.0 {
            if n == "Content-Length" {
                continue;
            }
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {body_len}\r\n\r\n").as_bytes());
    }
}

/// A SIP request (RFC 3261 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method, e.g. `INVITE` (case-sensitive, RFC 3261 7.1).
    pub method: String,
    /// Request-URI as received.
    pub uri: String,
    /// Headers.
    pub headers: Headers,
    /// Body (exactly Content-Length bytes).
    pub body: Bytes,
}

/// A SIP response (RFC 3261 7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100-699.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Bytes,
}

/// Either kind of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// The `tag` parameter of a From/To value (RFC 3261 19.3), if any.
fn tag_of(value: &str) -> Option<&str> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("tag").then(|| v.trim())
    })
}

/// The addr-spec of a name-addr or addr-spec value: `"A" <sip:a@b;x>;tag=1` -> `sip:a@b;x`,
/// `sip:a@b;tag=1` -> `sip:a@b`.
fn uri_of(value: &str) -> Option<String> {
    if let (Some(s), Some(e)) = (value.find('<'), value.rfind('>')) {
        return (s < e).then(|| value[s + 1..e].trim().to_string());
    }
    let v = value.split(';').next()?.trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn cseq_of(headers: &Headers) -> Option<(u32, &str)> {
    let v = headers.get("CSeq")?;
    let mut it = v.split_whitespace();
    let n = it.next()?.parse().ok()?;
    Some((n, it.next()?))
}

macro_rules! dialog_accessors {
    () => {
        /// Call-ID value.
        pub fn call_id(&self) -> Option<&str> {
            self.headers.get("Call-ID")
        }
        /// CSeq (number, method).
        pub fn cseq(&self) -> Option<(u32, &str)> {
            cseq_of(&self.headers)
        }
        /// From tag.
        pub fn from_tag(&self) -> Option<&str> {
            self.headers.get("From").and_then(tag_of)
        }
        /// To tag.
        pub fn to_tag(&self) -> Option<&str> {
            self.headers.get("To").and_then(tag_of)
        }
        /// The URI inside From, without display name or header parameters.
        pub fn from_uri(&self) -> Option<String> {
            self.headers.get("From").and_then(uri_of)
        }
        /// The URI inside To.
        pub fn to_uri(&self) -> Option<String> {
            self.headers.get("To").and_then(uri_of)
        }
        /// The URI of the first Contact.
        pub fn contact_uri(&self) -> Option<String> {
            self.headers.get("Contact").and_then(uri_of)
        }
        /// Content-Type value.
        pub fn content_type(&self) -> Option<&str> {
            self.headers.get("Content-Type")
        }
        /// `branch` parameter of the top Via.
        pub fn branch(&self) -> Option<&str> {
            self.headers.get("Via")?.split(';').skip(1).find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("branch").then(|| v.trim())
            })
        }
    };
}

impl Request {
    dialog_accessors!();

    /// Encodes the request: request line, headers in order, `Content-Length` computed
    /// from the body (any given one is replaced), empty line, body.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        self.headers.write(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }
}

impl Response {
    dialog_accessors!();

    /// Encodes the response (Content-Length computed from the body).
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.code, self.reason).as_bytes());
        self.headers.write(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }

    /// Adds `;tag=<tag>` to To unless it already has a tag (RFC 3261 8.2.6.2).
    pub fn with_to_tag(mut self, tag: &str) -> Response {
        if let Some(to) = self.headers.get("To") {
            if tag_of(to).is_none() {
                let v = format!("{to};tag={tag}");
                self.headers.set("To", v);
            }
        }
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push(name, value);
        self
    }

    /// Sets the body and its Content-Type.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Response {
        self.headers.set("Content-Type", content_type);
        self.body = body.into();
        self
    }
}

/// A response to `req` (RFC 3261 8.2.6.2): Via (all, in order), From, To, Call-ID and
/// CSeq copied from the request; no body.
pub fn response_for(req: &Request, code: u16, reason: &str) -> Response {
    let mut headers = Headers::default();
    for v in req.headers.get_all("Via") {
        headers.push("Via", v);
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = req.headers.get(name) {
            headers.push(name, v);
        }
    }
    Response {
        code,
        reason: reason.to_string(),
        headers,
        body: Bytes::new(),
    }
}

/// Start-line checks made before rsip sees the message, so the reason is precise:
/// `Method SP Request-URI SP SIP/2.0` with single spaces and no `<>` around the URI
/// (RFC 3261 7.1, 25.1), or `SIP/2.0 SP 3DIGIT SP Reason` (7.2).
fn check_start_line(start: &str) -> Result<(), ParseError> {
    if let Some(rest) = start.strip_prefix("SIP/") {
        let version = rest.split(' ').next().unwrap_or("");
        if version != "2.0" {
            return Err(ParseError::new(format!(
                "unsupported SIP version SIP/{version}"
            )));
        }
        return Ok(());
    }
    let parts: Vec<&str> = start.split(' ').collect();
    let [_, uri, version] = parts.as_slice() else {
        return Err(ParseError::new(format!(
            "malformed request line {:?}: expected Method SP Request-URI SP SIP/2.0",
            start.chars().take(80).collect::<String>()
        )));
    };
    if uri.is_empty() {
        return Err(ParseError::new("malformed request line: empty Request-URI"));
    }
    if uri.contains(['<', '>']) {
        return Err(ParseError::new("Request-URI enclosed in <>"));
    }
    if *version != "SIP/2.0" {
        let code = if version.starts_with("SIP/") {
            505
        } else {
            400
        };
        return Err(ParseError::with_code(
            code,
            format!("Version Not Supported: unsupported SIP version {version:?}"),
        ));
    }
    Ok(())
}

/// Methods rsip 0.4.0 knows; any other method is rejected by it ("invalid method").
const RSIP_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// The Request-URI rsip is shown in place of the real one, which our own
/// [`super::validate::request_uri`] checked (RFC 3261 25.1 `SIP-URI`): rsip 0.4.0 stops
/// at a `;` or other legal characters in the user part (RFC 4475 3.1.1.2, 3.1.1.9).
const STAND_IN_URI: &str = "sip:stand-in@invalid";

/// RFC 3261 25.1 allows any token as a method (`extension-method`) and requires 501 for
/// ones we do not implement, but rsip 0.4.0 rejects methods it does not know. For
/// rsip's validation only, such a method is replaced by `OPTIONS` in the request line
/// and the CSeq (our view keeps the real one), and the Request-URI by
/// [`STAND_IN_URI`]. `None` for a response.
fn stand_in_method(start: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let method = start.split(' ').next()?;
    if start.starts_with("SIP/") {
        return None;
    }
    if method.is_empty()
        || !method
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
    {
        return None;
    }
    let known = RSIP_METHODS.contains(&method);
    let stand_in = if known { method } else { "OPTIONS" };
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let mut out = Vec::with_capacity(bytes.len() + 32);
    for (i, line) in head.split("\r\n").enumerate() {
        if i == 0 {
            out.extend_from_slice(stand_in.as_bytes());
            out.push(b' ');
            out.extend_from_slice(STAND_IN_URI.as_bytes());
            out.extend_from_slice(b" SIP/2.0");
        } else if let Some(v) = line.strip_prefix("CSeq: ").filter(|_| !known) {
            out.extend_from_slice(b"CSeq: ");
            out.extend_from_slice(v.replacen(method, "OPTIONS", 1).as_bytes());
        } else {
            out.extend_from_slice(line.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&bytes[head_end + 2..]);
    Some(out)
}

fn rsip_err(what: &str, e: rsip::Error) -> ParseError {
    let text = e.to_string();
    let text: String = text.chars().take(120).collect();
    ParseError::new(format!(
        "malformed {what}: {}",
        text.replace(['\r', '\n'], " ")
    ))
}

/// Parses one framed message: normalization, rsip, then the checks of RFC 3261 8.1.1
/// and 8.2: Via, From, To, Call-ID and CSeq present and well-formed (rsip's typed
/// headers), CSeq number below 2^31 and its method equal to the request's,
/// Max-Forwards numeric, SIP version 2.0, Content-Length not larger than the body
/// (a longer body is cut to Content-Length). Errors name the defect.
pub fn parse(raw: &[u8]) -> Result<SipMessage, ParseError> {
    let n = normalize(raw)?;
    check_start_line(&n.start_line)?;
    if !n.start_line.starts_with("SIP/") {
        let uri = n.start_line.split(' ').nth(1).unwrap_or("");
        super::validate::request_uri(uri)?;
    }
    super::validate::headers(n.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let for_rsip = stand_in_method(&n.start_line, &n.bytes);
    // The start line says which it is: rsip's `SipMessage` would try a response first
    // and, for every request, build (and drop) an error quoting the whole message.
    let for_rsip = for_rsip.as_deref().unwrap_or(&n.bytes);
    if n.start_line.starts_with("SIP/") {
        rsip::Response::try_from(for_rsip).map(drop)
    } else {
        rsip::Request::try_from(for_rsip).map(drop)
    }
    .map_err(|e| rsip_err("message", e))?;
    let mut headers = Headers::default();
    for (name, value) in n.headers {
        headers.0.push((name, value));
    }
    let mut body = Bytes::copy_from_slice(&raw[n.body_offset..]);
    if let Some(cl) = headers.get("Content-Length") {
        let len: usize = cl
            .trim()
            .parse()
            .map_err(|_| ParseError::new(format!("bad Content-Length {cl:?}")))?;
        if len > body.len() {
            return Err(ParseError::new(format!(
                "Content-Length {len} exceeds body length {}",
                body.len()
            )));
        }
        body.truncate(len);
    }
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        match headers.get(name) {
            None => return Err(ParseError::new(format!("missing {name} header"))),
            Some(v) if v.trim().is_empty() => {
                return Err(ParseError::new(format!("empty {name} header")))
            }
            Some(_) => {}
        }
    }
    // Only the top Via is ours to interpret (RFC 3261 8.2.6.2 copies the others as
    // they are); lower ones may name transports rsip does not know (RFC 4475 transports).
    let top_via = headers.get("Via").unwrap_or_default();
    rsip::headers::Via::new(top_via)
        .typed()
        .map_err(|e| rsip_err("Via", e))?;
    // From and To are checked by validate::address (RFC 3261 25.1 name-addr /
    // addr-spec): rsip's typed From/To refuse legal values (RFC 4475 3.1.1.2 display
    // names and quoted parameter values, 3.3.4 non-SIP URIs), docs/rsip-notes.md.
    let cseq_raw = headers.get("CSeq").unwrap_or_default().to_string();
    let (cseq_num, cseq_method) = cseq_of(&headers)
        .filter(|(_, _)| cseq_raw.split_whitespace().count() == 2)
        .ok_or_else(|| ParseError::new(format!("bad CSeq {cseq_raw:?}")))?;
    if cseq_num >= 1 << 31 {
        return Err(ParseError::new(format!(
            "bad CSeq: {cseq_num} is not below 2**31"
        )));
    }
    if let Some(mf) = headers.get("Max-Forwards") {
        if mf.trim().parse::<u8>().is_err() {
            return Err(ParseError::new(format!("bad Max-Forwards {mf:?}")));
        }
    }
    let cseq_method = cseq_method.to_string();
    // The start line was checked by check_start_line before rsip saw the message.
    let start = n.start_line;
    if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
        let mut parts = rest.splitn(2, ' ');
        let code: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .filter(|c| (100..700).contains(c))
            .ok_or_else(|| ParseError::new("bad status code"))?;
        return Ok(SipMessage::Response(Response {
            code,
            reason: parts.next().unwrap_or("").to_string(),
            headers,
            body,
        }));
    }
    let mut parts = start.split(' ');
    let (Some(method), Some(uri)) = (parts.next(), parts.next()) else {
        return Err(ParseError::new("malformed request line"));
    };
    if cseq_method != method {
        return Err(ParseError::new(format!(
            "bad CSeq: method {cseq_method} does not match request method {method}"
        )));
    }
    Ok(SipMessage::Request(Request {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:pchat@contoso.com SIP/2.0\r\n\
        Via: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK776asdhds\r\n\
        Via: SIP/2.0/TCP 10.0.0.9:5060;branch=z9hG4bKproxy\r\n\
        Max-Forwards: 70\r\n\
        From: \"User One\" <sip:user1@contoso.com>;tag=1928301774\r\n\
        To: <sip:pchat@contoso.com>\r\n\
        Call-ID: a84b4c76e66710@10.0.0.5\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:user1@10.0.0.5:5060;transport=tcp>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    fn req(raw: &str) -> Request {
        match parse(raw.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("response"),
        }
    }

    #[test]
    fn accessors() {
        let r = req(INVITE);
        assert_eq!(r.method, "INVITE");
        assert_eq!(r.call_id(), Some("a84b4c76e66710@10.0.0.5"));
        assert_eq!(r.cseq(), Some((314159, "INVITE")));
        assert_eq!(r.from_tag(), Some("1928301774"));
        assert_eq!(r.to_tag(), None);
        assert_eq!(r.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(r.from_uri().as_deref(), Some("sip:user1@contoso.com"));
        assert_eq!(
            r.contact_uri().as_deref(),
            Some("sip:user1@10.0.0.5:5060;transport=tcp")
        );
        assert_eq!(&r.body[..], b"v=0\n");
    }

    #[test]
    fn response_echoes_and_round_trips() {
        let r = req(INVITE);
        let resp = response_for(&r, 200, "OK")
            .with_to_tag("abc")
            .with_header("Contact", "<sip:s>");
        let bytes = resp.encode();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK776asdhds\r\nVia: SIP/2.0/TCP 10.0.0.9"));
        assert!(text.contains("To: <sip:pchat@contoso.com>;tag=abc\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let SipMessage::Response(back) = parse(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(back.to_tag(), Some("abc"));
        assert_eq!(
            back.with_to_tag("zzz").to_tag(),
            Some("abc"),
            "an existing tag is kept"
        );
        let again = req(std::str::from_utf8(&r.encode()).unwrap());
        assert_eq!(again, r);
    }

    #[test]
    fn defects_are_named() {
        let cases = [
            (
                INVITE.replace("Call-ID: a84b4c76e66710@10.0.0.5\r\n", ""),
                "missing Call-ID",
            ),
            (
                INVITE.replace("314159 INVITE", "314159 INFO"),
                "does not match",
            ),
            (INVITE.replace("314159 INVITE", "4294967295 INVITE"), "CSeq"),
            (
                INVITE.replace("Max-Forwards: 70", "Max-Forwards: -1"),
                "Max-Forwards",
            ),
            (
                INVITE.replace("Content-Length: 4", "Content-Length: 9"),
                "exceeds body length",
            ),
            (
                INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"),
                "version",
            ),
            (
                INVITE.replace(
                    "INVITE sip:pchat@contoso.com",
                    "INVITE <sip:pchat@contoso.com>",
                ),
                "Request-URI",
            ),
        ];
        for (raw, want) in cases {
            let e = parse(raw.as_bytes()).unwrap_err();
            assert!(e.reason.contains(want), "{want}: got {e}");
        }
    }

    #[test]
    fn headers_set_and_get_all() {
        let mut h = Headers::default();
        h.push("v", "a");
        h.push("Via", "b");
        assert_eq!(h.get_all("VIA").collect::<Vec<_>>(), ["a", "b"]);
        h.set("Via", "c");
        assert_eq!(h.get_all("v").collect::<Vec<_>>(), ["c"]);
        h.remove("via");
        assert_eq!(h.get("Via"), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse(&data);
            let mut f = super::super::Framer::new(512);
            f.push(&data);
            while let Ok(Some(m)) = f.next_frame() { let _ = parse(&m); }
        }

        #[test]
        fn mutated_invite_never_panics(pos in 0usize..600, byte in proptest::prelude::any::<u8>(), cut in 0usize..600) {
            let mut raw = INVITE.as_bytes().to_vec();
            let p = pos % raw.len();
            raw[p] = byte;
            raw.truncate(cut.max(1).min(raw.len()));
            let _ = parse(&raw);
        }
    }
}
