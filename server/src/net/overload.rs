//! Load shedding at the door instead of dropping shared connections (issue 18).
//!
//! Every connection's outgoing messages wait in an unbounded queue (a `VecDeque` that
//! holds no memory while empty) whose length and bytes are counted here, per connection and server-wide. Nothing is refused at the
//! queue: a front end or SIPp carries thousands of dialogs on one connection, and
//! dropping it for a full queue drops them all. Instead, while a connection's backlog
//! is above `[sip] send_queue` messages, or the server's above
//! `[sip] server_backlog_bytes`, or while the posts the core takes from a backlogged
//! queue waited longer than `[sip] max_queue_delay`, the reader answers that
//! connection's new posts and commands (INFO) `503` + `Retry-After` (RFC 3261 21.5.4)
//! before parsing them, until the backlog drains.
//! New sessions (an INVITE outside any dialog) are refused earlier: from half those
//! watermarks, or while the connection's peer leaves more than `[sip] max_unanswered` of
//! our requests unanswered ([`ConnOut::unanswered`]: it sees the backlog in the kernel's
//! socket buffers and in the peer, which the queue does not), so that the dialogs in
//! progress on a slow connection, and the fan-out to them, stop growing (RFC 6357 4).
//! A connection is closed only when its peer has read nothing for
//! `[sip] write_stall_timeout_s` (the writer's socket write made no progress).
//!
//! Memory bound: the server-wide backlog stops growing from new posts once past the
//! watermark; what is already admitted (at most one batch of `MAX_BATCH` inputs and
//! the core queue) still fans out, so the bound is about
//! `server_backlog_bytes + (core_queue + MAX_BATCH) x room size x relay size`, and a
//! stalled peer's share is freed after `write_stall_timeout_s`.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// A message for a connection: SIP head and body, written back to back.
pub(crate) type Outgoing = (Bytes, Bytes);

/// Server-wide backlog: bytes queued for all connections and not yet written, and
/// whether the queue into the core is late (`[sip] max_queue_delay`).
#[derive(Debug)]
pub(crate) struct Backlog {
    bytes: AtomicUsize,
    high_bytes: usize,
    /// Set by the core task while the posts it takes from a backlogged queue waited
    /// longer than `[sip] max_queue_delay`: every reader then sheds new INFOs at the door
    /// (before parsing them) until the core catches up.
    late: AtomicBool,
    /// Requests answered 503 at the door since start, by [`Shed`] reason.
    shed: [AtomicU64; Shed::ALL.len()],
}

/// Why the door answered a request 503 + `Retry-After` (counted per reason in
/// [`Backlog`], logged once a second while shedding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shed {
    /// An INFO: the connection's send backlog is above `[sip] send_queue` messages.
    ConnBacklog,
    /// An INFO: the server's send backlog is above `[sip] server_backlog_bytes`.
    ServerBacklog,
    /// An INFO: the core's queue is late (`[sip] max_queue_delay`).
    Late,
    /// An INFO: the core queue is more than half full.
    CoreBusy,
    /// A new session: a send backlog is past half its watermark.
    NewSessionBacklog,
    /// A new session: the connection's peer is behind on answers (`[sip]
    /// max_unanswered`, `[sip] max_answer_delay_ms`).
    NewSessionUnanswered,
    /// A new session: the core queue holds a full batch.
    NewSessionCore,
    /// Any request: the core queue was full.
    CoreFull,
    /// An INFO while overload is forced (`faults`, simulator and tests).
    Forced,
}

impl Shed {
    /// Every reason, in the order of the counters.
    pub(crate) const ALL: [Shed; 9] = [
        Shed::ConnBacklog,
        Shed::ServerBacklog,
        Shed::Late,
        Shed::CoreBusy,
        Shed::NewSessionBacklog,
        Shed::NewSessionUnanswered,
        Shed::NewSessionCore,
        Shed::CoreFull,
        Shed::Forced,
    ];

