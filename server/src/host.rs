//! The I/O driver: accepts SIP/TCP connections, frames and parses messages, feeds the
//! [`Core`] in batches and writes out its actions. Generic over the listener so the same
//! code runs on tokio's TCP (the binary) and on turmoil's simulated TCP (the simulator).
//!
//! Tasks: one accept loop; per connection a reader (framing + parsing, so parsing runs
//! in parallel) and a writer; one core task that owns the [`Core`] and the store.
//! Every queue is bounded: the core queue (`[sip] core_queue`) answers 503 +
//! Retry-After when full; a connection whose send queue (`[sip] send_queue`) fills is
//! closed - memory never grows without bound (DESIGN.md, overload).

use crate::config::SipConfig;
use crate::core::{Action, ConnId, Core, Input};
use crate::fault::Faults;
use crate::sip::{parse, response_for, Framer, SipMessage};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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

/// A stream listener: tokio's or turmoil's TCP (or anything else that yields streams).
pub trait Listener: Send + 'static {
    /// The connection type.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// Waits for the next connection, with what the transport knows of its peer
    /// (TLS, client certificate); default: [`Listener::accept`] and the address only.
    fn accept_peer(
        &mut self,
    ) -> impl Future<Output = io::Result<(Self::Stream, crate::auth::Peer)>> + Send {
        async move {
            let (s, a) = self.accept().await?;
            Ok((s, crate::auth::Peer::from_addr(a)))
        }
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, a) = tokio::net::TcpListener::accept(self).await?;
        let _ = s.set_nodelay(true);
        Ok((s, a))
    }
}

type Outgoing = (Bytes, Bytes);

