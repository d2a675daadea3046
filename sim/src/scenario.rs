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

use crate::scenario_parse::Problem;
use crate::step::ClientUse;
use pchat_server::config::{
    line_col, CategoryConfig, ComplianceConfig, Config, HttpConfig, Limits, RoomConfig,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
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
    /// The `[data]` CSV tables, loaded.
    pub data: crate::data::Data,
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
    /// Labels for `--filter` (`pchat-sim run scenarios/ --filter smoke,!slow`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Variables: `{vars.NAME}` in any step text (as for `{i}`) becomes the value.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// CSV data files by name (paths relative to the scenario file; the first line
    /// names the columns): `{data.NAME.COLUMN}` in client templates (row `n`) and step
    /// texts (row `{n}` in a template's steps, else row `{i}`), `crate::data`.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
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
    /// The steps, in order (`[[step]]`; read by `crate::scenario_parse`, which reports
    /// every step's errors; in the schema as `step`).
    #[serde(skip)]
    pub steps: Vec<Spanned<Step>>,
    /// Faults scheduled around the steps (`[[fault]]`): each is a fault step with
    /// `before_step = N` (1-based; `steps + 1` = after the last step). `explore` writes
    /// its minimal failing schedule this way.
    #[serde(skip)]
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
    /// Run-level latency thresholds (p50/p99 of posts and relays, ms), checked at the
    /// end of the run (`crate::thresholds`).
    #[serde(default)]
    pub thresholds: Option<crate::thresholds::Thresholds>,
    /// `[pool]`: run a pool of servers in the simulator (docs/pool.md): `servers`
    /// members on one shared store; clients are placed on members (`member`).
    /// Ignored by `run --target` (a live pool is behind its front end).
    #[serde(default)]
    pub pool: Option<PoolSpec>,
}

/// `[pool]` of a scenario: the simulated pool (docs/pool.md, "In the simulator").
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Members (1 to 16, [`MAX_POOL_SERVERS`]): simulated hosts `member1`..`memberN`,
    /// each running the server with `[pool] server_id` = its host name, all on one
    /// SQLite store file.
    pub servers: u32,
    /// `[pool] lease_s` of the members (default the server's, 15): a crashed member's
    /// sessions are closed by a survivor within `lease_s` plus `lease_s / 3` of
    /// simulated time.
    #[serde(default)]
    pub lease_s: Option<u32>,
}

/// Most members of a simulated pool.
pub const MAX_POOL_SERVERS: u32 = 16;

impl ScenarioFile {
    /// A file with nothing in it (stands in while a broken file's errors are listed).
    fn empty() -> ScenarioFile {
        ScenarioFile {
            name: None,
            description: String::new(),
            tags: Vec::new(),
            vars: BTreeMap::new(),
            data: BTreeMap::new(),
            seed: None,
            domain: default_domain(),
            limits: None,
            categories: Vec::new(),
            rooms: Vec::new(),
            compliance: None,
            http: None,
            auth: None,
            clients: Vec::new(),
            steps: Vec::new(),
            faults: Vec::new(),
            invariants: false,
            keep_going: false,
            planted_bug: None,
            server: ServerSpec::default(),
            fresh_server: false,
            thresholds: None,
            pool: None,
        }
    }
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
    let mut generator = schemars::SchemaGenerator::default();
    generator.subschema_for::<Action>();
    generator.subschema_for::<crate::step::CommonSchema>();
    let schema = generator.root_schema_for::<ScenarioFile>();
    let mut value = serde_json::to_value(&schema)?;
    step_schema(&mut value);
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    Ok(text)
}

