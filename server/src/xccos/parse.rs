//! XCCOS parser (`XCCOS.md` "Envelope" and all message shapes), built on `quick-xml`.
//!
//! The body is first read into a small element tree (bounded: at most
//! [`MAX_BODY`] bytes and [`MAX_DEPTH`] levels), then interpreted. Tolerated:
//! extra root attributes (`xmlns:xsd`, `xmlns:xsi`, …), a namespace prefix on the
//! root (`<p:xccos xmlns:p="urn:parlano:xml:ns:xccos">`), whitespace, comments and
//! processing instructions between elements, unknown attributes and elements,
//! attributes in any order and with either quote, entity and numeric character
//! references, CDATA, a UTF-8 BOM and an XML declaration. Text is not end-of-line
//! normalized: raw CRLF in `<chat>` is kept as CRLF. A DOCTYPE is rejected.
//!
//! No input can make the parser panic.

use std::borrow::Cow;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::codes;
pub use super::elem::XccosError;
use super::elem::{parse_bool, parse_u32, parse_u64, reply_id_for, Elem};
use super::model::*;

/// Largest accepted body in bytes (1 MiB); larger bodies fail with code 413.
pub const MAX_BODY: usize = 1 << 20;

/// Deepest accepted element nesting (the root counts as level 1); deeper input
/// fails with code 400.
pub const MAX_DEPTH: usize = 32;

impl XccosError {
    /// An error reply to the command that failed to parse: id from
    /// [`reply_id_for`]`(cmd_id)`, `seqid` and `commandid` from the error (seqid
    /// defaults to 1), `resp` = this error's code and token, no `data`.
    /// `None` when `envid` or `cmd_id` was not readable (nothing to address).
    pub fn to_rpl(&self) -> Option<Rpl> {
        let envid = self.envid?;
        let cmd_id = self.cmd_id.as_deref()?;
        let seqid = self.seqid.unwrap_or(1);
        Some(Rpl {
            id: reply_id_for(cmd_id),
            seqid,
            command: Some(CommandRef { seqid, envid }),
            resp: Some(Resp::new(self.code)),
            data: RplData::None,
        })
    }
}

/// Parses one XCCOS body (the payload of a SIP INFO) into an [`Envelope`].
///
/// Accepts every shape [`Envelope::write`] produces plus the tolerated
/// variations listed in the module docs. Reply and notice data are decoded by
/// their id (see [`RplData`], [`NtcData`]); unrecognized reply/notice data yields
/// `RplData::Empty`/`NtcData::Empty` instead of an error.
///
/// # Errors
/// An [`XccosError`] with code 400, 413 or 501 as described there.
pub fn parse(input: &[u8]) -> Result<Envelope, XccosError> {
    let mut ctx = Ctx::default();
    if input.len() > MAX_BODY {
        return Err(ctx.err(
            codes::TOO_LARGE,
            format!("body is {} bytes, limit is {MAX_BODY}", input.len()),
        ));
    }
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(input)
        .map_err(|e| ctx.err(codes::BAD_REQUEST, format!("body is not valid UTF-8: {e}")))?;
    let root = build_tree(text, &mut ctx)?;
    interpret(root, &ctx)
}

/// Addressing info collected while reading, used to fill errors.
#[derive(Default)]
struct Ctx {
    envid: Option<u64>,
    cmd_id: Option<String>,
    seqid: Option<u64>,
    /// The root element's namespace prefix, if any.
    root_prefix: Option<String>,
}

impl Ctx {
    fn err(&self, code: u16, reason: impl Into<String>) -> XccosError {
        XccosError {
            code,
            envid: self.envid,
            cmd_id: self.cmd_id.clone(),
            seqid: self.seqid,
            reason: reason.into(),
        }
    }
    fn bad(&self, reason: impl Into<String>) -> XccosError {
        self.err(codes::BAD_REQUEST, reason)
    }
}

