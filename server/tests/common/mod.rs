//! Harness shared by the tests that run a server over loopback TCP: the real binary
//! as a child process (`kill9.rs`, `pool_live.rs`, `embedded_auth.rs`) with a blocking
//! SIP session, and the in-process helpers of the async tests (`auth_host.rs`,
//! `tls.rs`): a request/response exchange and a Digest answer. Every wait is bounded.
#![allow(dead_code)]

use pchat_server::auth::digest::{self, Algorithm, Credentials};
use pchat_server::cmd::{Cmd, CmdKind, Join};
use pchat_server::config::UserConfig;
use pchat_server::sip::{parse, response_for, Framer, Response, SipMessage};
use pchat_server::xccos::{Body, ChanRef, Envelope, GrpChat};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The server binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pchat-server");

/// A minimal SDP offer for INVITEs (the chat media line pchat accepts).
pub const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 5060 sip null\r\n";

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A server process, killed (-9) when dropped: a failed test leaves none behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Starts `pchat-server` in `dir` with `args`, `RUST_LOG=log`, stdout discarded and
    /// stderr shown when `show_stderr`.
    pub fn start(dir: &Path, args: &[&str], log: &str, show_stderr: bool) -> Proc {
        let stderr = if show_stderr {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        Proc(
            Command::new(BIN)
                .current_dir(dir)
                .args(args)
                .env("RUST_LOG", log)
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("pchat-server starts"),
        )
    }

    /// `kill -9`, and waits for the exit.
    pub fn kill9(&mut self) {
        self.0.kill().expect("kill -9");
        let _ = self.0.wait();
    }

    /// SIGTERM (a clean stop: the compliance worker's final run), then waits up to 10 s;
    /// killed (-9) if still running.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Connects to `127.0.0.1:port`, retrying for 30 s while the server starts; reads time
/// out after `read_timeout`.
pub fn connect(port: u16, read_timeout: Duration) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(read_timeout)).ok();
                return s;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("server did not listen on {port}: {e}"),
        }
    }
}

/// `pchat-server --config config compliance verify` succeeds and finds nothing missing
/// or duplicated.
pub fn assert_compliance_verified(config: &Path) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["compliance", "verify"])
        .output()
        .expect("verify runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("missing: 0") && report.contains("duplicated: 0"),
        "{report}"
    );
}

/// The URI of the configured room "Design" of `contoso.com`.
pub fn design_uri() -> String {
    let guid = pchat_server::ids::room_guid("contoso.com", "Design");
    pchat_server::ids::room_uri("contoso.com", &guid)
}

/// The XCCOS envelope `envid` of `cmd:join` (seqid 1) of "Design".
pub fn join_xml(envid: u64) -> String {
    join_room_xml(envid, &design_uri())
}

/// The XCCOS envelope `envid` of `cmd:join` (seqid 1) of the room `uri`.
pub fn join_room_xml(envid: u64, uri: &str) -> String {
    let kind = CmdKind::Join(Join {
        chan: ChanRef::Uri(uri.to_string()),
    });
    let body = Body::Cmd(Cmd { seqid: 1, kind }.to_elem());
    Envelope { envid, body }.to_xml()
}

/// The XCCOS envelope `envid` of a `grpchat` of `text` in "Design".
pub fn post_xml(envid: u64, text: &str) -> String {
    post_room_xml(envid, &design_uri(), text)
}

/// The XCCOS envelope `envid` of a `grpchat` of `text` in the room `uri`.
pub fn post_room_xml(envid: u64, uri: &str, text: &str) -> String {
    let body = Body::GrpChat(GrpChat {
        msgid: None,
        seqid: 1,
        chan_uri: uri.to_string(),
        author: None,
        ts: None,
        text: text.to_string(),
    });
    Envelope { envid, body }.to_xml()
}

/// What a session received: final responses by CSeq (code, To header), the bodies of
/// server INFOs; `closed` stops the reader.
#[derive(Default)]
pub struct Inbox {
    pub responses: BTreeMap<u32, (u16, String)>,
    pub infos: Vec<String>,
    pub closed: bool,
}

