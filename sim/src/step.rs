//! The step model of scenario files: one `[[step]]` (or `[[fault]]`) table is the keys
//! every step takes ([`Step`]: `client`, `repeat`, `think_ms`, `timeout_ms`,
//! `allow_fail`, `expect`, `before_step`) plus the keys of its `action`, which picks a
//! variant of the serde-tagged enum [`Action`]. A key that does not belong to the action
//! is an error at its line:column that lists only that action's keys.
//!
//! [`Action`] is tagged by `action` in files and in the JSON Schema
//! (`#[schemars(tag = "action")]`); `crate::scenario_parse` deserializes it through the
//! externally tagged form (`{ <action> = { keys } }`), because serde's internally tagged
//! enums buffer their content and lose the position of the offending value.
//!
//! This is the lowest layer of the scenario code: it imports nothing from the runner,
//! the step executors or the scenario loader.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// The keys every step takes, whatever its action (`action` itself included).
pub const COMMON_KEYS: &[&str] = &[
    "action",
    "client",
    "repeat",
    "think_ms",
    "timeout_ms",
    "allow_fail",
    "expect",
    "before_step",
];

/// One step: the common keys and the action with its own keys.
#[derive(Debug, Clone)]
pub struct Step {
    /// Client that acts (or receives); a template name (with `{n}`) = all its clients.
    pub client: Option<Spanned<String>>,
    /// What it does, with the action's own keys; the span is the `action` value's.
    pub action: Spanned<Action>,
    /// Run the step this many times (`{i}` becomes 1..N).
    pub repeat: Option<u32>,
    /// Think time: the client waits this long (ms) before acting.
    pub think_ms: Option<u64>,
    /// How long the client waits for each answer or message of this step, ms
    /// (default 5000).
    pub timeout_ms: Option<u64>,
    /// A failure of this step does not fail the scenario (it is still reported).
    pub allow_fail: bool,
    /// `[[fault]]` only: the 1-based step it comes before (`steps + 1`: after the last).
    pub before_step: Option<usize>,
    /// What must hold afterwards.
    pub expect: Expect,
}

/// The common keys of a step table, as deserialized (the action's keys are apart).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCommon {
    /// See [`Step::client`].
    #[serde(default)]
    pub client: Option<Spanned<String>>,
    /// The action's name.
    pub action: Spanned<String>,
    /// See [`Step::repeat`].
    #[serde(default)]
    pub repeat: Option<Spanned<u32>>,
    /// See [`Step::think_ms`].
    #[serde(default)]
    pub think_ms: Option<u64>,
    /// See [`Step::timeout_ms`].
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
    /// See [`Step::allow_fail`].
    #[serde(default)]
    pub allow_fail: bool,
    /// See [`Step::before_step`].
    #[serde(default)]
    pub before_step: Option<Spanned<usize>>,
    /// See [`Step::expect`].
    #[serde(default)]
    pub expect: Option<Spanned<Expect>>,
}

/// The common keys of every step, for the JSON Schema (merged into every variant of
/// [`Action`]).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CommonSchema {
    /// Client that acts (or receives); a template name (with `{n}`) = all its clients.
    /// Faults name none (network faults may name one); `wait` names none.
    client: Option<String>,
    /// Run the step this many times (`{i}` in texts becomes 1..N).
    #[schemars(range(min = 1))]
    repeat: Option<u32>,
    /// Think time: the client waits this long (ms) before acting.
    think_ms: Option<u64>,
    /// How long the client waits for each answer or message of this step, ms (default
    /// 5000).
    timeout_ms: Option<u64>,
    /// A failure of this step does not fail the scenario (it is still reported).
    allow_fail: Option<bool>,
    /// What must hold afterwards.
    expect: Option<Expect>,
    /// `[[fault]]` only: the 1-based step it comes before (`steps + 1`: after the last).
    #[schemars(range(min = 1))]
    before_step: Option<usize>,
}

/// A room by name or by raw URI.
#[derive(Debug, Clone, Default)]
pub struct RoomRef<'a> {
    /// By name (from the scenario's or the server's rooms).
    pub name: Option<&'a Spanned<String>>,
    /// By raw URI (unknown or malformed rooms on purpose).
    pub uri: Option<&'a str>,
}