    /// The reason's name in logs (snake case).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Shed::ConnBacklog => "conn_backlog",
            Shed::ServerBacklog => "server_backlog",
            Shed::Late => "late",
            Shed::CoreBusy => "core_busy",
            Shed::NewSessionBacklog => "new_session_backlog",
            Shed::NewSessionUnanswered => "new_session_unanswered",
            Shed::NewSessionCore => "new_session_core",
            Shed::CoreFull => "core_full",
            Shed::Forced => "forced",
        }
    }
}

impl Backlog {
    /// A server-wide account with its watermark in bytes.
    pub(crate) fn new(high_bytes: usize) -> Arc<Backlog> {
        Arc::new(Backlog {
            bytes: AtomicUsize::new(0),
            high_bytes: high_bytes.max(1),
            late: AtomicBool::new(false),
            shed: Default::default(),
        })
    }

    /// Counts one request answered 503 at the door for `why`.
    pub(crate) fn count_shed(&self, why: Shed) {
        self.shed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered 503 at the door since start, per reason (in [`Shed::ALL`] order).
    pub(crate) fn shed_counts(&self) -> [u64; Shed::ALL.len()] {
        std::array::from_fn(|i| self.shed[i].load(Ordering::Relaxed))
    }

    /// Bytes queued server-wide.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Whether the core's queue is late (see the field); set by the core task.
    pub(crate) fn set_late(&self, late: bool) {
        self.late.store(late, Ordering::Relaxed);
    }

    /// Whether new posts are shed because the core's queue is late.
    pub(crate) fn is_late(&self) -> bool {
        self.late.load(Ordering::Relaxed)
    }
}

/// A connection's queue: no allocation while empty (an idle connection - most of
/// 19,000 signed-in sessions - holds none; a channel would hold a block of slots).
#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Outgoing>,
    /// Live [`ConnOut`]s: the writer ends when the last one is gone.
    senders: usize,
    /// The writer is gone: nothing more is accepted.
    closed: bool,
}

/// Queue capacity, in messages, above which an emptied queue gives its memory back.
const KEEP_CAPACITY: usize = 16;

/// One connection's account and queue, shared by its reader, its writer and the core task.
#[derive(Debug)]
struct ConnState {
    msgs: AtomicUsize,
    bytes: AtomicUsize,
    high_msgs: usize,
    /// `[sip] max_unanswered` (0: off).
    max_unanswered: u64,
    /// `[sip] max_answer_delay_ms`.
    max_answer_delay: Duration,
    server: Arc<Backlog>,
    queue: Mutex<Queue>,
    /// Wakes the writer: a message was queued or the last sender is gone.
    ready: Notify,
    /// Told by the writer when it ends (the core closed the connection, the peer
    /// stalled, or the socket failed): the reader stops too.
    ended: Notify,
    /// Requests queued to this peer (INFOs: command replies and relays) and not
    /// answered yet ([`Pending`]).
    pending: Mutex<Pending>,
}

/// The requests queued to a connection's peer and not answered yet, as the instants
/// they were queued, oldest first. Answers are matched in order (the k-th response read
/// answers the k-th request): a peer answers each request once, and a lost or late answer
/// only makes the oldest instant look older until it is forgiven.
/// A request unanswered for longer than [`ANSWER_HORIZON`] is forgiven (taken as dropped
/// by the peer), so that a peer that drops some answers does not keep the connection's
/// new sessions refused: SIPp, for one, discards the INFOs that reach a call it already
/// ended (RFC 3261 12.2.2 wants a 481), and a relay crossing a BYE is common.
/// Answers to forgiven requests then make the count lower than the truth, never higher.
/// Time is an input (`now`), for the tests.
#[derive(Debug, Default)]
struct Pending {
    /// When each request still counted was queued, oldest first.
    sent: VecDeque<tokio::time::Instant>,
}

/// A request unanswered for longer is no longer counted (taken as dropped by the peer).
/// A peer that is really that far behind still shows: the requests of the last second
/// stay counted, and the send backlog watermarks hold.
const ANSWER_HORIZON: Duration = Duration::from_secs(1);

/// Most requests counted per connection (memory bound: 16 bytes each); past it the
/// oldest is forgiven.
const MAX_PENDING: usize = 1 << 16;

/// Capacity a connection's [`Pending`] keeps after a burst (requests).
const KEEP_PENDING: usize = 64;

