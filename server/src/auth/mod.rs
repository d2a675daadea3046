//! Who is who: the gate every SIP request passes before the core acts on it
//! (docs/security.md).
//!
//! - [`digest`]: SIP Digest (RFC 3261 section 22, RFC 8760): challenges, credentials,
//!   nonces that expire (`stale=true`) and refuse replays.
//! - [`users`]: the `[[user]]` table with HA1 values.
//! - [`guard`]: brute-force lockout per user and per source address.
//! - [`registrar`]: REGISTER bindings (RFC 3261 section 10).
//! - [`exposure`]: mode `"none"` only on loopback.
//! - [`ntlm`], [`sipae`]: mode `"ntlm"` - NTLMv2 ([MS-NLMP]) and [MS-SIPAE] signing of
//!   every message on the security association (`ntlm_gate.rs` holds the state).
//!
//! **Model.** A connection authenticates once (Digest on any request); later requests
//! on it are accepted when their From is the same user, refused 403 when it is anyone
//! else. A dialog belongs to the user who created it: an in-dialog request whose From
//! differs gets 403, and one on a connection not authenticated as that user is
//! challenged. In mode `"trusted"` a connection from a trusted peer (loopback address
//! or TLS client certificate fingerprint in `[auth] trusted_peers`) names the user in
//! P-Asserted-Identity (RFC 3325); from anyone else that header is removed before
//! anything reads it, and they authenticate with Digest. Mode `"none"` takes From as
//! the identity (loopback only) but still binds dialogs to their user.

pub mod digest;
pub mod exposure;
pub mod guard;
pub mod ntlm;
mod ntlm_gate;
pub mod password;
pub mod registrar;
pub mod sipae;
pub mod users;

use crate::config::{AuthMode, Config};
use crate::ids::ConnId;
use crate::sip::{response_for, Request, Response};
use digest::{Algorithm, NonceBook, NonceError};
use std::collections::BTreeMap;
use users::key_of;

/// What the transport knows about a connection's peer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peer {
    /// Source IP address as text (`127.0.0.1`), for the brute-force guard and logs.
    pub addr: String,
    /// Whether the source address is a loopback address.
    pub loopback: bool,
    /// `sha256:<hex>` of the TLS client certificate, when one was presented.
    pub cert_sha256: Option<String>,
    /// Whether the connection is SIP over TLS.
    pub tls: bool,
    /// The socket address, when known.
    pub socket: Option<std::net::SocketAddr>,
}

impl Peer {
    /// A peer from its socket address (no TLS client certificate).
    pub fn from_addr(addr: std::net::SocketAddr) -> Peer {
        Peer {
            addr: addr.ip().to_string(),
            loopback: addr.ip().is_loopback(),
            cert_sha256: None,
            tls: false,
            socket: Some(addr),
        }
    }

    /// The socket address, or `0.0.0.0:0` when the transport does not know it (what
    /// a `host::Listener` reports for such a peer).
    pub fn socket_or_unspecified(&self) -> std::net::SocketAddr {
        self.socket
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// The gate's decision on one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Go on: the request's From is its authenticated user.
    Pass,
    /// Answer with this response (400, 401, 403) and do nothing else.
    Refuse(Response),
    /// Ignore the request (an ACK, which is never answered).
    Drop,
}

#[derive(Debug, Clone)]
struct ConnState {
    peer: Peer,
    connected_ms: i64,
    user: Option<String>,
    /// Counted in `Auth::waiting` (must authenticate, has not yet).
    waiting: bool,
}

/// Authentication state of the core: mode, users, nonces, guard, registrar, and what
/// each connection authenticated as.
#[derive(Debug)]
pub struct Auth {
    mode: AuthMode,
    realm: String,
    users: users::UserDb,
    nonces: NonceBook,
    guard: guard::Guard,
    trusted: Vec<String>,
    conns: BTreeMap<ConnId, ConnState>,
    /// Connections that must authenticate and have not yet.
    waiting: usize,
    unauth_timeout_ms: i64,
    max_unauthenticated: usize,
    /// REGISTER bindings.
    pub registrar: registrar::Registrar,
    /// NTLM handshakes and security associations (mode `"ntlm"`).
    ntlm: ntlm_gate::NtlmState,
}

/// A request being authenticated: its connection, the request, its From key
/// (lower-case `user@domain`), the peer's address and the time.
#[derive(Clone, Copy)]
pub(crate) struct Attempt<'a> {
    conn: ConnId,
    req: &'a Request,
    from: &'a str,
    addr: &'a str,
    now_ms: i64,
}

