//! Ladder (sequence) diagrams of a transcript, for people who would rather look than
//! read: [`text`] for the terminal and [`html`] for a self-contained HTML page with an
//! SVG drawing (hover an arrow to see the whole message).
//!
//! One lifeline per party in order of first appearance (clients, then the server where
//! it first speaks); one arrow per SIP message, labelled with the method or status and
//! the XCCOS element it carries (`INFO cmd:join`, `200 OK`, `INFO rpl:join 200`,
//! `INFO grpchat`); step markers from the transcript as separator lines.

use crate::transcript::{Entry, Transcript};
use std::fmt::Write as _;

/// Width of one lifeline column in the text diagram, in characters.
const COL: usize = 36;

/// A short label for a message: SIP method or status, plus the XCCOS element.
pub fn label(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let first = text.lines().next().unwrap_or("");
    let mut out = match first.strip_prefix("SIP/2.0 ") {
        Some(status) => status.to_string(),
        None => first.split(' ').next().unwrap_or("?").to_string(),
    };
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    for (tag, name) in [
        ("<cmd id=\"", true),
        ("<rpl id=\"", true),
        ("<ntc id=\"", true),
    ] {
        if let Some(i) = body.find(tag) {
            let rest = &body[i + tag.len()..];
            if name {
                out.push(' ');
                out.push_str(rest.split('"').next().unwrap_or(""));
            }
            if tag.starts_with("<rpl") {
                if let Some(j) = body.find("<resp code=\"") {
                    out.push(' ');
                    out.push_str(body[j + 12..].split('"').next().unwrap_or(""));
                }
            }
            return out;
        }
    }
    if body.contains("<grpchat") {
        out.push_str(" grpchat");
    } else if body.starts_with("v=0") {
        out.push_str(" (SDP)");
    }
    out
}

/// Parties in order of first appearance.
fn parties(entries: &[Entry]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for e in entries.iter().filter(|e| e.from != "#") {
        for p in [&e.from, &e.to] {
            if !v.contains(p) {
                v.push(p.clone());
            }
        }
    }
    v
}