impl Pending {
    /// A request was queued at `now` (those past the horizon are forgiven first, so a
    /// peer that reads but never answers holds at most one horizon's requests).
    fn sent(&mut self, now: tokio::time::Instant) {
        self.roll(now);
        if self.sent.len() >= MAX_PENDING {
            self.sent.pop_front();
        }
        self.sent.push_back(now);
    }

    /// A response was read: it answers the oldest request still counted.
    fn answered(&mut self) {
        self.sent.pop_front();
    }

    /// Forgives the requests unanswered for longer than [`ANSWER_HORIZON`] at `now`, and
    /// gives back memory once a burst is over (below a quarter of the capacity).
    fn roll(&mut self, now: tokio::time::Instant) {
        while let Some(&at) = self.sent.front() {
            if now.saturating_duration_since(at) < ANSWER_HORIZON {
                break;
            }
            self.sent.pop_front();
        }
        if self.sent.capacity() > KEEP_PENDING && self.sent.len() * 4 < self.sent.capacity() {
            self.sent.shrink_to((self.sent.len() * 2).max(KEEP_PENDING));
        }
    }

    /// Requests still unanswered and not forgiven.
    fn unanswered(&self) -> u64 {
        self.sent.len() as u64
    }

    /// How long the oldest request still counted has waited for its answer at `now`
    /// (zero when none waits): the peer's answer delay, as seen from here.
    fn oldest_wait(&self, now: tokio::time::Instant) -> Duration {
        self.sent
            .front()
            .map_or(Duration::ZERO, |&at| now.saturating_duration_since(at))
    }
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

    /// The unanswered-request bookkeeping, also after a panic elsewhere.
    fn pending(&self) -> MutexGuard<'_, Pending> {
        match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The queue, also after a panic elsewhere (its state stays consistent).
    fn queue(&self) -> MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The sending side of a connection's queue (cloned into the core and the reader).
#[derive(Debug)]
pub(crate) struct ConnOut {
    st: Arc<ConnState>,
}

impl Clone for ConnOut {
    fn clone(&self) -> Self {
        self.st.queue().senders += 1;
        ConnOut {
            st: self.st.clone(),
        }
    }
}

impl Drop for ConnOut {
    fn drop(&mut self) {
        let last = {
            let mut q = self.st.queue();
            q.senders -= 1;
            q.senders == 0
        };
        if last {
            self.st.ready.notify_one();
        }
    }
}

/// The writer's side.
#[derive(Debug)]
pub(crate) struct ConnRx {
    st: Arc<ConnState>,
}

/// A connection's limits: `[sip] send_queue` and `[sip] max_unanswered`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// Send backlog watermark, in messages (`[sip] send_queue`).
    pub high_msgs: usize,
    /// Unanswered requests above which new sessions are refused (0: off).
    pub max_unanswered: usize,
    /// ... when the oldest of them has also waited this long (`[sip]
    /// max_answer_delay_ms`; zero: the count alone).
    pub max_answer_delay: Duration,
}

/// A connection's queue with its `limits`, counted into `server`.
pub(crate) fn channel(limits: ConnLimits, server: Arc<Backlog>) -> (ConnOut, ConnRx) {
    let st = Arc::new(ConnState {
        msgs: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        high_msgs: limits.high_msgs.max(1),
        max_unanswered: limits.max_unanswered as u64,
        max_answer_delay: limits.max_answer_delay,
        server,
        queue: Mutex::new(Queue {
            senders: 1,
            ..Queue::default()
        }),
        ready: Notify::new(),
        ended: Notify::new(),
        pending: Mutex::new(Pending::default()),
    });
    (ConnOut { st: st.clone() }, ConnRx { st })
}

impl ConnOut {
    /// Queues a message; `false` when the writer is gone (the connection is closed).
    pub(crate) fn send(&self, head: Bytes, body: Bytes) -> bool {
        let n = head.len() + body.len();
        let is_response = head.starts_with(b"SIP/2.0 ");
        {
            let mut q = self.st.queue();
            if q.closed {
                return false;
            }
            q.items.push_back((head, body));
        }
        if !is_response && self.st.max_unanswered > 0 {
            self.st.pending().sent(tokio::time::Instant::now());
        }
        self.st.add(n);
        self.st.ready.notify_one();
        true
    }

