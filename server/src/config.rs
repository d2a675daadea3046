//! Server configuration: the TOML file given to `pchat-server --config FILE`, or the
//! embedded default (`default-config.toml`) when none is given.
//!
//! Keys are interfaces that tools and tests rely on: `domain`, `[sip] listen`,
//! `[store] path`, `[[category]] name/description/allowed/denied/creators/invitations/
//! file_upload/history`, `[[room]] name/description/topic/privacy/members/managers/
//! category/type/presenters/invitations/disabled`, `[http] listen/public_url/file_store/
//! compliance_file_store/max_file_bytes/file_token_ttl_ms/bearer_ttl_ms/tls`.
//! Unknown keys are rejected so that a typo fails loudly with its line and column.

use schemars::JsonSchema;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The embedded default configuration (domain contoso.com, four demo rooms).
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Whole server configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SIP domain served, e.g. `contoso.com`; room URIs are `ma-chan://<domain>/<guid>`.
    pub domain: String,
    /// SIP transport settings.
    #[serde(default)]
    pub sip: SipConfig,
    /// Persistent Chat Store settings.
    #[serde(default)]
    pub store: StoreConfig,
    /// Limits announced by `getserverinfo` and enforced on input.
    #[serde(default)]
    pub limits: Limits,
    /// The pool this server belongs to.
    #[serde(default)]
    pub pool: PoolConfig,
    /// Categories (scope, creators, settings). A room without `category` is in
    /// [`DEFAULT_CATEGORY`], which is open to the whole domain unless defined here.
    #[serde(default, rename = "category")]
    pub categories: Vec<CategoryConfig>,
    /// Rooms created (or updated) at start.
    #[serde(default, rename = "room")]
    pub rooms: Vec<RoomConfig>,
    /// The compliance pipeline (`[compliance]`, see [`ComplianceConfig`]).
    #[serde(default)]
    pub compliance: ComplianceConfig,
    /// The web services (`[http]`, see [`HttpConfig`]); absent: no HTTP listener.
    #[serde(default)]
    pub http: Option<HttpConfig>,
    /// Authentication (`[auth]`, see [`AuthConfig`]); absent: mode `"none"`
    /// (loopback only).
    #[serde(default)]
    pub auth: AuthConfig,
    /// Users who may sign in (`[[user]]`, see [`UserConfig`]).
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
}

/// `[auth] mode` (docs/security.md).
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication: the From header is the identity. Allowed only when every
    /// listen address is loopback (the server refuses to start otherwise).
    #[default]
    None,
    /// SIP Digest (RFC 3261 section 22, RFC 8760 SHA-256 and MD5, `qop=auth`) against
    /// the `[[user]]` list.
    Digest,
    /// Front-end mode: requests from `trusted_peers` carry the user in
    /// P-Asserted-Identity (RFC 3325); every other peer authenticates with Digest.
    Trusted,
    /// NTLMv2 ([MS-NLMP], connectionless) against the `[[user]]` passwords, with
    /// [MS-SIPAE] message signing on the security association: what Lync clients and
    /// SIPE speak (docs/clients.md). Users need a `password` (the NT hash is derived
    /// from it).
    Ntlm,
}

/// `[auth]`: who may act as whom (docs/security.md). Keys: `mode`, `realm`,
/// `nonce_ttl_s`, `trusted_peers`, `max_failures`, `failure_window_s`, `lockout_s`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `"none"` | `"digest"` | `"trusted"`.
    pub mode: AuthMode,
    /// Digest realm (RFC 3261 22.1); default: the server's `domain`.
    pub realm: Option<String>,
    /// Lifetime of a Digest nonce, in seconds; an older one is answered 401 with
    /// `stale=true` (the client retries with the new nonce without asking the user).
    pub nonce_ttl_s: u32,
    /// Trusted front ends (mode `"trusted"`): `sha256:<hex>` fingerprints of TLS
    /// client certificates, or loopback IP addresses (`127.0.0.1`, `::1`).
    pub trusted_peers: Vec<String>,
    /// Failed authentications per user, and per source address, within
    /// `failure_window_s` after which further attempts are refused unchecked.
    pub max_failures: u32,
    /// The window failures are counted in, in seconds.
    pub failure_window_s: u32,
    /// How long a user or address stays refused, in seconds.
    pub lockout_s: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            realm: None,
            nonce_ttl_s: 300,
            trusted_peers: Vec::new(),
            max_failures: 10,
            failure_window_s: 60,
            lockout_s: 300,
        }
    }
}

/// `[[user]]`: a user who may sign in. `uri` plus one of `password` (labs),
/// `ha1_sha256` or `ha1_md5` (hex HA1 = H(user:realm:password), RFC 3261 22.4 /
/// RFC 8760; what operators keep - `pchat-server user hash` prints them).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// SIP URI, e.g. `sip:user1@contoso.com`.
    pub uri: String,
    /// Clear-text password (labs and demos).
    #[serde(default)]
    pub password: Option<String>,
    /// Hex SHA-256 HA1 for the configured realm.
    #[serde(default)]
    pub ha1_sha256: Option<String>,
    /// Hex MD5 HA1 for the configured realm.
    #[serde(default)]
    pub ha1_md5: Option<String>,
}

