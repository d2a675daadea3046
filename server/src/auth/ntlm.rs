//! NTLMv2, server side, connectionless (datagram) mode as SIP uses it ([MS-NLMP];
//! [MS-SIPAE] 3.2.5.1): the CHALLENGE_MESSAGE we send, the AUTHENTICATE_MESSAGE we
//! verify against the user's NT hash (`MD4(UTF-16LE(password))`, MS-NLMP 3.3.1), the
//! session keys (3.4.5) and the message signature (MAC, 3.4.4.2) SIP signs with.
//!
//! Built on RustCrypto's `md4`, `md-5`, `hmac` and `rc4`. Only NTLMv2 with extended
//! session security is accepted (no LM, no NTLMv1).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rc4::{consts::U16, KeyInit, Rc4, StreamCipher};

/// NTLMSSP_NEGOTIATE_UNICODE (MS-NLMP 2.2.2.5 flag A).
pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
/// NTLMSSP_REQUEST_TARGET (C).
pub const REQUEST_TARGET: u32 = 0x0000_0004;
/// NTLMSSP_NEGOTIATE_SIGN (D).
pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
/// NTLMSSP_NEGOTIATE_DATAGRAM (F): connectionless; the sealing key is re-derived per
/// message from the sequence number.
pub const NEGOTIATE_DATAGRAM: u32 = 0x0000_0040;
/// NTLMSSP_NEGOTIATE_NTLM (H).
pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
/// NTLMSSP_NEGOTIATE_ALWAYS_SIGN (M).
pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
/// NTLMSSP_TARGET_TYPE_SERVER (O).
pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
/// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY (P).
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
/// NTLMSSP_NEGOTIATE_IDENTIFY (Q).
pub const NEGOTIATE_IDENTIFY: u32 = 0x0010_0000;
/// NTLMSSP_NEGOTIATE_TARGET_INFO (S).
pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
/// NTLMSSP_NEGOTIATE_VERSION (T).
pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
/// NTLMSSP_NEGOTIATE_128 (U).
pub const NEGOTIATE_128: u32 = 0x2000_0000;
/// NTLMSSP_NEGOTIATE_KEY_EXCH (V).
pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
/// NTLMSSP_NEGOTIATE_56 (W).
pub const NEGOTIATE_56: u32 = 0x8000_0000;

/// What our CHALLENGE_MESSAGE offers: connectionless NTLMv2 with signing and key
/// exchange (what SIPE and Lync clients require).
pub const CHALLENGE_FLAGS: u32 = NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_SIGN
    | NEGOTIATE_DATAGRAM
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | TARGET_TYPE_SERVER
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_IDENTIFY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_VERSION
    | NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH
    | NEGOTIATE_56;