/// What a step does, and the keys of that action. In files: `action = "<name>"` next to
/// the keys (`#[schemars(tag = "action")]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(tag = "action")]
pub enum Action {
    /// The whole 7-step sign-in (call-flows.md): SUBSCRIBE, INVITE, getserverinfo,
    /// getassociations (member, manager), bjoin of `rooms`, bccontext each, getinv.
    SignIn {
        /// Rooms to bjoin (and bccontext), by name.
        #[serde(default)]
        #[schemars(with = "Vec<String>")]
        rooms: Vec<Spanned<String>>,
    },
    /// SUBSCRIBE for the provisioning document.
    Subscribe {},
    /// INVITE `to` (default: the pool URI learnt from provisioning or requri) + ACK.
    Invite {
        /// Target URI.
        #[serde(default)]
        to: Option<String>,
    },
    /// `cmd:requri`; the returned URI becomes the client's pool URI.
    Requri {},
    /// `cmd:getserverinfo`.
    Getserverinfo {},
    /// `cmd:getassociations` with `role` (default member).
    Getassociations {
        /// member | manager.
        #[serde(default)]
        role: Option<Role>,
    },
    /// `cmd:bjoin` of `rooms`.
    Bjoin {
        /// Rooms, by name.
        #[schemars(with = "Vec<String>")]
        rooms: Vec<Spanned<String>>,
    },
    /// `cmd:join` of `room` (or `room_uri`).
    Join {
        /// Room by name.
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        room: Option<Spanned<String>>,
        /// Room by raw URI.
        #[serde(default)]
        room_uri: Option<String>,
    },
    /// `cmd:part` of `room` (or `room_uri`).
    Part {
        /// Room by name.
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        room: Option<Spanned<String>>,
        /// Room by raw URI.
        #[serde(default)]
        room_uri: Option<String>,
    },
    /// `cmd:bccontext` of `room`, last `count` (default 25).
    Bccontext {
        /// Room by name.
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        room: Option<Spanned<String>>,
        /// Room by raw URI.
        #[serde(default)]
        room_uri: Option<String>,
        /// Messages asked for.
        #[serde(default)]
        count: Option<u32>,
    },
    /// `cmd:getinv`.
    Getinv {},
    /// `cmd:chansrch` BYNAME with `criteria` (and `extended`).
    Chansrch {
        /// Search criteria.
        #[serde(default)]
        criteria: String,
        /// Extended results.
        #[serde(default)]
        extended: bool,
    },
    /// grpchat `text` to `room`.
    Post {
        /// Room by name.
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        room: Option<Spanned<String>>,
        /// Room by raw URI.
        #[serde(default)]
        room_uri: Option<String>,
        /// The message text (`{i}` = repeat round, `{n}` = template number).
        text: String,
        /// Client message id (grpchat `msgid`; `{i}`/`{n}` expand): stored once per
        /// author and id on any dialog; under `keep_going` sent once more on a new
        /// connection when its answer never came. Live runs prefix it per run.
        #[serde(default)]
        msgid: Option<String>,
        /// Send the post and go on without waiting for its answer (no retries); a
        /// later `answer` step waits for it.
        #[serde(default)]
        no_wait: bool,
    },
    /// Wait (`timeout_ms`, default 5000) for the answer to the client's earliest post
    /// sent with `no_wait` that is still unanswered; `expect.status` (default 200).
    Answer {},
    /// Wait (`timeout_ms`, default 5000) for the first incoming `kind` about `room`
    /// that matches `expect`; messages that do not match are skipped.
    Receive {
        /// grpchat | ntc:join | ntc:bjoin | ntc:part | ntc:newcontent | ntc:chanupdate.
        kind: ReceiveKind,
        /// Room by name.
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        room: Option<Spanned<String>>,
        /// Room by raw URI.
        #[serde(default)]
        room_uri: Option<String>,
    },
    /// Assert nothing of `kind` arrives within `ms` (default 500).
    Quiet {
        /// As for `receive`.
        kind: ReceiveKind,
        /// Room by name.
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        room: Option<Spanned<String>>,
        /// Room by raw URI.
        #[serde(default)]
        room_uri: Option<String>,
        /// How long, ms.
        #[serde(default)]
        ms: Option<u64>,
    },
    /// Send the raw XCCOS document `body` in an INFO; expect a reply.
    Xccos {
        /// The document; `{room:NAME}` / `{room-guid:NAME}` expand.
        body: String,
    },
    /// Send the raw SIP message `data` on the connection (placeholders in the docs).
    Raw {
        /// The message; `\n` line ends become CRLF.
        data: String,
    },
    /// BYE.
    Bye {},
    /// UPDATE (session refresh).
    Update {},
    /// Close the client's connection; the next step reconnects.
    Disconnect {},
    /// Let `ms` milliseconds pass (no client).
    Wait {
        /// How long, ms.
        ms: u64,
    },
    /// A new INVITE with a new Call-ID on the same connection; INFOs still arriving in
    /// the old dialog are answered 487 (the server then drops it).
    Reconnect {},
    /// Use the web services as described by `http` (`crate::http_steps`).
    Http {
        /// The request.
        http: HttpStep,
        /// Room by name (may be created during the run).
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        room: Option<Spanned<String>>,
    },
    /// Fault: the server answers every INFO 503 + Retry-After for `ms`.
    Overload {
        /// How long, ms.
        ms: u64,
    },
    /// Fault: cut the network between the server and `hosts` (or `client`, default
    /// every client); data is held, as TCP retransmits, and delivered on repair.
    Partition {
        /// Clients cut off (default: all).
        #[serde(default)]
        #[schemars(with = "Vec<String>")]
        hosts: Vec<Spanned<String>>,
        /// Heal after this long, ms (else at `repair`).
        #[serde(default)]
        ms: Option<u64>,
        /// With `[pool]`: cut this member (1-based) off from the clients (default:
        /// every member).
        #[serde(default)]
        member: Option<u32>,
    },
    /// Fault: heal partitions, latency and loss.
    Repair {},
    /// Fault: one-way latency `min_ms`..`max_ms` between the server and the clients.
    Latency {
        /// Least one-way delay, ms.
        min_ms: u64,
        /// Largest one-way delay, ms (default `min_ms`).
        #[serde(default)]
        max_ms: Option<u64>,
        /// Clients affected (default: all).
        #[serde(default)]
        #[schemars(with = "Vec<String>")]
        hosts: Vec<Spanned<String>>,
        /// For this long, ms (else until `repair`).
        #[serde(default)]
        ms: Option<u64>,
    },
    /// Fault: message loss at `rate` (0..1]; a lost segment stalls its TCP connection.
    Loss {
        /// Probability that a message is lost.
        rate: f64,
        /// Clients affected (default: all).
        #[serde(default)]
        #[schemars(with = "Vec<String>")]
        hosts: Vec<Spanned<String>>,
        /// For this long, ms (else until `repair`).
        #[serde(default)]
        ms: Option<u64>,
    },
    /// Fault: crash the server host (memory lost, the store file kept).
    Crash {
        /// Restart after this long, ms.
        #[serde(default)]
        ms: Option<u64>,
        /// With `[pool]`: crash this member (1-based) only (default: every member).
        #[serde(default)]
        member: Option<u32>,
    },
    /// Fault: restart a crashed server host.
    Restart {
        /// With `[pool]`: restart this member (1-based) only (default: every member
        /// that is down).
        #[serde(default)]
        member: Option<u32>,
    },
    /// Fault: store calls fail with `error` for `ms`.
    StoreFail {
        /// io (default) | busy.
        #[serde(default)]
        error: Option<StoreError>,
        /// How long, ms.
        ms: u64,
    },
    /// Fault: store writes fail with "disk full" for `ms`.
    DiskFull {
        /// How long, ms.
        ms: u64,
    },
}

