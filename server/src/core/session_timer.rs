//! RFC 4028 session-timer negotiation for INVITE, re-INVITE and UPDATE: the interval and
//! refresher our 2xx states, or the refusal (400 for an unreadable `Session-Expires`,
//! 422 + `Min-SE` for an interval below our minimum, RFC 4028 sections 6, 9 and 10).

use crate::sip::{response_for, Request, Response};

/// Smallest interval RFC 4028 allows anyone to ask for, in seconds (section 4).
pub(super) const RFC_MIN_SE_S: u32 = 90;

/// Who refreshes the session (RFC 4028 `refresher` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    /// The client sends the refreshes; the session ends if none arrives in time.
    Uac,
    /// We are the refresher: the session lasts while the connection does.
    Uas,
}

/// The outcome stated in our 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Negotiated {
    /// Session interval, in seconds.
    pub interval_s: u32,
    /// Who refreshes.
    pub refresher: Refresher,
}

impl Negotiated {
    /// The `Session-Expires` header value, e.g. `1800;refresher=uac`.
    pub fn header(&self) -> String {
        let who = match self.refresher {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        };
        format!("{};refresher={who}", self.interval_s)
    }

    /// When the session expires, in ms, for a session refreshed at `now_ms`.
    pub fn expiry_ms(&self, now_ms: i64) -> i64 {
        match self.refresher {
            Refresher::Uac => now_ms + i64::from(self.interval_s) * 1000,
            Refresher::Uas => i64::MAX,
        }
    }
}

/// A delta-seconds value (`1*DIGIT`, RFC 3261 25.1), capped at `u32::MAX`.
fn delta_seconds(v: &str) -> Option<u32> {
    let v = v.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| {
        v.parse::<u64>()
            .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32)
    })
}

/// Negotiates for `req` given our preferred interval `ours_s` and minimum `min_se_s`:
/// the asked interval if it is at least our minimum (never a larger one than asked,
/// and at most `ours_s`), else 422 with `Min-SE`; the asked `refresher` if any, else
/// the client. A request without `Session-Expires` gets our interval (at least its
/// `Min-SE`). Errors: the refusal to send.
pub(super) fn negotiate(req: &Request, ours_s: u32, min_se_s: u32) -> Result<Negotiated, Response> {
    let min_se_s = min_se_s.max(RFC_MIN_SE_S);
    let bad = |what: &str| response_for(req, 400, &format!("Bad Request: {what}"));
    let their_min = match req.headers.get("Min-SE") {
        Some(v) => {
            let v = v.split(';').next().unwrap_or("");
            delta_seconds(v).ok_or_else(|| bad("malformed Min-SE"))?
        }
        None => 0,
    };
    let Some(se) = req.headers.get("Session-Expires") else {
        return Ok(Negotiated {
            interval_s: ours_s.max(min_se_s).max(their_min),
            refresher: Refresher::Uac,
        });
    };
    let mut parts = se.split(';');
    let asked = delta_seconds(parts.next().unwrap_or(""))
        .ok_or_else(|| bad("malformed Session-Expires"))?;
    let mut refresher = Refresher::Uac;
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if k.trim().eq_ignore_ascii_case("refresher") {
            refresher = match v.trim().to_ascii_lowercase().as_str() {
                "uac" => Refresher::Uac,
                "uas" => Refresher::Uas,
                _ => return Err(bad("refresher must be uac or uas")),
            };
        }
    }
    if asked < min_se_s {
        return Err(response_for(req, 422, "Session Interval Too Small")
            .with_header("Min-SE", min_se_s.to_string()));
    }
    Ok(Negotiated {
        interval_s: asked.min(ours_s.max(min_se_s)).max(their_min.min(asked)),
        refresher,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, SipMessage};

    fn req(extra: &str) -> Request {
        let raw = format!(
            "UPDATE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
             From: <sip:a@contoso.com>;tag=1\r\nTo: <sip:pchat@contoso.com>;tag=2\r\nCall-ID: c\r\n\
             CSeq: 2 UPDATE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse(raw.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    fn code(extra: &str) -> Result<Negotiated, u16> {
        negotiate(&req(extra), 1800, 90).map_err(|r| r.code)
    }

    #[test]
    fn below_the_minimum_is_422_with_min_se() {
        for v in ["1", "0", "89"] {
            let r = negotiate(&req(&format!("Session-Expires: {v}\r\n")), 1800, 90).unwrap_err();
            assert_eq!((r.code, r.headers.get("Min-SE")), (422, Some("90")), "{v}");
        }
        let r = negotiate(&req("x: 100\r\n"), 1800, 120).unwrap_err();
        assert_eq!(r.headers.get("Min-SE"), Some("120"));
    }

    #[test]
    fn unreadable_values_are_400() {
        for v in ["-5", "abc", "", "90;refresher=both"] {
            assert_eq!(code(&format!("Session-Expires: {v}\r\n")), Err(400), "{v}");
        }
        assert_eq!(code("Min-SE: x\r\n"), Err(400));
    }

    #[test]
    fn never_more_than_asked_refresher_honoured() {
        let n = code("Session-Expires: 90\r\n").unwrap();
        assert_eq!(n.header(), "90;refresher=uac");
        let n = code("Session-Expires: 600;refresher=uas\r\n").unwrap();
        assert_eq!(
            (n.header(), n.expiry_ms(5)),
            ("600;refresher=uas".to_string(), i64::MAX)
        );
        let n = code("x: 7200;refresher=uac\r\n").unwrap();
        assert_eq!((n.interval_s, n.expiry_ms(0)), (1800, 1_800_000));
        let n = code("Min-SE: 100\r\nSession-Expires: 300\r\n").unwrap();
        assert_eq!(n.interval_s, 300);
        assert_eq!(code("").unwrap().header(), "1800;refresher=uac");
        assert_eq!(code("Min-SE: 3600\r\n").unwrap().interval_s, 3600);
    }
}
