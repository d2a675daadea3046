//! SIP Digest (RFC 3261 section 22, RFC 2617 section 3 with `qop=auth`, RFC 8760
//! SHA-256): HA1/response computation, `Authorization` parsing, `WWW-Authenticate`
//! challenges, and the nonce book (expiry with `stale=true`, replay refusal by
//! nonce-count).

use md5::Md5;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// A Digest hash algorithm (RFC 8760 section 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// `SHA-256` (offered first).
    Sha256,
    /// `MD5` (RFC 2617; for clients that know nothing else).
    Md5,
}

impl Algorithm {
    /// The token on the wire (`SHA-256`, `MD5`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    /// Parses an `algorithm` parameter (case-insensitive); absent means MD5
    /// (RFC 2617 3.2.1). `None`: an algorithm we do not implement (e.g. `-sess`).
    pub fn parse(s: Option<&str>) -> Option<Algorithm> {
        match s.map(str::to_ascii_uppercase).as_deref() {
            None | Some("MD5") => Some(Algorithm::Md5),
            Some("SHA-256") => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Sha256 => hex::encode(Sha256::digest(data)),
            Algorithm::Md5 => hex::encode(Md5::digest(data)),
        }
    }
}

/// HA1 = H(username ":" realm ":" password) in lower-case hex (RFC 2617 3.2.2.2).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// The expected `response` for `qop=auth` (RFC 2617 3.2.2.1):
/// H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" H(method ":" uri)).
pub fn response(alg: Algorithm, ha1: &str, c: &Credentials, method: &str) -> String {
    let ha2 = alg.hex(format!("{method}:{}", c.uri).as_bytes());
    alg.hex(format!("{ha1}:{}:{}:{}:{}:{ha2}", c.nonce, c.nc, c.cnonce, c.qop).as_bytes())
}

/// Constant-time equality of two ASCII strings (lengths are not secret).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The parameters of an `Authorization: Digest ...` header (RFC 3261 25.1
/// `credentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `username` as sent.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri` (digest-uri).
    pub uri: String,
    /// `response` (hex).
    pub response: String,
    /// `algorithm`.
    pub algorithm: Algorithm,
    /// `cnonce`.
    pub cnonce: String,
    /// `nc` as sent (8 hex digits).
    pub nc: String,
    /// `nc` as a number.
    pub nc_value: u32,
    /// `qop` (always `auth`).
    pub qop: String,
}

/// Splits `k=v, k="v, w"` into pairs (quoted values unquoted, `\"` unescaped).
fn params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.entry(key).or_insert(value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Parses an `Authorization` (or `Proxy-Authorization`) value. Errors name what is
/// missing or unsupported (no `qop=auth`, unknown algorithm, bad `nc`).
pub fn parse_credentials(value: &str) -> Result<Credentials, String> {
    let v = value.trim();
    let rest = match v.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("digest") => rest,
        _ => return Err("not a Digest credential".into()),
    };
    let p = params(rest);
    let get = |k: &str| {
        p.get(k)
            .cloned()
            .ok_or_else(|| format!("credentials lack {k}"))
    };
    let algorithm = Algorithm::parse(p.get("algorithm").map(String::as_str))
        .ok_or_else(|| "unsupported algorithm".to_string())?;
    let qop = get("qop")?;
    if !qop.eq_ignore_ascii_case("auth") {
        return Err(format!("unsupported qop {qop:?} (auth expected)"));
    }
    let nc = get("nc")?;
    let nc_value = u32::from_str_radix(&nc, 16).map_err(|_| format!("bad nc {nc:?}"))?;
    Ok(Credentials {
        username: get("username")?,
        realm: get("realm")?,
        nonce: get("nonce")?,
        uri: get("uri")?,
        response: get("response")?.to_ascii_lowercase(),
        algorithm,
        cnonce: get("cnonce")?,
        nc,
        nc_value,
        qop,
    })
}

/// A `WWW-Authenticate` value (RFC 3261 22.1, RFC 8760 2.4).
pub fn challenge(alg: Algorithm, realm: &str, nonce: &str, stale: bool) -> String {
    let mut v = format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
        alg.as_str()
    );
    if stale {
        v.push_str(", stale=true");
    }
    v
}

/// Why a nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Not one we issued (or tampered with).
    Unknown,
    /// Ours, but older than the nonce lifetime: answer `stale=true`.
    Stale,
    /// The nonce-count was not above the last one accepted for this nonce: a replay.
    Replayed,
}

/// Nonces we issued: `<issued ms hex>.<counter hex>.<mac>`, the MAC a SHA-256 over a
/// secret (from the seeded id generator), so a nonce cannot be forged, and a table
/// of the highest nonce-count accepted per nonce still alive (bounded by the nonce
/// lifetime: expired entries are purged).
#[derive(Debug)]
pub struct NonceBook {
    secret: [u8; 32],
    ttl_ms: i64,
    counter: u64,
    last_nc: BTreeMap<String, (i64, u32)>,
}

impl NonceBook {
    /// A book whose nonces live `ttl_ms` and are authenticated with `secret`.
    pub fn new(secret: [u8; 32], ttl_ms: i64) -> NonceBook {
        NonceBook {
            secret,
            ttl_ms: ttl_ms.max(1),
            counter: 0,
            last_nc: BTreeMap::new(),
        }
    }

