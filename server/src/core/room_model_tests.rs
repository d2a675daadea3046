//! The room model's rules, driven through the sans-IO core (SIP in, actions out):
//! - the authorization matrix: privacy x type x role x operation, every cell checked
//!   against the rules table of issue 3, written out independently of `authz`;
//! - a property test: random categories, rooms, users and operations; nothing sent to
//!   a user who may not know of a secret room ever contains its URI, name, description,
//!   topic or any message posted in it.

use super::*;
use crate::channel::authz;
use crate::clock::ManualClock;
use crate::cmd::history::BcQuery;
use crate::cmd::manage::{RoleChange, RoomAttrs};
use crate::cmd::{
    BJoin, BcContext, ChanSrch, Cmd, CmdKind, CreateRoom, GetAssociations, GetInv, GetPref, Join,
    NodesPermCreateChild, Part, SetPref, UpdateRoom,
};
use crate::config::{CategoryConfig, Config, Privacy, RoomConfig, RoomType};
use crate::sip::parse;
use crate::store::SqliteStore;
use crate::xccos::{self, Body, ChanRef, RplData};
use proptest::prelude::*;

const DOMAIN: &str = "contoso.com";

/// A core with signed-in users; user `i` talks on connection `i + 1`.
pub(super) struct H {
    pub(super) core: Core,
    pub(super) users: Vec<String>,
    pub(super) dialogs: Vec<Option<(String, String, String)>>,
    pub(super) cseq: u32,
    envid: u64,
}

pub(super) fn request_of(raw: &str) -> crate::sip::Request {
    match parse(raw.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

fn actions_to_texts(out: &[Action]) -> Vec<(ConnId, Vec<u8>)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { conn, head, body } => {
                let mut v = head.to_vec();
                v.extend_from_slice(body);
                Some((*conn, v))
            }
            Action::Close { .. } | Action::Http { .. } => None,
        })
        .collect()
}

/// The password user `uri` has in these tests.
pub(super) fn password_of(uri: &str) -> String {
    format!("pw-{}", crate::auth::users::key_of(uri))
}

impl H {
    /// A core whose users sign in with SIP Digest (mode "digest", one `[[user]]` with a
    /// password per user): the rules are checked for authenticated users.
    pub(super) fn new(mut cfg: Config, users: &[&str]) -> H {
        cfg.auth.mode = crate::config::AuthMode::Digest;
        cfg.users = users
            .iter()
            .map(|u| crate::config::UserConfig {
                uri: u.to_string(),
                password: Some(password_of(u)),
                ha1_sha256: None,
                ha1_md5: None,
            })
            .collect();
        let clock = Arc::new(ManualClock::new(crate::clock::SIM_EPOCH_MS));
        let store = SqliteStore::in_memory().unwrap();
        let core = Core::new(
            cfg,
            Box::new(store),
            clock,
            7,
            "10.0.0.1:5060",
            Default::default(),
        )
        .unwrap();
        H {
            core,
            users: users.iter().map(|u| u.to_string()).collect(),
            dialogs: vec![None; users.len()],
            cseq: 10,
            envid: 1000,
        }
    }

    /// What the host does with `raw` from `conn`: a message that parses goes to the
    /// core; one the parser refuses is answered with the refusal (`Input::Refused`).
    pub(super) fn send(&mut self, conn: ConnId, raw: &str) -> Vec<(ConnId, Vec<u8>)> {
        let input = match parse(raw.as_bytes()) {
            Ok(msg) => Input::Sip { conn, msg },
            Err(e) => {
                let server = crate::core::SERVER_HEADER;
                let head =
                    crate::sip::reject::response(raw.as_bytes(), e.code, &e.reason, &[], server)
                        .expect("a request is answered");
                Input::Refused { conn, head }
            }
        };
        let mut out = Vec::new();
        self.core.handle(input, &mut out);
        actions_to_texts(&out)
    }

