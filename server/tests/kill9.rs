//! The real binary under `kill -9`: a client posts under load over loopback TCP, the
//! server is killed with SIGKILL mid-stream, restarted on the same files, and its
//! compliance worker runs: every acknowledged post appears exactly once in the adapter
//! output, and `pchat-server compliance verify` reports nothing missing or duplicated.
//! Loopback only; every wait is bounded.

use pchat_server::cmd::{Cmd, CmdKind, Join};
use pchat_server::compliance::adapter::{read_output, Format};
use pchat_server::compliance::EventKind;
use pchat_server::sip::{parse, response_for, Framer, SipMessage};
use pchat_server::xccos::{Body, ChanRef, Envelope, GrpChat};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pchat-server");
const POSTS: u32 = 400;
const KILL_AFTER_ACKS: usize = 120;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn start(config: &Path, port: u16) -> Child {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--sip")
        .arg(format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pchat-server starts")
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_millis(200))).ok();
                return s;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("server did not listen on {port}: {e}"),
        }
    }
}

/// Final responses by CSeq, filled by a reader thread that also answers server INFOs.
type Responses = Arc<Mutex<BTreeMap<u32, (u16, String)>>>;

fn reader(mut s: TcpStream, responses: Responses, stop: Arc<Mutex<bool>>) {
    let mut framer = Framer::new(1 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = s.try_clone().expect("clone");
    while !*stop.lock().unwrap() {
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
                        responses.lock().unwrap().insert(cseq, (r.code, to));
                    }
                }
                Ok(SipMessage::Request(req)) => {
                    let _ = w.write_all(&response_for(&req, 200, "OK").encode());
                }
                _ => {}
            }
        }
    }
}

