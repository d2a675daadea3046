//! The checks of `validate` (address, Via) and `typed::CSeq::parse` as they were
//! before their byte-level fast paths (main `abe5034`), kept as the reference the
//! proptests below compare the fast paths with on arbitrary input: same result, same
//! error text. (The others changed only by `normalize::trim`, `memchr` for `find` and
//! byte tables, which have proptests and table tests of their own.)
#![allow(dead_code)]

use super::normalize::is_token_byte;
use super::ParseError;

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

fn split_display(value: &str) -> Result<(&str, Option<&str>), ParseError> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c == '"' {
            quoted = true;
        } else if c == '<' {
            return Ok((&value[..i], Some(&value[i..])));
        }
    }
    if quoted {
        return Err(ParseError::new("unterminated quoted string"));
    }
    Ok((value, None))
}

/// A display name: empty, one quoted string, or tokens separated by white space
/// (RFC 3261 25.1 `display-name`; RFC 4475 3.1.2.15 rejects unquoted `Bell, Alexander`).
fn display_name_ok(d: &str) -> bool {
    let d = d.trim();
    if d.starts_with('"') {
        return d.len() >= 2 && d.ends_with('"');
    }
    d.split_whitespace().all(|t| t.bytes().all(is_token_byte))
}

/// Header parameters (`;name[=value]`, RFC 3261 25.1 `generic-param`): none empty.
fn params_ok(params: &str) -> bool {
    params.is_empty()
        || (params.starts_with(';') && params[1..].split(';').all(|p| !p.trim().is_empty()))
}

/// Checks one name-addr / addr-spec value (after normalization: one value, LWS around
/// separators removed). Errors name the defect: unterminated quote, unquoted display
/// name with separators, white space inside `<>`, an addr-spec with `?headers` or
/// white space (it must then be a name-addr, RFC 4475 3.1.2.13), empty parameters.
pub fn address(name: &str, value: &str) -> Result<(), ParseError> {
    if name == "Contact" && value.trim() == "*" {
        return Ok(());
    }
    let bad = |what: &str| Err(ParseError::new(format!("malformed {name}: {what}")));
    let (display, angle) = split_display(value)
        .map_err(|e| ParseError::new(format!("malformed {name}: {}", e.reason)))?;
    match angle {
        Some(rest) => {
            let Some(end) = rest.find('>') else {
                return bad("'<' without '>'");
            };
            let inner = &rest[1..end];
            if !display_name_ok(display) {
                return bad("display name must be a token list or a quoted string");
            }
            if inner.is_empty() || inner.trim() != inner || inner.contains(char::is_whitespace) {
                return bad("white space inside <>");
            }
            if !params_ok(rest[end + 1..].trim()) {
                return bad("empty parameter");
            }
        }
        None => {
            let v = display.trim();
            if v.contains(char::is_whitespace) {
                return bad("white space in an addr-spec (name-addr needs <>)");
            }
            let after_user = v.rfind('@').map_or(v, |at| &v[at + 1..]);
            if after_user.contains('?') {
                return bad("a URI with headers must be enclosed in <>");
            }
            if let Some(i) = after_user.find(';') {
                if !params_ok(&after_user[i..]) {
                    return bad("empty parameter");
                }
            }
        }
    }
    Ok(())
}

/// Checks one Via value: `SIP/2.0/<transport> <sent-by>` and no empty parameter
/// (RFC 4475 3.1.2.1).
pub fn via(value: &str) -> Result<(), ParseError> {
    let (proto, rest) = value.split_once(' ').unwrap_or((value, ""));
    if proto.split('/').count() != 3 || rest.trim().is_empty() {
        return Err(ParseError::new(format!("malformed Via {:?}", clip(value))));
    }
    let params = rest.find(';').map_or("", |i| &rest[i..]);
    if !params_ok(params) {
        return Err(ParseError::new("malformed Via: empty parameter"));
    }
    Ok(())
}

