//! The real binary on its embedded default configuration admits nobody without the
//! right password (SIP Digest, issue 12), refuses to run without authentication on a
//! non-loopback address, and `user hash` prints HA1 values. Loopback only; every wait
//! is bounded.

mod common;

use common::{connect, digest_answer, free_port, Proc, BIN, SDP};
use pchat_server::auth::digest::{self, Algorithm};
use pchat_server::sip::{parse, Framer, Response, SipMessage};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn invite(port: u16, user: &str, cseq: u32, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK{user}{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@contoso.com>;tag=t{user}\r\nTo: <sip:pchat@contoso.com>\r\n\
         Call-ID: c-{user}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{user}@127.0.0.1:1;transport=tcp>\r\n\
         {auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn exchange(s: &mut TcpStream, framer: &mut Framer, msg: &str) -> Response {
    exchange_raw(s, framer, msg).0
}

/// Sends `msg`; returns the first response and its bytes as sent by the server.
fn exchange_raw(s: &mut TcpStream, framer: &mut Framer, msg: &str) -> (Response, String) {
    s.write_all(msg.as_bytes()).expect("sent");
    let mut buf = [0u8; 8192];
    loop {
        if let Some(frame) = framer.next_frame().expect("framing") {
            if let Ok(SipMessage::Response(r)) = parse(&frame) {
                return (r, String::from_utf8_lossy(&frame).into_owned());
            }
            continue;
        }
        let n = s.read(&mut buf).expect("an answer within 5 s");
        assert!(n > 0, "server closed the connection");
        framer.push(&buf[..n]);
    }
}

fn answer(ch: &Response, user: &str, password: &str, nc: u32) -> String {
    let v = ch.headers.get("WWW-Authenticate").expect("a challenge");
    assert!(
        v.contains("algorithm=SHA-256"),
        "SHA-256 offered first: {v}"
    );
    digest_answer(ch, user, password, nc, "INVITE")
}

#[test]
fn embedded_default_admits_only_the_right_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let sip = format!("127.0.0.1:{port}");
    let _server = Proc::start(dir.path(), &["--sip", &sip], "warn", false);
    let mut s = connect(port, Duration::from_secs(5));
    let mut f = Framer::new(1 << 20);
    let ch = exchange(&mut s, &mut f, &invite(port, "user1", 1, None));
    assert_eq!(ch.code, 401, "no credentials: challenged");
    let wrong = answer(&ch, "user1", "user2-demo", 1);
    let r = exchange(&mut s, &mut f, &invite(port, "user1", 2, Some(&wrong)));
    assert_eq!(r.code, 401, "wrong password");
    let right = answer(&r, "user1", "user1-demo", 1);
    let spoof = exchange(&mut s, &mut f, &invite(port, "user3", 3, Some(&right)));
    assert_eq!(spoof.code, 403, "user1's credentials do not sign in user3");
    let right = answer(&r, "user1", "user1-demo", 2);
    let ok = exchange(&mut s, &mut f, &invite(port, "user1", 4, Some(&right)));
    assert_eq!(ok.code, 200, "the demo password signs in");
    let again = exchange(&mut s, &mut f, &invite(port, "user3", 5, None));
    assert_eq!(again.code, 403, "this connection is user1's");
    let register = format!(
        "REGISTER sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKreg\r\n\
         Max-Forwards: 70\r\nFrom: <sip:user1@contoso.com>;tag=r\r\nTo: <sip:user1@contoso.com>\r\n\
         Call-ID: reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:user1@127.0.0.1:1;transport=tcp>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let (r, raw) = exchange_raw(&mut s, &mut f, &register);
    assert_eq!(r.code, 200, "{raw}");
    assert!(raw.contains("\r\nExpires: 3600\r\n"), "{raw}");
    assert!(raw.contains("transport=tcp>;expires=3600\r\n"), "{raw}");
    assert!(
        raw.contains("\r\nSupported: msrtc-event-categories\r\n"),
        "{raw}"
    );
    let events = raw
        .lines()
        .find_map(|l| l.strip_prefix("Allow-Events: "))
        .expect("Allow-Events");
    assert!(
        !events.contains(' '),
        "comma-separated, no spaces (SIPE): {events}"
    );
    assert!(events
        .split(',')
        .any(|e| e == "vnd-microsoft-provisioning-v2"));
}

#[test]
fn mode_none_on_a_public_address_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("open.toml");
    std::fs::write(
        &config,
        "domain = \"contoso.com\"\n[sip]\nlisten = \"0.0.0.0:0\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "exit status non-zero");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0.0.0.0:0") && err.contains("\"none\""),
        "{err}"
    );
}

#[test]
fn user_hash_prints_ha1_values() {
    let out = Command::new(BIN)
        .args(["user", "hash", "sip:user1@contoso.com", "--password", "pw"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let sha = digest::ha1(Algorithm::Sha256, "user1", "contoso.com", "pw");
    let md5 = digest::ha1(Algorithm::Md5, "user1", "contoso.com", "pw");
    assert!(text.contains(&format!("ha1_sha256 = \"{sha}\"")), "{text}");
    assert!(text.contains(&format!("ha1_md5 = \"{md5}\"")), "{text}");
    assert!(text.contains("uri = \"sip:user1@contoso.com\""), "{text}");
}
