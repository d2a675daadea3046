//! The SIP message every layer works with, parsed once from the frame in a single pass
//! (RFC 3261 7, 25.1): the start line, the headers as spans of one text buffer
//! ([`Headers`]), the body as a slice of the frame ([`parse_frame`]); typed views of
//! the dialog headers ([`Request::typed`]); and the encoders for what we send.

use super::headers::Headers;
use super::lines::read_headers;
use super::normalize::{find_byte, is_token_byte, slot, trim};
pub use super::typed::Method;

use super::typed::{split_byte, tag_of, CSeq, NameAddr, Typed, Via};
use bytes::Bytes;

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

/// A SIP request (RFC 3261 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method, e.g. [`Method::Invite`] (case-sensitive, RFC 3261 7.1); compares with `&str`.
    pub method: Method,
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

macro_rules! dialog_accessors {
    () => {
        /// Call-ID value.
        pub fn call_id(&self) -> Option<&str> {
            self.headers.get_slot(slot::CALL_ID)
        }
        /// CSeq (number, method).
        pub fn cseq(&self) -> Option<(u32, &str)> {
            let c = CSeq::parse(self.headers.get_slot(slot::CSEQ)?)?;
            Some((c.num, c.method))
        }
        /// From tag.
        pub fn from_tag(&self) -> Option<&str> {
            self.headers.get_slot(slot::FROM).and_then(tag_of)
        }
        /// To tag.
        pub fn to_tag(&self) -> Option<&str> {
            self.headers.get_slot(slot::TO).and_then(tag_of)
        }
        /// The URI inside From, without display name or header parameters.
        pub fn from_uri(&self) -> Option<&str> {
            Some(NameAddr::parse(self.headers.get_slot(slot::FROM)?)?.uri)
        }
        /// The URI inside To.
        pub fn to_uri(&self) -> Option<&str> {
            Some(NameAddr::parse(self.headers.get_slot(slot::TO)?)?.uri)
        }
        /// The URI of the first Contact.
        pub fn contact_uri(&self) -> Option<&str> {
            Some(NameAddr::parse(self.headers.get_slot(slot::CONTACT)?)?.uri)
        }
        /// Content-Type value.
        pub fn content_type(&self) -> Option<&str> {
            self.headers.get_slot(slot::CONTENT_TYPE)
        }
        /// `branch` parameter of the top Via.
        pub fn branch(&self) -> Option<&str> {
            self.headers
                .get_slot(slot::VIA)?
                .split(';')
                .skip(1)
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("branch").then(|| v.trim())
                })
        }
        /// The dialog headers typed (top Via, From, To, Call-ID, CSeq, first Contact),
        /// borrowed from the message; `None` when one is missing or malformed (never
        /// for a message [`parse`] accepted).
        pub fn typed(&self) -> Option<Typed<'_>> {
            self.headers.cached_typed().or_else(|| self.typed_fresh())
        }

        /// [`Self::typed`] read from the header values (what the parser keeps).
        pub(crate) fn typed_fresh(&self) -> Option<Typed<'_>> {
            let [via, from, to, call_id, cseq, contact] = self.headers.first_of_slots([
                slot::VIA,
                slot::FROM,
                slot::TO,
                slot::CALL_ID,
                slot::CSEQ,
                slot::CONTACT,
            ]);
            Some(Typed {
                via: Via::parse(via?)?,
                from: NameAddr::parse(from?)?,
                to: NameAddr::parse(to?)?,
                call_id: call_id?,
                cseq: CSeq::parse(cseq?)?,
                contact: contact.and_then(NameAddr::parse),
            })
        }
    };
}

impl Request {
    dialog_accessors!();

    /// Encodes the request: request line, headers in order, `Content-Length` computed
    /// from the body (any given one is replaced), empty line, body.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(256 + self.headers.text_len() + self.body.len());
        for part in [self.method.as_str(), " ", &self.uri, " SIP/2.0\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
        self.headers.write(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }
}

impl Response {
    dialog_accessors!();