/// `typed::CSeq::parse` as (number, method): `1*DIGIT LWS Method`, two words.
pub fn cseq(value: &str) -> Option<(u32, &str)> {
    let mut it = value.split_whitespace();
    let num = it.next()?.parse().ok()?;
    let method = it.next()?;
    it.next().is_none().then_some((num, method))
}

/// `normalize::classify` as a linear search of `KNOWN` (main `440a462` looked up
/// names of the same length; session 8 hashes length and first and last bytes).
pub(super) fn classify(name: &str) -> super::normalize::Class {
    use super::normalize::{expand_compact, Class, F_ADDRESS, F_LIST, KNOWN};
    let unknown = Class {
        slot: 0,
        spelling: None,
        flags: 0,
    };
    if let Some(long) = expand_compact(name) {
        return match KNOWN.iter().position(|kn| kn.name == long) {
            Some(i) => Class {
                slot: i as u8 + 1,
                spelling: Some(long),
                flags: KNOWN[i].flags,
            },
            None => unknown,
        };
    }
    for (i, kn) in KNOWN.iter().enumerate() {
        if kn.name.eq_ignore_ascii_case(name) {
            let exact = kn.canon || kn.name == name;
            return Class {
                slot: i as u8 + 1,
                spelling: kn.canon.then_some(kn.name),
                flags: if exact {
                    kn.flags
                } else {
                    kn.flags & !(F_LIST | F_ADDRESS)
                },
            };
        }
    }
    unknown
}

/// The header-section reader of `440a462` (main before session 8's one-pass line
/// reader, `super::lines`): `lines::read_headers` must give the same headers (names,
/// values, slots, flags) or the same error on any input.
pub(super) mod reader {
    use super::super::headers::{Headers, Span};
    use super::super::normalize::{
        classify, find_byte, is_tight, is_token_byte, split_top_level, tighten, trim, Class,
        F_FREE, F_LIST,
    };
    use super::super::ParseError;

    fn clip(s: &str) -> String {
        s.chars().take(60).collect()
    }

    /// A header whose value is still being read (it may continue on folded lines).
    struct Pending {
        class: Class,
        name: Span,
        value: Span,
        /// The value joined with its continuation lines, when there were any.
        joined: Option<String>,
    }

    /// Ends `p`: applies RFC 3261 25.1 `SWS` rules unless the header is free text, splits
    /// comma lists of [`LIST_HEADERS`] into one header each (7.3.1), and appends it.
    fn finish(h: &mut Headers, p: Pending) {
        let free = p.class.flags & F_FREE != 0;
        let list = p.class.flags & F_LIST != 0;
        let value = match p.joined {
            Some(j) if free || is_tight(&j) => h.store(&j),
            Some(j) => h.store(&tighten(&j)),
            None if free || is_tight(h.slice_of(p.value)) => p.value,
            None => {
                let t = tighten(h.slice_of(p.value));
                h.store(&t)
            }
        };
        if list {
            h.push_list(p.class, p.name, value, split_top_level);
        } else {
            h.push_span(p.class, p.name, value);
        }
    }

