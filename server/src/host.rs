//! The I/O driver: accepts SIP/TCP connections, frames and parses messages, feeds the
//! [`Core`] in batches and writes out its actions. Generic over the listener so the same
//! code runs on tokio's TCP (the binary) and on turmoil's simulated TCP (the simulator).
//!
//! Tasks: one accept loop; per connection a reader (framing + parsing, so parsing runs
//! in parallel) and a writer; one core task that owns the [`Core`] and the store.
//! Load is shed at the door, never by dropping a shared connection: the core queue
//! (`[sip] core_queue`) answers 503 + Retry-After when full, and while a connection's
//! send backlog (`[sip] send_queue` messages) or the server's (`[sip]
//! server_backlog_bytes`) is above its watermark, new posts and commands get 503 +
//! Retry-After (`net/overload.rs`); a connection is closed only when its peer read
//! nothing for `[sip] write_stall_timeout_s` (DESIGN.md, overload).

use crate::config::SipConfig;
use crate::core::{Action, ConnId, Core, Input};
use crate::fault::Faults;
pub use crate::net::overload::WRITE_COALESCE_BYTES;
use crate::net::overload::{self, Backlog, ConnOut, Shed};
use crate::net::Event;
pub use crate::net::Listener;
use crate::sip::{parse_frame, Framer, SipMessage};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

/// Largest number of inputs handled in one batch (one store transaction).
pub const MAX_BATCH: usize = 1024;

/// Raises this process's RLIMIT_NOFILE (open files, so sockets) to at least `want`
/// where the system allows: the hard limit too when privileged (capped by
/// `/proc/sys/fs/nr_open`), else the soft limit up to the hard one. Never lowers it.
/// Returns the soft limit in force afterwards. Errors: the limit cannot be read.
/// Both `pchat-server` and `pchat-sim load` call it at start (one socket per session).
pub fn raise_nofile_limit(want: u64) -> io::Result<u64> {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get()?;
    if soft >= want {
        return Ok(soft);
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let target = want.min(nr_open.max(hard));
    if target > hard && Resource::NOFILE.set(target, target).is_ok() {
        return Ok(target);
    }
    let soft = want.min(hard).max(soft);
    Resource::NOFILE.set(soft, hard)?;
    Ok(soft)
}

/// Runs the server on `listener` until `shutdown` resolves, then stops accepting, lets
/// the core finish its current batch (committing it) and returns. Errors: the listener
/// failed.
pub async fn serve<L: Listener>(
    listener: L,
    core: Core,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_full(listener, None::<L>, core, None, shutdown, Faults::default()).await
}

/// [`serve`], plus the compliance worker (if any) as a task beside the core; at
/// shutdown the worker stops after the core, with a last run that exports what the
/// core's final batch committed.
pub async fn serve_with<L: Listener>(
    listener: L,
    core: Core,
    worker: Option<crate::compliance::Worker>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_full(
        listener,
        None::<L>,
        core,
        worker,
        shutdown,
        Faults::default(),
    )
    .await
}

/// [`serve`] with a fault handle (tests, simulator): while `faults` has forced overload
/// on, every INFO is answered `503` + `Retry-After` by the connection's reader, as when
/// the core queue is full.
pub async fn serve_with_faults<L: Listener>(
    listener: L,
    core: Core,
    shutdown: impl Future<Output = ()>,
    faults: Faults,
) -> io::Result<()> {
    serve_full(listener, None::<L>, core, None, shutdown, faults).await
}

/// Everything together: the web services (`crate::web`) on `http` when given (their
/// requests reach the core through the same bounded queue as SIP input; at shutdown
/// the HTTP listener stops with the SIP one, before the core's last batch), the
/// compliance worker (if any), and a fault handle (tests and the simulator).
pub async fn serve_full<L: Listener, H: Listener>(
    mut listener: L,
    http: Option<H>,
    core: Core,
    worker: Option<crate::compliance::Worker>,
    shutdown: impl Future<Output = ()>,
    faults: Faults,
) -> io::Result<()> {
    let https = https_acceptor(&core)?;
    let sip = core.config().sip.clone();
    let http_cfg = core.config().http.clone();
    let (tx, rx) = mpsc::channel::<Event>(sip.core_queue.max(1));
    crate::net::pool_wake::start(&core, &tx); // pool: relays on commit (crate::pool)
    let clock = core.clock.clone(); // the compliance worker's, for its pool lease
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let backlog = Backlog::new(sip.server_backlog_bytes);
    let core_task = tokio::spawn(core_loop(core, rx, stop_rx, backlog.clone()));
    let web = match (http, http_cfg) {
        (Some(h), Some(cfg)) => Some(start_web(h, cfg, https, &tx)),
        _ => None,
    };
    let worker = worker.map(|w| {
        let w = w.with_clock(clock);
        Stoppable::spawn(|stopped| w.run(stopped))
    });
    let mut next_conn = ConnId(0);
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            accepted = listener.accept_peer() => match accepted {
                Ok((stream, peer)) => {
                    next_conn.0 += 1;
                    tracing::debug!(conn = %next_conn, addr = %peer.addr, tls = peer.tls, "connection accepted");
                    let conn = (next_conn, backlog.clone());
                    spawn_connection(conn, stream, peer, tx.clone(), &sip, faults.clone()).await;
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::NotConnected) {
                        break Err(e);
                    }
                }
            },
        }
    };
    if let Some(web) = web {
        web.stop().await;
    }
    let _ = stop_tx.send(());
    let _ = core_task.await;
    if let Some(worker) = worker {
        worker.stop().await;
    }
    result
}

