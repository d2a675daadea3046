//! Core tests without any network: SIP in, actions out.

use super::*;
use crate::clock::ManualClock;
use crate::config::{Config, Privacy, RoomConfig};
use crate::sip::{parse, Response};
use crate::store::SqliteStore;
use crate::xccos::{self, Body, RplData};
use std::sync::atomic::{AtomicBool, Ordering};

/// Makes commits fail while the first flag is set (group-commit tests), and writes
/// while the second is (a statement failing inside the batch).
struct StoreFails(Arc<AtomicBool>, Arc<AtomicBool>);

impl crate::store::StoreHook for StoreFails {
    fn before(&mut self, op: crate::store::StoreOp) -> Result<(), StoreError> {
        let armed = match op {
            crate::store::StoreOp::Commit => &self.0,
            crate::store::StoreOp::Write => &self.1,
            _ => return Ok(()),
        };
        if armed.load(Ordering::SeqCst) {
            return Err(StoreError::Db("disk I/O error (injected)".into()));
        }
        Ok(())
    }
}

/// An in-memory store whose commits fail while `fail` is set and whose writes fail
/// while `fail_writes` is.
fn flaky_store(
    fail: &Arc<AtomicBool>,
    fail_writes: &Arc<AtomicBool>,
) -> crate::store::HookedStore<StoreFails> {
    crate::store::HookedStore::new(
        Box::new(SqliteStore::in_memory().unwrap()),
        StoreFails(fail.clone(), fail_writes.clone()),
    )
}

fn config() -> Config {
    let mut cfg = Config::embedded_default();
    cfg.auth = Default::default(); // mode "none": these tests are about other things
    cfg.rooms = vec![RoomConfig {
        name: "Design".into(),
        description: "d".into(),
        topic: "t".into(),
        privacy: Privacy::Open,
        members: vec![],
        managers: vec!["sip:user1@contoso.com".into()],
        ..Default::default()
    }];
    cfg
}

/// A client's dialog in the tests: (Call-ID, From-tag, To-tag).
type Dialog = (String, String, String);

struct Harness {
    core: Core,
    fail: Arc<AtomicBool>,
    fail_writes: Arc<AtomicBool>,
    clock: Arc<ManualClock>,
    cseq: u32,
}

fn harness() -> Harness {
    flaky_harness(config())
}

/// A core of `cfg` over an in-memory store that fails while `fail` (everything) or
/// `fail_writes` (writes) is set.
fn flaky_harness(cfg: Config) -> Harness {
    let (fail, fail_writes) = (Arc::default(), Arc::default());
    let store = Box::new(flaky_store(&fail, &fail_writes));
    harness_with(cfg, store, (fail, fail_writes), Faults::default())
}

/// A core of `cfg` over `store`, with the failure switches `fails` its store obeys.
fn harness_with(
    cfg: Config,
    store: Box<dyn crate::store::Store>,
    (fail, fail_writes): (Arc<AtomicBool>, Arc<AtomicBool>),
    faults: Faults,
) -> Harness {
    let clock = Arc::new(ManualClock::new(crate::clock::SIM_EPOCH_MS));
    let core = Core::new(cfg, store, clock.clone(), 1, "10.0.0.1:5060", faults).unwrap();
    Harness {
        core,
        fail,
        fail_writes,
        clock,
        cseq: 1,
    }
}

/// Each action's full bytes (head + body) as text.
fn texts(actions: &[Action]) -> Vec<(u64, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn, head, body } => {
                let mut v = head.to_vec();
                v.extend_from_slice(body);
                Some((conn.0, String::from_utf8(v).unwrap()))
            }
            Action::Close { .. } | Action::Http { .. } => None,
        })
        .collect()
}

