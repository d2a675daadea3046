//! Load shedding at the door instead of dropping shared connections (issue 18).
//!
//! Every connection's outgoing messages wait in an unbounded queue whose length and
//! bytes are counted here, per connection and server-wide. Nothing is refused at the
//! queue: a front end or SIPp carries thousands of dialogs on one connection, and
//! dropping it for a full queue drops them all. Instead, while a connection's backlog
//! is above `[sip] send_queue` messages, or the server's above
//! `[sip] server_backlog_bytes`, the reader answers that connection's new posts and
//! commands (INFO) `503` + `Retry-After` (RFC 3261 21.5.4) until the backlog drains.
//! A connection is closed only when its peer has read nothing for
//! `[sip] write_stall_timeout_s` (the writer's socket write made no progress).
//!
//! Memory bound: the server-wide backlog stops growing from new posts once past the
//! watermark; what is already admitted (at most one batch of `MAX_BATCH` inputs and
//! the core queue) still fans out, so the bound is about
//! `server_backlog_bytes + (core_queue + MAX_BATCH) x room size x relay size`, and a
//! stalled peer's share is freed after `write_stall_timeout_s`.

use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// A message for a connection: SIP head and body, written back to back.
pub(crate) type Outgoing = (Bytes, Bytes);

/// Server-wide backlog: bytes queued for all connections and not yet written.
#[derive(Debug)]
pub(crate) struct Backlog {
    bytes: AtomicUsize,
    high_bytes: usize,
}

impl Backlog {
    /// A server-wide account with its watermark in bytes.
    pub(crate) fn new(high_bytes: usize) -> Arc<Backlog> {
        Arc::new(Backlog {
            bytes: AtomicUsize::new(0),
            high_bytes: high_bytes.max(1),
        })
    }