impl Config {
    /// The Digest realm in force: `[auth] realm`, else the domain.
    pub fn realm(&self) -> &str {
        self.auth.realm.as_deref().unwrap_or(&self.domain)
    }
}

/// `[http]`: the web services - file upload/download and room management over HTTP
/// (call-flows.md "Web services"; `crate::web`, docs/web.md). Keys: `listen`,
/// `public_url`, `file_store`, `compliance_file_store`, `max_file_bytes`,
/// `file_token_ttl_ms`, `bearer_ttl_ms`, `tls`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Base URL sent to clients as `serveruri` (default `http://<listen>`, or
    /// `https://<listen>` with `tls`).
    pub public_url: Option<String>,
    /// The file store: a directory of content-addressed files (created if missing).
    pub file_store: PathBuf,
    /// The compliance file store: a copy of every uploaded file (created if missing).
    pub compliance_file_store: PathBuf,
    /// Largest file accepted, in bytes (default 10 MiB); larger uploads get 413.
    pub max_file_bytes: u64,
    /// Lifetime of a file token (`cmd:getfutok`/`cmd:getfdtok`), ms (default 5 min).
    pub file_token_ttl_ms: u64,
    /// Lifetime of a bearer token (`cmd:gethttptok`), ms (default 8 h); it also ends
    /// with the SIP dialog it was issued on.
    pub bearer_ttl_ms: u64,
    /// Serve HTTPS (TLS 1.2/1.3, no client certificates) on `listen` with the SIP
    /// certificate `[sip] tls_cert` / `tls_key` (both required). Default false: plain
    /// HTTP. Session cookies then carry `Secure`.
    pub tls: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".to_string(),
            public_url: None,
            file_store: PathBuf::from("pchat-data/files"),
            compliance_file_store: PathBuf::from("pchat-data/compliance-files"),
            max_file_bytes: 10 * 1024 * 1024,
            file_token_ttl_ms: 5 * 60 * 1000,
            bearer_ttl_ms: 8 * 3600 * 1000,
            tls: false,
        }
    }
}

impl HttpConfig {
    /// The base URL clients are told to use (`public_url`, else `http://<listen>`, or
    /// `https://<listen>` with `tls`).
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }
}

/// `[compliance]`: the compliance pipeline (call-flows.md "Call flow 3";
/// `crate::compliance`). Keys: `enabled`, `run_interval`, `output_dir`,
/// `one_room_per_file`, `adapter`, `path`, and `batch_size`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceConfig {
    /// Record events (in the action's store transaction) and run the worker.
    pub enabled: bool,
    /// Time between adapter runs: milliseconds as an integer, or a string with a unit
    /// (`"500ms"`, `"30s"`, `"5m"`). Default 30 s (the product's RunInterval).
    pub run_interval: RunInterval,
    /// Directory the adapter writes its files to (created if missing).
    pub output_dir: PathBuf,
    /// One output file per room and batch instead of one per batch
    /// (OneChatRoomPerOutputFile).
    pub one_room_per_file: bool,
    /// Output format: `xml` (the documented format, XCCOS.md last section) or `jsonl`.
    pub adapter: AdapterKind,
    /// The compliance database (mgccomp role): its own SQLite file.
    pub path: PathBuf,
    /// Most events per adapter batch.
    pub batch_size: u32,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        ComplianceConfig {
            enabled: false,
            run_interval: RunInterval(30_000),
            output_dir: PathBuf::from("pchat-data/compliance"),
            one_room_per_file: false,
            adapter: AdapterKind::Xml,
            path: PathBuf::from("pchat-data/mgccomp.db"),
            batch_size: 1000,
        }
    }
}

/// `[compliance] adapter`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// XML files in the documented format (`Conversations`, XCCOS.md last section).
    #[default]
    Xml,
    /// JSON Lines, one event per line.
    Jsonl,
}

/// An interval in milliseconds, written in config as an integer (ms) or a string with a
/// unit: `"250ms"`, `"30s"`, `"5m"`, `"1h"`. Must be at least 1 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunInterval(pub u64);

