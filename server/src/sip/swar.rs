//! Eight bytes at a time (SWAR: SIMD within a register) for the short scans of the
//! parser - header values, parameters, addresses of 10-60 bytes, where a `memchr`
//! call and its CPU dispatch cost more than the scan. Each helper gives exactly what
//! its byte-by-byte loop gives (proptested below and at the callers).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// Eight bytes of `b` from `i` as a little-endian word, if there are eight.
pub(crate) fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let chunk = b.get(i..i.checked_add(8)?)?;
    <[u8; 8]>::try_from(chunk).ok().map(u64::from_le_bytes)
}

/// The high bit of each byte of `x` that is zero, and only of those (exact).
pub(crate) const fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// Whether all eight bytes of `x` are printable ASCII (0x21-0x7e) and none is one of
/// `except`.
pub(crate) const fn printable_except<const N: usize>(x: u64, except: [u8; N]) -> bool {
    // A byte of 0x7f or above: its high bit, or the carry of +1 sets it (0xff wraps
    // but is caught by `| x`; a carry only adds false alarms, never hides one). A byte
    // below 0x21 or equal to an excluded one: the classic has-zero-byte borrow trick, each
    // term exact as a yes / no, so their union is too.
    let mut bad = x.wrapping_add(ONES) | x;
    bad |= x.wrapping_sub(ONES * 0x21) & !x;
    let mut k = 0;
    while k < N {
        let y = x ^ (ONES * except[k] as u64);
        bad |= y.wrapping_sub(ONES) & !y;
        k += 1;
    }
    bad & HIGH == 0
}

/// The first `c` in `s` (as `s.iter().position`), eight bytes at a time.
pub(crate) fn find_byte(c: u8, s: &[u8]) -> Option<usize> {
    let pat = ONES * u64::from(c);
    let mut i = 0;
    while let Some(x) = word_at(s, i) {
        let z = zero_bytes(x ^ pat);
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s.get(i..)?.iter().position(|&b| b == c).map(|k| i + k)
}

/// The last `c` in `s` (as `s.iter().rposition`), eight bytes at a time.
pub(crate) fn rfind_byte(c: u8, s: &[u8]) -> Option<usize> {
    let pat = ONES * u64::from(c);
    let mut end = s.len();
    while end >= 8 {
        let x = word_at(s, end - 8)?;
        let z = zero_bytes(x ^ pat);
        if z != 0 {
            return Some(end - 8 + (7 - z.leading_zeros() / 8) as usize);
        }
        end -= 8;
    }
    s.get(..end)?.iter().rposition(|&b| b == c)
}

/// `a == b`, eight bytes at a time: no `bcmp` call for the short header names.
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while let (Some(x), Some(y)) = (word_at(a, i), word_at(b, i)) {
        if x != y {
            return false;
        }
        i += 8;
    }
    let (a, b) = (
        a.get(i..).unwrap_or_default(),
        b.get(i..).unwrap_or_default(),
    );
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// For the exhaustive tests of a per-byte word test: every byte `c` at every position
/// `at` of a word of eight `a`s, as `(c, at, word)` (2,048 words).
#[cfg(test)]
pub(crate) fn one_odd_byte() -> impl Iterator<Item = (u8, usize, [u8; 8])> {
    (0..=255u8).flat_map(|c| {
        (0..8).map(move |at| {
            let mut x = [b'a'; 8];
            x[at] = c;
            (c, at, x)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn printable_except_per_byte() {
        for (c, at, mut x) in one_odd_byte() {
            let want = (0x21..0x7f).contains(&c) && c != b'"' && c != b',';
            assert_eq!(printable_except(u64::from_le_bytes(x), [b'"', b',']), want);
            // A second odd byte never hides the first.
            x[(at + 3) % 8] = 0xff;
            assert!(!printable_except(u64::from_le_bytes(x), [b'"']));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn finds_as_the_byte_loops(
            s in proptest::collection::vec(prop_oneof![0u8..3, 0xfeu8..=0xff, any::<u8>()], 0..70),
            c in prop_oneof![0u8..3, 0xfeu8..=0xff],
        ) {
            prop_assert_eq!(find_byte(c, &s), s.iter().position(|&b| b == c));
            prop_assert_eq!(rfind_byte(c, &s), s.iter().rposition(|&b| b == c));
        }

        #[test]
        fn same_bytes_is_eq(a in "[ab]{0,20}", b in "[ab]{0,20}") {
            prop_assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b);
            prop_assert!(same_bytes(a.as_bytes(), a.as_bytes()));
        }

        #[test]
        fn printable_except_is_the_byte_test(x in any::<[u8; 8]>(), bias in 0u8..4) {
            let x = x.map(|b| if bias == 0 { b } else { 0x20 + b % 0x62 });
            let want = x.iter().all(|&b| (0x21..0x7f).contains(&b) && !b"\"\\,<>".contains(&b));
            let got = printable_except(u64::from_le_bytes(x), [b'"', b'\\', b',', b'<', b'>']);
            prop_assert_eq!(got, want);
        }
    }
}