fn response(text: &str) -> Response {
    match parse(text.as_bytes()).unwrap() {
        SipMessage::Response(r) => r,
        SipMessage::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

fn request(text: &str) -> crate::sip::Request {
    match parse(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(r) => panic!("expected a request, got {}", r.code),
    }
}

impl Harness {
    fn send(&mut self, conn: u64, raw: &str) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let input = match parse(raw.as_bytes()) {
            Ok(msg) => Input::Sip {
                conn: ConnId(conn),
                msg,
            },
            // What the host does with a message the parser refuses.
            Err(e) => match Input::refused(ConnId(conn), raw.as_bytes(), e.code, &e.reason) {
                Some(refused) => refused,
                None => return Vec::new(),
            },
        };
        self.core.handle(input, &mut out);
        texts(&out)
    }

    /// INVITE + ACK for `user` on `conn`; returns (call-id, from-tag, to-tag).
    fn sign_in(&mut self, conn: u64, user: &str) -> (String, String, String) {
        let call_id = format!("call-{user}");
        let sdp = "v=0\r\no=- 0 0 IN IP4 10.0.0.5\r\ns=session\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=message 5060 sip null\r\n";
        let invite = format!(
            "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:1;branch=z9hG4bK{user}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@contoso.com>;tag=ft-{user}\r\nTo: <sip:pchat@contoso.com>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:{user}@10.0.0.5:1;transport=tcp>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let out = self.send(conn, &invite);
        assert_eq!(out.len(), 1);
        let ok = response(&out[0].1);
        assert_eq!(ok.code, 200);
        assert!(ok
            .headers
            .get("Session-Expires")
            .unwrap()
            .starts_with("1800"));
        assert!(ok.headers.get("Contact").is_some());
        assert!(String::from_utf8_lossy(&ok.body).contains("m=message 5060 sip null"));
        let to_tag = ok.to_tag().unwrap().to_string();
        let ack = format!(
            "ACK sip:10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:1;branch=z9hG4bKack{user}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@contoso.com>;tag=ft-{user}\r\nTo: <sip:pchat@contoso.com>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(self.send(conn, &ack).is_empty(), "ACK gets no response");
        (call_id, format!("ft-{user}"), to_tag)
    }

    fn info(
        &mut self,
        conn: u64,
        user: &str,
        dialog: &(String, String, String),
        body: &str,
    ) -> Vec<(u64, String)> {
        self.cseq += 1;
        let raw = format!(
            "INFO sip:10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:1;branch=z9hG4bKi{}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@contoso.com>;tag={}\r\nTo: <sip:pchat@contoso.com>;tag={}\r\n\
             Call-ID: {}\r\nCSeq: {} INFO\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            self.cseq,
            dialog.1,
            dialog.2,
            dialog.0,
            self.cseq,
            body.len()
        );
        self.send(conn, &raw)
    }

    /// A user1 INFO in `dialog` on connection 1 as an [`Input`] (for batches).
    fn info_input(&mut self, dialog: &(String, String, String), branch: &str, body: &str) -> Input {
        self.cseq += 1;
        let raw = format!(
            "INFO sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK{branch}\r\nFrom: <sip:user1@contoso.com>;tag={}\r\n\
             To: <sip:pchat@contoso.com>;tag={}\r\nCall-ID: {}\r\nCSeq: {} INFO\r\nContent-Length: {}\r\n\r\n{body}",
            dialog.1,
            dialog.2,
            dialog.0,
            self.cseq,
            body.len()
        );
        Input::Sip {
            conn: ConnId(1),
            msg: parse(raw.as_bytes()).unwrap(),
        }
    }

    /// user1 (conn 1) and user2 (conn 2) sign in and join Design; their dialogs and
    /// the room's URI.
    fn both_in_design(&mut self) -> (Dialog, Dialog, String) {
        let d1 = self.sign_in(1, "user1");
        let d2 = self.sign_in(2, "user2");
        let uri = self.design_uri();
        self.info(1, "user1", &d1, &join_body(&uri));
        self.info(2, "user2", &d2, &join_body(&uri));
        (d1, d2, uri)
    }

    fn design_uri(&self) -> String {
        crate::ids::room_uri(
            "contoso.com",
            &crate::ids::room_guid("contoso.com", "Design"),
        )
    }
}

fn join_body(uri: &str) -> String {
    format!(
        "<xccos ver=\"1\" envid=\"100\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:join\" seqid=\"1\">\
         <data><chanib uri=\"{uri}\"/></data></cmd></xccos>"
    )
}

fn post_body(uri: &str, text: &str) -> String {
    format!(
        "<xccos ver=\"1\" envid=\"200\" xmlns=\"urn:parlano:xml:ns:xccos\"><grpchat id=\"grpchat\" seqid=\"1\" \
         chanUri=\"{uri}\" author=\"sip:forged@contoso.com\"><chat>{text}</chat></grpchat></xccos>"
    )
}

fn body_of(text: &str) -> xccos::Envelope {
    let req = request(text);
    assert_eq!(req.method, "INFO");
    xccos::parse(&req.body).unwrap()
}

#[test]
fn command_gets_200_then_reply_info_with_commandid() {
    let mut h = harness();
    let d = h.sign_in(1, "user1");
    let uri = h.design_uri();
    let out = h.info(1, "user1", &d, &join_body(&uri));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(response(&out[0].1).code, 200);
    let env = body_of(&out[1].1);
    let Body::Rpl(rpl) = env.body else {
        panic!("expected rpl")
    };
    assert_eq!(rpl.id, "rpl:join");
    assert_eq!(rpl.command.unwrap().envid, 100);
    assert_eq!(rpl.resp.unwrap().code, 200);
    let RplData::Rooms { rooms, users } = rpl.data else {
        panic!("expected rooms")
    };
    assert_eq!(rooms[0].uri, uri);
    assert_eq!(
        users.iter().map(|u| u.uri.as_str()).collect::<Vec<_>>(),
        ["sip:user1@contoso.com"]
    );
    // The reply INFO is in our dialog: From carries our tag, To the client's.
    let info = request(&out[1].1);
    assert_eq!(info.from_tag(), Some(d.2.as_str()));
    assert_eq!(info.to_tag(), Some(d.1.as_str()));
    assert_eq!(info.call_id(), Some(d.0.as_str()));
}

#[test]
fn post_is_acknowledged_after_commit_and_relayed_with_server_author() {
    let mut h = harness();
    let d1 = h.sign_in(1, "user1");
    let d2 = h.sign_in(2, "user2");
    let uri = h.design_uri();
    h.info(1, "user1", &d1, &join_body(&uri));
    let out = h.info(2, "user2", &d2, &join_body(&uri));
    assert!(
        out.iter().any(|(c, t)| *c == 1 && t.contains("ntc:join")),
        "user1 told of user2: {out:?}"
    );
    h.clock.advance(1500);
    let out = h.info(1, "user1", &d1, &post_body(&uri, "hi &amp; bye"));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!((out[0].0, response(&out[0].1).code), (1, 200));
    assert_eq!(out[1].0, 2, "relayed to user2 only");
    let Body::GrpChat(g) = body_of(&out[1].1).body else {
        panic!("grpchat")
    };
    assert_eq!(
        g.author.as_deref(),
        Some("sip:user1@contoso.com"),
        "server sets author"
    );
    assert_eq!(g.ts.as_deref(), Some("2026-01-01T00:00:01.500Z"));
    assert_eq!(g.text, "hi & bye");
    assert_eq!(h.core.stats().posts, 1);
}

/// Both users in Design; user1 posts `text` while the store fails (`every` call, else
/// writes only): the one answer, to the poster (nothing relayed), then the store heals.
fn post_while_failing(h: &mut Harness, every: bool, text: &str) -> (Dialog, String, Response) {
    let (d1, _, uri) = h.both_in_design();
    let switch = Arc::clone(if every { &h.fail } else { &h.fail_writes });
    switch.store(true, Ordering::SeqCst);
    let out = h.info(1, "user1", &d1, &post_body(&uri, text));
    switch.store(false, Ordering::SeqCst);
    assert_eq!(out.len(), 1, "only the poster hears back: {out:?}");
    let r = response(&out[0].1);
    assert_eq!((r.code, r.reason.as_str()), (503, "Service Unavailable"));
    assert_eq!(r.headers.get("Retry-After"), Some("1"));
    (d1, uri, r)
}

#[test]
fn failed_commit_answers_503_and_relays_nothing() {
    let mut h = harness();
    let (d1, uri, _) = post_while_failing(&mut h, true, "lost?");
    let guid = crate::ids::room_guid("contoso.com", "Design");
    assert_eq!(
        h.core.store.message_count(&guid).unwrap(),
        0,
        "nothing stored"
    );
    let out = h.info(1, "user1", &d1, &post_body(&uri, "retried"));
    assert_eq!(response(&out[0].1).code, 200);
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 1);
}

#[test]
fn failed_write_answers_503_with_retry_after_and_keeps_nothing() {
    let mut h = harness();
    let (d1, uri, r) = post_while_failing(&mut h, false, "kept?");
    assert!(
        r.headers.get("Warning").is_some_and(|w| w.contains("I/O")),
        "the Warning names the cause: {:?}",
        r.headers.get("Warning")
    );
    let guid = crate::ids::room_guid("contoso.com", "Design");
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 0);
    // The client retries the same envelope: stored and relayed once.
    let out = h.info(1, "user1", &d1, &post_body(&uri, "kept?"));
    assert_eq!(response(&out[0].1).code, 200);
    assert_eq!(out.len(), 2, "200 OK and one relay: {out:?}");
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 1);
}