impl RunInterval {
    /// Parses `"250ms"`, `"30s"`, `"5m"`, `"1h"` or bare digits (ms). Errors: a message
    /// naming the accepted forms.
    pub fn parse(s: &str) -> Result<RunInterval, String> {
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let bad = || {
            format!(
                "run_interval {s:?}: expected milliseconds or \"500ms\", \"30s\", \"5m\", \"1h\""
            )
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        let factor = match unit.trim() {
            "" | "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        let ms = n.checked_mul(factor).ok_or_else(bad)?;
        if ms == 0 {
            return Err(format!("run_interval {s:?} must be at least 1 ms"));
        }
        Ok(RunInterval(ms))
    }
}

impl<'de> Deserialize<'de> for RunInterval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Ms(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Ms(ms) if ms >= 1 => Ok(RunInterval(ms as u64)),
            Raw::Ms(ms) => Err(serde::de::Error::custom(format!(
                "run_interval {ms} must be at least 1 ms"
            ))),
            Raw::Text(t) => RunInterval::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// JSON Schema (scenario and config editor completion): an integer of milliseconds
/// (at least 1) or a string with a unit, as [`RunInterval::parse`] accepts.
impl JsonSchema for RunInterval {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RunInterval".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Milliseconds as an integer, or a string with a unit: \"250ms\", \"30s\", \"5m\", \"1h\".",
            "anyOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string", "pattern": "^\\s*[0-9]+\\s*(ms|s|m|min|h)?\\s*$" }
            ]
        })
    }
}

/// Name of the category a room without `category` belongs to. When no `[[category]]`
/// has this name, it is implicit: `allowed = ["*@<domain>"]`, no creators, invitations,
/// file upload and history on.
pub const DEFAULT_CATEGORY: &str = "Default";

fn yes() -> bool {
    true
}

/// `[[category]]`: a group of rooms that bounds who may be in them (product room
/// model, call-flows.md "Room model").
///
/// `allowed`, `denied` and `creators` entries are user URIs (`sip:user@domain`) or
/// whole domains (`*@domain`), matched case-insensitively. A denied user is out of
/// scope whatever the other lists say.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CategoryConfig {
    /// Category name, unique (case-insensitively); rooms refer to it by `category`.
    pub name: String,
    /// Free-text description.
    #[serde(default)]
    pub description: String,
    /// Who is in scope: may find and (per room privacy) enter the category's rooms.
    /// Omitted: the whole server domain (`*@<domain>`).
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    /// Who is out of scope whatever `allowed` and the room lists say.
    #[serde(default)]
    pub denied: Vec<String>,
    /// Who may create rooms in this category (`cmd:createroom`). Default: nobody.
    #[serde(default)]
    pub creators: Vec<String>,
    /// Whether rooms of this category may send invitations (rooms with
    /// `invitations = "inherit"` follow this). Default true.
    #[serde(default = "yes")]
    pub invitations: bool,
    /// Whether file upload is allowed (announced as `prop:filepost`). Default true.
    #[serde(default = "yes")]
    pub file_upload: bool,
    /// Whether chat history is kept readable (`bccontext`; `prop:logged`). Default true.
    #[serde(default = "yes")]
    pub history: bool,
}

impl CategoryConfig {
    /// The implicit default category of `domain` (see [`DEFAULT_CATEGORY`]).
    pub fn implicit_default(domain: &str) -> CategoryConfig {
        CategoryConfig {
            name: DEFAULT_CATEGORY.to_string(),
            description: "Rooms without a category".to_string(),
            allowed: None,
            denied: Vec::new(),
            creators: Vec::new(),
            invitations: true,
            file_upload: true,
            history: true,
        }
        .with_domain_default(domain)
    }

    /// Fills an omitted `allowed` with `*@<domain>`.
    pub fn with_domain_default(mut self, domain: &str) -> CategoryConfig {
        if self.allowed.is_none() {
            self.allowed = Some(vec![format!("*@{domain}")]);
        }
        self
    }
}

/// Room type (product room model).
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default)]
#[serde(rename_all = "lowercase")]
pub enum RoomType {
    /// Every member (everyone in scope, for an open room) may post.
    #[default]
    Normal,
    /// Only presenters may post; the others read.
    Auditorium,
}

impl RoomType {
    /// The lower-case name used in config and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomType::Normal => "normal",
            RoomType::Auditorium => "auditorium",
        }
    }

    /// Inverse of [`RoomType::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<RoomType> {
        match s {
            "normal" => Some(RoomType::Normal),
            "auditorium" => Some(RoomType::Auditorium),
            _ => None,
        }
    }
}

/// A room's invitations setting.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default)]
#[serde(rename_all = "lowercase")]
pub enum Invitations {
    /// Follow the category's `invitations`.
    #[default]
    Inherit,
    /// Invitations on (if the category allows them).
    On,
    /// No invitations.
    Off,
}

impl Invitations {
    /// The lower-case name used in config, on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Invitations::Inherit => "inherit",
            Invitations::On => "on",
            Invitations::Off => "off",
        }
    }

    /// Inverse of [`Invitations::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Invitations> {
        match s {
            "inherit" => Some(Invitations::Inherit),
            "on" => Some(Invitations::On),
            "off" => Some(Invitations::Off),
            _ => None,
        }
    }

    /// Whether invitations are sent, given the category's setting: `inherit` follows
    /// it, `on` needs the category to allow them too, `off` never.
    pub fn effective(self, category_allows: bool) -> bool {
        match self {
            Invitations::Inherit | Invitations::On => category_allows,
            Invitations::Off => false,
        }
    }
}

