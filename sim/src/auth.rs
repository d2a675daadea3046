//! The client side of SIP Digest (RFC 3261 22.2, RFC 8760): picks the strongest
//! challenge of a 401 (SHA-256 before MD5) and builds the `Authorization` answering
//! it. Shared by the scenario client ([`crate::client`]) and `pchat-sim load`.

use pchat_server::auth::digest::{self, Algorithm, Credentials};

/// A challenge read from a `WWW-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Realm.
    pub realm: String,
    /// Nonce.
    pub nonce: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Whether the server said `stale=true` (the nonce expired; the password is fine).
    pub stale: bool,
}

fn param<'a>(v: &'a str, name: &str) -> Option<&'a str> {
    let lower = v.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        let before_ok = at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b',' | b'\t');
        let rest = &v[at + name.len()..];
        if before_ok && rest.starts_with('=') {
            let rest = &rest[1..];
            return Some(match rest.strip_prefix('"') {
                Some(q) => q.split('"').next().unwrap_or(""),
                None => rest.split(',').next().unwrap_or("").trim(),
            });
        }
        from = at + name.len();
    }
    None
}

/// The challenges of a 401's `WWW-Authenticate` values we can answer, strongest first.
pub fn challenges<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = values
        .filter(|v| v.trim_start().to_ascii_lowercase().starts_with("digest"))
        .filter_map(|v| {
            Some(Challenge {
                realm: param(v, "realm")?.to_string(),
                nonce: param(v, "nonce")?.to_string(),
                algorithm: Algorithm::parse(param(v, "algorithm"))?,
                stale: param(v, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            })
        })
        .collect();
    out.sort_by_key(|c| c.algorithm);
    out
}

/// The `Authorization` value answering `ch` for `method` `uri` as `username` with
/// `password`, nonce-count `nc`, client nonce `cnonce` (`qop=auth`).
pub fn authorization(
    ch: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let mut c = Credentials {
        username: username.to_string(),
        realm: ch.realm.clone(),
        nonce: ch.nonce.clone(),
        uri: uri.to_string(),
        response: String::new(),
        algorithm: ch.algorithm,
        cnonce: cnonce.to_string(),
        nc: format!("{nc:08x}"),
        nc_value: nc,
        qop: "auth".to_string(),
    };
    let ha1 = digest::ha1(ch.algorithm, username, &ch.realm, password);
    c.response = digest::response(ch.algorithm, &ha1, &c, method);
    format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", \
         algorithm={}, cnonce=\"{}\", nc={}, qop=auth",
        c.username,
        c.realm,
        c.nonce,
        c.uri,
        c.response,
        ch.algorithm.as_str(),
        c.cnonce,
        c.nc
    )
}

/// The Digest `username` of a SIP URI: its user part.
pub fn username_of(uri: &str) -> String {
    uri.trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongest_challenge_first_and_stale_read() {
        let v = [
            "Digest realm=\"contoso.com\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"",
            "Digest realm=\"contoso.com\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\", stale=true",
            "Basic realm=\"x\"",
        ];
        let c = challenges(v.iter().copied());
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].algorithm, Algorithm::Sha256);
        assert!(c[0].stale && !c[1].stale);
        let a = authorization(
            &c[0],
            "INVITE",
            "sip:pchat@contoso.com",
            "user1",
            "pw",
            "cn",
            1,
        );
        let parsed = digest::parse_credentials(&a).unwrap();
        assert_eq!(parsed.nc_value, 1);
        assert_eq!(parsed.algorithm, Algorithm::Sha256);
    }
}
