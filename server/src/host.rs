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
use crate::net::overload::{self, Backlog, ConnOut};
use crate::net::Event;
pub use crate::net::Listener;
use crate::sip::{parse_frame, Framer, SipMessage};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
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
    let core_task = tokio::spawn(core_loop(core, rx, stop_rx, sip.send_queue.max(1)));
    let (http_stop, http_task) = match (http, http_cfg) {
        (Some(h), Some(cfg)) => {
            let (stop, stopped) = oneshot::channel::<()>();
            let handle = crate::web::CoreHandle::new(tx.clone());
            let stopped = async move {
                let _ = stopped.await;
            };
            let task = match https {
                Some(acceptor) => {
                    let timeout = crate::web::HEADER_READ_TIMEOUT;
                    let h = crate::https::TlsListener::new(h, acceptor, timeout);
                    tokio::spawn(crate::web::serve(h, handle, cfg, stopped))
                }
                None => tokio::spawn(crate::web::serve(h, handle, cfg, stopped)),
            };
            (Some(stop), Some(task))
        }
        _ => (None, None),
    };
    let (worker_stop, worker_task) = match worker.map(|w| w.with_clock(clock)) {
        Some(w) => {
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(w.run(async move {
                let _ = stopped.await;
            }));
            (Some(stop), Some(task))
        }
        None => (None, None),
    };
    let backlog = Backlog::new(sip.server_backlog_bytes);
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
    if let (Some(stop), Some(task)) = (http_stop, http_task) {
        let _ = stop.send(());
        let _ = task.await;
    }
    let _ = stop_tx.send(());
    let _ = core_task.await;
    if let (Some(stop), Some(task)) = (worker_stop, worker_task) {
        let _ = stop.send(());
        let _ = task.await;
    }
    result
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
    let (out, queue) = overload::channel(sip.send_queue, backlog);
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
    tokio::spawn(reader(
        conn,
        read_half,
        tx,
        out,
        ReaderLimits {
            max_message_bytes: sip.max_message_bytes,
            retry_after_s: sip.retry_after_s,
            header_timeout: std::time::Duration::from_millis(sip.header_timeout.0),
        },
        faults,
    ));
}

/// A reader's limits (from `[sip]`).
struct ReaderLimits {
    max_message_bytes: usize,
    retry_after_s: u32,
    /// Time to complete a message once its first byte arrived (`[sip] header_timeout`).
    header_timeout: std::time::Duration,
}

/// Reads into `buf`; `None` when the connection is over: end of stream, error, the
/// writer ended (`out`), or a started message not completed by `deadline`.
async fn read_some<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    out: &ConnOut,
    deadline: Option<tokio::time::Instant>,
    conn: ConnId,
) -> Option<usize> {
    let slow = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = out.ended() => None,
        _ = slow => {
            tracing::info!(conn = %conn, "message not completed within [sip] header_timeout: closing");
            None
        }
        n = r.read(buf) => match n {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
    }
}

/// Size of each connection's read buffer, in bytes.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

