//! What the web pages (`web/pages.rs`) ask the core and the data it answers with
//! (issue 16; docs/web.md "Pages"). The core answers in the JSON body of an
//! [`super::HttpReply`] (one of the shapes below, or an [`super::ApiError`]); the page
//! layer turns it into HTML. `session` is the value of the `pchat_session` cookie
//! (empty when absent); `csrf` is the form's `csrf` field, which must equal the
//! session's CSRF token on every change (else 403 `bad_csrf`, nothing changed).

use super::{RoomCreate, RoomUpdate};
use serde::{Deserialize, Serialize};

/// A request of the web pages for the core.
#[derive(Debug, Clone, PartialEq)]
pub enum SiteRequest {
    /// `GET /`: a fresh token for the sign-in form (double-submitted: the form field
    /// and the `pchat_signin` cookie must match, against login CSRF) -> 200
    /// [`SignInForm`].
    SignInForm,
    /// `POST /signin`: check the password (the SIP users' `[[user]]` secrets and
    /// brute-force guard) and open a session -> 200 [`SignedIn`]; 401 `bad_password`,
    /// 429 `locked`.
    SignIn {
        /// User name as typed: `user1`, `user1@domain` or `sip:user1@domain`.
        username: String,
        /// Password.
        password: String,
        /// The client's IP address as text (for the brute-force guard).
        addr: String,
    },
    /// `POST /signout`: end the session -> 200 `{}` (also when there was none).
    SignOut {
        /// Session id.
        session: String,
        /// The form's CSRF token.
        csrf: String,
    },
    /// `GET /rooms`: the user's rooms and where they may create one -> 200 [`MyRooms`].
    MyRooms {
        /// Session id.
        session: String,
    },
    /// `GET /rooms/{room}`: one room and a page of its history (a BACKCHAT compliance
    /// event, as `cmd:bccontext`) -> 200 [`RoomPage`].
    Room {
        /// Session id.
        session: String,
        /// Room GUID.
        room: String,
        /// Show messages older than this message id (paging).
        before: Option<u64>,
        /// Search the history for this keyword (case-insensitive substring).
        search: Option<String>,
    },
    /// `POST /rooms`: create a room (as `POST /v1/rooms` and `cmd:createroom`) -> 201
    /// [`super::RoomView`]. User names in the lists may be `user`, `user@domain` or
    /// `sip:user@domain` (the server's domain when none is given).
    Create {
        /// Session id.
        session: String,
        /// The form's CSRF token.
        csrf: String,
        /// The new room.
        body: RoomCreate,
    },
    /// `POST /rooms/{room}/edit` and `/rooms/{room}/roles`: change a room (as
    /// `PATCH /v1/rooms/{room}` and `cmd:updateroom`) -> 200 [`super::RoomView`]. User
    /// names as for `Create`.
    Update {
        /// Session id.
        session: String,
        /// The form's CSRF token.
        csrf: String,
        /// Room GUID.
        room: String,
        /// The changes (boxed: the core's input queue holds many requests).
        body: Box<RoomUpdate>,
    },
    /// `GET /rooms/{room}/files/{name}`: download a file of the room (right to read
    /// its history; a FILEDOWNLOAD compliance event) -> the bytes.
    Download {
        /// Session id.
        session: String,
        /// Room GUID.
        room: String,
        /// File name.
        name: String,
    },
}

/// Answer to [`SiteRequest::SignInForm`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInForm {
    /// The token for the form field and the `pchat_signin` cookie.
    pub csrf: String,
}

/// Answer to [`SiteRequest::SignIn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    /// The user's SIP URI.
    pub user: String,
    /// The new session id (the `pchat_session` cookie's value).
    pub session: String,
}

/// Answer to [`SiteRequest::MyRooms`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyRooms {
    /// The user's SIP URI.
    pub user: String,
    /// The session's CSRF token (for the page's forms).
    pub csrf: String,
    /// Rooms where the user is a member or manager, by name.
    pub rooms: Vec<super::RoomView>,
    /// Categories where the user may create rooms, by name.
    pub categories: Vec<String>,
}

/// A room with everything its page shows: the web API's view of it, with the role
/// lists empty unless the user may read the room and `manager` telling whether the user
/// manages it (the page shows the edit forms), and what only the page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomDetails {
    /// GUID, URI, name, category, description, topic, privacy, members, managers,
    /// `manager` (as in `GET /v1/rooms`).
    #[serde(flatten)]
    pub view: super::RoomView,
    /// `normal` | `auditorium`.
    pub room_type: String,
    /// Presenters (empty unless the user may read the room).
    pub presenters: Vec<String>,
}

/// One history message on a room page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// Message id (`seqid`).
    pub id: u64,
    /// Author SIP URI.
    pub author: String,
    /// ISO 8601 UTC time.
    pub ts: String,
    /// Text.
    pub text: String,
    /// The file a `[file] name (...)` announcement names, when it is stored.
    pub file: Option<String>,
}

/// Answer to [`SiteRequest::Room`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPage {
    /// The user's SIP URI.
    pub user: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The room.
    pub room: RoomDetails,
    /// Messages, oldest first (at most [`HISTORY_PAGE`]).
    pub history: Vec<HistoryItem>,
    /// Why no history is shown (may find the room but not read it), if so.
    pub history_note: Option<String>,
    /// The id to pass as `before` for the previous page, when there may be one.
    pub older: Option<u64>,
    /// The search keyword shown, if any.
    pub search: Option<String>,
}

/// Messages per history page.
pub const HISTORY_PAGE: u32 = 20;