/// user1 signed in and joined to Design; one INFO input per `(call-id suffix, text)`
/// post, for one batch.
fn posts_batch(h: &mut Harness, posts: &[(String, String)]) -> (Dialog, String, Vec<Input>) {
    let d1 = h.sign_in(1, "user1");
    let uri = h.design_uri();
    h.info(1, "user1", &d1, &join_body(&uri));
    let inputs = posts
        .iter()
        .map(|(id, text)| h.info_input(&d1, id, &post_body(&uri, text)))
        .collect();
    (d1, uri, inputs)
}

#[test]
fn batch_commits_once_for_many_posts() {
    let mut h = harness();
    let posts: Vec<_> = (0..10)
        .map(|i| (format!("b{i}"), format!("m{i}")))
        .collect();
    let (_, _, inputs) = posts_batch(&mut h, &posts);
    let mut out = Vec::new();
    h.core.handle_batch(inputs, &mut out);
    let codes: Vec<u16> = texts(&out).iter().map(|(_, t)| response(t).code).collect();
    assert_eq!(codes, vec![200; 10]);
    let guid = crate::ids::room_guid("contoso.com", "Design");
    let texts: Vec<String> = h
        .core
        .store
        .last_messages(&guid, 20)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(
        texts,
        (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        "order kept"
    );
}

#[test]
fn unknown_dialog_481_and_bye_ends_session() {
    let mut h = harness();
    let d1 = h.sign_in(1, "user1");
    let bogus = ("nope".to_string(), d1.1.clone(), d1.2.clone());
    let out = h.info(1, "user1", &bogus, "x");
    assert_eq!(response(&out[0].1).code, 481);
    assert_eq!(h.core.dialog_count(), 1);
    let bye = format!(
        "BYE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKbye\r\nFrom: <sip:user1@contoso.com>;tag={}\r\n\
         To: <sip:pchat@contoso.com>;tag={}\r\nCall-ID: {}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
        d1.1, d1.2, d1.0
    );
    assert_eq!(response(&h.send(1, &bye)[0].1).code, 200);
    assert_eq!(h.core.dialog_count(), 0);
}

#[test]
fn session_expires_without_refresh_and_connection_close_parts() {
    let mut h = harness();
    h.both_in_design();
    let mut out = Vec::new();
    h.core.handle(Input::Closed { conn: ConnId(2) }, &mut out);
    let out = texts(&out);
    assert_eq!(out.len(), 1);
    assert!(out[0].0 == 1 && out[0].1.contains("ntc:part"), "{out:?}");
    h.clock.advance(1_800_001);
    let mut out = Vec::new();
    h.core.handle(Input::Tick, &mut out);
    assert_eq!(h.core.dialog_count(), 0);
}

#[test]
fn malformed_request_gets_400_naming_the_defect() {
    let mut h = harness();
    let out = h.send(
        7,
        "OPTIONS sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\nFrom: <sip:a@contoso.com>;tag=1\r\nTo: <sip:pchat@contoso.com>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(out.len(), 1);
    assert!(out[0].1.starts_with("SIP/2.0 400 "), "{}", out[0].1);
    assert!(
        out[0].1.lines().next().unwrap().contains("Call-ID"),
        "{}",
        out[0].1
    );
    assert!(out[0].1.contains("Via: SIP/2.0/TCP h;branch=z9hG4bKx"));
}

#[test]
fn retried_post_is_stored_and_relayed_once() {
    let mut h = harness();
    let (d1, _, uri) = h.both_in_design();
    let guid = crate::ids::room_guid("contoso.com", "Design");
    let out = h.info(1, "user1", &d1, &post_body(&uri, "once"));
    assert_eq!(out.len(), 2, "200 + relay: {out:?}");
    // The 200 OK was lost: the client sends the same envelope in a new INFO.
    let out = h.info(1, "user1", &d1, &post_body(&uri, "once"));
    assert_eq!(out.len(), 1, "200 only, no second relay: {out:?}");
    assert_eq!(response(&out[0].1).code, 200);
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 1);
    // Same envid, other text: a different post.
    let out = h.info(1, "user1", &d1, &post_body(&uri, "twice"));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 2);
    // The planted bug switch turns de-duplication off.
    h.core.faults.disable_retry_dedup(true);
    h.info(1, "user1", &d1, &post_body(&uri, "once"));
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 3);
}

