//! Inputs the benchmarks share (a module of each bench target, not a target itself).

/// A typical client INFO in one fixed dialog (long header names, one line each, RFC 3261
/// 7.3): the request line and dialog headers, then `extra` (whole header lines, each
/// ending in CRLF, e.g. a `User-Agent`), `Content-Type: text/plain`, the Content-Length
/// of `body` in bytes, and `body`.
pub fn info(extra: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "INFO sip:pchat@10.0.0.1:5060;transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP 10.0.0.5:49152;branch=z9hG4bK8a7c6b5d4e3f2a10\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:user1@contoso.com>;tag=3f2a1b0c9d8e7f60\r\n\
         To: <sip:pchat@contoso.com>;tag=9c8b7a6f5e4d3c2b\r\n\
         Call-ID: 0f1e2d3c4b5a69788796a5b4c3d2e1f0\r\n\
         CSeq: 7 INFO\r\n\
         {extra}\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

/// `msg` (an [`info`]) rewritten with compact header names (RFC 3261 7.3.3), a space
/// before one colon and a folded CSeq (7.3.1): the same request, spelled the other way.
pub fn compact(msg: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(msg)
        .replace("Via: ", "v: ")
        .replace("From: ", "f : ")
        .replace("To: ", "t: ")
        .replace("Call-ID: ", "i: ")
        .replace("Content-Type: ", "c: ")
        .replace("Content-Length: ", "l: ")
        .replace("CSeq: 7 INFO", "CSeq: 7\r\n\t INFO")
        .into_bytes()
}
