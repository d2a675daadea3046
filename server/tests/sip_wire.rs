//! Framing and status answers over real TCP (the shapes the mutation fuzzing of issue 18
//! found): conflicting or signed Content-Length, a valid request followed by junk in
//! one write, a junk start line, a body over the size limit, RFC 4028 422.
//! Loopback only; every wait is bounded.

mod wire;

use wire::{start, Client, WAIT};

fn options(tag: &str, extra: &str) -> String {
    format!(
        "OPTIONS sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK-{tag}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@contoso.com>;tag={tag}\r\nTo: <sip:pchat@contoso.com>\r\n\
         Call-ID: {tag}\r\nCSeq: 1 OPTIONS\r\n{extra}"
    )
}

#[test]
fn conflicting_or_signed_content_length_is_400_then_close() {
    let server = start(|_| {});
    for (tag, lengths, body) in [
        (
            "conflict",
            "Content-Length: 5\r\nContent-Length: 0\r\n",
            "hello",
        ),
        ("signed", "Content-Length: +5\r\n", "hello"),
        ("negative", "l: -1\r\n", ""),
    ] {
        let mut c = Client::connect(server.addr);
        // The next message would be desynchronized if either value were believed.
        let next = options("next", "Content-Length: 0\r\n\r\n");
        c.send(format!("{}\r\n{body}{next}", options(tag, lengths)).as_bytes());
        let r = c.next(WAIT).expect("an answer");
        assert_eq!(r.code, 400, "{tag}: {}", r.text);
        assert_eq!(r.call_id(), Some(tag));
        assert!(c.closes_within(WAIT), "{tag}: connection not closed");
    }
}

#[test]
fn a_request_then_junk_in_one_write_is_answered_before_the_close() {
    let server = start(|_| {});
    let mut c = Client::connect(server.addr);
    c.send(format!("{}x\r\n\r\n", options("first", "Content-Length: 0\r\n\r\n")).as_bytes());
    let r = c.next(WAIT).expect("the request's answer");
    assert_eq!((r.code, r.call_id()), (200, Some("first")));
    let r = c.next(WAIT).expect("the junk's answer");
    assert_eq!(r.code, 400, "{}", r.text);
    assert!(c.closes_within(WAIT));
}

#[test]
fn a_junk_start_line_gets_400_and_the_connection_goes_on() {
    let server = start(|_| {});
    for junk in ["x", "\0"] {
        let mut c = Client::connect(server.addr);
        let msg = format!("{junk}\r\n{}", options("junk", "Content-Length: 0\r\n\r\n"));
        c.send(msg.as_bytes());
        let r = c.next(WAIT).expect("an answer");
        assert_eq!(r.code, 400, "{junk:?}: {}", r.text);
        assert!(c.still_serves("after-junk"), "{junk:?}");
    }
}

#[test]
fn a_body_over_the_limit_gets_413_and_is_skipped() {
    let server = start(|cfg| cfg.sip.max_message_bytes = 4096);
    let mut c = Client::connect(server.addr);
    let body = vec![b'z'; 10_000];
    let head = options("big", &format!("Content-Length: {}\r\n\r\n", body.len()));
    c.send(head.as_bytes());
    c.send(&body);
    let r = c.next(WAIT).expect("an answer");
    assert_eq!((r.code, r.call_id()), (413, Some("big")), "{}", r.text);
    assert!(
        c.still_serves("after-413"),
        "the stream resynchronizes after the body"
    );
}

#[test]
fn session_expires_below_min_se_gets_422_with_min_se() {
    let server = start(|_| {});
    let mut c = Client::connect(server.addr);
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 5060 sip null\r\n";
    let invite = |tag: &str, se: &str| {
        format!(
            "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK-{tag}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:user1@contoso.com>;tag={tag}\r\nTo: <sip:pchat@contoso.com>\r\n\
             Call-ID: {tag}\r\nCSeq: 1 INVITE\r\nContact: <sip:user1@127.0.0.1;transport=tcp>\r\n\
             Session-Expires: {se}\r\nSupported: timer\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    };
    c.send(invite("short", "30").as_bytes());
    let r = c.next(WAIT).expect("an answer");
    assert_eq!(r.code, 422, "{}", r.text);
    assert!(r.text.contains("\r\nMin-SE: 90\r\n"), "{}", r.text);
    c.send(invite("ok", "120;refresher=uas").as_bytes());
    let r = c.next(WAIT).expect("an answer");
    assert_eq!(r.code, 200, "{}", r.text);
    assert!(
        r.text
            .contains("\r\nSession-Expires: 120;refresher=uas\r\n"),
        "{}",
        r.text
    );
}