async fn reader<R: AsyncRead + Unpin>(
    conn: ConnId,
    mut r: R,
    tx: mpsc::Sender<Event>,
    out: ConnOut,
    limits: ReaderLimits,
    faults: Faults,
) {
    let retry_after_s = limits.retry_after_s;
    let mut framer = Framer::new(limits.max_message_bytes);
    // Per connection, so it counts x sessions in RSS; a typical message is under 1 KiB
    // and the framer gathers larger ones across reads.
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    // When the message now being received must be complete (`[sip] header_timeout`).
    let mut deadline: Option<tokio::time::Instant> = None;
    'conn: loop {
        let Some(n) = read_some(&mut r, &mut buf, &out, deadline, conn).await else {
            break;
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    deadline = None;
                    if is_success_response(&frame) {
                        // A 2xx to one of our INFOs (one per relayed message): it ends
                        // our transaction and the core has nothing to do with it
                        // (`Core::on_response` acts on 481/487 only), so it is not
                        // parsed nor queued - under fan-out these are most of the input.
                        continue;
                    }
                    if frame.starts_with(b"INFO ") && (out.shedding() || core_busy(&tx)) {
                        // Shed at the door, before the full parse: under overload the
                        // answer must cost less than the work it turns away.
                        if let Some(head) = shed_answer(&frame, retry_after_s) {
                            out.send(head, Bytes::new());
                        }
                        continue;
                    }
                    let parsed = parse_frame(&frame);
                    if let Ok(SipMessage::Request(req)) = &parsed {
                        if shed_after_parse(req, &out, &tx, &faults) {
                            out.send(overloaded(req, retry_after_s), Bytes::new());
                            continue;
                        }
                    }
                    let input = match parsed {
                        Ok(msg) => Input::Sip { conn, msg },
                        Err(e) => {
                            // Refused before the core (no state needed): answered here,
                            // with the status the defect calls for (400, 416, 505).
                            tracing::debug!(conn = %conn, "malformed SIP message: {e}");
                            let Some(refused) = Input::refused(conn, &frame, e.code, &e.reason)
                            else {
                                continue;
                            };
                            refused
                        }
                    };
                    if let Err(e) = tx.try_send(Event::Input(input)) {
                        match e {
                            mpsc::error::TrySendError::Full(Event::Input(Input::Sip {
                                msg: SipMessage::Request(req),
                                ..
                            })) if req.method != "ACK" => {
                                // Overload: bounded core queue full (call-flows.md step 2).
                                out.send(overloaded(&req, retry_after_s), Bytes::new());
                            }
                            mpsc::error::TrySendError::Full(Event::Input(Input::Refused {
                                head,
                                ..
                            })) => {
                                out.send(head, Bytes::new());
                            }
                            mpsc::error::TrySendError::Full(_) => {
                                tracing::debug!(conn = %conn, "core queue full; dropped a response/ACK");
                            }
                            mpsc::error::TrySendError::Closed(_) => break 'conn,
                        }
                    }
                }
                Ok(None) => {
                    // Part of a message is buffered: it must be complete in time.
                    if framer.buffered() > 0 && deadline.is_none() {
                        deadline = Some(tokio::time::Instant::now() + limits.header_timeout);
                    }
                    break;
                }
                Err(e) => {
                    // RFC 3261 18.3 / RFC 4475 3.1.2.3: answer what can be answered,
                    // then close unless the framer could skip the message (413).
                    let raw = match &e {
                        crate::sip::FramingError::BodyTooLarge { head, .. } => head.clone(),
                        _ => Bytes::copy_from_slice(framer.pending()),
                    };
                    if let Some(head) = refusal(&raw, e.status(), &framing_reason(&e)) {
                        // Queued behind this connection's earlier requests, so their
                        // answers go first; waits for room (the connection ends anyway).
                        let refused = Event::Input(Input::Refused { conn, head });
                        if e.is_recoverable() {
                            // The connection goes on: never wait on the core for it.
                            if let Err(mpsc::error::TrySendError::Full(Event::Input(
                                Input::Refused { head, .. },
                            ))) = tx.try_send(refused)
                            {
                                out.send(head, Bytes::new());
                            }
                        } else if tx.send(refused).await.is_err() {
                            break 'conn;
                        }
                    }
                    if e.is_recoverable() {
                        tracing::debug!(conn = %conn, "message over the size limit skipped: {e}");
                        continue;
                    }
                    tracing::info!(conn = %conn, "framing error, closing connection: {e}");
                    break 'conn;
                }
            }
        }
    }
    let _ = tx.send(Event::Input(Input::Closed { conn })).await;
}

/// Whether the queue into the core holds more than half its capacity (`[sip]
/// core_queue`): new INFOs are then shed at the door rather than queued behind seconds
/// of work (the rest of the queue keeps room for ACKs, BYEs and other requests).
fn core_busy(tx: &mpsc::Sender<Event>) -> bool {
    tx.max_capacity() - tx.capacity() > tx.max_capacity() / 2
}

/// Whether the reader answers a parsed request 503 + `Retry-After` itself: an INFO
/// while forced overload is on (`faults`, simulator and tests), or a **new session** - an INVITE without a
/// To tag (RFC 3261 12.1) - while the connection's or the server's send backlog is past
/// half its watermark or the core queue past a quarter
/// ([`ConnOut::shedding_new_sessions`]). New sessions are refused before the posts of
/// sessions already admitted (those are shed only at the full watermark), so under
/// overload the admitted calls complete instead of every call failing half-way.
fn shed_after_parse(
    req: &crate::sip::Request,
    out: &ConnOut,
    tx: &mpsc::Sender<Event>,
    faults: &Faults,
) -> bool {
    use crate::sip::Method;
    match req.method {
        Method::Info => faults.overloaded(),
        Method::Invite if req.to_tag().is_none() => out.shedding_new_sessions() || core_filling(tx),
        _ => false,
    }
}

