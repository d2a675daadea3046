//! Codec benchmarks: XCCOS grpchat envelope parse/serialize, and a SIP INFO carrying it
//! parsed (normalization + rsip + our view) with its 200 OK serialized.
//! Run: `cargo bench --bench codec`. Figures go to BENCHMARKS.md.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pchat_server::sip::{parse, response_for, SipMessage};
use pchat_server::xccos::{self, Body, Envelope, GrpChat};
use std::hint::black_box;

mod common;

fn grpchat() -> Envelope {
    Envelope {
        envid: 4_711_042,
        body: Body::GrpChat(GrpChat {
            msgid: None,
            seqid: 1,
            chan_uri: "ma-chan://contoso.com/6f0a5c44-31d2-4b8e-9a51-3c7d2f0b9e11".into(),
            author: Some("sip:user1@contoso.com".into()),
            ts: Some("2026-01-01T10:15:00.000Z".into()),
            text: "Hello <team> & friends,\r\nthe Q3 layout review moves to Thursday.".into(),
        }),
    }
}

fn bench_xccos(c: &mut Criterion) {
    let env = grpchat();
    let xml = env.to_xml().into_bytes();
    let mut g = c.benchmark_group("xccos_grpchat");
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("parse", |b| b.iter(|| xccos::parse(black_box(&xml))));
    g.bench_function("serialize", |b| {
        let mut buf = Vec::with_capacity(512);
        b.iter(|| {
            buf.clear();
            black_box(&env).write(&mut buf);
            black_box(buf.len())
        })
    });
    g.finish();
}

fn bench_sip(c: &mut Criterion) {
    let body = grpchat().to_xml().into_bytes();
    let raw = common::info("", &body);
    let compact = common::compact(&raw);
    let mut g = c.benchmark_group("sip_info_grpchat");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("parse", |b| b.iter(|| parse(black_box(&raw))));
    g.bench_function("parse_compact_folded", |b| {
        b.iter(|| parse(black_box(&compact)))
    });
    g.bench_function("parse_and_200_ok", |b| {
        b.iter(|| match parse(black_box(&raw)) {
            Ok(SipMessage::Request(req)) => {
                let ok: Bytes = response_for(&req, 200, "OK").encode();
                black_box(ok.len())
            }
            _ => 0,
        })
    });
    g.bench_function("rsip_raw_parse", |b| {
        b.iter(|| rsip::SipMessage::try_from(black_box(raw.as_slice())).is_ok())
    });
    g.finish();
}

criterion_group!(benches, bench_xccos, bench_sip);
criterion_main!(benches);