    /// Bytes queued server-wide.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// One connection's account, shared by its reader, its writer and the core task.
#[derive(Debug)]
struct ConnState {
    msgs: AtomicUsize,
    bytes: AtomicUsize,
    high_msgs: usize,
    server: Arc<Backlog>,
    /// Told by the writer when it ends (the core closed the connection, the peer
    /// stalled, or the socket failed): the reader stops too.
    ended: Notify,
}

impl ConnState {
    fn add(&self, n: usize) {
        self.msgs.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.server.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, msgs: usize, n: usize) {
        self.msgs.fetch_sub(msgs, Ordering::Relaxed);
        self.bytes.fetch_sub(n, Ordering::Relaxed);
        self.server.bytes.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The sending side of a connection's queue (cloned into the core and the reader).
#[derive(Debug, Clone)]
pub(crate) struct ConnOut {
    tx: mpsc::UnboundedSender<Outgoing>,
    st: Arc<ConnState>,
}

/// The writer's side.
#[derive(Debug)]
pub(crate) struct ConnRx {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    st: Arc<ConnState>,
}

/// A connection's queue, watermark `high_msgs` messages, counted into `server`.
pub(crate) fn channel(high_msgs: usize, server: Arc<Backlog>) -> (ConnOut, ConnRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let st = Arc::new(ConnState {
        msgs: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        high_msgs: high_msgs.max(1),
        server,
        ended: Notify::new(),
    });
    (ConnOut { tx, st: st.clone() }, ConnRx { rx, st })
}

impl ConnOut {
    /// Queues a message; `false` when the writer is gone (the connection is closed).
    pub(crate) fn send(&self, head: Bytes, body: Bytes) -> bool {
        let n = head.len() + body.len();
        self.st.add(n);
        if self.tx.send((head, body)).is_err() {
            self.st.sub(1, n);
            return false;
        }
        true
    }

    /// Whether new posts and commands on this connection are refused with 503: its
    /// backlog or the server's is above the watermark.
    pub(crate) fn shedding(&self) -> bool {
        self.st.msgs.load(Ordering::Relaxed) > self.st.high_msgs
            || self.st.server.bytes() > self.st.server.high_bytes
    }

    /// Whether a new session (an INVITE outside any dialog) on this connection is
    /// refused with 503: its backlog or the server's is above **half** the watermark.
    /// New sessions are turned away before work in progress (RFC 6357 section 4: an
    /// overloaded server sheds the requests that would start new work first), so the
    /// dialogs already admitted keep posting until [`ConnOut::shedding`] holds.
    pub(crate) fn shedding_new_sessions(&self) -> bool {
        self.st.msgs.load(Ordering::Relaxed) > self.st.high_msgs / 2
            || self.st.server.bytes() > self.st.server.high_bytes / 2
    }

    /// Asks the writer to write what is queued before this, then close the connection
    /// (`Action::Close`; an empty head is the marker, never a message).
    pub(crate) fn close(&self) {
        let _ = self.tx.send((Bytes::new(), Bytes::new()));
    }

    /// Resolves when the writer ended (closed by the core, a stalled peer, a failed
    /// socket): the reader then stops too.
    pub(crate) async fn ended(&self) {
        self.st.ended.notified().await
    }
}

/// Most bytes gathered from a connection's queue into one socket write.
pub const WRITE_COALESCE_BYTES: usize = 64 * 1024;

/// Writes `buf`, giving up when one write makes no progress within `stall`.
async fn write_or_stall<W: AsyncWrite + Unpin>(w: &mut W, buf: &[u8], stall: Duration) -> bool {
    let mut off = 0;
    while off < buf.len() {
        match tokio::time::timeout(stall, w.write(&buf[off..])).await {
            Ok(Ok(n)) if n > 0 => off += n,
            _ => return false,
        }
    }
    matches!(tokio::time::timeout(stall, w.flush()).await, Ok(Ok(())))
}

/// Writes a connection's queued messages, gathering whatever is queued (up to
/// [`WRITE_COALESCE_BYTES`]) into one write; the gather buffer lives only for one write,
/// so an idle connection holds no buffer. Ends when every sender is gone, the socket
/// fails, or the peer read nothing for `stall` (then the reader is told to stop).
pub(crate) async fn writer<W: AsyncWrite + Unpin>(mut w: W, mut q: ConnRx, stall: Duration) {
    while let Some((head, body)) = q.rx.recv().await {
        if head.is_empty() {
            break; // the core closed the connection (`ConnOut::close`)
        }
        let mut buf = Vec::with_capacity(head.len() + body.len());
        buf.extend_from_slice(&head);
        buf.extend_from_slice(&body);
        let mut msgs = 1;
        let mut closing = false;
        while buf.len() < WRITE_COALESCE_BYTES {
            match q.rx.try_recv() {
                Ok((head, _)) if head.is_empty() => {
                    closing = true;
                    break;
                }
                Ok((head, body)) => {
                    buf.extend_from_slice(&head);
                    buf.extend_from_slice(&body);
                    msgs += 1;
                }
                Err(_) => break,
            }
        }
        let ok = write_or_stall(&mut w, &buf, stall).await;
        q.st.sub(msgs, buf.len());
        if !ok {
            tracing::warn!(
                stall_s = stall.as_secs(),
                "peer read nothing for the stall timeout (or the socket failed): closing"
            );
            break;
        }
        if closing {
            break;
        }
    }
    q.st.ended.notify_one();
    // Nothing more is written: release what is still queued from the accounts.
    q.rx.close();
    while let Ok((head, body)) = q.rx.try_recv() {
        if !head.is_empty() {
            q.st.sub(1, head.len() + body.len()); // the close marker was never counted
        }
    }
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_shed_and_release() {
        let server = Backlog::new(100);
        let (out, q) = channel(2, server.clone());
        assert!(!out.shedding());
        assert!(out.send(Bytes::from_static(b"abc"), Bytes::from_static(b"de")));
        assert!(out.send(Bytes::from_static(b"x"), Bytes::new()));
        assert_eq!(server.bytes(), 6);
        assert!(!out.shedding());
        assert!(out.send(Bytes::from_static(b"y"), Bytes::new()));
        assert!(out.shedding(), "3 messages > watermark 2");
        // A peer that reads nothing: the writer gives up after the stall timeout, the
        // reader is told, and the accounts are released.
        let (client, srv) = tokio::io::duplex(4);
        let task = tokio::spawn(writer(srv, q, Duration::from_millis(100)));
        tokio::time::timeout(Duration::from_secs(10), out.ended())
            .await
            .expect("stall noticed");
        task.await.unwrap();
        assert_eq!(server.bytes(), 0);
        assert!(!out.shedding());
        assert!(
            !out.send(Bytes::from_static(b"z"), Bytes::new()),
            "writer gone"
        );
        assert_eq!(server.bytes(), 0);
        drop(client);
    }

    #[tokio::test]
    async fn new_sessions_are_shed_from_half_the_watermark_posts_only_past_it() {
        let server = Backlog::new(1000);
        let (out, _q) = channel(4, server.clone());
        for _ in 0..2 {
            assert!(out.send(Bytes::from_static(b"m"), Bytes::new()));
        }
        assert!(!out.shedding_new_sessions(), "2 messages = half of 4");
        assert!(out.send(Bytes::from_static(b"m"), Bytes::new()));
        assert!(out.shedding_new_sessions() && !out.shedding());
        let (other, _q2) = channel(4, server.clone());
        assert!(!other.shedding_new_sessions(), "per connection below the server's");
        assert!(other.send(Bytes::from(vec![0u8; 500]), Bytes::new()));
        assert!(other.shedding_new_sessions() && !other.shedding(), "503 bytes > 1000 / 2");
    }

    #[tokio::test]
    async fn the_server_watermark_sheds_every_connection() {
        let server = Backlog::new(10);
        let (a, _qa) = channel(1000, server.clone());
        let (b, _qb) = channel(1000, server.clone());
        assert!(a.send(Bytes::from(vec![0u8; 11]), Bytes::new()));
        assert!(a.shedding() && b.shedding());
    }
}