/// A task that runs until told to stop, then is awaited.
struct Stoppable {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Stoppable {
    /// Spawns `run(stopped)`; `stopped` resolves when [`Stoppable::stop`] is called.
    fn spawn<F, Fut>(run: F) -> Stoppable
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(run(stopped));
        Stoppable { stop, task }
    }

    /// Tells the task to stop and waits for it.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts the web services on `h` (over TLS with `https`); their requests reach the
/// core through `tx`, the bounded queue SIP input uses.
fn start_web<H: Listener>(
    h: H,
    cfg: crate::config::HttpConfig,
    https: Option<tokio_rustls::TlsAcceptor>,
    tx: &mpsc::Sender<Event>,
) -> Stoppable {
    let handle = crate::web::CoreHandle::new(tx.clone());
    match https {
        Some(acceptor) => {
            let timeout = crate::web::HEADER_READ_TIMEOUT;
            let h = crate::https::TlsListener::new(h, acceptor, timeout);
            Stoppable::spawn(|stopped| crate::web::serve(h, handle, cfg, stopped))
        }
        None => Stoppable::spawn(|stopped| crate::web::serve(h, handle, cfg, stopped)),
    }
}

/// The HTTPS acceptor when `[http] tls = true` (the SIP certificate, `[sip] tls_cert` /
/// `tls_key`); `None` for plain HTTP. Errors (`InvalidInput`): the files are missing,
/// unreadable or not a certificate and key - the server does not start.
fn https_acceptor(core: &Core) -> io::Result<Option<tokio_rustls::TlsAcceptor>> {
    let cfg = core.config();
    if !cfg.http.as_ref().is_some_and(|h| h.tls) {
        return Ok(None);
    }
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, format!("[http] tls: {m}"));
    let (Some(cert), Some(key)) = (&cfg.sip.tls_cert, &cfg.sip.tls_key) else {
        return Err(bad("needs [sip] tls_cert and tls_key".into()));
    };
    crate::https::acceptor(cert, key).map(Some).map_err(bad)
}

