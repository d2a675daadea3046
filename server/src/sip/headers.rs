//! The header section of a parsed message, kept as one string (a copy of the frame's
//! header section, plus any value the parser had to rewrite) and a list of
//! (name, value) spans into it: parsing a message allocates this string and the span
//! list, not one `String` per header. Names are in canonical long form (compact forms
//! expanded, RFC 3261 7.3.3); lookups are case-insensitive and accept compact forms.

use super::normalize::{classify, Class};
use super::typed::{CSeq, NameAddr, Typed, Via};
use std::fmt;

/// A byte range of [`Headers`]' text (`start..end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        // A frame is limited to far less than 4 GiB (`[sip] max_message_bytes`).
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }
}

/// A header name: a canonical spelling from the tables, or the received one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Static(&'static str),
    Text(Span),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    name: Name,
    value: Span,
    /// The name's slot (`normalize::KNOWN` index + 1; 0 when unknown) and flags.
    slot: u8,
    flags: u8,
}

/// Headers in order; names in canonical long form; lookups are case-insensitive and
/// also accept compact forms. Values are borrowed from one text buffer per message.
#[derive(Clone, Default)]
pub struct Headers {
    text: String,
    entries: Vec<Entry>,
    /// The typed view the parser built (`Request::typed`), as spans of `text`;
    /// dropped by every change to the headers. Boxed: a [`super::Response`] stays
    /// small enough to be returned by value.
    typed: Option<Box<TypedSpans>>,
}

/// A [`NameAddr`] as spans: display name, URI, parameters.
type AddrSpans = [Span; 3];

/// [`Typed`] as spans of [`Headers`]' text, so the view is rebuilt without reading a
/// value again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypedSpans {
    via: [Span; 3],
    from: AddrSpans,
    to: AddrSpans,
    call_id: Span,
    cseq_num: u32,
    cseq_method: Span,
    contact: Option<AddrSpans>,
}

impl Headers {
    /// Headers over `text` (the received header section), filled by the parser with
    /// [`Headers::push_span`].
    pub(crate) fn with_text(text: String, capacity: usize) -> Headers {
        Headers {
            text,
            entries: Vec::with_capacity(capacity),
            typed: None,
        }
    }

    /// Appends a header classified as `class` (its spelling, else the span `name` of
    /// the text) whose value is the span `value` of the text.
    pub(crate) fn push_span(&mut self, class: Class, name: Span, value: Span) {
        self.push_entry(Entry {
            name: name_of_class(class, name),
            value,
            slot: class.slot,
            flags: class.flags,
        });
    }

    fn push_entry(&mut self, e: Entry) {
        self.typed = None;
        self.entries.push(e);
    }

    /// Keeps `spans` (of a view of these headers the parser built, from
    /// [`Headers::spans_of_typed`]), so [`Headers::cached_typed`] gives the view back
    /// without reading the values again.
    pub(crate) fn keep_typed(&mut self, spans: Option<TypedSpans>) {
        self.typed = spans.map(Box::new);
    }

