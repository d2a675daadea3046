//! The gate on its own: Digest round trips, stale and replayed nonces, identity
//! binding, repeated headers, trusted peers.

use super::*;
use crate::config::{AuthConfig, UserConfig};
use crate::ids::ConnId;
use crate::sip::{parse, SipMessage};

pub(crate) fn cfg(mode: AuthMode) -> Config {
    let mut cfg = Config::embedded_default();
    cfg.auth = AuthConfig {
        mode,
        trusted_peers: vec!["127.0.0.2".into()],
        max_failures: 3,
        ..Default::default()
    };
    cfg.users = ["user1", "user2"]
        .iter()
        .map(|u| UserConfig {
            uri: format!("sip:{u}@contoso.com"),
            password: Some(format!("{u}-secret")),
            ha1_sha256: None,
            ha1_md5: None,
        })
        .collect();
    cfg
}

fn req(method: &str, from: &str, extra: &str) -> Request {
    let raw = format!(
        "{method} sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1\r\n\
         From: <sip:{from}@contoso.com>;tag=a\r\nTo: <sip:pchat@contoso.com>\r\nCall-ID: c1\r\n\
         CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    match parse(raw.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("test request did not parse: {other:?}"),
    }
}

/// The Authorization a client computes for `challenge` (a 401).
pub(crate) fn answer(
    resp: &Response,
    req: &Request,
    user: &str,
    password: &str,
    nc: u32,
) -> String {
    let ch = resp.headers.get("WWW-Authenticate").expect("challenge");
    let nonce = ch
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    let realm = ch
        .split("realm=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    let alg = Algorithm::Sha256;
    let mut c = digest::Credentials {
        username: user.into(),
        realm: realm.into(),
        nonce: nonce.into(),
        uri: req.uri.clone(),
        response: String::new(),
        algorithm: alg,
        cnonce: "cn".into(),
        nc: format!("{nc:08x}"),
        nc_value: nc,
        qop: "auth".into(),
    };
    c.response = digest::response(
        alg,
        &digest::ha1(alg, user, realm, password),
        &c,
        &req.method,
    );
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", \
         response=\"{}\", algorithm=SHA-256, cnonce=\"cn\", nc={}, qop=auth",
        c.uri, c.response, c.nc
    )
}

