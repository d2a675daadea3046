//! Scenario files: what QA writes (TOML, no Rust needed). A scenario names its clients,
//! optionally its rooms (else the server's defaults), and ordered steps: a client does
//! something, and expectations are checked on what it gets back or receives.
//!
//! ```toml
//! name = "join-and-post"
//! description = "Call flow 2"
//!
//! [[client]]
//! name = "user1"
//! uri = "sip:user1@contoso.com"
//!
//! [[step]]
//! client = "user1"
//! action = "chansrch"
//! criteria = "Des"
//! expect = { code = 200, rooms = ["Design"] }
//! ```
//! Every error in a file is reported as `file:line:column: message`. The full list of
//! actions and expectation keys is in docs/scenarios.md.

use pchat_server::config::{
    line_col, CategoryConfig, ComplianceConfig, Config, HttpConfig, Limits, RoomConfig,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A parsed, validated scenario.
/// The bugs `planted_bug` can plant in the simulated server (testing the QA tooling):
/// `no-retry-dedup` (grpchat retries stored twice), `no-crash-cleanup` (a restarted
/// server leaves its crashed run's sessions open: JOIN without PART).
pub const PLANTED_BUGS: &[&str] = &["no-retry-dedup", "no-crash-cleanup"];

#[derive(Debug, Clone)]
pub struct Scenario {
    /// Where it came from (labels errors).
    pub path: PathBuf,
    /// Source text (for line:column of steps).
    pub source: String,
    /// The file's content (client templates already expanded into `clients`).
    pub file: ScenarioFile,
    /// Client templates: template name (with `{n}`) -> the clients made from it.
    pub templates: BTreeMap<String, Vec<String>>,
}

/// The TOML document.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "pchat-sim scenario",
    description = "A pchat-sim scenario file (docs/scenarios.md): clients, ordered steps, scheduled faults and the simulated server's settings."
)]
pub struct ScenarioFile {
    /// Short name (defaults to the file stem).
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seed used when the runner is not given one.
    #[serde(default)]
    pub seed: Option<u64>,
    /// SIP domain of the server (default `contoso.com`).
    #[serde(default = "default_domain")]
    pub domain: String,
    /// `[limits]` of the simulated server (same keys as the server config); default:
    /// the server's defaults.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Categories of the simulated server (same keys as the server config).
    #[serde(default, rename = "category")]
    pub categories: Vec<CategoryConfig>,
    /// Rooms the simulated server starts with; empty = the embedded default rooms.
    #[serde(default, rename = "room")]
    pub rooms: Vec<RoomConfig>,
    /// `[compliance]` of the simulated server (same keys as the server config; `path`
    /// and `output_dir` are replaced by the runner's temporary directory). The run's
    /// adapter output is reported for snapshot tests.
    #[serde(default)]
    pub compliance: Option<ComplianceConfig>,
    /// `[http]` of the simulated server: the web services run (same keys as the server
    /// config; `listen` and the file store directories are replaced by the runner).
    #[serde(default)]
    pub http: Option<HttpConfig>,
    /// `[auth]` of the simulated server (same keys as the server config): absent, the
    /// server runs with mode `"none"`; present, clients sign in with their `password`.
    #[serde(default)]
    pub auth: Option<pchat_server::config::AuthConfig>,
    /// The clients.
    #[serde(rename = "client")]
    pub clients: Vec<ClientSpec>,
    /// The steps, in order.
    #[serde(rename = "step")]
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
    /// Faults scheduled around the steps (`[[fault]]`): each is a fault step with
    /// `before_step = N` (1-based; `steps + 1` = after the last step). `explore` writes
    /// its minimal failing schedule this way.
    #[serde(default, rename = "fault")]
    #[schemars(with = "Vec<Step>")]
    pub faults: Vec<Spanned<Step>>,
    /// Check the end-of-run invariants (acknowledged posts in history, no duplicate
    /// store or relay, one order per room) after the steps.
    #[serde(default)]
    pub invariants: bool,
    /// Go on after a failing step (recorded), and let clients whose connection died
    /// reconnect and sign in again; used under faults, where expectations may not hold.
    #[serde(default)]
    pub keep_going: bool,
    /// For testing the QA tooling only: plant a known bug in the simulated server.
    /// `"no-retry-dedup"` turns grpchat retry de-duplication off; `"no-crash-cleanup"`
    /// makes a restarted server leave its crashed run's sessions open.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub planted_bug: Option<Spanned<String>>,
    /// Server settings for the simulated server (bounded queues, Retry-After).
    #[serde(default)]
    pub server: ServerSpec,
    /// The scenario's expectations assume a fresh store (e.g. version counters that
    /// start at 1): `run --target` skips it, since a live server keeps state between runs.
    #[serde(default)]
    pub fresh_server: bool,
}

