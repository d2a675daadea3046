//! RFC 4475 ("SIP Torture Test Messages") over real TCP: each of the RFC's 49 messages
//! (the `.dat` files of its archive, `tests/rfc4475/`, see the README there) is sent on
//! a fresh loopback connection to the real driver (`host::serve` on `127.0.0.1:0`, the
//! code path of the binary) and the answer is checked against what the RFC says an
//! endpoint (UAS) does with it.
//!
//! Where TCP framing changes the meaning (the RFC's messages are "ostensibly" UDP
//! datagrams), the expectation follows RFC 3261 18.3 for streams and says so:
//! `clerr` (the rest of the body is still to come: wait), `dblreq` (the trailing
//! octets are the next message), `ncl`, `mcl01` and `inv2543` (no usable
//! Content-Length: the stream cannot be framed: 400, then the connection closes).
//! Loopback only; every wait is bounded.

mod wire;

use std::path::Path;
use wire::{start, Client, Response, Server, QUIET, WAIT};

/// What the RFC says should happen to a message sent to an endpoint over TCP.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A final response whose code is one of these, connection kept open.
    Code(&'static [u16]),
    /// Well formed: processed, so any final response except a 400 (what we answer
    /// depends on our role, e.g. 488 to an INVITE for audio, 501 to REGISTER).
    Processed,
    /// A response sent to us: dropped without an answer, connection kept open.
    Dropped,
    /// A framing error (RFC 3261 18.3): this code, then the server closes.
    CodeThenClose(u16),
    /// Incomplete on a stream: no answer, connection kept open (more bytes may come).
    Waits,
    /// RFC 4475 3.1.1.8 over TCP: the REGISTER, then the "noise" INVITE, which is a
    /// request on a stream (framed by its own Content-Length, 150, five bytes short of
    /// its SDP): both processed and answered in order, then the five bytes left over
    /// (`C` CRLF CRLF) are a message without Content-Length: 400, then close.
    TwoProcessed,
}

use Expect::*;

/// The 49 messages and their expected outcome, in the RFC's order (section numbers).
const CASES: &[(&str, Expect)] = &[
    // 3.1.1 valid messages
    ("wsinv", Processed),         // 3.1.1.1
    ("intmeth", Code(&[501])),    // 3.1.1.2 unknown method: 501 (8.2.1)
    ("esc01", Processed),         // 3.1.1.3
    ("escnull", Processed),       // 3.1.1.4
    ("esc02", Code(&[501])),      // 3.1.1.5 "An endpoint would reject this message with a 501"
    ("lwsdisp", Code(&[200])),    // 3.1.1.6 OPTIONS
    ("longreq", Processed),       // 3.1.1.7
    ("dblreq", TwoProcessed),     // 3.1.1.8 over TCP the trailing INVITE is a message
    ("semiuri", Code(&[200])),    // 3.1.1.9 OPTIONS
    ("transports", Code(&[200])), // 3.1.1.10 OPTIONS
    ("mpart01", Processed),       // 3.1.1.11 MESSAGE
    ("unreason", Dropped),        // 3.1.1.12 a response
    ("noreason", Dropped),        // 3.1.1.13 a response
    // 3.1.2 invalid messages
    ("badinv01", Code(&[400])),        // 3.1.2.1
    ("clerr", Waits),                  // 3.1.2.2 over TCP: wait for the rest
    ("ncl", CodeThenClose(400)),       // 3.1.2.3 framing error on a stream
    ("scalar02", Code(&[400])),        // 3.1.2.4
    ("scalarlg", Dropped),             // 3.1.2.5 a response: "simply discard it"
    ("quotbal", Code(&[400])),         // 3.1.2.6
    ("ltgtruri", Code(&[400])),        // 3.1.2.7
    ("lwsruri", Code(&[400])),         // 3.1.2.8
    ("lwsstart", Code(&[400])),        // 3.1.2.9
    ("trws", Code(&[400])),            // 3.1.2.10
    ("escruri", Code(&[400])),         // 3.1.2.11
    ("baddate", Processed),            // 3.1.2.12 we do not use Date: liberal reading allowed
    ("regbadct", Code(&[400])),        // 3.1.2.13
    ("badaspec", Code(&[400])),        // 3.1.2.14
    ("baddn", Code(&[400])),           // 3.1.2.15
    ("badvers", Code(&[505])),         // 3.1.2.16
    ("mismatch01", Code(&[400])),      // 3.1.2.17
    ("mismatch02", Code(&[501, 400])), // 3.1.2.18 501 preferred, 400 acceptable
    ("bigcode", Dropped),              // 3.1.2.19 a response: "simply drop it"
    // 3.2 transaction layer
    ("badbranch", Code(&[200])), // 3.2.1 falls back to RFC 2543 matching
    // 3.3 application layer
    ("insuf", Code(&[400])),       // 3.3.1
    ("unkscm", Code(&[416])),      // 3.3.2
    ("novelsc", Code(&[416])),     // 3.3.3
    ("unksm2", Processed),         // 3.3.4 well formed
    ("bext01", Code(&[420])),      // 3.3.5
    ("invut", Code(&[415])),       // 3.3.6
    ("regaut01", Processed),       // 3.3.7
    ("multi01", Code(&[400])),     // 3.3.8
    ("mcl01", CodeThenClose(400)), // 3.3.9 conflicting Content-Length: framing error
    ("bcast", Dropped),            // 3.3.10 a response
    ("zeromf", Code(&[200])),      // 3.3.11 an endpoint processes it normally
    ("cparam01", Processed),       // 3.3.12
    ("cparam02", Processed),       // 3.3.13
    ("regescrt", Processed),       // 3.3.14
    ("sdp01", Code(&[406])),       // 3.3.15
    // 3.4 backward compatibility
    ("inv2543", CodeThenClose(400)), // 3.4.1 no Content-Length: cannot be framed on TCP
];