    /// `t` (a view of these headers) as spans; `None` when a part of `t` is not a
    /// slice of the text.
    pub(crate) fn spans_of_typed(&self, t: &Typed<'_>) -> Option<TypedSpans> {
        let addr = |a: &NameAddr<'_>| -> Option<AddrSpans> {
            Some([
                self.span_of(a.display)?,
                self.span_of(a.uri)?,
                self.span_of(a.params)?,
            ])
        };
        let contact = match &t.contact {
            Some(c) => Some(addr(c)?),
            None => None,
        };
        Some(TypedSpans {
            via: [
                self.span_of(t.via.transport)?,
                self.span_of(t.via.sent_by)?,
                self.span_of(t.via.params)?,
            ],
            from: addr(&t.from)?,
            to: addr(&t.to)?,
            call_id: self.span_of(t.call_id)?,
            cseq_num: t.cseq.num,
            cseq_method: self.span_of(t.cseq.method)?,
            contact,
        })
    }

    /// The span of `part` in the text: `None` unless `part` is a slice of it (any
    /// empty `part` reads back as "").
    fn span_of(&self, part: &str) -> Option<Span> {
        if part.is_empty() {
            return Some(Span::new(0, 0));
        }
        let base = self.text.as_ptr() as usize;
        let at = (part.as_ptr() as usize).checked_sub(base)?;
        let end = at.checked_add(part.len())?;
        (end <= self.text.len()).then(|| Span::new(at, end))
    }

    /// The typed view kept by [`Headers::keep_typed`], if the headers have not changed
    /// since.
    pub(crate) fn cached_typed(&self) -> Option<Typed<'_>> {
        let t = self.typed.as_ref()?;
        let addr = |a: &AddrSpans| NameAddr {
            display: self.slice(a[0]),
            uri: self.slice(a[1]),
            params: self.slice(a[2]),
        };
        Some(Typed {
            via: Via {
                transport: self.slice(t.via[0]),
                sent_by: self.slice(t.via[1]),
                params: self.slice(t.via[2]),
            },
            from: addr(&t.from),
            to: addr(&t.to),
            call_id: self.slice(t.call_id),
            cseq: CSeq {
                num: t.cseq_num,
                method: self.slice(t.cseq_method),
            },
            contact: t.contact.as_ref().map(addr),
        })
    }

    /// The text of span `s` (empty when out of range).
    pub(crate) fn slice_of(&self, s: Span) -> &str {
        self.slice(s)
    }

    /// Bytes of text held (received header section plus rewritten values).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Value of the first header named `name`, which must already be the canonical long
    /// name (`"Call-ID"`, not `"i"`): the lookup the typed accessors use.
    pub fn get_canonical(&self, name: &str) -> Option<&str> {
        self.get(name)
    }

    /// The values of the first headers named `names` (canonical long names, as for
    /// [`Headers::get_canonical`]), found in one pass over the headers.
    pub fn first_of<const N: usize>(&self, names: [&str; N]) -> [Option<&str>; N] {
        let mut out = [None; N];
        for (k, name) in names.iter().enumerate() {
            out[k] = self.get(name);
        }
        out
    }

    /// Value of the first header of the known `slot` (`normalize::slot`).
    pub(crate) fn get_slot(&self, slot: u8) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.slot == slot)
            .map(|e| self.slice(e.value))
    }

    /// The values of the first headers of the known `slots` (`normalize::slot`), found
    /// in one pass over the headers.
    pub(crate) fn first_of_slots<const N: usize>(&self, slots: [u8; N]) -> [Option<&str>; N] {
        let mut out = [None; N];
        let mut missing = N;
        // slot -> 1 + its first index in `slots` (0: not asked).
        let mut asked = [0u8; 256];
        for (k, s) in slots.iter().enumerate().rev() {
            if let Some(a) = asked.get_mut(usize::from(*s)) {
                *a = u8::try_from(k + 1).unwrap_or(0);
            }
        }
        for e in self.entries.iter().filter(|e| e.slot != 0) {
            let at = asked.get(usize::from(e.slot)).copied().unwrap_or(0);
            if let Some(k) = usize::from(at).checked_sub(1) {
                if out[k].is_none() {
                    out[k] = Some(self.slice(e.value));
                    missing -= 1;
                    if missing == 0 {
                        break;
                    }
                }
            }
        }
        out
    }

    /// (slot, flags, name, value) of every header in order (`normalize::KNOWN`,
    /// `normalize::F_*`).
    pub(crate) fn iter_flagged(&self) -> impl Iterator<Item = (u8, u8, &str, &str)> + Clone {
        self.entries
            .iter()
            .map(|e| (e.slot, e.flags, self.name_of(e), self.slice(e.value)))
    }

    /// Appends one header per value of the comma list in span `value`, cut by `split`
    /// (which reports `(start, end)` ranges within the value).
    pub(crate) fn push_list(
        &mut self,
        class: Class,
        name: Span,
        value: Span,
        split: impl Fn(&str, &mut dyn FnMut(usize, usize)),
    ) {
        self.typed = None;
        let (slot, flags) = (class.slot, class.flags);
        let name = name_of_class(class, name);
        let base = value.start as usize;
        let text = self
            .text
            .get(value.start as usize..value.end as usize)
            .unwrap_or_default();
        let entries = &mut self.entries;
        split(text, &mut |s, e| {
            entries.push(Entry {
                name,
                value: Span::new(base + s, base + e),
                slot,
                flags,
            })
        });
    }

    fn slice(&self, s: Span) -> &str {
        self.text
            .get(s.start as usize..s.end as usize)
            .unwrap_or_default()
    }

    fn name_of(&self, e: &Entry) -> &str {
        match e.name {
            Name::Static(s) => s,
            Name::Text(span) => self.slice(span),
        }
    }

    /// Whether entry `e` is the header `name` classified as `class` (names are
    /// case-insensitive, compact forms stand for their long names, RFC 3261 7.3.3).
    fn is(&self, e: &Entry, class: Class, name: &str) -> bool {
        if class.slot != 0 || e.slot != 0 {
            return class.slot == e.slot;
        }
        self.name_of(e).eq_ignore_ascii_case(name)
    }

    /// Value of the first header named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let class = classify(name);
        self.entries
            .iter()
            .find(|e| self.is(e, class, name))
            .map(|e| self.slice(e.value))
    }

    /// Values of every header named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let class = classify(name);
        let name = name.to_owned();
        self.entries
            .iter()
            .filter(move |e| self.is(e, class, &name))
            .map(|e| self.slice(e.value))
    }

    /// Appends `value` to the text and returns its span.
    pub(crate) fn store(&mut self, value: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(value);
        Span::new(start, self.text.len())
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl AsRef<str>) {
        let class = classify(name);
        let name = match class.spelling {
            Some(s) => Name::Static(s),
            None => Name::Text(self.store(name)),
        };
        let value = self.store(value.as_ref());
        self.push_entry(Entry {
            name,
            value,
            slot: class.slot,
            flags: class.flags,
        });
    }

    /// Replaces every header named `name` with one (at the first one's place, else at
    /// the end).
    pub fn set(&mut self, name: &str, value: impl AsRef<str>) {
        self.typed = None;
        let class = classify(name);
        match self.entries.iter().position(|e| self.is(e, class, name)) {
            Some(i) => {
                let span = self.store(value.as_ref());
                self.entries[i].value = span;
                let mut k = 0;
                let keep: Vec<bool> = self
                    .entries
                    .iter()
                    .map(|e| {
                        k += 1;
                        k - 1 == i || !self.is(e, class, name)
                    })
                    .collect();
                let mut it = keep.into_iter();
                self.entries.retain(|_| it.next().unwrap_or(true));
            }
            None => self.push(name, value),
        }
    }

    /// Removes every header named `name`.
    pub fn remove(&mut self, name: &str) {
        self.typed = None;
        let class = classify(name);
        let keep: Vec<bool> = self
            .entries
            .iter()
            .map(|e| !self.is(e, class, name))
            .collect();
        let mut it = keep.into_iter();
        self.entries.retain(|_| it.next().unwrap_or(true));
    }

    /// (name, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.entries
            .iter()
            .map(|e| (self.name_of(e), self.slice(e.value)))
    }

    /// Number of headers (a list value split in several counts several times).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no header.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes every header but Content-Length as `Name: value\r\n`, then
    /// `Content-Length: {body_len}` and the empty line.
    pub(crate) fn write(&self, out: &mut Vec<u8>, body_len: usize) {
        for (n, v) in self.iter() {
            if n == "Content-Length" {
                continue;
            }
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        use std::io::Write as _;
        let _ = write!(out, "Content-Length: {body_len}\r\n\r\n");
    }
}

