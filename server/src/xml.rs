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
//! [`Doc`] writes whole documents through quick-xml's [`quick_xml::Writer`], with values
//! escaped by these rules.

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use std::borrow::Cow;

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

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
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (rep, len): (&[u8], usize) = match c {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            b'"' if attr => (b"&quot;", 1),
            b'\'' if attr => (b"&apos;", 1),
            b'\r' => (b"&#13;", 1),
            b'\n' if attr => (b"&#10;", 1),
            b'\t' if attr => (b"&#9;", 1),
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
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(rep);
        i += len;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
}

/// A compact XML document (no declaration, no whitespace between elements) written
/// through quick-xml's `Writer`; attribute values and text escaped by the module's rules.
pub struct Doc {
    w: quick_xml::Writer<Vec<u8>>,
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
            w: quick_xml::Writer::new(Vec::with_capacity(512)),
        }
    }

    /// An empty document indented by `width` spaces a level: quick-xml's indentation, a
    /// line break and the indent before every tag but the first (none after the last).
    pub fn indented(width: usize) -> Doc {
        Doc {
            w: quick_xml::Writer::new_with_indent(Vec::with_capacity(512), b' ', width),
        }
    }

    /// `<?xml version="1.0" encoding="utf-8"?>`.
    pub fn decl(&mut self) -> &mut Doc {
        self.write(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
        self
    }

    fn start_tag<'a>(name: &'a str, attrs: &[(&str, &str)]) -> BytesStart<'a> {
        let mut s = BytesStart::new(name);
        for (k, v) in attrs {
            let mut value = Vec::with_capacity(v.len());
            escape_attr_into(&mut value, v);
            s.push_attribute(Attribute {
                key: QName(k.as_bytes()),
                value: Cow::Owned(value),
            });
        }
        s
    }

    fn write(&mut self, ev: Event<'_>) {
        // Writing into a Vec cannot fail.
        let _ = self.w.write_event(ev);
    }

    /// `<name k="v" ...>`.
    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Doc {
        self.write(Event::Start(Doc::start_tag(name, attrs)));
        self
    }

    /// `<name k="v" .../>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Doc {
        self.write(Event::Empty(Doc::start_tag(name, attrs)));
        self
    }

    /// Element text.
    pub fn text(&mut self, text: &str) -> &mut Doc {
        let mut v = Vec::with_capacity(text.len());
        escape_text_into(&mut v, text);
        self.write(Event::Text(BytesText::from_escaped(into_string(v))));
        self
    }

    /// `</name>`.
    pub fn end(&mut self, name: &str) -> &mut Doc {
        self.write(Event::End(BytesEnd::new(name)));
        self
    }

    /// `<name k="v" ...>text</name>`.
    pub fn text_elem(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Doc {
        self.start(name, attrs).text(text).end(name)
    }

    /// The document as a `String`.
    pub fn into_string(self) -> String {
        into_string(self.w.into_inner())
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