/// Whether the queue into the core holds more than a quarter of its capacity: new
/// sessions are then refused (see [`shed_after_parse`]); INFOs only past half
/// ([`core_busy`]).
fn core_filling(tx: &mpsc::Sender<Event>) -> bool {
    tx.max_capacity() - tx.capacity() > tx.max_capacity() / 4
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

async fn core_loop(
    mut core: Core,
    mut rx: mpsc::Receiver<Event>,
    mut stop: oneshot::Receiver<()>,
    _send_queue: usize,
) {
    let mut writers: BTreeMap<ConnId, ConnOut> = BTreeMap::new();
    let mut waiting = HttpWaiting::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut inputs = Vec::with_capacity(MAX_BATCH);
    let mut actions = Vec::with_capacity(MAX_BATCH * 2);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                absorb(ev, &mut writers, &mut waiting, &mut inputs);
                while inputs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(ev) => absorb(ev, &mut writers, &mut waiting, &mut inputs),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => {
                // Only when something is due (Core::poll_timeout): an idle server does
                // no work, and opens no transaction, once a second.
                if core.poll_timeout().is_some_and(|t| t <= core.clock.now_ms()) {
                    inputs.push(Input::Tick);
                }
            }
        }
        if inputs.is_empty() {
            continue;
        }
        // A connection closed by its reader keeps its writer until this batch's answers
        // are queued (a request and a framing error in one read: the request is still
        // answered, then the writer ends when its senders are gone).
        let closed: Vec<ConnId> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::Closed { conn } => Some(*conn),
                _ => None,
            })
            .collect();
        let now_ms = core.clock.now_ms();
        core.handle_batch_at(now_ms, inputs.drain(..), &mut actions);
        let mut slow = Vec::new();
        for a in actions.drain(..) {
            match a {
                Action::Send { conn, head, body } => {
                    if let Some(w) = writers.get(&conn) {
                        if !w.send(head, body) {
                            slow.push(conn);
                        }
                    }
                }
                Action::Close { conn } => {
                    // An empty head tells the writer to stop (the reader then stops too).
                    if let Some(w) = writers.remove(&conn) {
                        w.close();
                    }
                }
                Action::Http { req, reply } => {
                    if let Some(w) = waiting.pending.remove(&req) {
                        let _ = w.send(reply);
                    }
                }
            }
        }
        for conn in closed {
            writers.remove(&conn);
        }
        for conn in slow {
            if writers.remove(&conn).is_some() {
                tracing::info!(conn = %conn, "writer gone (peer stalled or socket failed)");
                let mut out = Vec::new();
                core.handle(Input::Closed { conn }, &mut out);
                for a in out {
                    if let Action::Send { conn, head, body } = a {
                        if let Some(w) = writers.get(&conn) {
                            w.send(head, body);
                        }
                    }
                }
            }
        }
    }
    tracing::info!(dialogs = core.dialog_count(), stats = ?core.stats(), "channel service stopped");
}

/// Web requests waiting for the core's answer, by request id.
#[derive(Default)]
struct HttpWaiting {
    next: crate::web::api::HttpReqId,
    pending: BTreeMap<crate::web::api::HttpReqId, oneshot::Sender<crate::web::api::HttpReply>>,
}

fn absorb(
    ev: Event,
    writers: &mut BTreeMap<ConnId, ConnOut>,
    waiting: &mut HttpWaiting,
    inputs: &mut Vec<Input>,
) {
    match ev {
        Event::Http(request, reply) => {
            waiting.next.0 += 1;
            let req = waiting.next;
            waiting.pending.insert(req, reply);
            inputs.push(Input::Http { req, request });
        }
        Event::Register(conn, w) => {
            writers.insert(conn, w);
        }
        Event::Input(i) => inputs.push(i),
    }
}

#[cfg(test)]
mod tests {
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