/// Starts a connection's reader and writer. `peer` goes to the core first
/// ([`Input::Connected`], for the authentication gate). When the writer ends (the
/// core closed the connection, the peer stalled, or a write failed) the reader stops too.
async fn spawn_connection<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    (conn, backlog): (ConnId, std::sync::Arc<Backlog>),
    stream: S,
    peer: crate::auth::Peer,
    tx: mpsc::Sender<Event>,
    sip: &SipConfig,
    faults: Faults,
) {
    let (read_half, write_half) = tokio::io::split(stream);
    let limits = overload::ConnLimits {
        high_msgs: sip.send_queue,
        max_unanswered: sip.max_unanswered,
        max_answer_delay: std::time::Duration::from_millis(sip.max_answer_delay_ms),
    };
    let (out, queue) = overload::channel(limits, backlog);
    if tx.send(Event::Register(conn, out.clone())).await.is_err() {
        return;
    }
    if tx
        .send(Event::Input(Input::Connected { conn, peer }))
        .await
        .is_err()
    {
        return;
    }
    let stall = std::time::Duration::from_secs(u64::from(sip.write_stall_timeout_s.max(1)));
    tokio::spawn(overload::writer(write_half, queue, stall));
    let limits = ReaderLimits {
        max_message_bytes: sip.max_message_bytes,
        retry_after_s: sip.retry_after_s,
        header_timeout: std::time::Duration::from_millis(sip.header_timeout.0),
    };
    let cx = ReaderCtx {
        conn,
        tx,
        out,
        limits,
        faults,
    };
    tokio::spawn(reader(read_half, cx));
}

/// A reader's limits (from `[sip]`).
struct ReaderLimits {
    max_message_bytes: usize,
    retry_after_s: u32,
    /// Time to complete a message once its first byte arrived (`[sip] header_timeout`).
    header_timeout: std::time::Duration,
}

/// What a connection's reader holds besides its stream and framer.
struct ReaderCtx {
    conn: ConnId,
    tx: mpsc::Sender<Event>,
    out: ConnOut,
    limits: ReaderLimits,
    faults: Faults,
}

/// Size of the read buffer, in bytes: one per worker thread, lent to a connection only
/// for the duration of one `poll_read` (an idle connection holds none; the bytes read
/// are copied into the connection's framer, which grows as needed).
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

thread_local! {
    /// This thread's read buffer ([`READ_BUFFER_BYTES`]).
    static READ_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_BUFFER_BYTES].into_boxed_slice());
}

/// One `poll_read` into this thread's buffer, the bytes pushed into `framer`:
/// `Ready(0)` at end of stream or on error. The buffer is not held across `Pending`
/// (`AsyncRead::poll_read` borrows it for the call only).
fn poll_read_pooled<R: AsyncRead + Unpin>(
    r: &mut R,
    cx: &mut std::task::Context<'_>,
    framer: &mut Framer,
) -> std::task::Poll<usize> {
    READ_BUF.with(|cell| {
        let Ok(mut buf) = cell.try_borrow_mut() else {
            // Re-entered from inside a read (never by tokio's or turmoil's streams):
            // a one-off buffer instead.
            let mut own = vec![0u8; 4096];
            return poll_into(r, cx, &mut own, framer);
        };
        poll_into(r, cx, &mut buf, framer)
    })
}

fn poll_into<R: AsyncRead + Unpin>(
    r: &mut R,
    cx: &mut std::task::Context<'_>,
    buf: &mut [u8],
    framer: &mut Framer,
) -> std::task::Poll<usize> {
    use std::task::Poll;
    let mut rb = tokio::io::ReadBuf::new(buf);
    match std::pin::Pin::new(r).poll_read(cx, &mut rb) {
        Poll::Ready(Ok(())) => {
            framer.push(rb.filled());
            Poll::Ready(rb.filled().len())
        }
        Poll::Ready(Err(_)) => Poll::Ready(0),
        Poll::Pending => Poll::Pending,
    }
}

/// Reads what the socket has into `framer`; `false` when the connection is over: end
/// of stream, error, the writer ended (`out`), or a started message not completed by
/// `deadline`.
async fn read_some<R: AsyncRead + Unpin>(
    r: &mut R,
    framer: &mut Framer,
    out: &ConnOut,
    deadline: Option<tokio::time::Instant>,
    conn: ConnId,
) -> bool {
    let slow = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = out.ended() => false,
        _ = slow => {
            tracing::info!(conn = %conn, "message not completed within [sip] header_timeout: closing");
            false
        }
        n = std::future::poll_fn(|cx| poll_read_pooled(r, cx, framer)) => n > 0,
    }
}