/// `getassociations` role.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Rooms the user is a member of.
    Member,
    /// Rooms the user manages.
    Manager,
}

/// `store-fail` error kind.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StoreError {
    /// I/O error.
    Io,
    /// Transactions and writes fail (database busy).
    Busy,
}

/// What `receive` and `quiet` wait for.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum ReceiveKind {
    /// A relayed post.
    #[serde(rename = "grpchat")]
    Grpchat,
    /// `ntc:join`.
    #[serde(rename = "ntc:join")]
    Join,
    /// `ntc:bjoin`.
    #[serde(rename = "ntc:bjoin")]
    Bjoin,
    /// `ntc:part`.
    #[serde(rename = "ntc:part")]
    Part,
    /// `ntc:newcontent`.
    #[serde(rename = "ntc:newcontent")]
    NewContent,
    /// `ntc:chanupdate`.
    #[serde(rename = "ntc:chanupdate")]
    ChanUpdate,
}

impl ReceiveKind {
    /// The element name (`grpchat`, `ntc:join`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ReceiveKind::Grpchat => "grpchat",
            ReceiveKind::Join => "ntc:join",
            ReceiveKind::Bjoin => "ntc:bjoin",
            ReceiveKind::Part => "ntc:part",
            ReceiveKind::NewContent => "ntc:newcontent",
            ReceiveKind::ChanUpdate => "ntc:chanupdate",
        }
    }
}

