//! The XML adapter format: the documented compliance output (shared/protocol/XCCOS.md,
//! "Compliance XML adapter output"), element and attribute names exactly as there:
//!
//! ```xml
//! <?xml version="1.0" encoding="utf-8"?>
//! <Conversations xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
//!   <Conversation>
//!     <Channel uri="ma-chan://contoso.com/<guid>" name="Design" islogged="true"/>
//!     <FirstMessage type="JOIN" content="" id="1">
//!       <Sender UserName="user1" id="0" email="user1@contoso.com" internal="true" uri="user1@contoso.com"/>
//!       <DateTimeUTC since1970="1767225600000" string="2026-01-01T00:00:00.0000000Z" long="639028224000000000"/>
//!     </FirstMessage>
//!     <Messages>
//!       <Message type="CHAT" content="hello" id="2"> <Sender .../> <DateTimeUTC .../> </Message>
//!     </Messages>
//!     <StartTimeUTC .../>
//!     <EndTimeUTC .../>
//!   </Conversation>
//! </Conversations>
//! ```
//! One `Conversation` per room in the file (rooms in URI order; events without a room,
//! SEARCH, in a Conversation whose `Channel` has empty `uri` and `name`). The first event
//! of a room is `FirstMessage`, the others `Message`s in id order. `Message id` is the
//! event id; `Sender id` numbers the senders of the conversation from 0 in order of
//! appearance; `UserName` is the user part of the SIP URI; `uri`/`email` are the URI
//! without `sip:`; `internal` is whether the user is in the room's domain.
//! Times: `since1970` = ms since the Unix epoch, `string` = ISO 8601 UTC with 7
//! fractional digits, `long` = .NET ticks (100 ns since 0001-01-01).
//! Attribute values escape `& < > " '` and tab, CR, LF as character references;
//! characters XML 1.0 cannot carry (other C0 controls, U+FFFE, U+FFFF) become U+FFFD
//! ([`crate::xml`], the escaper shared with XCCOS and provisioning). Written through
//! [`crate::xml::Doc`] (quick-xml's `Writer`, two spaces of indentation a level).

use super::adapter::Format;
use super::{Event, EventKind, NewEvent};
use crate::xml::Doc;
use quick_xml::events::{BytesStart, Event as XmlEvent};
use quick_xml::Reader;
use std::collections::BTreeMap;

/// Element names of the documented format (XCCOS.md, last section).
pub const ELEMENTS: [&str; 10] = [
    "Conversations",
    "Conversation",
    "Channel",
    "FirstMessage",
    "Messages",
    "Message",
    "Sender",
    "DateTimeUTC",
    "StartTimeUTC",
    "EndTimeUTC",
];

/// .NET ticks at the Unix epoch (100 ns units since 0001-01-01T00:00:00Z).
pub const TICKS_AT_UNIX_EPOCH: i64 = 621_355_968_000_000_000;

/// The XML [`Format`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Xml;

/// `since1970`, `string`, `long` attribute values for a time in ms since the epoch.
pub fn time_attrs(ms: i64) -> (String, String, String) {
    let iso = crate::clock::iso8601(ms);
    // iso8601 gives milliseconds ("...:01.250Z"); the format has 7 fractional digits.
    let string = match iso.strip_suffix('Z') {
        Some(base) => format!("{base}0000Z"),
        None => iso,
    };
    let ticks = ms
        .saturating_mul(10_000)
        .saturating_add(TICKS_AT_UNIX_EPOCH);
    (ms.to_string(), string, ticks.to_string())
}

fn domain_of(user: &str) -> &str {
    user.rsplit_once('@').map_or("", |(_, d)| d)
}

fn time_el(d: &mut Doc, name: &str, ms: i64) {
    let (since, string, long) = time_attrs(ms);
    d.empty(
        name,
        &[("since1970", &since), ("string", &string), ("long", &long)],
    );
}

