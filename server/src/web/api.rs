//! What the HTTP handlers ask the core and what it answers (the `Input::Http` /
//! `Action::Http` payloads), and the JSON shapes of the web API (docs/web.md,
//! `openapi.json`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::ids::HttpReqId;

pub mod site;

/// Percent-encodes `s` (RFC 3986 section 2.1): every byte but the unreserved characters
/// (`ALPHA DIGIT - . _ ~`, section 2.3) becomes `%XX` (upper-case hex) of its UTF-8
/// byte. Fit for a path segment, a query or form value (`application/x-www-form-urlencoded`
/// accepts it) and RFC 8187's `filename*`. Never fails.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request for the core, already parsed by the HTTP layer. `bearer` is the token from
/// the `Authorization: Bearer` header (empty when absent); `room` is the room GUID
/// from the path; `token` is the file token from the `token` query parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpRequest {
    /// `PUT /v1/rooms/{room}/files/{name}?token=…`: store and announce a file.
    Upload {
        /// Bearer token.
        bearer: String,
        /// Room GUID.
        room: String,
        /// File name.
        name: String,
        /// File token (`cmd:getfutok`).
        token: String,
        /// The file, already hashed, written and fsynced by the web handler (at most
        /// `[http] max_file_bytes`).
        staged: crate::files::Staged,
    },
    /// `GET /v1/rooms/{room}/files/{name}?token=…`: the file's bytes.
    Download {
        /// Bearer token.
        bearer: String,
        /// Room GUID.
        room: String,
        /// File name.
        name: String,
        /// File token (`cmd:getfdtok`).
        token: String,
    },
    /// `GET /v1/rooms`: the rooms the user is a member or manager of.
    ListRooms {
        /// Bearer token.
        bearer: String,
    },
    /// `POST /v1/rooms`: create a room.
    CreateRoom {
        /// Bearer token.
        bearer: String,
        /// The new room.
        body: RoomCreate,
    },
    /// `PATCH /v1/rooms/{room}`: update a room.
    UpdateRoom {
        /// Bearer token.
        bearer: String,
        /// Room GUID.
        room: String,
        /// The changes (boxed: the core's input queue holds many requests).
        body: Box<RoomUpdate>,
    },
    /// A request of the web pages (issue 16; `web/pages.rs`).
    Site(site::SiteRequest),
}

/// The core's answer: an HTTP status and a JSON document or file bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    /// HTTP status code, e.g. 201.
    pub status: u16,
    /// The body.
    pub body: ReplyBody,
}

/// Body of an [`HttpReply`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// `application/json`.
    Json(serde_json::Value),
    /// `application/octet-stream` with `Content-Disposition: attachment; filename=…`:
    /// a committed file of the file store, read by the web handler after the core's
    /// turn (the core never reads file contents; a failed read is a 500 `internal`).
    File {
        /// File name.
        name: String,
        /// Where the content is (`files::FileStore::path_of`).
        path: std::path::PathBuf,
    },
}

impl HttpReply {
    /// A JSON reply.
    pub fn json(status: u16, value: impl Serialize) -> HttpReply {
        HttpReply {
            status,
            body: ReplyBody::Json(serde_json::to_value(value).unwrap_or(serde_json::Value::Null)),
        }
    }

    /// An error reply: `status` and `{"error": code, "message": message}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> HttpReply {
        HttpReply::json(
            status,
            ApiError {
                error: code.to_string(),
                message: message.into(),
            },
        )
    }
}

/// Every error answer: a stable machine-readable `error` code and a human `message`.
/// Codes: `unauthorized` (401), `bad_file_name`, `bad_json`, `bad_path`, `bad_query`, `bad_request` (400),
/// `bad_token`, `token_wrong_user`, `token_wrong_room`, `token_wrong_file`,
/// `token_wrong_direction`, `forbidden`, `upload_not_allowed` (403), `no_such_room`,
/// `no_such_file`, `not_found` (404), `method_not_allowed` (405), `token_used`, `conflict` (409), `token_expired`
/// (410), `file_too_large`, `too_large` (413), `busy` (503), `internal` (500).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// Error code (see above).
    pub error: String,
    /// What went wrong.
    pub message: String,
}

/// A file stored by an upload (`201 Created`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    /// Room URI (`ma-chan://…`).
    pub room: String,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Uploader (SIP URI).
    pub uploader: String,
    /// Id of the grpchat message that announced the file (the `bccontext` `msg` seqid).
    pub message_id: i64,
}

/// A room as the web API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoomView {
    /// Room URI (`ma-chan://<domain>/<guid>`).
    pub uri: String,
    /// Room GUID (the `{room}` path parameter).
    pub id: String,
    /// Name.
    pub name: String,
    /// Category name.
    pub category: String,
    /// Description.
    pub description: String,
    /// Topic.
    pub topic: String,
    /// `open` | `closed` | `secret`.
    pub privacy: String,
    /// Members (SIP URIs); managers and presenters are members.
    pub members: Vec<String>,
    /// Managers (SIP URIs).
    pub managers: Vec<String>,
    /// Whether the requesting user manages the room.
    pub manager: bool,
}

/// `GET /v1/rooms` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoomList {
    /// The user's rooms (member or manager), by name.
    pub rooms: Vec<RoomView>,
}

/// `POST /v1/rooms` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomCreate {
    /// Name, unique in the pool (1 to 256 characters, one line).
    pub name: String,
    /// Category (default `Default`); the user must be one of its creators.
    #[serde(default)]
    pub category: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// `open` | `closed` (default) | `secret`.
    #[serde(default)]
    pub privacy: Option<String>,
    /// Further members (the creator is a member and manager).
    #[serde(default)]
    pub members: Vec<String>,
    /// Further managers.
    #[serde(default)]
    pub managers: Vec<String>,
}

/// `PATCH /v1/rooms/{room}` body; fields left out are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomUpdate {
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// New privacy: `open` | `closed` | `secret`.
    #[serde(default)]
    pub privacy: Option<String>,
    /// Users to add as members.
    #[serde(default)]
    pub add_members: Vec<String>,
    /// Users to remove (from every role).
    #[serde(default)]
    pub remove_members: Vec<String>,
    /// Users to add as managers.
    #[serde(default)]
    pub add_managers: Vec<String>,
    /// Users to remove from the manager role.
    #[serde(default)]
    pub remove_managers: Vec<String>,
    /// New type: `normal` | `auditorium` (in an auditorium only presenters post).
    #[serde(default, rename = "type")]
    pub room_type: Option<String>,
    /// Users to add as presenters (they become members too).
    #[serde(default)]
    pub add_presenters: Vec<String>,
    /// Users to remove from the presenter role.
    #[serde(default)]
    pub remove_presenters: Vec<String>,
}

impl RoomUpdate {
    /// An update of the attributes only (no role changes); `None` leaves one as it is.
    pub fn attributes(
        description: Option<String>,
        topic: Option<String>,
        privacy: Option<String>,
        room_type: Option<String>,
    ) -> RoomUpdate {
        RoomUpdate {
            description,
            topic,
            privacy,
            room_type,
            ..RoomUpdate::default()
        }
    }
}