/// Whether a reader goes on after a frame or a framing error.
#[derive(PartialEq)]
enum Flow {
    Go,
    Stop,
}

async fn reader<R: AsyncRead + Unpin>(mut r: R, cx: ReaderCtx) {
    let mut framer = Framer::new(cx.limits.max_message_bytes);
    // When the message now being received must be complete (`[sip] header_timeout`).
    let mut deadline: Option<tokio::time::Instant> = None;
    'conn: loop {
        if !read_some(&mut r, &mut framer, &cx.out, deadline, cx.conn).await {
            break;
        }
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    deadline = None;
                    if cx.on_frame(frame) == Flow::Stop {
                        break 'conn;
                    }
                }
                Ok(None) => {
                    // Part of a message is buffered: it must be complete in time.
                    if framer.buffered() > 0 && deadline.is_none() {
                        deadline = Some(tokio::time::Instant::now() + cx.limits.header_timeout);
                    }
                    framer.release();
                    break;
                }
                Err(e) => {
                    if cx.on_framing_error(&e, &framer).await == Flow::Stop {
                        break 'conn;
                    }
                }
            }
        }
    }
    let _ = cx
        .tx
        .send(Event::Input(Input::Closed { conn: cx.conn }))
        .await;
}

impl ReaderCtx {
    /// A whole frame: dropped (2xx to our INFOs), shed (503), refused (4xx/5xx) or
    /// queued for the core, stamped with the time it was read (`[sip] max_queue_delay`).
    fn on_frame(&self, frame: Bytes) -> Flow {
        let (conn, out, retry_after_s) = (self.conn, &self.out, self.limits.retry_after_s);
        if frame.starts_with(b"SIP/2.0 ") {
            out.answered();
        }
        if is_success_response(&frame) {
            // A 2xx to one of our INFOs (one per relayed message): it ends our
            // transaction and the core has nothing to do with it (`Core::on_response`
            // acts on 481/487 only), so it is not parsed nor queued - under fan-out
            // these are most of the input.
            return Flow::Go;
        }
        if frame.starts_with(b"ACK ") && crate::sip::reject::to_names_no_dialog(&frame) {
            // The ACK to a non-2xx final answer to a new INVITE (a 503 from the door, a
            // 4xx; its To tag is a transaction tag): no dialog has it, and it ends a
            // transaction the core never opened (RFC 3261 17.2.1): absorbed here.
            return Flow::Go;
        }
        if let Some(why) = shed_before_parse(&frame, out, &self.tx) {
            // Shed at the door, before the full parse: under overload the answer must
            // cost less than the work it turns away.
            out.count_shed(why);
            if let Some(head) = shed_answer(&frame, retry_after_s) {
                out.send(head, Bytes::new());
            }
            return Flow::Go;
        }
        let input = match parse_frame(&frame) {
            Ok(SipMessage::Request(req)) => {
                if let Some(why) = shed_after_parse(&req, out, &self.tx, &self.faults) {
                    out.count_shed(why);
                    out.send(overloaded(&req, retry_after_s), Bytes::new());
                    return Flow::Go;
                }
                Input::Sip {
                    conn,
                    msg: SipMessage::Request(req),
                }
            }
            Ok(msg) => Input::Sip { conn, msg },
            Err(e) => {
                // Refused before the core (no state needed): answered here, with the
                // status the defect calls for (400, 416, 505).
                tracing::debug!(conn = %conn, "malformed SIP message: {e}");
                let Some(refused) = Input::refused(conn, &frame, e.code, &e.reason) else {
                    return Flow::Go;
                };
                refused
            }
        };
        match self
            .tx
            .try_send(Event::Read(input, tokio::time::Instant::now()))
        {
            Ok(()) => Flow::Go,
            Err(mpsc::error::TrySendError::Closed(_)) => Flow::Stop,
            Err(mpsc::error::TrySendError::Full(ev)) => {
                self.on_core_full(ev);
                Flow::Go
            }
        }
    }