/// `[server]`: settings of the simulated server (defaults: the server's defaults).
#[derive(Debug, Clone, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// `[sip] core_queue`: requests queued into the channel service before INFO gets
    /// 503 + Retry-After (natural overload).
    pub core_queue: Option<usize>,
    /// `[sip] retry_after_s`: the Retry-After of 503 responses, in seconds.
    pub retry_after_s: Option<u32>,
}

/// The JSON Schema (draft 2020-12) of scenario files, generated from [`ScenarioFile`]
/// and the types it uses, so it describes what [`Scenario::parse`] accepts (unknown keys
/// are `additionalProperties: false`). Pretty JSON ending in a newline; committed as
/// `docs/scenario.schema.json` (`pchat-sim schema`). Errors: JSON serialization.
pub fn json_schema() -> Result<String, serde_json::Error> {
    let schema = schemars::schema_for!(ScenarioFile);
    let mut text = serde_json::to_string_pretty(&schema)?;
    text.push('\n');
    Ok(text)
}

fn default_domain() -> String {
    "contoso.com".to_string()
}

/// A client of the scenario.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Label used by steps and transcripts.
    pub name: String,
    /// SIP URI of the user.
    pub uri: String,
    /// Template: `count = N` makes N clients, `{n}` in `name` and `uri` becoming 1..N.
    /// A step whose `client` is the template name (with `{n}`) runs on all of them at once.
    #[serde(default)]
    pub count: Option<u32>,
    /// The password the client answers SIP Digest challenges with. In a scenario with
    /// `[auth]`, a client with a password is also a `[[user]]` of the simulated server
    /// (unless `server_knows_password = false`).
    #[serde(default)]
    pub password: Option<String>,
    /// With `false`, the simulated server does not get this client's `password` as a
    /// `[[user]]` (a wrong-password client). Default true.
    #[serde(default)]
    pub server_knows_password: Option<bool>,
}

/// What a step does.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// The whole 7-step sign-in (call-flows.md): SUBSCRIBE, INVITE, getserverinfo,
    /// getassociations (member, manager), bjoin of `rooms`, bccontext each, getinv.
    SignIn,
    /// SUBSCRIBE for the provisioning document.
    Subscribe,
    /// INVITE `to` (default: the pool URI learnt from provisioning or requri).
    Invite,
    /// `cmd:requri`; the returned URI becomes the client's pool URI.
    Requri,
    /// `cmd:getserverinfo`.
    Getserverinfo,
    /// `cmd:getassociations` with `role` (member | manager).
    Getassociations,
    /// `cmd:bjoin` of `rooms`.
    Bjoin,
    /// `cmd:join` of `room`.
    Join,
    /// `cmd:part` of `room`.
    Part,
    /// `cmd:bccontext` of `room`, last `count` (default 25).
    Bccontext,
    /// `cmd:getinv`.
    Getinv,
    /// `cmd:chansrch` BYNAME with `criteria` (and `extended`).
    Chansrch,
    /// grpchat `text` to `room`.
    Post,
    /// Wait for an incoming `kind` (grpchat | ntc:join | ntc:part) about `room`.
    Receive,
    /// Assert nothing of `kind` arrives within `ms` (default 500).
    Quiet,
    /// Send the raw XCCOS document `body` in an INFO; expect a reply.
    Xccos,
    /// Send the raw SIP message `data` on the connection.
    Raw,
    /// BYE.
    Bye,
    /// UPDATE (session refresh).
    Update,
    /// Close the client's connection.
    Disconnect,
    /// Let `ms` milliseconds pass.
    Wait,
    /// Client: a new INVITE with a new Call-ID on the same connection; INFOs still
    /// arriving in the old dialog are answered 487 (the server then drops it).
    Reconnect,
    /// Fault: the server answers every INFO 503 + Retry-After for `ms`.
    Overload,
    /// Fault: cut the network between the server and `hosts` (or `client`, default every
    /// client); data is held, as TCP retransmits, and delivered on repair. `ms`: heal after.
    Partition,
    /// Fault: heal partitions, latency and loss.
    Repair,
    /// Fault: one-way latency `min_ms`..`max_ms` between the server and the clients
    /// (`ms`: for that long, else until `repair`).
    Latency,
    /// Fault: message loss at `rate` (0..1) between the server and the clients; a lost
    /// segment stalls that TCP connection (`ms`: for that long, else until `repair`).
    Loss,
    /// Fault: crash the server host (memory lost, the store file kept); `ms`: restart
    /// after.
    Crash,
    /// Fault: restart a crashed server host.
    Restart,
    /// Fault: store calls fail with `error` (io | busy, default io) for `ms`.
    StoreFail,
    /// Fault: store writes fail with "disk full" for `ms`.
    DiskFull,
    /// Use the web services as described by the step's `http` table
    /// (`crate::http_steps`).
    Http,
}

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
            ActionKind::Receive => "receive",
            ActionKind::Quiet => "quiet",
            ActionKind::Xccos => "xccos",
            ActionKind::Raw => "raw",
            ActionKind::Bye => "bye",
            ActionKind::Update => "update",
            ActionKind::Disconnect => "disconnect",
            ActionKind::Wait => "wait",
            ActionKind::Reconnect => "reconnect",
            ActionKind::Overload => "overload",
            ActionKind::Partition => "partition",
            ActionKind::Repair => "repair",
            ActionKind::Latency => "latency",
            ActionKind::Loss => "loss",
            ActionKind::Crash => "crash",
            ActionKind::Restart => "restart",
            ActionKind::StoreFail => "store-fail",
            ActionKind::DiskFull => "disk-full",
            ActionKind::Http => "http",
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
}

