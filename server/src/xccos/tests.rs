//! Tests: `XCCOS.md` vectors, round trips, error cases, property tests.

use super::*;
// The typed view: commands decoded by the registry in `crate::cmd` (explicit imports
// shadow the glob's wire-level `Envelope`, `Body` and `parse`).
use crate::cmd::associations::AssocRole;
use crate::cmd::history::BcQuery;
use crate::cmd::manage::{RoleChange, RoomAttrs};
use crate::cmd::message::{parse, Body, Envelope};
use crate::cmd::{
    BJoin, BcContext, ChanSrch, Cmd, CmdKind, CreateRoom, GetAssociations, GetFileToken,
    GetHttpToken, GetInv, GetPref, GetServerInfo, Join, NodesPermCreateChild, Part, RequestUri,
    SetPref, UpdateRoom,
};
use proptest::prelude::*;

const ROOT: &str = r#"<xccos ver="1" envid="4711" xmlns="urn:parlano:xml:ns:xccos" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#;
const GUID: &str = "6f0a1b2c-0000-4000-8000-000000000001";

fn env(inner: &str) -> String {
    format!("{ROOT}{inner}</xccos>")
}

fn ok(xml: &str) -> Envelope {
    match parse(xml.as_bytes()) {
        Ok(e) => e,
        Err(e) => panic!("parse failed: {e:?}\n{xml}"),
    }
}

fn body(xml: &str) -> Body {
    let e = ok(xml);
    assert_eq!(e.envid, 4711);
    e.body
}

fn cmd(xml: &str) -> Cmd {
    match body(xml) {
        Body::Cmd(c) => c,
        b => panic!("not a cmd: {b:?}"),
    }
}

fn rpl(xml: &str) -> Rpl {
    match body(xml) {
        Body::Rpl(r) => r,
        b => panic!("not a rpl: {b:?}"),
    }
}

fn err(xml: &[u8]) -> XccosError {
    match parse(xml) {
        Ok(e) => panic!("parsed unexpectedly: {e:?}"),
        Err(e) => e,
    }
}

fn round_trip(e: &Envelope) {
    let xml = e.to_xml();
    assert_eq!(&ok(&xml), e, "round trip of {xml}");
    // deterministic
    assert_eq!(xml, e.to_xml());
}

/// A `grpchat` without a client `msgid`.
fn chat(seqid: u64, chan: &str, author: Option<&str>, ts: Option<&str>, text: &str) -> GrpChat {
    GrpChat {
        msgid: None,
        seqid,
        chan_uri: chan.into(),
        author: author.map(Into::into),
        ts: ts.map(Into::into),
        text: text.into(),
    }
}

/// The `sib` of the field trace (XCCOS.md), with root category `root_uri`.
fn server_info(root_uri: &str) -> ServerInfo {
    ServerInfo {
        info_type: "123".into(),
        server_time: "2010-09-14T14:26:17.6206356Z".into(),
        search_limit: 999,
        message_size_limit: 512,
        story_size_limit: 4096,
        root_uri: root_uri.into(),
        db_version: GUID.into(),
    }
}

fn chan_uri() -> String {
    format!("ma-chan://contoso.com/{GUID}")
}

// ---------------------------------------------------------------- XCCOS.md vectors

#[test]
fn md_join_cmd_with_xsd_xsi_root() {
    let c = cmd(&env(&format!(
        r#"<cmd id="cmd:join" seqid="1"><data><chanid key="0" domain="contoso.com" value="{GUID}"/></data></cmd>"#
    )));
    assert_eq!(
        c,
        Cmd {
            seqid: 1,
            kind: CmdKind::Join(Join {
                chan: ChanRef::Id {
                    key: 0,
                    domain: "contoso.com".into(),
                    value: GUID.into()
                }
            })
        }
    );
    if let CmdKind::Join(Join { chan }) = &c.kind {
        assert_eq!(chan.to_uri(), chan_uri());
    }
}

#[test]
fn md_envelope_minimal_root() {
    let e = ok(
        r#"<xccos ver="1" envid="4711" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:requri" seqid="1"><data/></cmd></xccos>"#,
    );
    assert_eq!(
        e,
        Envelope {
            envid: 4711,
            body: Body::Cmd(Cmd {
                seqid: 1,
                kind: CmdKind::RequestUri(RequestUri)
            })
        }
    );
}

#[test]
fn md_reply_pretty_printed_rooms() {
    let xml = env(&format!(
        r#"
<rpl id="rpl:join" seqid="1">
  <commandid seqid="1" envid="4711"/>
  <resp code="200">SUCCESS_OK</resp>
  <data>
    <chanib uri="ma-chan://contoso.com/{GUID}" name="Design" topic="Q3 layout" description="...">
      <aib key="3984" value="0,1,2"/>   <!-- participants, by uib id -->
      <aib key="12276" value="1"/>      <!-- room operators (managers), by uib id -->
    </chanib>
    <uib id="0" uri="sip:user1@contoso.com"/>
    <uib id="1" uri="sip:user2@contoso.com"/>
    <uib id="2" uri="sip:user3@contoso.com"/>
  </data>
</rpl>
"#
    ));
    let r = rpl(&xml);
    assert_eq!(
        r,
        Rpl {
            id: "rpl:join".into(),
            seqid: 1,
            command: Some(CommandRef {
                seqid: 1,
                envid: 4711
            }),
            resp: Some(Resp {
                code: 200,
                token: "SUCCESS_OK".into()
            }),
            data: RplData::Rooms {
                rooms: vec![RoomInfo {
                    uri: chan_uri(),
                    name: "Design".into(),
                    topic: "Q3 layout".into(),
                    description: "...".into(),
                    participants: vec![0, 1, 2],
                    managers: vec![1],
                }],
                users: (0..3)
                    .map(|i| UserRef {
                        id: i,
                        uri: format!("sip:user{}@contoso.com", i + 1)
                    })
                    .collect(),
            }
        }
    );
    // the same reply under rpl:bjoin decodes identically
    let b = rpl(&xml.replace("rpl:join", "rpl:bjoin"));
    assert_eq!(b.data, r.data);
}

