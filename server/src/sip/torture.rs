//! RFC 4475 ("SIP Torture Test Messages") at the parser: the RFC's own 49 messages
//! (`server/tests/rfc4475/*.dat`, from the RFC's archive; README there) given to
//! [`parse`] one by one, as if each were one UDP datagram (the RFC's setting). Over TCP
//! some mean something else (framing): `server/tests/rfc4475.rs` sends each to the
//! real server and checks the answer.

use super::{parse, SipMessage};

/// What [`parse`] makes of a message as one datagram.
#[derive(Debug, Clone, Copy)]
enum Parsed {
    /// A request that parses.
    Request,
    /// A response that parses.
    Response,
    /// Refused; the answer's status (responses are dropped, never answered).
    Refused(u16),
}

use Parsed::*;

macro_rules! corpus {
    ($($name:literal => $want:expr,)*) => {
        /// (name, bytes, expected outcome) for the 49 messages, in the RFC's order.
        const CORPUS: &[(&str, &[u8], Parsed)] = &[
            $(($name, include_bytes!(concat!("../../tests/rfc4475/", $name, ".dat")), $want),)*
        ];
    };
}

corpus! {
    "wsinv" => Request, "intmeth" => Request, "esc01" => Request, "escnull" => Request,
    "esc02" => Request, "lwsdisp" => Request, "longreq" => Request,
    // 3.1.1.8: one datagram; the octets after Content-Length 0 are ignored.
    "dblreq" => Request,
    "semiuri" => Request, "transports" => Request, "mpart01" => Request,
    "unreason" => Response, "noreason" => Response,
    "badinv01" => Refused(400), "clerr" => Refused(400), "ncl" => Refused(400),
    "scalar02" => Refused(400),
    // 3.1.2.5: a response with a CSeq over 2**32-1; dropped (never answered).
    "scalarlg" => Refused(400),
    "quotbal" => Refused(400), "ltgtruri" => Refused(400), "lwsruri" => Refused(400),
    "lwsstart" => Refused(400), "trws" => Refused(400), "escruri" => Refused(400),
    // 3.1.2.12: we do not use Date, so the liberal reading the RFC allows.
    "baddate" => Request,
    "regbadct" => Refused(400), "badaspec" => Refused(400), "baddn" => Refused(400),
    "badvers" => Refused(505), "mismatch01" => Refused(400), "mismatch02" => Refused(400),
    "bigcode" => Refused(400),
    "badbranch" => Request,
    "insuf" => Refused(400), "unkscm" => Refused(416), "novelsc" => Refused(416),
    "unksm2" => Request, "bext01" => Request, "invut" => Request, "regaut01" => Request,
    "multi01" => Refused(400), "mcl01" => Refused(400), "bcast" => Response,
    "zeromf" => Request, "cparam01" => Request, "cparam02" => Request,
    "regescrt" => Request, "sdp01" => Request,
    // 3.4.1: one datagram, so no Content-Length is needed (not so over TCP).
    "inv2543" => Request,
}

/// Valid RFC 4475 messages rsip 0.4.0 rejects on its own, and that our parse accepts
/// (its stand-in Request-URI and method, `validate`): a test keeps this list true.
pub const RSIP_LIMITATIONS: &[(&str, &str)] = &[
    (
        "intmeth",
        "extension method with token characters, and a Request-URI user part with ';', '?' and other legal characters",
    ),
    ("semiuri", "';' inside the Request-URI user part"),
];

fn with_empty_line(raw: &[u8]) -> Vec<u8> {
    let mut raw = raw.to_vec();
    if raw.windows(4).all(|w| w != b"\r\n\r\n") {
        raw.extend_from_slice(b"\r\n"); // baddn.dat (README)
    }
    raw
}