/// The text ladder of `t`.
pub fn text(t: &Transcript) -> String {
    let entries = t.entries();
    let parties = parties(&entries);
    let width = parties.len().max(1) * COL;
    let x = |i: usize| i * COL + COL / 2;
    let mut out = String::new();
    let mut header = vec![' '; width];
    for (i, p) in parties.iter().enumerate() {
        let name: Vec<char> = p.chars().take(COL - 2).collect();
        let start = x(i).saturating_sub(name.len() / 2);
        for (k, c) in name.iter().enumerate() {
            if let Some(slot) = header.get_mut(start + k) {
                *slot = *c;
            }
        }
    }
    out.push_str(header.iter().collect::<String>().trim_end());
    out.push('\n');
    let lifelines = || {
        let mut l = vec![' '; width];
        for i in 0..parties.len() {
            l[x(i)] = '|';
        }
        l
    };
    for e in &entries {
        if e.from == "#" {
            let _ = writeln!(out, "-- {} --", String::from_utf8_lossy(&e.bytes));
            continue;
        }
        let (Some(a), Some(b)) = (
            parties.iter().position(|p| *p == e.from),
            parties.iter().position(|p| *p == e.to),
        ) else {
            continue;
        };
        let mut line = lifelines();
        let (lo, hi) = (x(a.min(b)), x(a.max(b)));
        for c in line.iter_mut().take(hi).skip(lo + 1) {
            *c = '-';
        }
        if a < b {
            line[hi - 1] = '>';
        } else if a > b {
            line[lo + 1] = '<';
        }
        let lab: Vec<char> = format!(" {} ", label(&e.bytes)).chars().collect();
        let room = hi.saturating_sub(lo + 3);
        let lab = &lab[..lab.len().min(room)];
        let start = lo + 2 + (room - lab.len()) / 2;
        for (k, c) in lab.iter().enumerate() {
            line[start + k] = *c;
        }
        out.push_str(line.iter().collect::<String>().trim_end());
        out.push('\n');
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page with the SVG ladder of `t`, titled `title`.
pub fn html(t: &Transcript, title: &str) -> String {
    let entries = t.entries();
    let parties = parties(&entries);
    let (colw, rowh, top) = (220usize, 26usize, 50usize);
    let x = |i: usize| 40 + i * colw + colw / 2;
    let width = 80 + parties.len().max(1) * colw;
    let height = top + (entries.len() + 1) * rowh;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="12">"#
    );
    svg.push_str(r#"<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>"#);
    for (i, p) in parties.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<text x="{}" y="20" text-anchor="middle" font-weight="bold">{}</text><line x1="{}" y1="30" x2="{}" y2="{height}" stroke="#999" stroke-dasharray="4 3"/>"##,
            x(i),
            esc(p),
            x(i),
            x(i)
        );
    }
    for (row, e) in entries.iter().enumerate() {
        let y = top + row * rowh;
        if e.from == "#" {
            let _ = write!(
                svg,
                r##"<text x="10" y="{y}" fill="#36c">{}</text>"##,
                esc(&String::from_utf8_lossy(&e.bytes))
            );
            continue;
        }
        let (Some(a), Some(b)) = (
            parties.iter().position(|p| *p == e.from),
            parties.iter().position(|p| *p == e.to),
        ) else {
            continue;
        };
        let full = esc(&String::from_utf8_lossy(&e.bytes));
        let _ = write!(
            svg,
            r##"<g><title>{full}</title><line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#333" marker-end="url(#a)"/><text x="{}" y="{}" text-anchor="middle">{}</text></g>"##,
            x(a),
            x(b),
            (x(a) + x(b)) / 2,
            y - 4,
            esc(&label(&e.bytes))
        );
    }
    svg.push_str("</svg>");
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>Hover an arrow for the whole SIP message.</p>{svg}</body></html>\n",
        t = esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transcript {
        let t = Transcript::default();
        t.note("step 1 (user1 join Design)");
        t.record(
            "user1",
            "server",
            b"INFO sip:s SIP/2.0\r\nCSeq: 3 INFO\r\n\r\n<xccos envid=\"1\"><cmd id=\"cmd:join\" seqid=\"1\"/></xccos>",
        );
        t.record("server", "user1", b"SIP/2.0 200 OK\r\nCSeq: 3 INFO\r\n\r\n");
        t.record(
            "server",
            "user1",
            b"INFO sip:u SIP/2.0\r\n\r\n<xccos><rpl id=\"rpl:join\" seqid=\"1\"><resp code=\"404\">NO_SUCH_ROOM</resp></rpl></xccos>",
        );
        t
    }

    #[test]
    fn labels_name_method_status_and_xccos() {
        let e = sample().entries();
        assert_eq!(label(&e[1].bytes), "INFO cmd:join");
        assert_eq!(label(&e[2].bytes), "200 OK");
        assert_eq!(label(&e[3].bytes), "INFO rpl:join 404");
    }

    #[test]
    fn text_ladder_has_lifelines_and_directions() {
        let out = text(&sample());
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].contains("user1") && lines[0].contains("server"),
            "{out}"
        );
        assert_eq!(lines[1], "-- step 1 (user1 join Design) --");
        assert!(
            lines[2].contains("INFO cmd:join") && lines[2].contains(">|"),
            "{out}"
        );
        assert!(
            lines[3].contains("|<") && lines[3].contains("200 OK"),
            "{out}"
        );
        assert_eq!(lines[2].matches('|').count(), 2, "{out}");
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let page = html(&sample(), "a <b>");
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<svg") && page.contains("</svg>"));
        assert!(page.contains("a &lt;b&gt;"));
        assert_eq!(page.matches("marker-end").count(), 3);
        assert!(page.contains("INFO rpl:join 404"));
    }
}
