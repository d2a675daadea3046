//! Stream framing for SIP over TCP (RFC 3261 section 18.3): a message is its header
//! section up to the first empty line, plus exactly `Content-Length` bytes of body.

use bytes::{Buf, Bytes, BytesMut};

/// Why a stream can no longer be framed. The caller closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A message on a stream has no Content-Length (mandatory over TCP, RFC 3261 18.3).
    #[error("message without Content-Length on a stream transport (RFC 3261 18.3)")]
    MissingContentLength,
    /// Content-Length is not `1*DIGIT` (RFC 3261 20.14; a sign, as in `+5` or `-999`,
    /// is refused: RFC 4475 3.1.2.3).
    #[error("bad Content-Length {0:?}")]
    BadContentLength(String),
    /// Several Content-Length headers with different values (RFC 4475 3.3.9): which one
    /// frames the message is ambiguous, so the stream cannot be framed (a request
    /// smuggling shape behind a front end).
    #[error("conflicting Content-Length values {0:?}")]
    ConflictingContentLength(Vec<String>),
    /// The header section exceeds the limit, in bytes (no empty line within it).
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A complete header section whose Content-Length makes the message exceed the
    /// limit. Recoverable: the framer skips the body as it arrives, so the caller
    /// answers 413 (echoing `head`) and goes on reading the connection.
    #[error("message of {len} bytes larger than {limit} bytes")]
    BodyTooLarge {
        /// The header section, up to and including its empty line.
        head: Bytes,
        /// The message's length (header section + Content-Length), in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
}

impl FramingError {
    /// Whether the stream can still be framed after this error (only
    /// [`FramingError::BodyTooLarge`]); after any other the connection must close.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, FramingError::BodyTooLarge { .. })
    }

    /// The SIP status for this error: 413 for a message over the limit, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            FramingError::TooLarge { .. } | FramingError::BodyTooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// Accumulates bytes read from a connection and yields whole messages.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    max: usize,
    /// Body bytes of a refused (too large) message still to be dropped as they arrive.
    discard: usize,
}

impl Framer {
    /// A framer that refuses messages (headers + body) over `max_message_bytes` bytes.
    pub fn new(max_message_bytes: usize) -> Framer {
        Framer {
            // Grown as reads arrive: an idle connection (most of 19,000 signed-in
            // sessions) keeps about one read's worth, not 8 KiB.
            buf: BytesMut::new(),
            max: max_message_bytes.max(64),
            discard: 0,
        }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Drops the buffer's allocation when nothing is buffered, so an idle connection
    /// holds none (frames already returned keep their own bytes).
    pub fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Bytes buffered and not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The buffered start of the next message, at most the limit in bytes: what a
    /// caller echoes headers from when answering a framing error.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.buf.len().min(self.max)]
    }

    /// The next whole message (header section and body), `Ok(None)` if more bytes are
    /// needed. Errors: see [`FramingError`]; after an error the stream is unusable.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FramingError> {
        if self.discard > 0 {
            let n = self.discard.min(self.buf.len());
            self.buf.advance(n);
            self.discard -= n;
            if self.discard > 0 {
                return Ok(None);
            }
        }
        // Keep-alive pings (CRLF or double CRLF) between messages.
        while self.buf.first().is_some_and(|b| *b == b'\r' || *b == b'\n') {
            self.buf.advance(1);
        }
        let Some(head_end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > self.max {
                return Err(FramingError::TooLarge { limit: self.max });
            }
            return Ok(None);
        };
        let body_start = head_end + 4;
        if body_start > self.max {
            // The same error as when the header section arrives in smaller reads.
            return Err(FramingError::TooLarge { limit: self.max });
        }
        let len = content_length(&self.buf[..head_end])?;
        let total = body_start.saturating_add(len);
        if total > self.max {
            let head = self.buf.split_to(body_start).freeze();
            self.discard = len;
            return Err(FramingError::BodyTooLarge {
                head,
                len: total,
                limit: self.max,
            });
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total).freeze()))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Content-Length of a header section (long or compact `l` form, any case, possibly on
/// a folded line). Errors: missing, not `1*DIGIT`, or several different values.
/// A value too large for `usize` reads as `usize::MAX` (then over any limit).
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    match content_length_fast(head) {
        Some(n) => Ok(n),
        None => content_length_slow(head),
    }
}