#[test]
fn retry_within_one_batch_is_answered_with_the_commit() {
    let mut h = harness();
    let posts: Vec<_> = (0..2)
        .map(|i| (format!("r{i}"), "same".to_string()))
        .collect();
    let (d1, uri, inputs) = posts_batch(&mut h, &posts);
    h.fail.store(true, Ordering::SeqCst);
    let mut out = Vec::new();
    h.core.handle_batch(inputs, &mut out);
    let codes: Vec<u16> = texts(&out).iter().map(|(_, t)| response(t).code).collect();
    assert_eq!(codes, vec![503, 503], "both copies told to retry");
    h.fail.store(false, Ordering::SeqCst);
    let out = h.info(1, "user1", &d1, &post_body(&uri, "same"));
    assert_eq!(response(&out[0].1).code, 200, "the retry is stored");
    let guid = crate::ids::room_guid("contoso.com", "Design");
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 1);
}

/// The `token="…"` of the first reply in `out`.
fn token_in(out: &[(u64, String)]) -> String {
    out.iter()
        .find_map(|(_, t)| {
            let start = t.find("token=\"")? + 7;
            let len = t[start..].find('"')?;
            Some(t[start..start + len].to_string())
        })
        .expect("a token in the reply")
}

#[test]
fn upload_in_a_batch_that_does_not_commit_answers_503_and_keeps_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.compliance.enabled = true;
    cfg.http = Some(crate::config::HttpConfig {
        file_store: dir.path().join("files"),
        compliance_file_store: dir.path().join("cfiles"),
        ..Default::default()
    });
    let mut h = flaky_harness(cfg);
    let (d1, _, uri) = h.both_in_design();
    let cmd = |id: &str, data: &str| {
        format!("<xccos ver=\"1\" envid=\"200\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"{id}\" seqid=\"1\"><data>{data}</data></cmd></xccos>")
    };
    let bearer = token_in(&h.info(1, "user1", &d1, &cmd("cmd:gethttptok", "")));
    let ftdb = format!("<ftdb channelUri=\"{uri}\" fileUrl=\"a.txt\"/>");
    let token = token_in(&h.info(1, "user1", &d1, &cmd("cmd:getfutok", &ftdb)));
    let guid = crate::ids::room_guid("contoso.com", "Design");
    // As the web handler does: staged (hashed, written, fsynced) before the core's turn.
    let files = crate::files::FileStore::new(dir.path().join("files"));
    let upload = |req: u64| Input::Http {
        req: crate::web::api::HttpReqId(req),
        request: crate::web::api::HttpRequest::Upload {
            bearer: bearer.clone(),
            room: guid.clone(),
            name: "a.txt".into(),
            token: token.clone(),
            staged: files.stage(b"hello").unwrap(),
        },
    };
    let status = |out: &[Action]| -> Vec<u16> {
        out.iter()
            .filter_map(|a| match a {
                Action::Http { reply, .. } => Some(reply.status),
                _ => None,
            })
            .collect()
    };
    h.fail.store(true, Ordering::SeqCst);
    let mut out = Vec::new();
    h.core.handle(upload(1), &mut out);
    assert_eq!(status(&out), [503]);
    assert!(texts(&out).is_empty(), "nothing relayed: {:?}", texts(&out));
    h.fail.store(false, Ordering::SeqCst);
    assert_eq!(h.core.store.get_file(&guid, "a.txt").unwrap(), None);
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 0);
    assert!(h
        .core
        .store
        .outbox_peek(100)
        .unwrap()
        .iter()
        .all(|e| e.kind != crate::compliance::EventKind::FileUpload));
    // The retry with the same token succeeds, once.
    let mut out = Vec::new();
    h.core.handle(upload(2), &mut out);
    assert_eq!(status(&out), [201]);
    assert!(texts(&out)
        .iter()
        .any(|(conn, t)| *conn == 2 && t.contains("[file] a.txt (5 bytes")));
    assert!(h.core.store.get_file(&guid, "a.txt").unwrap().is_some());
    let sha = crate::files::sha256_hex(b"hello");
    let cfiles = crate::files::FileStore::new(dir.path().join("cfiles"));
    assert!(
        files.contains(&sha) && cfiles.contains(&sha),
        "in place, with the compliance copy"
    );
    let mut out = Vec::new();
    h.core.handle(upload(3), &mut out);
    assert_eq!(status(&out), [409]);
}