    /// Whether new posts and commands on this connection are refused with 503: its
    /// backlog or the server's is above the watermark, or the core's queue is late.
    #[cfg(test)]
    pub(crate) fn shedding(&self) -> bool {
        self.shed_reason().is_some()
    }

    /// Why new posts and commands on this connection are refused ([`ConnOut::shedding`]),
    /// or `None`.
    pub(crate) fn shed_reason(&self) -> Option<Shed> {
        if self.st.msgs.load(Ordering::Relaxed) > self.st.high_msgs {
            Some(Shed::ConnBacklog)
        } else if self.st.server.bytes() > self.st.server.high_bytes {
            Some(Shed::ServerBacklog)
        } else if self.st.server.is_late() {
            Some(Shed::Late)
        } else {
            None
        }
    }

    /// Counts a request answered 503 at the door into the server's account.
    pub(crate) fn count_shed(&self, why: Shed) {
        self.st.server.count_shed(why);
    }

    /// Why a new session (an INVITE outside any dialog) on this connection is refused
    /// with 503, or `None`: its backlog or the server's is above **half** the watermark
    /// ([`Shed::NewSessionBacklog`]), or its peer is behind on answers
    /// ([`Shed::NewSessionUnanswered`]: more than `[sip] max_unanswered` of our requests
    /// unanswered, the oldest waiting at least `[sip] max_answer_delay_ms`).
    /// New sessions are turned away before work in progress (RFC 6357 section 4: an
    /// overloaded server sheds the requests that would start new work first), so the
    /// dialogs already admitted keep posting until [`ConnOut::shed_reason`] holds.
    pub(crate) fn new_session_shed(&self) -> Option<Shed> {
        if self.st.msgs.load(Ordering::Relaxed) > self.st.high_msgs / 2
            || self.st.server.bytes() > self.st.server.high_bytes / 2
        {
            Some(Shed::NewSessionBacklog)
        } else if self.behind_on_answers(tokio::time::Instant::now()) {
            Some(Shed::NewSessionUnanswered)
        } else {
            None
        }
    }

    /// Whether the peer is behind on answers at `now`: more than `[sip] max_unanswered`
    /// requests unanswered (not forgiven), the oldest waiting at least `[sip]
    /// max_answer_delay_ms`. Many requests in flight to a peer that answers them promptly,
    /// as a front end carrying many clients' dialogs does, are not a backlog.
    fn behind_on_answers(&self, now: tokio::time::Instant) -> bool {
        if self.st.max_unanswered == 0 {
            return false;
        }
        let mut p = self.st.pending();
        p.roll(now);
        p.unanswered() > self.st.max_unanswered && p.oldest_wait(now) >= self.st.max_answer_delay
    }

    /// The reader read a response from this peer (to one of our requests).
    pub(crate) fn answered(&self) {
        self.st.pending().answered();
    }

    /// Requests queued to this peer that it has not answered yet (in our queue, in the
    /// sockets' buffers, or waiting in the peer), less those unanswered for longer
    /// than [`ANSWER_HORIZON`]. Unlike the queue length, this sees the backlog the
    /// kernel holds.
    #[cfg(test)]
    pub(crate) fn unanswered(&self) -> u64 {
        let mut p = self.st.pending();
        p.roll(tokio::time::Instant::now());
        p.unanswered()
    }

    /// Asks the writer to write what is queued before this, then close the connection
    /// (`Action::Close`; an empty head is the marker, never a message).
    pub(crate) fn close(&self) {
        let mut q = self.st.queue();
        if !q.closed {
            q.items.push_back((Bytes::new(), Bytes::new()));
            drop(q);
            self.st.ready.notify_one();
        }
    }

    /// Resolves when the writer ended (closed by the core, a stalled peer, a failed
    /// socket): the reader then stops too.
    pub(crate) async fn ended(&self) {
        self.st.ended.notified().await
    }
}

/// What the writer takes from the queue for one write.
enum Take {
    /// Bytes gathered, how many messages, and whether the close marker followed them.
    Some(Vec<u8>, usize, bool),
    /// Nothing queued.
    Empty,
    /// Nothing queued and no sender left: the connection is over.
    Done,
}