/// What an `http` step does.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HttpOp {
    /// `cmd:getfutok` for `room`/`file`, then `PUT` the content.
    Upload,
    /// `cmd:getfdtok` for `room`/`file`, then `GET` the file.
    Download,
    /// `GET /v1/rooms`.
    ListRooms,
    /// `POST /v1/rooms` with `json`.
    CreateRoom,
    /// `PATCH /v1/rooms/{room}` with `json`.
    UpdateRoom,
}

/// The `http` table of a step.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    /// What to do.
    pub op: HttpOp,
    /// File name (upload, download).
    #[serde(default)]
    pub file: Option<String>,
    /// File content as text (upload).
    #[serde(default)]
    pub content: Option<String>,
    /// File content of `size` bytes `x` instead of `content` (upload).
    #[serde(default)]
    pub size: Option<usize>,
    /// File token: `fresh` (default, from the XCCOS command), `none` (empty),
    /// `room:<Name>` (a fresh token for another room), `captured:<client>` (the last
    /// file token the server sent that client: a stolen token), or a literal token.
    #[serde(default)]
    pub token: Option<String>,
    /// JSON body (create-room, update-room), sent as is (malformed on purpose too).
    #[serde(default)]
    pub json: Option<String>,
    /// Send the same request again and expect this HTTP status (token reuse).
    #[serde(default)]
    pub again_status: Option<u16>,
}

/// Expectations on a step's outcome; every key is optional.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// SIP status of the final response (default 200 where a request is sent).
    pub status: Option<u16>,
    /// Substring of the response's reason phrase or Warning.
    pub reason_contains: Option<String>,
    /// XCCOS reply code (default 200 for commands).
    pub code: Option<u16>,
    /// Room names in the reply, in order (search hits, join/associations rooms).
    pub rooms: Option<Vec<String>>,
    /// User URIs online in the (first) room of a join reply, in any order.
    pub participants: Option<Vec<String>>,
    /// Texts of the last messages of a bccontext reply, oldest first.
    pub messages: Option<Vec<String>>,
    /// receive: author URI.
    pub author: Option<String>,
    /// receive: text.
    pub text: Option<String>,
    /// receive (ntc): user URI.
    pub user: Option<String>,
    /// Substrings the reply (or response) body must contain.
    pub contains: Option<Vec<String>>,
    /// Substrings it must not contain.
    pub excludes: Option<Vec<String>>,
    /// Regular expressions (Rust `regex` syntax) the reply, response or received
    /// message must match (each somewhere in it).
    pub matches: Option<Vec<String>>,
    /// raw: whether the server closed the connection.
    pub closed: Option<bool>,
    /// Latency assertion: the step (each client's part of it, each repeat) takes at most
    /// this long, ms - simulated time in the simulator, wall-clock time live.
    pub within_ms: Option<u64>,
}

