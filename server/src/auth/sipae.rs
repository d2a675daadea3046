//! [MS-SIPAE] message signing for an NTLM security association: the header
//! parameters (`gssapi-data`, `opaque`, `crand`/`cnum`/`response`, `rspauth`/`srand`/
//! `snum`), the signature input string of a message (section 3.2.5.2.1, version 4:
//! `<scheme><rand><num><realm><targetname><Call-ID><CSeq number><method><From URI>
//! <From tag><To URI><To tag><P-Asserted-Identity sip URI><... tel URI><Expires>
//! <status code>`), and the `Authentication-Info` header the server signs with.

use super::ntlm::{self, SessionKeys};
use std::collections::BTreeMap;

/// The realm of every NTLM security association ([MS-SIPAE] 3.2.5.1).
pub const REALM: &str = "SIP Communications Service";
/// The [MS-SIPAE] protocol version we offer (4: signatures cover To URI and
/// P-Asserted-Identity).
pub const VERSION: u32 = 4;

/// The scheme and parameters of an `Authorization` / `WWW-Authenticate` value such as
/// `NTLM qop="auth", realm="...", gssapi-data="..."` (names lower-cased, quotes
/// removed). `None` when there is no scheme.
pub fn parse_params(value: &str) -> Option<(String, BTreeMap<String, String>)> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut rest = rest.trim_start();
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().trim_start_matches(',').trim();
        let after = &rest[eq + 1..];
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(name.to_ascii_lowercase(), val.trim().to_string());
        rest = next.trim_start_matches([',', ' ']);
    }
    Some((scheme.to_string(), params))
}

/// The parts of a SIP message a signature covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signed {
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: String,
    /// The request method (of a response: the CSeq method).
    pub method: String,
    /// From URI (inside `<>`), From tag.
    pub from: (String, String),
    /// To URI, To tag.
    pub to: (String, String),
    /// P-Asserted-Identity (or P-Preferred-Identity) sip: and tel: URIs.
    pub asserted: (String, String),
    /// Expires header value.
    pub expires: String,
    /// Status code of a response.
    pub status: Option<u16>,
}

fn uri_and_tag(v: &str) -> (String, String) {
    let uri = match (v.find('<'), v.find('>')) {
        (Some(s), Some(e)) if s < e => v[s + 1..e].to_string(),
        _ => v.split(';').next().unwrap_or("").trim().to_string(),
    };
    let tag = v
        .find(";tag=")
        .map(|i| {
            let t = &v[i + 5..];
            t[..t.find(';').unwrap_or(t.len())].to_string()
        })
        .unwrap_or_default();
    (uri, tag)
}

fn asserted(v: Option<&str>) -> (String, String) {
    let Some(v) = v else {
        return Default::default();
    };
    let mut sip = String::new();
    let mut tel = String::new();
    for part in v.split(',') {
        let (uri, _) = uri_and_tag(part.trim());
        if uri.starts_with("tel:") {
            tel = uri;
        } else if uri.starts_with("sip:") || uri.starts_with("sips:") {
            sip = uri;
        }
    }
    (sip, tel)
}

impl Signed {
    /// The covered parts from a message's start line (`status` for a response,
    /// `method` for a request) and a header lookup (first value of a name, any case).
    pub fn from_lookup<'a>(
        method: Option<&str>,
        status: Option<u16>,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Signed {
        let cseq = get("CSeq").unwrap_or("");
        let mut cseq_parts = cseq.split_whitespace();
        let cseq_num = cseq_parts.next().unwrap_or("").to_string();
        let cseq_method = cseq_parts.next().unwrap_or("").to_string();
        Signed {
            call_id: get("Call-ID").unwrap_or("").trim().to_string(),
            cseq: cseq_num,
            method: method.map_or(cseq_method, str::to_string),
            from: uri_and_tag(get("From").unwrap_or("")),
            to: uri_and_tag(get("To").unwrap_or("")),
            asserted: asserted(get("P-Asserted-Identity").or_else(|| get("P-Preferred-Identity"))),
            expires: get("Expires").unwrap_or("").trim().to_string(),
            status,
        }
    }

    /// The covered parts of an encoded message head (`SIP/2.0 200 OK\r\n...` or
    /// `INFO sip:... SIP/2.0\r\n...`).
    pub fn from_head(head: &str) -> Signed {
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or("");
        let headers: Vec<(&str, &str)> = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim(), v.trim()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            let code = rest.split(' ').next().and_then(|c| c.parse().ok());
            Signed::from_lookup(None, code, get)
        } else {
            Signed::from_lookup(first.split(' ').next(), None, get)
        }
    }

    /// The signature input string ([MS-SIPAE] 3.2.5.2.1, version 3 and later).
    pub fn input(&self, scheme: &str, rand: &str, num: &str, target: &str) -> String {
        let status = self.status.map(|c| format!("<{c}>")).unwrap_or_default();
        format!(
            "<{scheme}><{rand}><{num}><{REALM}><{target}><{}><{}><{}><{}><{}><{}><{}><{}><{}><{}>{status}",
            self.call_id,
            self.cseq,
            self.method,
            self.from.0,
            self.from.1,
            self.to.0,
            self.to.1,
            self.asserted.0,
            self.asserted.1,
            self.expires,
        )
    }
}