/// One step. Which optional keys apply depends on `action` (docs/scenarios.md).
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Client that acts (or receives).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub client: Option<Spanned<String>>,
    /// What it does.
    #[serde(default)]
    #[schemars(with = "Option<ActionKind>")]
    pub action: Option<Spanned<ActionKind>>,
    /// A room, by name.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub room: Option<Spanned<String>>,
    /// A room by raw URI (for bad input: unknown or malformed rooms).
    #[serde(default)]
    pub room_uri: Option<String>,
    /// Rooms, by name (bjoin, sign-in).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub rooms: Vec<Spanned<String>>,
    /// Post text.
    #[serde(default)]
    pub text: Option<String>,
    /// post: client message id (grpchat `msgid`, design; `{i}` = repeat round). The
    /// server stores a post once per author and id, across dialogs and restarts; under
    /// `keep_going` a post with an id whose answer never came is sent again on a new
    /// connection.
    #[serde(default)]
    pub msgid: Option<String>,
    /// Search criteria.
    #[serde(default)]
    pub criteria: Option<String>,
    /// Extended search results.
    #[serde(default)]
    pub extended: bool,
    /// getassociations role: member | manager.
    #[serde(default)]
    pub role: Option<String>,
    /// bccontext count.
    #[serde(default)]
    pub count: Option<u32>,
    /// INVITE target URI.
    #[serde(default)]
    pub to: Option<String>,
    /// receive/quiet: grpchat | ntc:join | ntc:part.
    #[serde(default)]
    pub kind: Option<String>,
    /// Raw XCCOS body (xccos).
    #[serde(default)]
    pub body: Option<String>,
    /// Raw SIP message (raw); `\n` line ends become CRLF; placeholders in docs.
    #[serde(default)]
    pub data: Option<String>,
    /// Milliseconds (wait, quiet; the window of a fault).
    #[serde(default)]
    pub ms: Option<u64>,
    /// partition/latency/loss: the clients cut off from the server (default: all).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub hosts: Vec<Spanned<String>>,
    /// latency: least one-way delay, ms.
    #[serde(default)]
    pub min_ms: Option<u64>,
    /// latency: largest one-way delay, ms (default `min_ms`).
    #[serde(default)]
    pub max_ms: Option<u64>,
    /// loss: probability (0..1) that a message is lost.
    #[serde(default)]
    pub rate: Option<f64>,
    /// store-fail: io | busy.
    #[serde(default)]
    pub error: Option<String>,
    /// Run the step this many times (`{i}` in `text` becomes 1..N).
    #[serde(default)]
    pub repeat: Option<u32>,
    /// Think time: the client waits this long (ms) before acting.
    #[serde(default)]
    pub think_ms: Option<u64>,
    /// `[[fault]]` only: the 1-based step it comes before (`steps + 1`: after the last).
    #[serde(default)]
    pub before_step: Option<usize>,
    /// The web services request of an `http` step (`crate::http_steps::HttpStep`).
    #[serde(default)]
    pub http: Option<crate::http_steps::HttpStep>,
    /// What must hold afterwards.
    #[serde(default)]
    pub expect: Expect,
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
    /// raw: whether the server closed the connection.
    pub closed: Option<bool>,
}