/// What a step does, without its keys (names and classes of actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ActionKind {
    SignIn,
    Subscribe,
    Invite,
    Requri,
    Getserverinfo,
    Getassociations,
    Bjoin,
    Join,
    Part,
    Bccontext,
    Getinv,
    Chansrch,
    Post,
    Answer,
    Receive,
    Quiet,
    Xccos,
    Raw,
    Bye,
    Update,
    Disconnect,
    Wait,
    Reconnect,
    Http,
    Overload,
    Partition,
    Repair,
    Latency,
    Loss,
    Crash,
    Restart,
    StoreFail,
    DiskFull,
}

/// Every action, in the order of the docs.
pub const ACTIONS: &[ActionKind] = &[
    ActionKind::SignIn,
    ActionKind::Subscribe,
    ActionKind::Invite,
    ActionKind::Requri,
    ActionKind::Getserverinfo,
    ActionKind::Getassociations,
    ActionKind::Bjoin,
    ActionKind::Join,
    ActionKind::Part,
    ActionKind::Bccontext,
    ActionKind::Getinv,
    ActionKind::Chansrch,
    ActionKind::Post,
    ActionKind::Answer,
    ActionKind::Receive,
    ActionKind::Quiet,
    ActionKind::Xccos,
    ActionKind::Raw,
    ActionKind::Bye,
    ActionKind::Update,
    ActionKind::Disconnect,
    ActionKind::Wait,
    ActionKind::Reconnect,
    ActionKind::Http,
    ActionKind::Overload,
    ActionKind::Partition,
    ActionKind::Repair,
    ActionKind::Latency,
    ActionKind::Loss,
    ActionKind::Crash,
    ActionKind::Restart,
    ActionKind::StoreFail,
    ActionKind::DiskFull,
];

impl ActionKind {
    /// The name as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::SignIn => "sign-in",
            ActionKind::Subscribe => "subscribe",
            ActionKind::Invite => "invite",
            ActionKind::Requri => "requri",
            ActionKind::Getserverinfo => "getserverinfo",
            ActionKind::Getassociations => "getassociations",
            ActionKind::Bjoin => "bjoin",
            ActionKind::Join => "join",
            ActionKind::Part => "part",
            ActionKind::Bccontext => "bccontext",
            ActionKind::Getinv => "getinv",
            ActionKind::Chansrch => "chansrch",
            ActionKind::Post => "post",
            ActionKind::Answer => "answer",
            ActionKind::Receive => "receive",
            ActionKind::Quiet => "quiet",
            ActionKind::Xccos => "xccos",
            ActionKind::Raw => "raw",
            ActionKind::Bye => "bye",
            ActionKind::Update => "update",
            ActionKind::Disconnect => "disconnect",
            ActionKind::Wait => "wait",
            ActionKind::Reconnect => "reconnect",
            ActionKind::Http => "http",
            ActionKind::Overload => "overload",
            ActionKind::Partition => "partition",
            ActionKind::Repair => "repair",
            ActionKind::Latency => "latency",
            ActionKind::Loss => "loss",
            ActionKind::Crash => "crash",
            ActionKind::Restart => "restart",
            ActionKind::StoreFail => "store-fail",
            ActionKind::DiskFull => "disk-full",
        }
    }

    /// The action named `name` in a file.
    pub fn from_name(name: &str) -> Option<ActionKind> {
        ACTIONS.iter().copied().find(|a| a.name() == name)
    }

    /// The action's own keys (its variant's fields in [`Action`]; a test keeps the two
    /// equal), for error messages.
    pub fn keys(self) -> &'static [&'static str] {
        const ROOM: &[&str] = &["room", "room_uri"];
        match self {
            ActionKind::SignIn | ActionKind::Bjoin => &["rooms"],
            ActionKind::Invite => &["to"],
            ActionKind::Getassociations => &["role"],
            ActionKind::Join | ActionKind::Part => ROOM,
            ActionKind::Bccontext => &["room", "room_uri", "count"],
            ActionKind::Chansrch => &["criteria", "extended"],
            ActionKind::Post => &["room", "room_uri", "text", "msgid", "no_wait"],
            ActionKind::Receive => &["kind", "room", "room_uri"],
            ActionKind::Quiet => &["kind", "room", "room_uri", "ms"],
            ActionKind::Xccos => &["body"],
            ActionKind::Raw => &["data"],
            ActionKind::Wait | ActionKind::Overload | ActionKind::DiskFull => &["ms"],
            ActionKind::Crash => &["ms", "member"],
            ActionKind::Http => &["http", "room"],
            ActionKind::Partition => &["hosts", "ms", "member"],
            ActionKind::Latency => &["min_ms", "max_ms", "hosts", "ms"],
            ActionKind::Loss => &["rate", "hosts", "ms"],
            ActionKind::StoreFail => &["error", "ms"],
            ActionKind::Subscribe
            | ActionKind::Requri
            | ActionKind::Getserverinfo
            | ActionKind::Getinv
            | ActionKind::Answer
            | ActionKind::Bye
            | ActionKind::Update
            | ActionKind::Disconnect
            | ActionKind::Reconnect
            | ActionKind::Repair => &[],
            ActionKind::Restart => &["member"],
        }
    }

    /// Whether this is a fault the driver injects (no client acts).
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            ActionKind::Overload
                | ActionKind::Partition
                | ActionKind::Repair
                | ActionKind::Latency
                | ActionKind::Loss
                | ActionKind::Crash
                | ActionKind::Restart
                | ActionKind::StoreFail
                | ActionKind::DiskFull
        )
    }

    /// Network faults may name a `client` (the one cut off); other faults and `wait`
    /// name none; every other action needs one.
    pub fn client_use(self) -> ClientUse {
        match self {
            ActionKind::Partition | ActionKind::Latency | ActionKind::Loss => ClientUse::Optional,
            k if k.is_fault() || k == ActionKind::Wait => ClientUse::None,
            _ => ClientUse::Required,
        }
    }
}