/// White space as `str::trim` sees it, for ASCII bytes.
fn is_trim_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim_bytes(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_trim_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_trim_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// [`content_length_slow`]'s answer for the common case, without allocating: an ASCII
/// header section whose Content-Length headers are each on one line, `1*DIGIT` of at
/// most 18 digits, all equal. `None` for anything else (missing, folded, malformed,
/// conflicting, non-ASCII): the slow path then decides and names the error.
fn content_length_fast(head: &[u8]) -> Option<usize> {
    if !head.is_ascii() {
        return None;
    }
    let mut found: Option<usize> = None;
    let mut prev_was_cl = false;
    // Lines as `str::split("\r\n").skip(1)` gives them.
    let mut start = None::<usize>;
    let ends = memchr::memmem::find_iter(head, b"\r\n").chain(std::iter::once(head.len()));
    for end in ends {
        let Some(s) = start.replace(end + 2) else {
            continue; // the start line
        };
        let line = &head[s..end];
        if prev_was_cl && matches!(line.first(), Some(b' ' | b'\t')) {
            return None; // a folded Content-Length
        }
        prev_was_cl = false;
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim_bytes(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        prev_was_cl = true;
        let value = trim_bytes(&line[colon + 1..]);
        if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = value
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

/// The general case of [`content_length`] (also what names its errors).
fn content_length_slow(head: &[u8]) -> Result<usize, FramingError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").skip(1).peekable();
    let mut values: Vec<String> = Vec::new();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let mut value = value.trim().to_string();
            while let Some(cont) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push_str(cont.trim());
                lines.next();
            }
            values.push(value);
        }
    }
    if values.is_empty() {
        return Err(FramingError::MissingContentLength);
    }
    let mut parsed = Vec::with_capacity(values.len());
    for v in &values {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FramingError::BadContentLength(v.clone()));
        }
        parsed.push(v.parse::<usize>().unwrap_or(usize::MAX));
    }
    if parsed.iter().any(|n| *n != parsed[0]) {
        return Err(FramingError::ConflictingContentLength(values));
    }
    Ok(parsed[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
    const B: &[u8] = b"OPTIONS sip:c@d SIP/2.0\r\nl:0\r\n\r\n";

    /// What a fresh framer of `limit` bytes makes of `data` first.
    fn first_frame(limit: usize, data: &[u8]) -> Result<Option<Bytes>, FramingError> {
        let mut f = Framer::new(limit);
        f.push(data);
        f.next_frame()
    }

    #[test]
    fn several_messages_in_one_push_with_keepalives() {
        let mut f = Framer::new(1024);
        f.push(b"\r\n\r\n");
        f.push(A);
        f.push(b"\r\n");
        f.push(B);
        assert_eq!(f.next_frame().unwrap().unwrap(), Bytes::from_static(A));
        assert_eq!(f.next_frame().unwrap().unwrap(), Bytes::from_static(B));
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn byte_by_byte() {
        let mut f = Framer::new(1024);
        let mut got = Vec::new();
        for b in A.iter().chain(B) {
            f.push(&[*b]);
            while let Some(m) = f.next_frame().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![Bytes::from_static(A), Bytes::from_static(B)]);
    }

    #[test]
    fn fast_and_slow_content_length_agree() {
        let heads: &[&[u8]] = &[
            b"INFO x SIP/2.0\r\nContent-Length: 12\r\nl:12",
            b"INFO x SIP/2.0\r\nContent-Length: 12\r\nl:13",
            b"INFO x SIP/2.0\r\nVia: a\r\n",
            b"INFO x SIP/2.0\r\nContent-Length:\r\n 12",
            b"INFO x SIP/2.0\r\nX: y\r\n l: 7",
            b"INFO x SIP/2.0\r\n L \x0b: 007 \t",
            b"Content-Length: 5\r\nl: 4",
            b"INFO x SIP/2.0\r\nl: 99999999999999999999999",
            b"INFO x SIP/2.0\r\nl: +1",
            "INFO x SIP/2.0\r\nl: 5\u{2003}".as_bytes(),
        ];
        for h in heads {
            let slow = content_length_slow(h);
            if let Some(n) = content_length_fast(h) {
                assert_eq!(slow, Ok(n), "{}", String::from_utf8_lossy(h));
            }
            assert_eq!(content_length(h), slow);
        }
        assert_eq!(content_length_fast(heads[0]), Some(12));
        assert_eq!(content_length_fast(heads[5]), Some(7));
    }

    proptest::proptest! {
        #[test]
        fn content_length_fast_path_never_disagrees(data in proptest::collection::vec(proptest::sample::select(b"lL: 0123\r\n\t+-Content-Lngh\x0bx".to_vec()), 0..80)) {
            if let Some(n) = content_length_fast(&data) {
                proptest::prop_assert_eq!(content_length_slow(&data), Ok(n));
            }
        }
    }

    #[test]
    fn folded_and_cased_content_length() {
        let m = first_frame(
            1024,
            b"INFO sip:x SIP/2.0\r\ncontent-LENGTH :\r\n 2\r\n\r\nhi",
        );
        assert!(m.unwrap().unwrap().ends_with(b"hi"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            first_frame(1024, b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n"),
            Err(FramingError::MissingContentLength)
        );
        assert!(matches!(
            first_frame(1024, b"OPTIONS sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n"),
            Err(FramingError::BadContentLength(_))
        ));
        assert_eq!(
            first_frame(100, &[b'a'; 200]),
            Err(FramingError::TooLarge { limit: 100 })
        );
        let huge = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert!(first_frame(100, huge).is_err());
        for signed in ["+5", "-0", " 5 5", "0x5", ""] {
            let m = format!("OPTIONS sip:x SIP/2.0\r\nl: {signed}\r\n\r\nhello");
            let e = first_frame(1024, m.as_bytes()).unwrap_err();
            assert!(
                matches!(e, FramingError::BadContentLength(_)),
                "{signed:?}: {e:?}"
            );
            assert!(!e.is_recoverable());
        }
    }

    #[test]
    fn conflicting_content_lengths_are_a_framing_error_equal_ones_are_not() {
        let two = b"INFO sip:x SIP/2.0\r\nContent-Length: 5\r\nl: 0\r\n\r\nhello";
        let e = first_frame(1024, two).unwrap_err();
        assert_eq!(
            e,
            FramingError::ConflictingContentLength(vec!["5".into(), "0".into()])
        );
        assert_eq!(e.status(), 400);
        let equal = b"INFO sip:x SIP/2.0\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\nhello";
        assert!(first_frame(1024, equal)
            .unwrap()
            .unwrap()
            .ends_with(b"hello"));
    }

    #[test]
    fn a_body_over_the_limit_is_skipped_and_the_stream_goes_on() {
        let mut f = Framer::new(100);
        let head = b"INFO sip:x SIP/2.0\r\nContent-Length: 150\r\n\r\n";
        f.push(head);
        f.push(&[b'z'; 60]);
        match f.next_frame() {
            Err(e @ FramingError::BodyTooLarge { .. }) => {
                assert!(e.is_recoverable());
                assert_eq!(e.status(), 413);
                let FramingError::BodyTooLarge { head: h, len, .. } = e else {
                    unreachable!()
                };
                assert_eq!(&h[..], &head[..]);
                assert_eq!(len, head.len() + 150);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.next_frame(), Ok(None));
        f.push(&[b'z'; 90]);
        f.push(B);
        assert_eq!(f.next_frame().unwrap().unwrap(), Bytes::from_static(B));
    }
}