fn build_tree(text: &str, ctx: &mut Ctx) -> Result<Elem, XccosError> {
    let mut reader = Reader::from_str(text);
    let cfg = reader.config_mut();
    cfg.trim_text(false);
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.allow_unmatched_ends = false;
    let mut stack: Vec<Elem> = Vec::new();
    let mut root: Option<Elem> = None;
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                return Err(ctx.bad(format!(
                    "not well-formed XML at byte {}: {e}",
                    reader.error_position()
                )))
            }
        };
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if root.is_some() {
                    return Err(ctx.bad("more than one root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ctx.bad(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                let el = read_start(s, &reader, ctx)?;
                note_open(&el, s, stack.len(), ctx);
                if matches!(ev, Event::Start(_)) {
                    stack.push(el);
                } else {
                    finish(el, &mut stack, &mut root);
                }
            }
            Event::End(_) => match stack.pop() {
                Some(el) => finish(el, &mut stack, &mut root),
                None => return Err(ctx.bad("unmatched end tag")),
            },
            Event::Text(t) => {
                let s = t.decode().map_err(|e| ctx.bad(format!("bad text: {e}")))?;
                push_text(&mut stack, &s, ctx)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| ctx.bad(format!("bad CDATA: {e}")))?;
                if stack.is_empty() {
                    return Err(ctx.bad("CDATA outside the root element"));
                }
                push_text(&mut stack, &s, ctx)?;
            }
            Event::GeneralRef(r) => push_ref(&r, &mut stack, ctx)?,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::DocType(_) => return Err(ctx.bad("DOCTYPE is not allowed")),
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(ctx.bad(format!(
            "unexpected end of body: <{}> is not closed",
            open.name
        )));
    }
    root.ok_or_else(|| ctx.bad("empty body: no root element"))
}

/// Appends what reference `r` (`&#N;`, `&#xN;` or a predefined entity) stands for to
/// the open element's text.
fn push_ref(r: &BytesRef<'_>, stack: &mut [Elem], ctx: &Ctx) -> Result<(), XccosError> {
    let name = r
        .decode()
        .map_err(|e| ctx.bad(format!("bad reference: {e}")))?;
    let mut tmp = [0u8; 4];
    let resolved: &str = match r.resolve_char_ref() {
        Ok(Some(ch)) => ch.encode_utf8(&mut tmp),
        Ok(None) => match resolve_predefined_entity(&name) {
            Some(s) => s,
            None => return Err(ctx.bad(format!("unknown entity &{name};"))),
        },
        Err(e) => return Err(ctx.bad(format!("bad character reference &{name};: {e}"))),
    };
    if stack.is_empty() {
        return Err(ctx.bad("reference outside the root element"));
    }
    push_text(stack, resolved, ctx)
}

fn finish(el: Elem, stack: &mut [Elem], root: &mut Option<Elem>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Elem], s: &str, ctx: &Ctx) -> Result<(), XccosError> {
    match stack.last_mut() {
        Some(top) => {
            top.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(ctx.bad("text outside the root element")),
    }
}

fn read_start(s: &BytesStart<'_>, reader: &Reader<&[u8]>, ctx: &Ctx) -> Result<Elem, XccosError> {
    let name = utf8(s.local_name().into_inner(), ctx)?.to_owned();
    let mut attrs = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| ctx.bad(format!("bad attribute on <{name}>: {e}")))?;
        let key = utf8(a.key.as_ref(), ctx)?.to_owned();
        let value = a
            .decode_and_unescape_value(reader.decoder())
            .map_err(|e| ctx.bad(format!("bad value of attribute {key} on <{name}>: {e}")))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Elem {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Records addressing information as soon as the root and its child open, so
/// later errors can carry it.
fn note_open(el: &Elem, s: &BytesStart<'_>, depth: usize, ctx: &mut Ctx) {
    match depth {
        0 => {
            ctx.envid = el.attr("envid").and_then(parse_u64);
            ctx.root_prefix = s
                .name()
                .prefix()
                .and_then(|p| std::str::from_utf8(p.into_inner()).ok())
                .map(str::to_owned);
        }
        1 if ctx.cmd_id.is_none() && (el.name == "cmd" || el.name == "grpchat") => {
            ctx.cmd_id = Some(el.attr("id").unwrap_or(el.name.as_str()).to_owned());
            ctx.seqid = el.attr("seqid").and_then(parse_u64);
        }
        _ => {}
    }
}

fn utf8<'a>(b: &'a [u8], ctx: &Ctx) -> Result<&'a str, XccosError> {
    std::str::from_utf8(b).map_err(|_| ctx.bad("name is not valid UTF-8"))
}