    /// The core queue was full: a request is answered 503 (call-flows.md step 2), a
    /// refusal is sent from here; a response or ACK is dropped.
    fn on_core_full(&self, ev: Event) {
        match ev {
            Event::Read(
                Input::Sip {
                    msg: SipMessage::Request(req),
                    ..
                },
                _,
            ) if req.method != "ACK" => {
                self.out.count_shed(Shed::CoreFull);
                self.out
                    .send(overloaded(&req, self.limits.retry_after_s), Bytes::new());
            }
            Event::Read(Input::Refused { head, .. }, _) => {
                self.out.send(head, Bytes::new());
            }
            _ => tracing::debug!(conn = %self.conn, "core queue full; dropped a response/ACK"),
        }
    }

    /// RFC 3261 18.3 / RFC 4475 3.1.2.3: answer what can be answered, then stop unless
    /// the framer could skip the message (413).
    async fn on_framing_error(&self, e: &crate::sip::FramingError, framer: &Framer) -> Flow {
        let conn = self.conn;
        let raw = match e {
            crate::sip::FramingError::BodyTooLarge { head, .. } => head.clone(),
            _ => Bytes::copy_from_slice(framer.pending()),
        };
        if let Some(head) = refusal(&raw, e.status(), &framing_reason(e)) {
            // Queued behind this connection's earlier requests, so their answers go
            // first; waits for room (the connection ends anyway).
            let refused = Event::Input(Input::Refused { conn, head });
            if e.is_recoverable() {
                // The connection goes on: never wait on the core for it.
                if let Err(mpsc::error::TrySendError::Full(Event::Input(Input::Refused {
                    head,
                    ..
                }))) = self.tx.try_send(refused)
                {
                    self.out.send(head, Bytes::new());
                }
            } else if self.tx.send(refused).await.is_err() {
                return Flow::Stop;
            }
        }
        if e.is_recoverable() {
            tracing::debug!(conn = %conn, "message over the size limit skipped: {e}");
            return Flow::Go;
        }
        tracing::info!(conn = %conn, "framing error, closing connection: {e}");
        Flow::Stop
    }
}

/// Whether the queue into the core holds more than half its capacity (`[sip]
/// core_queue`): new INFOs are then shed at the door rather than queued behind seconds
/// of work (the rest of the queue keeps room for ACKs, BYEs and other requests).
fn core_busy(tx: &mpsc::Sender<Event>) -> bool {
    tx.max_capacity() - tx.capacity() > tx.max_capacity() / 2
}

/// Why the reader answers a request 503 + `Retry-After` from its raw bytes, before the
/// full parse (under overload the answer must cost less than the work it turns away):
/// an INFO while [`ConnOut::shed_reason`] holds or the core is busy ([`core_busy`]); a
/// new session (an INVITE with no To tag) while [`new_session_shed`] holds.
fn shed_before_parse(frame: &[u8], out: &ConnOut, tx: &mpsc::Sender<Event>) -> Option<Shed> {
    if frame.starts_with(b"INFO ") {
        out.shed_reason()
            .or_else(|| core_busy(tx).then_some(Shed::CoreBusy))
    } else if frame.starts_with(b"INVITE ") {
        new_session_shed(out, tx).filter(|_| !crate::sip::reject::may_have_to_tag(frame))
    } else {
        None
    }
}

/// Whether the reader answers a parsed request 503 + `Retry-After` itself: an INFO
/// while forced overload is on (`faults`, simulator and tests), or a **new session** - an INVITE without a
/// To tag (RFC 3261 12.1) - while the connection's or the server's send backlog is past
/// half its watermark or the core queue past a quarter
/// ([`ConnOut::new_session_shed`]). New sessions are refused before the posts of
/// sessions already admitted (those are shed only at the full watermark), so under
/// overload the admitted calls complete instead of every call failing half-way.
fn shed_after_parse(
    req: &crate::sip::Request,
    out: &ConnOut,
    tx: &mpsc::Sender<Event>,
    faults: &Faults,
) -> Option<Shed> {
    use crate::sip::Method;
    match req.method {
        Method::Info => faults.overloaded().then_some(Shed::Forced),
        Method::Invite if req.to_tag().is_none() => new_session_shed(out, tx),
        _ => None,
    }
}