impl Auth {
    /// State for `cfg`; `secret` keys the nonces (from the core's seeded generator).
    pub fn new(cfg: &Config, secret: [u8; 32]) -> Auth {
        let realm = cfg.realm().to_string();
        Auth {
            mode: cfg.auth.mode,
            users: users::UserDb::new(&cfg.users, &realm, &cfg.domain),
            realm,
            nonces: NonceBook::new(secret, i64::from(cfg.auth.nonce_ttl_s) * 1000),
            guard: guard::Guard::new(&cfg.auth),
            trusted: cfg
                .auth
                .trusted_peers
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
            conns: BTreeMap::new(),
            waiting: 0,
            unauth_timeout_ms: cfg.sip.unauthenticated_timeout.0 as i64,
            max_unauthenticated: cfg.sip.max_unauthenticated.max(1),
            registrar: registrar::Registrar::default(),
            ntlm: ntlm_gate::NtlmState::new(secret, &cfg.domain),
        }
    }

    /// The mode in force.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    fn needs_auth(&self) -> bool {
        self.mode != AuthMode::None
    }

    /// A connection was accepted from `peer` at `now_ms`. Returns false when it must be
    /// closed at once: `[sip] max_unauthenticated` connections are already waiting to
    /// authenticate.
    pub fn on_connected(&mut self, conn: ConnId, peer: Peer, now_ms: i64) -> bool {
        let must_wait = self.needs_auth() && !self.trusted_peer(&peer);
        if must_wait && self.waiting >= self.max_unauthenticated {
            tracing::warn!(conn = %conn, addr = %peer.addr, waiting = self.waiting, "too many unauthenticated connections: closing");
            return false;
        }
        self.waiting += usize::from(must_wait);
        let state = ConnState {
            peer,
            connected_ms: now_ms,
            user: None,
            waiting: must_wait,
        };
        if let Some(old) = self.conns.insert(conn, state) {
            self.waiting -= usize::from(old.waiting);
        }
        true
    }

    /// The connection closed: forget it and its registrations.
    pub fn on_closed(&mut self, conn: ConnId) {
        if let Some(old) = self.conns.remove(&conn) {
            self.waiting -= usize::from(old.waiting);
        }
        self.registrar.on_closed(conn);
        self.ntlm.on_closed(conn);
    }

    /// Periodic work at `now_ms`: purges nonces, guard entries and lapsed bindings;
    /// returns the connections that stayed unauthenticated past
    /// `[sip] unauthenticated_timeout` (to be closed).
    pub fn tick(&mut self, now_ms: i64) -> Vec<ConnId> {
        self.nonces.purge(now_ms);
        self.guard.purge(now_ms);
        self.registrar.expire(now_ms);
        self.ntlm.purge(now_ms);
        if !self.needs_auth() {
            return Vec::new();
        }
        let deadline = self.unauth_timeout_ms;
        self.conns
            .iter()
            .filter(|(_, c)| c.waiting && now_ms - c.connected_ms > deadline)
            .map(|(id, _)| *id)
            .collect()
    }

    /// When [`Auth::tick`] next has work (ms since the epoch), given the batch time
    /// `now_ms`: the first deadline of a connection waiting to authenticate, and while
    /// nonces, lockouts or bindings are held, a housekeeping pass a second from now
    /// (their purge). `None`: nothing held, nothing due.
    pub fn next_deadline(&self, now_ms: i64) -> Option<i64> {
        let waiting = self
            .conns
            .values()
            .filter(|c| self.needs_auth() && c.waiting)
            .map(|c| c.connected_ms + self.unauth_timeout_ms + 1)
            .min();
        let held = self.nonces.tracked() > 0
            || self.guard.entries() > 0
            || !self.registrar.is_empty()
            || self.ntlm.pending() > 0;
        let housekeeping = held.then_some(now_ms + 1000);
        waiting.into_iter().chain(housekeeping).min()
    }

    /// Whether `conn` is SIP over TLS (our Via and Contact then say TLS).
    pub fn is_tls(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.peer.tls)
    }

    /// The user `conn` authenticated as (lower-case `user@domain`), if any.
    pub fn user_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).and_then(|c| c.user.as_deref())
    }

    fn trusted_peer(&self, peer: &Peer) -> bool {
        if self.mode != AuthMode::Trusted {
            return false;
        }
        self.trusted.iter().any(|t| {
            peer.cert_sha256
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(t))
                || (peer.loopback && *t == peer.addr)
        })
    }

    /// Decides whether `req`, received on `conn` at `now_ms`, may go on. `dialog_user`
    /// is the user of the dialog it belongs to, if it is an in-dialog request. Removes
    /// P-Asserted-Identity unless it came from a trusted peer. See the module docs.
    pub fn gate(
        &mut self,
        conn: ConnId,
        req: &mut Request,
        dialog_user: Option<&str>,
        now_ms: i64,
    ) -> Verdict {
        let is_ack = req.method == "ACK";
        let refuse = |resp: Response| {
            if is_ack {
                Verdict::Drop
            } else {
                Verdict::Refuse(resp)
            }
        };
        let peer = self
            .conns
            .get(&conn)
            .map(|c| c.peer.clone())
            .unwrap_or_default();
        let trusted = self.trusted_peer(&peer);
        let asserted = req.headers.get("P-Asserted-Identity").map(key_of);
        if !trusted {
            req.headers.remove("P-Asserted-Identity");
        }
        let from = req.from_uri().map(key_of).unwrap_or_default();
        if let Some(d) = dialog_user {
            if key_of(d) != from {
                return refuse(response_for(
                    req,
                    403,
                    "Forbidden: From is not the dialog's user",
                ));
            }
        }
        if !self.needs_auth() || is_ack || req.method == "CANCEL" {
            return Verdict::Pass;
        }
        let a = Attempt {
            conn,
            req,
            from: &from,
            addr: &peer.addr,
            now_ms,
        };
        if self.mode == AuthMode::Ntlm {
            return self.ntlm_gate(&a);
        }
        if trusted {
            if let Some(a) = asserted {
                return if a == from {
                    Verdict::Pass
                } else {
                    refuse(response_for(
                        req,
                        403,
                        "Forbidden: From differs from P-Asserted-Identity",
                    ))
                };
            }
        }
        if let Some(u) = self.user_of(conn) {
            return if u == from {
                Verdict::Pass
            } else {
                refuse(response_for(
                    req,
                    403,
                    "Forbidden: From is not the user this connection authenticated as",
                ))
            };
        }
        self.digest(&a)
    }

    /// 401 with a fresh nonce, SHA-256 offered first, then MD5 (RFC 8760 2.4).
    fn challenge(&mut self, req: &Request, stale: bool, reason: &str, now_ms: i64) -> Verdict {
        let nonce = self.nonces.issue(now_ms);
        let mut resp = response_for(req, 401, reason);
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            resp = resp.with_header(
                "WWW-Authenticate",
                digest::challenge(alg, &self.realm, &nonce, stale),
            );
        }
        Verdict::Refuse(resp)
    }

    fn digest(&mut self, a: &Attempt<'_>) -> Verdict {
        let (conn, req, from, addr, now_ms) = (a.conn, a.req, a.from, a.addr, a.now_ms);
        let creds = req
            .headers
            .get_all("Authorization")
            .filter_map(|v| digest::parse_credentials(v).ok())
            .find(|c| c.realm == self.realm);
        let Some(c) = creds else {
            return self.challenge(req, false, "Unauthorized", now_ms);
        };
        let (user, key) = match self.unlocked_user(req, &c.username, addr, now_ms) {
            Ok(found) => found,
            Err(refused) => return refused,
        };
        match self.nonces.check(&c.nonce, now_ms) {
            Err(NonceError::Stale) => {
                return self.challenge(req, true, "Unauthorized: stale nonce", now_ms)
            }
            Err(_) => return self.challenge(req, false, "Unauthorized: unknown nonce", now_ms),
            Ok(()) => {}
        }
        let expected = user
            .as_ref()
            .and_then(|u| u.ha1_for(c.algorithm, &c.username))
            .map(|ha1| digest::response(c.algorithm, ha1, &c, &req.method));
        let good = expected.is_some_and(|e| digest::same(&e, &c.response)) && c.uri == req.uri;
        if !good {
            self.failed(&key, addr, now_ms, "authentication failures");
            return self.challenge(req, false, "Unauthorized: wrong credentials", now_ms);
        }
        if self.nonces.use_count(&c.nonce, c.nc_value, now_ms).is_err() {
            self.failed(&key, addr, now_ms, "replays");
            return self.challenge(req, false, "Unauthorized: nonce count replayed", now_ms);
        }
        if let Err(refused) = self.succeeded(req, &key, from) {
            return refused;
        }
        self.bind_user(conn, key, now_ms);
        Verdict::Pass
    }

    /// The user `name` names (if known) and the key failures count against (its URI's
    /// key, else the lower-cased name); `Err` the 403 while that key is locked out at
    /// `addr` after too many failures.
    fn unlocked_user(
        &self,
        req: &Request,
        name: &str,
        addr: &str,
        now_ms: i64,
    ) -> Result<(Option<users::UserSecrets>, String), Verdict> {
        let user = self.users.lookup(name).cloned();
        let key = user
            .as_ref()
            .map_or_else(|| name.to_ascii_lowercase(), |u| key_of(&u.uri));
        if self.guard.locked(&key, addr, now_ms) {
            return Err(Verdict::Refuse(response_for(
                req,
                403,
                "Forbidden: too many failed attempts, try again later",
            )));
        }
        Ok((user, key))
    }

    /// Counts a failure (`what`, for the log) of `key` at `addr`.
    fn failed(&mut self, key: &str, addr: &str, now_ms: i64, what: &str) {
        if self.guard.fail(key, addr, now_ms) {
            tracing::warn!(user = %key, %addr, "repeated {what}: refusing this user and address for a while");
        }
    }

    /// Good credentials of `key`: clears its failures; `Err` the 403 when they are not
    /// the From user's.
    fn succeeded(&mut self, req: &Request, key: &str, from: &str) -> Result<(), Verdict> {
        self.guard.succeed(key);
        if key != from {
            return Err(Verdict::Refuse(response_for(
                req,
                403,
                "Forbidden: credentials are for another user than From",
            )));
        }
        Ok(())
    }

    /// `conn` authenticated as `key` (lower-case `user@domain`) at `now_ms`.
    fn bind_user(&mut self, conn: ConnId, key: String, now_ms: i64) {
        if let Some(state) = self.conns.get_mut(&conn) {
            state.user = Some(key);
            if std::mem::take(&mut state.waiting) {
                self.waiting -= 1;
            }
        } else {
            self.conns.insert(
                conn,
                ConnState {
                    peer: Peer::default(),
                    connected_ms: now_ms,
                    user: Some(key),
                    waiting: false,
                },
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