/// A core with compliance on, over the SQLite file `db`.
fn compliance_core(db: &std::path::Path, faults: Faults) -> Harness {
    let mut cfg = config();
    cfg.compliance.enabled = true;
    let (fail, fail_writes) = (Arc::default(), Arc::default());
    let store = Box::new(crate::store::HookedStore::new(
        Box::new(SqliteStore::open(db).unwrap()),
        StoreFails(Arc::clone(&fail), Arc::clone(&fail_writes)),
    ));
    harness_with(cfg, store, (fail, fail_writes), faults)
}

/// (kind, user) of every outbox event, oldest first.
fn outbox(core: &mut Core) -> Vec<(&'static str, String)> {
    core.store
        .outbox_peek(1000)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind.as_str(), e.ev.user))
        .collect()
}

#[test]
fn a_restart_after_a_crash_closes_the_sessions_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pchat.db");
    let mut h = compliance_core(&db, Faults::default());
    h.both_in_design();
    // user2 leaves cleanly (connection closed: PART), user1 is still online.
    h.core
        .handle(Input::Closed { conn: ConnId(2) }, &mut Vec::new());
    let server = h.core.cfg.server_id().to_string();
    assert_eq!(h.core.store.open_sessions(&server).unwrap().len(), 1);
    // Crash: the core is dropped without closing anything; a new one starts.
    drop(h);
    let mut h = compliance_core(&db, Faults::default());
    // The PART goes into the first batch; while batches fail it is carried, not lost.
    h.fail.store(true, Ordering::SeqCst);
    h.core.handle(Input::Tick, &mut Vec::new());
    assert_eq!(
        outbox(&mut h.core).len(),
        3,
        "the failed batch kept nothing"
    );
    h.fail.store(false, Ordering::SeqCst);
    h.core.handle(Input::Tick, &mut Vec::new());
    let events = outbox(&mut h.core);
    let tail: Vec<_> = events.iter().map(|(k, u)| (*k, u.as_str())).collect();
    assert_eq!(
        tail,
        [
            ("JOIN", "sip:user1@contoso.com"),
            ("JOIN", "sip:user2@contoso.com"),
            ("PART", "sip:user2@contoso.com"),
            ("PART", "sip:user1@contoso.com"),
        ],
        "the restart recorded user1's PART"
    );
    assert!(h.core.store.open_sessions(&server).unwrap().is_empty());
    // A second, clean restart finds nothing to close.
    drop(h);
    let mut h = compliance_core(&db, Faults::default());
    h.core.handle(Input::Tick, &mut Vec::new());
    assert_eq!(outbox(&mut h.core).len(), 4);
}

