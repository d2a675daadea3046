//! Stream framing for SIP over TCP (RFC 3261 section 18.3): a message is its header
//! section up to the first empty line, plus exactly `Content-Length` bytes of body.

use bytes::{Buf, Bytes, BytesMut};

/// Why a stream can no longer be framed. The caller closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A message on a stream has no Content-Length (mandatory over TCP, RFC 3261 18.3).
    #[error("message without Content-Length on a stream transport (RFC 3261 18.3)")]
    MissingContentLength,
    /// Content-Length is not a decimal number of bytes.
    #[error("bad Content-Length {0:?}")]
    BadContentLength(String),
    /// The header section or the whole message exceeds the limit, in bytes.
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Accumulates bytes read from a connection and yields whole messages.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    max: usize,
}

impl Framer {
    /// A framer that refuses messages (headers + body) over `max_message_bytes` bytes.
    pub fn new(max_message_bytes: usize) -> Framer {
        Framer {
            buf: BytesMut::with_capacity(8 * 1024),
            max: max_message_bytes.max(64),
        }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message (header section and body), `Ok(None)` if more bytes are
    /// needed. Errors: see [`FramingError`]; after an error the stream is unusable.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FramingError> {
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
        let len = content_length(&self.buf[..head_end])?;
        let total = body_start
            .checked_add(len)
            .filter(|t| *t <= self.max)
            .ok_or(FramingError::TooLarge { limit: self.max })?;
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total).freeze()))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Content-Length of a header section (long or compact `l` form, any case, possibly on
/// a folded line). Errors: missing or not a number.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").skip(1).peekable();
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
            return value
                .parse::<usize>()
                .map_err(|_| FramingError::BadContentLength(value.clone()));
        }
    }
    Err(FramingError::MissingContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
    const B: &[u8] = b"OPTIONS sip:c@d SIP/2.0\r\nl:0\r\n\r\n";

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
    fn folded_and_cased_content_length() {
        let mut f = Framer::new(1024);
        f.push(b"INFO sip:x SIP/2.0\r\ncontent-LENGTH :\r\n 2\r\n\r\nhi");
        assert!(f.next_frame().unwrap().unwrap().ends_with(b"hi"));
    }

    #[test]
    fn errors() {
        let mut f = Framer::new(1024);
        f.push(b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::MissingContentLength));
        let mut f = Framer::new(1024);
        f.push(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(
            f.next_frame(),
            Err(FramingError::BadContentLength(_))
        ));
        let mut f = Framer::new(100);
        f.push(&[b'a'; 200]);
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge { limit: 100 }));
        let mut f = Framer::new(100);
        f.push(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert!(f.next_frame().is_err());
    }
}