fn wait_code(responses: &Responses, cseq: u32) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some((c, _)) = responses.lock().unwrap().get(&cseq) {
            return Some(*c);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

struct Session {
    w: TcpStream,
    local: String,
    call_id: String,
    to: String,
    cseq: u32,
    responses: Responses,
    stop: Arc<Mutex<bool>>,
}

const FROM: &str = "<sip:user1@contoso.com>;tag=k9";

impl Session {
    fn open(port: u16, tag: &str) -> Session {
        let s = connect(port);
        let local = s.local_addr().expect("local").to_string();
        let responses: Responses = Arc::default();
        let stop = Arc::new(Mutex::new(false));
        let (r, rs, st) = (
            s.try_clone().expect("clone"),
            responses.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || reader(r, rs, st));
        let call_id = format!("kill9-{tag}");
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 5060 sip null\r\n";
        let invite = format!(
            "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-{tag}-1\r\nMax-Forwards: 70\r\n\
             From: {FROM}\r\nTo: <sip:pchat@contoso.com>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:user1@{local};transport=tcp>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let mut w = s;
        w.write_all(invite.as_bytes()).expect("send INVITE");
        let mut session = Session {
            w,
            local,
            call_id,
            to: String::new(),
            cseq: 1,
            responses,
            stop,
        };
        assert_eq!(
            wait_code(&session.responses, 1),
            Some(200),
            "INVITE answered"
        );
        session.to = session
            .responses
            .lock()
            .unwrap()
            .get(&1)
            .map(|(_, to)| to.clone())
            .unwrap_or_default();
        let ack = format!(
            "ACK sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK-{tag}-ack\r\nMax-Forwards: 70\r\n\
             From: {FROM}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            session.local, session.to, session.call_id
        );
        session.w.write_all(ack.as_bytes()).expect("send ACK");
        session
    }

    /// Sends an in-dialog INFO with an XCCOS body; returns its CSeq.
    fn info(&mut self, body: &str) -> u32 {
        self.cseq += 1;
        let msg = format!(
            "INFO sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK-{}-{}\r\nMax-Forwards: 70\r\n\
             From: {FROM}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} INFO\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            self.local, self.call_id, self.cseq, self.to, self.call_id, self.cseq, body.len()
        );
        let _ = self.w.write_all(msg.as_bytes());
        self.cseq
    }

    fn close(self) {
        *self.stop.lock().unwrap() = true;
        let _ = self.w.shutdown(std::net::Shutdown::Both);
    }
}

fn design_uri() -> String {
    let guid = pchat_server::ids::room_guid("contoso.com", "Design");
    pchat_server::ids::room_uri("contoso.com", &guid)
}

fn xccos(envid: u64, body: Body) -> String {
    Envelope { envid, body }.to_xml()
}

#[test]
fn kill_dash_nine_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let config = d.join("pchat.toml");
    let text = format!(
        "domain = \"contoso.com\"\n[store]\npath = {:?}\n[compliance]\nenabled = true\nrun_interval = \"100ms\"\n\
         output_dir = {:?}\nadapter = \"xml\"\npath = {:?}\nbatch_size = 50\n\
         [[room]]\nname = \"Design\"\nprivacy = \"open\"\n",
        d.join("pchat.db"),
        d.join("out"),
        d.join("mgccomp.db")
    );
    std::fs::write(&config, text).expect("config written");
    let port = free_port();
    let mut server = start(&config, port);

    let mut s = Session::open(port, "a");
    let join = s.info(&xccos(
        1,
        Body::Cmd(
            Cmd {
                seqid: 1,
                kind: CmdKind::Join(Join {
                    chan: ChanRef::Uri(design_uri()),
                }),
            }
            .to_elem(),
        ),
    ));
    assert_eq!(
        wait_code(&s.responses, join),
        Some(200),
        "join INFO answered"
    );
    std::thread::sleep(Duration::from_millis(100));

    // Post under load (pipelined), kill -9 after some acknowledgements.
    let mut sent: BTreeMap<u32, String> = BTreeMap::new();
    let mut killed = false;
    for k in 0..POSTS {
        let text = format!("post-{k}");
        let cseq = s.info(&xccos(
            100 + u64::from(k),
            Body::GrpChat(GrpChat {
                msgid: None,
                seqid: 1,
                chan_uri: design_uri(),
                author: None,
                ts: None,
                text: text.clone(),
            }),
        ));
        sent.insert(cseq, text);
        if s.responses
            .lock()
            .unwrap()
            .values()
            .filter(|(c, _)| *c == 200)
            .count()
            >= KILL_AFTER_ACKS
        {
            server.kill().expect("kill -9");
            killed = true;
            break;
        }
        if k % 20 == 19 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if !killed {
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.responses.lock().unwrap().len() < KILL_AFTER_ACKS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill().expect("kill -9");
    }
    let _ = server.wait();
    std::thread::sleep(Duration::from_millis(100));
    let acked: Vec<String> = {
        let r = s.responses.lock().unwrap();
        sent.iter()
            .filter(|(c, _)| r.get(c).is_some_and(|(code, _)| *code == 200))
            .map(|(_, t)| t.clone())
            .collect()
    };
    s.close();
    eprintln!(
        "sent {} posts, {} acknowledged before kill -9",
        sent.len(),
        acked.len()
    );
    assert!(
        acked.len() >= KILL_AFTER_ACKS.min(POSTS as usize) / 2,
        "only {} acks",
        acked.len()
    );

    // Restart on the same files; the worker exports everything committed.
    let mut server = start(&config, port);
    let formats: [&dyn Format; 1] = [&pchat_server::compliance::xml::Xml];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    while Instant::now() < deadline {
        counts.clear();
        for x in read_output(&d.join("out"), &formats).unwrap_or_default() {
            if x.event.kind == EventKind::Chat {
                *counts.entry(x.event.content).or_default() += 1;
            }
        }
        if acked.iter().all(|t| counts.contains_key(t)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stop cleanly (SIGTERM) so the final run exports the rest, then verify.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if server.try_wait().ok().flatten().is_none() {
        let _ = server.kill();
        let _ = server.wait();
    }
    for t in &acked {
        assert_eq!(
            counts.get(t),
            Some(&1),
            "acknowledged {t} must appear exactly once"
        );
    }
    for (t, n) in &counts {
        assert_eq!(*n, 1, "{t} appears {n} times");
        assert!(sent.values().any(|s| s == t), "{t} was never posted");
    }
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
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