/// The sequence number SIP signatures use: always 100 ([MS-SIPAE] 3.2.5.2.2; what
/// OCS and SIPE do).
pub const SIP_SEQUENCE: u32 = 100;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Why an NTLM message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NtlmError {
    /// Not an NTLMSSP message of the expected type, or a field out of bounds.
    #[error("malformed NTLM message: {0}")]
    Malformed(&'static str),
    /// Not NTLMv2 with extended session security.
    #[error("unsupported NTLM variant: {0}")]
    Unsupported(&'static str),
    /// NTProofStr does not match: wrong password (or user, domain, challenge).
    #[error("wrong credentials")]
    WrongCredentials,
}

type HmacMd5 = Hmac<Md5>;

/// HMAC-MD5 of the concatenation of `parts` under `key` (RFC 2104).
pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length: new_from_slice cannot fail.
    let mut mac = <HmacMd5 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RC4 with a 16-byte key over `data` (RC4K in MS-NLMP 6).
pub fn rc4k(key: &[u8; 16], data: &mut [u8]) {
    let mut c = Rc4::<U16>::new(key.into());
    c.apply_keystream(data);
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16le(b: &[u8]) -> Result<String, NtlmError> {
    if !b.len().is_multiple_of(2) {
        return Err(NtlmError::Malformed("odd UTF-16 length"));
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| NtlmError::Malformed("invalid UTF-16"))
}

/// The NT hash: `MD4(UTF-16LE(password))` (MS-NLMP 3.3.1 NTOWFv1).
pub fn nt_hash(password: &str) -> [u8; 16] {
    use md4::Md4;
    Md4::digest(utf16le(password)).into()
}

/// NTOWFv2: `HMAC_MD5(nt_hash, UTF-16LE(Uppercase(user) + domain))` (MS-NLMP 3.3.2).
pub fn ntowf_v2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let who = utf16le(&format!("{}{domain}", user.to_uppercase()));
    hmac_md5(nt_hash, &[&who])
}

fn av_pair(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// A CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) with [`CHALLENGE_FLAGS`], `server_challenge`,
/// target name `computer` and TargetInfo (NetBIOS domain and computer names, DNS
/// domain and computer names; no timestamp, so no MIC is expected).
pub fn challenge_message(server_challenge: [u8; 8], computer: &str, domain: &str) -> Vec<u8> {
    let name = utf16le(computer);
    let mut info = Vec::new();
    av_pair(&mut info, 2, &utf16le(&domain.to_uppercase()));
    av_pair(&mut info, 1, &name);
    av_pair(&mut info, 4, &utf16le(domain));
    av_pair(&mut info, 3, &name);
    av_pair(&mut info, 0, &[]);
    let mut m = Vec::with_capacity(56 + name.len() + info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    let fields = |m: &mut Vec<u8>, len: usize, offset: usize| {
        m.extend_from_slice(&(len as u16).to_le_bytes());
        m.extend_from_slice(&(len as u16).to_le_bytes());
        m.extend_from_slice(&(offset as u32).to_le_bytes());
    };
    fields(&mut m, name.len(), 56);
    m.extend_from_slice(&CHALLENGE_FLAGS.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]);
    fields(&mut m, info.len(), 56 + name.len());
    // Version: 6.1.7600, NTLMSSP_REVISION_W2K3.
    m.extend_from_slice(&[6, 1, 0xb0, 0x1d, 0, 0, 0, 0x0f]);
    m.extend_from_slice(&name);
    m.extend_from_slice(&info);
    m
}

/// The fields of an AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3) we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    /// NegotiateFlags as the client sent them (they govern signing).
    pub flags: u32,
    /// NtChallengeResponse: NTProofStr (16 bytes) + the client's blob.
    pub nt_response: Vec<u8>,
    /// DomainName (may be empty).
    pub domain: String,
    /// UserName as sent (`user`, or `user@domain`).
    pub user: String,
    /// EncryptedRandomSessionKey (16 bytes with KEY_EXCH, else empty).
    pub encrypted_session_key: Vec<u8>,
}

fn field(m: &[u8], at: usize) -> Result<&[u8], NtlmError> {
    let hdr = m
        .get(at..at + 8)
        .ok_or(NtlmError::Malformed("truncated header"))?;
    let len = usize::from(u16::from_le_bytes([hdr[0], hdr[1]]));
    let off = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
    m.get(off..off.saturating_add(len))
        .ok_or(NtlmError::Malformed("field out of bounds"))
}

impl Authenticate {
    /// Parses an AUTHENTICATE_MESSAGE. Errors: [`NtlmError::Malformed`] for a wrong
    /// signature or type, a field outside the message, or a non-Unicode message.
    pub fn parse(m: &[u8]) -> Result<Authenticate, NtlmError> {
        if m.len() < 64 || &m[..8] != SIGNATURE || m[8..12] != 3u32.to_le_bytes() {
            return Err(NtlmError::Malformed("not an AUTHENTICATE_MESSAGE"));
        }
        let flags = u32::from_le_bytes([m[60], m[61], m[62], m[63]]);
        if flags & NEGOTIATE_UNICODE == 0 {
            return Err(NtlmError::Unsupported("OEM strings"));
        }
        Ok(Authenticate {
            flags,
            nt_response: field(m, 20)?.to_vec(),
            domain: from_utf16le(field(m, 28)?)?,
            user: from_utf16le(field(m, 36)?)?,
            encrypted_session_key: field(m, 52)?.to_vec(),
        })
    }
}

/// The keys of an established NTLM security association (MS-NLMP 3.4.5).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// The negotiated flags (the AUTHENTICATE_MESSAGE's).
    pub flags: u32,
    /// ClientSigningKey: verifies what the client signs.
    pub client_sign: [u8; 16],
    /// ClientSealingKey.
    pub client_seal: [u8; 16],
    /// ServerSigningKey: signs what we send.
    pub server_sign: [u8; 16],
    /// ServerSealingKey.
    pub server_seal: [u8; 16],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("flags", &format_args!("{:#010x}", self.flags))
            .finish_non_exhaustive()
    }
}

