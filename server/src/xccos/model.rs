//! The XCCOS message model: one Rust type per wire shape of `XCCOS.md`.
//!
//! Every type here maps to a fragment of the XML envelope
//! `<xccos ver="1" envid="N" xmlns="urn:parlano:xml:ns:xccos">…</xccos>`.
//! Shapes marked **(design)** were not observed in the field; they are this
//! project's own definitions in the same style (see `docs/xccos-codes.md` and the
//! docstrings below). Parsing lives in [`super::parse`](mod@super::parse), serialization in
//! [`super::write`](mod@super::write).

use super::codes;
use super::elem::Elem;

/// The XCCOS XML namespace; the root `<xccos>` element must be in it
/// (`XCCOS.md` "Envelope").
pub const NS: &str = "urn:parlano:xml:ns:xccos";

/// Attribute key of an `aib` listing the ordinary participants of a room
/// (`XCCOS.md` "rpl:join / rpl:bjoin"; also used in `ntc:join`).
pub const AIB_PARTICIPANTS: u32 = 3984;

/// Attribute key of an `aib` listing the room operators (managers) of a room
/// (`XCCOS.md` "rpl:join / rpl:bjoin").
pub const AIB_MANAGERS: u32 = 12276;

/// `info id` of the user count in a `rpl:chansrch` hit.
pub const INFO_UCNT: &str = "urn:parlano:ma:info:ucnt";
/// `info id` of the visibility in a `rpl:chansrch` hit (sic: "visibilty", spelled so in the field).
pub const INFO_VISIBILITY: &str = "urn:parlano:ma:info:visibilty";
/// `prop id` of the file-posting flag in a `rpl:chansrch` hit.
pub const PROP_FILEPOST: &str = "urn:parlano:ma:prop:filepost";
/// `prop id` of the invitations flag in a `rpl:chansrch` hit.
pub const PROP_INVITE: &str = "urn:parlano:ma:prop:invite";
/// `prop id` of the logging flag in a `rpl:chansrch` hit.
pub const PROP_LOGGED: &str = "urn:parlano:ma:prop:logged";

/// One XCCOS message: `<xccos ver="1" envid="{envid}" xmlns="urn:parlano:xml:ns:xccos">{body}</xccos>`
/// (`XCCOS.md` "Envelope").
///
/// `envid` is chosen by the sender (incremented per message from a random start);
/// replies point back to it through [`CommandRef::envid`]. The `ver` attribute is
/// always written as `"1"` and ignored when parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Sender-chosen message id (`envid` attribute), an unsigned integer.
    pub envid: u64,
    /// The single child element of the root.
    pub body: Body,
}

/// The single child element of `<xccos>` (`XCCOS.md` "Envelope"). On the wire a
/// command is its element (`C` = [`Elem`]); `crate::cmd::message::Body` is the same
/// enum with the command decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<C = Elem> {
    /// `<cmd id="cmd:…" seqid="N"><data>…</data></cmd>`: a client request, as its
    /// element; `crate::cmd` decodes it by id (`cmd::decode`) and writes typed requests.
    Cmd(C),
    /// `<rpl>`: server reply to a `cmd`.
    Rpl(Rpl),
    /// `<ntc>`: unsolicited server notice.
    Ntc(Ntc),
    /// `<grpchat>`: a chat message, either direction.
    GrpChat(GrpChat),
}

impl<C> Body<C> {
    /// The same message with its command converted by `f`; replies, notices and chat
    /// messages are moved over unchanged. Errors: `f`'s.
    pub fn try_map_cmd<D, E>(self, f: impl FnOnce(C) -> Result<D, E>) -> Result<Body<D>, E> {
        Ok(match self {
            Body::Cmd(c) => Body::Cmd(f(c)?),
            Body::Rpl(r) => Body::Rpl(r),
            Body::Ntc(n) => Body::Ntc(n),
            Body::GrpChat(g) => Body::GrpChat(g),
        })
    }

