//! Nobody can act as another user (issue 12), through the whole core: an
//! authenticated attacker sends random requests claiming other users' identities -
//! in its own dialog, in new INVITEs on its connection or on a fresh one with its own
//! credentials, REGISTER, SUBSCRIBE, repeated From headers - and every one is refused
//! (400/401/403), no store or room state changes, nothing is sent to anyone else, and
//! no byte about the secret room reaches the attacker.

use super::room_model_tests::{password_of, request_of, H};
use super::*;
use crate::config::Config;
use crate::sip::parse;
use proptest::prelude::*;

const DOMAIN: &str = "contoso.com";
/// user1, user2, user3 (Board's only member) and the attacker.
const USERS: [&str; 4] = [
    "sip:user1@contoso.com",
    "sip:user2@contoso.com",
    "sip:user3@contoso.com",
    "sip:mallory@contoso.com",
];
const ATTACKER: usize = 3;
const SECRET: &str = "board minutes: do not leak";

fn room_uri(name: &str) -> String {
    crate::ids::room_uri(DOMAIN, &crate::ids::room_guid(DOMAIN, name))
}

/// XCCOS bodies of every action, about `room`.
fn command(kind: usize, room: &str, envid: u64) -> String {
    let r = room_uri(room);
    let inner = match kind % 8 {
        0 => format!("<cmd id=\"cmd:join\" seqid=\"1\"><data><chanib uri=\"{r}\"/></data></cmd>"),
        1 => format!("<cmd id=\"cmd:bccontext\" seqid=\"1\"><data><chanib uri=\"{r}\"/><bcq><last cnt=\"25\"/></bcq></data></cmd>"),
        2 => format!("<cmd id=\"cmd:updateroom\" seqid=\"1\"><data><chanib uri=\"{r}\" topic=\"hijacked\"/></data></cmd>"),
        3 => "<cmd id=\"cmd:setpref\" seqid=\"1\"><data><pref label=\"sipe.Settings\" seqid=\"0\" content=\"aGk=\"/></data></cmd>".to_string(),
        4 => format!("<cmd id=\"cmd:getfutok\" seqid=\"1\"><data><ftdb channelUri=\"{r}\" fileUrl=\"x.txt\"/></data></cmd>"),
        5 => "<cmd id=\"cmd:gethttptok\" seqid=\"1\"><data/></cmd>".to_string(),
        6 => format!("<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"{r}\"><chat>spoofed</chat></grpchat>"),
        _ => format!("<cmd id=\"cmd:part\" seqid=\"1\"><data><chanib uri=\"{r}\"/></data></cmd>"),
    };
    format!("<xccos ver=\"1\" envid=\"{envid}\" xmlns=\"urn:parlano:xml:ns:xccos\">{inner}</xccos>")
}

#[derive(Debug, Clone)]
enum Attack {
    /// An INFO in the attacker's dialog with From = victim.
    InDialog {
        victim: usize,
        kind: usize,
        room: usize,
    },
    /// A new INVITE as the victim on the attacker's authenticated connection.
    Invite { victim: usize },
    /// A new INVITE as the victim on a fresh connection, answered with the
    /// attacker's own credentials.
    InviteWithOwnCredentials { victim: usize },
    /// REGISTER of the victim (From victim), or of the victim by the attacker.
    Register { victim: usize, third_party: bool },
    /// SUBSCRIBE for the victim's provisioning.
    Subscribe { victim: usize },
    /// An INVITE with two From headers: the attacker's and the victim's.
    TwoFroms { victim: usize },
}

fn attack() -> impl Strategy<Value = Attack> {
    let v = 0..ATTACKER;
    prop_oneof![
        (v.clone(), 0..8usize, 0..4usize).prop_map(|(victim, kind, room)| Attack::InDialog {
            victim,
            kind,
            room
        }),
        v.clone().prop_map(|victim| Attack::Invite { victim }),
        v.clone()
            .prop_map(|victim| Attack::InviteWithOwnCredentials { victim }),
        (v.clone(), any::<bool>()).prop_map(|(victim, third_party)| Attack::Register {
            victim,
            third_party
        }),
        v.clone().prop_map(|victim| Attack::Subscribe { victim }),
        v.prop_map(|victim| Attack::TwoFroms { victim }),
    ]
}