/// Puts `step` and `fault` (lists of `Step`) into the root schema `v`, `Step` being
/// [`Action`]'s variants (tagged by `action`) each with the common keys of every step.
fn step_schema(v: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let defs = &mut v["$defs"];
    let common = defs["CommonSchema"]["properties"].clone();
    if let Some(m) = defs.as_object_mut() {
        m.remove("CommonSchema");
        if let Some(mut step) = m.remove("Action") {
            for variant in step["oneOf"].as_array_mut().into_iter().flatten() {
                if let (Some(props), Some(extra)) =
                    (variant["properties"].as_object_mut(), common.as_object())
                {
                    for (k, s) in extra {
                        props.entry(k.clone()).or_insert_with(|| s.clone());
                    }
                }
            }
            step["description"] = json!("One step: `action` picks the variant; each variant lists its own keys and the keys every step takes (docs/scenarios.md).");
            m.insert("Step".into(), step);
        }
    }
    let list =
        |d: &str| json!({"type": "array", "description": d, "items": {"$ref": "#/$defs/Step"}});
    if let Some(step) = v["$defs"]["Step"]["oneOf"].as_array_mut() {
        step.push(json!({
            "type": "object",
            "description": "Uses a [[macro]]: its steps, each with this `client` unless it names its own.",
            "properties": {"macro": {"type": "string"}, "client": {"type": "string"}},
            "required": ["macro"],
            "additionalProperties": false
        }));
    }
    let macro_def = json!({
        "type": "array",
        "description": "Reusable step blocks: a [[step]] with `macro = NAME` stands for the macro's steps.",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "step": {"type": "array", "items": {"$ref": "#/$defs/Step"}}},
            "required": ["name", "step"],
            "additionalProperties": false
        }
    });
    if let Some(props) = v["properties"].as_object_mut() {
        props.insert("macro".into(), macro_def);
        props.insert("step".into(), list("The steps, in order."));
        props.insert("fault".into(), list("Faults scheduled around the steps: fault steps with `before_step = N` (1-based; steps + 1 = after the last step). `explore` writes its minimal failing schedule this way."));
    }
    if let Some(req) = v["required"].as_array_mut() {
        req.push(Value::String("step".into()));
    }
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
    /// SIP over TLS (`Via: SIP/2.0/TLS`) to the simulated server's TLS port, which
    /// then runs with a development certificate the client trusts (simulator only).
    #[serde(default)]
    pub tls: bool,
    /// With `[pool]`: the member (1-based) the client connects to; default round-robin
    /// by the client's index (client 1 on member 1, ...). When its member is down the
    /// client connects to the next one up (as through a front end).
    #[serde(default)]
    pub member: Option<u32>,
}

