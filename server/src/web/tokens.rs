//! Tokens of the web services, held by the core (in memory: a restart invalidates them
//! and clients ask again over their SIP session).
//!
//! - **Bearer token** (`cmd:gethttptok`, design): identifies the user of the SIP dialog
//!   it was issued on. Valid until it expires (`[http] bearer_ttl_ms`) or the dialog
//!   ends, whichever comes first; usable many times.
//! - **File token** (`cmd:getfutok` / `cmd:getfdtok`, XCCOS.md): single use, bound to
//!   user, room, file name and direction, expires after `[http] file_token_ttl_ms`.
//!   A token is consumed only by a request that succeeds; a refused request leaves it
//!   as it was. Used and expired tokens are remembered for another TTL so that reuse
//!   and expiry get their own answers (409, 410) instead of "unknown".
//!
//! Token values are GUIDs from the core's seeded [`crate::ids::IdGen`] (DESIGN.md:
//! deterministic under a seed; the binary seeds it from the OS at start).

use crate::channel::DialogId;
use std::collections::BTreeMap;

/// A bearer token's binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    /// The user (SIP URI) it identifies.
    pub user: String,
    /// The dialog it was issued on (it dies with it).
    pub dialog: DialogId,
    /// Expiry, ms since the epoch ([`crate::clock::Clock::now_ms`]).
    pub expires_ms: i64,
}

/// Upload or download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `cmd:getfutok`.
    Upload,
    /// `cmd:getfdtok`.
    Download,
}

/// A file token's binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToken {
    /// The user it was issued to.
    pub user: String,
    /// Room GUID.
    pub room_guid: String,
    /// File name.
    pub name: String,
    /// Upload or download.
    pub direction: Direction,
    /// Expiry, ms since the epoch.
    pub expires_ms: i64,
    /// Already redeemed.
    pub used: bool,
}

/// Why a file token was refused (each has its own HTTP status, see `web::api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token we issued (or forgotten long ago).
    Unknown,
    /// Issued to another user.
    WrongUser,
    /// Issued for another room.
    WrongRoom,
    /// Issued for another file name.
    WrongFile,
    /// Issued for the other direction.
    WrongDirection,
    /// Past its expiry.
    Expired,
    /// Already redeemed.
    Used,
}

/// The token tables.
#[derive(Debug, Default)]
pub struct Tokens {
    bearers: BTreeMap<String, Bearer>,
    files: BTreeMap<String, FileToken>,
    /// How long forgotten tokens are kept after expiry, ms.
    grace_ms: i64,
    /// Tokens consumed in the current batch (given back if it does not commit).
    consumed: Vec<String>,
}

impl Tokens {
    /// Empty tables; expired tokens are kept `grace_ms` after expiry.
    pub fn new(grace_ms: i64) -> Tokens {
        Tokens {
            grace_ms,
            ..Tokens::default()
        }
    }

    /// Registers a bearer token.
    pub fn add_bearer(&mut self, token: String, bearer: Bearer) {
        self.bearers.insert(token, bearer);
    }

    /// The bearer token's binding if it is known and not expired at `now_ms` (the
    /// caller checks that the dialog is still alive).
    pub fn bearer(&self, token: &str, now_ms: i64) -> Option<&Bearer> {
        self.bearers.get(token).filter(|b| now_ms < b.expires_ms)
    }

    /// Registers a file token.
    pub fn add_file(&mut self, token: String, ft: FileToken) {
        self.files.insert(token, ft);
    }

    /// Checks a file token against the request (user, room, name, direction) at
    /// `now_ms` without consuming it. Errors: see [`TokenError`]; the binding checks come
    /// before expiry and use, so a stolen token says nothing about its state.
    pub fn check_file(
        &self,
        token: &str,
        user: &str,
        room_guid: &str,
        name: &str,
        direction: Direction,
        now_ms: i64,
    ) -> Result<&FileToken, TokenError> {
        let ft = self.files.get(token).ok_or(TokenError::Unknown)?;
        if ft.user != user {
            return Err(TokenError::WrongUser);
        }
        if ft.room_guid != room_guid {
            return Err(TokenError::WrongRoom);
        }
        if ft.name != name {
            return Err(TokenError::WrongFile);
        }
        if ft.direction != direction {
            return Err(TokenError::WrongDirection);
        }
        if ft.used {
            return Err(TokenError::Used);
        }
        if now_ms >= ft.expires_ms {
            return Err(TokenError::Expired);
        }
        Ok(ft)
    }

