//! XCCOS codec benchmarks for the large replies: an `rpl:join` listing 150 participants
//! (and 3 managers) and an `rpl:bccontext` carrying 25 messages, each parsed and
//! serialized. The small `grpchat` envelope is in `benches/codec.rs`.
//! Run: `cargo bench --bench xccos`. Figures go to BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pchat_server::xccos::{
    self, Body, CommandRef, Envelope, GrpChat, Resp, RoomInfo, Rpl, RplData, UserRef,
};
use std::hint::black_box;

const CHAN: &str = "ma-chan://contoso.com/6f0a5c44-31d2-4b8e-9a51-3c7d2f0b9e11";

fn rpl(id: &str, data: RplData) -> Envelope {
    Envelope {
        envid: 9_000_001,
        body: Body::Rpl(Rpl {
            id: id.into(),
            seqid: 1,
            command: Some(CommandRef {
                seqid: 1,
                envid: 4_711_042,
            }),
            resp: Some(Resp {
                code: 200,
                token: "SUCCESS_OK".into(),
            }),
            data,
        }),
    }
}

/// `rpl:join` for one room with `n` online participants, the first 3 of them managers.
fn join_reply(n: u32) -> Envelope {
    let users: Vec<UserRef> = (0..n)
        .map(|id| UserRef {
            id,
            uri: format!("sip:user{id}@contoso.com"),
        })
        .collect();
    rpl(
        "rpl:join",
        RplData::Rooms {
            rooms: vec![RoomInfo {
                uri: CHAN.into(),
                name: "Design".into(),
                topic: "Q3 layout".into(),
                description: "Design discussions".into(),
                participants: (0..n).collect(),
                managers: (0..3.min(n)).collect(),
            }],
            users,
        },
    )
}

/// `rpl:bccontext` with `n` messages of about 60 characters, with markup to escape.
fn history_reply(n: u32) -> Envelope {
    let msgs = (0..n)
        .map(|i| GrpChat {
            msgid: None,
            seqid: 1,
            chan_uri: CHAN.into(),
            author: Some(format!("sip:user{}@contoso.com", i % 7)),
            ts: Some(format!("2026-01-01T10:{:02}:00.000Z", i % 60)),
            text: format!("message {i}: the <Q3> layout review & notes, see you Thursday"),
        })
        .collect();
    rpl(
        "rpl:bccontext",
        RplData::History {
            chan_uri: CHAN.into(),
            msgs,
        },
    )
}

fn bench_envelope(c: &mut Criterion, group: &str, env: &Envelope) {
    let xml = env.to_xml().into_bytes();
    assert_eq!(
        xccos::parse(&xml).as_ref(),
        Ok(env),
        "{group}: round trip holds"
    );
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("parse", |b| b.iter(|| xccos::parse(black_box(&xml))));
    g.bench_function("serialize", |b| {
        let mut buf = Vec::with_capacity(xml.len());
        b.iter(|| {
            buf.clear();
            black_box(env).write(&mut buf);
            black_box(buf.len())
        })
    });
    g.finish();
}

fn bench_join(c: &mut Criterion) {
    bench_envelope(c, "xccos_rpl_join_150", &join_reply(150));
}

fn bench_bccontext(c: &mut Criterion) {
    bench_envelope(c, "xccos_rpl_bccontext_25", &history_reply(25));
}

criterion_group!(benches, bench_join, bench_bccontext);
criterion_main!(benches);