/// Why a new session on `out` is refused now, if it is: the connection's or the
/// server's send backlog past half its watermark, the peer behind on answers
/// ([`ConnOut::new_session_shed`]), or the core queue filling ([`core_filling`]).
fn new_session_shed(out: &ConnOut, tx: &mpsc::Sender<Event>) -> Option<Shed> {
    out.new_session_shed()
        .or_else(|| core_filling(tx).then_some(Shed::NewSessionCore))
}

/// Whether the queue into the core holds a full batch ([`LATE_MIN_QUEUED`] inputs) or
/// more than a quarter of its capacity, whichever is less: new sessions are then
/// refused (see [`shed_after_parse`]). INFOs are shed only later: past half the
/// capacity ([`core_busy`]), or at that depth once they also waited longer than
/// `[sip] max_queue_delay` - so the sessions admitted keep the core's capacity.
fn core_filling(tx: &mpsc::Sender<Event>) -> bool {
    tx.max_capacity() - tx.capacity() >= LATE_MIN_QUEUED.min(tx.max_capacity() / 4 + 1)
}

/// `503 Service Unavailable` + `Retry-After` for an INFO, from a header scan of the raw
/// frame (no full parse): Via, From, To, Call-ID and CSeq echoed (RFC 3261 8.2.6.2).
fn shed_answer(frame: &[u8], retry_after_s: u32) -> Option<Bytes> {
    let retry = retry_after_s.to_string();
    crate::sip::reject::response(
        frame,
        503,
        "Service Unavailable",
        &[("Retry-After", &retry)],
        crate::core::SERVER_HEADER,
    )
}

/// The answer to a request refused by the reader (`None` for a response).
fn refusal(raw: &[u8], code: u16, reason: &str) -> Option<Bytes> {
    crate::sip::reject::response(raw, code, reason, &[], crate::core::SERVER_HEADER)
}

/// The reason phrase for a framing error: the standard phrase, then the defect.
fn framing_reason(e: &crate::sip::FramingError) -> String {
    match e.status() {
        413 => format!("Request Entity Too Large: {e}"),
        _ => format!("Bad Request: {e}"),
    }
}

/// Whether a framed message is a 2xx response (`SIP/2.0 2xx `, RFC 3261 7.2).
fn is_success_response(frame: &[u8]) -> bool {
    matches!(frame, [b'S', b'I', b'P', b'/', b'2', b'.', b'0', b' ', b'2', d1, d2, b' ', ..]
        if d1.is_ascii_digit() && d2.is_ascii_digit())
}

/// `503 Service Unavailable` + `Retry-After: <s>` for `req` (RFC 3261 21.5.4, 20.33).
fn overloaded(req: &crate::sip::Request, retry_after_s: u32) -> Bytes {
    crate::core::retry_later(req, retry_after_s)
}

/// Inputs that must be waiting in the core queue before an INFO that waited longer
/// than `[sip] max_queue_delay` is answered 503 instead of handled.
pub const LATE_MIN_QUEUED: usize = MAX_BATCH;

async fn core_loop(
    mut core: Core,
    mut rx: mpsc::Receiver<Event>,
    mut stop: oneshot::Receiver<()>,
    backlog: std::sync::Arc<Backlog>,
) {
    let mut io = CoreIo::new(&core.config().sip);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                // Input read before this waited longer than `[sip] max_queue_delay`; only
                // under a backlog (a stalled core with a short queue is not overload).
                // Such INFOs make the readers shed new ones at the door (`saw_late`).
                let late = (rx.len() >= LATE_MIN_QUEUED)
                    .then(|| tokio::time::Instant::now().checked_sub(io.max_delay))
                    .flatten();
                io.absorb(ev, late);
                // Bounded: a writer registering adds no input to the batch.
                for _ in 0..MAX_BATCH * 4 {
                    if io.inputs.len() >= MAX_BATCH {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(ev) => io.absorb(ev, late),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => {
                io.log_shed(&backlog);
                // Only when something is due (Core::poll_timeout): an idle server does
                // no work, and opens no transaction, once a second.
                if core.poll_timeout().is_some_and(|t| t <= core.clock.now_ms()) {
                    io.inputs.push(Input::Tick);
                }
            }
        }
        // Readers shed new INFOs at the door while this batch's posts waited too long
        // and a backlog remains; as soon as the queue is short again they admit them
        // (the core never idles while the readers shed).
        let saw_late = std::mem::take(&mut io.saw_late);
        backlog.set_late(saw_late && rx.len() >= LATE_MIN_QUEUED);
        if !io.inputs.is_empty() {
            io.run_batch(&mut core);
        }
    }
    tracing::info!(dialogs = core.dialog_count(), stats = ?core.stats(), "channel service stopped");
}