    /// Marks a file token used (single use); [`Tokens::end_batch`] gives it back if the
    /// batch does not commit.
    pub fn consume(&mut self, token: &str) {
        if let Some(ft) = self.files.get_mut(token) {
            ft.used = true;
            self.consumed.push(token.to_string());
        }
    }

    /// Ends a batch: tokens consumed in it stay used if it `committed`, else they are
    /// usable again (the client was answered 503 and retries with the same token).
    pub fn end_batch(&mut self, committed: bool) {
        for t in self.consumed.drain(..) {
            if !committed {
                if let Some(ft) = self.files.get_mut(&t) {
                    ft.used = false;
                }
            }
        }
    }

    /// Forgets tokens that expired more than the grace period before `now_ms`.
    pub fn purge(&mut self, now_ms: i64) {
        let grace = self.grace_ms;
        self.bearers.retain(|_, b| now_ms < b.expires_ms);
        self.files
            .retain(|_, f| now_ms < f.expires_ms.saturating_add(grace));
    }

    /// When [`Tokens::purge`] next has something to forget (ms since the epoch): the
    /// earliest bearer expiry or file-token expiry plus the grace period; `None` when
    /// no token is held.
    pub fn next_purge(&self) -> Option<i64> {
        let bearers = self.bearers.values().map(|b| b.expires_ms);
        let files = self
            .files
            .values()
            .map(|f| f.expires_ms.saturating_add(self.grace_ms));
        bearers.chain(files).min()
    }

    /// Number of file tokens held (tests).
    pub fn file_count(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ft() -> FileToken {
        FileToken {
            user: "sip:a@d.com".into(),
            room_guid: "g1".into(),
            name: "f.txt".into(),
            direction: Direction::Upload,
            expires_ms: 1_000,
            used: false,
        }
    }

    #[test]
    fn file_token_is_bound_single_use_and_expires() {
        let mut t = Tokens::new(500);
        t.add_file("t".into(), ft());
        let up = Direction::Upload;
        let ok = |t: &Tokens, now| {
            t.check_file("t", "sip:a@d.com", "g1", "f.txt", up, now)
                .map(|_| ())
        };
        assert!(ok(&t, 999).is_ok());
        assert_eq!(ok(&t, 1_000).unwrap_err(), TokenError::Expired);
        let down = Direction::Download;
        for (token, user, room, file, dir, err) in [
            ("x", "sip:a@d.com", "g1", "f.txt", up, TokenError::Unknown),
            ("t", "sip:b@d.com", "g1", "f.txt", up, TokenError::WrongUser),
            ("t", "sip:a@d.com", "g2", "f.txt", up, TokenError::WrongRoom),
            ("t", "sip:a@d.com", "g1", "g.txt", up, TokenError::WrongFile),
            (
                "t",
                "sip:a@d.com",
                "g1",
                "f.txt",
                down,
                TokenError::WrongDirection,
            ),
        ] {
            let got = t.check_file(token, user, room, file, dir, 0);
            assert_eq!(got.map(|_| ()).unwrap_err(), err);
        }
        t.consume("t");
        t.end_batch(false);
        assert!(
            ok(&t, 0).is_ok(),
            "a batch that did not commit gives the token back"
        );
        t.consume("t");
        t.end_batch(true);
        assert_eq!(ok(&t, 0).unwrap_err(), TokenError::Used);
        t.purge(1_400);
        assert_eq!(t.file_count(), 1, "kept during the grace period");
        t.purge(1_500);
        assert_eq!(t.file_count(), 0);
    }
}