fn interpret(mut root: Elem, ctx: &Ctx) -> Result<Envelope, XccosError> {
    if root.name != "xccos" {
        return Err(ctx.bad(format!("root element is <{}>, expected <xccos>", root.name)));
    }
    let ns_attr: Cow<'_, str> = match &ctx.root_prefix {
        Some(p) => format!("xmlns:{p}").into(),
        None => "xmlns".into(),
    };
    match root.attr(&ns_attr) {
        Some(NS) => {}
        Some(other) => {
            return Err(ctx.bad(format!("root namespace is \"{other}\", expected \"{NS}\"")))
        }
        None => {
            return Err(ctx.bad(format!(
                "root element has no {ns_attr} attribute, expected \"{NS}\""
            )))
        }
    }
    let envid = match root.attr("envid") {
        None => return Err(ctx.bad("missing envid attribute on <xccos>")),
        Some(v) => parse_u64(v)
            .ok_or_else(|| ctx.bad(format!("envid \"{v}\" is not an unsigned integer")))?,
    };
    if root.children.len() != 1 {
        return Err(ctx.bad(format!(
            "<xccos> must have exactly one child element, found {}",
            root.children.len()
        )));
    }
    let child = root.children.remove(0);
    let body = match child.name.as_str() {
        "cmd" => Body::Cmd(parse_cmd(child, ctx)?),
        "rpl" => Body::Rpl(parse_rpl(&child, ctx)?),
        "ntc" => Body::Ntc(parse_ntc(&child, ctx)?),
        "grpchat" => Body::GrpChat(parse_grpchat(&child, ctx)?),
        other => {
            return Err(ctx.bad(format!(
                "unknown message element <{other}>, expected cmd, rpl, ntc or grpchat"
            )))
        }
    };
    Ok(Envelope { envid, body })
}

/// A `<cmd>`: its `id` must be present; the element is handed on as it is, and the
/// command registry (`crate::cmd`) decodes it by id.
fn parse_cmd(el: Elem, ctx: &Ctx) -> Result<Elem, XccosError> {
    if el.attr("id").is_none() {
        return Err(ctx.bad("cmd: missing id attribute"));
    }
    Ok(el)
}

fn parse_rpl(el: &Elem, ctx: &Ctx) -> Result<Rpl, XccosError> {
    let Some(id) = el.attr("id") else {
        return Err(ctx.bad("rpl: missing id attribute"));
    };
    let u64_attr = |e: &Elem, key: &str| -> Result<u64, XccosError> {
        match e.attr(key) {
            None => Err(ctx.bad(format!("{id}: missing {key} attribute on {}", e.name))),
            Some(v) => parse_u64(v).ok_or_else(|| {
                ctx.bad(format!(
                    "{id}: {} {key} \"{v}\" is not an unsigned integer",
                    e.name
                ))
            }),
        }
    };
    let seqid = u64_attr(el, "seqid")?;
    let command = match el.child("commandid") {
        None => None,
        Some(c) => Some(CommandRef {
            seqid: u64_attr(c, "seqid")?,
            envid: u64_attr(c, "envid")?,
        }),
    };
    let resp = match el.child("resp") {
        None => None,
        Some(r) => {
            let code = u64_attr(r, "code")?;
            let code = u16::try_from(code)
                .map_err(|_| ctx.bad(format!("{id}: resp code {code} is out of range")))?;
            Some(Resp {
                code,
                token: r.text.trim().to_owned(),
            })
        }
    };
    let data = match el.child("data") {
        None => RplData::None,
        Some(d) => rpl_data(id, d).unwrap_or(RplData::Empty),
    };
    Ok(Rpl {
        id: id.to_owned(),
        seqid,
        command,
        resp,
        data,
    })
}

