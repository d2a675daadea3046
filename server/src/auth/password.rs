//! Password sign-in for the web pages (issue 16; docs/web.md "Pages"): the same
//! `[[user]]` secrets as SIP Digest, checked by recomputing the user's HA1
//! (RFC 3261 section 22.4: `H(username ":" realm ":" password)`, SHA-256 first, then MD5
//! when only that is configured) and comparing in constant time. Failures count in the
//! same brute-force [`super::guard::Guard`] as SIP Digest failures (per user and per
//! source address), so neither door can be used to guess faster.

use super::digest::{ha1, same, Algorithm};
use super::users::key_of;
use super::Auth;

/// Why a password sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    /// Unknown user, no password or HA1 configured for it, or a wrong password (one
    /// answer for all, so the page tells no one which user names exist).
    Wrong,
    /// Too many failed attempts for this user or from this address (SIP and web
    /// together): refused without checking the password until the lockout ends.
    Locked,
}

impl Auth {
    /// Checks `password` for `username` (`user1`, `user1@contoso.com` or
    /// `sip:user1@contoso.com`) coming from `addr` (source IP as text) at `now_ms`.
    /// Returns the user's canonical URI (`sip:user1@contoso.com`). Errors: see
    /// [`PasswordError`]; a failure is counted by the brute-force guard.
    pub fn check_password(
        &mut self,
        username: &str,
        password: &str,
        addr: &str,
        now_ms: i64,
    ) -> Result<String, PasswordError> {
        let user = self.users.lookup(username).cloned();
        let key = user
            .as_ref()
            .map_or_else(|| username.trim().to_ascii_lowercase(), |u| key_of(&u.uri));
        if self.guard.locked(&key, addr, now_ms) {
            return Err(PasswordError::Locked);
        }
        let good = user.as_ref().filter(|u| {
            [Algorithm::Sha256, Algorithm::Md5]
                .into_iter()
                .find_map(|alg| u.ha1(alg).map(|h| (alg, h)))
                .is_some_and(|(alg, h)| same(&ha1(alg, &u.username, &self.realm, password), h))
        });
        match good {
            Some(u) => {
                self.guard.succeed(&key);
                Ok(u.uri.clone())
            }
            None => {
                if self.guard.fail(&key, addr, now_ms) {
                    tracing::warn!(user = %key, %addr, "repeated web sign-in failures: refusing this user and address for a while");
                }
                Err(PasswordError::Wrong)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn auth() -> Auth {
        let cfg = Config::from_toml(
            r#"
domain = "d.com"
[auth]
mode = "digest"
max_failures = 3
[[user]]
uri = "sip:Alice@d.com"
password = "right"
"#,
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        Auth::new(&cfg, [7; 32])
    }

    #[test]
    fn right_password_in_every_name_form_wrong_ones_lock_out() {
        let mut a = auth();
        for name in ["alice", "Alice@d.com", "sip:alice@d.com"] {
            assert_eq!(
                a.check_password(name, "right", "1.2.3.4", 0).as_deref(),
                Ok("sip:alice@d.com")
            );
        }
        assert_eq!(
            a.check_password("nobody", "right", "9.9.9.9", 0),
            Err(PasswordError::Wrong)
        );
        for _ in 0..3 {
            assert_eq!(
                a.check_password("alice", "wrong", "1.2.3.4", 1),
                Err(PasswordError::Wrong)
            );
        }
        assert_eq!(
            a.check_password("alice", "right", "5.6.7.8", 2),
            Err(PasswordError::Locked),
            "the user is locked out from any address, even with the right password"
        );
    }

    #[test]
    fn sip_digest_failures_lock_the_web_sign_in_too() {
        let mut a = auth();
        // What `Auth::digest` does on each wrong SIP Digest response.
        for t in 0..3 {
            a.guard.fail("alice@d.com", "10.0.0.9", t);
        }
        assert_eq!(
            a.check_password("alice", "right", "10.0.0.1", 5),
            Err(PasswordError::Locked)
        );
        assert!(
            a.guard.locked("bob@d.com", "10.0.0.9", 5),
            "and the address is locked for every user"
        );
    }
}