/// `[sip]`: SIP over TCP (RFC 3261 section 18).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// TCP listen address, `HOST:PORT`.
    pub listen: String,
    /// Session-Expires offered in the 200 OK to INVITE, in seconds (RFC 4028);
    /// a dialog not refreshed (UPDATE, INFO) within it is dropped.
    pub session_expires_s: u32,
    /// Smallest Session-Expires accepted, in seconds (RFC 4028 `Min-SE`, at least 90):
    /// a request asking for less gets 422 with `Min-SE`.
    pub min_se_s: u32,
    /// Largest SIP message accepted, in bytes; larger closes the connection.
    pub max_message_bytes: usize,
    /// Watermark of each connection's send backlog, in messages: above it, that
    /// connection's new posts and commands (INFO) get 503 + `Retry-After` until it
    /// drains (the connection is kept: it may carry many dialogs).
    pub send_queue: usize,
    /// Watermark of the server-wide send backlog, in bytes: above it, every
    /// connection's new posts and commands get 503 + `Retry-After`.
    pub server_backlog_bytes: usize,
    /// Requests the server sent on one connection (command replies, notices and relays,
    /// as INFOs) that its peer has not answered yet, above which **new sessions** on that
    /// connection (an INVITE without a To tag) get 503 + `Retry-After`. Unlike the send
    /// backlog it also counts what waits in the kernel's socket buffers and in the peer,
    /// so it sees a slow reader before the queue does, and it bounds the dialogs in
    /// progress on a slow connection (and so the fan-out to them). Requests unanswered
    /// for longer than 1 s are no longer counted (a peer may drop requests for dialogs it
    /// already ended). `0` turns the check off. Default 64.
    pub max_unanswered: usize,
    /// How long, in milliseconds, the oldest unanswered request on a connection must
    /// also have waited for `max_unanswered` to refuse new sessions: a peer's answer
    /// time (round trip plus its own queue) under which many requests in flight are not
    /// taken as a backlog. Under 1000 (requests unanswered for 1 s are no longer
    /// counted). Default 0: the count alone decides, which holds a single-threaded
    /// peer such as SIPp to its best goodput (BENCHMARKS.md); a member behind a front
    /// end whose clients answer in tens of milliseconds may set about its p99 answer
    /// time (e.g. 100).
    pub max_answer_delay_ms: u64,
    /// A connection whose peer has read nothing for this long, in seconds, is closed
    /// (its queued messages are dropped).
    pub write_stall_timeout_s: u32,
    /// Capacity of the queue into the channel service, in requests; when full, INFO
    /// gets 503 with `Retry-After`.
    pub core_queue: usize,
    /// `Retry-After` sent with 503, in seconds.
    pub retry_after_s: u32,
    /// Longest a post or command (INFO) should wait in the queue into the channel
    /// service, ms or `"1s"`: while that queue holds a backlog (`host::LATE_MIN_QUEUED`
    /// inputs) and the INFOs taken from it waited longer, every connection's new INFOs
    /// are answered 503 + `Retry-After` at the door (before parsing), so under overload
    /// the queue stops growing instead of holding seconds of latency. Default 1 s.
    pub max_queue_delay: RunInterval,
    /// Time a connection has to complete a message once its first byte arrived:
    /// milliseconds as an integer, or `"10s"`; a slower one is closed. Default 10 s.
    pub header_timeout: RunInterval,
    /// Time a connection may stay without authenticating (modes `"digest"` and
    /// `"trusted"`), ms or `"30s"`; then it is closed. Default 30 s.
    pub unauthenticated_timeout: RunInterval,
    /// Most connections at once that have not authenticated yet; further ones are
    /// closed at once. Default 10,000.
    pub max_unauthenticated: usize,
    /// SIP over TLS listen address, `HOST:PORT` (e.g. `127.0.0.1:5061`); absent: no TLS.
    pub tls_listen: Option<String>,
    /// PEM certificate chain for `tls_listen`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_listen`.
    pub tls_key: Option<PathBuf>,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "127.0.0.1:5060".into(),
            session_expires_s: 1800,
            min_se_s: 90,
            max_message_bytes: 256 * 1024,
            send_queue: 4096,
            server_backlog_bytes: 64 * 1024 * 1024,
            max_unanswered: 64,
            max_answer_delay_ms: 0,
            write_stall_timeout_s: 30,
            core_queue: 65536,
            retry_after_s: 1,
            max_queue_delay: RunInterval(1_000),
            header_timeout: RunInterval(10_000),
            unauthenticated_timeout: RunInterval(30_000),
            max_unauthenticated: 10_000,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[store]`: the Persistent Chat Store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite database file, created (with its directory) if missing. `:memory:` keeps
    /// everything in memory (tests only). Unused when `url` is set.
    pub path: PathBuf,
    /// PostgreSQL instead of SQLite: `postgresql://USER@HOST:PORT/DB` (libpq URL, no
    /// TLS). Servers with the same `url` form a pool (docs/pool.md): each relays the
    /// others' posts, joins and parts, and closes the sessions of a member that died.
    pub url: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("pchat-data/pchat.db"),
            url: None,
        }
    }
}

