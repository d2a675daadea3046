//! SIP codec benchmarks: what our normalization (compact header names, folded lines,
//! whitespace around the colon; RFC 3261 7.3.1 and 7.3.3) costs next to rsip 0.4.0's
//! raw parse of the same bytes, measured in the same run; plus the full
//! parse-to-our-view and the 200 OK serialization. `benches/codec.rs` has the combined
//! "parse + 200 OK" figure. Run: `cargo bench --bench sip`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pchat_server::sip::normalize::normalize;
use pchat_server::sip::{parse, response_for, SipMessage};
use std::hint::black_box;

const BODY: &str = "<xccos ver=\"1\" envid=\"4711042\" xmlns=\"urn:parlano:xml:ns:xccos\">\
<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"ma-chan://contoso.com/6f0a5c44-31d2-4b8e-9a51-3c7d2f0b9e11\">\
<chat>Hello team, the Q3 layout review moves to Thursday.</chat></grpchat></xccos>";

/// A typical client INFO (long header names, one line each).
fn info_long() -> Vec<u8> {
    format!(
        "INFO sip:pchat@10.0.0.1:5060;transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP 10.0.0.5:49152;branch=z9hG4bK8a7c6b5d4e3f2a10\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:user1@contoso.com>;tag=3f2a1b0c9d8e7f60\r\n\
         To: <sip:pchat@contoso.com>;tag=9c8b7a6f5e4d3c2b\r\n\
         Call-ID: 0f1e2d3c4b5a69788796a5b4c3d2e1f0\r\n\
         CSeq: 7 INFO\r\n\
         User-Agent: UCCAPI/15.0.4569.1503 OC/15.0.4569.1506 (Microsoft Lync)\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}

/// The same INFO with compact names, a folded CSeq and space before colons.
fn info_compact() -> Vec<u8> {
    String::from_utf8_lossy(&info_long())
        .replace("Via: ", "v: ")
        .replace("From: ", "f : ")
        .replace("To: ", "t: ")
        .replace("Call-ID: ", "i: ")
        .replace("Content-Type: ", "c: ")
        .replace("Content-Length: ", "l: ")
        .replace("CSeq: 7 INFO", "CSeq: 7\r\n\t INFO")
        .into_bytes()
}

fn bench_normalization(c: &mut Criterion) {
    let long = info_long();
    let compact = info_compact();
    assert!(
        rsip::SipMessage::try_from(long.as_slice()).is_ok(),
        "rsip parses the long form"
    );
    assert!(
        rsip::SipMessage::try_from(compact.as_slice()).is_err() || parse(&compact).is_ok(),
        "fixture sanity"
    );
    assert!(matches!(parse(&compact), Ok(SipMessage::Request(_))));
    let mut g = c.benchmark_group("sip_normalization");
    g.throughput(Throughput::Bytes(long.len() as u64));
    g.bench_function("rsip_raw_parse", |b| {
        b.iter(|| rsip::SipMessage::try_from(black_box(long.as_slice())).is_ok())
    });
    g.bench_function("normalize_long", |b| {
        b.iter(|| normalize(black_box(&long)).map(|n| n.bytes.len()))
    });
    g.bench_function("normalize_compact_folded", |b| {
        b.iter(|| normalize(black_box(&compact)).map(|n| n.bytes.len()))
    });
    g.bench_function("parse_long", |b| b.iter(|| parse(black_box(&long)).is_ok()));
    g.bench_function("parse_compact_folded", |b| {
        b.iter(|| parse(black_box(&compact)).is_ok())
    });
    g.finish();
}

fn bench_ok(c: &mut Criterion) {
    let Ok(SipMessage::Request(req)) = parse(&info_long()) else {
        panic!("fixture parses")
    };
    let mut g = c.benchmark_group("sip_200_ok");
    g.bench_function("serialize", |b| {
        b.iter(|| response_for(black_box(&req), 200, "OK").encode().len())
    });
    g.finish();
}

criterion_group!(benches, bench_normalization, bench_ok);
criterion_main!(benches);