/// The core task's side of the I/O: each connection's writer, the web requests waiting
/// for an answer, and the batch buffers.
struct CoreIo {
    writers: BTreeMap<ConnId, ConnOut>,
    waiting: HttpWaiting,
    inputs: Vec<Input>,
    actions: Vec<Action>,
    /// `[sip] max_queue_delay`.
    max_delay: std::time::Duration,
    /// Whether an INFO of the batch being gathered waited longer than `max_delay`.
    saw_late: bool,
    /// The door's shed counters at the last log line ([`CoreIo::log_shed`]).
    shed_seen: [u64; Shed::ALL.len()],
}

impl CoreIo {
    fn new(sip: &SipConfig) -> CoreIo {
        CoreIo {
            writers: BTreeMap::new(),
            waiting: HttpWaiting::default(),
            inputs: Vec::with_capacity(MAX_BATCH),
            actions: Vec::with_capacity(MAX_BATCH * 2),
            max_delay: std::time::Duration::from_millis(sip.max_queue_delay.0),
            saw_late: false,
            shed_seen: [0; Shed::ALL.len()],
        }
    }

    /// Logs (warn) the requests answered 503 at the door since the last call, per reason,
    /// if any: at most one line a second while the server sheds load.
    fn log_shed(&mut self, backlog: &Backlog) {
        let now = backlog.shed_counts();
        if now == self.shed_seen {
            return;
        }
        let since: Vec<String> = Shed::ALL
            .iter()
            .zip(now.iter().zip(self.shed_seen.iter()))
            .filter(|(_, (n, s))| n > s)
            .map(|(why, (n, s))| format!("{}={}", why.name(), n - s))
            .collect();
        tracing::warn!(shed = %since.join(" "), "overload: requests answered 503 at the door");
        self.shed_seen = now;
    }

    /// Takes one event into the batch, noting whether it is an INFO read before `late`
    /// (it is still handled: the work of parsing it is done; the readers shed the next
    /// ones at the door instead, see `Backlog::set_late`).
    fn absorb(&mut self, ev: Event, late: Option<tokio::time::Instant>) {
        match ev {
            Event::Http(request, reply) => {
                self.waiting.next.0 += 1;
                let req = self.waiting.next;
                self.waiting.pending.insert(req, reply);
                self.inputs.push(Input::Http { req, request });
            }
            Event::Register(conn, w) => {
                self.writers.insert(conn, w);
            }
            Event::Read(i, at) => {
                if late.is_some_and(|l| at < l) && is_info(&i) {
                    self.saw_late = true;
                }
                self.inputs.push(i);
            }
            Event::Input(i) => self.inputs.push(i),
        }
    }

    /// Hands the batch to the core and queues its actions on the writers.
    fn run_batch(&mut self, core: &mut Core) {
        // A connection closed by its reader keeps its writer until this batch's answers
        // are queued (a request and a framing error in one read: the request is still
        // answered, then the writer ends when its senders are gone).
        let closed: Vec<ConnId> = self
            .inputs
            .iter()
            .filter_map(|i| match i {
                Input::Closed { conn } => Some(*conn),
                _ => None,
            })
            .collect();
        let now_ms = core.clock.now_ms();
        core.handle_batch_at(now_ms, self.inputs.drain(..), &mut self.actions);
        let mut slow = Vec::new();
        for a in self.actions.drain(..) {
            match a {
                Action::Send { conn, head, body } => {
                    if let Some(w) = self.writers.get(&conn) {
                        if !w.send(head, body) {
                            slow.push(conn);
                        }
                    }
                }
                Action::Close { conn } => {
                    // An empty head tells the writer to stop (the reader then stops too).
                    if let Some(w) = self.writers.remove(&conn) {
                        w.close();
                    }
                }
                Action::Http { req, reply } => {
                    if let Some(w) = self.waiting.pending.remove(&req) {
                        let _ = w.send(reply);
                    }
                }
            }
        }
        for conn in closed {
            self.writers.remove(&conn);
        }
        self.writers_gone(core, slow);
    }