    /// The same message with its command converted by `f` (see [`Body::try_map_cmd`]).
    pub fn map_cmd<D>(self, f: impl FnOnce(C) -> D) -> Body<D> {
        match self.try_map_cmd(|c| Ok::<D, std::convert::Infallible>(f(c))) {
            Ok(b) => b,
            Err(never) => match never {},
        }
    }
}

/// A server reply (`XCCOS.md` "Request and reply"):
/// `<rpl id="rpl:…" seqid="N"><commandid seqid="S" envid="E"/><resp code="200">SUCCESS_OK</resp><data>…</data></rpl>`
/// (children written in this order, each only when present).
///
/// How `<data>` is decoded is decided by `id`, see [`RplData`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rpl {
    /// Reply id, e.g. `rpl:join` (see [`reply_id_for`]).
    pub id: String,
    /// `seqid` attribute (echoes the command's seqid).
    pub seqid: u64,
    /// `<commandid seqid envid/>`: the command this answers; clients match on `envid`.
    pub command: Option<CommandRef>,
    /// `<resp code>TOKEN</resp>`; clients treat a missing `resp` as code 500.
    pub resp: Option<Resp>,
    /// The decoded `<data>` element.
    pub data: RplData,
}

/// `<commandid seqid="S" envid="E"/>` inside a reply: the envelope being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRef {
    /// The command's `seqid`.
    pub seqid: u64,
    /// The command envelope's `envid`.
    pub envid: u64,
}

/// `<resp code="200">SUCCESS_OK</resp>`: result code and its upper-case token
/// (codes and tokens are **(design)**, see [`codes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resp {
    /// HTTP-like result code.
    pub code: u16,
    /// Upper-case token (element text), e.g. `SUCCESS_OK`.
    pub token: String,
}

impl Resp {
    /// `<resp code="200">SUCCESS_OK</resp>`.
    pub fn ok() -> Resp {
        Resp::new(codes::SUCCESS_OK)
    }

    /// `code` with its standard token from [`codes::token`].
    pub fn new(code: u16) -> Resp {
        Resp {
            code,
            token: codes::token(code).to_owned(),
        }
    }
}