/// What the core task receives: network input, a connection's writer, or a web
/// services request with the channel its answer goes back on.
pub(crate) enum Event {
    Input(Input),
    Register(ConnId, mpsc::Sender<Outgoing>),
    Http(
        crate::web::api::HttpRequest,
        oneshot::Sender<crate::web::api::HttpReply>,
    ),
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
    let sip = core.config().sip.clone();
    let http_cfg = core.config().http.clone();
    let (tx, rx) = mpsc::channel::<Event>(sip.core_queue.max(1));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let core_task = tokio::spawn(core_loop(core, rx, stop_rx, sip.send_queue.max(1)));
    let (http_stop, http_task) = match (http, http_cfg) {
        (Some(h), Some(cfg)) => {
            let (stop, stopped) = oneshot::channel::<()>();
            let handle = crate::web::CoreHandle::new(tx.clone());
            let task = tokio::spawn(crate::web::serve(h, handle, cfg, async move {
                let _ = stopped.await;
            }));
            (Some(stop), Some(task))
        }
        _ => (None, None),
    };
    let (worker_stop, worker_task) = match worker {
        Some(w) => {
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(w.run(async move {
                let _ = stopped.await;
            }));
            (Some(stop), Some(task))
        }
        None => (None, None),
    };
    let mut next_conn: ConnId = 0;
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            accepted = listener.accept_peer() => match accepted {
                Ok((stream, peer)) => {
                    next_conn += 1;
                    tracing::debug!(conn = next_conn, addr = %peer.addr, tls = peer.tls, "connection accepted");
                    spawn_connection(next_conn, stream, peer, tx.clone(), &sip, faults.clone()).await;
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

/// Starts a connection's reader and writer. `peer` goes to the core first
/// ([`Input::Connected`], for the authentication gate). When the writer ends (the
/// core closed the connection, or a write failed) the reader stops too.
pub(crate) async fn spawn_connection<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    conn: ConnId,
    stream: S,
    peer: crate::auth::Peer,
    tx: mpsc::Sender<Event>,
    sip: &SipConfig,
    faults: Faults,
) {
    let (read_half, write_half) = tokio::io::split(stream);
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(sip.send_queue.max(1));
    if tx
        .send(Event::Register(conn, out_tx.clone()))
        .await
        .is_err()
    {
        return;
    }
    if tx
        .send(Event::Input(Input::Connected { conn, peer }))
        .await
        .is_err()
    {
        return;
    }
    let (closed_tx, closed_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        writer(write_half, out_rx).await;
        let _ = closed_tx.send(());
    });
    tokio::spawn(reader(
        conn,
        read_half,
        tx,
        out_tx,
        ReaderLimits {
            max_message_bytes: sip.max_message_bytes,
            retry_after_s: sip.retry_after_s,
            header_timeout: std::time::Duration::from_millis(sip.header_timeout.0),
        },
        faults,
        closed_rx,
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
/// writer ended (`closed`), or a started message not completed by `deadline`.
async fn read_some<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    closed: &mut oneshot::Receiver<()>,
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
        _ = closed => None,
        _ = slow => {
            tracing::info!(conn, "message not completed within [sip] header_timeout: closing");
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

/// Most bytes gathered from a connection's send queue into one socket write.
pub const WRITE_COALESCE_BYTES: usize = 64 * 1024;

/// Writes a connection's queued messages, gathering whatever is queued (up to
/// [`WRITE_COALESCE_BYTES`]) into one write: under fan-out a connection often has
/// several relays waiting, and one syscall per message would dominate. The gather
/// buffer lives only for one write, so an idle connection holds no buffer.
async fn writer<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Outgoing>) {
    while let Some((head, body)) = rx.recv().await {
        if head.is_empty() {
            break; // the core closed the connection (`Action::Close`)
        }
        let mut buf = Vec::with_capacity(head.len() + body.len());
        buf.extend_from_slice(&head);
        buf.extend_from_slice(&body);
        let mut closing = false;
        while buf.len() < WRITE_COALESCE_BYTES {
            match rx.try_recv() {
                Ok((head, _)) if head.is_empty() => {
                    closing = true;
                    break;
                }
                Ok((head, body)) => {
                    buf.extend_from_slice(&head);
                    buf.extend_from_slice(&body);
                }
                Err(_) => break,
            }
        }
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() || closing {
            break;
        }
    }
    let _ = w.shutdown().await;
}

async fn reader<R: AsyncRead + Unpin>(
    conn: ConnId,
    mut r: R,
    tx: mpsc::Sender<Event>,
    out: mpsc::Sender<Outgoing>,
    limits: ReaderLimits,
    faults: Faults,
    mut closed: oneshot::Receiver<()>,
) {
    let retry_after_s = limits.retry_after_s;
    let mut framer = Framer::new(limits.max_message_bytes);
    // Per connection, so it counts x sessions in RSS; a typical message is under 1 KiB
    // and the framer gathers larger ones across reads.
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    // When the message now being received must be complete (`[sip] header_timeout`).
    let mut deadline: Option<tokio::time::Instant> = None;
    'conn: loop {
        let Some(n) = read_some(&mut r, &mut buf, &mut closed, deadline, conn).await else {
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
                    let parsed = parse(&frame);
                    if let Ok(SipMessage::Request(req)) = &parsed {
                        if req.method == "INFO" && faults.overloaded() {
                            let _ = out.try_send((overloaded(req, retry_after_s), Bytes::new()));
                            continue;
                        }
                    }
                    let input = match parsed {
                        Ok(msg) => Input::Sip { conn, msg },
                        Err(e) => Input::Malformed {
                            conn,
                            raw: frame,
                            reason: e.to_string(),
                        },
                    };
                    if let Err(e) = tx.try_send(Event::Input(input)) {
                        match e {
                            mpsc::error::TrySendError::Full(Event::Input(Input::Sip {
                                msg: SipMessage::Request(req),
                                ..
                            })) if req.method != "ACK" => {
                                // Overload: bounded core queue full (call-flows.md step 2).
                                let head = overloaded(&req, retry_after_s);
                                let _ = out.try_send((head, Bytes::new()));
                            }
                            mpsc::error::TrySendError::Full(_) => {
                                tracing::debug!(conn, "core queue full; dropped a response/ACK");
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
                    tracing::info!(conn, "framing error, closing connection: {e}");
                    break 'conn;
                }
            }
        }
    }
    let _ = tx.send(Event::Input(Input::Closed { conn })).await;
}

/// Whether a framed message is a 2xx response (`SIP/2.0 2xx `, RFC 3261 7.2).
fn is_success_response(frame: &[u8]) -> bool {
    matches!(frame, [b'S', b'I', b'P', b'/', b'2', b'.', b'0', b' ', b'2', d1, d2, b' ', ..]
        if d1.is_ascii_digit() && d2.is_ascii_digit())
}

/// `503 Service Unavailable` + `Retry-After: <s>` for `req` (RFC 3261 21.5.4, 20.33).
fn overloaded(req: &crate::sip::Request, retry_after_s: u32) -> Bytes {
    response_for(req, 503, "Service Unavailable")
        .with_header("Retry-After", retry_after_s.to_string())
        .with_header("Server", crate::core::SERVER_HEADER)
        .encode()
}

async fn core_loop(
    mut core: Core,
    mut rx: mpsc::Receiver<Event>,
    mut stop: oneshot::Receiver<()>,
    _send_queue: usize,
) {
    let mut writers: BTreeMap<ConnId, mpsc::Sender<Outgoing>> = BTreeMap::new();
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
            _ = tick.tick() => inputs.push(Input::Tick),
        }
        if inputs.is_empty() {
            continue;
        }
        core.handle_batch(inputs.drain(..), &mut actions);
        let mut slow = Vec::new();
        for a in actions.drain(..) {
            match a {
                Action::Send { conn, head, body } => {
                    if let Some(w) = writers.get(&conn) {
                        if w.try_send((head, body)).is_err() {
                            slow.push(conn);
                        }
                    }
                }
                Action::Close { conn } => {
                    // An empty head tells the writer to stop (the reader then stops too).
                    if let Some(w) = writers.remove(&conn) {
                        let _ = w.try_send((Bytes::new(), Bytes::new()));
                    }
                }
                Action::Http { req, reply } => {
                    if let Some(w) = waiting.pending.remove(&req) {
                        let _ = w.send(reply);
                    }
                }
            }
        }
        for conn in slow {
            if writers.remove(&conn).is_some() {
                tracing::warn!(conn, "send queue full or closed: disconnecting the peer");
                let mut out = Vec::new();
                core.handle(Input::Closed { conn }, &mut out);
                for a in out {
                    if let Action::Send { conn, head, body } = a {
                        if let Some(w) = writers.get(&conn) {
                            let _ = w.try_send((head, body));
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
    writers: &mut BTreeMap<ConnId, mpsc::Sender<Outgoing>>,
    waiting: &mut HttpWaiting,
    inputs: &mut Vec<Input>,
) {
    match ev {
        Event::Http(request, reply) => {
            waiting.next += 1;
            let req = waiting.next;
            waiting.pending.insert(req, reply);
            inputs.push(Input::Http { req, request });
        }
        Event::Register(conn, w) => {
            writers.insert(conn, w);
        }
        Event::Input(i) => {
            if let Input::Closed { conn } = &i {
                writers.remove(conn);
            }
            inputs.push(i);
        }
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