fn load(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rfc4475")
        .join(format!("{name}.dat"));
    let mut raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if raw.windows(4).all(|w| w != b"\r\n\r\n") {
        // baddn.dat ends after its last header line (README): the empty line that ends
        // the header section is added, else a stream receiver just waits for it.
        raw.extend_from_slice(b"\r\n");
    }
    raw
}

/// The Call-ID of the message (first Call-ID or `i` header), if any.
fn call_id_of(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        let n = n.trim();
        (n.eq_ignore_ascii_case("call-id") || n.eq_ignore_ascii_case("i"))
            .then(|| v.trim().to_string())
    })
}

/// Runs one case; `Err` says how the outcome differs from the RFC's.
fn run(server: &Server, name: &str, expect: Expect) -> Result<(), String> {
    let raw = load(name);
    let mut c = Client::connect(server.addr);
    c.send(&raw);
    let call_id = call_id_of(&raw);
    let check_call_id = |r: &Response| -> Result<(), String> {
        match (&call_id, r.call_id()) {
            (Some(want), Some(got)) if want != got => {
                Err(format!("answer has Call-ID {got:?}, not {want:?}"))
            }
            _ => Ok(()),
        }
    };
    match expect {
        Code(codes) => {
            let r = c.next(WAIT).ok_or("no answer")?;
            if !codes.contains(&r.code) {
                return Err(format!(
                    "answered {} {:?}, want {codes:?}",
                    r.code, r.reason
                ));
            }
            check_call_id(&r)?;
            if !c.still_serves(name) {
                return Err("connection not usable after the answer".into());
            }
        }
        Processed => {
            let r = c.next(WAIT).ok_or("no answer")?;
            if r.code == 400 || r.code < 200 {
                return Err(format!("answered {} {:?}: not processed", r.code, r.reason));
            }
            check_call_id(&r)?;
        }
        Dropped => {
            if let Some(r) = c.next(QUIET) {
                return Err(format!(
                    "a response was answered: {} {:?}",
                    r.code, r.reason
                ));
            }
            if !c.still_serves(name) {
                return Err("connection not usable after the dropped response".into());
            }
        }
        CodeThenClose(code) => {
            let r = c.next(WAIT).ok_or("no answer")?;
            if r.code != code {
                return Err(format!("answered {} {:?}, want {code}", r.code, r.reason));
            }
            if !c.closes_within(WAIT) {
                return Err("connection not closed after the framing error".into());
            }
        }
        Waits => {
            if let Some(r) = c.next(QUIET) {
                return Err(format!(
                    "answered before the body: {} {:?}",
                    r.code, r.reason
                ));
            }
            if c.closed {
                return Err("closed while the message was incomplete".into());
            }
        }
        TwoProcessed => {
            let a = c.next(WAIT).ok_or("no first answer")?;
            let b = c.next(WAIT).ok_or("no second answer")?;
            let methods: Vec<_> = [&a, &b]
                .iter()
                .map(|r| r.cseq_method.clone().unwrap_or_default())
                .collect();
            if a.code == 400 || b.code == 400 || methods != ["REGISTER", "INVITE"] {
                return Err(format!(
                    "answers {} {} for {methods:?}, want non-400 for REGISTER then INVITE",
                    a.code, b.code
                ));
            }
            let junk = c.next(WAIT).ok_or("no answer to the trailing octets")?;
            if junk.code != 400 || !c.closes_within(WAIT) {
                return Err(format!("trailing octets: {} and no close", junk.code));
            }
        }
    }
    Ok(())
}

#[test]
fn the_corpus_has_the_rfc_s_49_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".dat")?.to_string())
        })
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    cases.sort();
    assert_eq!(files.len(), 49);
    assert_eq!(files, cases);
}

#[test]
fn every_torture_message_over_tcp_as_rfc_4475_says() {
    let server = start(|_| {});
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|(name, expect)| {
            run(&server, name, *expect)
                .err()
                .map(|e| format!("{name} ({expect:?}): {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} RFC 4475 messages not handled as the RFC says:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
