//! The one XML writer of the server: XCCOS (`xccos/write.rs`), the provisioning
//! document (`core/provisioning.rs`) and the compliance XML files (`compliance/xml.rs`)
//! all escape through here, with the XML 1.0 character rules (XML 1.0 section 2.2 `Char`,
//! 2.11 end-of-line handling, 3.3.3 attribute-value normalization):
//! - text: `&` `<` `>` as entities, `\r` as `&#13;` (so CRLF survives end-of-line
//!   normalization in the receiver), `\n` and `\t` raw;
//! - attribute values: additionally `"` `'` as entities and `\n` `\t` as `&#10;` `&#9;`
//!   (so they survive attribute-value normalization);
//! - characters XML 1.0 cannot carry at all (C0 controls other than tab, LF, CR; U+FFFE,
//!   U+FFFF) become U+FFFD: the only lossy step.
//!
//! [`XmlWriter`] is the one XML writer: quick-xml's [`quick_xml::Writer`] fed
//! start/empty/end/text events whose values are escaped by these rules. The XCCOS
//! envelope writer (`crate::xccos::elem::W`) runs it over the caller's `&mut Vec<u8>`;
//! [`Doc`] owns one over its own buffer for whole documents (provisioning, compliance).

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

const REPLACEMENT: &str = "\u{FFFD}";

/// Appends `s` to `out` escaped for a double-quoted attribute value (module docs).
pub fn escape_attr_into(out: &mut Vec<u8>, s: &str) {
    escape_into(out, s, true);
}

/// Appends `s` to `out` escaped as element text (module docs).
pub fn escape_text_into(out: &mut Vec<u8>, s: &str) {
    escape_into(out, s, false);
}

/// `s` escaped for a double-quoted attribute value, as a `String`.
pub fn escape_attr(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    escape_attr_into(&mut out, s);
    into_string(out)
}

fn into_string(bytes: Vec<u8>) -> String {
    // The escaper only removes or replaces whole characters: the output is UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn escape_into(out: &mut Vec<u8>, s: &str, attr: bool) {
    escape_pieces(s, attr, |p| out.extend_from_slice(p.as_bytes()));
}

fn escape_into_string(out: &mut String, s: &str, attr: bool) {
    escape_pieces(s, attr, |p| out.push_str(p));
}