#[test]
fn the_planted_bug_leaves_sessions_of_a_crashed_run_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pchat.db");
    let mut h = compliance_core(&db, Faults::default());
    let d1 = h.sign_in(1, "user1");
    let uri = h.design_uri();
    h.info(1, "user1", &d1, &join_body(&uri));
    drop(h);
    let faults = Faults::default();
    faults.disable_crash_cleanup(true);
    let mut h = compliance_core(&db, faults);
    h.core.handle(Input::Tick, &mut Vec::new());
    assert_eq!(
        outbox(&mut h.core),
        [("JOIN", "sip:user1@contoso.com".to_string())]
    );
}

fn post_with_msgid(uri: &str, envid: u32, msgid: &str, text: &str) -> String {
    format!(
        "<xccos ver=\"1\" envid=\"{envid}\" xmlns=\"urn:parlano:xml:ns:xccos\"><grpchat id=\"grpchat\" seqid=\"1\" \
         msgid=\"{msgid}\" chanUri=\"{uri}\"><chat>{text}</chat></grpchat></xccos>"
    )
}

#[test]
fn a_client_message_id_is_stored_once_across_dialogs_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pchat.db");
    let guid = crate::ids::room_guid("contoso.com", "Design");
    let mut h = compliance_core(&db, Faults::default());
    let uri = h.design_uri();
    let d2 = h.sign_in(2, "user2");
    h.info(2, "user2", &d2, &join_body(&uri));
    let d1 = h.sign_in(1, "user1");
    h.info(1, "user1", &d1, &join_body(&uri));
    let out = h.info(1, "user1", &d1, &post_with_msgid(&uri, 300, "m-1", "once"));
    assert_eq!(out.len(), 2, "200 OK and the relay to user2: {out:?}");
    // The 200 OK was lost; the client reconnects (new dialog, new envid) and resends.
    h.core
        .handle(Input::Closed { conn: ConnId(1) }, &mut Vec::new());
    let d1 = h.sign_in(3, "user1");
    h.info(3, "user1", &d1, &join_body(&uri));
    let out = h.info(3, "user1", &d1, &post_with_msgid(&uri, 301, "m-1", "once"));
    assert_eq!(out.len(), 1, "only the 200 OK, no relay: {out:?}");
    assert_eq!(response(&out[0].1).code, 200);
    // user2 may use the same id: ids are per author.
    let out = h.info(2, "user2", &d2, &post_with_msgid(&uri, 302, "m-1", "mine"));
    assert_eq!(response(&out[0].1).code, 200);
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 2);
    // After a restart the store still knows it.
    drop(h);
    let mut h = compliance_core(&db, Faults::default());
    let d1 = h.sign_in(1, "user1");
    h.info(1, "user1", &d1, &join_body(&uri));
    let out = h.info(1, "user1", &d1, &post_with_msgid(&uri, 303, "m-1", "once"));
    assert_eq!(response(&out[0].1).code, 200);
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 2);
    // Two copies in one batch: the second is answered with the first.
    let (a, b) = (
        h.info_input(&d1, "x1", &post_with_msgid(&uri, 304, "m-2", "twice")),
        h.info_input(&d1, "x2", &post_with_msgid(&uri, 305, "m-2", "twice")),
    );
    let mut out = Vec::new();
    h.core.handle_batch([a, b], &mut out);
    let codes: Vec<u16> = texts(&out)
        .iter()
        .filter(|(_, t)| t.starts_with("SIP/2.0"))
        .map(|(_, t)| response(t).code)
        .collect();
    assert_eq!(codes, [200, 200]);
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 3);
    // A bad id is refused and changes nothing.
    let long = "x".repeat(129);
    for bad in ["", long.as_str()] {
        let out = h.info(1, "user1", &d1, &post_with_msgid(&uri, 306, bad, "bad"));
        assert_eq!(response(&out[0].1).code, 400, "msgid {bad:?}");
    }
    assert_eq!(h.core.store.message_count(&guid).unwrap(), 3);
}