/// Decodes reply data by reply id; `None` means "not recognized" (→ `Empty`).
fn rpl_data(id: &str, d: &Elem) -> Option<RplData> {
    match id {
        "rpl:requri" => Some(RplData::Uib(d.child("uib")?.attr("uri")?.to_owned())),
        "rpl:getftok" | "rpl:gethttptok" => {
            let t = d.child("token")?;
            Some(RplData::Token {
                token: t.attr("token")?.to_owned(),
                server_uri: t.attr("serveruri").unwrap_or("").to_owned(),
            })
        }
        "rpl:getservinfo" => Some(RplData::ServerInfo(server_info(d.child("sib")?)?)),
        "rpl:join"
        | "rpl:bjoin"
        | "rpl:getassociations"
        | "rpl:getinv"
        | "rpl:createroom"
        | "rpl:updateroom" => rooms_data(d),
        "rpl:bccontext" => {
            let ch = d.child("chanib")?;
            let chan_uri = ch.attr("uri")?;
            let msgs = ch
                .children_named("msg")
                .map(|m| grpchat_fields(m, Some(chan_uri)).ok())
                .collect::<Option<Vec<_>>>()?;
            Some(RplData::History {
                chan_uri: chan_uri.to_owned(),
                msgs,
            })
        }
        "rpl:chansrch" => {
            let hits = d
                .children_named("chanib")
                .map(search_hit)
                .collect::<Option<Vec<_>>>()?;
            match d.child("more") {
                None => Some(RplData::Search(hits)),
                Some(m) => Some(RplData::SearchCapped {
                    hits,
                    limit: parse_u32(m.attr("limit")?)?,
                }),
            }
        }
        "rpl:getpref" | "rpl:setpref" => {
            let pref = d.child("pref")?;
            Some(RplData::Pref {
                label: pref.attr("label")?.to_owned(),
                seqid: parse_u64(pref.attr("seqid")?)?,
                content: pref.attr("content").unwrap_or("").to_owned(),
            })
        }
        "rpl:part" => Some(RplData::Chan(d.child("chanib")?.attr("uri")?.to_owned())),
        _ => None,
    }
}

/// `<sib infoType serverTime searchLimit …/>`: absent attributes read as `""` / 0.
fn server_info(s: &Elem) -> Option<ServerInfo> {
    let str_attr = |k: &str| s.attr(k).unwrap_or("").to_owned();
    let num = |k: &str| match s.attr(k) {
        None => Some(0),
        Some(v) => parse_u32(v),
    };
    Some(ServerInfo {
        info_type: str_attr("infoType"),
        server_time: str_attr("serverTime"),
        search_limit: num("searchLimit")?,
        message_size_limit: num("messageSizeLimit")?,
        story_size_limit: num("storySizeLimit")?,
        root_uri: str_attr("rootUri"),
        db_version: str_attr("dbVersion"),
    })
}

/// The rooms (`chanib`) and users (`uib`) of a join/associations-style reply.
fn rooms_data(d: &Elem) -> Option<RplData> {
    let mut rooms = Vec::new();
    let mut users = Vec::new();
    for c in &d.children {
        match c.name.as_str() {
            "chanib" => rooms.push(room_info(c)?),
            "uib" => users.push(UserRef {
                id: parse_u32(c.attr("id")?)?,
                uri: c.attr("uri")?.to_owned(),
            }),
            _ => {}
        }
    }
    Some(RplData::Rooms { rooms, users })
}

fn room_info(c: &Elem) -> Option<RoomInfo> {
    let s = |k: &str| c.attr(k).unwrap_or("").to_owned();
    let mut room = RoomInfo {
        uri: c.attr("uri")?.to_owned(),
        name: s("name"),
        topic: s("topic"),
        description: s("description"),
        participants: Vec::new(),
        managers: Vec::new(),
    };
    for aib in c.children_named("aib") {
        let ids = || parse_ids(aib.attr("value").unwrap_or(""));
        match aib.attr("key").and_then(parse_u32) {
            Some(AIB_PARTICIPANTS) => room.participants.extend(ids()?),
            Some(AIB_MANAGERS) => room.managers.extend(ids()?),
            _ => {}
        }
    }
    Some(room)
}

