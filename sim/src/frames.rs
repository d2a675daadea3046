//! Reading SIP messages off a connection, shared by the scenario client
//! ([`crate::client`]) and the load generator ([`crate::load`]): one read's bytes go into
//! the server's [`Framer`] (Content-Length framing, RFC 3261 18.3) and every message they
//! complete comes out.

use bytes::Bytes;
use pchat_server::sip::{Framer, FramingError};

/// What one read from a connection gave.
#[derive(Debug)]
pub struct Read {
    /// The messages the read completed, in order (maybe none).
    pub frames: Vec<Bytes>,
    /// Why the connection is over, after `frames`; `None` while it goes on.
    pub end: Option<End>,
}

/// How a connection ended.
#[derive(Debug)]
pub enum End {
    /// End of stream or a read error.
    Closed,
    /// The peer's bytes do not frame as SIP (the connection is unusable).
    Bad(FramingError),
}

/// Feeds the outcome of one `read` into `buf` (`Ok(n)`: `buf[..n]` arrived) to `framer`
/// and takes out every message it completes. `Ok(0)` and an error end the connection.
pub fn after_read(read: std::io::Result<usize>, buf: &[u8], framer: &mut Framer) -> Read {
    let mut frames = Vec::new();
    let n = match read {
        Ok(0) | Err(_) => {
            return Read {
                frames,
                end: Some(End::Closed),
            }
        }
        Ok(n) => n,
    };
    framer.push(&buf[..n]);
    loop {
        match framer.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return Read { frames, end: None },
            Err(e) => {
                return Read {
                    frames,
                    end: Some(End::Bad(e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_messages_keeps_partial_and_reports_the_end() {
        let mut framer = Framer::new(1 << 10);
        let msg = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nhi";
        let mut two = msg.to_vec();
        two.extend_from_slice(&msg[..10]);
        let read = after_read(Ok(two.len()), &two, &mut framer);
        assert_eq!(read.frames.len(), 1);
        assert_eq!(&read.frames[0][..], &msg[..]);
        assert!(read.end.is_none());
        let rest = &msg[10..];
        let read = after_read(Ok(rest.len()), rest, &mut framer);
        assert_eq!(read.frames.len(), 1);
        assert!(matches!(
            after_read(Ok(0), &[], &mut framer).end,
            Some(End::Closed)
        ));
        let bad = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n";
        let read = after_read(Ok(bad.len()), bad, &mut framer);
        assert!(read.frames.is_empty());
        assert!(matches!(read.end, Some(End::Bad(_))));
    }
}