impl ConnRx {
    /// Gathers queued messages (up to [`WRITE_COALESCE_BYTES`]) into one buffer.
    fn take(&self) -> Take {
        let mut q = self.st.queue();
        let Some((head, body)) = q.items.pop_front() else {
            return if q.senders == 0 {
                Take::Done
            } else {
                Take::Empty
            };
        };
        if head.is_empty() {
            return Take::Some(Vec::new(), 0, true); // `ConnOut::close`
        }
        // Sized once for what this write will gather (no regrowth while gathering).
        let mut want = head.len() + body.len();
        for (h, b) in q.items.iter() {
            if h.is_empty() || want >= WRITE_COALESCE_BYTES {
                break;
            }
            want += h.len() + b.len();
        }
        let mut buf = Vec::with_capacity(want);
        buf.extend_from_slice(&head);
        buf.extend_from_slice(&body);
        let mut msgs = 1;
        let mut closing = false;
        while buf.len() < WRITE_COALESCE_BYTES {
            match q.items.pop_front() {
                Some((head, _)) if head.is_empty() => {
                    closing = true;
                    break;
                }
                Some((head, body)) => {
                    buf.extend_from_slice(&head);
                    buf.extend_from_slice(&body);
                    msgs += 1;
                }
                None => break,
            }
        }
        if q.items.is_empty() && q.items.capacity() > KEEP_CAPACITY {
            q.items = VecDeque::new();
        }
        Take::Some(buf, msgs, closing)
    }

