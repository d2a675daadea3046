//! The NTLM gate against a client written from [MS-NLMP] / [MS-SIPAE] (what SIPE
//! does): handshake, signed requests, refused unsigned and tampered ones, signed
//! answers, wrong password.

use super::super::ntlm::{self, CHALLENGE_FLAGS, NEGOTIATE_56};
use super::super::sipae::{self, Signed};
use super::super::tests::cfg;
use super::super::{Auth, Peer, Verdict};
use crate::config::AuthMode;
use crate::ids::ConnId;
use crate::sip::{parse, Request, Response, SipMessage};
use base64::Engine as _;
use std::collections::BTreeMap;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn req(method: &str, from: &str, cseq: u32, auth: Option<&str>) -> Request {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let raw = format!(
        "{method} sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK{cseq}\r\n\
         From: <sip:{from}@contoso.com>;tag=ft;epid=e1\r\nTo: <sip:{from}@contoso.com>\r\n\
         Call-ID: c1\r\nCSeq: {cseq} {method}\r\n{auth}Content-Length: 0\r\n\r\n"
    );
    match parse(raw.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("test request did not parse: {other:?}"),
    }
}

fn www(v: Verdict) -> (Response, BTreeMap<String, String>) {
    match v {
        Verdict::Refuse(r) => {
            let h = r
                .headers
                .get("WWW-Authenticate")
                .unwrap_or_default()
                .to_string();
            let (_, p) = sipae::parse_params(&h).unwrap_or_default();
            (r, p)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The client: its AUTHENTICATE_MESSAGE for a CHALLENGE, and its keys.
struct Client {
    keys: ntlm::SessionKeys,
    token: String,
}

fn client(challenge_b64: &str, user: &str, password: &str) -> Client {
    let ch = B64.decode(challenge_b64).unwrap();
    let server_challenge = &ch[24..32];
    let info = super::super::ntlm::tests_field(&ch, 40);
    let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
    blob.extend_from_slice(&[0; 8]);
    blob.extend_from_slice(&[0xaa; 8]);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(&info);
    blob.extend_from_slice(&[0; 4]);
    let key_nt = ntlm::ntowf_v2(&ntlm::nt_hash(password), user, "");
    let proof = ntlm::hmac_md5(&key_nt, &[server_challenge, &blob]);
    let base = ntlm::hmac_md5(&key_nt, &[&proof]);
    let session = [0x55u8; 16];
    let mut enc = session;
    ntlm::rc4k(&base, &mut enc);
    let flags = CHALLENGE_FLAGS & !NEGOTIATE_56;
    let user16: Vec<u8> = user.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let nt: Vec<u8> = proof.iter().chain(&blob).copied().collect();
    let payload: [&[u8]; 5] = [&[], &user16, &[0; 24], &nt, &enc];
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&3u32.to_le_bytes());
    let mut offset = 72usize;
    let mut fields = [[0u8; 8]; 6];
    // Lm, Nt, Domain, User, Workstation, EncryptedRandomSessionKey.
    for (slot, data) in [
        (2, payload[0]),
        (3, payload[1]),
        (4, &[][..]),
        (0, payload[2]),
        (1, payload[3]),
        (5, payload[4]),
    ] {
        let f = &mut fields[slot];
        f[..2].copy_from_slice(&(data.len() as u16).to_le_bytes());
        f[2..4].copy_from_slice(&(data.len() as u16).to_le_bytes());
        f[4..].copy_from_slice(&(offset as u32).to_le_bytes());
        offset += data.len();
    }
    for f in fields {
        m.extend_from_slice(&f);
    }
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&[5, 1, 0x28, 0x0a, 0, 0, 0, 0x0f]);
    for data in [payload[0], payload[1], payload[2], payload[3], payload[4]] {
        m.extend_from_slice(data);
    }
    let keys = ntlm::keys_from_session(flags, &session);
    Client {
        keys,
        token: B64.encode(m),
    }
}

fn signed_auth(c: &Client, r: &Request, cnum: u32, extra: &str) -> String {
    let s = Signed::from_lookup(Some(&r.method), None, |n| r.headers.get(n));
    let num = cnum.to_string();
    let input = s.input("NTLM", "0badf00d", &num, "contoso.com");
    let mac = ntlm::mac(
        c.keys.flags,
        &c.keys.client_sign,
        &c.keys.client_seal,
        ntlm::SIP_SEQUENCE,
        input.as_bytes(),
    );
    format!(
        "NTLM qop=\"auth\"{extra}, realm=\"SIP Communications Service\", targetname=\"contoso.com\", \
         crand=\"0badf00d\", cnum=\"{num}\", response=\"{}\"",
        hex::encode(mac)
    )
}

/// A request signed like SIPE signs it (the Authorization is not covered).
fn signed(c: &Client, method: &str, from: &str, cseq: u32) -> Request {
    let plain = req(method, from, cseq, None);
    let a = signed_auth(c, &plain, cseq, "");
    req(method, from, cseq, Some(&a))
}

fn handshake(auth: &mut Auth, conn: ConnId, user: &str, password: &str) -> (Verdict, Client) {
    let (r, p) = www(auth.gate(conn, &mut req("REGISTER", "user1", 1, None), None, 0));
    assert_eq!(r.code, 401);
    assert_eq!(p.get("version").map(String::as_str), Some("4"));
    assert!(
        !p.contains_key("gssapi-data"),
        "the first offer has no challenge"
    );
    let first = "NTLM qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"contoso.com\", gssapi-data=\"\", version=4";
    let (r, p) = www(auth.gate(conn, &mut req("REGISTER", "user1", 2, Some(first)), None, 0));
    assert_eq!(r.code, 401);
    let c = client(&p["gssapi-data"], user, password);
    let third = req("REGISTER", "user1", 3, None);
    let extra = format!(
        ", opaque=\"{}\", gssapi-data=\"{}\", version=4",
        p["opaque"], c.token
    );
    let a = signed_auth(&c, &third, 3, &extra);
    let v = auth.gate(conn, &mut req("REGISTER", "user1", 3, Some(&a)), None, 0);
    (v, c)
}

#[test]
fn handshake_signed_requests_and_signed_answers() {
    let mut auth = Auth::new(&cfg(AuthMode::Ntlm), [3; 32]);
    let conn = ConnId(1);
    assert!(auth.on_connected(conn, Peer::default(), 0));
    let (v, c) = handshake(&mut auth, conn, "user1@contoso.com", "user1-secret");
    assert_eq!(v, Verdict::Pass);
    assert_eq!(auth.user_of(conn), Some("user1@contoso.com"));
    // What the server sends is signed with the server keys.
    let head = b"SIP/2.0 200 OK\r\nFrom: <sip:user1@contoso.com>;tag=ft\r\nTo: <sip:user1@contoso.com>;tag=x\r\nCall-ID: c1\r\nCSeq: 3 REGISTER\r\nExpires: 3600\r\n\r\n";
    let out = auth.sign_outgoing(conn, head).expect("signed");
    let text = std::str::from_utf8(&out).unwrap();
    let info = text
        .lines()
        .find_map(|l| l.strip_prefix("Authentication-Info: "))
        .unwrap();
    let (_, p) = sipae::parse_params(info).unwrap();
    let input = Signed::from_head(text).input("NTLM", &p["srand"], &p["snum"], "contoso.com");
    let mac = ntlm::mac(
        c.keys.flags,
        &c.keys.server_sign,
        &c.keys.server_seal,
        100,
        input.as_bytes(),
    );
    assert_eq!(p["rspauth"], hex::encode_upper(mac));
    assert_eq!(
        auth.sign_outgoing(ConnId(9), head),
        None,
        "no SA: unchanged"
    );
    // Signed requests pass; unsigned, tampered or another user's are refused.
    assert_eq!(
        auth.gate(conn, &mut signed(&c, "INFO", "user1", 4), None, 0),
        Verdict::Pass
    );
    let (r, _) = www(auth.gate(conn, &mut req("INFO", "user1", 5, None), None, 0));
    assert_eq!(r.code, 403);
    let mut tampered = signed(&c, "INFO", "user1", 6);
    tampered.headers.set("CSeq", "7 INFO");
    let (r, _) = www(auth.gate(conn, &mut tampered, None, 0));
    assert_eq!(r.code, 403);
    let (r, _) = www(auth.gate(conn, &mut signed(&c, "INFO", "user2", 8), None, 0));
    assert_eq!(r.code, 403, "From must be the SA's user");
    auth.on_closed(conn);
    assert_eq!(
        auth.sign_outgoing(conn, head),
        None,
        "SA gone with its connection"
    );
}

#[test]
fn wrong_password_and_unknown_user_get_401_and_count_as_failures() {
    let mut auth = Auth::new(&cfg(AuthMode::Ntlm), [3; 32]);
    for (i, (user, pw)) in [
        ("user1@contoso.com", "nope"),
        ("ghost@contoso.com", "x"),
        ("user1", "nope"),
    ]
    .into_iter()
    .enumerate()
    {
        let conn = ConnId(10 + i as u64);
        assert!(auth.on_connected(conn, Peer::default(), 0));
        let (v, _) = handshake(&mut auth, conn, user, pw);
        let (r, p) = www(v);
        assert_eq!(
            (r.code, r.reason.as_str()),
            (401, "Unauthorized: wrong credentials")
        );
        assert!(!p.contains_key("gssapi-data"));
        assert_eq!(auth.user_of(conn), None);
    }
    // max_failures = 3 (cfg) per user and per address: now locked out even with the
    // right password.
    let conn = ConnId(20);
    assert!(auth.on_connected(conn, Peer::default(), 0));
    let (v, _) = handshake(&mut auth, conn, "user1@contoso.com", "user1-secret");
    assert_eq!(www(v).0.code, 403);
}