/// Checks a client's signature (`crand`, `cnum`, `response` of its `Authorization`)
/// over `signed` with the client keys.
pub fn verify_client(
    keys: &SessionKeys,
    signed: &Signed,
    params: &BTreeMap<String, String>,
    target: &str,
) -> bool {
    let (Some(rand), Some(num), Some(response)) = (
        params.get("crand"),
        params.get("cnum"),
        params.get("response"),
    ) else {
        return false;
    };
    let input = signed.input("NTLM", rand, num, target);
    let mac = ntlm::mac(
        keys.flags,
        &keys.client_sign,
        &keys.client_seal,
        ntlm::SIP_SEQUENCE,
        input.as_bytes(),
    );
    super::digest::same(&hex::encode(mac), &response.to_ascii_lowercase())
}

/// The `Authentication-Info` value that signs `signed` with the server keys:
/// `NTLM rspauth="<signature hex>", srand="<rand>", snum="<num>", opaque="...",
/// qop="auth", targetname="...", realm="SIP Communications Service"`.
pub fn server_info(
    keys: &SessionKeys,
    signed: &Signed,
    rand: &str,
    num: u32,
    opaque: &str,
    target: &str,
) -> String {
    let num = num.to_string();
    let input = signed.input("NTLM", rand, &num, target);
    let mac = ntlm::mac(
        keys.flags,
        &keys.server_sign,
        &keys.server_seal,
        ntlm::SIP_SEQUENCE,
        input.as_bytes(),
    );
    format!(
        "NTLM rspauth=\"{}\", srand=\"{rand}\", snum=\"{num}\", opaque=\"{opaque}\", qop=\"auth\", targetname=\"{target}\", realm=\"{REALM}\"",
        hex::encode_upper(mac)
    )
}

/// Inserts `Authentication-Info: <info>` after the start line of an encoded head.
pub fn insert_info(head: &[u8], info: &str) -> Vec<u8> {
    let at = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(head.len(), |p| p + 2);
    let mut out = Vec::with_capacity(head.len() + info.len() + 24);
    out.extend_from_slice(&head[..at]);
    out.extend_from_slice(b"Authentication-Info: ");
    out.extend_from_slice(info.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&head[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_inputs_match_the_ocs_trace() {
        let request = "REGISTER sip:cosmo.local SIP/2.0\r\nVia: SIP/2.0/TLS 192.168.172.6:12723\r\n\
            From: <sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15\r\nTo: <sip:user@cosmo.local>\r\n\
            Call-ID: 4037df9284354df39065195bd57a4b14\r\nCSeq: 3 REGISTER\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            Signed::from_head(request).input("NTLM", "13317733", "1", "cosmo-ocs-r2.cosmo.local"),
            "<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>\
             <4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>\
             <sip:user@cosmo.local><><><><>"
        );
        let response = "SIP/2.0 200 OK\r\nFrom: \"User\"<sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15\r\n\
            To: <sip:user@cosmo.local>;tag=5E61CCD925D17E043D9A74835A88F664\r\n\
            Call-ID: 4037df9284354df39065195bd57a4b14\r\nCSeq: 3 REGISTER\r\n\
            Contact: <sip:192.168.172.6:12723;transport=tls>;expires=7200\r\nExpires: 7200\r\n\r\n";
        assert_eq!(
            Signed::from_head(response).input("NTLM", "9616454F", "1", "cosmo-ocs-r2.cosmo.local"),
            "<NTLM><9616454F><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>\
             <4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>\
             <sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664><><><7200><200>"
        );
    }

    #[test]
    fn params_parse_quoted_and_bare_values() {
        let (scheme, p) = parse_params(
            "NTLM qop=\"auth\", opaque=\"AB12\", realm=\"SIP Communications Service\", \
             targetname=\"t\", gssapi-data=\"\", version=4, crand=\"1\"",
        )
        .unwrap();
        assert_eq!(scheme, "NTLM");
        assert_eq!(p["realm"], "SIP Communications Service");
        assert_eq!(p["gssapi-data"], "");
        assert_eq!(p["version"], "4");
        assert_eq!(p["crand"], "1");
        assert_eq!(p.len(), 7);
        assert!(parse_params("").is_none());
    }

    #[test]
    fn info_goes_after_the_start_line() {
        let out = insert_info(b"SIP/2.0 200 OK\r\nCSeq: 1 X\r\n\r\n", "NTLM x");
        assert_eq!(
            out,
            b"SIP/2.0 200 OK\r\nAuthentication-Info: NTLM x\r\nCSeq: 1 X\r\n\r\n"
        );
    }
}