fn sign_key(session_key: &[u8; 16], client: bool) -> [u8; 16] {
    let magic: &[u8] = if client {
        b"session key to client-to-server signing key magic constant\0"
    } else {
        b"session key to server-to-client signing key magic constant\0"
    };
    md5(&[session_key, magic])
}

fn seal_key(flags: u32, session_key: &[u8; 16], client: bool) -> [u8; 16] {
    let magic: &[u8] = if client {
        b"session key to client-to-server sealing key magic constant\0"
    } else {
        b"session key to server-to-client sealing key magic constant\0"
    };
    let len = if flags & NEGOTIATE_128 != 0 {
        16
    } else if flags & NEGOTIATE_56 != 0 {
        7
    } else {
        5
    };
    md5(&[&session_key[..len], magic])
}

/// Verifies `auth` for our `server_challenge` with the user's `nt_hash` (NTLMv2,
/// MS-NLMP 3.3.2 and 3.2.5.1.2) and derives the session keys. Errors:
/// [`NtlmError::Unsupported`] without extended session security or with an NTLMv1
/// response; [`NtlmError::WrongCredentials`] when NTProofStr does not match.
pub fn verify(
    auth: &Authenticate,
    server_challenge: &[u8; 8],
    nt_hash: &[u8; 16],
) -> Result<SessionKeys, NtlmError> {
    if auth.flags & NEGOTIATE_EXTENDED_SESSIONSECURITY == 0 {
        return Err(NtlmError::Unsupported("no extended session security"));
    }
    if auth.nt_response.len() < 16 + 28 {
        return Err(NtlmError::Unsupported("not an NTLMv2 response"));
    }
    let (proof, blob) = auth.nt_response.split_at(16);
    let key_nt = ntowf_v2(nt_hash, &auth.user, &auth.domain);
    let expected = hmac_md5(&key_nt, &[server_challenge, blob]);
    if !super::digest::same(&hex::encode(expected), &hex::encode(proof)) {
        return Err(NtlmError::WrongCredentials);
    }
    let session_base_key = hmac_md5(&key_nt, &[proof]);
    let mut exported = session_base_key;
    if auth.flags & NEGOTIATE_KEY_EXCH != 0 {
        let enc: [u8; 16] = auth
            .encrypted_session_key
            .as_slice()
            .try_into()
            .map_err(|_| NtlmError::Malformed("EncryptedRandomSessionKey is not 16 bytes"))?;
        exported = enc;
        rc4k(&session_base_key, &mut exported);
    }
    Ok(keys_from_session(auth.flags, &exported))
}

/// The signing and sealing keys of both directions from the ExportedSessionKey
/// (MS-NLMP 3.4.5.2 SIGNKEY, 3.4.5.3 SEALKEY).
pub fn keys_from_session(flags: u32, exported: &[u8; 16]) -> SessionKeys {
    SessionKeys {
        flags,
        client_sign: sign_key(exported, true),
        client_seal: seal_key(flags, exported, true),
        server_sign: sign_key(exported, false),
        server_seal: seal_key(flags, exported, false),
    }
}

/// A payload field (len, maxlen, offset at `at`) of an NTLM message, for tests.
#[cfg(test)]
pub(crate) fn tests_field(m: &[u8], at: usize) -> Vec<u8> {
    field(m, at).map(<[u8]>::to_vec).unwrap_or_default()
}

/// The 16-byte NTLMSSP_MESSAGE_SIGNATURE of `message` (MS-NLMP 3.4.4.2, extended
/// session security): version 1, `HMAC_MD5(sign, seq || message)[..8]` (RC4-encrypted
/// with the sealing key - per message `MD5(seal || seq)` in datagram mode - when keys
/// were exchanged), `seq`.
pub fn mac(flags: u32, sign: &[u8; 16], seal: &[u8; 16], seq: u32, message: &[u8]) -> [u8; 16] {
    let seq_le = seq.to_le_bytes();
    let hmac = hmac_md5(sign, &[&seq_le, message]);
    let mut checksum: [u8; 8] = [0; 8];
    checksum.copy_from_slice(&hmac[..8]);
    if flags & NEGOTIATE_KEY_EXCH != 0 {
        let key = if flags & NEGOTIATE_DATAGRAM != 0 {
            md5(&[seal, &seq_le])
        } else {
            *seal
        };
        rc4k(&key, &mut checksum);
    }
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&1u32.to_le_bytes());
    out[4..12].copy_from_slice(&checksum);
    out[12..].copy_from_slice(&seq_le);
    out
}

#[cfg(test)]
mod tests;
