//! The header section read in one pass per line (RFC 3261 7.3.1, 7.3.3, 25.1 `SWS`):
//! for the usual line - a `token` name, optional white space, `:`, then a value of
//! printable ASCII without quotes, commas or tabs, ended by CRLF - one byte loop finds
//! the name, the colon, the value's trimmed ends and the line end, and decides whether
//! the value is already tight (no white space to remove around `/ ; =`), so the value
//! is never walked again to be trimmed, checked for tightness or split as a list. Any
//! other line (folded, quoted, non-ASCII, a comma list, malformed) takes the general
//! path, which gives the same headers or the same error as the reader it replaced
//! (`sip::reference::reader`, compared on arbitrary input by a proptest).

use super::headers::{Headers, Span};
use super::normalize::{
    classify, find_byte, is_tight, is_token_byte, split_top_level, tighten, trim, Class, F_FREE,
    F_LIST,
};
use super::ParseError;

/// The bytes of a value the fast path reads in one run: printable ASCII but the space,
/// `"` and `,` (a space is checked against its neighbours, a CR ends the line, any other
/// byte sends the line to the general path).
static IN_RUN: [bool; 256] = in_run();

const fn in_run() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0x21;
    while c < 0x7f {
        t[c] = c != b'"' as usize && c != b',' as usize;
        c += 1;
    }
    t
}

/// Whether all eight bytes of `x` (little-endian) are [`IN_RUN`] bytes: none below
/// 0x21, none 0x7f or above, none `"` or `,`.
const fn all_in_run(x: u64) -> bool {
    super::swar::printable_except(x, [b'"', b','])
}

/// The end of the run of [`IN_RUN`] bytes starting at `i`: eight bytes at a time, then
/// byte by byte (the same result as the plain byte loop, proptested).
fn skip_run(b: &[u8], mut i: usize) -> usize {
    while let Some(x) = super::swar::word_at(b, i) {
        if !all_in_run(x) {
            break;
        }
        i += 8;
    }
    while i < b.len() && IN_RUN[usize::from(b[i])] {
        i += 1;
    }
    i
}

/// The separators around which `SWS` is not significant (RFC 3261 25.1), and the space.
fn sep_or_space(c: Option<&u8>) -> bool {
    matches!(c, Some(b'/' | b';' | b'=' | b' '))
}

/// A header line read on the fast path (offsets in the header section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Simple {
    name_end: usize,
    value: (usize, usize),
    /// Whether `normalize::tighten` would leave the value as it is.
    tight: bool,
    /// Where the next line starts; `None` for the last line.
    next: Option<usize>,
}

/// Reads the line starting at `start` on the fast path, or `None` when it is not a
/// simple line (see the module docs): the caller then reads it on the general path.
fn simple_line(b: &[u8], start: usize) -> Option<Simple> {
    let mut i = start;
    while i < b.len() && is_token_byte(b[i]) {
        i += 1;
    }
    let name_end = i;
    if name_end == start {
        return None;
    }
    while i < b.len() && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let value_start = i;
    // `end`: after the last byte that is not a space. `bad`: the second byte of the
    // first pair (space, space), (space, separator) or (separator, space); the value
    // is tight unless such a pair lies inside it (trailing spaces are trimmed).
    let (mut end, mut bad) = (i, usize::MAX);
    let next = loop {
        let run = i;
        i = skip_run(b, i);
        if i > run {
            end = i;
        }
        match b.get(i) {
            None => break None,
            Some(b' ') => {
                // The value starts after a colon and not with a space: `i - 1` is in.
                if sep_or_space(b.get(i.wrapping_sub(1))) {
                    bad = bad.min(i);
                }
                if sep_or_space(b.get(i + 1)) && b.get(i + 1) != Some(&b' ') {
                    bad = bad.min(i + 1);
                }
            }
            Some(b'\r') if b.get(i + 1) == Some(&b'\n') => break Some(i + 2),
            Some(_) => return None,
        }
        i += 1;
    };
    Some(Simple {
        name_end,
        value: (value_start, end),
        tight: bad >= end,
        next,
    })
}

