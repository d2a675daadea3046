//! Ladder (sequence) diagrams of a transcript, for people who would rather look than
//! read: [`text`] for the terminal and [`html`] for a self-contained HTML page with an
//! SVG drawing (hover an arrow to see the whole message).
//!
//! One lifeline per party in a stable order (the server first, then the clients in
//! natural order: user2 before user10); one arrow per SIP message, labelled with the
//! method or status and the XCCOS element it carries (`INFO cmd:join`, `200 OK`,
//! `INFO rpl:join 200`, `INFO grpchat`), with its time (simulated time in the
//! simulator); step markers from the transcript as separator lines, faults marked
//! (`!! ... !!` in text, red in HTML, with the window's rows shaded when its length is
//! known). Large runs are paged: [`html_pages`] cuts the drawing into pages of
//! [`PAGE_ROWS`] rows linked to each other, and the columns narrow as parties grow.

use crate::transcript::{Entry, Transcript};
use std::fmt::Write as _;

/// Width of one lifeline column in the text diagram, in characters.
const COL: usize = 36;

/// Width of the time column of the text diagram.
const TIME_W: usize = 10;

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

/// Rows per HTML page.
pub const PAGE_ROWS: usize = 1000;

/// Natural sort key: digit runs compare as numbers (`user2` < `user10`).
fn natural(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                out.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    out.push((text, digits.parse().unwrap_or(0)));
    out
}

/// Parties: the server first, then the others in natural order.
fn parties(entries: &[Entry]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for e in entries.iter().filter(|e| e.from != "#") {
        for p in [&e.from, &e.to] {
            if !v.contains(p) {
                v.push(p.clone());
            }
        }
    }
    v.sort_by_key(|p| (p != "server", natural(p)));
    v
}

/// The columns of `e`'s sender and receiver among `parties`, if both have one.
fn columns(parties: &[String], e: &Entry) -> Option<(usize, usize)> {
    let col = |who: &String| parties.iter().position(|p| p == who);
    Some((col(&e.from)?, col(&e.to)?))
}

/// Whether a transcript note starts a fault (a fault step or a `[[fault]]`), and how
/// long its window is, in ms, when the note says.
pub fn fault_note(note: &str) -> Option<Option<u64>> {
    const FAULTS: &[&str] = &[
        "overload",
        "partition",
        "repair",
        "latency",
        "loss",
        "crash",
        "restart",
        "store-fail",
        "disk-full",
    ];
    let inner = note.split_once('(')?.1.split_once(')')?.0;
    let mut words = inner.split_whitespace();
    let first = words.next()?;
    let kind = if FAULTS.contains(&first) {
        first
    } else {
        words.next().filter(|w| FAULTS.contains(w))?
    };
    let _ = kind;
    let ms = inner
        .split_whitespace()
        .find_map(|w| w.strip_suffix("ms").and_then(|n| n.parse().ok()));
    Some(ms)
}