pub use crate::step::{Action, ActionKind, Expect, Step};

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
    /// The file's other errors (every error of a file is reported at once), in file
    /// order; empty when this is the only one.
    pub also: Vec<ScenarioError>,
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
        )?;
        for e in &self.also {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

impl ScenarioError {
    /// How many errors this is (itself and `also`).
    pub fn count(&self) -> usize {
        1 + self.also.len()
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
            also: Vec::new(),
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates scenario text; `path` labels errors. Every error of the
    /// file is reported (the first in the error, the others in its `also`).
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let mut problems = Vec::new();
        let file = Self::read_file(text, &mut problems);
        let read = file.is_some();
        let mut s = Scenario {
            path: path.to_path_buf(),
            source: text.to_string(),
            file: file.unwrap_or_else(ScenarioFile::empty),
            templates: BTreeMap::new(),
            data: crate::data::Data::new(),
        };
        // The steps that did not parse are left out; the rest is still checked, so that
        // every error of the file shows at once.
        if read {
            s.load_data(&mut problems);
            s.expand_templates(&mut problems);
            s.expand_vars(&mut problems);
            s.check_data_refs(&mut problems);
            s.validate(&mut problems);
        }
        match s.errors(problems) {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    /// The document, its steps and faults; pushes every problem found.
    fn read_file(text: &str, out: &mut Vec<Problem>) -> Option<ScenarioFile> {
        let mut root = match toml::de::DeTable::parse(text) {
            Ok(r) => r,
            Err(e) => {
                out.push((e.span().unwrap_or(0..0), e.message().trim().to_string()));
                return None;
            }
        };
        let span = root.span();
        crate::macros::expand(root.get_mut(), out);
        let steps = crate::scenario_parse::take_steps(root.get_mut(), "step", out);
        let faults = crate::scenario_parse::take_steps(root.get_mut(), "fault", out);
        let top = root.get_ref().clone();
        let de = toml::de::Deserializer::from(root);
        match <ScenarioFile as serde::Deserialize>::deserialize(de) {
            Ok(mut f) => {
                f.steps = steps;
                f.faults = faults;
                Some(f)
            }
            Err(e) => {
                let at = e.span().unwrap_or(span);
                let key = top
                    .iter()
                    .find(|(k, v)| k.span().contains(&at.start) || v.span().contains(&at.start))
                    .map(|(k, _)| k.get_ref().to_string())
                    .unwrap_or_default();
                out.push((at, crate::scenario_parse::plain_words(e.message(), &key)));
                None
            }
        }
    }

    /// The problems as one error (sorted by position), or None.
    fn errors(&self, mut problems: Vec<Problem>) -> Option<ScenarioError> {
        problems.sort_by_key(|(r, _)| r.start);
        problems.dedup();
        let mut all = problems.into_iter().map(|(r, m)| self.error_at(r.start, m));
        let mut first = all.next()?;
        first.also = all.collect();
        Some(first)
    }

    /// Most clients one template may make.
    pub const MAX_TEMPLATE_COUNT: u32 = 10_000;

    fn expand_templates(&mut self, problems: &mut Vec<Problem>) {
        let mut out = Vec::new();
        for c in std::mem::take(&mut self.file.clients) {
            let Some(count) = c.count else {
                out.push(c);
                continue;
            };
            if !c.name.contains("{n}") || count == 0 || count > Self::MAX_TEMPLATE_COUNT {
                let at = self.find(&c.name);
                problems.push((
                    at..at,
                    format!(
                        "client template {:?}: `count` needs `{{n}}` in the name and 1..={}",
                        c.name,
                        Self::MAX_TEMPLATE_COUNT
                    ),
                ));
                continue;
            }
            let mut names = Vec::new();
            for n in 1..=count {
                let n = n.to_string();
                names.push(c.name.replace("{n}", &n));
                let row = names.len();
                let mut data = |t: &str| {
                    crate::data::expand(t, &self.data, row).unwrap_or_else(|unknown| {
                        let at = self.find(t);
                        problems.push((at..at, unknown_data(&unknown)));
                        t.to_string()
                    })
                };
                out.push(ClientSpec {
                    name: data(&c.name.replace("{n}", &n)),
                    uri: data(&c.uri.replace("{n}", &n)),
                    count: None,
                    password: c.password.as_deref().map(&mut data),
                    server_knows_password: c.server_knows_password,
                    tls: c.tls,
                    member: c.member,
                });
            }
            self.templates.insert(c.name.clone(), names);
        }
        self.file.clients = out;
    }

    /// Loads the `[data]` CSV files (relative to the scenario file).
    fn load_data(&mut self, problems: &mut Vec<Problem>) {
        let dir = self.path.parent().unwrap_or(Path::new("")).to_path_buf();
        for (name, file) in &self.file.data {
            match crate::data::load(&dir.join(file)) {
                Ok(t) => {
                    self.data.insert(name.clone(), t);
                }
                Err(e) => {
                    let at = self.find(file);
                    problems.push((at..at, format!("[data] {name}: {e}")));
                }
            }
        }
    }

    /// Every `{data.TABLE.COLUMN}` of the steps names a loaded table and column.
    fn check_data_refs(&self, problems: &mut Vec<Problem>) {
        for step in self.file.steps.iter().chain(self.file.faults.iter()) {
            let unknown = std::cell::RefCell::new(Vec::new());
            step.get_ref().map_texts(&|t: &str| {
                if let Err(u) = crate::data::expand(t, &self.data, 1) {
                    unknown.borrow_mut().extend(u);
                }
                t.to_string()
            });
            let unknown = unknown.into_inner();
            if !unknown.is_empty() {
                problems.push((step.span(), unknown_data(&unknown)));
            }
        }
    }

    /// `step` (already substituted for `round` and the client's number `n`) with its
    /// `{data.TABLE.COLUMN}` references taken from row `n` when the client is from a
    /// template, else from row `round`.
    pub fn with_data(&self, step: Step, round: u32, n: &str) -> Step {
        if self.data.is_empty() {
            return step;
        }
        let row = n.parse::<usize>().unwrap_or(round as usize);
        step.map_texts(&|t: &str| {
            crate::data::expand(t, &self.data, row).unwrap_or_else(|_| t.to_string())
        })
    }

    /// Replaces `{vars.NAME}` in every step text by the variable's value; an unknown
    /// name is an error at its step.
    fn expand_vars(&mut self, problems: &mut Vec<Problem>) {
        let vars = self.file.vars.clone();
        for step in self
            .file
            .steps
            .iter_mut()
            .chain(self.file.faults.iter_mut())
        {
            let unknown = std::cell::RefCell::new(Vec::new());
            let expanded = step.get_ref().map_texts(&|text: &str| {
                let mut out = text.to_string();
                let mut rest = text;
                while let Some(i) = rest.find("{vars.") {
                    let tail = &rest[i + 6..];
                    let Some(end) = tail.find('}') else { break };
                    let name = &tail[..end];
                    match vars.get(name) {
                        Some(v) => out = out.replace(&format!("{{vars.{name}}}"), v),
                        None => unknown.borrow_mut().push(name.to_string()),
                    }
                    rest = &tail[end..];
                }
                out
            });
            for name in unknown.into_inner() {
                let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                problems.push((
                    step.span(),
                    format!(
                        "unknown variable `{{vars.{name}}}` (the [vars] table has: {})",
                        list_some(&known, 10)
                    ),
                ));
            }
            *step.get_mut() = expanded;
        }
    }

    /// The number `{n}` stands for in the steps of client `name` (its position in its
    /// template, 1-based), or "" when it was not made from a template.
    pub fn template_number(&self, name: &str) -> String {
        self.templates
            .values()
            .find_map(|names| names.iter().position(|n| n == name))
            .map(|i| (i + 1).to_string())
            .unwrap_or_default()
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

    /// Each client's SIP URI by client name.
    pub fn client_uris(&self) -> BTreeMap<&str, &str> {
        self.file
            .clients
            .iter()
            .map(|c| (c.name.as_str(), c.uri.as_str()))
            .collect()
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
            also: Vec::new(),
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
        if let Some(l) = self.file.pool.as_ref().and_then(|p| p.lease_s) {
            cfg.pool.lease_s = l;
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
        if !f.rooms.is_empty() || !f.categories.is_empty() || f.limits.is_some() {
            Some("defines its own [[room]]/[[category]]/[limits]")
        } else {
            self.why_simulated_only_besides_rooms()
        }
    }

    /// [`Scenario::why_simulated_only`] leaving out its own rooms, categories and
    /// limits (which `--server-config` can vouch for on a live server).
    fn why_simulated_only_besides_rooms(&self) -> Option<&'static str> {
        let f = &self.file;
        let fault_step = f
            .steps
            .iter()
            .chain(f.faults.iter())
            .any(|s| s.get_ref().kind().is_fault());
        if f.auth.is_some() {
            Some("sets its own [auth] (users and passwords of the simulated server)")
        } else if f.clients.iter().any(|c| c.tls) {
            Some("has a client with tls = true (the simulated server's certificate)")
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

    /// [`Scenario::why_simulated_only`] for a live server running `server` (its
    /// configuration, `run --server-config FILE`): a scenario with its own rooms,
    /// categories or limits runs live when the server has every one of its rooms and
    /// categories (by name) and the same limits.
    pub fn why_not_live(&self, server: Option<&Config>) -> Option<String> {
        self.why_not_live_with(server, false)
    }

    /// [`Scenario::why_not_live`] when `create_rooms`: the runner creates the
    /// scenario's rooms on the live server through the room-management API
    /// (`crate::live_rooms`), so they need not be there; its categories and limits
    /// still must (`--server-config`), and its rooms must be what the API can make.
    pub fn why_not_live_with(&self, server: Option<&Config>, create_rooms: bool) -> Option<String> {
        let why = self.why_simulated_only()?;
        if create_rooms {
            if let Some(other) = self.why_simulated_only_besides_rooms() {
                return Some(other.to_string());
            }
            if let Some(no) = crate::live_rooms::unsupported(&self.file.rooms) {
                return Some(no);
            }
            let rest = Scenario {
                file: ScenarioFile {
                    rooms: Vec::new(),
                    ..self.file.clone()
                },
                ..self.clone()
            };
            return rest.why_not_live_with(server, false);
        }
        if let Some(other) = self.why_simulated_only_besides_rooms() {
            return Some(other.to_string());
        }
        let f = &self.file;
        let own_config = !f.rooms.is_empty() || !f.categories.is_empty() || f.limits.is_some();
        let Some(cfg) = server.filter(|_| own_config) else {
            return Some(why.to_string());
        };
        let has = |names: Vec<&String>, wanted: &str| {
            names.iter().any(|n| n.eq_ignore_ascii_case(wanted))
        };
        for r in &f.rooms {
            if !has(cfg.rooms.iter().map(|r| &r.name).collect(), &r.name) {
                return Some(format!(
                    "room {:?} is not in the --server-config file",
                    r.name
                ));
            }
        }
        for c in &f.categories {
            if !has(cfg.categories.iter().map(|c| &c.name).collect(), &c.name) {
                return Some(format!(
                    "category {:?} is not in the --server-config file",
                    c.name
                ));
            }
        }
        if f.limits
            .as_ref()
            .is_some_and(|l| format!("{l:?}") != format!("{:?}", cfg.limits))
        {
            return Some("its [limits] differ from the --server-config file's".into());
        }
        let rest = Scenario {
            file: ScenarioFile {
                rooms: Vec::new(),
                categories: Vec::new(),
                limits: None,
                ..f.clone()
            },
            ..self.clone()
        };
        rest.why_simulated_only().map(str::to_string)
    }

    fn room_known(&self, name: &str) -> bool {
        self.server_config()
            .rooms
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(name))
    }

    fn validate(&self, out: &mut Vec<Problem>) {
        let names = self.validate_clients(out);
        self.validate_planted_bug(out);
        let steps = self.file.steps.iter().map(|s| (false, s));
        let faults = self.file.faults.iter().map(|s| (true, s));
        for (in_fault_list, step) in steps.chain(faults) {
            crate::scenario_parse::common_value_problems(step, in_fault_list, out);
            self.validate_placement(step, in_fault_list, out);
            self.validate_names(step, &names, out);
            self.validate_values(step, out);
        }
    }

    /// Client names (and template names); pushes duplicates and bad URIs.
    fn validate_clients(&self, out: &mut Vec<Problem>) -> BTreeSet<String> {
        let f = &self.file;
        if f.clients.is_empty() {
            out.push((0..0, "a scenario needs at least one [[client]]".into()));
        }
        let mut names: BTreeSet<String> = self.templates.keys().cloned().collect();
        for c in &f.clients {
            let at = self.find(&c.name);
            if !names.insert(c.name.clone()) {
                out.push((at..at, format!("client {:?} is defined twice", c.name)));
            }
            if !c.uri.starts_with("sip:") || !c.uri.contains('@') {
                let at = self.find(&c.uri);
                out.push((
                    at..at,
                    format!(
                        "client {:?}: uri {:?} is not a SIP URI like sip:user@{}",
                        c.name, c.uri, f.domain
                    ),
                ));
            }
        }
        self.validate_pool(out);
        if let Err(e) = Config::from_toml(&format!("domain = {:?}", f.domain), &self.path) {
            let at = self.find("domain");
            out.push((at..at, e.to_string()));
        }
        names
    }

    /// `[pool] servers` in range; each client's `member` (and each step's) a member.
    fn validate_pool(&self, out: &mut Vec<Problem>) {
        let f = &self.file;
        let servers = f.pool.as_ref().map(|p| p.servers);
        if let Some(n) = servers.filter(|n| !(1..=MAX_POOL_SERVERS).contains(n)) {
            let at = self.find("servers");
            out.push((
                at..at,
                format!("[pool] servers = {n}: expected 1 to {MAX_POOL_SERVERS}"),
            ));
        }
        let bad = |m: u32| match servers {
            None => Some("`member` needs a [pool] table".to_string()),
            Some(n) if m == 0 || m > n => {
                Some(format!("member {m}: the pool has members 1 to {n}"))
            }
            _ => None,
        };
        if servers.is_some() {
            if let Some(c) = f.clients.iter().find(|c| c.tls) {
                let at = self.find(&c.name);
                let why = "tls = true is not supported in a [pool] run (the simulated TLS listener is the single server's)";
                out.push((at..at, format!("client {:?}: {why}", c.name)));
            }
        }
        let hosts = self.pool_members();
        for c in f.clients.iter().filter(|c| hosts.contains(&c.name)) {
            let at = self.find(&c.name);
            out.push((
                at..at,
                format!("client {:?}: the name of a pool member's host", c.name),
            ));
        }
        for c in &f.clients {
            if let Some(why) = c.member.and_then(bad) {
                let at = self.find(&c.name);
                out.push((at..at, format!("client {:?}: {why}", c.name)));
            }
        }
        for step in f.steps.iter().chain(&f.faults) {
            if let Some(why) = step.get_ref().member().and_then(bad) {
                out.push((step.span(), why));
            }
        }
    }

    /// The pool's member hosts (`member1`..), empty without `[pool]`.
    pub fn pool_members(&self) -> Vec<String> {
        let n = self.file.pool.as_ref().map_or(0, |p| p.servers);
        (1..=n).map(|i| format!("member{i}")).collect()
    }

    /// With `[pool]`: the member (0-based) client `index` (of the expanded list)
    /// connects to first: its `member`, else round-robin by index.
    pub fn member_of(&self, index: usize) -> usize {
        let n = self.file.pool.as_ref().map_or(1, |p| p.servers.max(1)) as usize;
        match self.file.clients.get(index).and_then(|c| c.member) {
            Some(m) => (m as usize).saturating_sub(1) % n,
            None => index % n,
        }
    }

    fn validate_planted_bug(&self, out: &mut Vec<Problem>) {
        let Some(b) = &self.file.planted_bug else {
            return;
        };
        if !PLANTED_BUGS.contains(&b.get_ref().as_str()) {
            let hint = crate::scenario_parse::did_you_mean(b.get_ref(), PLANTED_BUGS)
                .map(|d| format!("; did you mean {d:?}?"))
                .unwrap_or_default();
            out.push((
                b.span(),
                format!(
                    "unknown planted_bug {:?}{hint} (expected one of {})",
                    b.get_ref(),
                    PLANTED_BUGS.join(", ")
                ),
            ));
        }
    }

    /// Faults in `[[fault]]` with a `before_step`; clients where the action takes one.
    fn validate_placement(
        &self,
        step: &Spanned<Step>,
        in_fault_list: bool,
        out: &mut Vec<Problem>,
    ) {
        let (at, s) = (step.span(), step.get_ref());
        let kind = s.kind();
        let n = self.file.steps.len();
        if in_fault_list && !kind.is_fault() {
            out.push((s.action.span(), format!("`{}` is not a fault; a [[fault]] is one of: overload, partition, repair, latency, loss, crash, restart, store-fail, disk-full", kind.name())));
        }
        if in_fault_list && !s.before_step.is_some_and(|b| (1..=n + 1).contains(&b)) {
            out.push((
                at.clone(),
                format!(
                    "a [[fault]] needs `before_step` between 1 and {} (steps + 1)",
                    n + 1
                ),
            ));
        }
        match (kind.client_use(), &s.client) {
            (ClientUse::Required, None) => {
                out.push((at.clone(), format!("step `{}` needs `client`", kind.name())))
            }
            (ClientUse::None, Some(c)) => out.push((
                c.span(),
                format!("`{}` names no client (remove `client`)", kind.name()),
            )),
            _ => {}
        }
        let no_expect =
            kind.is_fault() || matches!(kind, ActionKind::Wait | ActionKind::Disconnect);
        if no_expect && s.expect != Expect::default() {
            out.push((
                at,
                format!(
                    "`expect` does not apply to `{}` (nothing answers it)",
                    kind.name()
                ),
            ));
        }
    }

    /// Clients, hosts and rooms a step names exist; `{n}` only in a template's steps.
    fn validate_names(
        &self,
        step: &Spanned<Step>,
        names: &BTreeSet<String>,
        out: &mut Vec<Problem>,
    ) {
        let s = step.get_ref();
        let unknown_client = |name: &str| {
            let known = names.iter().map(String::as_str).collect::<Vec<_>>();
            let hint = crate::scenario_parse::did_you_mean(name, &known)
                .map(|d| format!("; did you mean {d:?}?"))
                .unwrap_or_default();
            format!(
                "unknown client {name:?}{hint} (clients: {})",
                list_some(&known, 10)
            )
        };
        if let Some(c) = &s.client {
            if !names.contains(c.get_ref()) {
                out.push((c.span(), unknown_client(c.get_ref())));
            }
        }
        for h in s.hosts() {
            if !names.contains(h.get_ref()) {
                out.push((
                    h.span(),
                    format!("in `hosts`: {}", unknown_client(h.get_ref())),
                ));
            }
        }
        // http steps may name rooms created during the run (or unknown on purpose).
        if s.kind() != ActionKind::Http {
            for r in s.room().name.into_iter().chain(s.rooms()) {
                if !self.room_known(r.get_ref()) {
                    out.push((r.span(), format!("unknown room {:?} (not in this scenario's [[room]] list or the server defaults)", r.get_ref())));
                }
            }
        }
        let is_template = s
            .client
            .as_ref()
            .is_some_and(|c| self.templates.contains_key(c.get_ref()));
        if !is_template && s.uses_n() {
            out.push((
                step.span(),
                "`{n}` (the client's number) only works in steps of a client template (`client = \"u{n}\"`)".into(),
            ));
        }
    }

    /// Values serde cannot check: ranges, required rooms, the web services.
    fn validate_values(&self, step: &Spanned<Step>, out: &mut Vec<Problem>) {
        let (at, s) = (step.span(), step.get_ref());
        let mut need = |ok: bool, what: &str| {
            if !ok {
                out.push((
                    at.clone(),
                    format!("step `{}` needs {what}", s.kind().name()),
                ));
            }
        };
        let room = s.room();
        let has_room = room.name.is_some() || room.uri.is_some();
        match s.action.get_ref() {
            Action::Join { .. }
            | Action::Part { .. }
            | Action::Bccontext { .. }
            | Action::Post { .. } => need(has_room, "`room` (or `room_uri`)"),
            Action::Bjoin { rooms } => need(!rooms.is_empty(), "`rooms = [...]` (at least one)"),
            Action::Loss { rate, .. } => need(
                *rate > 0.0 && *rate <= 1.0,
                "`rate` between 0 (exclusive) and 1",
            ),
            Action::Latency { min_ms, max_ms, .. } => {
                need(max_ms.is_none_or(|m| m >= *min_ms), "`max_ms` >= `min_ms`")
            }
            Action::Http { .. } => need(
                self.file.http.is_some(),
                "the scenario's `[http]` table (web services on)",
            ),
            _ => {}
        }
        for re in s.expect.matches.iter().flatten() {
            if let Err(e) = regex::Regex::new(re) {
                out.push((
                    at.clone(),
                    format!("`expect.matches`: {re:?} is not a regular expression: {e}"),
                ));
            }
        }
    }

    fn find(&self, needle: &str) -> usize {
        self.source.find(needle).unwrap_or(0)
    }
}

fn unknown_data(refs: &[String]) -> String {
    let list: Vec<String> = refs.iter().map(|r| format!("`{{data.{r}}}`")).collect();
    format!(
        "unknown data reference {} (a [data] table's name and one of its CSV columns)",
        list.join(", ")
    )
}

/// At most `max` of `names`, then "and N more".
pub fn list_some(names: &[&str], max: usize) -> String {
    if names.len() <= max {
        return names.join(", ");
    }
    format!(
        "{}, and {} more",
        names[..max].join(", "),
        names.len() - max
    )
}

/// The scenario files in `path`, or every `*.toml` in the directory
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
        assert!(e.message.contains("needs `http`"), "{e}");
        let with_op = format!("{step}http = {{ op = \"list-rooms\" }}\n");
        let e = parse(&with_op).unwrap_err();
        assert!(e.message.contains("`[http]`"), "{e}");
        let ok = format!("[http]\n{with_op}");
        assert!(parse(&ok).is_ok());
        let e = parse(&ok.replace("list-rooms", "delete-everything")).unwrap_err();
        assert!(e.message.contains("delete-everything"), "{e}");
    }

    #[test]
    fn own_rooms_run_live_with_a_server_config_that_has_them() {
        let text = "[[room]]\nname = \"Ops\"\n[[client]]\nname = \"u1\"\nuri = \"sip:u1@contoso.com\"\n[[step]]\nclient = \"u1\"\naction = \"join\"\nroom = \"Ops\"\n";
        let s = parse(text).unwrap();
        assert!(s.why_not_live(None).is_some());
        let with = Config::from_toml(
            "domain = \"contoso.com\"\n[[room]]\nname = \"ops\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(s.why_not_live(Some(&with)), None);
        let without = Config::from_toml(
            "domain = \"contoso.com\"\n[[room]]\nname = \"Design\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let why = s.why_not_live(Some(&without)).unwrap();
        assert!(why.contains("\"Ops\""), "{why}");
    }

    #[test]
    fn vars_expand_in_step_texts() {
        let text = "[vars]\ngreeting = \"hello\"\n[[client]]\nname = \"u1\"\nuri = \"sip:u1@contoso.com\"\n[[step]]\nclient = \"u1\"\naction = \"post\"\nroom = \"Design\"\ntext = \"{vars.greeting} #{i}\"\n";
        let s = parse(text).unwrap();
        match s.file.steps[0].get_ref().action.get_ref() {
            Action::Post { text, .. } => assert_eq!(text, "hello #{i}"),
            other => panic!("{other:?}"),
        }
        let e = parse(&text.replace("{vars.greeting}", "{vars.greting}")).unwrap_err();
        assert!(
            e.message.contains("unknown variable `{vars.greting}`"),
            "{e}"
        );
        assert!(e.message.contains("greeting"), "{e}");
    }

    #[test]
    fn every_error_of_a_file_at_once() {
        let text = "[[client]]\nname = \"u1\"\nuri = \"sip:u1@contoso.com\"\n\
                    [[step]]\nclient = \"u1\"\naction = \"wait\"\nms = 5\n\
                    [[step]]\nclient = \"u1\"\naction = \"post\"\nroom = \"Design\"\ntext = \"from u{n}\"\n\
                    [[step]]\nclient = \"u2\"\naction = \"join\"\nroom = \"Design\"\n\
                    [[step]]\naction = \"psot\"\n";
        let e = parse(text).unwrap_err();
        let all = e.to_string();
        assert_eq!(e.count(), 4, "{all}");
        assert!(all.contains("s.toml:5:10: `wait` names no client"), "{all}");
        assert!(
            all.contains("`{n}` (the client's number) only works"),
            "{all}"
        );
        assert!(
            all.contains("unknown client \"u2\"; did you mean \"u1\"?"),
            "{all}"
        );
        assert!(all.contains("did you mean \"post\""), "{all}");
        let lines: Vec<usize> = std::iter::once(&e)
            .chain(e.also.iter())
            .map(|e| e.line)
            .collect();
        assert!(
            lines.windows(2).all(|w| w[0] <= w[1]),
            "in file order: {lines:?}"
        );
    }
}