/// Calls `push` with the pieces of `s` escaped by the module's rules, in order: the
/// runs that need no escaping and the replacement of each character that does.
fn escape_pieces(s: &str, attr: bool, mut push: impl FnMut(&str)) {
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let (rep, len): (&str, usize) = match b[i] {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' if attr => ("&quot;", 1),
            b'\'' if attr => ("&apos;", 1),
            b'\r' => ("&#13;", 1),
            b'\n' if attr => ("&#10;", 1),
            b'\t' if attr => ("&#9;", 1),
            b'\n' | b'\t' => {
                i += 1;
                continue;
            }
            0..=0x1f => (REPLACEMENT, 1),
            0xEF if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) => {
                (REPLACEMENT, 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        // `start` and `i` are character boundaries (after/at an ASCII byte, or at the
        // lead byte of U+FFFE/U+FFFF), so `get` always succeeds.
        push(s.get(start..i).unwrap_or_default());
        push(rep);
        i += len;
        start = i;
    }
    push(s.get(start..).unwrap_or_default());
}

/// Where an [`XmlWriter`] writes: a byte buffer, owned (`Vec<u8>`, [`Doc`]) or borrowed
/// (`&mut Vec<u8>`, the XCCOS envelope writer). Writing into either cannot fail, so the
/// writer's methods return no `Result`.
pub trait Sink: std::io::Write + sealed::Sealed {}
impl Sink for Vec<u8> {}
impl Sink for &mut Vec<u8> {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for Vec<u8> {}
    impl Sealed for &mut Vec<u8> {}
}

/// The one XML writer: quick-xml's [`quick_xml::Writer`] over a byte buffer, fed
/// `Start`/`Empty`/`End`/`Text`/`Decl` events whose attribute values and text are
/// escaped by the module's rules. A start tag is built in steps - [`XmlWriter::open`],
/// then attributes ([`XmlWriter::attr`], [`XmlWriter::attr_u64`],
/// [`XmlWriter::attr_ids`]) in the order given, then [`XmlWriter::gt`] (`<name …>`) or
/// [`XmlWriter::slash_gt`] (`<name …/>`) - in a buffer reused from tag to tag, so
/// writing allocates nothing once the buffers have grown. Attribute values are
/// double-quoted. Every method returns `&mut Self` for chaining.
pub struct XmlWriter<B: Sink> {
    w: quick_xml::Writer<B>,
    /// The start tag being built: its name, then ` key="value"` per attribute.
    tag: String,
    /// Length of the name at the head of `tag`.
    name_len: usize,
    /// Escaped text of the last [`XmlWriter::text`].
    text: String,
}

impl<B: Sink> XmlWriter<B> {
    fn with(w: quick_xml::Writer<B>) -> Self {
        XmlWriter {
            w,
            tag: String::with_capacity(128),
            name_len: 0,
            text: String::new(),
        }
    }

    /// A compact writer (no whitespace between elements) appending to `sink`.
    pub fn over(sink: B) -> Self {
        Self::with(quick_xml::Writer::new(sink))
    }

    /// A writer appending to `sink` indented by `width` spaces a level (quick-xml's
    /// indentation: a line break and the indent before every tag but the first).
    pub fn indented(sink: B, width: usize) -> Self {
        Self::with(quick_xml::Writer::new_with_indent(sink, b' ', width))
    }

    /// The buffer written into.
    pub fn into_inner(self) -> B {
        self.w.into_inner()
    }

    fn write(&mut self, ev: Event<'_>) {
        // Writing into a `Vec` cannot fail (see `Sink`).
        let _ = self.w.write_event(ev);
    }

    /// `<?xml version="1.0" encoding="utf-8"?>`.
    pub fn decl(&mut self) -> &mut Self {
        self.write(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
        self
    }

    /// Begins the start tag `<name`; attributes follow, then [`XmlWriter::gt`] or
    /// [`XmlWriter::slash_gt`] writes it. `name` must be an XML name (not checked).
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.tag.clear();
        self.tag.push_str(name);
        self.name_len = name.len();
        self
    }

    fn attr_head(&mut self, key: &str) {
        self.tag.push(' ');
        self.tag.push_str(key);
        self.tag.push_str("=\"");
    }

    /// ` key="value"` on the open tag, `value` escaped as an attribute value.
    pub fn attr(&mut self, key: &str, value: &str) -> &mut Self {
        self.attr_head(key);
        escape_into_string(&mut self.tag, value, true);
        self.tag.push('"');
        self
    }

    /// ` key="N"`: a decimal number on the open tag.
    pub fn attr_u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.attr_head(key);
        push_u64(&mut self.tag, value);
        self.tag.push('"');
        self
    }

    /// ` key="1,2,3"`: numbers joined by commas on the open tag (`key=""` when empty).
    pub fn attr_ids(&mut self, key: &str, ids: &[u32]) -> &mut Self {
        self.attr_head(key);
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                self.tag.push(',');
            }
            push_u64(&mut self.tag, u64::from(*id));
        }
        self.tag.push('"');
        self
    }

    /// Writes the open tag as a start tag, `<name …>` (an `Event::Start`).
    pub fn gt(&mut self) -> &mut Self {
        let _ = self.w.write_event(Event::Start(BytesStart::from_content(
            self.tag.as_str(),
            self.name_len,
        )));
        self
    }

    /// Writes the open tag as an empty element, `<name …/>` (an `Event::Empty`).
    pub fn slash_gt(&mut self) -> &mut Self {
        let _ = self.w.write_event(Event::Empty(BytesStart::from_content(
            self.tag.as_str(),
            self.name_len,
        )));
        self
    }

    /// `<name k="v" …>`: [`XmlWriter::open`], the attributes in order, [`XmlWriter::gt`].
    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.open(name);
        for (k, v) in attrs {
            self.attr(k, v);
        }
        self.gt()
    }

    /// `<name k="v" …/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.open(name);
        for (k, v) in attrs {
            self.attr(k, v);
        }
        self.slash_gt()
    }

    /// `</name>` (an `Event::End`).
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.write(Event::End(BytesEnd::new(name)));
        self
    }

    /// Element text, escaped as text (an `Event::Text`, written even when empty: with
    /// indentation it keeps the next tag on the same line).
    pub fn text(&mut self, text: &str) -> &mut Self {
        // Most text (chat lines) needs no escaping: written as it is, without a copy.
        let clean = text.bytes().all(|b| {
            (b >= 0x20 && !matches!(b, b'&' | b'<' | b'>' | 0xEF)) || b == b'\n' || b == b'\t'
        });
        if clean {
            let _ = self
                .w
                .write_event(Event::Text(BytesText::from_escaped(text)));
            return self;
        }
        self.text.clear();
        escape_into_string(&mut self.text, text, false);
        let _ = self
            .w
            .write_event(Event::Text(BytesText::from_escaped(self.text.as_str())));
        self
    }

    /// A decimal number as element text.
    pub fn text_u64(&mut self, n: u64) -> &mut Self {
        self.text.clear();
        push_u64(&mut self.text, n);
        let _ = self
            .w
            .write_event(Event::Text(BytesText::from_escaped(self.text.as_str())));
        self
    }
}

/// Appends `n` in decimal to `out`.
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(char::from(d));
    }
}

/// A compact XML document (no declaration, no whitespace between elements) written
/// through quick-xml's `Writer`; attribute values and text escaped by the module's rules.
/// A thin owner of an [`XmlWriter`] over its own buffer (provisioning, compliance).
pub struct Doc {
    x: XmlWriter<Vec<u8>>,
}