/// The end of the line starting at `start`: the offset of the first CRLF at or after
/// it (as `text.split("\r\n")` cuts), `None` when the line runs to the end.
fn crlf_end(b: &[u8], start: usize) -> Option<usize> {
    let mut from = start;
    loop {
        let i = find_byte(b'\n', b.get(from..)?)?;
        if from + i > start && b[from + i - 1] == b'\r' {
            return Some(from + i - 1);
        }
        from += i + 1;
    }
}

/// A header whose value is still being read (it may continue on folded lines).
struct Pending {
    class: Class,
    name: Span,
    value: Span,
    /// The value joined with its continuation lines, when there were any.
    joined: Option<String>,
    /// Read on the fast path: whether the value is tight (it holds no comma).
    tight: Option<bool>,
}

/// Ends `p`: applies RFC 3261 25.1 `SWS` rules unless the header is free text, splits
/// comma lists (`normalize::LIST_HEADERS`) into one header each (7.3.1), appends it.
fn finish(h: &mut Headers, p: Pending) {
    let free = p.class.flags & F_FREE != 0;
    let list = p.class.flags & F_LIST != 0;
    // A fast-path value without continuation: trimmed, no comma (also once tightened).
    let one_value = p.joined.is_none() && p.tight.is_some();
    let value = match p.joined {
        Some(j) if free || is_tight(&j) => h.store(&j),
        Some(j) => h.store(&tighten(&j)),
        None if free || p.tight.unwrap_or_else(|| is_tight(h.slice_of(p.value))) => p.value,
        None => {
            let t = tighten(h.slice_of(p.value));
            h.store(&t)
        }
    };
    if list && !one_value {
        h.push_list(p.class, p.name, value, split_top_level);
    } else {
        h.push_span(p.class, p.name, value);
    }
}

/// The offset of `part` (a slice of `whole`) in `whole`.
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
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

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Reads one line on the general path: a continuation of `pending` (7.3.1), or a new
/// header (the pending one is finished first). `n` counts header lines from 0.
fn general_line(
    head: &str,
    h: &mut Headers,
    pending: &mut Option<Pending>,
    line: &str,
    n: usize,
) -> Result<(), ParseError> {
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
        return Ok(());
    }
    if let Some(p) = pending.take() {
        finish(h, p);
    }
    let Some(colon) = find_byte(b':', line.as_bytes()) else {
        return Err(ParseError::new(format!(
            "header line {} has no colon: {:?}",
            n + 2,
            clip(line)
        )));
    };
    let name = trim_end_sp_tab(line.get(..colon).unwrap_or_default());
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ParseError::new(format!(
            "invalid header name {:?}",
            clip(name)
        )));
    }
    let value = trim(line.get(colon + 1..).unwrap_or_default());
    let (at, name_at) = (offset_in(head, value), offset_in(head, name));
    *pending = Some(Pending {
        class: classify(name),
        name: Span::new(name_at, name_at + name.len()),
        value: Span::new(at, at + value.len()),
        joined: None,
        tight: None,
    });
    Ok(())
}

/// Reads the header section `head` (start line included, final empty line excluded)
/// in one pass: unfolds continuation lines (RFC 3261 7.3.1), expands compact names
/// (7.3.3), trims white space around the colon, applies `SWS` (25.1). Values that need
/// no change stay spans of the received text. Returns the start line and the headers;
/// errors name the defect.
pub(crate) fn read_headers(head: &str) -> Result<(&str, Headers), ParseError> {
    let b = head.as_bytes();
    let start_end = crlf_end(b, 0).unwrap_or(b.len());
    let start = head.get(..start_end).unwrap_or_default();
    if start.is_empty() || start.starts_with([' ', '\t']) {
        return Err(ParseError::new(
            "start line is empty or begins with whitespace",
        ));
    }
    let mut h = Headers::with_text(head.to_owned(), 16);
    let mut pending: Option<Pending> = None;
    let mut at = (start_end < b.len()).then_some(start_end + 2);
    let mut n = 0;
    while let Some(line_start) = at {
        let folded = matches!(b.get(line_start), Some(b' ' | b'\t'));
        if let Some(s) = (!folded).then(|| simple_line(b, line_start)).flatten() {
            if let Some(p) = pending.take() {
                finish(&mut h, p);
            }
            let name = head.get(line_start..s.name_end).unwrap_or_default();
            pending = Some(Pending {
                class: classify(name),
                name: Span::new(line_start, s.name_end),
                value: Span::new(s.value.0, s.value.1),
                joined: None,
                tight: Some(s.tight),
            });
            at = s.next;
        } else {
            let end = crlf_end(b, line_start);
            let line = head
                .get(line_start..end.unwrap_or(b.len()))
                .unwrap_or_default();
            general_line(head, &mut h, &mut pending, line, n)?;
            at = end.map(|e| e + 2);
        }
        n += 1;
    }
    if let Some(p) = pending.take() {
        finish(&mut h, p);
    }
    Ok((start, h))
}

