//! SIP codec benchmarks: an INFO parsed once into our typed view (`sip::parse_frame` +
//! `Request::typed`), long form and compact/folded form (RFC 3261 7.3.1, 7.3.3), next to
//! a plain scan of the same bytes and rsip 0.4.0's raw parse, in the same run; plus the
//! 200 OK serialization. `benches/codec.rs` has the combined
//! "parse + 200 OK" figure. Run: `cargo bench --bench sip`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pchat_server::sip::{parse, parse_frame, response_for, SipMessage};
use std::hint::black_box;

mod common;

const BODY: &str = "<xccos ver=\"1\" envid=\"4711042\" xmlns=\"urn:parlano:xml:ns:xccos\">\
<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"ma-chan://contoso.com/6f0a5c44-31d2-4b8e-9a51-3c7d2f0b9e11\">\
<chat>Hello team, the Q3 layout review moves to Thursday.</chat></grpchat></xccos>";

/// A typical client INFO (long header names, one line each).
fn info_long() -> Vec<u8> {
    common::info(
        "User-Agent: UCCAPI/15.0.4569.1503 OC/15.0.4569.1506 (Microsoft Lync)\r\n",
        BODY.as_bytes(),
    )
}

/// The same INFO with compact names, a folded CSeq and space before colons.
fn info_compact() -> Vec<u8> {
    common::compact(&info_long())
}

/// The baseline the parse is measured against, in the same run: a plain scan of the
/// same bytes that does the least any header reader must do - find the end of the
/// header section, every line end, and each line's colon - and builds nothing.
fn plain_scan(raw: &[u8]) -> usize {
    let head_end = memchr::memmem::find(raw, b"\r\n\r\n").unwrap_or(raw.len());
    let mut sum = 0;
    for line in raw[..head_end].split(|b| *b == b'\n') {
        sum += memchr::memchr(b':', line).unwrap_or(0);
    }
    sum
}

/// INFO parse + typed view (issue 18 target: <= 3 us, within 2x of `plain_scan`).
fn parse_typed(frame: &Bytes) -> usize {
    match parse_frame(frame) {
        Ok(SipMessage::Request(req)) => {
            let t = req.typed().expect("typed view of a parsed INFO");
            t.call_id.len()
                + t.cseq.num as usize
                + t.from.tag().map_or(0, str::len)
                + t.to.tag().map_or(0, str::len)
                + t.via.branch().map_or(0, str::len)
                + req.body.len()
        }
        _ => 0,
    }
}

fn bench_parse(c: &mut Criterion) {
    let long = Bytes::from(info_long());
    let compact = Bytes::from(info_compact());
    assert!(
        rsip::SipMessage::try_from(&long[..]).is_ok(),
        "rsip parses the long form"
    );
    assert!(parse_typed(&long) > 0 && parse_typed(&compact) > 0);
    assert_eq!(
        parse(&long),
        parse(&compact),
        "same message, either spelling"
    );
    let mut g = c.benchmark_group("sip_parse");
    g.throughput(Throughput::Bytes(long.len() as u64));
    g.bench_function("plain_scan", |b| b.iter(|| plain_scan(black_box(&long))));
    g.bench_function("info_parse_typed", |b| {
        b.iter(|| parse_typed(black_box(&long)))
    });
    g.bench_function("info_parse_typed_compact_folded", |b| {
        b.iter(|| parse_typed(black_box(&compact)))
    });
    g.bench_function("rsip_raw_parse", |b| {
        b.iter(|| rsip::SipMessage::try_from(black_box(&long[..])).is_ok())
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

criterion_group!(benches, bench_parse, bench_ok);
criterion_main!(benches);
