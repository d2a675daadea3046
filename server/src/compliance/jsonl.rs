//! The JSON Lines adapter format: one event per line, for tools that prefer it.
//!
//! ```text
//! {"id":2,"type":"CHAT","room_uri":"ma-chan://contoso.com/<guid>","room_name":"Design","user":"sip:user1@contoso.com","ts_ms":1767225601250,"content":"hello"}
//! ```
//! Fields: `id` (event id), `type` (JOIN, PART, CHAT, BACKCHAT, FILEUPLOAD,
//! FILEDOWNLOAD, SEARCH), `room_uri` and `room_name` (empty without a room), `user`
//! (SIP URI), `ts_ms` (ms since the Unix epoch), `content`. Lines end with `\n`, in
//! event id order.

use super::adapter::Format;
use super::Event;

/// The JSON Lines [`Format`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Jsonl;

impl Format for Jsonl {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn render(&self, events: &[Event]) -> Vec<u8> {
        let mut out = Vec::with_capacity(events.len() * 200);
        for e in events {
            // Serializing a plain struct of strings and integers cannot fail.
            if serde_json::to_writer(&mut out, e).is_ok() {
                out.push(b'\n');
            }
        }
        out
    }

    fn parse(&self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::{EventKind, NewEvent};

    #[test]
    fn one_event_per_line_round_trip() {
        let events = vec![
            Event::new(
                7,
                NewEvent {
                    kind: EventKind::Chat,
                    room_uri: "ma-chan://contoso.com/g".into(),
                    room_name: "Design".into(),
                    user: "sip:user1@contoso.com".into(),
                    ts_ms: 1_767_225_601_250,
                    content: "line1\r\n\"quoted\" é".into(),
                },
            ),
            Event::new(
                8,
                NewEvent {
                    kind: EventKind::Search,
                    room_uri: String::new(),
                    room_name: String::new(),
                    user: "sip:user2@contoso.com".into(),
                    ts_ms: 1,
                    content: "BYNAME:".into(),
                },
            ),
        ];
        let bytes = Jsonl.render(&events);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.starts_with("{\"id\":7,\"type\":\"CHAT\",\"room_uri\":"),
            "{text}"
        );
        assert_eq!(Jsonl.parse(&bytes).unwrap(), events);
        let err = Jsonl.parse(b"{\"id\":1}\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }
}