impl Default for Doc {
    fn default() -> Self {
        Doc::new()
    }
}

impl Doc {
    /// An empty document.
    pub fn new() -> Doc {
        Doc {
            x: XmlWriter::over(Vec::with_capacity(512)),
        }
    }

    /// An empty document indented by `width` spaces a level: quick-xml's indentation, a
    /// line break and the indent before every tag but the first (none after the last).
    pub fn indented(width: usize) -> Doc {
        Doc {
            x: XmlWriter::indented(Vec::with_capacity(512), width),
        }
    }

    /// `<?xml version="1.0" encoding="utf-8"?>`.
    pub fn decl(&mut self) -> &mut Doc {
        self.x.decl();
        self
    }

    /// `<name k="v" ...>`.
    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Doc {
        self.x.start(name, attrs);
        self
    }

    /// `<name k="v" .../>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Doc {
        self.x.empty(name, attrs);
        self
    }

    /// Element text.
    pub fn text(&mut self, text: &str) -> &mut Doc {
        self.x.text(text);
        self
    }

    /// `</name>`.
    pub fn end(&mut self, name: &str) -> &mut Doc {
        self.x.close(name);
        self
    }

    /// `<name k="v" ...>text</name>`.
    pub fn text_elem(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Doc {
        self.start(name, attrs).text(text).end(name)
    }

    /// The document as a `String`.
    pub fn into_string(self) -> String {
        into_string(self.x.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, attr: bool) -> String {
        let mut v = Vec::new();
        escape_into(&mut v, s, attr);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("a<b>&\"'\r\n\t", false), "a&lt;b&gt;&amp;\"'&#13;\n\t");
        assert_eq!(
            esc("a<b>&\"'\r\n\t", true),
            "a&lt;b&gt;&amp;&quot;&apos;&#13;&#10;&#9;"
        );
        assert_eq!(
            esc("x\u{0}y\u{1b}\u{FFFE}\u{FFFF}\u{FFFD}é", false),
            "x\u{FFFD}y\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}é"
        );
        assert_eq!(esc("plain 漢字 😀", true), "plain 漢字 😀");
    }

    #[test]
    fn numbers() {
        let mut v = String::new();
        push_u64(&mut v, 0);
        v.push(' ');
        push_u64(&mut v, u64::MAX);
        assert_eq!(v, "0 18446744073709551615");
    }

    #[test]
    fn writer_appends_events_to_a_borrowed_buffer() {
        let mut out = b"head:".to_vec();
        let mut w = XmlWriter::over(&mut out);
        w.open("a")
            .attr("s", "x\"\n")
            .attr_u64("n", 42)
            .attr_ids("ids", &[3, 0, 7])
            .attr_ids("none", &[])
            .gt();
        w.open("b").slash_gt();
        w.text("1<2\r").text_u64(9).text("");
        w.start("c", &[("k", "&")])
            .close("c")
            .empty("d", &[])
            .close("a");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "head:<a s=\"x&quot;&#10;\" n=\"42\" ids=\"3,0,7\" none=\"\"><b/>1&lt;2&#13;9<c k=\"&amp;\"></c><d/></a>"
        );
    }

    #[test]
    fn text_with_and_without_escaping_matches_the_escaper() {
        for t in [
            "plain chat line",
            "tab\tand\nnewline",
            "a<b & c>d",
            "cr\r",
            "ctl\u{1}",
            "漢字 😀 é",
            "\u{FFFE}\u{FFFF}\u{FFFD}\u{F000}",
            "",
        ] {
            let mut out = Vec::new();
            XmlWriter::over(&mut out).text(t);
            let mut want = Vec::new();
            escape_text_into(&mut want, t);
            assert_eq!(out, want, "{t:?}");
        }
    }

    #[test]
    fn indented_doc_breaks_before_every_tag_but_the_first() {
        let mut d = Doc::indented(2);
        d.decl()
            .start("a", &[])
            .empty("b", &[("k", "<")])
            .start("c", &[])
            .empty("d", &[])
            .end("c")
            .end("a");
        assert_eq!(
            d.into_string(),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<a>\n  <b k=\"&lt;\"/>\n  <c>\n    <d/>\n  </c>\n</a>"
        );
    }

    #[test]
    fn doc_writes_compact_xml_with_the_same_rules() {
        let mut d = Doc::new();
        d.start("a", &[("x", "1\"\r\u{1}")])
            .text_elem("b", &[], "t<\r\n")
            .empty("c", &[("y", "'")])
            .start("e", &[])
            .end("e")
            .end("a");
        assert_eq!(
            d.into_string(),
            "<a x=\"1&quot;&#13;\u{FFFD}\"><b>t&lt;&#13;\n</b><c y=\"&apos;\"/><e></e></a>"
        );
    }
}