    /// Connections whose writer is gone (peer stalled, socket failed): the core closes
    /// their dialogs; what that sends to other connections is queued.
    fn writers_gone(&mut self, core: &mut Core, gone: Vec<ConnId>) {
        for conn in gone {
            if self.writers.remove(&conn).is_some() {
                tracing::info!(conn = %conn, "writer gone (peer stalled or socket failed)");
                let mut out = Vec::new();
                core.handle(Input::Closed { conn }, &mut out);
                for a in out {
                    if let Action::Send { conn, head, body } = a {
                        if let Some(w) = self.writers.get(&conn) {
                            w.send(head, body);
                        }
                    }
                }
            }
        }
    }
}

/// Whether `i` is an INFO request (a post or command).
fn is_info(i: &Input) -> bool {
    matches!(i, Input::Sip { msg: SipMessage::Request(req), .. } if req.method == "INFO")
}

/// Web requests waiting for the core's answer, by request id.
#[derive(Default)]
struct HttpWaiting {
    next: crate::web::api::HttpReqId,
    pending: BTreeMap<crate::web::api::HttpReqId, oneshot::Sender<crate::web::api::HttpReply>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &[u8] = b"INFO sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKq1\r\n\
        Max-Forwards: 70\r\nFrom: <sip:a@contoso.com>;tag=a1\r\nTo: <sip:pchat@contoso.com>;tag=p1\r\n\
        Call-ID: q-1\r\nCSeq: 7 INFO\r\nContent-Length: 0\r\n\r\n";

    /// `[sip] max_queue_delay`: an INFO that waited longer is still handed to the core
    /// (its parse is paid for) but marks the batch late, so the readers shed the next
    /// ones at the door; another method, or a fresh INFO, does not.
    #[tokio::test]
    async fn a_post_that_waited_too_long_marks_the_queue_late() {
        let mut io = CoreIo::new(&SipConfig::default());
        let conn = ConnId(1);
        let msg = || parse_frame(&Bytes::from_static(INFO)).expect("valid INFO");
        let read = tokio::time::Instant::now();
        let late = Some(read + std::time::Duration::from_millis(1));
        let bye = String::from_utf8_lossy(INFO).replace("INFO", "BYE");
        let bye = parse_frame(&Bytes::from(bye)).expect("valid BYE");
        io.absorb(Event::Read(Input::Sip { conn, msg: bye }, read), late);
        io.absorb(Event::Read(Input::Sip { conn, msg: msg() }, read), None);
        assert!(!io.saw_late, "a BYE or a fresh INFO is not late");
        io.absorb(Event::Read(Input::Sip { conn, msg: msg() }, read), late);
        assert!(io.saw_late, "an INFO read before the bound is late");
        assert_eq!(io.inputs.len(), 3, "every input still goes to the core");
    }

    #[test]
    fn success_responses_are_recognized_by_their_status_line() {
        use super::is_success_response as ok;
        assert!(ok(b"SIP/2.0 200 OK\r\nCSeq: 2 INFO\r\n\r\n"));
        assert!(ok(b"SIP/2.0 202 Accepted\r\n\r\n"));
        assert!(!ok(b"SIP/2.0 481 Call/Transaction Does Not Exist\r\n\r\n"));
        assert!(!ok(b"INFO sip:x SIP/2.0\r\n\r\n"));
        assert!(!ok(b"SIP/2.0 2000 OK\r\n\r\n"));
        assert!(!ok(b"SIP/2.0 20"));
    }
}
