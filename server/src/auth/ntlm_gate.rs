//! Mode `"ntlm"`: the connectionless NTLM handshake over 401s ([MS-SIPAE] 3.2.5.1)
//! and the security association (SA) that follows, one per connection.
//!
//! 1. A request without `Authorization: NTLM` gets 401 offering
//!    `WWW-Authenticate: NTLM realm="SIP Communications Service", targetname="<domain>",
//!    version=4`.
//! 2. `Authorization: NTLM ... gssapi-data=""` gets 401 with a fresh `opaque` and the
//!    CHALLENGE_MESSAGE (base64) in `gssapi-data`.
//! 3. `Authorization: NTLM opaque=..., gssapi-data=<AUTHENTICATE>` is verified against
//!    the user's NT hash; on success the connection is that user's and holds an SA (a
//!    wrong password: 401, counted by the brute-force guard).
//!
//! On an SA every request must be signed (`crand`, `cnum`, `response`) with the
//! client keys, else 403 and nothing happens; everything the server sends on that
//! connection carries `Authentication-Info` signed with the server keys
//! ([`Auth::sign_outgoing`]). A new handshake (gssapi-data) replaces the SA.

use super::ntlm::{self, Authenticate, NtlmError, SessionKeys};
use super::sipae::{self, Signed, REALM, VERSION};
use super::{Attempt, Auth, Verdict};
use crate::ids::ConnId;
use crate::sip::{response_for, Request};
use base64::Engine as _;
use bytes::Bytes;
use std::collections::BTreeMap;

/// How long a CHALLENGE stays answerable, in ms.
const CHALLENGE_TTL_MS: i64 = 60_000;
/// Most handshakes pending at once (older ones are dropped first).
const MAX_PENDING: usize = 10_000;

#[derive(Debug)]
struct Pending {
    challenge: [u8; 8],
    conn: ConnId,
    issued_ms: i64,
}

#[derive(Debug)]
struct Sa {
    user: String,
    keys: SessionKeys,
    opaque: String,
    snum: u32,
}

/// Handshakes in progress (by `opaque`) and established SAs (by connection).
#[derive(Debug)]
pub(super) struct NtlmState {
    secret: [u8; 32],
    counter: u64,
    target: String,
    pending: BTreeMap<String, Pending>,
    sas: BTreeMap<ConnId, Sa>,
}

impl NtlmState {
    /// State keyed by `secret` (challenges, opaques and `srand` derive from it and a
    /// counter: deterministic for a seed); `domain` is the `targetname`.
    pub(super) fn new(secret: [u8; 32], domain: &str) -> NtlmState {
        NtlmState {
            secret,
            counter: 0,
            target: domain.to_ascii_lowercase(),
            pending: BTreeMap::new(),
            sas: BTreeMap::new(),
        }
    }

    fn next_bytes(&mut self) -> [u8; 32] {
        use sha2::Digest as _;
        self.counter += 1;
        let mut h = sha2::Sha256::new();
        h.update(b"pchat ntlm");
        h.update(self.secret);
        h.update(self.counter.to_le_bytes());
        h.finalize().into()
    }

    pub(super) fn on_closed(&mut self, conn: ConnId) {
        self.sas.remove(&conn);
        self.pending.retain(|_, p| p.conn != conn);
    }

    pub(super) fn purge(&mut self, now_ms: i64) {
        self.pending
            .retain(|_, p| now_ms - p.issued_ms <= CHALLENGE_TTL_MS);
    }

    pub(super) fn pending(&self) -> usize {
        self.pending.len()
    }

    fn offer(&self) -> String {
        format!(
            "NTLM realm=\"{REALM}\", targetname=\"{}\", version={VERSION}",
            self.target
        )
    }
}

impl Auth {
    /// The gate in mode `"ntlm"` (module docs); `from` is the request's From key.
    pub(super) fn ntlm_gate(&mut self, a: &Attempt<'_>) -> Verdict {
        let (conn, req, from, now_ms) = (a.conn, a.req, a.from, a.now_ms);
        let params = req
            .headers
            .get_all("Authorization")
            .filter_map(sipae::parse_params)
            .find(|(scheme, _)| scheme.eq_ignore_ascii_case("NTLM"))
            .map(|(_, p)| p);
        let handshake = params
            .as_ref()
            .is_some_and(|p| p.contains_key("gssapi-data"));
        if let (Some(sa), false) = (self.ntlm.sas.get(&conn), handshake) {
            let signed = Signed::from_lookup(Some(&req.method), None, |n| req.headers.get(n));
            let good = params
                .as_ref()
                .is_some_and(|p| sipae::verify_client(&sa.keys, &signed, p, &self.ntlm.target));
            return if !good {
                Verdict::Refuse(response_for(
                    req,
                    403,
                    "Forbidden: request not signed for this security association",
                ))
            } else if sa.user != from {
                Verdict::Refuse(response_for(
                    req,
                    403,
                    "Forbidden: From is not the user this connection authenticated as",
                ))
            } else {
                Verdict::Pass
            };
        }
        let Some(p) = params else {
            return self.ntlm_refuse(req, self.ntlm.offer(), "Unauthorized");
        };
        let token = p.get("gssapi-data").map(String::as_str).unwrap_or("");
        match p.get("opaque") {
            Some(opaque) if !token.is_empty() => self.ntlm_authenticate(a, &p, opaque, token),
            _ => self.ntlm_challenge(conn, req, now_ms),
        }
    }

