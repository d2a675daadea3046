//! The one builder of a request head inside a dialog (RFC 3261 12.2.1.1): what the
//! server sends as INFO (replies, notices, relays; `core`) and what the load generator
//! (`pchat-sim load`) sends as its posts. Built by appending, not `format!`: it runs
//! once per relayed message (fan-out).

/// The dialog fields of one request. Written as
/// `{method} {target} SIP/2.0`, `Via: SIP/2.0/TCP {via};branch=z9hG4bK{branch}`,
/// `Max-Forwards: 70`, `From: {from}`, `To: {to}`, `Call-ID: {call_id}`,
/// `CSeq: {cseq} {method}`, `Content-Type`, `Content-Length`, then the empty line.
#[derive(Debug, Clone, Copy)]
pub struct InDialog<'a> {
    /// Method, e.g. `INFO`.
    pub method: &'a str,
    /// Request-URI: the dialog's remote target (the peer's Contact).
    pub target: &'a str,
    /// Via transport: `"TCP"` or `"TLS"` (RFC 3261 20.42, the connection's transport).
    pub transport: &'a str,
    /// `host:port` of our Via sent-by.
    pub via: &'a str,
    /// Branch after the RFC 3261 magic cookie `z9hG4bK` (unique per request).
    pub branch: &'a str,
    /// From (our side, with our tag).
    pub from: &'a str,
    /// To (the peer, with its tag).
    pub to: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number.
    pub cseq: u32,
}

impl InDialog<'_> {
    /// Appends the head (start line, headers, empty line) for a body of `body_len`
    /// bytes of `content_type` to `out`.
    pub fn write_head(&self, content_type: &str, body_len: usize, out: &mut String) {
        use std::fmt::Write as _;
        out.reserve(
            160 + self.target.len()
                + self.via.len()
                + self.from.len()
                + self.to.len()
                + self.call_id.len(),
        );
        for part in [
            self.method,
            " ",
            self.target,
            " SIP/2.0\r\nVia: SIP/2.0/",
            self.transport,
            " ",
            self.via,
            ";branch=z9hG4bK",
            self.branch,
            "\r\nMax-Forwards: 70\r\nFrom: ",
            self.from,
            "\r\nTo: ",
            self.to,
            "\r\nCall-ID: ",
            self.call_id,
            "\r\nCSeq: ",
        ] {
            out.push_str(part);
        }
        let _ = write!(out, "{}", self.cseq);
        out.push(' ');
        out.push_str(self.method);
        out.push_str("\r\nContent-Type: ");
        out.push_str(content_type);
        out.push_str("\r\nContent-Length: ");
        let _ = write!(out, "{body_len}");
        out.push_str("\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_has_every_dialog_field_in_order() {
        let mut out = String::new();
        InDialog {
            method: "INFO",
            target: "sip:u@h:5061;transport=tcp",
            transport: "TCP",
            via: "s:5060",
            branch: "abc",
            from: "<sip:pchat@c>;tag=1",
            to: "<sip:u@c>;tag=2",
            call_id: "cid",
            cseq: 7,
        }
        .write_head("text/plain", 42, &mut out);
        assert_eq!(
            out,
            "INFO sip:u@h:5061;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP s:5060;branch=z9hG4bKabc\r\n\
             Max-Forwards: 70\r\nFrom: <sip:pchat@c>;tag=1\r\nTo: <sip:u@c>;tag=2\r\nCall-ID: cid\r\n\
             CSeq: 7 INFO\r\nContent-Type: text/plain\r\nContent-Length: 42\r\n\r\n"
        );
        let parsed = crate::sip::parse(format!("{out}{}", "x".repeat(42)).as_bytes());
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
