//! Fan-out without sockets: one grpchat post into a room of 30, 150 and 16,000 joined
//! dialogs, driven straight through the sans-IO core (`Core::handle_batch`: parse is
//! done outside the timed part; timed = dialog lookup, authorization, store append in
//! a group-commit transaction, commit, one serialization of the relayed body, one SIP
//! head per recipient). The store is SQLite in memory so the figure is the fan-out, not
//! the fsync (benches/store.rs measures that). Throughput is in relays (recipients).
//!
//! Setup signs in one dialog per participant (INVITE + ACK, one connection each) and
//! joins them to the room with `cmd:join`. Joining is O(n) per join (the `rpl:join`
//! lists everyone online and every other dialog gets `ntc:join`), so a room of 16,000
//! distinct users costs O(n^2) to build; for that size the participants are 16,000
//! dialogs of 160 users (100 endpoints each) - the post's cost depends only on the
//! number of joined dialogs. Run: `cargo bench --bench fanout`.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use pchat_server::clock::{ManualClock, SIM_EPOCH_MS};
use pchat_server::config::{Config, Privacy, RoomConfig};
use pchat_server::core::{Action, ConnId, Core, Input};
use pchat_server::sip::{parse, SipMessage};
use pchat_server::store::SqliteStore;
use std::sync::Arc;

const ROOM: &str = "Fanout";

/// (participants, distinct users)
const SIZES: [(u64, u64); 3] = [(30, 30), (150, 150), (16_000, 160)];

struct Peer {
    conn: ConnId,
    user: String,
    call_id: String,
    from_tag: String,
    to_tag: String,
    cseq: u32,
}

fn sip(raw: &str) -> SipMessage {
    parse(raw.as_bytes()).expect("fixture parses")
}

fn invite(conn: ConnId, user: &str) -> SipMessage {
    let sdp = "v=0\r\no=- 0 0 IN IP4 10.0.0.5\r\ns=session\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=message 5060 sip null\r\n";
    sip(&format!(
        "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:{conn};branch=z9hG4bKinv{conn}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@contoso.com>;tag=ft{conn}\r\nTo: <sip:pchat@contoso.com>\r\n\
         Call-ID: call-{conn}\r\nCSeq: 1 INVITE\r\nContact: <sip:{user}@10.0.0.5:{conn};transport=tcp>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ))
}

fn info(p: &mut Peer, body: &str) -> SipMessage {
    p.cseq += 1;
    sip(&format!(
        "INFO sip:10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:{c};branch=z9hG4bKi{c}x{q}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{u}@contoso.com>;tag={f}\r\nTo: <sip:pchat@contoso.com>;tag={t}\r\n\
         Call-ID: {id}\r\nCSeq: {q} INFO\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n\r\n{body}",
        c = p.conn,
        q = p.cseq,
        u = p.user,
        f = p.from_tag,
        t = p.to_tag,
        id = p.call_id,
        len = body.len()
    ))
}

fn to_tag(out: &[Action], conn: ConnId) -> Option<String> {
    out.iter().find_map(|a| match a {
        Action::Send { conn: c, head, .. } if *c == conn => {
            let head = std::str::from_utf8(head).ok()?;
            let to = head.lines().find(|l| l.starts_with("To:"))?;
            Some(to.split_once(";tag=")?.1.trim().to_string())
        }
        _ => None,
    })
}

/// A core with one open room joined by `n` dialogs of `users` distinct users.
fn room_of(n: u64, users: u64) -> (Core, Vec<Peer>, String) {
    let mut cfg = Config::embedded_default();
    cfg.auth = Default::default(); // mode "none": the bench measures fan-out, not sign-in
    cfg.rooms = vec![RoomConfig {
        name: ROOM.into(),
        description: "fan-out bench".into(),
        topic: "t".into(),
        privacy: Privacy::Open,
        members: vec![],
        managers: vec![],
        ..RoomConfig::default()
    }];
    let store = SqliteStore::in_memory().expect("store");
    let clock = Arc::new(ManualClock::new(SIM_EPOCH_MS));
    let mut core = Core::new(
        cfg,
        Box::new(store),
        clock,
        1,
        "10.0.0.1:5060",
        Default::default(),
    )
    .expect("core");
    let uri = pchat_server::ids::room_uri(
        "contoso.com",
        &pchat_server::ids::room_guid("contoso.com", ROOM),
    );
    let join = format!(
        "<xccos ver=\"1\" envid=\"100\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:join\" seqid=\"1\">\
         <data><chanib uri=\"{uri}\"/></data></cmd></xccos>"
    );
    let mut peers = Vec::with_capacity(n as usize);
    let mut out = Vec::new();
    for c in 1..=n {
        let conn = ConnId(c);
        let user = format!("user{}", (c - 1) % users);
        core.handle(
            Input::Sip {
                conn,
                msg: invite(conn, &user),
            },
            &mut out,
        );
        let to_tag = to_tag(&out, conn).expect("200 OK to INVITE with a To-tag");
        out.clear();
        let ack = sip(&format!(
            "ACK sip:10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:{conn};branch=z9hG4bKack{conn}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@contoso.com>;tag=ft{conn}\r\nTo: <sip:pchat@contoso.com>;tag={to_tag}\r\n\
             Call-ID: call-{conn}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        ));
        let mut p = Peer {
            conn,
            user,
            call_id: format!("call-{conn}"),
            from_tag: format!("ft{conn}"),
            to_tag,
            cseq: 1,
        };
        let join = info(&mut p, &join);
        core.handle_batch(
            [
                Input::Sip { conn, msg: ack },
                Input::Sip { conn, msg: join },
            ],
            &mut out,
        );
        out.clear();
        peers.push(p);
    }
    let joined = core
        .rooms()
        .by_name(ROOM)
        .map_or(0, |r| r.joined.len() as u64);
    assert_eq!(joined, n, "every dialog joined");
    (core, peers, uri)
}

fn bench_fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout_post");
    g.sample_size(20);
    for (n, users) in SIZES {
        let (mut core, mut peers, uri) = room_of(n, users);
        let body = format!(
            "<xccos ver=\"1\" envid=\"200\" xmlns=\"urn:parlano:xml:ns:xccos\"><grpchat id=\"grpchat\" seqid=\"1\" \
             chanUri=\"{uri}\"><chat>Hello team, the Q3 layout review moves to Thursday.</chat></grpchat></xccos>"
        );
        let poster = &mut peers[0];
        let mut out: Vec<Action> = Vec::with_capacity(n as usize + 8);
        let before = core.stats();
        g.throughput(Throughput::Elements(n - 1));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || Input::Sip {
                    conn: ConnId(1),
                    msg: info(poster, &body),
                },
                |input| {
                    out.clear();
                    core.handle_batch(std::iter::once(input), &mut out);
                    out.len()
                },
                BatchSize::SmallInput,
            )
        });
        let after = core.stats();
        let posts = after.posts - before.posts;
        assert!(posts > 0, "posts were accepted");
        assert_eq!(
            after.relays - before.relays,
            posts * (n - 1),
            "each post relayed to every other dialog"
        );
    }
    g.finish();
}

criterion_group!(benches, bench_fanout);
criterion_main!(benches);