    /// INVITE (answered 401, then again with Digest credentials) + ACK for user `i`
    /// (its URI from `users`).
    pub(super) fn sign_in(&mut self, i: usize) -> Vec<(ConnId, Vec<u8>)> {
        let uri = self.users[i].clone();
        let call_id = format!("call-{i}");
        let sdp = "v=0\r\no=- 0 0 IN IP4 10.0.0.5\r\ns=session\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=message 5060 sip null\r\n";
        let invite = |cseq: u32, auth: &str| {
            format!(
                "INVITE sip:pchat@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:1;branch=z9hG4bKinv{i}-{cseq}\r\n\
                 Max-Forwards: 70\r\nFrom: <{uri}>;tag=ft{i}\r\nTo: <sip:pchat@{DOMAIN}>\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:u{i}@10.0.0.5:1;transport=tcp>\r\n\
                 {auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            )
        };
        let first = invite(1, "");
        let out = self.send(ConnId(i as u64 + 1), &first);
        let challenge = match parse(&out[0].1).unwrap() {
            SipMessage::Response(r) => r,
            SipMessage::Request(_) => panic!("expected 401"),
        };
        assert_eq!(challenge.code, 401, "{uri} is challenged first");
        let key = crate::auth::users::key_of(&uri);
        let cred = crate::auth::tests::answer(
            &challenge,
            &request_of(&first),
            &key,
            &password_of(&uri),
            1,
        );
        let out = self.send(
            ConnId(i as u64 + 1),
            &invite(2, &format!("Authorization: {cred}\r\n")),
        );
        let ok = match parse(&out[0].1).unwrap() {
            SipMessage::Response(r) => r,
            SipMessage::Request(_) => panic!("expected 200"),
        };
        assert_eq!(ok.code, 200, "{uri} signs in");
        let to_tag = ok.to_tag().unwrap().to_string();
        let ack = format!(
            "ACK sip:10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:1;branch=z9hG4bKack{i}\r\n\
             Max-Forwards: 70\r\nFrom: <{uri}>;tag=ft{i}\r\nTo: <sip:pchat@{DOMAIN}>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        let mut all = out;
        all.extend(self.send(ConnId(i as u64 + 1), &ack));
        self.dialogs[i] = Some((call_id, format!("ft{i}"), to_tag));
        all
    }

    fn info(&mut self, i: usize, body: &str) -> Vec<(ConnId, Vec<u8>)> {
        let (call_id, from_tag, to_tag) = self.dialogs[i].clone().expect("signed in");
        self.cseq += 1;
        let raw = format!(
            "INFO sip:10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:1;branch=z9hG4bKi{c}\r\n\
             Max-Forwards: 70\r\nFrom: <{u}>;tag={from_tag}\r\nTo: <sip:pchat@{DOMAIN}>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: {c} INFO\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n\r\n{body}",
            c = self.cseq,
            u = self.users[i],
            len = body.len()
        );
        self.send(ConnId(i as u64 + 1), &raw)
    }

    /// Sends a command as user `i`; returns every output and the reply (code, data).
    pub(super) fn cmd(
        &mut self,
        i: usize,
        kind: CmdKind,
    ) -> (Vec<(ConnId, Vec<u8>)>, u16, RplData) {
        self.envid += 1;
        let envid = self.envid;
        let body = Cmd { seqid: 1, kind }.envelope(envid).to_xml();
        let out = self.info(i, &body);
        let rpl = out
            .iter()
            .filter(|(c, _)| *c == ConnId(i as u64 + 1))
            .filter_map(|(_, t)| match parse(t).ok()? {
                SipMessage::Request(r) => xccos::parse(&r.body).ok(),
                SipMessage::Response(_) => None,
            })
            .find_map(|env| match env.body {
                Body::Rpl(r) if r.command.is_some_and(|c| c.envid == envid) => Some(r),
                _ => None,
            })
            .expect("a reply to the command");
        let code = rpl.resp.map_or(500, |r| r.code);
        (out, code, rpl.data)
    }

    /// Posts as user `i`; returns every output and the SIP status of the INFO.
    pub(super) fn post(
        &mut self,
        i: usize,
        chan_uri: &str,
        text: &str,
    ) -> (Vec<(ConnId, Vec<u8>)>, u16) {
        self.envid += 1;
        let body = xccos::Envelope {
            envid: self.envid,
            body: Body::GrpChat(xccos::GrpChat {
                msgid: None,
                seqid: 1,
                chan_uri: chan_uri.to_string(),
                author: None,
                ts: None,
                text: text.to_string(),
            }),
        }
        .to_xml();
        let out = self.info(i, &body);
        let code = out
            .iter()
            .filter(|(c, _)| *c == ConnId(i as u64 + 1))
            .find_map(|(_, t)| match parse(t).ok()? {
                SipMessage::Response(r) => Some(r.code),
                SipMessage::Request(_) => None,
            })
            .expect("a response to the post");
        (out, code)
    }
}

fn uri_of(name: &str) -> String {
    crate::ids::room_uri(DOMAIN, &crate::ids::room_guid(DOMAIN, name))
}

// ------------------------------------------------------------ the matrix

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    NonMember,
    Member,
    Presenter,
    Manager,
    Creator,
    Denied,
    OtherDomain,
}

const ROLES: [Role; 7] = [
    Role::NonMember,
    Role::Member,
    Role::Presenter,
    Role::Manager,
    Role::Creator,
    Role::Denied,
    Role::OtherDomain,
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum MOp {
    Search,
    Join,
    ReadHistory,
    Post,
    Manage,
}

fn role_uri(r: Role) -> &'static str {
    match r {
        Role::NonMember => "sip:nobody@contoso.com",
        Role::Member => "sip:member@contoso.com",
        Role::Presenter => "sip:presenter@contoso.com",
        Role::Manager => "sip:manager@contoso.com",
        Role::Creator => "sip:creator@contoso.com",
        Role::Denied => "sip:denied@contoso.com",
        Role::OtherDomain => "sip:guest@fabrikam.com",
    }
}

/// The rules table of issue 3, cell by cell (200 = allowed; 404 = "not found", for
/// anyone who may not know the room exists; 403 = known but forbidden).
fn expected(p: Privacy, t: RoomType, role: Role, op: MOp) -> u16 {
    // Out of scope (denied, or outside the category's allowed domain) whatever the
    // room's lists say: the room does not exist for them.
    if matches!(role, Role::Denied | Role::OtherDomain) {
        return 404;
    }
    let member = matches!(role, Role::Member | Role::Presenter | Role::Manager);
    if p == Privacy::Secret && !member {
        return 404;
    }
    let may_enter = p == Privacy::Open || member;
    let ok = match op {
        MOp::Search => true,
        MOp::Join | MOp::ReadHistory => may_enter,
        MOp::Post => may_enter && (t == RoomType::Normal || role == Role::Presenter),
        MOp::Manage => role == Role::Manager,
    };
    if ok {
        200
    } else {
        403
    }
}

fn matrix_config() -> Config {
    let mut cfg = Config::embedded_default();
    let mut cat = CategoryConfig::implicit_default(DOMAIN);
    cat.name = "Cat".into();
    cat.denied = vec![role_uri(Role::Denied).into()];
    cat.creators = vec![
        role_uri(Role::Creator).into(),
        role_uri(Role::Denied).into(),
    ];
    cfg.categories = vec![cat];
    cfg.rooms = Vec::new();
    for p in [Privacy::Open, Privacy::Closed, Privacy::Secret] {
        for t in [RoomType::Normal, RoomType::Auditorium] {
            // The denied and other-domain users are on every list: scope wins anyway.
            let listed = |r: Role| {
                vec![
                    role_uri(r).to_string(),
                    role_uri(Role::Denied).into(),
                    role_uri(Role::OtherDomain).into(),
                ]
            };
            cfg.rooms.push(RoomConfig {
                name: format!("R-{}-{}", p.as_str(), t.as_str()),
                privacy: p,
                room_type: t,
                category: Some("Cat".into()),
                members: listed(Role::Member),
                presenters: listed(Role::Presenter),
                managers: listed(Role::Manager),
                ..Default::default()
            });
        }
    }
    cfg
}

fn run_cell(p: Privacy, t: RoomType, role: Role, op: MOp) -> u16 {
    let mut h = H::new(matrix_config(), &[role_uri(role)]);
    h.sign_in(0);
    let name = format!("R-{}-{}", p.as_str(), t.as_str());
    let uri = uri_of(&name);
    let chan = ChanRef::Uri(uri.clone());
    match op {
        MOp::Search => {
            let (_, code, data) = h.cmd(
                0,
                CmdKind::ChanSrch(ChanSrch {
                    qtype: "BYNAME".into(),
                    criteria: name.clone(),
                    extended: true,
                }),
            );
            assert_eq!(code, 200);
            let RplData::Search(hits) = data else {
                panic!("search data")
            };
            if hits.iter().any(|h| h.uri == uri) {
                200
            } else {
                assert!(hits.is_empty(), "{hits:?}");
                404
            }
        }
        MOp::Join => h.cmd(0, CmdKind::Join(Join { chan })).1,
        MOp::ReadHistory => {
            h.cmd(
                0,
                CmdKind::BcContext(BcContext {
                    chan,
                    query: BcQuery::Last { cnt: 5 },
                }),
            )
            .1
        }
        MOp::Post => {
            h.cmd(0, CmdKind::Join(Join { chan }));
            h.post(0, &uri, "hello").1
        }
        MOp::Manage => {
            h.cmd(
                0,
                CmdKind::UpdateRoom(UpdateRoom {
                    chan,
                    attrs: Box::new(RoomAttrs {
                        topic: Some("new topic".into()),
                        ..Default::default()
                    }),
                    add: Vec::new(),
                    remove: Vec::new(),
                }),
            )
            .1
        }
    }
}

#[test]
fn authorization_matrix() {
    let mut cells = 0;
    let mut wrong = Vec::new();
    for p in [Privacy::Open, Privacy::Closed, Privacy::Secret] {
        for t in [RoomType::Normal, RoomType::Auditorium] {
            for role in ROLES {
                for op in [
                    MOp::Search,
                    MOp::Join,
                    MOp::ReadHistory,
                    MOp::Post,
                    MOp::Manage,
                ] {
                    cells += 1;
                    let want = expected(p, t, role, op);
                    let got = run_cell(p, t, role, op);
                    if got != want {
                        wrong.push(format!(
                            "{p:?} {t:?} {role:?} {op:?}: want {want}, got {got}"
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(cells, 3 * 2 * 7 * 5);
    assert!(
        wrong.is_empty(),
        "{} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn create_room_needs_a_creator_in_scope() {
    for role in ROLES {
        let mut h = H::new(matrix_config(), &[role_uri(role)]);
        h.sign_in(0);
        let (_, perm, _) = h.cmd(0, CmdKind::NodesPermCreateChild(NodesPermCreateChild));
        let (_, code, data) = h.cmd(
            0,
            CmdKind::CreateRoom(CreateRoom {
                attrs: Box::new(RoomAttrs {
                    name: Some(format!("New {role:?}")),
                    category: Some("Cat".into()),
                    privacy: Some("secret".into()),
                    ..Default::default()
                }),
                users: Vec::new(),
            }),
        );
        // Denied is listed as a creator: out of scope wins.
        let want = if role == Role::Creator { 200 } else { 403 };
        assert_eq!((perm, code), (want, want), "{role:?}");
        if want == 200 {
            let RplData::Rooms { rooms, .. } = data else {
                panic!("rooms")
            };
            assert_eq!(rooms[0].uri, uri_of(&format!("New {role:?}")));
            let (_, code, _) = h.cmd(
                0,
                CmdKind::Join(Join {
                    chan: ChanRef::Uri(rooms[0].uri.clone()),
                }),
            );
            assert_eq!(code, 200, "the creator manages and may enter the new room");
        }
    }
}

// ------------------------------------------------------------ the secret-room proptest

#[derive(Debug, Clone)]
struct CatSpec {
    /// Allowed: whole domain, or only the first `n` contoso users.
    whole_domain: bool,
    allow_first: usize,
    /// Fabrikam allowed too.
    fabrikam: bool,
    denied: Option<usize>,
    creator: Option<usize>,
}

#[derive(Debug, Clone)]
struct RoomSpec {
    cat: usize,
    privacy: Privacy,
    auditorium: bool,
    members: Vec<usize>,
    managers: Vec<usize>,
    presenters: Vec<usize>,
}

#[derive(Debug, Clone)]
enum POp {
    Search(usize, u8, Option<usize>, bool),
    Join(usize, usize),
    BJoin(usize, usize, usize),
    History(usize, usize, bool),
    Post(usize, usize),
    Part(usize, usize),
    Assoc(usize, bool),
    GetInv(usize),
    GetPref(usize),
    SetPref(usize, Vec<usize>),
    Update(usize, usize, u8, usize, u8),
    Create(usize, usize, u8, Vec<usize>),
    Reconnect(usize),
}

const PUSERS: [&str; 6] = [
    "sip:u0@contoso.com",
    "sip:u1@contoso.com",
    "sip:u2@contoso.com",
    "sip:u3@contoso.com",
    "sip:u4@contoso.com",
    "sip:g0@fabrikam.com",
];

fn cat_spec() -> impl Strategy<Value = CatSpec> {
    (
        any::<bool>(),
        0..6usize,
        any::<bool>(),
        proptest::option::of(0..6usize),
        proptest::option::of(0..6usize),
    )
        .prop_map(
            |(whole_domain, allow_first, fabrikam, denied, creator)| CatSpec {
                whole_domain,
                allow_first,
                fabrikam,
                denied,
                creator,
            },
        )
}

fn users() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..6usize, 0..4)
}

fn room_spec() -> impl Strategy<Value = RoomSpec> {
    (
        0..3usize,
        prop_oneof![
            Just(Privacy::Open),
            Just(Privacy::Closed),
            Just(Privacy::Secret),
            Just(Privacy::Secret)
        ],
        any::<bool>(),
        users(),
        users(),
        users(),
    )
        .prop_map(
            |(cat, privacy, auditorium, members, managers, presenters)| RoomSpec {
                cat,
                privacy,
                auditorium,
                members,
                managers,
                presenters,
            },
        )
}

fn pop() -> impl Strategy<Value = POp> {
    let u = || 0..6usize;
    let r = || 0..8usize;
    prop_oneof![
        (u(), 0..5u8, proptest::option::of(r()), any::<bool>())
            .prop_map(|(a, b, c, d)| POp::Search(a, b, c, d)),
        (u(), r()).prop_map(|(a, b)| POp::Join(a, b)),
        (u(), r(), r()).prop_map(|(a, b, c)| POp::BJoin(a, b, c)),
        (u(), r(), any::<bool>()).prop_map(|(a, b, c)| POp::History(a, b, c)),
        (u(), r()).prop_map(|(a, b)| POp::Post(a, b)),
        (u(), r()).prop_map(|(a, b)| POp::Post(a, b)),
        (u(), r()).prop_map(|(a, b)| POp::Part(a, b)),
        (u(), any::<bool>()).prop_map(|(a, b)| POp::Assoc(a, b)),
        u().prop_map(POp::GetInv),
        u().prop_map(POp::GetPref),
        (u(), prop::collection::vec(r(), 0..3)).prop_map(|(a, b)| POp::SetPref(a, b)),
        (u(), r(), 0..4u8, u(), 0..6u8).prop_map(|(a, b, c, d, e)| POp::Update(a, b, c, d, e)),
        (u(), 0..3usize, 0..3u8, users()).prop_map(|(a, b, c, d)| POp::Create(a, b, c, d)),
        u().prop_map(POp::Reconnect),
    ]
}

/// What must never reach a user who may not know of a secret room.
fn secrets_of(h: &H, posted: &BTreeMap<String, Vec<String>>) -> Vec<(String, Vec<String>)> {
    h.core
        .rooms()
        .iter()
        .filter(|r| r.attrs.privacy == Privacy::Secret)
        .map(|r| {
            let mut s = vec![r.guid.clone(), r.uri.clone(), r.attrs.name.clone()];
            s.extend(
                [r.attrs.description.clone(), r.attrs.topic.clone()]
                    .into_iter()
                    .filter(|x| !x.is_empty()),
            );
            s.extend(posted.get(&r.guid).cloned().unwrap_or_default());
            (r.guid.clone(), s)
        })
        .collect()
}

/// For each user, the secret rooms (GUIDs) the user may not find now.
fn blind(h: &H) -> Vec<std::collections::BTreeSet<String>> {
    PUSERS
        .iter()
        .map(|u| {
            h.core
                .rooms()
                .iter()
                .filter(|r| {
                    r.attrs.privacy == Privacy::Secret && !authz::can_find(h.core.rooms(), r, u)
                })
                .map(|r| r.guid.clone())
                .collect()
        })
        .collect()
}

use std::collections::BTreeMap;

fn run_ops(cats: Vec<CatSpec>, rooms: Vec<RoomSpec>, ops: Vec<POp>) -> Result<(), TestCaseError> {
    let mut cfg = Config::embedded_default();
    let uri = |i: usize| PUSERS[i % PUSERS.len()].to_string();
    cfg.categories = cats
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut allowed: Vec<String> = if c.whole_domain {
                vec![format!("*@{DOMAIN}")]
            } else {
                (0..c.allow_first.min(5)).map(uri).collect()
            };
            if c.fabrikam {
                allowed.push("*@fabrikam.com".into());
            }
            let mut cc = CategoryConfig::implicit_default(DOMAIN);
            cc.name = format!("C{i}");
            cc.allowed = Some(allowed);
            cc.denied = c.denied.map(uri).into_iter().collect();
            cc.creators = c.creator.map(uri).into_iter().collect();
            cc
        })
        .collect();
    let mut names: Vec<String> = Vec::new();
    cfg.rooms = rooms
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // Distinctive tokens: no secret can be a substring of anything else.
            let name = format!("Qroom{i}Z");
            names.push(name.clone());
            RoomConfig {
                name,
                description: format!("Qdesc{i}Z"),
                topic: format!("Qtopic{i}Z"),
                privacy: r.privacy,
                category: Some(format!("C{}", r.cat % cats.len().max(1))),
                room_type: if r.auditorium {
                    RoomType::Auditorium
                } else {
                    RoomType::Normal
                },
                members: r.members.iter().map(|m| uri(*m)).collect(),
                managers: r.managers.iter().map(|m| uri(*m)).collect(),
                presenters: r.presenters.iter().map(|m| uri(*m)).collect(),
                ..Default::default()
            }
        })
        .collect();
    if cats.is_empty() {
        for r in &mut cfg.rooms {
            r.category = None;
        }
    }
    let mut h = H::new(cfg, &PUSERS);
    let mut posted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut token = 0u32;
    let mut fresh = |p: &str| {
        token += 1;
        format!("Qf{p}{token}Z")
    };
    let room_uri = |names: &[String], i: usize| -> String {
        names
            .get(i % names.len().max(1))
            .map(|n| uri_of(n))
            .unwrap_or_else(|| uri_of("none"))
    };
    // Sign-in output counts too.
    let mut pending: Vec<(ConnId, Vec<u8>)> = Vec::new();
    let before0 = blind(&h);
    for i in 0..PUSERS.len() {
        pending.extend(h.sign_in(i));
    }
    check(&h, &before0, &before0, &posted, &pending)?;
    for op in ops {
        let before = blind(&h);
        let secrets_before = secrets_of(&h, &posted);
        let out = match op {
            POp::Search(u, q, crit, ext) => {
                let qtype =
                    ["BYNAME", "BYDESC", "BYMEMBER", "BYMANAGER", "BYKEYWORDS"][q as usize % 5];
                let criteria = match crit {
                    Some(r) => names
                        .get(r % names.len().max(1))
                        .map(|n| n[..3].to_string())
                        .unwrap_or_default(),
                    None => String::new(),
                };
                h.cmd(
                    u,
                    CmdKind::ChanSrch(ChanSrch {
                        qtype: qtype.into(),
                        criteria,
                        extended: ext,
                    }),
                )
                .0
            }
            POp::Join(u, r) => {
                h.cmd(
                    u,
                    CmdKind::Join(Join {
                        chan: ChanRef::Uri(room_uri(&names, r)),
                    }),
                )
                .0
            }
            POp::BJoin(u, a, b) => {
                let chans = vec![
                    ChanRef::Uri(room_uri(&names, a)),
                    ChanRef::Uri(room_uri(&names, b)),
                ];
                h.cmd(u, CmdKind::BJoin(BJoin { chans })).0
            }
            POp::History(u, r, search) => {
                let query = if search {
                    BcQuery::Search {
                        keyword: "Q".into(),
                        author: None,
                        from: None,
                        to: None,
                        cnt: 10,
                    }
                } else {
                    BcQuery::Last { cnt: 10 }
                };
                h.cmd(
                    u,
                    CmdKind::BcContext(BcContext {
                        chan: ChanRef::Uri(room_uri(&names, r)),
                        query,
                    }),
                )
                .0
            }
            POp::Post(u, r) => {
                let uri = room_uri(&names, r);
                let text = fresh("msg");
                let (out, code) = h.post(u, &uri, &text);
                if code == 200 {
                    let guid = crate::ids::split_room_uri(&uri)
                        .map(|(_, g)| g.to_string())
                        .unwrap_or_default();
                    posted.entry(guid).or_default().push(text);
                }
                out
            }
            POp::Part(u, r) => {
                h.cmd(
                    u,
                    CmdKind::Part(Part {
                        chan: ChanRef::Uri(room_uri(&names, r)),
                    }),
                )
                .0
            }
            POp::Assoc(u, mgr) => {
                let role = if mgr {
                    crate::cmd::associations::AssocRole::Manager
                } else {
                    crate::cmd::associations::AssocRole::Member
                };
                h.cmd(u, CmdKind::GetAssociations(GetAssociations { role }))
                    .0
            }
            POp::GetInv(u) => {
                h.cmd(
                    u,
                    CmdKind::GetInv(GetInv {
                        invite_id: "1".into(),
                        domain: DOMAIN.into(),
                    }),
                )
                .0
            }
            POp::GetPref(u) => {
                h.cmd(
                    u,
                    CmdKind::GetPref(GetPref {
                        label: "kedzie.GroupChannels".into(),
                        seqid: 0,
                        create_default: true,
                    }),
                )
                .0
            }
            POp::SetPref(u, rs) => {
                use base64::Engine;
                let list: Vec<String> = rs.iter().map(|r| room_uri(&names, *r)).collect();
                let content = base64::engine::general_purpose::STANDARD.encode(list.join("\n"));
                h.cmd(
                    u,
                    CmdKind::SetPref(SetPref {
                        label: "kedzie.GroupChannels".into(),
                        seqid: 0,
                        content,
                    }),
                )
                .0
            }
            POp::Update(u, r, what, who, role) => {
                let mut attrs = RoomAttrs::default();
                let mut add = Vec::new();
                let mut remove = Vec::new();
                match what {
                    0 => attrs.topic = Some(fresh("topic")),
                    1 => attrs.privacy = Some(["open", "closed", "secret"][who % 3].into()),
                    2 => add.push(RoleChange {
                        uri: uri(who),
                        role: ["member", "manager", "presenter"][role as usize % 3].into(),
                    }),
                    _ => remove.push(RoleChange {
                        uri: uri(who),
                        role: ["member", "manager", "presenter"][role as usize % 3].into(),
                    }),
                }
                let chan = ChanRef::Uri(room_uri(&names, r));
                h.cmd(
                    u,
                    CmdKind::UpdateRoom(UpdateRoom {
                        chan,
                        attrs: Box::new(attrs),
                        add,
                        remove,
                    }),
                )
                .0
            }
            POp::Create(u, c, privacy, members) => {
                let name = fresh("new");
                let users = members
                    .iter()
                    .map(|m| RoleChange {
                        uri: uri(*m),
                        role: "member".into(),
                    })
                    .collect();
                let attrs = RoomAttrs {
                    name: Some(name.clone()),
                    description: Some(fresh("ndesc")),
                    category: Some(format!("C{c}")),
                    privacy: Some(["open", "closed", "secret"][privacy as usize % 3].into()),
                    ..Default::default()
                };
                let (out, code, _) = h.cmd(
                    u,
                    CmdKind::CreateRoom(CreateRoom {
                        attrs: Box::new(attrs),
                        users,
                    }),
                );
                if code == 200 {
                    names.push(name);
                }
                out
            }
            POp::Reconnect(u) => {
                let mut out = Vec::new();
                h.core.handle(
                    Input::Closed {
                        conn: ConnId(u as u64 + 1),
                    },
                    &mut out,
                );
                let mut all = actions_to_texts(&out);
                all.extend(h.sign_in(u));
                all
            }
        };
        let after = blind(&h);
        // Secrets as they were before the op (an update may rename topics) plus after.
        let mut secrets = secrets_before;
        secrets.extend(secrets_of(&h, &posted));
        check_with(&before, &after, &secrets, &out)?;
    }
    Ok(())
}

fn check(
    h: &H,
    before: &[std::collections::BTreeSet<String>],
    after: &[std::collections::BTreeSet<String>],
    posted: &BTreeMap<String, Vec<String>>,
    out: &[(ConnId, Vec<u8>)],
) -> Result<(), TestCaseError> {
    check_with(before, after, &secrets_of(h, posted), out)
}

fn check_with(
    before: &[std::collections::BTreeSet<String>],
    after: &[std::collections::BTreeSet<String>],
    secrets: &[(String, Vec<String>)],
    out: &[(ConnId, Vec<u8>)],
) -> Result<(), TestCaseError> {
    for (conn, bytes) in out {
        let Some(u) = (conn.0 as usize).checked_sub(1) else {
            continue;
        };
        let text = String::from_utf8_lossy(bytes);
        for (guid, needles) in secrets {
            // Blind before and after: the user may not know of the room at any point.
            if !(before[u].contains(guid) && after[u].contains(guid)) {
                continue;
            }
            for n in needles {
                prop_assert!(
                    !text.contains(n.as_str()),
                    "{} may not know of secret room {guid} but was sent {n:?}:\n{text}",
                    PUSERS[u]
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn secret_rooms_never_leak_to_non_members(
        cats in prop::collection::vec(cat_spec(), 0..3),
        rooms in prop::collection::vec(room_spec(), 1..6),
        ops in prop::collection::vec(pop(), 1..40),
    ) {
        run_ops(cats, rooms, ops)?;
    }
}