    /// Encodes the response (Content-Length computed from the body). A To without a tag
    /// gets one first, except in a 100 (RFC 3261 8.2.6.2): the response ends a
    /// transaction that opened no dialog, and its tag is [`transaction_tag`].
    pub fn encode(&self) -> Bytes {
        match self.untagged_to() {
            Some(to) if self.code != 100 => {
                let mut tagged = self.clone();
                let tag = transaction_tag(
                    self.headers.get_slot(slot::CALL_ID).unwrap_or(""),
                    self.headers.get_slot(slot::FROM).unwrap_or(""),
                    self.headers.get_slot(slot::CSEQ).unwrap_or(""),
                    self.headers.get("Via").unwrap_or(""),
                );
                tagged.headers.set("To", format!("{to};tag={tag}"));
                tagged.encode_as_is()
            }
            _ => self.encode_as_is(),
        }
    }

    /// The To value when it has no tag.
    fn untagged_to(&self) -> Option<&str> {
        self.headers
            .get_slot(slot::TO)
            .filter(|to| tag_of(to).is_none())
    }

    /// Encodes the response exactly as it is.
    fn encode_as_is(&self) -> Bytes {
        use std::io::Write as _;
        let mut out = Vec::with_capacity(256 + self.headers.text_len() + self.body.len());
        let _ = write!(out, "SIP/2.0 {} {}\r\n", self.code, self.reason);
        self.headers.write(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }

    /// Adds `;tag=<tag>` to To unless it already has a tag (RFC 3261 8.2.6.2).
    pub fn with_to_tag(mut self, tag: &str) -> Response {
        if let Some(to) = self.headers.get_slot(slot::TO) {
            if tag_of(to).is_none() {
                let v = format!("{to};tag={tag}");
                self.headers.set("To", v);
            }
        }
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, name: &str, value: impl AsRef<str>) -> Response {
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
    for (name, v) in ECHOED
        .into_iter()
        .zip(req.headers.first_of_slots(ECHOED_SLOTS))
    {
        if let Some(v) = v {
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

/// The To tag of a response that opens no dialog (an error, or a 2xx to OPTIONS or
/// REGISTER), RFC 3261 8.2.6.2: `t` and 8 hex digits of an FNV-1a hash of the request's
/// Call-ID, From, CSeq and top Via values, so a retransmitted request gets the same tag
/// and no seeded id is drawn. Dialog tags are hex digits only ([`crate::ids`]): a tag
/// that starts with `t` is never a dialog's (the reader absorbs ACKs carrying one).
pub fn transaction_tag(call_id: &str, from: &str, cseq: &str, via: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for part in [call_id, from, cseq, via] {
        for b in part.trim().bytes().chain([0u8]) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    format!("t{h:08x}")
}

/// Whether `tag` is a [`transaction_tag`] (never a dialog's).
pub fn is_transaction_tag(tag: &str) -> bool {
    tag.starts_with('t')
}

/// The headers a response copies from its request besides Via (RFC 3261 8.2.6.2).
const ECHOED: [&str; 4] = ["From", "To", "Call-ID", "CSeq"];
const ECHOED_SLOTS: [u8; 4] = [slot::FROM, slot::TO, slot::CALL_ID, slot::CSEQ];

/// `response_for(req, code, reason).encode()`, written straight into one buffer (the
/// same bytes, one allocation): what the simulator's client answers each relay with.
pub fn encode_response_for(req: &Request, code: u16, reason: &str) -> Bytes {
    use std::io::Write as _;
    if code != 100 && req.to_tag().is_none() {
        // The To gets a transaction tag (`Response::encode`): rare, the general path.
        return response_for(req, code, reason).encode();
    }
    let mut out = Vec::with_capacity(64 + req.headers.text_len());
    let _ = write!(out, "SIP/2.0 {code} {reason}\r\n");
    let vias = req.headers.iter().filter(|(n, _)| *n == "Via");
    let rest = ECHOED
        .into_iter()
        .zip(req.headers.first_of_slots(ECHOED_SLOTS))
        .filter_map(|(n, v)| Some((n, v?)));
    for (name, value) in vias.chain(rest) {
        for part in [name, ": ", value, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Bytes::from(out)
}

/// Start-line checks, so the reason is precise: `Method SP Request-URI SP SIP/2.0`
/// with single spaces and no `<>` around the URI (RFC 3261 7.1, 25.1), or
/// `SIP/2.0 SP 3DIGIT SP Reason` (7.2). Returns the method and the Request-URI of a
/// request (two empty strings for a status line).
fn check_start_line(start: &str) -> Result<(&str, &str), ParseError> {
    if let Some(rest) = start.strip_prefix("SIP/") {
        let version = split_byte(rest, b' ').map_or(rest, |(v, _)| v);
        if version != "2.0" {
            return Err(ParseError::new(format!(
                "unsupported SIP version SIP/{version}"
            )));
        }
        return Ok(("", ""));
    }
    // Exactly three parts between single spaces (`start.split(' ')`).
    let parts = split_byte(start, b' ').and_then(|(method, rest)| {
        let (uri, version) = split_byte(rest, b' ')?;
        find_byte(b' ', version.as_bytes())
            .is_none()
            .then_some((method, uri, version))
    });
    let Some((method, uri, version)) = parts else {
        return Err(ParseError::new(format!(
            "malformed request line {:?}: expected Method SP Request-URI SP SIP/2.0",
            start.chars().take(80).collect::<String>()
        )));
    };
    if uri.is_empty() {
        return Err(ParseError::new("malformed request line: empty Request-URI"));
    }
    if memchr::memchr2(b'<', b'>', uri.as_bytes()).is_some() {
        return Err(ParseError::new("Request-URI enclosed in <>"));
    }
    if version != "SIP/2.0" {
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
    Ok((method, uri))
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

/// What rsip 0.4.0 is shown of an out-of-dialog request: the normalized header
/// section (one header per line, long names, values as parsed) under a request line
/// `<method> sip:stand-in@invalid SIP/2.0`, then the body. RFC 3261 25.1 allows any
/// token as a method (`extension-method`, answered 501) but rsip rejects methods it
/// does not know: such a method is replaced by `OPTIONS` in the request line and the
/// CSeq (our view keeps the real one).
fn for_rsip(method: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let known = RSIP_METHODS.contains(&method);
    let stand_in = if known { method } else { "OPTIONS" };
    let mut out = Vec::with_capacity(headers.text_len() + body.len() + 64);
    for part in [stand_in, " ", STAND_IN_URI, " SIP/2.0\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    for (name, value) in headers.iter() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        if name == "CSeq" && !known {
            out.extend_from_slice(value.replacen(method, "OPTIONS", 1).as_bytes());
        } else {
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn rsip_err(what: &str, e: rsip::Error) -> ParseError {
    let text = e.to_string();
    let text: String = text.chars().take(120).collect();
    ParseError::new(format!(
        "malformed {what}: {}",
        text.replace(['\r', '\n'], " ")
    ))
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// The offset of the first `\r\n\r\n` in `raw` (RFC 3261 7: the end of the header
/// section): one SIMD search with a searcher built once, not one `memchr` call per line.
fn find_head_end(raw: &[u8]) -> Option<usize> {
    static HEAD_END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    HEAD_END.find(raw)
}

/// Parses one framed message, copying its body; see [`parse_frame`], which borrows the
/// body from the frame instead.
pub fn parse(raw: &[u8]) -> Result<SipMessage, ParseError> {
    parse_with(raw, |r| Bytes::copy_from_slice(&raw[r]))
}

/// Parses one framed message (the [`super::Framer`]'s output) in a single pass: the
/// header section is read once into [`Headers`] (values borrowed from one copy of it),
/// the body is a slice of `frame` (no copy). Then the checks of RFC 3261 8.1.1 and
/// 8.2: Via, From, To, Call-ID and CSeq present and well-formed (typed views of
/// `super::typed`), CSeq number below 2^31 and its method equal to the request's,
/// Max-Forwards numeric, SIP version 2.0 (else 505), a SIP/SIPS Request-URI (else
/// 416), single-instance headers once, Content-Length not larger than the body (a
/// longer body is cut to Content-Length). Out-of-dialog requests (no To tag: the
/// sign-in path) are also given to rsip 0.4.0 (docs/rsip-notes.md). Errors name the
/// defect.
pub fn parse_frame(frame: &Bytes) -> Result<SipMessage, ParseError> {
    parse_with(frame, |r| frame.slice(r))
}

fn parse_with(
    raw: &[u8],
    body_of: impl FnOnce(std::ops::Range<usize>) -> Bytes,
) -> Result<SipMessage, ParseError> {
    let head_end = find_head_end(raw)
        .ok_or_else(|| ParseError::new("no empty line after the header section"))?;
    let head = std::str::from_utf8(&raw[..head_end])
        .map_err(|_| ParseError::new("header section is not valid UTF-8"))?;
    let (start, mut headers) = read_headers(head)?;
    let (first, second) = check_start_line(start)?;
    let is_response = start.starts_with("SIP/");
    if !is_response {
        super::validate::request_uri(second)?;
    }
    let mut from_to = [None; 2];
    super::validate::flagged_headers(headers.iter_flagged(), &mut from_to)?;
    let body_offset = head_end + 4;
    let dialog = headers.first_of_slots(DIALOG_SLOTS);
    let [_, _, to, _, _, content_length, _, _] = dialog;
    let to_tag = to.and_then(tag_of);
    // Out-of-dialog requests (the sign-in path: a few per session) also go through
    // rsip; in-dialog requests and responses (per message: posts, relays, 2xx) are
    // checked by our code only (docs/rsip-notes.md).
    let rsip_too = !is_response && to_tag.is_none();
    if !is_response && (first.is_empty() || !first.bytes().all(is_token_byte)) {
        return Err(ParseError::new(format!(
            "malformed message: invalid method {:?}",
            clip(first)
        )));
    }
    if rsip_too {
        rsip::Request::try_from(for_rsip(first, &headers, &raw[body_offset..]).as_slice())
            .map_err(|e| rsip_err("message", e))?;
    }
    let mut body_len = raw.len() - body_offset;
    if let Some(cl) = content_length {
        let len: usize = trim(cl)
            .parse()
            .map_err(|_| ParseError::new(format!("bad Content-Length {cl:?}")))?;
        if len > body_len {
            return Err(ParseError::new(format!(
                "Content-Length {len} exceeds body length {body_len}"
            )));
        }
        body_len = len;
    }
    let (via, cseq) = check_dialog_headers(dialog, rsip_too)?;
    if !is_response && cseq.method != first {
        return Err(ParseError::new(format!(
            "bad CSeq: method {} does not match request method {first}",
            cseq.method
        )));
    }
    let spans = typed_of(via, cseq, dialog, from_to).and_then(|t| headers.spans_of_typed(&t));
    headers.keep_typed(spans);
    if is_response {
        let (code, reason) = status_of(start)?;
        return Ok(SipMessage::Response(Response {
            code,
            reason: reason.to_string(),
            headers,
            body: body_of(body_offset..body_offset + body_len),
        }));
    }
    Ok(SipMessage::Request(Request {
        method: Method::from_name(first),
        uri: second.to_string(),
        headers,
        body: body_of(body_offset..body_offset + body_len),
    }))
}

/// The headers [`parse_frame`] reads, looked up in one pass: the five every request
/// carries (RFC 3261 8.1.1, in this order), then Content-Length, Max-Forwards and
/// Contact.
const DIALOG_HEADERS: [&str; 8] = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Content-Length",
    "Max-Forwards",
    "Contact",
];

/// The slots of [`DIALOG_HEADERS`] (`normalize::slot`).
const DIALOG_SLOTS: [u8; 8] = [
    slot::VIA,
    slot::FROM,
    slot::TO,
    slot::CALL_ID,
    slot::CSEQ,
    slot::CONTENT_LENGTH,
    slot::MAX_FORWARDS,
    slot::CONTACT,
];

/// The typed view of a message whose dialog headers (`dialog`, as [`DIALOG_SLOTS`])
/// passed [`check_dialog_headers`] (which read `via` and `cseq`): what
/// `Request::typed` gives, built once here. `None` when From or To is not a
/// name-addr / addr-spec [`NameAddr::parse`] reads. `from_to`: From and To as the
/// checks already read them, if they did.
fn typed_of<'a>(
    via: Via<'a>,
    cseq: CSeq<'a>,
    dialog: [Option<&'a str>; DIALOG_HEADERS.len()],
    from_to: [Option<NameAddr<'a>>; 2],
) -> Option<Typed<'a>> {
    let [from, to] = from_to;
    Some(Typed {
        via,
        from: from.or_else(|| NameAddr::parse(dialog[1]?))?,
        to: to.or_else(|| NameAddr::parse(dialog[2]?))?,
        call_id: dialog[3]?,
        cseq,
        contact: dialog[7].and_then(NameAddr::parse),
    })
}

/// Status code (100-699) and reason phrase of a status line (RFC 3261 7.2).
fn status_of(start: &str) -> Result<(u16, &str), ParseError> {
    let rest = start.strip_prefix("SIP/2.0 ").unwrap_or("");
    let mut parts = rest.splitn(2, ' ');
    let code: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..700).contains(c))
        .ok_or_else(|| ParseError::new("bad status code"))?;
    Ok((code, parts.next().unwrap_or("")))
}

/// RFC 3261 8.1.1: Via, From, To, Call-ID and CSeq present and not empty; the top Via
/// well-formed (rsip's typed Via as well when `rsip_too`); CSeq `number method` with the
/// number below 2^31; Max-Forwards a number 0-255.
fn check_dialog_headers<'a>(
    dialog: [Option<&'a str>; DIALOG_HEADERS.len()],
    rsip_too: bool,
) -> Result<(Via<'a>, CSeq<'a>), ParseError> {
    for (name, value) in DIALOG_HEADERS.iter().zip(dialog).take(5) {
        match value {
            None => return Err(ParseError::new(format!("missing {name} header"))),
            Some(v) if trim(v).is_empty() => {
                return Err(ParseError::new(format!("empty {name} header")))
            }
            Some(_) => {}
        }
    }
    // Only the top Via is ours to interpret (RFC 3261 8.2.6.2 copies the others as
    // they are); lower ones may name transports nobody knows (RFC 4475 transports).
    let [top_via, _, _, _, cseq_raw, _, _, _] = dialog.map(Option::unwrap_or_default);
    if rsip_too {
        use rsip::headers::untyped::ToTypedHeader;
        use rsip::headers::UntypedHeader;
        rsip::headers::Via::new(top_via)
            .typed()
            .map_err(|e| rsip_err("Via", e))?;
    }
    let Some(via) = Via::parse(top_via) else {
        return Err(ParseError::new(format!(
            "malformed Via {:?}",
            clip(top_via)
        )));
    };
    // From and To are checked by validate::address (RFC 3261 25.1 name-addr /
    // addr-spec): rsip's typed From/To refuse legal values (RFC 4475 3.1.1.2 display
    // names and quoted parameter values, 3.3.4 non-SIP URIs), docs/rsip-notes.md.
    let cseq =
        CSeq::parse(cseq_raw).ok_or_else(|| ParseError::new(format!("bad CSeq {cseq_raw:?}")))?;
    if cseq.num >= 1 << 31 {
        return Err(ParseError::new(format!(
            "bad CSeq: {} is not below 2**31",
            cseq.num
        )));
    }
    if let Some(mf) = dialog[6] {
        if trim(mf).parse::<u8>().is_err() {
            return Err(ParseError::new(format!("bad Max-Forwards {mf:?}")));
        }
    }
    Ok((via, cseq))
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
        assert_eq!(r.from_uri(), Some("sip:user1@contoso.com"));
        assert_eq!(
            r.contact_uri(),
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
    fn direct_response_encoding_matches() {
        let r = req(&INVITE.replace("Via: SIP/2.0/TCP 10.0.0.9", "v: SIP/2.0/TCP 10.0.0.9"));
        assert_eq!(
            encode_response_for(&r, 487, "Request Terminated"),
            response_for(&r, 487, "Request Terminated").encode()
        );
        let t = r.typed().unwrap();
        assert_eq!(
            (t.cseq.num, t.from.tag(), t.to.tag()),
            (314159, Some("1928301774"), None)
        );
        assert_eq!(t.via.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(r.method, Method::Invite);
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
            if let Ok(SipMessage::Request(r)) = parse(&raw) {
                proptest::prop_assert_eq!(r.typed(), r.typed_fresh());
            }
        }
    }

    #[test]
    fn the_kept_typed_view_follows_changes() {
        let mut r = req(INVITE);
        assert!(r.headers.cached_typed().is_some());
        assert_eq!(r.typed(), r.typed_fresh());
        r.headers.set("To", "<sip:x@y>;tag=9");
        assert!(r.headers.cached_typed().is_none());
        assert_eq!(r.typed().unwrap().to.tag(), Some("9"));
        r.headers.remove("Contact");
        assert_eq!(r.typed().unwrap().contact, None);
        r.headers.push("Contact", "<sip:z>");
        assert_eq!(r.typed().unwrap().contact.unwrap().uri, "sip:z");
    }
}
