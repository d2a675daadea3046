//! Mutation fuzzer (proptest) over the framer, the SIP parser and the XCCOS parser.
//! Seeds: the RFC 4475 corpus, valid pchat requests and XCCOS commands; mutations:
//! byte flips, insertions, deletions, duplicated or dropped lines, spliced seeds,
//! rewritten Content-Length values. Properties: nothing panics; the framer returns
//! the same frames however the stream is cut into reads; every frame respects the size
//! limit; a refused request always gets an answer that is itself a well-formed response.
//!
//! Cases per property: `PCHAT_FUZZ_CASES` (default 256, what CI runs). Longer runs:
//! `PCHAT_FUZZ_CASES=200000 cargo test --release -p pchat-server --test fuzz_mutation`.

use pchat_server::sip::{parse, reject, Framer, FramingError, SipMessage};
use proptest::prelude::*;

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(load_seeds)
}

fn load_seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .filter(|b| !b.starts_with(b"#"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    let body = xccos_seeds()[0].clone();
    out.push(
        format!(
            "INFO sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:u@contoso.com>;tag=1\r\nTo: <sip:pchat@contoso.com>;tag=2\r\n\
             Call-ID: c1\r\nCSeq: 2 INFO\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes()
        .into_iter()
        .chain(body)
        .collect(),
    );
    out
}

fn xccos_seeds() -> Vec<Vec<u8>> {
    [
        r#"<xccos ver="1" envid="7" xmlns="urn:parlano:xml:ns:xccos"><grpchat id="grpchat" seqid="1" chanUri="ma-chan://contoso.com/5c1b7a2e-9d34-4f0a-8e61-c0ffee00c4a7"><chat>hi &amp; bye</chat></grpchat></xccos>"#,
        r#"<xccos ver="1" envid="8" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:join" seqid="1"><data><chanib uri="ma-chan://contoso.com/x"/></data></cmd></xccos>"#,
        r#"<xccos ver="1" envid="9" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:getserverinfo" seqid="1"><data><sib domain="contoso.com" infoType="123"/></data></cmd></xccos>"#,
        r#"<xccos ver="1" envid="10" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:bccontext" seqid="1"><data><chanib uri="ma-chan://contoso.com/x"/><bcq><last cnt="25"/></bcq></data></cmd></xccos>"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// One mutation of `input`, driven by `ops` (each op: kind, position, byte).
fn mutate(input: &[u8], ops: &[(u8, u16, u8)], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for &(kind, pos, byte) in ops {
        let at = if b.is_empty() {
            0
        } else {
            pos as usize % (b.len() + 1)
        };
        match kind % 8 {
            0 => {
                if at < b.len() {
                    b[at] ^= 1 << (byte % 8);
                }
            }
            1 => b.insert(at, byte),
            2 => {
                if at < b.len() {
                    b.remove(at);
                }
            }
            3 => {
                // Insert a line that is often meaningful to SIP.
                let lines: [&[u8]; 8] = [
                    b"Content-Length: 5\r\n",
                    b"l: 0\r\n",
                    b"Content-Length: +1\r\n",
                    b"\r\n",
                    b"CSeq: 1 INFO\r\n",
                    b"To: \"unterminated <sip:a@b>\r\n",
                    b" folded\r\n",
                    b"\0\r\n",
                ];
                let l = lines[byte as usize % lines.len()];
                b.splice(at..at, l.iter().copied());
            }
            4 => b.truncate(at),
            5 => {
                // Splice in part of another seed.
                let from = pos as usize % (other.len() + 1);
                b.splice(at..at, other[from..].iter().take(byte as usize).copied());
            }
            6 => {
                // Duplicate the line around `at`.
                let start = b[..at]
                    .iter()
                    .rposition(|c| *c == b'\n')
                    .map_or(0, |i| i + 1);
                let end = b[at..]
                    .iter()
                    .position(|c| *c == b'\n')
                    .map_or(b.len(), |i| at + i + 1);
                let line = b[start..end].to_vec();
                b.splice(end..end, line);
            }
            _ => {
                if at < b.len() {
                    b[at] = byte;
                }
            }
        }
    }
    b
}

/// All frames of `stream` pushed in `cuts`-sized reads; stops at the first
/// unrecoverable error (returned too).
fn frames(stream: &[u8], cuts: &[usize], max: usize) -> (Vec<Vec<u8>>, Option<FramingError>) {
    let mut f = Framer::new(max);
    let mut out = Vec::new();
    let mut off = 0;
    let mut i = 0;
    while off < stream.len() {
        let n = cuts.get(i).copied().unwrap_or(stream.len()).max(1);
        let end = (off + n).min(stream.len());
        f.push(&stream[off..end]);
        off = end;
        i += 1;
        loop {
            match f.next_frame() {
                Ok(Some(m)) => {
                    assert!(m.len() <= max.max(64), "frame over the limit");
                    out.push(m.to_vec());
                }
                Ok(None) => break,
                Err(e) if e.is_recoverable() => out.push(b"<413>".to_vec()),
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn check_message(m: &[u8]) {
    match parse(m) {
        Ok(SipMessage::Request(r)) => {
            let _ = (r.call_id(), r.cseq(), r.from_tag(), r.branch(), r.encode());
        }
        Ok(SipMessage::Response(r)) => {
            let _ = r.encode();
        }
        Err(e) => {
            assert!(matches!(e.code, 400 | 416 | 505), "code {}", e.code);
            if let Some(answer) = reject::response(m, e.code, &e.reason, &[], "fuzz") {
                match parse(&answer) {
                    Ok(SipMessage::Response(r)) => assert_eq!(r.code, e.code),
                    // The echo of a mangled header may itself not parse, but the
                    // answer must still be one framed message with a status line.
                    _ => {
                        let mut f = Framer::new(1 << 20);
                        f.push(&answer);
                        let framed = f.next_frame().expect("answer frames").expect("whole");
                        assert_eq!(framed.len(), answer.len());
                        assert!(answer.starts_with(format!("SIP/2.0 {} ", e.code).as_bytes()));
                    }
                }
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("PCHAT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_sip_never_panics_and_frames_the_same_however_it_is_read(
        seed in 0usize..64,
        other in 0usize..64,
        ops in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u8>()), 0..12),
        cuts in prop::collection::vec(1usize..200, 0..40),
        max in prop::sample::select(vec![512usize, 4096, 1 << 20]),
    ) {
        let seeds = seeds();
        let input = &seeds[seed % seeds.len()];
        let other = &seeds[other % seeds.len()];
        let stream = mutate(input, &ops, other);
        check_message(&stream);
        let (whole, e1) = frames(&stream, &[], max);
        let (cut, e2) = frames(&stream, &cuts, max);
        prop_assert_eq!(&whole, &cut);
        prop_assert_eq!(e1.is_some(), e2.is_some());
        for m in &whole {
            check_message(m);
        }
    }

    #[test]
    fn mutated_xccos_never_panics(
        seed in 0usize..4,
        other in 0usize..4,
        ops in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u8>()), 0..16),
    ) {
        let seeds = xccos_seeds();
        let body = mutate(&seeds[seed], &ops, &seeds[other]);
        let _ = pchat_server::xccos::parse(&body);
    }
}