/// The `<data>` of a reply, decoded according to the reply id:
///
/// | reply id | variant |
/// |---|---|
/// | `rpl:requri` | [`RplData::Uib`] |
/// | `rpl:getservinfo` | [`RplData::ServerInfo`] |
/// | `rpl:join`, `rpl:bjoin`, `rpl:getassociations` (design), `rpl:getinv` (design) | [`RplData::Rooms`] |
/// | `rpl:bccontext` | [`RplData::History`] |
/// | `rpl:chansrch` | [`RplData::Search`], [`RplData::SearchCapped`] (design) |
/// | `rpl:getpref`, `rpl:setpref` | [`RplData::Pref`] |
/// | `rpl:createroom`, `rpl:updateroom` (design) | [`RplData::Rooms`] |
/// | `rpl:part` | [`RplData::Chan`] |
/// | anything else | [`RplData::Empty`] |
///
/// No `<data>` element is [`RplData::None`]. A `<data>` whose content does not fit
/// the id's shape parses as [`RplData::Empty`]. For the list-shaped ids (`Rooms`,
/// `Search`) an empty `<data/>` is an empty list, so `Empty` does not round-trip
/// under those ids: use [`RplData::None`] for error replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RplData {
    /// No `<data>` element at all.
    None,
    /// `<data/>` (or a `<data>` whose content was not recognized).
    Empty,
    /// `rpl:requri`: `<data><uib uri="sip:…"/></data>`: the pool endpoint to INVITE next.
    Uib(String),
    /// `rpl:getservinfo`: `<data><sib …/></data>`.
    ServerInfo(ServerInfo),
    /// `rpl:join`/`rpl:bjoin`/`rpl:getassociations` (design)/`rpl:getinv` (design):
    /// `<data>` with one `chanib` per room (with `aib` children), then the `uib id uri`
    /// list the `aib` values refer to.
    Rooms {
        /// One entry per `chanib`, in order.
        rooms: Vec<RoomInfo>,
        /// The `uib` elements after the rooms.
        users: Vec<UserRef>,
    },
    /// `rpl:bccontext`: `<data><chanib uri="…"><msg id="grpchat" …><chat>…</chat></msg>…</chanib></data>`.
    History {
        /// `uri` of the `chanib`.
        chan_uri: String,
        /// The messages, oldest first as sent; each written as `<msg id="grpchat" …>`.
        msgs: Vec<GrpChat>,
    },
    /// `rpl:chansrch`: one `chanib` per hit.
    Search(Vec<SearchHit>),
    /// `rpl:part`: `<data><chanib uri="…"/></data>`.
    Chan(String),
    /// `rpl:chansrch` cut at `searchLimit` **(design)**: the hits, then
    /// `<more limit="N"/>` saying that more rooms matched than the `N` returned.
    SearchCapped {
        /// The hits returned.
        hits: Vec<SearchHit>,
        /// The `searchLimit` that cut the list.
        limit: u32,
    },
    /// `rpl:getpref` / `rpl:setpref`: `<data><pref label="…" seqid="N" content="…"/></data>`.
    Pref {
        /// `label`.
        label: String,
        /// `seqid`: the stored version (0: nothing stored yet).
        seqid: u64,
        /// `content`, base64.
        content: String,
    },
    /// `rpl:getftok` / `rpl:gethttptok` **(design for the latter)**: `<data><token
    /// token="…" serveruri="…"/></data>`.
    Token {
        /// `token`: the opaque token.
        token: String,
        /// `serveruri`: where to use it (the web service's base URL).
        server_uri: String,
    },
}

/// `<sib infoType serverTime searchLimit messageSizeLimit storySizeLimit rootUri dbVersion/>`
/// in `rpl:getservinfo` (`XCCOS.md` table). Missing attributes parse as `""`/`0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// `infoType`, echoed from the request (e.g. `"123"`).
    pub info_type: String,
    /// `serverTime`, ISO 8601 UTC, e.g. `2010-09-14T14:26:17.6206356Z`.
    pub server_time: String,
    /// `searchLimit`: maximum search results.
    pub search_limit: u32,
    /// `messageSizeLimit`: maximum chat message size (characters).
    pub message_size_limit: u32,
    /// `storySizeLimit`: maximum story size (characters).
    pub story_size_limit: u32,
    /// `rootUri`: the root category, `ma-cat://D/<guid>`.
    pub root_uri: String,
    /// `dbVersion`: a GUID.
    pub db_version: String,
}

/// One `<chanib uri name topic description>` of a rooms reply (`XCCOS.md`
/// "rpl:join / rpl:bjoin"), with its `aib` children. Missing `name`/`topic`/
/// `description` parse as `""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// Room URI, `ma-chan://D/G`.
    pub uri: String,
    /// Display name.
    pub name: String,
    /// Topic.
    pub topic: String,
    /// Description.
    pub description: String,
    /// `<aib key="3984" value="0,1,2"/>`: participants, by `uib` id. Omitted on write when empty.
    pub participants: Vec<u32>,
    /// `<aib key="12276" value="1"/>`: managers (operators), by `uib` id. Omitted on write when empty.
    pub managers: Vec<u32>,
}

/// `<uib id="0" uri="sip:…"/>`: a user referred to by `aib` values in a rooms reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    /// The id used in `aib` values.
    pub id: u32,
    /// User URI, `sip:user@domain`.
    pub uri: String,
}

/// One `<chanib name description uri>` of `rpl:chansrch` (`XCCOS.md` "rpl:chansrch").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// Room URI.
    pub uri: String,
    /// Room name.
    pub name: String,
    /// Room description.
    pub description: String,
    /// The `info`/`prop` children, present for `extended="true"` searches.
    pub extended: Option<SearchExtended>,
}

