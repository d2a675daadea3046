//! The authentication gate and the slow-connection limits through the real I/O
//! driver on loopback TCP (issue 12): a nonce past its lifetime is answered 401
//! `stale=true` and a fresh answer then signs in; a nonce and nonce-count used once
//! are refused on another connection (replay); a message not completed within
//! `[sip] header_timeout`, or a connection that does not authenticate within
//! `[sip] unauthenticated_timeout`, is closed; beyond `[sip] max_unauthenticated`
//! waiting connections new ones are closed at once. Every wait is bounded.

mod common;

use common::{digest_answer, exchange, user1_pw1};
use pchat_server::clock::TokioClock;
use pchat_server::config::{AuthMode, Config, RunInterval};
use pchat_server::sip::{Framer, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server(
    tune: impl FnOnce(&mut Config),
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut cfg = Config::embedded_default();
    cfg.auth.mode = AuthMode::Digest;
    cfg.users = vec![user1_pw1()];
    tune(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = pchat_server::store::SqliteStore::in_memory().unwrap();
    let clock = Arc::new(TokioClock::starting_at(1_700_000_000_000));
    let core = pchat_server::core::Core::new(
        cfg,
        Box::new(store),
        clock,
        9,
        &addr.to_string(),
        Default::default(),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(pchat_server::host::serve(listener, core, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn options(cseq: u32, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "OPTIONS sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKo{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:user1@contoso.com>;tag=o\r\nTo: <sip:pchat@contoso.com>\r\n\
         Call-ID: opt\r\nCSeq: {cseq} OPTIONS\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

fn answer(ch: &Response, password: &str, nc: u32) -> String {
    digest_answer(ch, "user1", password, nc, "OPTIONS")
}

/// Whether the server closes `s` within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn stale_nonce_then_fresh_answer_and_replay_refused() {
    let (addr, _stop) = server(|c| c.auth.nonce_ttl_s = 1).await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut fa = Framer::new(1 << 20);
    let ch = exchange(&mut a, &mut fa, &options(1, None)).await;
    assert_eq!(ch.code, 401);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = exchange(&mut a, &mut fa, &options(2, Some(&answer(&ch, "pw1", 1)))).await;
    assert_eq!(late.code, 401);
    assert!(
        late.headers
            .get("WWW-Authenticate")
            .unwrap()
            .contains("stale=true"),
        "{late:?}"
    );
    let cred = answer(&late, "pw1", 1);
    let ok = exchange(&mut a, &mut fa, &options(3, Some(&cred))).await;
    assert_eq!(ok.code, 200);
    // The same nonce and count on another connection: a replay, refused.
    let mut b = TcpStream::connect(addr).await.unwrap();
    let mut fb = Framer::new(1 << 20);
    let replay = exchange(&mut b, &mut fb, &options(1, Some(&cred))).await;
    assert_eq!(
        (replay.code, replay.reason.as_str()),
        (401, "Unauthorized: nonce count replayed")
    );
    assert!(!replay
        .headers
        .get("WWW-Authenticate")
        .unwrap()
        .contains("stale"));
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    let (addr, _stop) = server(|c| {
        c.sip.header_timeout = RunInterval(300);
        c.sip.unauthenticated_timeout = RunInterval(500);
        c.sip.max_unauthenticated = 2;
    })
    .await;
    // Half a message, then silence: closed after header_timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"OPTIONS sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)).await,
        "slow message closed"
    );
    // Connected and silent: closed after the unauthenticated deadline (ticks are 1 s).
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_secs(4)).await,
        "idle unauthenticated closed"
    );
    // Two waiting connections at once: a third is closed at once.
    let mut w1 = TcpStream::connect(addr).await.unwrap();
    let _w2 = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut w3 = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut w3, Duration::from_millis(400)).await,
        "over max_unauthenticated"
    );
    // An authenticated connection stays.
    let mut f = Framer::new(1 << 20);
    let ch = exchange(&mut w1, &mut f, &options(1, None)).await;
    let ok = exchange(&mut w1, &mut f, &options(2, Some(&answer(&ch, "pw1", 1)))).await;
    assert_eq!(ok.code, 200);
    assert!(
        !closed_within(&mut w1, Duration::from_millis(1500)).await,
        "authenticated stays open"
    );
}
