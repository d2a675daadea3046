//! The loopback harness shared by the wire tests: a real `host::serve` on
//! `127.0.0.1:0` (in-memory store) and a blocking client that frames what it gets.
#![allow(dead_code)]

use pchat_server::clock::TokioClock;
use pchat_server::config::Config;
use pchat_server::sip::Framer;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(5);
pub const QUIET: Duration = Duration::from_millis(400);

/// A server on `127.0.0.1:0` with an in-memory store, run on its own runtime thread
/// until the returned sender is dropped.
pub struct Server {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub fn start(configure: impl FnOnce(&mut Config) + Send + 'static) -> Server {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let mut cfg = Config::embedded_default();
            cfg.store.path = ":memory:".into();
            // SIP conformance, not authentication (server/tests/auth_host.rs has that):
            // the embedded default's Digest is off, as on any loopback lab server.
            cfg.auth.mode = pchat_server::config::AuthMode::None;
            configure(&mut cfg);
            let clock = Arc::new(TokioClock::starting_at(1_700_000_000_000));
            let core = pchat_server::build_core(cfg, clock, 7, &addr.to_string()).expect("core");
            addr_tx.send(addr).expect("addr");
            let _ = pchat_server::host::serve(listener, core, async move {
                let _ = stopped.await;
            })
            .await;
        });
    });
    let addr = addr_rx.recv_timeout(WAIT).expect("server started");
    Server { addr, _stop: stop }
}

/// What the test reads from an answer: status line and the headers it checks (read by
/// hand: an answer echoes the torture message's headers, which our parser may refuse).
#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub call_id: Option<String>,
    pub cseq_method: Option<String>,
    pub text: String,
}

impl Response {
    pub fn read(frame: &[u8]) -> Option<Response> {
        let text = String::from_utf8_lossy(frame);
        let mut lines = text.split("\r\n");
        let status = lines.next()?.strip_prefix("SIP/2.0 ")?;
        let (code, reason) = status.split_once(' ').unwrap_or((status, ""));
        let header = |name: &str| {
            text.split("\r\n").skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        Some(Response {
            code: code.parse().ok()?,
            reason: reason.to_string(),
            call_id: header("Call-ID"),
            cseq_method: header("CSeq")
                .and_then(|c| c.split_whitespace().nth(1).map(str::to_string)),
            text: text.to_string(),
        })
    }

    pub fn call_id(&self) -> Option<&str> {
        self.call_id.as_deref()
    }
}

/// A client connection that frames what the server sends.
pub struct Client {
    pub s: TcpStream,
    framer: Framer,
    pub closed: bool,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(50))).ok();
        Client {
            s,
            framer: Framer::new(1 << 20),
            closed: false,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// The next response within `wait`, `None` if none came (or the server closed).
    pub fn next(&mut self, wait: Duration) -> Option<Response> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 8192];
        loop {
            if let Ok(Some(frame)) = self.framer.next_frame() {
                match Response::read(&frame) {
                    Some(r) => return Some(r),
                    None => panic!(
                        "server sent something that is not a response: {:?}",
                        String::from_utf8_lossy(&frame)
                    ),
                }
            }
            if self.closed || Instant::now() >= deadline {
                return None;
            }
            match self.s.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.framer.push(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => self.closed = true,
            }
        }
    }

    /// Whether the server closed the connection within `wait` (reads until EOF).
    pub fn closes_within(&mut self, wait: Duration) -> bool {
        while self.next(wait).is_some() {}
        self.closed
    }

    /// An OPTIONS on the same connection is answered 200: the connection is usable.
    pub fn still_serves(&mut self, tag: &str) -> bool {
        let probe = format!(
            "OPTIONS sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK-probe-{tag}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:probe@contoso.com>;tag=p\r\nTo: <sip:pchat@contoso.com>\r\n\
             Call-ID: probe-{tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        self.send(probe.as_bytes());
        let r = self.next(WAIT);
        matches!(&r, Some(r) if r.code == 200 && r.call_id() == Some(&*format!("probe-{tag}")))
    }
}