/// `[limits]`: what `getserverinfo` announces (XCCOS.md `sib`), enforced by the server.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most rooms a `chansrch` returns.
    pub search_limit: u32,
    /// Largest chat message, in characters.
    pub message_size_limit: u32,
    /// Largest "story" (long post), in characters.
    pub story_size_limit: u32,
    /// Most messages one `bccontext` returns.
    pub history_limit: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            search_limit: 999,
            message_size_limit: 512,
            story_size_limit: 4096,
            history_limit: 100,
        }
    }
}

/// `[pool]`: the Persistent Chat pool.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// SIP URIs of the pool's endpoints, listed in the provisioning document and
    /// returned by `cmd:requri`. Empty means `sip:pchat@<domain>`.
    pub uris: Vec<String>,
    /// This server's name in the pool. It keys the server's entries in the store's
    /// open-sessions ledger, so that after a crash each server closes only its own
    /// sessions (servers of a pool share one store). Empty means `[sip] listen`.
    pub server_id: String,
    /// Seconds a member's lease lasts ([`store::Store::lease_renew`]); a member renews
    /// it every `lease_s / 3`. When a member's lease has ended, one survivor closes its
    /// open sessions (PART events, `ntc:part`). Default 15. Used with `[store] url`.
    ///
    /// [`store::Store::lease_renew`]: crate::store::Store::lease_renew
    pub lease_s: u32,
    /// A member of a pool on a shared SQLite file (`[store] path`) instead of
    /// PostgreSQL: the simulator's pool (pchat-sim `[pool] servers = N`, docs/pool.md),
    /// whose members are hosts of one process. Not a configuration key (a pool of
    /// real servers shares PostgreSQL, `[store] url`).
    #[serde(skip)]
    pub shared_sqlite: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            uris: Vec::new(),
            server_id: String::new(),
            lease_s: 15,
            shared_sqlite: false,
        }
    }
}

impl Config {
    /// Whether this server is a member of a pool sharing its store (`[store] url` set,
    /// or the simulator's shared SQLite file, [`PoolConfig::shared_sqlite`]): relays
    /// then come from the store's log and members hold leases (docs/pool.md).
    pub fn pooled(&self) -> bool {
        self.store.url.is_some() || self.pool.shared_sqlite
    }

    /// This server's name in the pool: `[pool] server_id`, or `[sip] listen` if empty.
    pub fn server_id(&self) -> &str {
        if self.pool.server_id.is_empty() {
            &self.sip.listen
        } else {
            &self.pool.server_id
        }
    }
}

/// Room privacy (product room model).
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Default)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// Anyone in scope can find and join.
    #[default]
    Open,
    /// Anyone in scope can find; only members can join, read, post.
    Closed,
    /// Only members can find or join.
    Secret,
}

impl Privacy {
    /// The lower-case name used in config and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Open => "open",
            Privacy::Closed => "closed",
            Privacy::Secret => "secret",
        }
    }

    /// Inverse of [`Privacy::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Privacy> {
        match s {
            "open" => Some(Privacy::Open),
            "closed" => Some(Privacy::Closed),
            "secret" => Some(Privacy::Secret),
            _ => None,
        }
    }
}