/// Time is an input: a batch's handlers see the `now` it was handed (not the clock),
/// and time never runs back between batches.
#[test]
fn a_batch_runs_at_the_time_it_is_handed() {
    let mut h = harness();
    let d1 = h.sign_in(1, "user1");
    let info = "<xccos ver=\"1\" envid=\"9\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:getserverinfo\" seqid=\"1\"><data><sib domain=\"contoso.com\" infoType=\"123\"/></data></cmd></xccos>";
    let later = crate::clock::SIM_EPOCH_MS + 90_000;
    let server_time = |out: &[Action]| {
        texts(out)
            .iter()
            .filter(|(_, t)| t.starts_with("INFO "))
            .find_map(|(_, t)| match body_of(t).body {
                Body::Rpl(r) => match r.data {
                    RplData::ServerInfo(s) => Some(s.server_time),
                    _ => None,
                },
                _ => None,
            })
            .expect("rpl:getservinfo")
    };
    let mut out = Vec::new();
    let input = h.info_input(&d1, "t1", info);
    h.core.handle_batch_at(later, [input], &mut out);
    assert_eq!(server_time(&out), crate::clock::iso8601(later));
    assert_eq!(
        h.core.now_ms(),
        later,
        "the clock (still at the epoch) was not read"
    );
    out.clear();
    let input = h.info_input(&d1, "t2", info);
    h.core.handle_batch_at(later - 50_000, [input], &mut out);
    assert_eq!(
        server_time(&out),
        crate::clock::iso8601(later),
        "no running back"
    );
}