#[cfg(test)]
mod tests {
    use super::super::reference::reader;
    use super::super::swar::one_odd_byte;
    use super::*;
    use proptest::prelude::*;

    type Flagged = Vec<(u8, u8, String, String)>;

    fn flagged(r: Result<(&str, Headers), ParseError>) -> Result<(String, Flagged), ParseError> {
        r.map(|(start, h)| {
            let all = h
                .iter_flagged()
                .map(|(s, f, n, v)| (s, f, n.to_string(), v.to_string()))
                .collect();
            (start.to_string(), all)
        })
    }

    #[test]
    fn simple_lines() {
        let b = b"Via: SIP/2.0/TCP h;branch=1  \r\nX:a ; b\r\n";
        let s = simple_line(b, 0).unwrap();
        assert_eq!(
            (s.name_end, s.value, s.tight, s.next),
            (3, (5, 27), true, Some(31))
        );
        let s = simple_line(b, 31).unwrap();
        assert_eq!((s.value, s.tight, s.next), ((33, 38), false, Some(40)));
        for line in [
            &b"X: \"q\""[..],
            b"X: a,b",
            b"X:\tb",
            b" X: b",
            b"X : a\rb",
            b"X",
        ] {
            assert_eq!(
                simple_line(line, 0),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn same_headers_as_before_on_the_bench_messages() {
        let head = "INFO sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h:5;branch=z\r\nv: SIP / 2.0 / TCP h , SIP/2.0/UDP g\r\nf :  <sip:a@b> ; tag = 1\r\nCSeq: 7\r\n\t INFO\r\nUser-Agent: A  (b, c)\r\nContact: <sip:c>\r\nX-Empty:   ";
        assert_eq!(
            flagged(read_headers(head)),
            flagged(reader::read_headers(head))
        );
    }

    proptest! {
        #[test]
        fn skip_run_is_the_byte_loop(b in proptest::collection::vec(
            prop_oneof![0x1fu8..0x24, 0x2au8..0x2e, 0x7cu8..0x82, any::<u8>()], 0..40),
            i in 0usize..40,
        ) {
            let mut j = i.min(b.len());
            while j < b.len() && IN_RUN[usize::from(b[j])] {
                j += 1;
            }
            prop_assert_eq!(skip_run(&b, i.min(b.len())), j);
        }
    }

    #[test]
    fn all_in_run_per_byte() {
        for (c, _, x) in one_odd_byte() {
            let want = IN_RUN[usize::from(c)];
            assert_eq!(all_in_run(u64::from_le_bytes(x)), want, "{c}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn same_headers_or_error_as_the_reference(
            lines in proptest::collection::vec(
                "(Via|v|From|f|To|CSeq|Contact|m|User-Agent|X-a|Route|route|\
                  |a b|)[ \\t]{0,2}(:|)[ \\t]{0,2}[a-c0-9 \\t;=/,\"\\\\<>:@é\\r\\n\u{b}]{0,16}",
                0..6,
            ),
            start in "(INFO sip:a@b SIP/2.0| x|)",
        ) {
            let head = format!("{start}\r\n{}", lines.join("\r\n"));
            prop_assert_eq!(flagged(read_headers(&head)), flagged(reader::read_headers(&head)));
        }
    }
}