#[test]
fn the_rfc_4475_corpus_parses_as_the_rfc_says() {
    assert_eq!(CORPUS.len(), 49);
    let mut wrong = Vec::new();
    for (name, raw, want) in CORPUS {
        let got = parse(&with_empty_line(raw));
        let ok = match (want, &got) {
            (Request, Ok(SipMessage::Request(r))) => r.call_id().is_some(),
            (Response, Ok(SipMessage::Response(_))) => true,
            (Refused(code), Err(e)) => e.code == *code,
            _ => false,
        };
        if !ok {
            wrong.push(format!("{name}: want {want:?}, got {got:?}"));
        }
        // The typed view the parser kept is the one read from the values.
        match &got {
            Ok(SipMessage::Request(r)) => assert_eq!(r.typed(), r.typed_fresh(), "{name}"),
            Ok(SipMessage::Response(r)) => assert_eq!(r.typed(), r.typed_fresh(), "{name}"),
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn extension_methods_keep_their_name_and_odd_uris_their_text() {
    let find = |n: &str| {
        CORPUS
            .iter()
            .find(|c| c.0 == n)
            .map(|c| c.1)
            .unwrap_or_default()
    };
    let Ok(SipMessage::Request(r)) = parse(find("intmeth")) else {
        panic!("intmeth")
    };
    assert_eq!(r.method, "!interesting-Method0123456789_*+`.%indeed'~");
    assert!(r.uri.starts_with("sip:1_unusual.URI~(to-be!sure)"));
    let Ok(SipMessage::Request(r)) = parse(find("esc02")) else {
        panic!("esc02")
    };
    assert_eq!(r.method, "RE%47IST%45R");
    let Ok(SipMessage::Request(r)) = parse(find("semiuri")) else {
        panic!("semiuri")
    };
    assert_eq!(r.uri, "sip:user;par=u%40example.net@example.com");
}

#[test]
fn rsip_limitations_are_still_real() {
    for (name, _) in RSIP_LIMITATIONS {
        let (_, raw, _) = CORPUS.iter().find(|c| c.0 == *name).expect("listed case");
        assert!(
            rsip::SipMessage::try_from(*raw).is_err(),
            "rsip alone parses {name} now: update RSIP_LIMITATIONS and docs/rsip-notes.md"
        );
        assert!(parse(raw).is_ok(), "{name}: our parse must accept it");
    }
}

/// Why the normalization step exists: rsip 0.4.0 alone fails (or misreads) messages
/// RFC 3261 requires us to accept, and our `parse` accepts them. If rsip ever learns
/// one of these, this test fails and docs/rsip-notes.md must be updated.
#[test]
fn rsip_alone_rejects_what_rfc_3261_allows() {
    let base = "OPTIONS sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP h:5060;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:a@contoso.com>;tag=1\r\nTo: <sip:pchat@contoso.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let variants = [
        (
            "compact forms (7.3.3)",
            base.replace("Via:", "v:")
                .replace("Call-ID:", "i:")
                .replace("From:", "f:")
                .replace("To:", "t:")
                .replace("Content-Length:", "l:"),
        ),
        (
            "folded header line (7.3.1)",
            base.replace("CSeq: 1 OPTIONS", "CSeq: 1\r\n OPTIONS"),
        ),
        (
            "white space before the colon (7.3.1)",
            base.replace("Call-ID: c1", "Call-ID  : c1"),
        ),
        (
            "extension method (25.1)",
            base.replace("OPTIONS sip", "FROBNICATE sip")
                .replace("1 OPTIONS", "1 FROBNICATE"),
        ),
    ];
    for (what, raw) in variants {
        let rsip_view = rsip::SipMessage::try_from(raw.as_bytes());
        let rsip_ok = match &rsip_view {
            Ok(rsip::SipMessage::Request(r)) => {
                use rsip::message::HeadersExt;
                r.call_id_header().is_ok() && r.cseq_header().is_ok() && r.via_header().is_ok()
            }
            _ => false,
        };
        assert!(
            !rsip_ok,
            "{what}: rsip 0.4.0 now handles it; update docs/rsip-notes.md"
        );
        assert!(
            parse(raw.as_bytes()).is_ok(),
            "{what}: our parse must accept it"
        );
    }
}