/// `poll_timeout` is the next time a tick has work: nothing without sessions, the
/// session expiry with one, and a tick at that time ends the session.
#[test]
fn poll_timeout_is_the_next_session_expiry() {
    let mut h = harness();
    assert_eq!(h.core.poll_timeout(), None, "no session, no deadline");
    h.sign_in(1, "user1");
    let expiry = crate::clock::SIM_EPOCH_MS + 1_800_000;
    assert_eq!(h.core.poll_timeout(), Some(expiry));
    h.core
        .handle_batch_at(expiry - 1, [Input::Tick], &mut Vec::new());
    assert_eq!(h.core.dialog_count(), 1, "not yet due");
    h.core
        .handle_batch_at(expiry, [Input::Tick], &mut Vec::new());
    assert_eq!(h.core.dialog_count(), 0);
    assert_eq!(h.core.poll_timeout(), None);
}

fn bye(user: &str, d: &Dialog) -> String {
    format!(
        "BYE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKbye{user}\r\nFrom: <sip:{user}@contoso.com>;tag={}\r\n\
         To: <sip:pchat@contoso.com>;tag={}\r\nCall-ID: {}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
        d.1, d.2, d.0
    )
}

fn newcontent_to(out: &[(u64, String)], conn: u64) -> usize {
    out.iter()
        .filter(|(c, t)| *c == conn && t.contains("ntc:newcontent"))
        .count()
}

/// `ntc:newcontent` reaches a follower online elsewhere - read from the store when the
/// user signs in again - and, once the user unfollows the room (setpref of the followed
/// list), no longer does: the online index keeps the room, the store says no.
#[test]
fn newcontent_follows_the_store_not_the_online_index() {
    let mut h = harness();
    let uri = h.design_uri();
    let d1 = h.sign_in(1, "user1");
    h.info(1, "user1", &d1, &join_body(&uri));
    let d3 = h.sign_in(3, "user3");
    h.info(3, "user3", &d3, &join_body(&uri));
    assert_eq!(response(&h.send(3, &bye("user3", &d3))[0].1).code, 200);
    let d3 = h.sign_in(4, "user3");
    let out = h.info(1, "user1", &d1, &post_body(&uri, "one"));
    assert_eq!(
        newcontent_to(&out, 4),
        1,
        "a follower signed in again: {out:?}"
    );
    let unfollow = "<xccos ver=\"1\" envid=\"300\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:setpref\" \
                    seqid=\"1\"><data><pref label=\"kedzie.GroupChannels\" seqid=\"1\" content=\"\"/></data></cmd></xccos>";
    let out = h.info(4, "user3", &d3, unfollow);
    assert_eq!(response(&out[0].1).code, 200, "{out:?}");
    assert!(
        out.iter().any(|(_, t)| t.contains("rpl:setpref")),
        "{out:?}"
    );
    let out = h.info(1, "user1", &d1, &post_body(&uri, "two"));
    assert_eq!(newcontent_to(&out, 4), 0, "unfollowed: {out:?}");
    assert_eq!(response(&out[0].1).code, 200);
}