/// The `info`/`prop` children of a search hit: `urn:parlano:ma:info:ucnt`,
/// `urn:parlano:ma:info:visibilty` (sic, spelled so in the field),
/// `urn:parlano:ma:prop:filepost`, `…:invite`, `…:logged`. Missing children parse as
/// `0`/`""`/`false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchExtended {
    /// `info ucnt`: number of users.
    pub user_count: u32,
    /// `info visibilty`: e.g. `private`, `open`, `secret`.
    pub visibility: String,
    /// `prop filepost`: file posting allowed.
    pub filepost: bool,
    /// `prop invite`: invitations enabled.
    pub invite: bool,
    /// `prop logged`: room is logged.
    pub logged: bool,
}

/// A server notice: `<ntc id="ntc:…"><data>…</data></ntc>` (no `commandid`, no `seqid`)
/// (`XCCOS.md` "Notices").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ntc {
    /// Notice id, e.g. `ntc:join`.
    pub id: String,
    /// Decoded by `id`; see [`NtcData`].
    pub data: NtcData,
}

/// The `<data>` of a notice, decoded by the notice id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NtcData {
    /// `ntc:join` / `ntc:bjoin`: someone entered a room:
    /// `<data><uib uri="{user}"><aib key="3984" domain="{domain}" value="{room_guid}"/></uib></data>`.
    /// Only the first `uib`/`aib` is read.
    Join {
        /// The user who joined, `sip:…`.
        user: String,
        /// Room domain.
        domain: String,
        /// Room GUID (the room is `ma-chan://{domain}/{room_guid}`).
        room_guid: String,
    },
    /// `ntc:part`: `<data><chanib uri="{chan_uri}"><uib uri="{user}"/></chanib></data>`.
    Part {
        /// The room left.
        chan_uri: String,
        /// The user who left.
        user: String,
    },
    /// `ntc:chanupdate` **(design)**: a room's attributes changed:
    /// `<data><chanib uri name topic description/></data>` (no `aib`).
    ChanUpdate(RoomInfo),
    /// `ntc:newcontent` **(design)**: new messages in a followed room the user has not
    /// joined in this session: `<data><chanib uri="…" unread="N"/></data>`.
    NewContent {
        /// The room.
        chan_uri: String,
        /// Messages posted since the user last joined or read it.
        unread: u64,
    },
    /// `<data/>`, no data, an unknown notice id, or data not recognized for the id.
    /// Written as `<data/>`.
    Empty,
}

/// A chat message (`XCCOS.md` "grpchat"):
/// `<grpchat id="grpchat" seqid="1" chanUri="…" author="…" ts="…"><chat>text</chat></grpchat>`.
/// Inside `rpl:bccontext` the same struct is written as `<msg id="grpchat" …>` with
/// the same attributes (`seqid` included; a `msg` without `seqid` parses as 0 and
/// one without `chanUri` takes the enclosing `chanib` uri).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpChat {
    /// `seqid` attribute (missing parses as 0).
    pub seqid: u64,
    /// `msgid` attribute **(design)**: a client message id, unique per author, that
    /// makes a post idempotent across dialogs and server restarts (docs/protocol.md,
    /// "Client message id"). Never relayed.
    pub msgid: Option<String>,
    /// `chanUri` attribute: the room (required).
    pub chan_uri: String,
    /// `author` attribute: `sip:…`. Set by the server; clients drop a grpchat without it.
    pub author: Option<String>,
    /// `ts` attribute: ISO 8601 UTC. Set by the server.
    pub ts: Option<String>,
    /// `<chat>` text, unescaped; line breaks are CRLF. `\r` is written as `&#13;` so it
    /// survives XML end-of-line normalization; raw CR/LF in input are kept as-is.
    pub text: String,
}
