//! The registrar (RFC 3261 section 10): REGISTER binds a user's Contact to the
//! connection it came on, refreshes or removes it. The 200 OK carries the granted
//! `Expires` (> 0), every current Contact with its `expires`, and what Lync clients
//! need before they ask for provisioning: `Supported: msrtc-event-categories` and an
//! `Allow-Events` listing `vnd-microsoft-provisioning-v2` comma-separated with no
//! spaces (SIPE splits on "," without trimming).

use crate::ids::ConnId;
use crate::sip::{response_for, Request, Response};
use std::collections::BTreeMap;

/// Expiry granted when the request names none (RFC 3261 10.2.1.1 suggests 3600 s).
pub const DEFAULT_EXPIRES_S: u32 = 3600;
/// Shortest expiry granted; shorter non-zero requests are raised to it.
pub const MIN_EXPIRES_S: u32 = 60;
/// Longest expiry granted; longer requests are lowered to it.
pub const MAX_EXPIRES_S: u32 = 7200;
/// The `Allow-Events` of the 200 OK (no spaces: SIPE does not trim).
pub const ALLOW_EVENTS: &str = "vnd-microsoft-provisioning,vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-ACL,presence,presence.wpending,vnd-microsoft-roaming-self,vnd-microsoft-provisioning-v2";

/// One binding of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI.
    pub contact: String,
    /// The connection it is reachable on.
    pub conn: ConnId,
    /// When it lapses, ms on the core's clock.
    pub expires_at_ms: i64,
    /// Call-ID of the REGISTER that made or last refreshed it.
    pub call_id: String,
    /// Its CSeq (RFC 3261 10.3 step 7: lower ones with the same Call-ID are stale).
    pub cseq: u32,
}

/// Bindings per address-of-record (`user@domain`, lower case), then per Contact URI.
#[derive(Debug, Default)]
pub struct Registrar {
    aors: BTreeMap<String, BTreeMap<String, Binding>>,
}

/// The `<...>` of a Contact value as (start, end) byte offsets: the first `>` after the
/// first `<` (a `>` inside a later quoted parameter such as SIPE's
/// `+sip.instance="<urn:uuid:...>"` is not the end).
fn angle_span(contact: &str) -> Option<(usize, usize)> {
    let s = contact.find('<')?;
    let e = contact[s..].find('>')? + s;
    Some((s, e))
}

/// Expiry of a Contact value: its `expires` parameter, else the request's `Expires`.
fn contact_expires(contact: &str, header: Option<u32>) -> Option<u32> {
    let params = angle_span(contact).map_or(contact, |(_, e)| &contact[e + 1..]);
    params
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("expires"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .or(header)
}

fn contact_uri(contact: &str) -> String {
    let c = contact.trim();
    match angle_span(c) {
        Some((s, e)) => c[s + 1..e].trim().to_string(),
        None => c.split(';').next().unwrap_or("").trim().to_string(),
    }
}

impl Registrar {
    /// Handles a REGISTER from `aor` (the authenticated user, lower-case key) on
    /// `conn` at `now_ms` and returns the response: 200 with the bindings, 400 for a
    /// malformed Contact list (`*` mixed with others, or `*` without `Expires: 0`).
    pub fn register(&mut self, aor: &str, conn: ConnId, req: &Request, now_ms: i64) -> Response {
        let header = req
            .headers
            .get("Expires")
            .and_then(|v| v.trim().parse().ok());
        let contacts: Vec<&str> = req
            .headers
            .get_all("Contact")
            .flat_map(split_contacts)
            .collect();
        let call_id = req.call_id().unwrap_or_default().to_string();
        let cseq = req.cseq().map_or(0, |c| c.0);
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header != Some(0) {
                return response_for(
                    req,
                    400,
                    "Bad Request: * needs Expires: 0 and no other Contact",
                );
            }
            self.aors.remove(aor);
            return self.ok(req, aor, now_ms, DEFAULT_EXPIRES_S);
        }
        let mut granted_any = None;
        for c in contacts {
            let uri = contact_uri(c);
            if uri.is_empty() {
                return response_for(req, 400, "Bad Request: empty Contact");
            }
            let asked = contact_expires(c, header).unwrap_or(DEFAULT_EXPIRES_S);
            let bindings = self.aors.entry(aor.to_string()).or_default();
            if let Some(b) = bindings.get(&uri) {
                if b.call_id == call_id && cseq <= b.cseq {
                    continue; // out of order (RFC 3261 10.3 step 7): ignored
                }
            }
            if asked == 0 {
                bindings.remove(&uri);
                continue;
            }
            let granted = asked.clamp(MIN_EXPIRES_S, MAX_EXPIRES_S);
            granted_any = Some(granted);
            bindings.insert(
                uri.clone(),
                Binding {
                    contact: uri,
                    conn,
                    expires_at_ms: now_ms + i64::from(granted) * 1000,
                    call_id: call_id.clone(),
                    cseq,
                },
            );
        }
        if self.aors.get(aor).is_some_and(BTreeMap::is_empty) {
            self.aors.remove(aor);
        }
        let expires = granted_any.unwrap_or_else(|| {
            header
                .filter(|e| *e > 0)
                .unwrap_or(DEFAULT_EXPIRES_S)
                .clamp(MIN_EXPIRES_S, MAX_EXPIRES_S)
        });
        self.ok(req, aor, now_ms, expires)
    }

    fn ok(&self, req: &Request, aor: &str, now_ms: i64, expires: u32) -> Response {
        let mut resp = response_for(req, 200, "OK");
        for b in self.bindings(aor) {
            let left = ((b.expires_at_ms - now_ms).max(0) / 1000).max(1);
            resp = resp.with_header("Contact", format!("<{}>;expires={left}", b.contact));
        }
        resp.with_header("Expires", expires.to_string())
            .with_header("Supported", "msrtc-event-categories")
            .with_header("Allow-Events", ALLOW_EVENTS)
    }

    /// The current bindings of `aor`, by Contact URI.
    pub fn bindings(&self, aor: &str) -> impl Iterator<Item = &Binding> {
        self.aors.get(aor).into_iter().flat_map(|m| m.values())
    }

    /// Removes the bindings on a closed connection.
    pub fn on_closed(&mut self, conn: ConnId) {
        for m in self.aors.values_mut() {
            m.retain(|_, b| b.conn != conn);
        }
        self.aors.retain(|_, m| !m.is_empty());
    }

    /// Removes lapsed bindings.
    pub fn expire(&mut self, now_ms: i64) {
        for m in self.aors.values_mut() {
            m.retain(|_, b| b.expires_at_ms > now_ms);
        }
        self.aors.retain(|_, m| !m.is_empty());
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.aors.values().map(BTreeMap::len).sum()
    }

    /// Whether there are no bindings.
    pub fn is_empty(&self) -> bool {
        self.aors.is_empty()
    }
}

