//! XCCOS serializer (`XCCOS.md` wire shapes) on the one XML writer of the server,
//! [`crate::xml::XmlWriter`]: quick-xml's `Writer` fed start/empty/end/text events whose
//! values are escaped by [`crate::xml`]'s XML 1.0 character rules (shared with the
//! provisioning and compliance documents).
//!
//! Output is deterministic and compact: no XML declaration, no whitespace between
//! elements, attributes in the fixed order of the `XCCOS.md` examples, double-quoted
//! attribute values. It runs once per relayed post and per reply, so the writer builds
//! each start tag in a reused buffer and appends straight to the caller's `Vec`.

use super::elem::{bool_str, W};
use super::model::*;
pub use crate::xml::{escape_attr_into, escape_text_into};

impl Envelope {
    /// Appends the XML of this envelope to `out`:
    /// `<xccos ver="1" envid="N" xmlns="urn:parlano:xml:ns:xccos">…</xccos>`.
    /// Never fails; see the module docs for escaping.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut w = W::over(out);
        w.open("xccos");
        w.attr("ver", "1");
        w.attr_u64("envid", self.envid);
        w.attr("xmlns", NS);
        w.gt();
        match &self.body {
            Body::Cmd(c) => c.write(&mut w),
            Body::Rpl(r) => w.rpl(r),
            Body::Ntc(n) => w.ntc(n),
            Body::GrpChat(g) => w.grpchat("grpchat", g),
        }
        w.close("xccos");
    }

    /// The envelope as freshly allocated UTF-8 bytes (see [`Envelope::write`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write(&mut out);
        out
    }

    /// The envelope as a `String` (see [`Envelope::write`]).
    pub fn to_xml(&self) -> String {
        let bytes = self.to_bytes();
        // The writer only emits valid UTF-8; the fallback is unreachable but panic-free.
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

impl W<'_> {
    /// `<name>text</name>`
    fn text_elem(&mut self, name: &str, id: &str, text: &str) {
        self.open(name);
        self.attr("id", id);
        self.gt();
        self.text(text);
        self.close(name);
    }

    /// `<data><{name} k="v" .../></data>`: a command whose data is one empty element.
    fn data_elem(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start("data", &[]);
        self.empty(name, attrs);
        self.close("data");
    }

    /// `<data><pref label seqid content/></data>`: the reply of getpref/setpref.
    fn pref_data(&mut self, label: &str, seqid: u64, content: &str) {
        self.start("data", &[]);
        self.open("pref");
        self.attr("label", label);
        self.attr_u64("seqid", seqid);
        self.attr("content", content);
        self.slash_gt();
        self.close("data");
    }

    fn rpl(&mut self, r: &Rpl) {
        self.open("rpl");
        self.attr("id", &r.id);
        self.attr_u64("seqid", r.seqid);
        self.gt();
        if let Some(c) = &r.command {
            self.open("commandid");
            self.attr_u64("seqid", c.seqid);
            self.attr_u64("envid", c.envid);
            self.slash_gt();
        }
        if let Some(resp) = &r.resp {
            self.open("resp");
            self.attr_u64("code", u64::from(resp.code));
            self.gt();
            self.text(&resp.token);
            self.close("resp");
        }
        self.rpl_data(&r.data);
        self.close("rpl");
    }

    fn rpl_data(&mut self, d: &RplData) {
        match d {
            RplData::None => {}
            RplData::Empty => {
                self.empty("data", &[]);
            }
            RplData::Uib(uri) => self.data_elem("uib", &[("uri", uri)]),
            RplData::ServerInfo(s) => self.data_elem(
                "sib",
                &[
                    ("infoType", &s.info_type),
                    ("serverTime", &s.server_time),
                    ("searchLimit", &s.search_limit.to_string()),
                    ("messageSizeLimit", &s.message_size_limit.to_string()),
                    ("storySizeLimit", &s.story_size_limit.to_string()),
                    ("rootUri", &s.root_uri),
                    ("dbVersion", &s.db_version),
                ],
            ),
            RplData::Rooms { rooms, users } => {
                self.data(rooms.is_empty() && users.is_empty(), |w| {
                    for room in rooms {
                        w.room(room);
                    }
                    for u in users {
                        w.open("uib");
                        w.attr_u64("id", u64::from(u.id));
                        w.attr("uri", &u.uri);
                        w.slash_gt();
                    }
                })
            }
            RplData::History { chan_uri, msgs } => {
                self.start("data", &[]);
                if msgs.is_empty() {
                    self.empty("chanib", &[("uri", chan_uri)]);
                } else {
                    self.open("chanib");
                    self.attr("uri", chan_uri);
                    self.gt();
                    for m in msgs {
                        self.grpchat("msg", m);
                    }
                    self.close("chanib");
                }
                self.close("data");
            }
            RplData::Search(hits) => self.search_data(hits, None),
            RplData::Chan(uri) => self.data_elem("chanib", &[("uri", uri)]),
            RplData::SearchCapped { hits, limit } => self.search_data(hits, Some(*limit)),
            RplData::Pref {
                label,
                seqid,
                content,
            } => {
                self.pref_data(label, *seqid, content);
            }
            RplData::Token { token, server_uri } => {
                self.data_elem("token", &[("token", token), ("serveruri", server_uri)])
            }
        }
    }

    fn room(&mut self, room: &RoomInfo) {
        self.open("chanib");
        self.attr("uri", &room.uri);
        self.attr("name", &room.name);
        self.attr("topic", &room.topic);
        self.attr("description", &room.description);
        if room.participants.is_empty() && room.managers.is_empty() {
            self.slash_gt();
            return;
        }
        self.gt();
        for (key, ids) in [
            (AIB_PARTICIPANTS, &room.participants),
            (AIB_MANAGERS, &room.managers),
        ] {
            if !ids.is_empty() {
                self.open("aib");
                self.attr_u64("key", u64::from(key));
                self.attr_ids("value", ids);
                self.slash_gt();
            }
        }
        self.close("chanib");
    }

    /// `<data>` with the hits and, when capped, `<more limit="N"/>`; `<data/>` when
    /// there is neither.
    fn search_data(&mut self, hits: &[SearchHit], limit: Option<u32>) {
        self.data(hits.is_empty() && limit.is_none(), |w| {
            for h in hits {
                w.search_hit(h);
            }
            if let Some(limit) = limit {
                w.open("more");
                w.attr_u64("limit", u64::from(limit));
                w.slash_gt();
            }
        });
    }

    /// `<data/>` when `empty`, else `<data>`, what `body` writes, `</data>`.
    fn data(&mut self, empty: bool, body: impl FnOnce(&mut Self)) {
        if empty {
            self.empty("data", &[]);
            return;
        }
        self.start("data", &[]);
        body(self);
        self.close("data");
    }

    fn search_hit(&mut self, h: &SearchHit) {
        self.open("chanib");
        self.attr("name", &h.name);
        self.attr("description", &h.description);
        self.attr("uri", &h.uri);
        let Some(x) = &h.extended else {
            self.slash_gt();
            return;
        };
        self.gt();
        self.open("info");
        self.attr("id", INFO_UCNT);
        self.gt();
        self.text_u64(u64::from(x.user_count));
        self.close("info");
        self.text_elem("info", INFO_VISIBILITY, &x.visibility);
        self.text_elem("prop", PROP_FILEPOST, bool_str(x.filepost));
        self.text_elem("prop", PROP_INVITE, bool_str(x.invite));
        self.text_elem("prop", PROP_LOGGED, bool_str(x.logged));
        self.close("chanib");
    }

    fn ntc(&mut self, n: &Ntc) {
        self.open("ntc");
        self.attr("id", &n.id);
        self.gt();
        match &n.data {
            NtcData::Join {
                user,
                domain,
                room_guid,
            } => {
                self.start("data", &[]);
                self.open("uib");
                self.attr("uri", user);
                self.gt();
                self.open("aib");
                self.attr_u64("key", u64::from(AIB_PARTICIPANTS));
                self.attr("domain", domain);
                self.attr("value", room_guid);
                self.slash_gt();
                self.close("uib").close("data");
            }
            NtcData::Part { chan_uri, user } => {
                self.start("data", &[]);
                self.open("chanib");
                self.attr("uri", chan_uri);
                self.gt();
                self.open("uib");
                self.attr("uri", user);
                self.slash_gt();
                self.close("chanib").close("data");
            }
            NtcData::ChanUpdate(room) => {
                self.start("data", &[]);
                self.room(room);
                self.close("data");
            }
            NtcData::NewContent { chan_uri, unread } => self.data_elem(
                "chanib",
                &[("uri", chan_uri), ("unread", &unread.to_string())],
            ),
            NtcData::Empty => {
                self.empty("data", &[]);
            }
        }
        self.close("ntc");
    }

    /// `<{elem} id="grpchat" seqid msgid? chanUri author? ts?><chat>text</chat></{elem}>`
    fn grpchat(&mut self, elem: &str, g: &GrpChat) {
        self.open(elem);
        self.attr("id", "grpchat");
        self.attr_u64("seqid", g.seqid);
        if let Some(m) = &g.msgid {
            self.attr("msgid", m);
        }
        self.attr("chanUri", &g.chan_uri);
        if let Some(a) = &g.author {
            self.attr("author", a);
        }
        if let Some(ts) = &g.ts {
            self.attr("ts", ts);
        }
        self.gt();
        self.start("chat", &[]);
        self.text(&g.text);
        self.close("chat");
        self.close(elem);
    }
}