/// Reads `s` until EOF or `inbox.closed`: records final responses, answers every server
/// request 200 and records its body.
fn reader(mut s: TcpStream, inbox: Arc<Mutex<Inbox>>) {
    let mut framer = Framer::new(1 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = s.try_clone().expect("clone");
    while !inbox.lock().unwrap().closed {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        framer.push(&buf[..n]);
        while let Ok(Some(frame)) = framer.next_frame() {
            match parse(&frame) {
                Ok(SipMessage::Response(r)) if r.code >= 200 => {
                    if let Some((cseq, _)) = r.cseq() {
                        let to = r.headers.get("To").unwrap_or_default().to_string();
                        inbox.lock().unwrap().responses.insert(cseq, (r.code, to));
                    }
                }
                Ok(SipMessage::Request(req)) => {
                    let _ = w.write_all(&response_for(&req, 200, "OK").encode());
                    let body = String::from_utf8_lossy(&req.body).to_string();
                    inbox.lock().unwrap().infos.push(body);
                }
                _ => {}
            }
        }
    }
}

/// A chat session (INVITE/ACK done) over a blocking connection; a reader thread fills
/// `inbox`.
pub struct Session {
    pub w: TcpStream,
    pub local: String,
    pub from: String,
    pub call_id: String,
    pub to: String,
    pub cseq: u32,
    pub inbox: Arc<Mutex<Inbox>>,
}

impl Session {
    /// Opens `user`'s session on `port`: From tag `tag`, branches `z9hG4bK-{branch}-N`.
    /// Panics unless the INVITE is answered 200.
    pub fn open(port: u16, user: &str, tag: &str, branch: &str, call_id: String) -> Session {
        let s = connect(port, Duration::from_millis(100));
        let local = s.local_addr().expect("local").to_string();
        let inbox: Arc<Mutex<Inbox>> = Arc::default();
        let (r, ib) = (s.try_clone().expect("clone"), inbox.clone());
        std::thread::spawn(move || reader(r, ib));
        let from = format!("<sip:{user}@contoso.com>;tag={tag}");
        let invite = format!(
            "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-{branch}-1\r\nMax-Forwards: 70\r\n\
             From: {from}\r\nTo: <sip:pchat@contoso.com>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:{user}@{local};transport=tcp>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        );
        let mut w = s;
        w.write_all(invite.as_bytes()).expect("send INVITE");
        let mut session = Session {
            w,
            local,
            from,
            call_id,
            to: String::new(),
            cseq: 1,
            inbox,
        };
        assert_eq!(session.wait_code(1), Some(200), "INVITE answered");
        session.to = session.inbox.lock().unwrap().responses[&1].1.clone();
        let ack = format!(
            "ACK sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK-{branch}-ack\r\nMax-Forwards: 70\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            session.local, session.from, session.to, session.call_id
        );
        session.w.write_all(ack.as_bytes()).expect("send ACK");
        session
    }

    /// Sends an in-dialog INFO with `body` (XCCOS); returns its CSeq. A write error is
    /// ignored (the server may be gone: the missing answer tells).
    pub fn info(&mut self, body: &str) -> u32 {
        self.cseq += 1;
        let msg = format!(
            "INFO sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK-{}-{}\r\nMax-Forwards: 70\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} INFO\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            self.local, self.call_id, self.cseq, self.from, self.to, self.call_id, self.cseq, body.len()
        );
        let _ = self.w.write_all(msg.as_bytes());
        self.cseq
    }

    /// The final response code to `cseq`, waiting up to 15 s; `None` if none came.
    pub fn wait_code(&self, cseq: u32) -> Option<u16> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some((c, _)) = self.inbox.lock().unwrap().responses.get(&cseq) {
                return Some(*c);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Joins "Design"; panics unless answered 200.
    pub fn join(&mut self) {
        self.join_room(&design_uri());
    }

    /// Joins the room `uri`; panics unless answered 200.
    pub fn join_room(&mut self, uri: &str) {
        let cseq = self.info(&join_room_xml(1, uri));
        assert_eq!(self.wait_code(cseq), Some(200), "join answered");
    }

    /// Posts `text` to "Design"; panics unless acknowledged 200.
    pub fn post(&mut self, envid: u64, text: &str) {
        let cseq = self.info(&post_xml(envid, text));
        assert_eq!(self.wait_code(cseq), Some(200), "post {text} acknowledged");
    }

    /// How many received INFOs contain `needle`, once `want` of them arrived or after
    /// `wait`.
    pub fn count(&self, needle: &str, want: usize, wait: Duration) -> usize {
        let deadline = Instant::now() + wait;
        loop {
            let n = self
                .inbox
                .lock()
                .unwrap()
                .infos
                .iter()
                .filter(|b| b.contains(needle))
                .count();
            if n >= want || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the reader and shuts the connection down.
    pub fn close(self) {
        self.inbox.lock().unwrap().closed = true;
        let _ = self.w.shutdown(std::net::Shutdown::Both);
    }
}

/// `sip:user1@contoso.com` with the clear-text password `pw1`.
pub fn user1_pw1() -> UserConfig {
    UserConfig {
        uri: "sip:user1@contoso.com".into(),
        password: Some("pw1".into()),
        ha1_sha256: None,
        ha1_md5: None,
    }
}

/// Sends `msg` on `s` and returns the first response (5 s at most; panics on a close).
pub async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    f: &mut Framer,
    msg: &str,
) -> Response {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(msg.as_bytes()).await.unwrap();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(frame) = f.next_frame().unwrap() {
            if let Ok(SipMessage::Response(r)) = parse(&frame) {
                return r;
            }
            continue;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(n > 0, "closed");
        f.push(&buf[..n]);
    }
}

/// The `Authorization` value answering the challenge `ch` (RFC 8760 SHA-256, qop=auth,
/// nonce-count `nc`) for `user`@contoso.com with `password` on a `method` request to
/// `sip:pchat@contoso.com`.
pub fn digest_answer(ch: &Response, user: &str, password: &str, nc: u32, method: &str) -> String {
    let v = ch.headers.get("WWW-Authenticate").expect("a challenge");
    let get = |k: &str| {
        v.split(&format!("{k}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_string()
    };
    let mut c = Credentials {
        username: user.into(),
        realm: get("realm"),
        nonce: get("nonce"),
        uri: "sip:pchat@contoso.com".into(),
        response: String::new(),
        algorithm: Algorithm::Sha256,
        cnonce: "c".into(),
        nc: format!("{nc:08x}"),
        nc_value: nc,
        qop: "auth".into(),
    };
    c.response = digest::response(
        Algorithm::Sha256,
        &digest::ha1(Algorithm::Sha256, user, &c.realm, password),
        &c,
        method,
    );
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm=SHA-256, cnonce=\"c\", nc={}, qop=auth",
        c.realm, c.nonce, c.uri, c.response, c.nc
    )
}