    /// The offset of `part` (a slice of `whole`) in `whole`.
    fn offset_in(whole: &str, part: &str) -> usize {
        (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
    }

    /// The lines of `text` as `text.split("\r\n")` gives them, found with `memchr`.
    fn crlf_lines(text: &str) -> impl Iterator<Item = &str> {
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let mut from = start;
            let end = loop {
                match find_byte(b'\n', &bytes[from..]) {
                    Some(i) if from + i > start && bytes[from + i - 1] == b'\r' => {
                        break from + i - 1
                    }
                    Some(i) => from += i + 1,
                    None => {
                        done = true;
                        break bytes.len();
                    }
                }
            };
            // `end` is at a CR (ASCII) or the end, `start` after an LF: char boundaries.
            let line = text.get(start..end).unwrap_or_default();
            start = end + 2;
            Some(line)
        })
    }

    /// `s.trim_end_matches([' ', '\t'])`, byte-wise.
    fn trim_end_sp_tab(s: &str) -> &str {
        let b = s.as_bytes();
        let mut j = b.len();
        while j > 0 && matches!(b[j - 1], b' ' | b'\t') {
            j -= 1;
        }
        // `j` is next to an ASCII byte or 0: a char boundary.
        s.get(..j).unwrap_or_default()
    }

    /// Reads the header section `head` (start line included, final empty line excluded)
    /// in one pass: unfolds continuation lines (RFC 3261 7.3.1), expands compact names
    /// (7.3.3), trims white space around the colon, applies `SWS` (25.1). Values that need
    /// no change stay spans of the received text. Errors name the defect.
    pub(crate) fn read_headers(head: &str) -> Result<(&str, Headers), ParseError> {
        let start_end = crlf_lines(head).next().map_or(head.len(), str::len);
        let start = &head[..start_end];
        if start.is_empty() || start.starts_with([' ', '\t']) {
            return Err(ParseError::new(
                "start line is empty or begins with whitespace",
            ));
        }
        let mut h = Headers::with_text(head.to_owned(), 16);
        let mut pending: Option<Pending> = None;
        for (n, line) in crlf_lines(&head[start_end..]).skip(1).enumerate() {
            if line.starts_with([' ', '\t']) {
                // Folded continuation (7.3.1): replaced by a single SP.
                let Some(p) = pending.as_mut() else {
                    return Err(ParseError::new("continuation line before any header"));
                };
                let cont = line.trim();
                if !cont.is_empty() {
                    let joined = p
                        .joined
                        .get_or_insert_with(|| h.slice_of(p.value).to_owned());
                    if !joined.is_empty() {
                        joined.push(' ');
                    }
                    joined.push_str(cont);
                }
                continue;
            }
            if let Some(p) = pending.take() {
                finish(&mut h, p);
            }
            let Some((name, value)) = find_byte(b':', line.as_bytes()).map(|i| {
                (
                    line.get(..i).unwrap_or_default(),
                    line.get(i + 1..).unwrap_or_default(),
                )
            }) else {
                return Err(ParseError::new(format!(
                    "header line {} has no colon: {:?}",
                    n + 2,
                    clip(line)
                )));
            };
            let name = trim_end_sp_tab(name);
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(ParseError::new(format!(
                    "invalid header name {:?}",
                    clip(name)
                )));
            }
            let value = trim(value);
            let at = offset_in(head, value);
            let name_at = offset_in(head, name);
            pending = Some(Pending {
                class: classify(name),
                name: Span::new(name_at, name_at + name.len()),
                value: Span::new(at, at + value.len()),
                joined: None,
            });
        }
        if let Some(p) = pending.take() {
            finish(&mut h, p);
        }
        Ok((start, h))
    }
}

mod agree {
    use super::super::{typed, validate};
    use proptest::prelude::*;

    /// Values built from the bytes the checks look at, ASCII white space of every
    /// kind, and multi-byte characters (one of them Unicode white space).
    const VALUE: &str = "[a-c0-9 \\t\\u{b}\\u{a0}é\"\\\\<>;=@?:/,.*%\\[\\]+-]{0,24}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn address_and_via_checks(v in VALUE, name in "(From|Contact|Route)") {
            prop_assert_eq!(validate::address(&name, &v), super::address(&name, &v));
            prop_assert_eq!(validate::via(&v), super::via(&v));
        }

        #[test]
        fn cseq(v in VALUE, n in "[0-9+]{0,3}") {
            let cseq = format!("{n}{v}");
            let fast = typed::CSeq::parse(&cseq).map(|c| (c.num, c.method));
            prop_assert_eq!(fast, super::cseq(&cseq));
        }
    }
}
