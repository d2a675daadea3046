//! The users who may sign in (`[[user]]`), keyed by lower-case `user@domain`, with
//! their HA1 values for the realm in force (RFC 3261 22.4, RFC 8760).

use super::digest::{ha1, Algorithm};
use crate::config::UserConfig;
use std::collections::BTreeMap;

/// One user's secrets: HA1 per algorithm (absent: that algorithm cannot be used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSecrets {
    /// The user's canonical URI, `sip:user@domain` (lower case).
    pub uri: String,
    /// The user part, as a Digest `username`.
    pub username: String,
    /// Hex SHA-256 HA1.
    pub ha1_sha256: Option<String>,
    /// Hex MD5 HA1.
    pub ha1_md5: Option<String>,
    /// HA1 values with the full `user@domain` as username (SHA-256, MD5): known only
    /// when the password is configured.
    pub ha1_full: Option<(String, String)>,
    /// The NT hash `MD4(UTF-16LE(password))` for NTLM ([MS-NLMP] 3.3.1): known only
    /// when the password is configured.
    pub nt_hash: Option<[u8; 16]>,
}

impl UserSecrets {
    /// The HA1 for `alg` with the user part as username, if known.
    pub fn ha1(&self, alg: Algorithm) -> Option<&str> {
        match alg {
            Algorithm::Sha256 => self.ha1_sha256.as_deref(),
            Algorithm::Md5 => self.ha1_md5.as_deref(),
        }
    }

    /// The HA1 for `alg` and the Digest `username` as sent: the user part, or the
    /// full `user@domain` (then only when the password is configured).
    pub fn ha1_for(&self, alg: Algorithm, username: &str) -> Option<&str> {
        if !username.contains('@') {
            return self.ha1(alg);
        }
        let (sha, md5) = self.ha1_full.as_ref()?;
        Some(match alg {
            Algorithm::Sha256 => sha,
            Algorithm::Md5 => md5,
        })
    }
}

/// The user table.
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    by_key: BTreeMap<String, UserSecrets>,
    domain: String,
}

/// Lower-cased `user@host` of a SIP URI (`sip:`/`sips:` and parameters removed).
pub fn key_of(uri: &str) -> String {
    let u = uri.trim().trim_start_matches('<');
    let u = u
        .strip_prefix("sips:")
        .or_else(|| u.strip_prefix("sip:"))
        .unwrap_or(u);
    let end = u.find([';', '>', '?']).unwrap_or(u.len());
    u[..end].to_ascii_lowercase()
}

impl UserDb {
    /// Builds the table; a `password` gives both HA1 values (computed with the user
    /// part as username, RFC 3261 22.4), explicit `ha1_*` values win.
    pub fn new(users: &[UserConfig], realm: &str, domain: &str) -> UserDb {
        let mut by_key = BTreeMap::new();
        for u in users {
            let key = key_of(&u.uri);
            let username = key.split('@').next().unwrap_or("").to_string();
            let from_pw = |alg| u.password.as_deref().map(|p| ha1(alg, &username, realm, p));
            // The client computes HA1 over the username it sends: the full form as
            // sent (case kept as configured) is accepted too.
            let full = key.clone();
            let ha1_full = u.password.as_deref().map(|p| {
                (
                    ha1(Algorithm::Sha256, &full, realm, p),
                    ha1(Algorithm::Md5, &full, realm, p),
                )
            });
            let secrets = UserSecrets {
                uri: format!("sip:{key}"),
                ha1_sha256: u
                    .ha1_sha256
                    .as_ref()
                    .map(|h| h.to_ascii_lowercase())
                    .or_else(|| from_pw(Algorithm::Sha256)),
                ha1_md5: u
                    .ha1_md5
                    .as_ref()
                    .map(|h| h.to_ascii_lowercase())
                    .or_else(|| from_pw(Algorithm::Md5)),
                username,
                ha1_full,
                nt_hash: u.password.as_deref().map(super::ntlm::nt_hash),
            };
            by_key.insert(key, secrets);
        }
        UserDb {
            by_key,
            domain: domain.to_ascii_lowercase(),
        }
    }

    /// The user a Digest `username` names: `user@domain` as given, or a bare user part
    /// taken in the server's domain.
    pub fn lookup(&self, username: &str) -> Option<&UserSecrets> {
        let name = username.trim().to_ascii_lowercase();
        let name = name.strip_prefix("sip:").unwrap_or(&name);
        if name.contains('@') {
            self.by_key.get(name)
        } else {
            self.by_key.get(&format!("{name}@{}", self.domain))
        }
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_gives_both_ha1_and_lookup_accepts_both_forms() {
        let db = UserDb::new(
            &[UserConfig {
                uri: "sip:User1@Contoso.com".into(),
                password: Some("pw".into()),
                ha1_sha256: None,
                ha1_md5: None,
            }],
            "contoso.com",
            "contoso.com",
        );
        let u = db.lookup("user1").unwrap();
        assert_eq!(u.uri, "sip:user1@contoso.com");
        assert_eq!(
            u.ha1(Algorithm::Md5).unwrap(),
            ha1(Algorithm::Md5, "user1", "contoso.com", "pw")
        );
        assert!(u.ha1(Algorithm::Sha256).is_some());
        assert_eq!(db.lookup("user1@contoso.com"), Some(u));
        assert_eq!(db.lookup("USER1@CONTOSO.COM"), Some(u));
        assert_eq!(db.lookup("user1@other.com"), None);
        assert_eq!(db.lookup("user2"), None);
    }
}