    fn mac(&self, issued: i64, counter: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        h.update(counter.to_be_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// A fresh nonce issued at `now_ms`.
    pub fn issue(&mut self, now_ms: i64) -> String {
        self.counter += 1;
        format!(
            "{:x}.{:x}.{}",
            now_ms,
            self.counter,
            self.mac(now_ms, self.counter)
        )
    }

    /// Checks `nonce` (ours, not expired) without using it.
    pub fn check(&self, nonce: &str, now_ms: i64) -> Result<(), NonceError> {
        let mut it = nonce.split('.');
        let (Some(t), Some(c), Some(m), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(NonceError::Unknown);
        };
        let (Ok(issued), Ok(counter)) = (i64::from_str_radix(t, 16), u64::from_str_radix(c, 16))
        else {
            return Err(NonceError::Unknown);
        };
        if !same(&self.mac(issued, counter), m) {
            return Err(NonceError::Unknown);
        }
        if now_ms.saturating_sub(issued) > self.ttl_ms || issued > now_ms {
            return Err(NonceError::Stale);
        }
        Ok(())
    }

    /// Records that `nonce` was used with count `nc` after the response checked out.
    /// Errors: [`NonceError::Replayed`] when `nc` is not above the last count used.
    pub fn use_count(&mut self, nonce: &str, nc: u32, now_ms: i64) -> Result<(), NonceError> {
        let entry = self.last_nc.entry(nonce.to_string()).or_insert((now_ms, 0));
        if nc <= entry.1 {
            return Err(NonceError::Replayed);
        }
        entry.1 = nc;
        Ok(())
    }

    /// Whether `nonce` was already used with a count of at least `nc` (a replay).
    pub fn is_replay(&self, nonce: &str, nc: u32) -> bool {
        self.last_nc.get(nonce).is_some_and(|(_, last)| nc <= *last)
    }

    /// Forgets the counts of nonces past their lifetime (they are refused as stale).
    pub fn purge(&mut self, now_ms: i64) {
        let ttl = self.ttl_ms;
        self.last_nc.retain(|n, _| {
            n.split('.')
                .next()
                .and_then(|t| i64::from_str_radix(t, 16).ok())
                .is_some_and(|issued| now_ms.saturating_sub(issued) <= ttl)
        });
    }

    /// Nonces with a remembered count (for tests).
    pub fn tracked(&self) -> usize {
        self.last_nc.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `response` of user "Mufasa" for `GET /dir/index.html` (qop=auth, nc=1) in
    /// `realm` with `password`, `nonce` and `cnonce`.
    fn mufasa(alg: Algorithm, realm: &str, password: &str, nonce: &str, cnonce: &str) -> String {
        let c = Credentials {
            username: "Mufasa".into(),
            realm: realm.into(),
            nonce: nonce.into(),
            uri: "/dir/index.html".into(),
            response: String::new(),
            algorithm: alg,
            cnonce: cnonce.into(),
            nc: "00000001".into(),
            nc_value: 1,
            qop: "auth".into(),
        };
        response(alg, &ha1(alg, "Mufasa", realm, password), &c, "GET")
    }

    #[test]
    fn rfc2617_md5_example() {
        // RFC 2617 3.5 example (qop=auth), "Mufasa" / "Circle Of Life".
        assert_eq!(
            mufasa(
                Algorithm::Md5,
                "testrealm@host.com",
                "Circle Of Life",
                "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                "0a4f113b"
            ),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn rfc7616_sha256_example() {
        // RFC 7616 3.9.1: Mufasa / "Circle of Life", realm http-auth@example.org.
        assert_eq!(
            mufasa(
                Algorithm::Sha256,
                "http-auth@example.org",
                "Circle of Life",
                "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
            ),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn credentials_parse_quoted_and_bare_values() {
        let c = parse_credentials(
            "Digest username=\"user1\", realm=\"contoso.com\", nonce=\"a.b.c\", \
             uri=\"sip:contoso.com\", response=\"ABC\", algorithm=SHA-256, cnonce=\"x,y\", \
             nc=0000000a, qop=auth",
        )
        .unwrap();
        assert_eq!(c.username, "user1");
        assert_eq!(c.cnonce, "x,y");
        assert_eq!(c.nc_value, 10);
        assert_eq!(c.response, "abc");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert!(parse_credentials("Basic dXNlcjpwdw==").is_err());
        assert!(parse_credentials("Digest username=\"u\", realm=\"r\"").is_err());
        assert!(parse_credentials(
            "Digest username=u, realm=r, nonce=n, uri=u, response=r, cnonce=c, nc=1, qop=auth-int"
        )
        .is_err());
    }

    #[test]
    fn nonces_expire_and_counts_must_grow() {
        let mut book = NonceBook::new([7; 32], 1000);
        let n = book.issue(5_000);
        assert_eq!(book.check(&n, 5_500), Ok(()));
        assert_eq!(book.check(&n, 6_001), Err(NonceError::Stale));
        let forged = n.replacen('.', "0.", 1);
        assert_eq!(book.check(&forged, 5_500), Err(NonceError::Unknown));
        assert_eq!(book.check("nonsense", 5_500), Err(NonceError::Unknown));
        assert_eq!(book.use_count(&n, 1, 5_500), Ok(()));
        assert_eq!(book.use_count(&n, 1, 5_500), Err(NonceError::Replayed));
        assert!(book.is_replay(&n, 1));
        assert_eq!(book.use_count(&n, 2, 5_500), Ok(()));
        book.purge(7_000);
        assert_eq!(book.tracked(), 0);
        let other = NonceBook::new([8; 32], 1000);
        assert_eq!(
            other.check(&n, 5_500),
            Err(NonceError::Unknown),
            "other secret"
        );
    }
}