/// Whether an action takes a `client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientUse {
    /// It must name one.
    Required,
    /// It may name one.
    Optional,
    /// It names none.
    None,
}

impl Action {
    /// The action's kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::SignIn { .. } => ActionKind::SignIn,
            Action::Subscribe {} => ActionKind::Subscribe,
            Action::Invite { .. } => ActionKind::Invite,
            Action::Requri {} => ActionKind::Requri,
            Action::Getserverinfo {} => ActionKind::Getserverinfo,
            Action::Getassociations { .. } => ActionKind::Getassociations,
            Action::Bjoin { .. } => ActionKind::Bjoin,
            Action::Join { .. } => ActionKind::Join,
            Action::Part { .. } => ActionKind::Part,
            Action::Bccontext { .. } => ActionKind::Bccontext,
            Action::Getinv {} => ActionKind::Getinv,
            Action::Chansrch { .. } => ActionKind::Chansrch,
            Action::Post { .. } => ActionKind::Post,
            Action::Answer {} => ActionKind::Answer,
            Action::Receive { .. } => ActionKind::Receive,
            Action::Quiet { .. } => ActionKind::Quiet,
            Action::Xccos { .. } => ActionKind::Xccos,
            Action::Raw { .. } => ActionKind::Raw,
            Action::Bye {} => ActionKind::Bye,
            Action::Update {} => ActionKind::Update,
            Action::Disconnect {} => ActionKind::Disconnect,
            Action::Wait { .. } => ActionKind::Wait,
            Action::Reconnect {} => ActionKind::Reconnect,
            Action::Http { .. } => ActionKind::Http,
            Action::Overload { .. } => ActionKind::Overload,
            Action::Partition { .. } => ActionKind::Partition,
            Action::Repair {} => ActionKind::Repair,
            Action::Latency { .. } => ActionKind::Latency,
            Action::Loss { .. } => ActionKind::Loss,
            Action::Crash { .. } => ActionKind::Crash,
            Action::Restart { .. } => ActionKind::Restart,
            Action::StoreFail { .. } => ActionKind::StoreFail,
            Action::DiskFull { .. } => ActionKind::DiskFull,
        }
    }
}

impl Step {
    /// The action's kind.
    pub fn kind(&self) -> ActionKind {
        self.action.get_ref().kind()
    }

    /// The `client` key's value, or "" when the step names none.
    pub fn client_name(&self) -> String {
        self.client
            .as_ref()
            .map(|c| c.get_ref().clone())
            .unwrap_or_default()
    }