const ROOMS: [&str; 4] = ["Design", "Engineering", "Board", "Lobby"];

fn invite_raw(from_lines: &str, call_id: &str, cseq: u32, auth: &str) -> String {
    let sdp = "v=0\r\no=- 0 0 IN IP4 10.0.0.9\r\ns=s\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=message 5060 sip null\r\n";
    format!(
        "INVITE sip:pchat@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.9:1;branch=z9hG4bK{call_id}{cseq}\r\n\
         Max-Forwards: 70\r\n{from_lines}To: <sip:pchat@{DOMAIN}>\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} INVITE\r\nContact: <sip:x@10.0.0.9:1;transport=tcp>\r\n{auth}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Everything that must not change: rooms as stored, message counts, followed
/// rooms, prefs and the compliance event count (every audited action records one),
/// plus the live dialogs and participants.
fn state(h: &mut H) -> String {
    let store = &mut h.core.store;
    let rooms = store.load_rooms().unwrap();
    let counts: Vec<u64> = rooms
        .iter()
        .map(|r| store.message_count(&r.guid).unwrap())
        .collect();
    let followed: Vec<Vec<String>> = USERS.iter().map(|u| store.followed(u).unwrap()).collect();
    let prefs: Vec<_> = USERS
        .iter()
        .map(|u| store.get_pref(u, "sipe.Settings").unwrap())
        .collect();
    let events = store.event_high_water().unwrap();
    let online: Vec<_> = h
        .core
        .rooms()
        .iter()
        .map(|r| format!("{:?}", r.online_users()))
        .collect();
    format!(
        "{rooms:?}\n{counts:?}\n{followed:?}\n{prefs:?}\n{events}\n{online:?}\n{}",
        h.core.dialog_count()
    )
}

fn run(attacks: Vec<Attack>) -> Result<(), TestCaseError> {
    let mut cfg = Config::embedded_default();
    cfg.compliance.enabled = true;
    let mut h = H::new(cfg, &USERS);
    for i in 0..USERS.len() {
        h.sign_in(i);
    }
    let chan = crate::xccos::ChanRef::Uri(room_uri("Board"));
    let (_, joined, _) = h.cmd(2, crate::cmd::CmdKind::Join(crate::cmd::Join { chan }));
    prop_assert_eq!(joined, 200);
    let (_, code) = h.post(2, &room_uri("Board"), SECRET);
    prop_assert_eq!(code, 200);
    let before = state(&mut h);
    let attacker_conn = ConnId(ATTACKER as u64 + 1);
    let mut fresh_conn = ConnId(100);
    for (n, a) in attacks.iter().enumerate() {
        let (conns, out) = attempt(&mut h, a, n, &mut fresh_conn);
        for (conn, bytes) in &out {
            let text = String::from_utf8_lossy(bytes);
            prop_assert!(
                conns.contains(conn) || *conn == attacker_conn,
                "{a:?} sent to conn {conn}: {text}"
            );
            for needle in [
                SECRET,
                "Board",
                "Board of directors",
                &crate::ids::room_guid(DOMAIN, "Board"),
            ] {
                prop_assert!(!text.contains(needle), "{a:?} leaked {needle:?}: {text}");
            }
            // The status line only: a 400 for a repeated header echoes the repeats, so
            // the whole answer would not parse again.
            let code: u16 = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|rest| rest.get(..3))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            prop_assert!(
                matches!(code, 400 | 401 | 403),
                "{a:?} answered {code}: {text}"
            );
        }
    }
    prop_assert_eq!(before, state(&mut h), "state changed");
    Ok(())
}

/// Performs one attack; returns the extra connections it used and every output.
fn attempt(
    h: &mut H,
    a: &Attack,
    n: usize,
    fresh: &mut ConnId,
) -> (Vec<ConnId>, Vec<(ConnId, Vec<u8>)>) {
    let conn = ConnId(ATTACKER as u64 + 1);
    let victim = |v: usize| USERS[v].to_string();
    match a {
        Attack::InDialog {
            victim: v,
            kind,
            room,
        } => {
            let (call_id, from_tag, to_tag) = h.dialogs[ATTACKER].clone().expect("signed in");
            h.cseq += 1;
            let body = command(*kind, ROOMS[*room], 5000 + n as u64);
            let raw = format!(
                "INFO sip:10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.9:1;branch=z9hG4bKa{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <{u}>;tag={from_tag}\r\nTo: <sip:pchat@{DOMAIN}>;tag={to_tag}\r\n\
                 Call-ID: {call_id}\r\nCSeq: {c} INFO\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n\r\n{body}",
                u = victim(*v),
                c = h.cseq,
                len = body.len()
            );
            (vec![], h.send(conn, &raw))
        }
        Attack::Invite { victim: v } => {
            let from = format!("From: <{}>;tag=x{n}\r\n", victim(*v));
            (
                vec![],
                h.send(conn, &invite_raw(&from, &format!("atk{n}"), 1, "")),
            )
        }
        Attack::InviteWithOwnCredentials { victim: v } => {
            fresh.0 += 1;
            let c = *fresh;
            let from = format!("From: <{}>;tag=x{n}\r\n", victim(*v));
            let first = invite_raw(&from, &format!("own{n}"), 1, "");
            let mut out = h.send(c, &first);
            let challenge = match parse(&out[0].1) {
                Ok(SipMessage::Response(r)) => r,
                _ => panic!("a response"),
            };
            let me = crate::auth::users::key_of(USERS[ATTACKER]);
            let cred = crate::auth::tests::answer(
                &challenge,
                &request_of(&first),
                &me,
                &password_of(USERS[ATTACKER]),
                1,
            );
            out.extend(h.send(
                c,
                &invite_raw(
                    &from,
                    &format!("own{n}"),
                    2,
                    &format!("Authorization: {cred}\r\n"),
                ),
            ));
            (vec![c], out)
        }
        Attack::Register {
            victim: v,
            third_party,
        } => {
            let from = if *third_party {
                USERS[ATTACKER].to_string()
            } else {
                victim(*v)
            };
            let raw = format!(
                "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.9:1;branch=z9hG4bKr{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <{from}>;tag=r{n}\r\nTo: <{to}>\r\nCall-ID: reg{n}\r\n\
                 CSeq: 1 REGISTER\r\nContact: <sip:x@10.0.0.9:1;transport=tcp>\r\nContent-Length: 0\r\n\r\n",
                to = victim(*v)
            );
            let out = h.send(conn, &raw);
            (vec![], out)
        }
        Attack::Subscribe { victim: v } => {
            let raw = format!(
                "SUBSCRIBE {u} SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.9:1;branch=z9hG4bKs{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <{u}>;tag=s{n}\r\nTo: <{u}>\r\nCall-ID: sub{n}\r\n\
                 CSeq: 1 SUBSCRIBE\r\nEvent: vnd-microsoft-provisioning-v2\r\nContent-Length: 0\r\n\r\n",
                u = victim(*v)
            );
            (vec![], h.send(conn, &raw))
        }
        Attack::TwoFroms { victim: v } => {
            let froms = format!(
                "From: <{}>;tag=a{n}\r\nFrom: <{}>;tag=b{n}\r\n",
                USERS[ATTACKER],
                victim(*v)
            );
            (
                vec![],
                h.send(conn, &invite_raw(&froms, &format!("two{n}"), 1, "")),
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn an_authenticated_attacker_cannot_act_as_anyone_else(attacks in prop::collection::vec(attack(), 1..12)) {
        run(attacks)?;
    }
}

#[test]
fn register_binds_and_closing_the_connection_unbinds() {
    let mut h = H::new(Config::embedded_default(), &USERS[..1]);
    h.sign_in(0);
    let raw = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.9:1;branch=z9hG4bKr\r\n\
         Max-Forwards: 70\r\nFrom: <{u}>;tag=r\r\nTo: <{u}>\r\nCall-ID: reg\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:user1@10.0.0.9:1;transport=tcp>\r\nContent-Length: 0\r\n\r\n",
        u = USERS[0]
    );
    let out = h.send(ConnId(1), &raw);
    let ok = match parse(&out[0].1) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(ok.code, 200);
    assert!(ok.to_tag().is_some());
    assert_eq!(h.core.auth.registrar.len(), 1);
    let mut out = Vec::new();
    h.core.handle(Input::Closed { conn: ConnId(1) }, &mut out);
    assert!(h.core.auth.registrar.is_empty());
    assert_eq!(h.core.auth.user_of(ConnId(1)), None);
}