fn refused(v: Verdict) -> Response {
    match v {
        Verdict::Refuse(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn peer(addr: &str) -> Peer {
    Peer {
        addr: addr.into(),
        loopback: addr.starts_with("127."),
        ..Default::default()
    }
}

#[test]
fn digest_challenge_then_success_binds_the_connection() {
    let mut auth = Auth::new(&cfg(AuthMode::Digest), [1; 32]);
    assert!(auth.on_connected(ConnId(1), peer("127.0.0.1"), 0));
    let mut r = req("REGISTER", "user1", "");
    let ch = refused(auth.gate(ConnId(1), &mut r, None, 0));
    assert_eq!(ch.code, 401);
    let offered: Vec<&str> = ch.headers.get_all("WWW-Authenticate").collect();
    assert_eq!(offered.len(), 2);
    assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"));
    assert!(offered[0].contains("qop=\"auth\"") && offered[0].contains("realm=\"contoso.com\""));
    let cred = answer(&ch, &r, "user1", "user1-secret", 1);
    let mut r2 = req("REGISTER", "user1", &format!("Authorization: {cred}\r\n"));
    assert_eq!(auth.gate(ConnId(1), &mut r2, None, 10), Verdict::Pass);
    assert_eq!(auth.user_of(ConnId(1)), Some("user1@contoso.com"));
    // Same connection, same user: no new challenge; another user: 403.
    assert_eq!(
        auth.gate(ConnId(1), &mut req("INVITE", "user1", ""), None, 20),
        Verdict::Pass
    );
    assert_eq!(
        refused(auth.gate(ConnId(1), &mut req("INVITE", "user2", ""), None, 20)).code,
        403
    );
    // The same nonce and count on another connection: a replay.
    auth.on_connected(ConnId(2), peer("127.0.0.1"), 0);
    let mut again = req("REGISTER", "user1", &format!("Authorization: {cred}\r\n"));
    let resp = refused(auth.gate(ConnId(2), &mut again, None, 30));
    assert_eq!(
        (resp.code, resp.reason.as_str()),
        (401, "Unauthorized: nonce count replayed")
    );
    assert_eq!(auth.user_of(ConnId(2)), None);
}

/// A Digest gate with connection 1 from `addr`, and user2's INVITE on it challenged
/// at time 0: the gate, the INVITE and the 401.
fn user2_challenged(addr: &str) -> (Auth, Request, Response) {
    let mut auth = Auth::new(&cfg(AuthMode::Digest), [1; 32]);
    auth.on_connected(ConnId(1), peer(addr), 0);
    let mut r = req("INVITE", "user2", "");
    let ch = refused(auth.gate(ConnId(1), &mut r, None, 0));
    (auth, r, ch)
}

/// user2's INVITE on connection 1 at `now_ms` with `Authorization: cred`: the code
/// of the refusal.
fn refused_with(auth: &mut Auth, cred: &str, now_ms: i64) -> u16 {
    let mut r = req("INVITE", "user2", &format!("Authorization: {cred}\r\n"));
    refused(auth.gate(ConnId(1), &mut r, None, now_ms)).code
}

#[test]
fn wrong_password_stale_nonce_and_lockout() {
    let (mut auth, r, ch) = user2_challenged("10.0.0.9");
    let bad = answer(&ch, &r, "user2", "guess", 1);
    assert_eq!(refused_with(&mut auth, &bad, 1), 401);
    // A correct answer to a nonce past its lifetime: 401 with stale=true.
    let good = answer(&ch, &r, "user2", "user2-secret", 1);
    let mut late = req("INVITE", "user2", &format!("Authorization: {good}\r\n"));
    let stale = refused(auth.gate(ConnId(1), &mut late, None, 301_000));
    assert_eq!(stale.code, 401);
    assert!(stale
        .headers
        .get("WWW-Authenticate")
        .unwrap()
        .contains("stale=true"));
    // Two more failures lock user2 (max_failures = 3) - even the right password now.
    for nc in 2..=3 {
        let bad = answer(&ch, &r, "user2", "guess", nc);
        let mut r3 = req("INVITE", "user2", &format!("Authorization: {bad}\r\n"));
        auth.gate(ConnId(1), &mut r3, None, 2);
    }
    let good = answer(&ch, &r, "user2", "user2-secret", 9);
    assert_eq!(refused_with(&mut auth, &good, 3), 403, "locked");
    assert_eq!(auth.user_of(ConnId(1)), None);
}

#[test]
fn credentials_of_one_user_do_not_pass_for_another() {
    let (mut auth, r, ch) = user2_challenged("127.0.0.1");
    let cred = answer(&ch, &r, "user1", "user1-secret", 1);
    assert_eq!(refused_with(&mut auth, &cred, 1), 403);
    assert_eq!(auth.user_of(ConnId(1)), None);
}

#[test]
fn dialog_identity_and_repeated_headers() {
    let mut auth = Auth::new(&cfg(AuthMode::None), [1; 32]);
    let mut r = req("INFO", "user3", "");
    let resp = refused(auth.gate(ConnId(1), &mut r, Some("sip:user1@contoso.com"), 0));
    assert_eq!(resp.code, 403);
    assert_eq!(
        auth.gate(
            ConnId(1),
            &mut req("ACK", "user3", ""),
            Some("sip:user1@contoso.com"),
            0
        ),
        Verdict::Drop
    );
    assert_eq!(
        auth.gate(
            ConnId(1),
            &mut req("INFO", "user1", ""),
            Some("sip:user1@contoso.com"),
            0
        ),
        Verdict::Pass
    );
    // A repeated single-instance header never reaches the gate: the parser refuses
    // it with 400 (crate::sip::validate, RFC 3261 7.3.1), so the identity is never
    // ambiguous.
    for h in [
        "From: <sip:user3@contoso.com>;tag=b",
        "Call-ID: x",
        "CSeq: 1 INVITE",
        "Max-Forwards: 9\r\nMax-Forwards: 8",
        "To: <sip:a@b>",
    ] {
        let raw = format!(
            "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1\r\n\
             From: <sip:user1@contoso.com>;tag=a\r\nTo: <sip:pchat@contoso.com>\r\nCall-ID: c1\r\n\
             CSeq: 1 INVITE\r\n{h}\r\nContent-Length: 0\r\n\r\n"
        );
        let e = parse(raw.as_bytes()).expect_err(h);
        assert_eq!(e.code, 400, "{h}");
        assert!(e.reason.contains("repeated"), "{h}: {}", e.reason);
    }
}

#[test]
fn p_asserted_identity_only_from_trusted_peers() {
    let mut auth = Auth::new(&cfg(AuthMode::Trusted), [1; 32]);
    auth.on_connected(ConnId(1), peer("127.0.0.2"), 0);
    auth.on_connected(ConnId(2), peer("127.0.0.1"), 0);
    let pai = "P-Asserted-Identity: <sip:user2@contoso.com>\r\n";
    assert_eq!(
        auth.gate(ConnId(1), &mut req("INVITE", "user2", pai), None, 0),
        Verdict::Pass
    );
    assert_eq!(
        refused(auth.gate(ConnId(1), &mut req("INVITE", "user1", pai), None, 0)).code,
        403
    );
    let mut untrusted = req("INVITE", "user2", pai);
    let resp = refused(auth.gate(ConnId(2), &mut untrusted, None, 0));
    assert_eq!(resp.code, 401, "anyone else authenticates with Digest");
    assert_eq!(
        untrusted.headers.get("P-Asserted-Identity"),
        None,
        "removed"
    );
}

#[test]
fn unauthenticated_connections_are_bounded_and_timed_out() {
    let mut c = cfg(AuthMode::Digest);
    c.sip.max_unauthenticated = 2;
    let mut auth = Auth::new(&c, [1; 32]);
    assert!(auth.on_connected(ConnId(1), peer("127.0.0.1"), 0));
    assert!(auth.on_connected(ConnId(2), peer("127.0.0.1"), 0));
    assert!(
        !auth.on_connected(ConnId(3), peer("127.0.0.1"), 0),
        "third waits too many"
    );
    assert_eq!(auth.tick(10_000), Vec::<crate::ids::ConnId>::new());
    assert_eq!(auth.tick(30_001), vec![ConnId(1), ConnId(2)]);
    auth.on_closed(ConnId(2));
    assert!(
        auth.on_connected(ConnId(3), peer("127.0.0.1"), 30_002),
        "a place came free"
    );
    // Authenticating frees a place too.
    let mut r = req("REGISTER", "user1", "");
    let ch = refused(auth.gate(ConnId(1), &mut r, None, 30_003));
    let cred = answer(&ch, &r, "user1", "user1-secret", 1);
    let mut r2 = req("REGISTER", "user1", &format!("Authorization: {cred}\r\n"));
    assert_eq!(auth.gate(ConnId(1), &mut r2, None, 30_004), Verdict::Pass);
    assert!(auth.on_connected(ConnId(4), peer("127.0.0.1"), 30_005));
    assert!(
        !auth.on_connected(ConnId(5), peer("127.0.0.1"), 30_005),
        "3 and 4 wait"
    );
    let mut none = Auth::new(&cfg(AuthMode::None), [1; 32]);
    assert!(none.on_connected(ConnId(1), peer("127.0.0.1"), 0));
    assert_eq!(
        none.tick(60_000),
        Vec::<crate::ids::ConnId>::new(),
        "mode none: nobody to wait for"
    );
}