fn message(d: &mut Doc, el: &str, e: &Event, senders: &mut Vec<String>, room_domain: &str) {
    let sender_id = match senders.iter().position(|u| *u == e.user) {
        Some(i) => i,
        None => {
            senders.push(e.user.clone());
            senders.len() - 1
        }
    };
    let bare = e.user.strip_prefix("sip:").unwrap_or(&e.user);
    let user_name = bare.split('@').next().unwrap_or(bare);
    let internal = room_domain.is_empty() || domain_of(bare).eq_ignore_ascii_case(room_domain);
    let id = e.id.to_string();
    d.start(
        el,
        &[
            ("type", e.kind.as_str()),
            ("content", &e.content),
            ("id", &id),
        ],
    );
    let sender = [
        ("UserName", user_name),
        ("id", &sender_id.to_string()),
        ("email", bare),
        ("internal", if internal { "true" } else { "false" }),
        ("uri", bare),
    ];
    d.empty("Sender", &sender);
    time_el(d, "DateTimeUTC", e.ts_ms);
    d.end(el);
}

impl Format for Xml {
    fn name(&self) -> &str {
        "xml"
    }

    fn render(&self, events: &[Event]) -> Vec<u8> {
        let mut rooms: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
        for e in events {
            rooms.entry(e.room_uri.as_str()).or_default().push(e);
        }
        let mut d = Doc::indented(2);
        d.decl().start(
            "Conversations",
            &[
                ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
            ],
        );
        for (uri, evs) in rooms {
            let (Some(first), Some(last)) = (evs.first(), evs.last()) else {
                continue;
            };
            let room_domain = crate::ids::split_room_uri(uri).map_or("", |(d, _)| d);
            let mut senders = Vec::new();
            let channel = [
                ("uri", uri),
                ("name", &first.room_name),
                ("islogged", "true"),
            ];
            d.start("Conversation", &[]).empty("Channel", &channel);
            message(&mut d, "FirstMessage", first, &mut senders, room_domain);
            if evs.len() > 1 {
                d.start("Messages", &[]);
                for e in &evs[1..] {
                    message(&mut d, "Message", e, &mut senders, room_domain);
                }
                d.end("Messages");
            } else {
                d.empty("Messages", &[]);
            }
            let start = evs.iter().map(|e| e.ts_ms).min().unwrap_or(first.ts_ms);
            let end = evs.iter().map(|e| e.ts_ms).max().unwrap_or(last.ts_ms);
            time_el(&mut d, "StartTimeUTC", start);
            time_el(&mut d, "EndTimeUTC", end);
            d.end("Conversation");
        }
        d.end("Conversations");
        // quick-xml's indentation puts no line break after the last tag; the file ends
        // with one.
        let mut out = d.into_string().into_bytes();
        out.push(b'\n');
        out
    }

    fn parse(&self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        parse(bytes)
    }
}

/// One element of an XML document: name, attributes (unescaped), depth (root = 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementInfo {
    /// Element name as written (with any prefix).
    pub name: String,
    /// Attributes in document order, values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Nesting depth, root = 0.
    pub depth: usize,
    /// Whether this is the element's end (`</name>`); empty elements report no end.
    pub end: bool,
    /// Whether this is an empty element (`<name/>`, no end follows).
    pub empty: bool,
}

/// Walks a document into start/end element records. Errors: not well-formed, with the
/// byte position.
pub fn elements(bytes: &[u8]) -> Result<Vec<ElementInfo>, String> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut buf = Vec::new();
    let start =
        |s: &BytesStart<'_>, reader: &Reader<&[u8]>, depth| -> Result<ElementInfo, String> {
            let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
            let mut attrs = Vec::new();
            for a in s.attributes() {
                let a = a.map_err(|e| format!("bad attribute on <{name}>: {e}"))?;
                let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                let v = a
                    .decode_and_unescape_value(reader.decoder())
                    .map_err(|e| format!("bad value of {key} on <{name}>: {e}"))?;
                attrs.push((key, v.into_owned()));
            }
            Ok(ElementInfo {
                name,
                attrs,
                depth,
                end: false,
                empty: false,
            })
        };
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match ev {
            XmlEvent::Start(ref s) => {
                out.push(start(s, &reader, depth)?);
                depth += 1;
            }
            XmlEvent::Empty(ref s) => {
                let mut el = start(s, &reader, depth)?;
                el.empty = true;
                out.push(el);
            }
            XmlEvent::End(ref e) => {
                depth = depth.saturating_sub(1);
                out.push(ElementInfo {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    attrs: Vec::new(),
                    depth,
                    end: true,
                    empty: false,
                });
            }
            XmlEvent::Eof if depth > 0 => {
                return Err(format!(
                    "unexpected end of file: {depth} element(s) not closed"
                ))
            }
            XmlEvent::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

fn attr<'a>(el: &'a ElementInfo, key: &str) -> Result<&'a str, String> {
    el.attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("<{}> without {key}", el.name))
}