    fn ntlm_refuse(&self, req: &Request, www: String, reason: &str) -> Verdict {
        Verdict::Refuse(response_for(req, 401, reason).with_header("WWW-Authenticate", www))
    }

    /// Step 2: a fresh challenge under a fresh `opaque`.
    fn ntlm_challenge(&mut self, conn: ConnId, req: &Request, now_ms: i64) -> Verdict {
        let bytes = self.ntlm.next_bytes();
        let challenge: [u8; 8] = bytes[..8].try_into().unwrap_or_default();
        let opaque = hex::encode_upper(&bytes[8..12]);
        if self.ntlm.pending.len() >= MAX_PENDING {
            if let Some(oldest) = self
                .ntlm
                .pending
                .iter()
                .min_by_key(|(_, p)| p.issued_ms)
                .map(|(k, _)| k.clone())
            {
                self.ntlm.pending.remove(&oldest);
            }
        }
        self.ntlm.pending.insert(
            opaque.clone(),
            Pending {
                challenge,
                conn,
                issued_ms: now_ms,
            },
        );
        let computer = self.ntlm.target.split('.').next().unwrap_or("PCHAT");
        let msg = ntlm::challenge_message(challenge, &computer.to_uppercase(), &self.ntlm.target);
        let www = format!(
            "NTLM opaque=\"{opaque}\", gssapi-data=\"{}\", targetname=\"{}\", realm=\"{REALM}\", version={VERSION}",
            base64::engine::general_purpose::STANDARD.encode(msg),
            self.ntlm.target
        );
        self.ntlm_refuse(req, www, "Unauthorized")
    }

    /// Step 3: verifies the AUTHENTICATE_MESSAGE and, on success, opens the SA.
    fn ntlm_authenticate(
        &mut self,
        a: &Attempt<'_>,
        params: &BTreeMap<String, String>,
        opaque: &str,
        token: &str,
    ) -> Verdict {
        let (conn, req, from, addr, now_ms) = (a.conn, a.req, a.from, a.addr, a.now_ms);
        let pending = match self.ntlm.pending.remove(opaque) {
            Some(p) if p.conn == conn && now_ms - p.issued_ms <= CHALLENGE_TTL_MS => p,
            _ => return self.ntlm_challenge(conn, req, now_ms),
        };
        let parsed = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|_| NtlmError::Malformed("gssapi-data is not base64"))
            .and_then(|b| Authenticate::parse(&b));
        let auth = match parsed {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(%conn, error = %e, "NTLM AUTHENTICATE refused");
                return self.ntlm_refuse(req, self.ntlm.offer(), "Unauthorized: bad NTLM message");
            }
        };
        let (user, key) = match self.unlocked_user(req, &auth.user, addr, now_ms) {
            Ok(found) => found,
            Err(refused) => return refused,
        };
        let keys = user
            .as_ref()
            .and_then(|u| u.nt_hash)
            .ok_or(NtlmError::WrongCredentials)
            .and_then(|h| ntlm::verify(&auth, &pending.challenge, &h));
        let keys = match keys {
            Ok(k) => k,
            Err(e) => {
                tracing::debug!(%conn, user = %key, error = %e, "NTLM authentication failed");
                self.failed(&key, addr, now_ms, "authentication failures");
                return self.ntlm_refuse(req, self.ntlm.offer(), "Unauthorized: wrong credentials");
            }
        };
        if let Err(refused) = self.succeeded(req, &key, from) {
            return refused;
        }
        let signed = Signed::from_lookup(Some(&req.method), None, |n| req.headers.get(n));
        if params.contains_key("response")
            && !sipae::verify_client(&keys, &signed, params, &self.ntlm.target)
        {
            return Verdict::Refuse(response_for(req, 403, "Forbidden: bad message signature"));
        }
        self.ntlm.sas.insert(
            conn,
            Sa {
                user: key.clone(),
                keys,
                opaque: opaque.to_string(),
                snum: 0,
            },
        );
        self.bind_user(conn, key, now_ms);
        Verdict::Pass
    }

    /// Signs a message head about to go out on `conn` when it holds an NTLM SA: the
    /// head with `Authentication-Info` added ([MS-SIPAE] 3.2.5.2.2); `None` otherwise.
    pub fn sign_outgoing(&mut self, conn: ConnId, head: &[u8]) -> Option<Bytes> {
        if !self.ntlm.sas.contains_key(&conn) {
            return None;
        }
        let rand = hex::encode_upper(&self.ntlm.next_bytes()[..4]);
        let target = self.ntlm.target.clone();
        let sa = self.ntlm.sas.get_mut(&conn)?;
        sa.snum += 1;
        let signed = Signed::from_head(std::str::from_utf8(head).ok()?);
        let info = sipae::server_info(&sa.keys, &signed, &rand, sa.snum, &sa.opaque, &target);
        Some(Bytes::from(sipae::insert_info(head, &info)))
    }
}

#[cfg(test)]
mod tests;
