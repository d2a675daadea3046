//! Identifiers the server mints: dialog tags, Via branches, Call-IDs, envids, room GUIDs.
//! Determinism rule (DESIGN.md): everything random comes from a seeded RNG handed in by
//! the host; room GUIDs from config are name-based (UUID v5) so a room keeps its URI.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Namespace of name-based room GUIDs (UUID v5 over `"<domain>/<lower-case name>"`).
const ROOM_NS: uuid::Uuid = uuid::Uuid::from_u128(0x5c1b_7a2e_9d34_4f0a_8e61_c0ff_ee00_c4a7);

/// Defines a distinct `u64` identifier newtype (so a connection id cannot be passed
/// where a dialog id is expected): `Copy`, ordered (it keys `BTreeMap`s), printed as the
/// bare number.
macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The largest id: never assigned, used as "none of them".
            pub const MAX: $name = $name(u64::MAX);
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_newtype!(
    /// One transport connection, assigned by the I/O driver (`crate::host`) in accept
    /// order from 1.
    ConnId
);
id_newtype!(
    /// One dialog (an INVITE session), assigned by the core in creation order from 1.
    DialogId
);
id_newtype!(
    /// One web services request, assigned by the I/O driver; its `Action::Http` answer
    /// carries the same id.
    HttpReqId
);

/// Seeded generator of protocol identifiers. Fixed-length output keeps transcripts'
/// Content-Length stable across seeds.
#[derive(Debug, Clone)]
pub struct IdGen {
    rng: ChaCha8Rng,
}

impl IdGen {
    /// A generator seeded with `seed` (same seed, same identifiers).
    pub fn new(seed: u64) -> IdGen {
        IdGen {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Appends `bytes` random bytes as lower-case hex (one `next_u32` per byte).
    fn push_hex(&mut self, s: &mut String, bytes: usize) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for _ in 0..bytes {
            let b = self.rng.next_u32() as u8;
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
    }

    /// The 16 hex digits of a branch (what [`IdGen::branch`] puts after the cookie),
    /// without allocating; draws exactly what `branch` draws.
    pub(crate) fn branch_digits(&mut self) -> [u8; 16] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for pair in out.chunks_exact_mut(2) {
            let b = self.rng.next_u32() as u8;
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        out
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        self.push_hex(&mut s, bytes);
        s
    }

    /// A dialog tag (RFC 3261 19.3): 16 hex digits.
    pub fn tag(&mut self) -> String {
        self.hex(8)
    }

    /// A Via branch with the RFC 3261 magic cookie: `z9hG4bK` + 16 hex digits.
    pub fn branch(&mut self) -> String {
        let mut s = String::with_capacity(23);
        s.push_str("z9hG4bK");
        self.push_hex(&mut s, 8);
        s
    }

    /// A Call-ID (RFC 3261 8.1.1.4): 32 hex digits.
    pub fn call_id(&mut self) -> String {
        self.hex(16)
    }

    /// A random envid start in 1,000,000..9,000,000 (XCCOS.md: "incremented per message
    /// from a random start"); always seven digits.
    pub fn envid_start(&mut self) -> u64 {
        self.rng.gen_range(1_000_000..9_000_000)
    }

    /// A random RFC 4122 version-4-shaped GUID, lower case.
    pub fn guid(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }
}

/// The stable GUID of a room named `name` in `domain` (case-insensitive on the name).
pub fn room_guid(domain: &str, name: &str) -> String {
    let key = format!("{}/{}", domain.to_lowercase(), name.trim().to_lowercase());
    uuid::Uuid::new_v5(&ROOM_NS, key.as_bytes()).to_string()
}

/// `ma-chan://<domain>/<guid>` (XCCOS.md, Identifiers).
pub fn room_uri(domain: &str, guid: &str) -> String {
    format!("ma-chan://{domain}/{guid}")
}

/// Splits `ma-chan://<domain>/<guid>` into (domain, guid); `None` if not of that form.
pub fn split_room_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("ma-chan://")?;
    let (domain, guid) = rest.split_once('/')?;
    if domain.is_empty() || guid.is_empty() || guid.contains('/') {
        return None;
    }
    Some((domain, guid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids() {
        let (mut a, mut b) = (IdGen::new(7), IdGen::new(7));
        assert_eq!(a.tag(), b.tag());
        assert_eq!(a.call_id(), b.call_id());
        assert_ne!(IdGen::new(8).tag(), IdGen::new(7).tag());
        assert_eq!(a.branch().len(), 7 + 16);
        assert_eq!(a.envid_start().to_string().len(), 7);
    }

    #[test]
    fn branch_digits_draw_what_branch_draws() {
        let (mut a, mut b) = (IdGen::new(3), IdGen::new(3));
        for _ in 0..4 {
            let digits = a.branch_digits();
            assert_eq!(
                format!("z9hG4bK{}", std::str::from_utf8(&digits).unwrap()),
                b.branch()
            );
        }
        assert_eq!(a.tag(), b.tag(), "same number of draws");
        // Same digits as the `{:02x}` formatting the transcripts were recorded with.
        let mut c = IdGen::new(5);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let expected: String = (0..8)
            .map(|_| format!("{:02x}", rng.next_u32() as u8))
            .collect();
        assert_eq!(c.tag(), expected);
    }

    #[test]
    fn room_guid_is_stable_and_case_insensitive() {
        assert_eq!(
            room_guid("contoso.com", "Design"),
            room_guid("contoso.com", "design")
        );
        assert_ne!(
            room_guid("contoso.com", "Design"),
            room_guid("fabrikam.com", "Design")
        );
        let uri = room_uri("contoso.com", &room_guid("contoso.com", "Design"));
        let (d, g) = split_room_uri(&uri).unwrap();
        assert_eq!(d, "contoso.com");
        assert_eq!(g.len(), 36);
        assert_eq!(split_room_uri("ma-chan://x"), None);
        assert_eq!(split_room_uri("sip:a@b"), None);
    }
}