    /// The writer is gone: refuses further messages and releases what is still queued
    /// from the accounts.
    fn shut(&self) {
        let rest = {
            let mut q = self.st.queue();
            q.closed = true;
            std::mem::take(&mut q.items)
        };
        for (head, body) in rest {
            if !head.is_empty() {
                self.st.sub(1, head.len() + body.len()); // the close marker was never counted
            }
        }
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
pub(crate) async fn writer<W: AsyncWrite + Unpin>(mut w: W, q: ConnRx, stall: Duration) {
    loop {
        let (buf, msgs, closing) = match q.take() {
            Take::Some(buf, msgs, closing) => (buf, msgs, closing),
            Take::Empty => {
                q.st.ready.notified().await;
                continue;
            }
            Take::Done => break,
        };
        if !buf.is_empty() {
            let ok = write_or_stall(&mut w, &buf, stall).await;
            q.st.sub(msgs, buf.len());
            if !ok {
                tracing::warn!(
                    stall_s = stall.as_secs(),
                    "peer read nothing for the stall timeout (or the socket failed): closing"
                );
                break;
            }
        }
        if closing {
            break; // the core closed the connection (`ConnOut::close`)
        }
    }
    q.st.ended.notify_one();
    q.shut();
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue with watermark `high_msgs` and the unanswered check off.
    fn channel(high_msgs: usize, server: Arc<Backlog>) -> (ConnOut, ConnRx) {
        let limits = ConnLimits {
            high_msgs,
            max_unanswered: 0,
            max_answer_delay: Duration::ZERO,
        };
        super::channel(limits, server)
    }

    fn info() -> Bytes {
        Bytes::from_static(b"INFO sip:u@h SIP/2.0\r\n\r\n")
    }

    #[tokio::test]
    async fn a_peer_behind_on_answers_refuses_new_sessions_not_posts() {
        let limits = ConnLimits {
            high_msgs: 1000,
            max_unanswered: 2,
            max_answer_delay: Duration::from_millis(200),
        };
        let (out, _q) = super::channel(limits, Backlog::new(1 << 20));
        let before = tokio::time::Instant::now();
        for _ in 0..3 {
            assert!(out.send(info(), Bytes::new()));
        }
        let ok = Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n");
        assert!(out.send(ok, Bytes::new()), "a response is not a request");
        assert_eq!(out.unanswered(), 3);
        assert!(
            !out.behind_on_answers(before),
            "3 unanswered > 2, but none has waited 200 ms: in flight, not behind"
        );
        let later = tokio::time::Instant::now() + Duration::from_millis(300);
        assert!(out.behind_on_answers(later), "3 > 2, waiting 300 ms");
        assert!(!out.shedding(), "posts are not refused for it");
        out.answered();
        assert_eq!(out.unanswered(), 2);
        assert!(
            !out.behind_on_answers(later),
            "2 unanswered, not more than 2"
        );
    }

    #[test]
    fn answers_match_the_oldest_and_late_requests_are_forgiven() {
        let t0 = tokio::time::Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pending::default();
        assert_eq!(p.oldest_wait(t0), Duration::ZERO, "none waits");
        for at in [0, 300, 600] {
            p.sent(t0 + ms(at));
        }
        p.roll(t0 + ms(900));
        assert_eq!(p.unanswered(), 3, "none older than the horizon");
        assert_eq!(p.oldest_wait(t0 + ms(900)), ms(900));
        p.answered();
        assert_eq!(p.unanswered(), 2);
        assert_eq!(
            p.oldest_wait(t0 + ms(900)),
            ms(600),
            "the oldest was answered"
        );
        // At 1.35 s the request of 0.3 s has waited past the horizon: forgiven.
        p.roll(t0 + ms(1350));
        assert_eq!(p.unanswered(), 1);
        assert_eq!(p.oldest_wait(t0 + ms(1350)), ms(750));
        p.roll(t0 + ms(1600));
        assert_eq!(p.unanswered(), 0, "all forgiven");
        p.answered(); // a late answer to a forgiven request: nothing to take
        assert_eq!(p.unanswered(), 0);
        // A peer that reads but never answers: each send forgives what passed the
        // horizon, and the memory of a burst is given back.
        for i in 0..1000 {
            p.sent(t0 + ms(1700) + Duration::from_micros(i));
        }
        let burst = p.sent.capacity();
        p.sent(t0 + ms(2800));
        assert_eq!(p.unanswered(), 1, "the burst of 1.7 s is forgiven at 2.8 s");
        assert!(p.sent.capacity() < burst, "{} < {burst}", p.sent.capacity());
        p.answered();
        // The count is bounded: past MAX_PENDING the oldest is forgiven.
        for i in 0..MAX_PENDING + 5 {
            p.sent(t0 + ms(3000) + Duration::from_micros(i as u64));
        }
        assert_eq!(p.unanswered(), MAX_PENDING as u64);
        assert_eq!(p.oldest_wait(t0 + ms(3000)), Duration::ZERO);
        p.roll(t0 + ms(3000) + Duration::from_micros(5));
        assert_eq!(
            p.oldest_wait(t0 + ms(3000) + Duration::from_micros(5)),
            Duration::ZERO,
            "the 5 oldest were dropped at the bound: the oldest left was sent at 5 us"
        );
    }

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
        assert_eq!(out.new_session_shed(), None, "2 messages = half of 4");
        assert!(out.send(Bytes::from_static(b"m"), Bytes::new()));
        assert!(out.new_session_shed() == Some(Shed::NewSessionBacklog) && !out.shedding());
        let (other, _q2) = channel(4, server.clone());
        assert!(
            other.new_session_shed().is_none(),
            "per connection below the server's"
        );
        assert!(other.send(Bytes::from(vec![0u8; 500]), Bytes::new()));
        assert!(
            other.new_session_shed() == Some(Shed::NewSessionBacklog) && !other.shedding(),
            "503 bytes > 1000 / 2"
        );
    }

    #[tokio::test]
    async fn the_server_watermark_sheds_every_connection() {
        let server = Backlog::new(10);
        let (a, _qa) = channel(1000, server.clone());
        let (b, _qb) = channel(1000, server.clone());
        assert!(a.send(Bytes::from(vec![0u8; 11]), Bytes::new()));
        assert!(a.shedding() && b.shedding());
    }

    #[tokio::test]
    async fn a_late_core_queue_sheds_every_connection() {
        let server = Backlog::new(1 << 20);
        let (a, _qa) = channel(1000, server.clone());
        assert!(!a.shedding());
        server.set_late(true);
        assert!(a.shedding());
        server.set_late(false);
        assert!(!a.shedding());
    }
}