    /// The step's `ms` (wait, quiet, the window of a fault), if it has one.
    pub fn ms(&self) -> Option<u64> {
        match self.action.get_ref() {
            Action::Wait { ms } | Action::Overload { ms } | Action::DiskFull { ms } => Some(*ms),
            Action::StoreFail { ms, .. } => Some(*ms),
            Action::Quiet { ms, .. }
            | Action::Partition { ms, .. }
            | Action::Latency { ms, .. }
            | Action::Loss { ms, .. }
            | Action::Crash { ms, .. } => *ms,
            _ => None,
        }
    }

    /// The room the step names, by name or URI.
    pub fn room(&self) -> RoomRef<'_> {
        match self.action.get_ref() {
            Action::Join { room, room_uri }
            | Action::Part { room, room_uri }
            | Action::Bccontext { room, room_uri, .. }
            | Action::Post { room, room_uri, .. }
            | Action::Receive { room, room_uri, .. }
            | Action::Quiet { room, room_uri, .. } => RoomRef {
                name: room.as_ref(),
                uri: room_uri.as_deref(),
            },
            Action::Http { room, .. } => RoomRef {
                name: room.as_ref(),
                uri: None,
            },
            _ => RoomRef::default(),
        }
    }

    /// The rooms of `sign-in` and `bjoin`.
    pub fn rooms(&self) -> &[Spanned<String>] {
        match self.action.get_ref() {
            Action::SignIn { rooms } | Action::Bjoin { rooms } => rooms,
            _ => &[],
        }
    }

    /// The clients a network fault names in `hosts`.
    pub fn hosts(&self) -> &[Spanned<String>] {
        match self.action.get_ref() {
            Action::Partition { hosts, .. }
            | Action::Latency { hosts, .. }
            | Action::Loss { hosts, .. } => hosts,
            _ => &[],
        }
    }

    /// The pool member (1-based) a `crash`, `restart` or `partition` names.
    pub fn member(&self) -> Option<u32> {
        match self.action.get_ref() {
            Action::Crash { member, .. }
            | Action::Restart { member }
            | Action::Partition { member, .. } => *member,
            _ => None,
        }
    }

    /// Whether this is a `post` carrying a client message id.
    pub fn has_msgid(&self) -> bool {
        matches!(self.action.get_ref(), Action::Post { msgid: Some(_), .. })
    }

    /// Whether a text of the step uses `{n}` (the client's number in its template).
    pub fn uses_n(&self) -> bool {
        let (a, b) = (self.substituted(1, "1"), self.substituted(1, "2"));
        format!("{:?}{:?}", a.action, a.expect) != format!("{:?}{:?}", b.action, b.expect)
    }

    /// The step with `{i}` replaced by `round` and `{n}` by `n` (the client's number in
    /// its template, "" when it has none) in every text the action sends or expects.
    pub fn substituted(&self, round: u32, n: &str) -> Step {
        self.map_texts(&|s: &str| s.replace("{i}", &round.to_string()).replace("{n}", n))
    }

    /// The step with `sub` applied to every text the action sends or expects (`text`,
    /// `msgid`, `body`, `data`, `criteria`, `to`, every `expect` string).
    pub fn map_texts(&self, sub: &dyn Fn(&str) -> String) -> Step {
        let mut step = self.clone();
        match step.action.get_mut() {
            Action::Post { text, msgid, .. } => {
                *text = sub(text);
                if let Some(m) = msgid {
                    *m = sub(m);
                }
            }
            Action::Xccos { body } => *body = sub(body),
            Action::Raw { data } => *data = sub(data),
            Action::Chansrch { criteria, .. } => *criteria = sub(criteria),
            Action::Invite { to: Some(to) } => *to = sub(to),
            _ => {}
        }
        let e = &mut step.expect;
        for s in [
            &mut e.text,
            &mut e.author,
            &mut e.user,
            &mut e.reason_contains,
        ]
        .into_iter()
        .flatten()
        {
            *s = sub(s);
        }
        for list in [
            &mut e.contains,
            &mut e.excludes,
            &mut e.messages,
            &mut e.matches,
        ]
        .into_iter()
        .flatten()
        {
            for s in list {
                *s = sub(s);
            }
        }
        step
    }
}