/// Reads back the events of a file in this format. Errors: not well-formed, or a
/// message element missing `type`/`id`/`Sender uri`/`DateTimeUTC since1970`.
pub fn parse(bytes: &[u8]) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    let (mut room_uri, mut room_name) = (String::new(), String::new());
    let mut cur: Option<Event> = None;
    for el in elements(bytes)? {
        match (el.name.as_str(), el.end) {
            ("Channel", false) => {
                room_uri = attr(&el, "uri")?.to_string();
                room_name = attr(&el, "name")?.to_string();
            }
            ("FirstMessage" | "Message", false) => {
                let kind = attr(&el, "type")?;
                let id = attr(&el, "id")?
                    .parse()
                    .map_err(|_| format!("<{}> id is not an integer", el.name))?;
                cur = Some(Event::new(
                    id,
                    NewEvent {
                        kind: EventKind::parse(kind)
                            .ok_or_else(|| format!("<{}> unknown type {kind:?}", el.name))?,
                        room_uri: room_uri.clone(),
                        room_name: room_name.clone(),
                        user: String::new(),
                        ts_ms: i64::MIN,
                        content: attr(&el, "content")?.to_string(),
                    },
                ));
            }
            ("Sender", false) => {
                if let Some(e) = cur.as_mut() {
                    e.user = format!("sip:{}", attr(&el, "uri")?);
                }
            }
            ("DateTimeUTC", false) => {
                if let Some(e) = cur.as_mut() {
                    e.ts_ms = attr(&el, "since1970")?
                        .parse()
                        .map_err(|_| "DateTimeUTC since1970 is not an integer".to_string())?;
                }
            }
            ("FirstMessage" | "Message", true) => {
                let Some(e) = cur.take() else { continue };
                if e.user.is_empty() || e.ts_ms == i64::MIN {
                    return Err(format!("event {} lacks Sender or DateTimeUTC", e.id));
                }
                out.push(e);
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, kind: EventKind, room: &str, user: &str, ts: i64, content: &str) -> Event {
        Event::new(
            id,
            NewEvent {
                kind,
                room_uri: if room.is_empty() {
                    String::new()
                } else {
                    format!("ma-chan://contoso.com/{room}")
                },
                room_name: room.to_uppercase(),
                user: user.into(),
                ts_ms: ts,
                content: content.into(),
            },
        )
    }

    fn sample() -> Vec<Event> {
        vec![
            ev(
                1,
                EventKind::Join,
                "g1",
                "sip:user1@contoso.com",
                1_767_225_600_000,
                "",
            ),
            ev(
                2,
                EventKind::Chat,
                "g1",
                "sip:user1@contoso.com",
                1_767_225_601_250,
                "a <b> & \"c\"\r\nline2\t'x'",
            ),
            ev(
                3,
                EventKind::Join,
                "g2",
                "sip:ext@fabrikam.com",
                1_767_225_602_000,
                "",
            ),
            ev(
                4,
                EventKind::Backchat,
                "g1",
                "sip:user2@contoso.com",
                1_767_225_603_000,
                "last 25",
            ),
            ev(
                5,
                EventKind::Search,
                "",
                "sip:user2@contoso.com",
                1_767_225_604_000,
                "BYNAME:Des",
            ),
            ev(
                6,
                EventKind::Part,
                "g1",
                "sip:user1@contoso.com",
                1_767_225_605_000,
                "",
            ),
        ]
    }

    #[test]
    fn times_since1970_string_long() {
        // XCCOS.md example: since1970 1212610540953 <-> long 633482073409535482 (the
        // example carries sub-ms ticks 5482; at ms precision they are 0000).
        let (since, string, long) = time_attrs(1_212_610_540_953);
        assert_eq!(since, "1212610540953");
        assert_eq!(string, "2008-06-04T20:15:40.9530000Z");
        assert_eq!(long, "633482073409530000");
        assert_eq!(time_attrs(0).2, TICKS_AT_UNIX_EPOCH.to_string());
    }

    #[test]
    fn round_trip_keeps_every_event_exactly() {
        let events = sample();
        let bytes = Xml.render(&events);
        let mut back = parse(&bytes).unwrap();
        back.sort_by_key(|e| e.id);
        assert_eq!(back, events);
        assert_eq!(Xml.render(&events), bytes, "deterministic bytes");
    }

    /// The documented elements (docs/compliance.md): name -> (its attributes in order,
    /// the elements it may stand in; `""` is the document's root).
    type Documented = BTreeMap<&'static str, (&'static [&'static str], &'static [&'static str])>;

    fn documented() -> Documented {
        BTreeMap::from([
            (
                "Conversations",
                (&["xmlns:xsi", "xmlns:xsd"][..], &[""][..]),
            ),
            ("Conversation", (&[][..], &["Conversations"][..])),
            (
                "Channel",
                (&["uri", "name", "islogged"][..], &["Conversation"][..]),
            ),
            (
                "FirstMessage",
                (&["type", "content", "id"][..], &["Conversation"][..]),
            ),
            ("Messages", (&[][..], &["Conversation"][..])),
            (
                "Message",
                (&["type", "content", "id"][..], &["Messages"][..]),
            ),
            (
                "Sender",
                (
                    &["UserName", "id", "email", "internal", "uri"][..],
                    &["FirstMessage", "Message"][..],
                ),
            ),
            (
                "DateTimeUTC",
                (
                    &["since1970", "string", "long"][..],
                    &["FirstMessage", "Message"][..],
                ),
            ),
            (
                "StartTimeUTC",
                (&["since1970", "string", "long"][..], &["Conversation"][..]),
            ),
            (
                "EndTimeUTC",
                (&["since1970", "string", "long"][..], &["Conversation"][..]),
            ),
        ])
    }

    /// The output validates against the documented format: only the documented element
    /// names, each with exactly the documented attributes, nested as documented.
    #[test]
    fn output_uses_only_the_documented_elements_and_attributes() {
        let bytes = Xml.render(&sample());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Conversations xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">"));
        let documented = documented();
        assert_eq!(documented.len(), ELEMENTS.len());
        let mut stack: Vec<String> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for el in elements(&bytes).unwrap() {
            if el.end {
                stack.pop();
                continue;
            }
            let (attrs, parents) = documented
                .get(el.name.as_str())
                .unwrap_or_else(|| panic!("undocumented element <{}>", el.name));
            let names: Vec<&str> = el.attrs.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(&names[..], *attrs, "attributes of <{}>", el.name);
            let parent = stack.last().map_or("", String::as_str);
            assert!(parents.contains(&parent), "<{}> inside <{parent}>", el.name);
            if el.name == "Message" || el.name == "FirstMessage" {
                let ty = &el.attrs[0].1;
                assert!(EventKind::parse(ty).is_some(), "type {ty}");
            }
            if el.name.ends_with("TimeUTC") {
                let v: Vec<i64> = el
                    .attrs
                    .iter()
                    .filter(|(k, _)| k != "string")
                    .map(|(_, v)| v.parse().unwrap())
                    .collect();
                assert_eq!(
                    v[1],
                    v[0] * 10_000 + TICKS_AT_UNIX_EPOCH,
                    "long = ticks of since1970"
                );
            }
            seen.insert(el.name.clone());
            if !el.empty {
                stack.push(el.name.clone());
            }
        }
        // Every documented element appears in this sample.
        assert_eq!(seen.len(), ELEMENTS.len(), "{seen:?}");
    }

    #[test]
    fn malformed_files_are_reported_not_panicking() {
        for bad in [
            &b"<Conversations><Conversation>"[..],
            b"<Conversations><Conversation><Channel uri=\"x\" name=\"n\" islogged=\"true\"/><FirstMessage type=\"NOPE\" content=\"\" id=\"1\"/></Conversation></Conversations>",
            b"<Conversations><Conversation><Channel uri=\"x\" name=\"n\"/><Message type=\"CHAT\" content=\"\" id=\"x\"></Message></Conversation></Conversations>",
            b"<Conversations><Conversation><Channel uri=\"x\" name=\"n\"/><Message type=\"CHAT\" content=\"\" id=\"1\"></Message></Conversation></Conversations>",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    /// The exact bytes (the documented shape; unchanged since the format was written
    /// with `writeln!`, now through quick-xml's `Writer`).
    #[test]
    fn output_bytes_are_the_documented_shape() {
        let want = include_str!("testdata/sample.xml");
        assert_eq!(String::from_utf8(Xml.render(&sample())).unwrap(), want);
    }
}