fn search_hit(c: &Elem) -> Option<SearchHit> {
    let s = |k: &str| c.attr(k).unwrap_or("").to_owned();
    let mut ext: Option<SearchExtended> = None;
    for x in c
        .children
        .iter()
        .filter(|x| x.name == "info" || x.name == "prop")
    {
        let e = ext.get_or_insert_with(|| SearchExtended {
            user_count: 0,
            visibility: String::new(),
            filepost: false,
            invite: false,
            logged: false,
        });
        match x.attr("id") {
            Some(INFO_UCNT) => e.user_count = parse_u32(&x.text)?,
            Some(INFO_VISIBILITY) => e.visibility = x.text.clone(),
            Some(PROP_FILEPOST) => e.filepost = parse_bool(&x.text)?,
            Some(PROP_INVITE) => e.invite = parse_bool(&x.text)?,
            Some(PROP_LOGGED) => e.logged = parse_bool(&x.text)?,
            _ => {}
        }
    }
    Some(SearchHit {
        uri: c.attr("uri")?.to_owned(),
        name: s("name"),
        description: s("description"),
        extended: ext,
    })
}

fn parse_ntc(el: &Elem, ctx: &Ctx) -> Result<Ntc, XccosError> {
    let Some(id) = el.attr("id") else {
        return Err(ctx.bad("ntc: missing id attribute"));
    };
    let data = el
        .child("data")
        .and_then(|d| ntc_data(id, d))
        .unwrap_or(NtcData::Empty);
    Ok(Ntc {
        id: id.to_owned(),
        data,
    })
}

fn ntc_data(id: &str, d: &Elem) -> Option<NtcData> {
    match id {
        "ntc:join" | "ntc:bjoin" => {
            let uib = d.child("uib")?;
            let aib = uib.child("aib")?;
            Some(NtcData::Join {
                user: uib.attr("uri")?.to_owned(),
                domain: aib.attr("domain")?.to_owned(),
                room_guid: aib.attr("value")?.to_owned(),
            })
        }
        "ntc:chanupdate" => Some(NtcData::ChanUpdate(room_info(d.child("chanib")?)?)),
        "ntc:newcontent" => {
            let ch = d.child("chanib")?;
            Some(NtcData::NewContent {
                chan_uri: ch.attr("uri")?.to_owned(),
                unread: parse_u64(ch.attr("unread")?)?,
            })
        }
        "ntc:part" => {
            let ch = d.child("chanib")?;
            Some(NtcData::Part {
                chan_uri: ch.attr("uri")?.to_owned(),
                user: ch.child("uib")?.attr("uri")?.to_owned(),
            })
        }
        _ => None,
    }
}

fn parse_grpchat(el: &Elem, ctx: &Ctx) -> Result<GrpChat, XccosError> {
    grpchat_fields(el, None).map_err(|why| ctx.bad(format!("grpchat: {why}")))
}

/// Reads `grpchat`/`msg` attributes and `<chat>`; `default_chan` fills a missing `chanUri`.
fn grpchat_fields(el: &Elem, default_chan: Option<&str>) -> Result<GrpChat, String> {
    let seqid = match el.attr("seqid") {
        None => 0,
        Some(v) => {
            parse_u64(v).ok_or_else(|| format!("seqid \"{v}\" is not an unsigned integer"))?
        }
    };
    let chan_uri = el
        .attr("chanUri")
        .or(default_chan)
        .ok_or_else(|| "missing chanUri attribute".to_owned())?;
    let chat = el
        .child("chat")
        .ok_or_else(|| "missing chat element".to_owned())?;
    Ok(GrpChat {
        msgid: el.attr("msgid").map(str::to_owned),
        seqid,
        chan_uri: chan_uri.to_owned(),
        author: el.attr("author").map(str::to_owned),
        ts: el.attr("ts").map(str::to_owned),
        text: chat.text.clone(),
    })
}

/// `"0,1,2"` → `[0, 1, 2]`; empty segments are skipped.
fn parse_ids(s: &str) -> Option<Vec<u32>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_u32)
        .collect()
}