/// A scenario file that could not be loaded: `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// File.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates scenario text; `path` labels errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ScenarioError {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        let mut s = Scenario {
            path: path.to_path_buf(),
            source: text.to_string(),
            file,
            templates: BTreeMap::new(),
        };
        s.expand_templates()?;
        s.validate()?;
        Ok(s)
    }

    /// Most clients one template may make.
    pub const MAX_TEMPLATE_COUNT: u32 = 10_000;

    fn expand_templates(&mut self) -> Result<(), ScenarioError> {
        let mut out = Vec::new();
        for c in std::mem::take(&mut self.file.clients) {
            let Some(count) = c.count else {
                out.push(c);
                continue;
            };
            if !c.name.contains("{n}") || count == 0 || count > Self::MAX_TEMPLATE_COUNT {
                return Err(self.error_at(
                    self.find(&c.name),
                    format!(
                        "client template {:?}: `count` needs `{{n}}` in the name and 1..={}",
                        c.name,
                        Self::MAX_TEMPLATE_COUNT
                    ),
                ));
            }
            let mut names = Vec::new();
            for n in 1..=count {
                let n = n.to_string();
                names.push(c.name.replace("{n}", &n));
                out.push(ClientSpec {
                    name: c.name.replace("{n}", &n),
                    uri: c.uri.replace("{n}", &n),
                    count: None,
                    password: c.password.clone(),
                    server_knows_password: c.server_knows_password,
                });
            }
            self.templates.insert(c.name.clone(), names);
        }
        self.file.clients = out;
        Ok(())
    }

    /// The clients a step's `client` names: itself, or every client of a template.
    pub fn clients_of(&self, name: &str) -> Vec<String> {
        self.templates
            .get(name)
            .cloned()
            .unwrap_or_else(|| vec![name.to_string()])
    }

    /// The steps and `[[fault]]`s in the order the driver runs them, each with its
    /// `file:line:column` label index: `(is_fault, index in its list)`.
    pub fn schedule(&self) -> Vec<(bool, usize)> {
        let mut out = Vec::new();
        let n = self.file.steps.len();
        for i in 0..=n {
            for (j, f) in self.file.faults.iter().enumerate() {
                if f.get_ref().before_step == Some(i + 1) {
                    out.push((true, j));
                }
            }
            if i < n {
                out.push((false, i));
            }
        }
        out
    }

    /// `file:line:column` of `[[fault]]` `i` (0-based).
    pub fn fault_location(&self, i: usize) -> String {
        let offset = self.file.faults.get(i).map_or(0, |s| s.span().start);
        let (line, column) = line_col(&self.source, offset);
        format!("{}:{line}:{column}", self.path.display())
    }

    /// The scenario's name (its `name`, else the file stem).
    pub fn name(&self) -> String {
        self.file.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        })
    }

    /// An error at byte `offset` of the file.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_col(&self.source, offset);
        ScenarioError {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// `file:line:column` of step `i` (0-based).
    pub fn step_location(&self, i: usize) -> String {
        let offset = self.file.steps.get(i).map_or(0, |s| s.span().start);
        let (line, column) = line_col(&self.source, offset);
        format!("{}:{line}:{column}", self.path.display())
    }

    /// The server configuration the simulated server runs with: the embedded default,
    /// with this scenario's domain and, if it lists any, its rooms instead of the demo
    /// rooms.
    pub fn server_config(&self) -> Config {
        let mut cfg = Config::embedded_default();
        cfg.domain = self.file.domain.clone();
        if !self.file.rooms.is_empty() {
            cfg.rooms = self.file.rooms.clone();
        }
        if let Some(c) = &self.file.compliance {
            cfg.compliance = c.clone();
        }
        cfg.categories = self.file.categories.clone();
        if let Some(l) = &self.file.limits {
            cfg.limits = l.clone();
        }
        if let Some(q) = self.file.server.core_queue {
            cfg.sip.core_queue = q;
        }
        if let Some(r) = self.file.server.retry_after_s {
            cfg.sip.retry_after_s = r;
        }
        if let Some(h) = &self.file.http {
            cfg.http = Some(h.clone());
        }
        self.auth_config(&mut cfg);
        cfg
    }

    /// `[auth]` of the simulated server: the scenario's `[auth]`, else mode `"none"`
    /// (existing scenarios run unchanged). Users: the embedded default's demo users plus
    /// every client with a `password` (replacing a demo user of the same URI).
    fn auth_config(&self, cfg: &mut Config) {
        let Some(auth) = &self.file.auth else {
            cfg.auth = Default::default();
            return;
        };
        cfg.auth = auth.clone();
        for c in &self.file.clients {
            let (Some(pw), true) = (&c.password, c.server_knows_password.unwrap_or(true)) else {
                continue;
            };
            cfg.users.retain(|u| !u.uri.eq_ignore_ascii_case(&c.uri));
            cfg.users.push(pchat_server::config::UserConfig {
                uri: c.uri.clone(),
                password: Some(pw.clone()),
                ha1_sha256: None,
                ha1_md5: None,
            });
        }
    }

    /// Whether the scenario needs a server configured for it (its own `[[room]]`,
    /// `[[category]]` or `[limits]`): a live run against a server on its default
    /// configuration skips it.
    pub fn needs_own_server(&self) -> bool {
        self.why_simulated_only().is_some()
    }

    /// Why `run --target` cannot run this scenario against a live server, if it cannot:
    /// its own server configuration, fault injection (which needs the simulator's hosts
    /// and handles), or expectations that assume a fresh store.
    pub fn why_simulated_only(&self) -> Option<&'static str> {
        let f = &self.file;
        let fault_step = f.steps.iter().chain(f.faults.iter()).any(|s| {
            s.get_ref()
                .action
                .as_ref()
                .is_some_and(|a| a.get_ref().is_fault())
        });
        if !f.rooms.is_empty() || !f.categories.is_empty() || f.limits.is_some() {
            Some("defines its own [[room]]/[[category]]/[limits]")
        } else if f.auth.is_some() {
            Some("sets its own [auth] (users and passwords of the simulated server)")
        } else if f.server.core_queue.is_some() || f.server.retry_after_s.is_some() {
            Some("sets its own [server] queue configuration")
        } else if fault_step || f.planted_bug.is_some() {
            Some("injects faults, which only the simulator can")
        } else if f.fresh_server {
            Some("expects a fresh store (fresh_server = true)")
        } else {
            None
        }
    }

    fn room_known(&self, name: &str) -> bool {
        self.server_config()
            .rooms
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(name))
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        let f = &self.file;
        if f.clients.is_empty() {
            return Err(self.error_at(0, "a scenario needs at least one [[client]]"));
        }
        let mut names = std::collections::BTreeSet::new();
        for t in self.templates.keys() {
            names.insert(t.as_str());
        }
        for c in &f.clients {
            if !names.insert(c.name.as_str()) {
                return Err(self.error_at(
                    self.find(&c.name),
                    format!("client {:?} is defined twice", c.name),
                ));
            }
            if !c.uri.starts_with("sip:") || !c.uri.contains('@') {
                return Err(self.error_at(
                    self.find(&c.uri),
                    format!(
                        "client {:?}: uri {:?} is not a SIP URI like sip:user@{}",
                        c.name, c.uri, f.domain
                    ),
                ));
            }
        }
        if let Err(e) = Config::from_toml(&format!("domain = {:?}", f.domain), &self.path) {
            return Err(self.error_at(self.find("domain"), e.to_string()));
        }
        if let Some(b) = &f.planted_bug {
            if !PLANTED_BUGS.contains(&b.get_ref().as_str()) {
                return Err(self.error_at(
                    b.span().start,
                    format!(
                        "unknown planted_bug {:?} (expected one of {})",
                        b.get_ref(),
                        PLANTED_BUGS
                            .iter()
                            .map(|b| format!("{b:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let steps = f.steps.iter().map(|s| (false, s));
        let faults = f.faults.iter().map(|s| (true, s));
        for (in_fault_list, step) in steps.chain(faults) {
            let at = step.span().start;
            let s = step.get_ref();
            let Some(action) = &s.action else {
                return Err(self.error_at(at, "step has no `action` (expected one of: sign-in, subscribe, invite, requri, getserverinfo, getassociations, bjoin, join, part, bccontext, getinv, chansrch, post, receive, quiet, xccos, raw, bye, update, disconnect, wait, reconnect, overload, partition, repair, latency, loss, crash, restart, store-fail, disk-full, http)"));
            };
            let kind = *action.get_ref();
            if in_fault_list {
                if !kind.is_fault() {
                    return Err(self.error_at(
                        action.span().start,
                        format!("`{}` is not a fault; a [[fault]] is one of: overload, partition, repair, latency, loss, crash, restart, store-fail, disk-full", kind.name()),
                    ));
                }
                match s.before_step {
                    Some(b) if (1..=f.steps.len() + 1).contains(&b) => {}
                    _ => {
                        return Err(self.error_at(
                            at,
                            format!(
                                "a [[fault]] needs `before_step` between 1 and {} (steps + 1)",
                                f.steps.len() + 1
                            ),
                        ))
                    }
                }
            } else if s.before_step.is_some() {
                return Err(
                    self.error_at(at, "`before_step` belongs in a [[fault]], not a [[step]]")
                );
            }
            for h in &s.hosts {
                if !names.contains(h.get_ref().as_str()) {
                    return Err(self.error_at(
                        h.span().start,
                        format!("unknown client {:?} in `hosts`", h.get_ref()),
                    ));
                }
            }
            if s.repeat == Some(0) {
                return Err(self.error_at(at, "`repeat` must be at least 1"));
            }
            let client_optional = kind == ActionKind::Wait || kind.is_fault();
            match &s.client {
                None if !client_optional => {
                    return Err(self.error_at(at, format!("step `{}` needs `client`", kind.name())));
                }
                Some(c) if !names.contains(c.get_ref().as_str()) => {
                    let known: Vec<_> = names.iter().copied().collect();
                    return Err(self.error_at(
                        c.span().start,
                        format!(
                            "unknown client {:?} (clients: {})",
                            c.get_ref(),
                            known.join(", ")
                        ),
                    ));
                }
                _ => {}
            }
            // http steps may name rooms created during the run (or unknown on purpose).
            for r in s.room.iter().chain(s.rooms.iter()) {
                if kind != ActionKind::Http && !self.room_known(r.get_ref()) {
                    return Err(self.error_at(
                        r.span().start,
                        format!("unknown room {:?} (not in this scenario's [[room]] list or the server defaults)", r.get_ref()),
                    ));
                }
            }
            let need = |ok: bool, what: &str| -> Result<(), ScenarioError> {
                if ok {
                    Ok(())
                } else {
                    Err(self.error_at(at, format!("step `{}` needs {what}", kind.name())))
                }
            };
            let has_room = s.room.is_some() || s.room_uri.is_some();
            match kind {
                ActionKind::Join | ActionKind::Part | ActionKind::Bccontext => {
                    need(has_room, "`room` (or `room_uri`)")?
                }
                ActionKind::Post => {
                    need(has_room, "`room` (or `room_uri`)")?;
                    need(s.text.is_some(), "`text`")?;
                }
                ActionKind::Bjoin => need(!s.rooms.is_empty(), "`rooms = [...]`")?,
                ActionKind::Receive | ActionKind::Quiet => {
                    need(s.kind.is_some(), "`kind` (grpchat | ntc:join | ntc:part)")?;
                    if let Some(k) = &s.kind {
                        need(
                            matches!(
                                k.as_str(),
                                "grpchat"
                                    | "ntc:join"
                                    | "ntc:bjoin"
                                    | "ntc:part"
                                    | "ntc:newcontent"
                                    | "ntc:chanupdate"
                            ),
                            "`kind` to be one of grpchat, ntc:join, ntc:bjoin, ntc:part, ntc:newcontent, ntc:chanupdate",
                        )?;
                    }
                }
                ActionKind::Xccos => need(s.body.is_some(), "`body` (an XCCOS document)")?,
                ActionKind::Raw => need(s.data.is_some(), "`data` (a SIP message)")?,
                ActionKind::Wait => need(s.ms.is_some(), "`ms`")?,
                ActionKind::Overload | ActionKind::DiskFull => {
                    need(s.ms.is_some(), "`ms` (how long the fault lasts)")?
                }
                ActionKind::StoreFail => {
                    need(s.ms.is_some(), "`ms` (how long the fault lasts)")?;
                    need(
                        matches!(s.error.as_deref(), None | Some("io" | "busy")),
                        "`error` io or busy",
                    )?;
                }
                ActionKind::Loss => need(
                    s.rate.is_some_and(|r| r > 0.0 && r <= 1.0),
                    "`rate` between 0 (exclusive) and 1",
                )?,
                ActionKind::Latency => {
                    need(s.min_ms.is_some(), "`min_ms` (and optionally `max_ms`)")?;
                    need(
                        s.max_ms.unwrap_or(0) >= s.min_ms.unwrap_or(0) || s.max_ms.is_none(),
                        "`max_ms` >= `min_ms`",
                    )?;
                }
                ActionKind::Http => {
                    need(s.http.is_some(), "an `http` table (http = { op = ... })")?;
                    need(
                        self.file.http.is_some(),
                        "the scenario's `[http]` table (web services on)",
                    )?;
                }
                ActionKind::Getassociations => {
                    if let Some(r) = &s.role {
                        need(
                            matches!(r.as_str(), "member" | "manager"),
                            "`role` member or manager",
                        )?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn find(&self, needle: &str) -> usize {
        self.source.find(needle).unwrap_or(0)
    }
}

/// The scenario files in `path`: the file itself, or every `*.toml` in the directory
/// (sorted by name).
pub fn discover(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("s.toml"))
    }

    const OK: &str = "[[client]]\nname = \"u1\"\nuri = \"sip:u1@contoso.com\"\n\n[[step]]\nclient = \"u1\"\naction = \"join\"\nroom = \"Design\"\n";

    #[test]
    fn valid_file_parses() {
        let s = parse(OK).unwrap();
        assert_eq!(s.file.steps.len(), 1);
        assert_eq!(s.step_location(0), "s.toml:5:1");
        assert_eq!(s.name(), "s");
    }

    #[test]
    fn unknown_action_points_at_the_value() {
        let text = OK.replace("\"join\"", "\"jion\"");
        let e = parse(&text).unwrap_err();
        assert_eq!((e.line, e.column), (7, 10), "{e}");
        assert!(
            e.message.contains("jion") && e.message.contains("join"),
            "{e}"
        );
    }

    #[test]
    fn unknown_client_and_room_are_located() {
        let e = parse(&OK.replace("client = \"u1\"", "client = \"u2\"")).unwrap_err();
        assert_eq!((e.line, e.column), (6, 10), "{e}");
        assert!(
            e.to_string()
                .starts_with("s.toml:6:10: unknown client \"u2\""),
            "{e}"
        );
        let e = parse(&OK.replace("\"Design\"", "\"Desgn\"")).unwrap_err();
        assert_eq!((e.line, e.column), (8, 8), "{e}");
    }

    #[test]
    fn unknown_key_and_missing_fields() {
        let e = parse(&format!("{OK}colour = 1\n")).unwrap_err();
        assert_eq!(e.line, 9, "{e}");
        let e = parse(&OK.replace("room = \"Design\"\n", "")).unwrap_err();
        assert!(e.message.contains("needs `room`"), "{e}");
        assert_eq!(e.line, 5);
        let e = parse("[[step]]\naction = \"wait\"\nms = 1\n").unwrap_err();
        assert!(e.message.contains("client"), "{e}");
    }

    #[test]
    fn action_names_round_trip() {
        assert_eq!(ActionKind::SignIn.name(), "sign-in");
        assert_eq!(ActionKind::Getassociations.name(), "getassociations");
    }

    #[test]
    fn http_steps_need_their_table_and_the_web_services() {
        let step = "[[client]]\nname = \"u1\"\nuri = \"sip:u1@contoso.com\"\n\n[[step]]\nclient = \"u1\"\naction = \"http\"\n";
        let e = parse(step).unwrap_err();
        assert!(e.message.contains("`http` table"), "{e}");
        let with_op = format!("{step}http = {{ op = \"list-rooms\" }}\n");
        let e = parse(&with_op).unwrap_err();
        assert!(e.message.contains("`[http]`"), "{e}");
        let ok = format!("[http]\n{with_op}");
        assert!(parse(&ok).is_ok());
        let e = parse(&ok.replace("list-rooms", "delete-everything")).unwrap_err();
        assert!(e.message.contains("delete-everything"), "{e}");
    }
}