/// `[[room]]`: a room created or updated at start.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    /// Room name, unique (case-insensitively) within the pool; it also fixes the room's
    /// GUID, so the room keeps its URI across restarts.
    pub name: String,
    /// Free-text description.
    #[serde(default)]
    pub description: String,
    /// Current topic.
    #[serde(default)]
    pub topic: String,
    /// `open` | `closed` | `secret`.
    #[serde(default)]
    pub privacy: Privacy,
    /// Member SIP URIs.
    #[serde(default)]
    pub members: Vec<String>,
    /// Manager SIP URIs (managers are members too).
    #[serde(default)]
    pub managers: Vec<String>,
    /// Category name; omitted: [`DEFAULT_CATEGORY`].
    #[serde(default)]
    pub category: Option<String>,
    /// `normal` | `auditorium`.
    #[serde(default, rename = "type")]
    pub room_type: RoomType,
    /// Presenter SIP URIs (who may post in an auditorium; presenters are members too).
    #[serde(default)]
    pub presenters: Vec<String>,
    /// `inherit` | `on` | `off`.
    #[serde(default)]
    pub invitations: Invitations,
    /// A disabled room cannot be found, joined or posted to; its managers may still
    /// update it (and enable it again).
    #[serde(default)]
    pub disabled: bool,
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File named.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// TOML syntax or a key of the wrong type; the message carries line and column.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// File named (`<embedded default>` for the default).
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// Well-formed, but inconsistent (duplicate room, bad URI, ...).
    #[error("{path}: {message}")]
    Invalid {
        /// File named.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// 1-based (line, column) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Config {
    /// Parses TOML text; `path` only labels errors. Errors: [`ConfigError::Parse`] with
    /// line:column, [`ConfigError::Invalid`] for semantic problems.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(cfg)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Config {
        // The embedded file is checked by a unit test; fall back to a minimal config so
        // that this can never panic.
        Config::from_toml(DEFAULT_CONFIG, Path::new("<embedded default>")).unwrap_or_else(|_| {
            Config {
                domain: "contoso.com".into(),
                sip: SipConfig::default(),
                store: StoreConfig::default(),
                limits: Limits::default(),
                pool: PoolConfig::default(),
                categories: Vec::new(),
                rooms: Vec::new(),
                compliance: ComplianceConfig::default(),
                http: None,
                auth: AuthConfig::default(),
                users: Vec::new(),
            }
        })
    }

    /// The pool endpoint URIs (config `[pool] uris`, or `sip:pchat@<domain>`).
    pub fn pool_uris(&self) -> Vec<String> {
        if self.pool.uris.is_empty() {
            vec![format!("sip:pchat@{}", self.domain)]
        } else {
            self.pool.uris.clone()
        }
    }

    /// Every category in force: the `[[category]]` list (omitted `allowed` filled with
    /// the domain) plus the implicit [`DEFAULT_CATEGORY`] when not defined there.
    pub fn all_categories(&self) -> Vec<CategoryConfig> {
        let mut cats: Vec<CategoryConfig> = self
            .categories
            .iter()
            .map(|c| c.clone().with_domain_default(&self.domain))
            .collect();
        if !cats
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(DEFAULT_CATEGORY))
        {
            cats.push(CategoryConfig::implicit_default(&self.domain));
        }
        cats
    }

    fn validate(&self) -> Result<(), String> {
        if self.domain.is_empty() || self.domain.contains(['/', '@', ' ']) {
            return Err(format!("domain {:?} is not a DNS domain", self.domain));
        }
        let cats = self.validate_categories()?;
        self.validate_rooms(&cats)?;
        if self.http.as_ref().is_some_and(|h| h.tls)
            && (self.sip.tls_cert.is_none() || self.sip.tls_key.is_none())
        {
            return Err("[http] tls = true needs [sip] tls_cert and tls_key (PEM files; `pchat-server tls self-signed --out DIR` makes them)".into());
        }
        for u in &self.pool.uris {
            if !u.starts_with("sip:") {
                return Err(format!("pool uri {u:?} is not a SIP URI"));
            }
        }
        if let Some(url) = &self.store.url {
            if !url.starts_with("postgresql://") && !url.starts_with("postgres://") {
                return Err(format!(
                    "[store] url {url:?} is not a PostgreSQL URL like postgresql://USER@HOST:PORT/DB"
                ));
            }
        }
        if self.sip.max_answer_delay_ms >= 1_000 {
            return Err(format!(
                "[sip] max_answer_delay_ms = {}: must be under 1000 (requests unanswered for 1 s are no longer counted, so it would never refuse)",
                self.sip.max_answer_delay_ms
            ));
        }
        if self.pool.lease_s < 3 {
            return Err(format!(
                "[pool] lease_s = {} is too short (at least 3 seconds)",
                self.pool.lease_s
            ));
        }
        self.validate_users()
    }

    /// Checks the `[[category]]` tables: names non-empty and distinct (ignoring case),
    /// `allowed`/`denied`/`creators` entries SIP URIs or `*@domain`. Returns the
    /// lower-cased names.
    fn validate_categories(&self) -> Result<std::collections::BTreeSet<String>, String> {
        let mut cats = std::collections::BTreeSet::new();
        for c in &self.categories {
            if c.name.trim().is_empty() {
                return Err("a [[category]] has an empty name".into());
            }
            if !cats.insert(c.name.to_lowercase()) {
                return Err(format!("category {:?} is defined twice", c.name));
            }
            let lists = [
                ("allowed", c.allowed.as_deref().unwrap_or(&[])),
                ("denied", &c.denied[..]),
                ("creators", &c.creators[..]),
            ];
            for (key, list) in lists {
                for u in list {
                    let domain_wildcard = u
                        .strip_prefix("*@")
                        .is_some_and(|d| !d.is_empty() && !d.contains(['@', ' ']));
                    if !domain_wildcard && !is_sip_uri(u) {
                        return Err(format!(
                            "category {:?}: {key} entry {u:?} is neither a SIP URI like sip:user@{d} nor a domain like *@{d}",
                            c.name,
                            d = self.domain
                        ));
                    }
                }
            }
        }
        Ok(cats)
    }

    /// Checks the `[[room]]` tables: names non-empty and distinct (ignoring case), the
    /// category one of `cats` (lower-cased) or the default, members SIP URIs.
    fn validate_rooms(&self, cats: &std::collections::BTreeSet<String>) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.rooms {
            if r.name.trim().is_empty() {
                return Err("a [[room]] has an empty name".into());
            }
            if !seen.insert(r.name.to_lowercase()) {
                return Err(format!("room {:?} is defined twice", r.name));
            }
            if let Some(c) = &r.category {
                if !cats.contains(&c.to_lowercase()) && !c.eq_ignore_ascii_case(DEFAULT_CATEGORY) {
                    return Err(format!(
                        "room {:?}: category {c:?} is not defined by a [[category]]",
                        r.name
                    ));
                }
            }
            for u in r.members.iter().chain(&r.managers).chain(&r.presenters) {
                if !is_sip_uri(u) {
                    return Err(format!(
                        "room {:?}: {:?} is not a SIP URI like sip:user@{}",
                        r.name, u, self.domain
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_users(&self) -> Result<(), String> {
        let mut users = std::collections::BTreeSet::new();
        for u in &self.users {
            if !is_sip_uri(&u.uri) {
                return Err(format!(
                    "[[user]] uri {:?} is not a SIP URI like sip:user@{}",
                    u.uri, self.domain
                ));
            }
            if !users.insert(u.uri.to_ascii_lowercase()) {
                return Err(format!("[[user]] {:?} is defined twice", u.uri));
            }
            if u.password.is_none() && u.ha1_sha256.is_none() && u.ha1_md5.is_none() {
                return Err(format!(
                    "[[user]] {:?} needs password, ha1_sha256 or ha1_md5",
                    u.uri
                ));
            }
            for (key, v, len) in [
                ("ha1_sha256", &u.ha1_sha256, 64),
                ("ha1_md5", &u.ha1_md5, 32),
            ] {
                if let Some(v) = v {
                    if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(format!(
                            "[[user]] {:?}: {key} must be {len} hex digits",
                            u.uri
                        ));
                    }
                }
            }
        }
        if !self.auth.trusted_peers.is_empty() || self.auth.mode == AuthMode::Trusted {
            for p in &self.auth.trusted_peers {
                let fp = p
                    .strip_prefix("sha256:")
                    .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
                let lo = p.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
                if !fp && !lo {
                    return Err(format!(
                        "[auth] trusted_peers entry {p:?} is neither sha256:<64 hex digits> nor a loopback address"
                    ));
                }
            }
        }
        if self.auth.nonce_ttl_s == 0 {
            return Err("[auth] nonce_ttl_s must be at least 1".into());
        }
        Ok(())
    }
}

fn is_sip_uri(u: &str) -> bool {
    u.strip_prefix("sip:")
        .and_then(|rest| rest.split_once('@'))
        .is_some_and(|(user, dom)| !user.is_empty() && !dom.is_empty() && !dom.contains(['@', ' ']))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` parsed as the file `x.toml`.
    fn parsed(text: &str) -> Config {
        Config::from_toml(text, Path::new("x.toml")).unwrap()
    }

    /// The error message of `text` parsed as the file `x.toml`.
    fn rejected(text: &str) -> String {
        Config::from_toml(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn categories_and_room_keys() {
        let text = "domain = \"d.com\"\n[[category]]\nname = \"Eng\"\nallowed = [\"*@d.com\", \"sip:x@o.com\"]\n\
                    denied = [\"sip:bad@d.com\"]\ncreators = [\"sip:c@d.com\"]\ninvitations = false\nfile_upload = false\n\
                    history = false\n[[room]]\nname = \"A\"\ncategory = \"Eng\"\ntype = \"auditorium\"\n\
                    presenters = [\"sip:p@d.com\"]\ninvitations = \"off\"\n[[room]]\nname = \"B\"\n";
        let cfg = parsed(text);
        assert_eq!(cfg.rooms[0].room_type, RoomType::Auditorium);
        assert_eq!(cfg.rooms[0].invitations, Invitations::Off);
        assert_eq!(cfg.rooms[1].category, None);
        let cats = cfg.all_categories();
        assert_eq!(cats.len(), 2, "Eng plus the implicit default");
        assert!(!cats[0].history && !cats[0].file_upload && !cats[0].invitations);
        assert_eq!(cats[1].name, DEFAULT_CATEGORY);
        assert_eq!(
            cats[1].allowed.as_deref(),
            Some(&["*@d.com".to_string()][..])
        );
    }

    /// Files refused, each with what its message must say: the place
    /// (`file:line:column:`) where the error has one, else the words that name the fault.
    #[test]
    fn bad_files_are_rejected_with_place_or_reason() {
        let cases = [
            // An undefined category; a scope entry neither a URI nor `*@domain`.
            (
                "[[room]]\nname = \"A\"\ncategory = \"Nope\"\n",
                "\"Nope\" is not defined",
            ),
            (
                "[[category]]\nname = \"C\"\nallowed = [\"d.com\"]\n",
                "allowed entry \"d.com\"",
            ),
            // Bad enum values, an unknown key.
            ("[[room]]\nname = \"A\"\ntype = \"stage\"\n", "x.toml:4:8:"),
            (
                "[[room]]\nname = \"A\"\nprivacy = \"hidden\"\n",
                "x.toml:4:11:",
            ),
            (
                "[sip]\nlisten = \"127.0.0.1:1\"\nlistn = 3\n",
                "x.toml:4:1: unknown field `listn`",
            ),
            // The same room twice (names compare case-insensitively).
            (
                "[[room]]\nname = \"A\"\n[[room]]\nname = \"a\"\n",
                "defined twice",
            ),
        ];
        for (rest, says) in cases {
            let err = rejected(&format!("domain = \"d.com\"\n{rest}"));
            assert!(err.contains(says), "{rest:?}: {err}");
        }
    }

    #[test]
    fn embedded_default_parses() {
        let cfg = Config::from_toml(DEFAULT_CONFIG, Path::new("default")).unwrap();
        assert_eq!(cfg.domain, "contoso.com");
        assert_eq!(cfg.sip.listen, "127.0.0.1:5060");
        assert!(cfg.rooms.iter().any(|r| r.name == "Design"));
        assert_eq!(cfg.pool_uris(), vec!["sip:pchat@contoso.com".to_string()]);
        assert_eq!(
            cfg.server_id(),
            "127.0.0.1:5060",
            "defaults to [sip] listen"
        );
        let named = Config::from_toml(
            &format!("{DEFAULT_CONFIG}\n[pool]\nserver_id = \"pchat-2\"\n"),
            Path::new("named"),
        )
        .unwrap();
        assert_eq!(named.server_id(), "pchat-2");
    }

    #[test]
    fn compliance_keys_and_run_interval_forms() {
        let text = "domain = \"d.com\"\n[compliance]\nenabled = true\nrun_interval = \"30s\"\n\
                    output_dir = \"out\"\none_room_per_file = true\nadapter = \"jsonl\"\npath = \"c.db\"\n";
        let cfg = parsed(text);
        let c = &cfg.compliance;
        assert!(c.enabled && c.one_room_per_file);
        assert_eq!(c.run_interval, RunInterval(30_000));
        assert_eq!(c.adapter, AdapterKind::Jsonl);
        assert_eq!(
            (c.output_dir.as_path(), c.path.as_path()),
            (Path::new("out"), Path::new("c.db"))
        );
        let ms = parsed("domain = \"d.com\"\n[compliance]\nrun_interval = 250\n");
        assert_eq!(ms.compliance.run_interval, RunInterval(250));
        assert_eq!(RunInterval::parse("2m"), Ok(RunInterval(120_000)));
        assert_eq!(RunInterval::parse("500ms"), Ok(RunInterval(500)));
        for bad in ["", "s", "10 parsecs", "0s", "-1"] {
            assert!(RunInterval::parse(bad).is_err(), "{bad}");
        }
        let err = rejected("domain = \"d.com\"\n[compliance]\nrun_interval = \"soon\"\n");
        assert!(err.starts_with("x.toml:3:"), "{err}");
        let err = rejected("domain = \"d.com\"\n[compliance]\nadapter = \"csv\"\n");
        assert!(err.starts_with("x.toml:3:11"), "{err}");
    }

    #[test]
    fn answer_delay_must_stay_under_the_horizon() {
        let cfg = parsed("domain = \"d.com\"\n[sip]\nmax_answer_delay_ms = 100\n");
        assert_eq!(cfg.sip.max_answer_delay_ms, 100);
        assert_eq!(
            SipConfig::default().max_answer_delay_ms,
            0,
            "the count alone"
        );
        let err = rejected("domain = \"d.com\"\n[sip]\nmax_answer_delay_ms = 1000\n");
        assert!(err.contains("under 1000"), "{err}");
    }

    #[test]
    fn http_table_is_optional_with_defaults_and_strict_keys() {
        let cfg = parsed("domain = \"d.com\"\n");
        assert_eq!(cfg.http, None, "no [http]: web services off");
        let text = "domain = \"d.com\"\n[http]\nlisten = \"127.0.0.1:9090\"\nmax_file_bytes = 5\n";
        let h = parsed(text).http.unwrap();
        assert_eq!(h.listen, "127.0.0.1:9090");
        assert_eq!(h.max_file_bytes, 5);
        assert_eq!(h.file_token_ttl_ms, HttpConfig::default().file_token_ttl_ms);
        assert_eq!(h.base_url(), "http://127.0.0.1:9090");
        let text = "domain = \"d.com\"\n[http]\nlisten = \"127.0.0.1:9090\"\nmax_bytes = 5\n";
        let err = rejected(text);
        assert!(err.starts_with("x.toml:4:1"), "{err}");
    }

    #[test]
    fn http_tls_needs_the_sip_certificate_and_switches_the_scheme() {
        let text = "domain = \"d.com\"\n[http]\nlisten = \"127.0.0.1:9443\"\ntls = true\n";
        let err = rejected(text);
        assert!(
            err.contains("[http] tls = true needs [sip] tls_cert and tls_key"),
            "{err}"
        );
        let text = format!(
            "domain = \"d.com\"\n[sip]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n{}",
            &text[17..]
        );
        let h = parsed(&text).http.unwrap();
        assert!(h.tls);
        assert_eq!(h.base_url(), "https://127.0.0.1:9443");
        assert!(!HttpConfig::default().tls, "plain HTTP by default");
    }
}