/// Splits a Contact header value at commas outside `<...>` and quotes.
fn split_contacts(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                out.push(v[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, SipMessage};

    fn register(cseq: u32, contact: &str, expires: Option<u32>) -> Request {
        let mut raw = format!(
            "REGISTER sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK{cseq}\r\n\
             From: <sip:user1@contoso.com>;tag=a\r\nTo: <sip:user1@contoso.com>\r\nCall-ID: reg1\r\n\
             CSeq: {cseq} REGISTER\r\nContact: {contact}\r\n"
        );
        if let Some(e) = expires {
            raw.push_str(&format!("Expires: {e}\r\n"));
        }
        raw.push_str("Content-Length: 0\r\n\r\n");
        match parse(raw.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!("a request"),
        }
    }

    #[test]
    fn creates_refreshes_and_removes_a_binding() {
        let mut reg = Registrar::default();
        let r = reg.register(
            "user1@contoso.com",
            ConnId(1),
            &register(1, "<sip:user1@10.0.0.1:5000;transport=tcp>", None),
            0,
        );
        assert_eq!(r.code, 200);
        assert_eq!(r.headers.get("Expires"), Some("3600"));
        assert_eq!(
            r.headers.get("Contact"),
            Some("<sip:user1@10.0.0.1:5000;transport=tcp>;expires=3600")
        );
        assert_eq!(r.headers.get("Supported"), Some("msrtc-event-categories"));
        let ev = r.headers.get("Allow-Events").unwrap();
        assert!(!ev.contains(' ') && ev.split(',').any(|e| e == "vnd-microsoft-provisioning-v2"));
        assert_eq!(reg.len(), 1);
        // Refresh with a short expiry: raised to the minimum; one binding still.
        let r = reg.register(
            "user1@contoso.com",
            ConnId(1),
            &register(2, "<sip:user1@10.0.0.1:5000;transport=tcp>;expires=5", None),
            1000,
        );
        assert_eq!(r.headers.get("Expires"), Some("60"));
        assert_eq!(reg.len(), 1);
        reg.expire(62_000);
        assert!(reg.is_empty(), "lapsed");
        reg.register(
            "user1@contoso.com",
            ConnId(1),
            &register(3, "<sip:user1@h>", Some(600)),
            0,
        );
        let r = reg.register(
            "user1@contoso.com",
            ConnId(1),
            &register(4, "<sip:user1@h>", Some(0)),
            0,
        );
        assert_eq!(r.code, 200);
        assert!(
            r.headers.get("Expires").is_some_and(|e| e != "0"),
            "Expires stays > 0"
        );
        assert!(reg.is_empty(), "Expires: 0 removes");
        reg.register(
            "user1@contoso.com",
            ConnId(7),
            &register(5, "<sip:user1@h>", None),
            0,
        );
        reg.on_closed(ConnId(7));
        assert!(reg.is_empty(), "connection closed");
    }

    #[test]
    fn sipe_contact_with_a_quoted_instance_keeps_its_uri() {
        let mut reg = Registrar::default();
        let contact = "<sip:127.0.0.1:59078;transport=tcp;ms-opaque=d3470f2e1d>;methods=\"INVITE, INFO\";\
                       proxy=replace;+sip.instance=\"<urn:uuid:ff6668e6-c092-56f5-885d-1907245be5f7>\";expires=600";
        let r = reg.register("u", ConnId(1), &register(1, contact, None), 0);
        assert_eq!(
            r.headers.get("Contact"),
            Some("<sip:127.0.0.1:59078;transport=tcp;ms-opaque=d3470f2e1d>;expires=600")
        );
        assert_eq!(r.headers.get("Expires"), Some("600"));
    }

    #[test]
    fn star_needs_expires_zero_and_out_of_order_is_ignored() {
        let mut reg = Registrar::default();
        assert_eq!(
            reg.register("u", ConnId(1), &register(1, "*", None), 0)
                .code,
            400
        );
        reg.register(
            "u",
            ConnId(1),
            &register(5, "<sip:a@h>, <sip:b@h>", None),
            0,
        );
        assert_eq!(reg.len(), 2);
        reg.register("u", ConnId(1), &register(4, "<sip:a@h>", Some(0)), 0);
        assert_eq!(reg.len(), 2, "lower CSeq, same Call-ID: ignored");
        assert_eq!(
            reg.register("u", ConnId(1), &register(6, "*", Some(0)), 0)
                .code,
            200
        );
        assert!(reg.is_empty());
    }
}