/// The text ladder of `t`.
pub fn text(t: &Transcript) -> String {
    let entries = t.entries();
    let parties = parties(&entries);
    let width = parties.len().max(1) * COL + TIME_W;
    let x = |i: usize| TIME_W + i * COL + COL / 2;
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
            let note = String::from_utf8_lossy(&e.bytes);
            match fault_note(&note) {
                Some(_) => {
                    let _ = writeln!(out, "!! {:.3}s {note} !!", e.at.as_secs_f64());
                }
                None => {
                    let _ = writeln!(out, "-- {note} --");
                }
            }
            continue;
        }
        let Some((a, b)) = columns(&parties, e) else {
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
        let time: Vec<char> = format!("{:>8.3}s", e.at.as_secs_f64()).chars().collect();
        for (k, c) in time.iter().take(TIME_W - 1).enumerate() {
            line[k] = *c;
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

/// A self-contained HTML page with the SVG ladder of `t`, titled `title` (the first
/// page of [`html_pages`]; a note says when there are more).
pub fn html(t: &Transcript, title: &str) -> String {
    html_pages(t, title, title)
        .into_iter()
        .next()
        .map(|(_, page)| page)
        .unwrap_or_default()
}

/// The ladder of `t` as HTML pages of at most [`PAGE_ROWS`] rows: `(file suffix,
/// page)`, the first with suffix "" (`<stem>.html`), then `-2`, `-3`, ... Each page
/// links to the previous and next (`<stem><suffix>.html`).
pub fn html_pages(t: &Transcript, title: &str, stem: &str) -> Vec<(String, String)> {
    let entries = t.entries();
    let parties = parties(&entries);
    let chunks: Vec<&[Entry]> = match entries.is_empty() {
        true => vec![&entries[..]],
        false => entries.chunks(PAGE_ROWS).collect(),
    };
    let n = chunks.len().max(1);
    let file = |i: usize| match i {
        0 => format!("{}.html", esc(stem)),
        _ => format!("{}-{}.html", esc(stem), i + 1),
    };
    let mut pages = Vec::new();
    for (i, rows) in chunks.iter().enumerate() {
        let mut nav = format!(
            "<p>Hover an arrow for the whole SIP message. Page {} of {n}.",
            i + 1
        );
        if i > 0 {
            let _ = write!(nav, r#" <a href="{}">previous</a>"#, file(i - 1));
        }
        if i + 1 < n {
            let _ = write!(nav, r#" <a href="{}">next</a>"#, file(i + 1));
        }
        nav.push_str("</p>");
        let page = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
             <body><h1>{t}</h1>{nav}{svg}</body></html>\n",
            t = esc(title),
            svg = svg(rows, &parties)
        );
        let suffix = if i == 0 {
            String::new()
        } else {
            format!("-{}", i + 1)
        };
        pages.push((suffix, page));
    }
    pages
}

/// The SVG drawing of `rows` with lifelines for `parties`.
fn svg(rows: &[Entry], parties: &[String]) -> String {
    let rowh = 26usize;
    let (colw, top, left) = (
        (2200 / parties.len().max(1)).clamp(60, 220),
        50usize,
        110usize,
    );
    let x = |i: usize| left + i * colw + colw / 2;
    let width = left + 40 + parties.len().max(1) * colw;
    let height = top + (rows.len() + 1) * rowh;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="12">"#
    );
    svg.push_str(r#"<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>"#);
    fault_bands(&mut svg, rows, top, rowh, width);
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
    for (row, e) in rows.iter().enumerate() {
        let y = top + row * rowh;
        if e.from == "#" {
            let note = String::from_utf8_lossy(&e.bytes);
            let colour = if fault_note(&note).is_some() {
                "#c00"
            } else {
                "#36c"
            };
            let _ = write!(
                svg,
                r##"<text x="10" y="{y}" fill="{colour}">{}</text>"##,
                esc(&note)
            );
            continue;
        }
        let Some((a, b)) = columns(parties, e) else {
            continue;
        };
        let full = esc(&String::from_utf8_lossy(&e.bytes));
        let _ = write!(
            svg,
            r##"<g><title>{full}</title><text x="10" y="{y}" fill="#777">{:.3}s</text><line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#333" marker-end="url(#a)"/><text x="{}" y="{}" text-anchor="middle">{}</text></g>"##,
            e.at.as_secs_f64(),
            x(a),
            x(b),
            (x(a) + x(b)) / 2,
            y - 4,
            esc(&label(&e.bytes))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Shades the rows inside each fault window whose length the note gives.
fn fault_bands(svg: &mut String, rows: &[Entry], top: usize, rowh: usize, width: usize) {
    for (i, e) in rows.iter().enumerate().filter(|(_, e)| e.from == "#") {
        let Some(Some(ms)) = fault_note(&String::from_utf8_lossy(&e.bytes)) else {
            continue;
        };
        let end = e.at + std::time::Duration::from_millis(ms);
        let last = rows[i..].iter().take_while(|r| r.at <= end).count();
        let _ = write!(
            svg,
            r##"<rect x="0" y="{}" width="{width}" height="{}" fill="#fdd" opacity="0.5"/>"##,
            top + i * rowh - rowh + 6,
            last * rowh
        );
    }
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
        assert!(
            lines[0].find("server") < lines[0].find("user1"),
            "server first: {out}"
        );
        assert_eq!(lines[1], "-- step 1 (user1 join Design) --");
        assert!(
            lines[2].contains("INFO cmd:join") && lines[2].contains("|<"),
            "{out}"
        );
        assert!(
            lines[3].contains(">|") && lines[3].contains("200 OK"),
            "{out}"
        );
        assert_eq!(lines[2].matches('|').count(), 2, "{out}");
        assert!(
            lines[2].trim_start().starts_with("0.0"),
            "time column: {out}"
        );
    }

    #[test]
    fn faults_are_marked_and_large_runs_paged() {
        assert_eq!(
            fault_note("fault 1 (partition 2000ms): server | u1"),
            Some(Some(2000))
        );
        assert_eq!(fault_note("step 3 ( crash): server crashed"), Some(None));
        assert_eq!(fault_note("step 3 (user1 post Design)"), None);
        let t = sample();
        t.note("step 2 ( partition): server | user1");
        assert!(text(&t).contains("!! "), "{}", text(&t));
        for i in 0..(PAGE_ROWS + 5) {
            t.record(
                "user1",
                "server",
                format!("OPTIONS sip:{i} SIP/2.0\r\n\r\n").as_bytes(),
            );
        }
        let pages = html_pages(&t, "big", "big");
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[1].0, "-2");
        assert!(pages[0].1.contains(r#"<a href="big-2.html">next</a>"#));
        assert!(pages[1].1.contains(r#"<a href="big.html">previous</a>"#));
        let mut names = vec!["user10".to_string(), "server".into(), "user2".into()];
        names.sort_by_key(|p| (p != "server", natural(p)));
        assert_eq!(names, ["server", "user2", "user10"]);
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