#[test]
fn md_requri() {
    let c = cmd(&env(r#"<cmd id="cmd:requri" seqid="1"><data/></cmd>"#));
    assert_eq!(c.kind, CmdKind::RequestUri(RequestUri));
    let r = rpl(&env(
        r#"<rpl id="rpl:requri" seqid="1"><commandid seqid="1" envid="4711"/><resp code="200">SUCCESS_OK</resp><data><uib uri="sip:pool1@contoso.com"/></data></rpl>"#,
    ));
    assert_eq!(r.data, RplData::Uib("sip:pool1@contoso.com".into()));
}

#[test]
fn md_getserverinfo() {
    let c = cmd(&env(
        r#"<cmd id="cmd:getserverinfo" seqid="1"><data><sib domain="contoso.com" infoType="123"/></data></cmd>"#,
    ));
    assert_eq!(
        c.kind,
        CmdKind::GetServerInfo(GetServerInfo {
            domain: "contoso.com".into(),
            info_type: "123".into()
        })
    );
    assert_eq!(c.kind.reply_id(), "rpl:getservinfo");
    let r = rpl(&env(&format!(
        r#"<rpl id="rpl:getservinfo" seqid="1"><commandid seqid="1" envid="4711"/><resp code="200">SUCCESS_OK</resp><data><sib infoType="123" serverTime="2010-09-14T14:26:17.6206356Z" searchLimit="999" messageSizeLimit="512" storySizeLimit="4096" rootUri="ma-cat://contoso.com/{GUID}" dbVersion="{GUID}"/></data></rpl>"#
    )));
    assert_eq!(
        r.data,
        RplData::ServerInfo(server_info(&format!("ma-cat://contoso.com/{GUID}")))
    );
}

#[test]
fn md_bjoin() {
    let c = cmd(&env(
        r#"<cmd id="cmd:bjoin" seqid="1"><data><chanid key="0" domain="contoso.com" value="g0"/><chanid key="1" domain="contoso.com" value="g1"/><chanib uri="ma-chan://contoso.com/g2"/></data></cmd>"#,
    ));
    assert_eq!(
        c.kind,
        CmdKind::BJoin(BJoin {
            chans: vec![
                ChanRef::Id {
                    key: 0,
                    domain: "contoso.com".into(),
                    value: "g0".into()
                },
                ChanRef::Id {
                    key: 1,
                    domain: "contoso.com".into(),
                    value: "g1".into()
                },
                ChanRef::Uri("ma-chan://contoso.com/g2".into()),
            ]
        })
    );
}

#[test]
fn md_part() {
    let c = cmd(&env(&format!(
        r#"<cmd id="cmd:part" seqid="1"><data><chanib uri="ma-chan://contoso.com/{GUID}"/></data></cmd>"#
    )));
    assert_eq!(
        c.kind,
        CmdKind::Part(Part {
            chan: ChanRef::Uri(chan_uri())
        })
    );
    let r = rpl(&env(&format!(
        r#"<rpl id="rpl:part" seqid="1"><commandid seqid="1" envid="4711"/><resp code="200">SUCCESS_OK</resp><data><chanib uri="ma-chan://contoso.com/{GUID}"/></data></rpl>"#
    )));
    assert_eq!(r.data, RplData::Chan(chan_uri()));
}

#[test]
fn md_bccontext() {
    let c = cmd(&env(&format!(
        r#"<cmd id="cmd:bccontext" seqid="1"><data><chanib uri="ma-chan://contoso.com/{GUID}"/><bcq><last cnt="25"/></bcq></data></cmd>"#
    )));
    assert_eq!(
        c.kind,
        CmdKind::BcContext(BcContext {
            chan: ChanRef::Uri(chan_uri()),
            query: BcQuery::Last { cnt: 25 }
        })
    );
    let u = chan_uri();
    let r = rpl(&env(&format!(
        r#"<rpl id="rpl:bccontext" seqid="1"><commandid seqid="1" envid="4711"/><resp code="200">SUCCESS_OK</resp><data><chanib uri="{u}"><msg id="grpchat" chanUri="{u}" author="sip:user1@contoso.com" ts="2013-04-02T10:15:00Z"><chat>hello &amp; welcome</chat></msg><msg id="grpchat" chanUri="{u}" author="sip:user2@contoso.com" ts="2013-04-02T10:16:00Z"><chat>line1&#13;
line2</chat></msg></chanib></data></rpl>"#
    )));
    assert_eq!(
        r.data,
        RplData::History {
            chan_uri: u.clone(),
            msgs: vec![
                chat(
                    0,
                    &u,
                    Some("sip:user1@contoso.com"),
                    Some("2013-04-02T10:15:00Z"),
                    "hello & welcome"
                ),
                chat(
                    0,
                    &u,
                    Some("sip:user2@contoso.com"),
                    Some("2013-04-02T10:16:00Z"),
                    "line1\r\nline2"
                ),
            ]
        }
    );
}

#[test]
fn md_getinv() {
    let c = cmd(&env(
        r#"<cmd id="cmd:getinv" seqid="1"><data><inv inviteId="1" domain="contoso.com"/></data></cmd>"#,
    ));
    assert_eq!(
        c.kind,
        CmdKind::GetInv(GetInv {
            invite_id: "1".into(),
            domain: "contoso.com".into()
        })
    );
    // (design) reply: same shape as rpl:join; none pending => <data/> = no rooms
    let r = rpl(&env(
        r#"<rpl id="rpl:getinv" seqid="1"><commandid seqid="1" envid="4711"/><resp code="200">SUCCESS_OK</resp><data/></rpl>"#,
    ));
    assert_eq!(
        r.data,
        RplData::Rooms {
            rooms: vec![],
            users: vec![]
        }
    );
}

#[test]
fn md_chansrch() {
    let c = cmd(&env(
        r#"<cmd id="cmd:chansrch" seqid="1"><data><qib qtype="BYNAME" criteria="" extended="false"/></data></cmd>"#,
    ));
    assert_eq!(
        c.kind,
        CmdKind::ChanSrch(ChanSrch {
            qtype: "BYNAME".into(),
            criteria: String::new(),
            extended: false
        })
    );
    let r = rpl(&env(&format!(
        r#"<rpl id="rpl:chansrch" seqid="1"><commandid seqid="1" envid="4711"/><resp code="200">SUCCESS_OK</resp><data>
<chanib name="Design" description="Design discussions" uri="ma-chan://contoso.com/{GUID}">
  <info id="urn:parlano:ma:info:ucnt">12</info>            <!-- user count -->
  <info id="urn:parlano:ma:info:visibilty">private</info>  <!-- spelled so in the field -->
  <prop id="urn:parlano:ma:prop:filepost">true</prop>
  <prop id="urn:parlano:ma:prop:invite">false</prop>
  <prop id="urn:parlano:ma:prop:logged">true</prop>
</chanib>
<chanib name="Plain" description="" uri="ma-chan://contoso.com/g2"/>
</data></rpl>"#
    )));
    assert_eq!(
        r.data,
        RplData::Search(vec![
            SearchHit {
                uri: chan_uri(),
                name: "Design".into(),
                description: "Design discussions".into(),
                extended: Some(SearchExtended {
                    user_count: 12,
                    visibility: "private".into(),
                    filepost: true,
                    invite: false,
                    logged: true
                })
            },
            SearchHit {
                uri: "ma-chan://contoso.com/g2".into(),
                name: "Plain".into(),
                description: String::new(),
                extended: None
            }
        ])
    );
}

#[test]
fn md_nodespermcreatechild() {
    let c = cmd(&env(
        r#"<cmd id="cmd:nodespermcreatechild" seqid="1"><data/></cmd>"#,
    ));
    assert_eq!(c.kind, CmdKind::NodesPermCreateChild(NodesPermCreateChild));
    let r = rpl(&env(
        r#"<rpl id="rpl:nodespermcreatechild" seqid="1"><commandid seqid="1" envid="4711"/><resp code="200">SUCCESS_OK</resp><data/></rpl>"#,
    ));
    assert_eq!(r.data, RplData::Empty);
}

#[test]
fn design_getassociations() {
    let c = cmd(&env(
        r#"<cmd id="cmd:getassociations" seqid="1"><data><assoc role="manager"/></data></cmd>"#,
    ));
    assert_eq!(
        c.kind,
        CmdKind::GetAssociations(GetAssociations {
            role: AssocRole::Manager
        })
    );
    let c = cmd(&env(
        r#"<cmd id="cmd:getassociations" seqid="1"><data/></cmd>"#,
    ));
    assert_eq!(
        c.kind,
        CmdKind::GetAssociations(GetAssociations {
            role: AssocRole::Member
        })
    );
}

#[test]
fn md_notices() {
    let n = body(&env(&format!(
        r#"<ntc id="ntc:join"><data><uib uri="sip:user3@contoso.com"><aib key="3984" domain="contoso.com" value="{GUID}"/></uib></data></ntc>"#
    )));
    let join = NtcData::Join {
        user: "sip:user3@contoso.com".into(),
        domain: "contoso.com".into(),
        room_guid: GUID.into(),
    };
    assert_eq!(
        n,
        Body::Ntc(Ntc {
            id: "ntc:join".into(),
            data: join.clone()
        })
    );
    let n = body(&env(&format!(
        r#"<ntc id="ntc:bjoin"><data><uib uri="sip:user3@contoso.com"><aib key="3984" domain="contoso.com" value="{GUID}"/></uib></data></ntc>"#
    )));
    assert_eq!(
        n,
        Body::Ntc(Ntc {
            id: "ntc:bjoin".into(),
            data: join
        })
    );
    let n = body(&env(&format!(
        r#"<ntc id="ntc:part"><data><chanib uri="ma-chan://contoso.com/{GUID}"><uib uri="sip:user3@contoso.com"/></chanib></data></ntc>"#
    )));
    assert_eq!(
        n,
        Body::Ntc(Ntc {
            id: "ntc:part".into(),
            data: NtcData::Part {
                chan_uri: chan_uri(),
                user: "sip:user3@contoso.com".into()
            }
        })
    );
    // unknown notice: still parses
    let n = body(&env(r#"<ntc id="ntc:whatever"><data><x/></data></ntc>"#));
    assert_eq!(
        n,
        Body::Ntc(Ntc {
            id: "ntc:whatever".into(),
            data: NtcData::Empty
        })
    );
}

#[test]
fn md_grpchat() {
    let g = body(&env(&format!(
        r#"<grpchat id="grpchat" seqid="1" chanUri="ma-chan://contoso.com/{GUID}"
         author="sip:user1@contoso.com" ts="2013-04-02T10:15:00Z"><chat>hello &amp; welcome</chat></grpchat>"#
    )));
    assert_eq!(
        g,
        Body::GrpChat(chat(
            1,
            &chan_uri(),
            Some("sip:user1@contoso.com"),
            Some("2013-04-02T10:15:00Z"),
            "hello & welcome"
        ))
    );
    // client-sent form: no author/ts
    let g = body(&env(
        r#"<grpchat id="grpchat" seqid="1" chanUri="ma-chan://c/g"><chat>hi</chat></grpchat>"#,
    ));
    assert_eq!(g, Body::GrpChat(chat(1, "ma-chan://c/g", None, None, "hi")));
}

// ---------------------------------------------------------------- tolerance

#[test]
fn tolerance_quotes_order_unknown_attrs_whitespace() {
    let xml = "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<xccos xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' extra=\"x\" envid = '4711' xmlns='urn:parlano:xml:ns:xccos' >\r\n  <!-- c -->\r\n  <cmd seqid='1' foo=\"bar\" id='cmd:join' >\n\t<data >\n <chanid value=\"g&#x41;&#66;&lt;\" unknown='1' domain='contoso.com' key='0' />\n</data>\n</cmd>\n</xccos>\n";
    let c = cmd(xml);
    assert_eq!(
        c.kind,
        CmdKind::Join(Join {
            chan: ChanRef::Id {
                key: 0,
                domain: "contoso.com".into(),
                value: "gAB<".into()
            }
        })
    );
}

#[test]
fn tolerance_prefixed_root() {
    let e = ok(
        r#"<p:xccos envid="5" xmlns:p="urn:parlano:xml:ns:xccos"><p:cmd id="cmd:requri" seqid="2"><p:data/></p:cmd></p:xccos>"#,
    );
    assert_eq!(e.envid, 5);
    assert_eq!(
        e.body,
        Body::Cmd(Cmd {
            seqid: 2,
            kind: CmdKind::RequestUri(RequestUri)
        })
    );
}

#[test]
fn chat_text_cdata_entities_crlf() {
    let g = body(&env(
        "<grpchat id=\"grpchat\" seqid=\"3\" chanUri=\"ma-chan://c/g\"><chat>a &lt;b&gt; &amp; &quot;&apos; &#233;&#x1F600;\r\nraw<![CDATA[<i>&amp;</i>]]>&#13;\n</chat></grpchat>",
    ));
    let Body::GrpChat(g) = g else { panic!() };
    assert_eq!(g.text, "a <b> & \"' é😀\r\nraw<i>&amp;</i>\r\n");
    // write escapes \r so it survives, and round trips
    let e = Envelope {
        envid: 1,
        body: Body::GrpChat(g.clone()),
    };
    let xml = e.to_xml();
    assert!(xml.contains("&#13;\n"), "{xml}");
    round_trip(&e);
}

#[test]
fn exact_writer_output() {
    let e = Envelope {
        envid: 4711,
        body: Body::GrpChat(chat(
            1,
            "ma-chan://contoso.com/g",
            Some("sip:user1@contoso.com"),
            Some("2013-04-02T10:15:00Z"),
            "hello & welcome\r\n<3",
        )),
    };
    assert_eq!(
        e.to_xml(),
        r#"<xccos ver="1" envid="4711" xmlns="urn:parlano:xml:ns:xccos"><grpchat id="grpchat" seqid="1" chanUri="ma-chan://contoso.com/g" author="sip:user1@contoso.com" ts="2013-04-02T10:15:00Z"><chat>hello &amp; welcome&#13;
&lt;3</chat></grpchat></xccos>"#
    );
    let c = Cmd {
        seqid: 1,
        kind: CmdKind::Join(Join {
            chan: ChanRef::Id {
                key: 0,
                domain: "d".into(),
                value: "g".into(),
            },
        }),
    };
    let r = Envelope {
        envid: 9,
        body: Body::Rpl(c.reply(
            4711,
            200,
            RplData::Rooms {
                rooms: vec![RoomInfo {
                    uri: "ma-chan://d/g".into(),
                    name: "N".into(),
                    topic: "T".into(),
                    description: "D\"".into(),
                    participants: vec![0, 1],
                    managers: vec![1],
                }],
                users: vec![UserRef {
                    id: 0,
                    uri: "sip:a@d".into(),
                }],
            },
        )),
    };
    assert_eq!(
        r.to_xml(),
        r#"<xccos ver="1" envid="9" xmlns="urn:parlano:xml:ns:xccos"><rpl id="rpl:join" seqid="1"><commandid seqid="1" envid="4711"/><resp code="200">SUCCESS_OK</resp><data><chanib uri="ma-chan://d/g" name="N" topic="T" description="D&quot;"><aib key="3984" value="0,1"/><aib key="12276" value="1"/></chanib><uib id="0" uri="sip:a@d"/></data></rpl></xccos>"#
    );
}

#[test]
fn unrecognized_rpl_data_is_empty() {
    let r = rpl(&env(
        r#"<rpl id="rpl:requri" seqid="1"><data><something/></data></rpl>"#,
    ));
    assert_eq!(r.data, RplData::Empty);
    assert_eq!(r.resp, None);
    assert_eq!(r.command, None);
    let r = rpl(&env(
        r#"<rpl id="rpl:join" seqid="1"><data><chanib name="no uri"/></data></rpl>"#,
    ));
    assert_eq!(r.data, RplData::Empty);
    let r = rpl(&env(r#"<rpl id="rpl:join" seqid="1"></rpl>"#));
    assert_eq!(r.data, RplData::None);
}

// ---------------------------------------------------------------- errors

#[test]
fn error_not_well_formed() {
    let e = err(br#"<xccos ver="1" envid="7" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:join" seqid="3"><data></cmd></xccos>"#);
    assert_eq!(e.code, 400);
    assert_eq!(e.envid, Some(7));
    assert_eq!(e.cmd_id.as_deref(), Some("cmd:join"));
    assert_eq!(e.seqid, Some(3));
    let e = err(br#"<xccos ver="1" envid="7" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:join" seqid="3">"#);
    assert_eq!((e.code, e.envid, e.seqid), (400, Some(7), Some(3)));
    assert!(e.reason.contains("not closed"), "{}", e.reason);
    for bad in [
        &b""[..],
        b"   ",
        b"hello",
        b"<xccos",
        b"\xff\xfe<x/>",
        b"<a>&bogus;</a>",
        b"<a b='1' b='2'/>",
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>",
        b"<x/><y/>",
    ] {
        let e = err(bad);
        assert_eq!(e.code, 400, "{:?}: {e:?}", String::from_utf8_lossy(bad));
        assert_eq!(e.envid, None);
    }
}

#[test]
fn error_root_and_namespace() {
    let e = err(br#"<xcc envid="1" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:requri" seqid="1"/></xcc>"#);
    assert_eq!(e.code, 400);
    assert_eq!(e.reason, "root element is <xcc>, expected <xccos>");
    let e = err(br#"<xccos envid="12" xmlns="urn:other"><cmd id="cmd:requri" seqid="1"/></xccos>"#);
    assert_eq!((e.code, e.envid), (400, Some(12)));
    assert!(e.reason.contains("namespace"), "{}", e.reason);
    let e = err(br#"<xccos envid="12"><cmd id="cmd:requri" seqid="1"/></xccos>"#);
    assert_eq!((e.code, e.envid), (400, Some(12)));
}

#[test]
fn error_envid() {
    let e =
        err(br#"<xccos xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:requri" seqid="1"/></xccos>"#);
    assert_eq!((e.code, e.envid), (400, None));
    assert_eq!(e.reason, "missing envid attribute on <xccos>");
    for bad in ["abc", "-1", "+1", "", "1.5", "99999999999999999999"] {
        let xml = format!(
            r#"<xccos envid="{bad}" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:requri" seqid="1"/></xccos>"#
        );
        let e = err(xml.as_bytes());
        assert_eq!((e.code, e.envid), (400, None));
        assert_eq!(
            e.reason,
            format!("envid \"{bad}\" is not an unsigned integer")
        );
        // cmd id and seqid were readable
        assert_eq!(e.cmd_id.as_deref(), Some("cmd:requri"));
        assert_eq!(e.seqid, Some(1));
    }
}

#[test]
fn error_child_count_and_kind() {
    let e = err(br#"<xccos envid="3" xmlns="urn:parlano:xml:ns:xccos"></xccos>"#);
    assert_eq!((e.code, e.envid), (400, Some(3)));
    assert_eq!(
        e.reason,
        "<xccos> must have exactly one child element, found 0"
    );
    let e = err(br#"<xccos envid="3" xmlns="urn:parlano:xml:ns:xccos"><cmd id="cmd:requri" seqid="1"/><cmd id="cmd:requri" seqid="2"/></xccos>"#);
    assert_eq!((e.code, e.envid), (400, Some(3)));
    assert!(e.reason.contains("found 2"));
    let e = err(br#"<xccos envid="3" xmlns="urn:parlano:xml:ns:xccos"><foo/></xccos>"#);
    assert_eq!((e.code, e.envid), (400, Some(3)));
}

#[test]
fn error_unknown_command() {
    let e = err(
        env(r#"<cmd id="cmd:frobnicate" seqid="5"><data><pref label="x"/></data></cmd>"#)
            .as_bytes(),
    );
    assert_eq!(e.code, 501);
    assert_eq!(e.envid, Some(4711));
    assert_eq!(e.cmd_id.as_deref(), Some("cmd:frobnicate"));
    assert_eq!(e.seqid, Some(5));
    assert_eq!(e.reason, "unknown command \"cmd:frobnicate\"");
    let r = e.to_rpl().unwrap();
    assert_eq!(r.id, "rpl:frobnicate");
    assert_eq!(
        r.command,
        Some(CommandRef {
            seqid: 5,
            envid: 4711
        })
    );
    assert_eq!(
        r.resp,
        Some(Resp {
            code: 501,
            token: "UNKNOWN_COMMAND".into()
        })
    );
    assert_eq!(reply_id_for("cmd:getfutok"), "rpl:getftok");
    assert_eq!(reply_id_for("cmd:getserverinfo"), "rpl:getservinfo");
}

#[test]
fn error_bad_command_data() {
    let cases: &[(&str, &str)] = &[
        (
            r#"<cmd id="cmd:join" seqid="2"><data/></cmd>"#,
            "cmd:join: missing chanid or chanib in data",
        ),
        (
            r#"<cmd id="cmd:join" seqid="2"></cmd>"#,
            "cmd:join: missing data element",
        ),
        (
            r#"<cmd id="cmd:join" seqid="2"><data><chanid key="0" domain="d"/></data></cmd>"#,
            "cmd:join: missing value attribute on chanid",
        ),
        (
            r#"<cmd id="cmd:join" seqid="2"><data><chanid key="x" domain="d" value="g"/></data></cmd>"#,
            "cmd:join: chanid key \"x\" is not an unsigned 32-bit integer",
        ),
        (
            r#"<cmd id="cmd:bjoin" seqid="2"><data/></cmd>"#,
            "cmd:bjoin: missing chanid or chanib in data",
        ),
        (
            r#"<cmd id="cmd:part" seqid="2"><data><chanib/></data></cmd>"#,
            "cmd:part: missing uri attribute on chanib",
        ),
        (
            r#"<cmd id="cmd:getserverinfo" seqid="2"><data><sib infoType="1"/></data></cmd>"#,
            "cmd:getserverinfo: missing domain attribute on sib",
        ),
        (
            r#"<cmd id="cmd:bccontext" seqid="2"><data><chanib uri="u"/></data></cmd>"#,
            "cmd:bccontext: missing bcq in data",
        ),
        (
            r#"<cmd id="cmd:bccontext" seqid="2"><data><chanib uri="u"/><bcq><last cnt="-1"/></bcq></data></cmd>"#,
            "cmd:bccontext: last cnt \"-1\" is not an unsigned 32-bit integer",
        ),
        (
            r#"<cmd id="cmd:bccontext" seqid="2"><data><chanib uri="u"/><bcq><first cnt="1"/></bcq></data></cmd>"#,
            "cmd:bccontext: unsupported bcq query <first>",
        ),
        (
            r#"<cmd id="cmd:getinv" seqid="2"><data><inv domain="d"/></data></cmd>"#,
            "cmd:getinv: missing inviteId attribute on inv",
        ),
        (
            r#"<cmd id="cmd:chansrch" seqid="2"><data><qib qtype="BYNAME" extended="maybe"/></data></cmd>"#,
            "cmd:chansrch: qib extended \"maybe\" is not true or false",
        ),
        (
            r#"<cmd id="cmd:getassociations" seqid="2"><data><assoc role="boss"/></data></cmd>"#,
            "cmd:getassociations: assoc role \"boss\" is neither member nor manager",
        ),
    ];
    for (inner, reason) in cases {
        let e = err(env(inner).as_bytes());
        assert_eq!(e.code, 400, "{inner}");
        assert_eq!(e.envid, Some(4711), "{inner}");
        assert_eq!(e.seqid, Some(2), "{inner}");
        assert!(e.cmd_id.as_deref().unwrap().starts_with("cmd:"), "{inner}");
        assert_eq!(&e.reason, reason);
        assert_eq!(e.to_string(), *reason);
        assert!(e.to_rpl().is_some());
    }
    // seqid problems
    let e = err(env(r#"<cmd id="cmd:join"><data/></cmd>"#).as_bytes());
    assert_eq!(
        (e.code, e.seqid, e.cmd_id.as_deref()),
        (400, None, Some("cmd:join"))
    );
    assert_eq!(e.reason, "cmd:join: missing seqid attribute");
    let e = err(env(r#"<cmd id="cmd:join" seqid="x"><data/></cmd>"#).as_bytes());
    assert_eq!(e.reason, "cmd:join: seqid \"x\" is not an unsigned integer");
    let e = err(env(r#"<cmd seqid="1"><data/></cmd>"#).as_bytes());
    assert_eq!(
        (e.code, e.reason.as_str()),
        (400, "cmd: missing id attribute")
    );
}

#[test]
fn error_grpchat() {
    let e = err(env(r#"<grpchat id="grpchat" seqid="4"><chat>x</chat></grpchat>"#).as_bytes());
    assert_eq!(e.code, 400);
    assert_eq!(e.cmd_id.as_deref(), Some("grpchat"));
    assert_eq!(e.seqid, Some(4));
    assert_eq!(e.reason, "grpchat: missing chanUri attribute");
    let e = err(env(r#"<grpchat id="grpchat" seqid="4" chanUri="u"/>"#).as_bytes());
    assert_eq!(e.reason, "grpchat: missing chat element");
}

#[test]
fn error_limits() {
    // > 1 MiB
    let mut big = env(r#"<grpchat id="grpchat" seqid="1" chanUri="u"><chat>"#).into_bytes();
    big.truncate(big.len() - "</xccos>".len());
    big.extend(std::iter::repeat_n(b'a', MAX_BODY));
    big.extend_from_slice(b"</chat></grpchat></xccos>");
    let e = err(&big);
    assert_eq!(e.code, 413);
    // ~64 KiB chat is fine
    let text = "x\r\n".repeat(64 * 1024 / 3);
    let xml = env(&format!(
        r#"<grpchat id="grpchat" seqid="1" chanUri="u"><chat>{text}</chat></grpchat>"#
    ));
    let Body::GrpChat(g) = body(&xml) else {
        panic!()
    };
    assert_eq!(g.text, text);
    // nesting: 32 levels accepted by the reader, 33 rejected
    let deep = |n: usize| {
        let mut s = String::from(r#"<xccos envid="8" xmlns="urn:parlano:xml:ns:xccos">"#);
        for _ in 1..n {
            s.push_str("<a>");
        }
        for _ in 1..n {
            s.push_str("</a>");
        }
        s.push_str("</xccos>");
        s
    };
    let e = err(deep(32).as_bytes());
    assert!(!e.reason.contains("deeper"), "{}", e.reason);
    let e = err(deep(33).as_bytes());
    assert_eq!((e.code, e.envid), (400, Some(8)));
    assert!(e.reason.contains("deeper than 32"), "{}", e.reason);
    let e = err(deep(100_000).as_bytes());
    assert_eq!(e.code, 400);
}

// ---------------------------------------------------------------- round trips

fn sample_envelopes() -> Vec<Envelope> {
    let id = |k| ChanRef::Id {
        key: k,
        domain: "contoso.com".into(),
        value: format!("g{k}"),
    };
    let uri = ChanRef::Uri(chan_uri());
    let kinds = vec![
        CmdKind::RequestUri(RequestUri),
        CmdKind::GetServerInfo(GetServerInfo {
            domain: "contoso.com".into(),
            info_type: "123".into(),
        }),
        CmdKind::GetAssociations(GetAssociations {
            role: AssocRole::Member,
        }),
        CmdKind::GetAssociations(GetAssociations {
            role: AssocRole::Manager,
        }),
        CmdKind::BJoin(BJoin {
            chans: vec![id(0), id(1), uri.clone()],
        }),
        CmdKind::Join(Join { chan: id(0) }),
        CmdKind::Part(Part { chan: uri.clone() }),
        CmdKind::BcContext(BcContext {
            chan: uri.clone(),
            query: BcQuery::Last { cnt: 25 },
        }),
        CmdKind::GetInv(GetInv {
            invite_id: "1".into(),
            domain: "contoso.com".into(),
        }),
        CmdKind::ChanSrch(ChanSrch {
            qtype: "BYNAME".into(),
            criteria: "des\"ign <&>".into(),
            extended: true,
        }),
        CmdKind::NodesPermCreateChild(NodesPermCreateChild),
    ];
    let msg = chat(
        17,
        &chan_uri(),
        Some("sip:a@contoso.com"),
        Some("2013-04-02T10:15:00Z"),
        "l1\r\nl2 <&> \"q\"",
    );
    let mut out: Vec<Envelope> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Envelope {
            envid: i as u64,
            body: Body::Cmd(Cmd { seqid: 1, kind }),
        })
        .collect();
    let datas = vec![
        ("rpl:requri", RplData::Uib("sip:pool@contoso.com".into())),
        (
            "rpl:getservinfo",
            RplData::ServerInfo(server_info("ma-cat://contoso.com/r")),
        ),
        (
            "rpl:bjoin",
            RplData::Rooms {
                rooms: vec![
                    RoomInfo {
                        uri: chan_uri(),
                        name: "Design".into(),
                        topic: "".into(),
                        description: "d".into(),
                        participants: vec![0, 1],
                        managers: vec![],
                    },
                    RoomInfo {
                        uri: "ma-chan://c/2".into(),
                        name: "".into(),
                        topic: "t".into(),
                        description: "".into(),
                        participants: vec![],
                        managers: vec![1],
                    },
                ],
                users: vec![
                    UserRef {
                        id: 0,
                        uri: "sip:a@c".into(),
                    },
                    UserRef {
                        id: 1,
                        uri: "sip:b@c".into(),
                    },
                ],
            },
        ),
        (
            "rpl:getinv",
            RplData::Rooms {
                rooms: vec![],
                users: vec![],
            },
        ),
        (
            "rpl:bccontext",
            RplData::History {
                chan_uri: chan_uri(),
                msgs: vec![msg.clone(), msg.clone()],
            },
        ),
        (
            "rpl:bccontext",
            RplData::History {
                chan_uri: chan_uri(),
                msgs: vec![],
            },
        ),
        ("rpl:chansrch", RplData::Search(vec![])),
        (
            "rpl:chansrch",
            RplData::Search(vec![SearchHit {
                uri: chan_uri(),
                name: "n".into(),
                description: "d".into(),
                extended: Some(SearchExtended {
                    user_count: 3,
                    visibility: "open".into(),
                    filepost: false,
                    invite: true,
                    logged: false,
                }),
            }]),
        ),
        ("rpl:part", RplData::Chan(chan_uri())),
        ("rpl:nodespermcreatechild", RplData::Empty),
        ("rpl:join", RplData::None),
    ];
    for (i, (id, data)) in datas.into_iter().enumerate() {
        out.push(Envelope {
            envid: 100 + i as u64,
            body: Body::Rpl(Rpl {
                id: id.into(),
                seqid: 1,
                command: Some(CommandRef {
                    seqid: 1,
                    envid: i as u64,
                }),
                resp: Some(Resp::ok()),
                data,
            }),
        });
    }
    out.push(Envelope {
        envid: u64::MAX,
        body: Body::Rpl(Rpl {
            id: "rpl:join".into(),
            seqid: 1,
            command: None,
            resp: None,
            data: RplData::None,
        }),
    });
    for (id, data) in [
        (
            "ntc:join",
            NtcData::Join {
                user: "sip:u@c".into(),
                domain: "c".into(),
                room_guid: "g".into(),
            },
        ),
        (
            "ntc:part",
            NtcData::Part {
                chan_uri: chan_uri(),
                user: "sip:u@c".into(),
            },
        ),
        ("ntc:other", NtcData::Empty),
    ] {
        out.push(Envelope {
            envid: 200,
            body: Body::Ntc(Ntc {
                id: id.into(),
                data,
            }),
        });
    }
    out.push(Envelope {
        envid: 300,
        body: Body::GrpChat(msg.clone()),
    });
    out.push(Envelope {
        envid: 301,
        body: Body::GrpChat(GrpChat {
            author: None,
            ts: None,
            text: String::new(),
            ..msg
        }),
    });
    out
}

#[test]
fn round_trip_every_variant() {
    for e in sample_envelopes() {
        round_trip(&e);
    }
}

/// The registration table keeps itself honest: every command registered in
/// `cmd/mod.rs` (`commands!`) has a sample that round-trips through its parse and write,
/// and every command the model can write is registered (so it parses back).
#[test]
fn every_registered_command_round_trips() {
    let s = |v: &str| v.to_string();
    let more = [
        CmdKind::GetFileToken(GetFileToken {
            upload: true,
            chan_uri: s("ma-chan://contoso.com/g"),
            file: s("report.txt"),
        }),
        CmdKind::GetFileToken(GetFileToken {
            upload: false,
            chan_uri: s("ma-chan://contoso.com/g"),
            file: s("a b&c.txt"),
        }),
        CmdKind::GetHttpToken(GetHttpToken),
        CmdKind::GetPref(GetPref {
            label: s("kedzie.GroupChannels"),
            seqid: 71,
            create_default: true,
        }),
        CmdKind::SetPref(SetPref {
            label: s("kedzie.GroupChannels"),
            seqid: 72,
            content: s("AAEC"),
        }),
        CmdKind::CreateRoom(CreateRoom {
            attrs: Box::new(RoomAttrs {
                name: Some(s("Design")),
                privacy: Some(s("closed")),
                disabled: Some(false),
                ..RoomAttrs::default()
            }),
            users: vec![RoleChange {
                uri: s("sip:u@contoso.com"),
                role: s("manager"),
            }],
        }),
        CmdKind::UpdateRoom(UpdateRoom {
            chan: ChanRef::Uri(s("ma-chan://contoso.com/g")),
            attrs: Box::new(RoomAttrs {
                topic: Some(s("new <topic>")),
                ..RoomAttrs::default()
            }),
            add: vec![RoleChange {
                uri: s("sip:a@contoso.com"),
                role: s("member"),
            }],
            remove: vec![RoleChange {
                uri: s("sip:b@contoso.com"),
                role: s("presenter"),
            }],
        }),
    ];
    let samples: Vec<Envelope> = sample_envelopes()
        .into_iter()
        .filter(|e| matches!(e.body, Body::Cmd(_)))
        .chain(more.into_iter().map(|kind| Envelope {
            envid: 7,
            body: Body::Cmd(Cmd { seqid: 1, kind }),
        }))
        .collect();
    let written: std::collections::BTreeSet<&str> = samples
        .iter()
        .filter_map(|e| match &e.body {
            Body::Cmd(c) => Some(c.kind.id()),
            _ => None,
        })
        .collect();
    let registered: std::collections::BTreeSet<&str> = CmdKind::registered().collect();
    assert_eq!(written, registered);
    for e in &samples {
        round_trip(e);
    }
}

// ---------------------------------------------------------------- proptest

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9 <>&\"';:/.@\r\n\t]{0,24}",
        "[\\u{20}-\\u{7e}é漢字😀\u{FFFD}\u{85}\u{2028}\r\n]{0,16}",
        any::<String>().prop_map(|s| s
            .chars()
            .filter(|&c| !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{FFFE}' | '\u{FFFF}'))
            .collect()),
    ]
    .boxed()
}

fn chanref() -> BoxedStrategy<ChanRef> {
    prop_oneof![
        text().prop_map(ChanRef::Uri),
        (any::<u32>(), text(), text()).prop_map(|(key, domain, value)| ChanRef::Id {
            key,
            domain,
            value
        }),
    ]
    .boxed()
}

fn cmd_kind() -> BoxedStrategy<CmdKind> {
    prop_oneof![
        Just(CmdKind::RequestUri(RequestUri)),
        (text(), text()).prop_map(|(domain, info_type)| CmdKind::GetServerInfo(GetServerInfo {
            domain,
            info_type
        })),
        prop_oneof![Just(AssocRole::Member), Just(AssocRole::Manager)]
            .prop_map(|role| CmdKind::GetAssociations(GetAssociations { role })),
        prop::collection::vec(chanref(), 1..5).prop_map(|chans| CmdKind::BJoin(BJoin { chans })),
        chanref().prop_map(|chan| CmdKind::Join(Join { chan })),
        chanref().prop_map(|chan| CmdKind::Part(Part { chan })),
        (chanref(), bcq()).prop_map(|(chan, query)| CmdKind::BcContext(BcContext { chan, query })),
        (text(), any::<u64>(), any::<bool>()).prop_map(|(label, seqid, create_default)| {
            CmdKind::GetPref(GetPref {
                label,
                seqid,
                create_default,
            })
        }),
        (text(), any::<u64>(), text()).prop_map(|(label, seqid, content)| CmdKind::SetPref(
            SetPref {
                label,
                seqid,
                content
            }
        )),
        (room_attrs(), prop::collection::vec(role_change(), 0..3)).prop_map(|(attrs, users)| {
            CmdKind::CreateRoom(CreateRoom {
                attrs: Box::new(attrs),
                users,
            })
        }),
        (
            chanref(),
            room_attrs(),
            prop::collection::vec(role_change(), 0..3),
            prop::collection::vec(role_change(), 0..3)
        )
            .prop_map(
                |(chan, attrs, add, remove)| CmdKind::UpdateRoom(UpdateRoom {
                    chan,
                    attrs: Box::new(attrs),
                    add,
                    remove
                })
            ),
        (text(), text())
            .prop_map(|(invite_id, domain)| CmdKind::GetInv(GetInv { invite_id, domain })),
        (text(), text(), any::<bool>()).prop_map(|(qtype, criteria, extended)| CmdKind::ChanSrch(
            ChanSrch {
                qtype,
                criteria,
                extended
            }
        )),
        Just(CmdKind::NodesPermCreateChild(NodesPermCreateChild)),
    ]
    .boxed()
}

fn bcq() -> BoxedStrategy<BcQuery> {
    let o = || proptest::option::of(text());
    prop_oneof![
        any::<u32>().prop_map(|cnt| BcQuery::Last { cnt }),
        (any::<u64>(), any::<u32>()).prop_map(|(id, cnt)| BcQuery::Before { id, cnt }),
        (text(), any::<u32>()).prop_map(|(ts, cnt)| BcQuery::Since { ts, cnt }),
        (text(), o(), o(), o(), any::<u32>()).prop_map(|(keyword, author, from, to, cnt)| {
            BcQuery::Search {
                keyword,
                author,
                from,
                to,
                cnt,
            }
        }),
    ]
    .boxed()
}

fn room_attrs() -> BoxedStrategy<RoomAttrs> {
    let o = || proptest::option::of(text());
    (
        (o(), o(), o(), o()),
        (o(), o(), o(), proptest::option::of(any::<bool>())),
    )
        .prop_map(
            |(
                (name, description, topic, privacy),
                (room_type, invitations, category, disabled),
            )| {
                RoomAttrs {
                    name,
                    description,
                    topic,
                    privacy,
                    room_type,
                    invitations,
                    category,
                    disabled,
                }
            },
        )
        .boxed()
}

fn role_change() -> BoxedStrategy<RoleChange> {
    (text(), text())
        .prop_map(|(uri, role)| RoleChange { uri, role })
        .boxed()
}

fn grpchat() -> BoxedStrategy<GrpChat> {
    (
        any::<u64>(),
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        text(),
        proptest::option::of(text()),
    )
        .prop_map(|(seqid, chan_uri, author, ts, text, msgid)| GrpChat {
            msgid,
            seqid,
            chan_uri,
            author,
            ts,
            text,
        })
        .boxed()
}

fn ids() -> BoxedStrategy<Vec<u32>> {
    prop::collection::vec(any::<u32>(), 0..4).boxed()
}

fn room_info() -> BoxedStrategy<RoomInfo> {
    (text(), text(), text(), text(), ids(), ids())
        .prop_map(
            |(uri, name, topic, description, participants, managers)| RoomInfo {
                uri,
                name,
                topic,
                description,
                participants,
                managers,
            },
        )
        .boxed()
}

fn rooms() -> BoxedStrategy<RplData> {
    (
        prop::collection::vec(room_info(), 0..3),
        prop::collection::vec(
            (any::<u32>(), text()).prop_map(|(id, uri)| UserRef { id, uri }),
            0..3,
        ),
    )
        .prop_map(|(rooms, users)| RplData::Rooms { rooms, users })
        .boxed()
}

fn search() -> BoxedStrategy<RplData> {
    let ext = (
        any::<u32>(),
        text(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(user_count, visibility, filepost, invite, logged)| SearchExtended {
                user_count,
                visibility,
                filepost,
                invite,
                logged,
            },
        );
    prop::collection::vec(
        (text(), text(), text(), proptest::option::of(ext)).prop_map(
            |(uri, name, description, extended)| SearchHit {
                uri,
                name,
                description,
                extended,
            },
        ),
        0..3,
    )
    .prop_map(RplData::Search)
    .boxed()
}

/// (reply id, data) pairs that are consistent with the id.
fn rpl_id_data() -> BoxedStrategy<(String, RplData)> {
    let none_or_empty = || prop_oneof![Just(RplData::None), Just(RplData::Empty)];
    let server_info = (
        text(),
        text(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        text(),
        text(),
    )
        .prop_map(|(info_type, server_time, a, b, c, root_uri, db_version)| {
            RplData::ServerInfo(ServerInfo {
                info_type,
                server_time,
                search_limit: a,
                message_size_limit: b,
                story_size_limit: c,
                root_uri,
                db_version,
            })
        });
    let history = (text(), prop::collection::vec(grpchat(), 0..3))
        .prop_map(|(chan_uri, msgs)| RplData::History { chan_uri, msgs });
    prop_oneof![
        prop_oneof![text().prop_map(RplData::Uib), none_or_empty()]
            .prop_map(|d| ("rpl:requri".to_owned(), d)),
        prop_oneof![server_info, none_or_empty()].prop_map(|d| ("rpl:getservinfo".to_owned(), d)),
        (
            prop_oneof![
                Just("rpl:join"),
                Just("rpl:bjoin"),
                Just("rpl:getassociations"),
                Just("rpl:getinv")
            ],
            prop_oneof![rooms(), Just(RplData::None)]
        )
            .prop_map(|(id, d)| (id.to_owned(), d)),
        prop_oneof![history, none_or_empty()].prop_map(|d| ("rpl:bccontext".to_owned(), d)),
        prop_oneof![
            search(),
            (search(), any::<u32>()).prop_map(|(s, limit)| match s {
                RplData::Search(hits) => RplData::SearchCapped { hits, limit },
                other => other,
            }),
            Just(RplData::None)
        ]
        .prop_map(|d| ("rpl:chansrch".to_owned(), d)),
        (
            prop_oneof![Just("rpl:getpref"), Just("rpl:setpref")],
            prop_oneof![
                (text(), any::<u64>(), text()).prop_map(|(label, seqid, content)| {
                    RplData::Pref {
                        label,
                        seqid,
                        content,
                    }
                }),
                Just(RplData::None)
            ]
        )
            .prop_map(|(id, d)| (id.to_owned(), d)),
        (
            prop_oneof![Just("rpl:createroom"), Just("rpl:updateroom")],
            prop_oneof![rooms(), Just(RplData::None)]
        )
            .prop_map(|(id, d)| (id.to_owned(), d)),
        prop_oneof![text().prop_map(RplData::Chan), none_or_empty()]
            .prop_map(|d| ("rpl:part".to_owned(), d)),
        ("rpl:[a-z]{1,12}", none_or_empty()).prop_filter_map("known id", |(id, d)| {
            let known = [
                "rpl:requri",
                "rpl:getservinfo",
                "rpl:join",
                "rpl:bjoin",
                "rpl:getassociations",
                "rpl:getinv",
                "rpl:bccontext",
                "rpl:chansrch",
                "rpl:part",
                "rpl:createroom",
                "rpl:updateroom",
            ];
            (!known.contains(&id.as_str())).then_some((id, d))
        }),
    ]
    .boxed()
}

fn rpl_strategy() -> BoxedStrategy<Rpl> {
    (
        rpl_id_data(),
        any::<u64>(),
        proptest::option::of((any::<u64>(), any::<u64>())),
        proptest::option::of(prop_oneof![
            Just(200u16),
            Just(400),
            Just(403),
            Just(404),
            Just(413),
            Just(500),
            Just(501),
            Just(503),
            any::<u16>()
        ]),
    )
        .prop_map(|((id, data), seqid, command, code)| Rpl {
            id,
            seqid,
            command: command.map(|(seqid, envid)| CommandRef { seqid, envid }),
            resp: code.map(Resp::new),
            data,
        })
        .boxed()
}

fn ntc_strategy() -> BoxedStrategy<Ntc> {
    prop_oneof![
        (
            prop_oneof![Just("ntc:join"), Just("ntc:bjoin")],
            text(),
            text(),
            text()
        )
            .prop_map(|(id, user, domain, room_guid)| Ntc {
                id: id.into(),
                data: NtcData::Join {
                    user,
                    domain,
                    room_guid
                }
            }),
        (text(), text()).prop_map(|(chan_uri, user)| Ntc {
            id: "ntc:part".into(),
            data: NtcData::Part { chan_uri, user }
        }),
        (text(), any::<u64>()).prop_map(|(chan_uri, unread)| Ntc {
            id: "ntc:newcontent".into(),
            data: NtcData::NewContent { chan_uri, unread }
        }),
        room_info().prop_map(|room| Ntc {
            id: "ntc:chanupdate".into(),
            data: NtcData::ChanUpdate(room)
        }),
        (prop_oneof![
            Just("ntc:join".to_owned()),
            Just("ntc:part".to_owned()),
            "ntc:[a-z]{0,8}"
        ])
        .prop_map(|id| Ntc {
            id,
            data: NtcData::Empty
        }),
    ]
    .boxed()
}

fn envelope() -> BoxedStrategy<Envelope> {
    let body = prop_oneof![
        (any::<u64>(), cmd_kind()).prop_map(|(seqid, kind)| Body::Cmd(Cmd { seqid, kind })),
        rpl_strategy().prop_map(Body::Rpl),
        ntc_strategy().prop_map(Body::Ntc),
        grpchat().prop_map(Body::GrpChat),
    ];
    (any::<u64>(), body)
        .prop_map(|(envid, body)| Envelope { envid, body })
        .boxed()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    InsertStr(usize, &'static str),
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "<",
                ">",
                "&",
                "&#0;",
                "&#xD800;",
                "&#13;",
                "<![CDATA[",
                "]]>",
                "<a>",
                "</a>",
                "</data>",
                "<data/>",
                "\"",
                "'",
                "=",
                "<!--",
                "-->",
                "<?",
                "<!DOCTYPE x>",
                "\u{FFFE}",
                "\u{0}",
                "\u{FF}"
            ])
        )
            .prop_map(|(i, s)| Mutation::InsertStr(i, s)),
    ]
    .boxed()
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = b.len().max(1);
        match *m {
            Mutation::Flip(i, x) => {
                if !b.is_empty() {
                    let i = i % b.len();
                    b[i] ^= x;
                }
            }
            Mutation::Insert(i, x) => b.insert(i % (b.len() + 1), x),
            Mutation::Delete(i) => {
                if !b.is_empty() {
                    b.remove(i % n);
                }
            }
            Mutation::Truncate(i) => b.truncate(i % (b.len() + 1)),
            Mutation::InsertStr(i, s) => {
                let i = i % (b.len() + 1);
                b.splice(i..i, s.bytes());
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn prop_round_trip(e in envelope()) {
        let xml = e.to_bytes();
        let back = parse(&xml);
        prop_assert_eq!(back.as_ref(), Ok(&e), "xml: {}", String::from_utf8_lossy(&xml));
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&b);
    }

    #[test]
    fn prop_arbitrary_strings_never_panic(s in "[<>/a-z=\"' &#;:x0-9!\\[\\]?-]{0,200}") {
        let _ = parse(s.as_bytes());
        let _ = parse(env(&s).as_bytes());
    }

    #[test]
    fn prop_mutations_never_panic(e in envelope(), muts in prop::collection::vec(mutation(), 1..6)) {
        let b = apply(e.to_bytes(), &muts);
        if let Ok(parsed) = parse(&b) {
            // whatever parses must re-serialize and re-parse without panicking
            let _ = parse(&parsed.to_bytes());
        }
    }
}

// ---------------------------------------------------------------- web services tokens

#[test]
fn file_and_bearer_token_commands_parse_write_and_round_trip() {
    // XCCOS.md table: cmd:getfutok / cmd:getfdtok with <ftdb>, reply rpl:getftok.
    let xml = format!(
        "<xccos ver=\"1\" envid=\"7\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:getfutok\" seqid=\"3\"><data><ftdb channelUri=\"{}\" fileUrl=\"report.txt\"/></data></cmd></xccos>",
        chan_uri()
    );
    let env = ok(&xml);
    let Body::Cmd(cmd) = &env.body else {
        panic!("not a cmd: {env:?}")
    };
    assert_eq!(
        cmd.kind,
        CmdKind::GetFileToken(GetFileToken {
            upload: true,
            chan_uri: chan_uri(),
            file: "report.txt".into()
        })
    );
    assert_eq!(cmd.kind.reply_id(), "rpl:getftok");
    assert_eq!(env.to_xml(), xml);
    for kind in [
        CmdKind::GetFileToken(GetFileToken {
            upload: false,
            chan_uri: chan_uri(),
            file: "a b.pdf".into(),
        }),
        CmdKind::GetHttpToken(GetHttpToken),
    ] {
        round_trip(&Envelope {
            envid: 9,
            body: Body::Cmd(Cmd { seqid: 1, kind }),
        });
    }
    // Missing fileUrl: 400 addressed to the command.
    let bad = xml.replace(" fileUrl=\"report.txt\"", "");
    assert_eq!(err(bad.as_bytes()).code, codes::BAD_REQUEST);
    // The reply's token element.
    let rpl = Envelope {
        envid: 10,
        body: Body::Rpl(Rpl {
            id: "rpl:getftok".into(),
            seqid: 3,
            command: Some(CommandRef { seqid: 3, envid: 7 }),
            resp: Some(Resp::ok()),
            data: RplData::Token {
                token: "6f0a0000-0000-4000-8000-000000000001".into(),
                server_uri: "https://chat.contoso.com".into(),
            },
        }),
    };
    let text = rpl.to_xml();
    assert!(
        text.contains("<data><token token=\"6f0a0000-0000-4000-8000-000000000001\" serveruri=\"https://chat.contoso.com\"/></data>"),
        "{text}"
    );
    round_trip(&rpl);
}