/// The stored name of a header classified as `class` whose received name is `span`.
fn name_of_class(class: Class, span: Span) -> Name {
    match class.spelling {
        Some(s) => Name::Static(s),
        None => Name::Text(span),
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn first_of_slots_is_get_slot_per_slot(
            names in proptest::collection::vec("(Via|From|To|Call-ID|CSeq|Contact|X-a|v)", 0..8),
            slots in proptest::prelude::Strategy::prop_map(
                proptest::prelude::any::<[u8; 4]>(),
                |s| s.map(|x| x % 11 + 1),
            ),
        ) {
            let mut h = Headers::default();
            for (i, n) in names.iter().enumerate() {
                h.push(n, i.to_string());
            }
            // A slot asked twice is given at its first place only.
            let mut want = [None; 4];
            for (k, s) in slots.iter().enumerate() {
                if !slots[..k].contains(s) {
                    want[k] = h.get_slot(*s);
                }
            }
            proptest::prop_assert_eq!(h.first_of_slots(slots), want);
        }
    }

    #[test]
    fn set_get_all_remove() {
        let mut h = Headers::default();
        h.push("v", "a");
        h.push("Via", "b");
        h.push("X-Odd", "1");
        assert_eq!(h.get_all("VIA").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(h.get("x-odd"), Some("1"));
        h.set("Via", "c");
        assert_eq!(h.get_all("v").collect::<Vec<_>>(), ["c"]);
        assert_eq!(h.iter().next(), Some(("Via", "c")));
        h.remove("via");
        assert_eq!(h.get("Via"), None);
        assert_eq!(h.len(), 1);
        let mut out = Vec::new();
        h.write(&mut out, 12);
        assert_eq!(out, b"X-Odd: 1\r\nContent-Length: 12\r\n\r\n");
    }
}
