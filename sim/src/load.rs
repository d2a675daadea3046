//! `pchat-sim load`: a load generator that drives a real `pchat-server` over SIP/TCP on
//! loopback to its limits, and reports what it sustained.
//!
//! ```text
//! pchat-sim load --target 127.0.0.1:5060 --users 50000 --rooms 1000 --room-size 30 \
//!                --rate 20000 --duration 30s [--json] [--server-pid PID]
//! pchat-sim load --print-server-config --rooms 1000     # the server config it expects
//! ```
//!
//! **What it does.** Opens `--users` TCP connections (one session each: INVITE + ACK,
//! then one `cmd:bjoin` of the session's rooms, sent again after `Retry-After` when the
//! server sheds it with 503; RFC 3261, XCCOS.md), signs them in with
//! at most `--connect-concurrency` sign-ins in flight, then posts `grpchat`s on an
//! **open-loop** schedule: post k is due at `t0 + k / rate`, whatever the server's
//! answers did, and every latency is measured from that due time - a slow server shows
//! up as latency, never as a lower offered rate (no coordinated omission). Each post is
//! made by a random membership (seeded by `--seed`), so it relays to the other
//! `--room-size - 1` members of its room.
//!
//! **Rooms.** Membership m in `0 .. rooms * room_size` puts user `m % users` in room
//! `m / room_size`; users beyond the memberships stay signed in but idle. Rooms are
//! named `load-0 .. load-{R-1}` (`--room-prefix`) and must exist on the server as open
//! rooms: `--print-server-config` prints a server config that has them.
//!
//! **Measured.** Sessions established; posts acknowledged (200 OK, which the server
//! sends only after the post is committed) per second; relays (grpchat INFOs carrying
//! our marker) delivered per second; post->relay latency p50/p99/p99.9 (hdrhistogram,
//! microsecond resolution, from the post's due time to the relay's arrival at another
//! session); 503 answers to posts, and at sign-in (`signin_503`: an INVITE or bjoin
//! refused and sent again after its `Retry-After`); errors (failed connects/sign-ins,
//! non-200 answers, posts the client side could not even queue, connections the server
//! closed); server RSS.
//!
//! **Server RSS** is `VmRSS` (and `VmHWM`, the peak) from `/proc/<pid>/status`, read
//! after the run while every session is still connected. The pid is `--server-pid`, or
//! else the process that has the target's listening socket open: found through
//! `/proc/net/tcp{,6}` (the socket inode of the LISTEN entry on the port) and
//! `/proc/*/fd` (who holds `socket:[inode]`). Same host and same user (or root) only;
//! when not found the RSS is reported as 0 and a note says why.
//!
//! **Many sessions.** One TCP source address has about 28,000 ephemeral ports
//! (`/proc/sys/net/ipv4/ip_local_port_range`); for a loopback target the sessions are
//! spread over 127.0.0.1 .. 127.0.0.K with K = ceil(users / 2,000) unless
//! `--source-ips` says otherwise. Each `bind(ip, 0)` makes the kernel search the
//! ephemeral range for a port free on that address: with 10,000 sessions an address
//! (and a previous run's connections in TIME_WAIT) 19,000 sign-ins took 16-42 s, most
//! of it system CPU in that search; with 2,000 an address, 5-10 s. Both this tool and `pchat-server` raise
//! RLIMIT_NOFILE at start ([`pchat_server::host::raise_nofile_limit`]).
//!
//! **Lean sessions.** Each session is one task over one socket; it frames with the
//! server's [`Framer`] but reads only the lines it needs (status code, CSeq, To-tag,
//! Contact) and answers every server INFO with a 200 OK built from its Via/From/To/
//! Call-ID/CSeq lines, coalescing a read's answers into one write.
//!
//! Traffic goes only where `--target` says; use it on loopback or a lab network.

use hdrhistogram::Histogram;
use pchat_server::sip::Framer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

/// Sessions per source address (of ~28,000 ephemeral ports on Linux): few enough that
/// the kernel's search for a free port at each bind stays short, also with an earlier
/// run's connections still in TIME_WAIT (see the module docs).
pub const SESSIONS_PER_SOURCE_IP: usize = 2_000;

/// Most posts one run may schedule (`rate * duration`): bounds the due-time table.
pub const MAX_POSTS: u64 = 50_000_000;

/// Latency shards (one histogram each, picked by session index).
const SHARDS: usize = 32;

/// Largest latency recorded, in microseconds (longer ones are clamped): 10 minutes.
const MAX_LATENCY_US: u64 = 600_000_000;

/// What to run (the `pchat-sim load` flags).
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Server `HOST:PORT`.
    pub target: SocketAddr,
    /// Sessions, rooms, rate, timing and naming of the run.
    pub settings: LoadSettings,
    /// Print a progress line to stderr every second.
    pub progress: bool,
}

/// What a load run does: the `pchat-sim load` flags but `--target` and the output ones
/// (the doc comments are the flags' help).
#[derive(clap::Args, Debug, Clone)]
pub struct LoadSettings {
    /// Sessions to open and sign in.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Rooms used, named {room-prefix}0.. (open rooms on the server; see --print-server-config).
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// Members per room.
    #[arg(long = "room-size", default_value_t = 10)]
    pub room_size: usize,
    /// Posts per second, on an open-loop schedule.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long to post: 30s, 2m, 500ms or seconds.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Longest wait after the window for outstanding answers and relays.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Server pid for the RSS figure (default: the process listening on the target port).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// SIP domain of the users and rooms.
    #[arg(long, default_value = "contoso.com")]
    pub domain: String,
    /// Room name prefix.
    #[arg(long, default_value = "load-")]
    pub room_prefix: String,
    /// Sign-ins in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Spread sessions over source addresses 127.0.0.1..=127.0.0.K (loopback target;
    /// default ceil(users / 2000)).
    #[arg(long, value_name = "K")]
    pub source_ips: Option<usize>,
    /// Seed of the choice of posters.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Timeout of each sign-in step (connect, INVITE, bjoin).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub signin_timeout: Duration,
}

/// The report; `--json` prints it as one JSON object (the key names are an interface).
#[derive(Debug, Clone, Serialize, Default)]
pub struct LoadReport {
    /// `HOST:PORT` driven.
    pub target: String,
    /// Sessions asked for.
    pub users: usize,
    /// Rooms used.
    pub rooms: usize,
    /// Members per room.
    pub room_size: usize,
    /// Offered post rate, posts/s.
    pub rate: f64,
    /// Posting window, s.
    pub duration_s: f64,
    /// Sessions signed in (INVITE 200 + ACK, and the bjoin answered 200 when it had rooms).
    pub sessions_established: u64,
    /// Sessions whose connect or sign-in failed.
    pub sessions_failed: u64,
    /// Wall time of the sign-in phase, s.
    pub signin_s: f64,
    /// Source addresses used.
    pub source_ips: usize,
    /// Posts due in the window.
    pub posts_scheduled: u64,
    /// Posts written to a socket.
    pub posts_sent: u64,
    /// Posts answered 200 OK (committed by the server).
    pub posts_acked: u64,
    /// `posts_acked` over the time from the first due post to the last 200 OK
    /// (at least the window), posts/s.
    pub posts_acked_per_s: f64,
    /// Relayed grpchats (carrying our marker) received by sessions.
    pub relays: u64,
    /// Relays expected: posts acked x (room size - 1).
    pub relays_expected: u64,
    /// `relays` over the time from the first due post to the last relay (at least the
    /// window), relays/s.
    pub relays_per_s: f64,
    /// Post (due time) -> relay arrival, 50th percentile, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile, ms.
    pub latency_p99_ms: f64,
    /// 99.9th percentile, ms.
    pub latency_p999_ms: f64,
    /// Largest, ms.
    pub latency_max_ms: f64,
    /// Post (due time) -> its 200 OK, 50th percentile, ms.
    pub ack_latency_p50_ms: f64,
    /// Post (due time) -> its 200 OK, 99th percentile, ms.
    pub ack_latency_p99_ms: f64,
    /// 503 answers to posts.
    pub status_503: u64,
    /// 503 answers at sign-in (INVITE or bjoin), each retried after its `Retry-After`.
    pub signin_503: u64,
    /// Errors of every other kind (see the module docs).
    pub errors: u64,
    /// The first error seen, for diagnosis.
    pub first_error: Option<String>,
    /// Pid whose memory is reported (0 = unknown).
    pub server_pid: u32,
    /// Server `VmRSS` after the run, bytes (0 = unknown).
    pub server_rss_bytes: u64,
    /// Server `VmHWM` (peak RSS), bytes (0 = unknown).
    pub server_rss_peak_bytes: u64,
    /// Why the RSS could not be read, when it could not.
    pub server_rss_note: Option<String>,
}

impl LoadReport {
    /// Whether the run did what was asked: every session signed in and, if posts were
    /// scheduled, at least one was acknowledged (exit status 0 of `pchat-sim load`).
    pub fn ok(&self) -> bool {
        self.sessions_established == self.users as u64
            && (self.posts_scheduled == 0 || self.posts_acked > 0)
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "  {k:<28} {v}");
        };
        row("target", self.target.clone());
        row(
            "load",
            format!(
                "{} users, {} rooms x {} members, {} posts/s for {:.1} s",
                self.users, self.rooms, self.room_size, self.rate, self.duration_s
            ),
        );
        row(
            "sessions established",
            format!(
                "{} ({} failed) in {:.1} s over {} source address(es)",
                self.sessions_established, self.sessions_failed, self.signin_s, self.source_ips
            ),
        );
        row(
            "posts",
            format!(
                "{} due, {} sent, {} acked",
                self.posts_scheduled, self.posts_sent, self.posts_acked
            ),
        );
        row("posts acked/s", format!("{:.0}", self.posts_acked_per_s));
        row(
            "relays",
            format!("{} of {} expected", self.relays, self.relays_expected),
        );
        row("relays/s", format!("{:.0}", self.relays_per_s));
        row(
            "post->relay latency ms",
            format!(
                "p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
                self.latency_p50_ms, self.latency_p99_ms, self.latency_p999_ms, self.latency_max_ms
            ),
        );
        row(
            "post->200 OK latency ms",
            format!(
                "p50 {:.2}  p99 {:.2}",
                self.ack_latency_p50_ms, self.ack_latency_p99_ms
            ),
        );
        row("503 answers", self.status_503.to_string());
        row("503 at sign-in (retried)", self.signin_503.to_string());
        row(
            "errors",
            match &self.first_error {
                Some(e) => format!("{} (first: {e})", self.errors),
                None => self.errors.to_string(),
            },
        );
        row(
            "server RSS",
            match &self.server_rss_note {
                Some(n) => format!("unknown ({n})"),
                None => format!(
                    "{:.1} MiB (peak {:.1} MiB), pid {}",
                    self.server_rss_bytes as f64 / 1048576.0,
                    self.server_rss_peak_bytes as f64 / 1048576.0,
                    self.server_pid
                ),
            },
        );
        s
    }
}

/// The password of load user `uri` (`sip:load7@d` -> `load7-pw`): what
/// [`server_config`] gives the server and the sessions answer 401 challenges with.
pub fn password_of(uri: &str) -> String {
    format!("{}-pw", crate::auth::username_of(uri))
}

/// The server configuration (TOML) with the rooms a load run with `rooms` rooms uses:
/// open rooms `{prefix}0 ..`, no members list (anyone in `domain` may join and post),
/// and SIP Digest on with `users` users `sip:load{i}@{domain}` (passwords from
/// [`password_of`]), so that sign-in is measured with authentication.
pub fn server_config(domain: &str, prefix: &str, rooms: usize, users: usize) -> String {
    let mut s = format!(
        "# pchat-server config for `pchat-sim load --rooms {rooms} --users {users}`\n\
         domain = \"{domain}\"\n\n[sip]\nlisten = \"127.0.0.1:5060\"\n\n\
         [store]\npath = \"pchat-load/pchat.db\"\n\n[auth]\nmode = \"digest\"\n"
    );
    for i in 0..rooms {
        let _ = write!(
            s,
            "\n[[room]]\nname = \"{prefix}{i}\"\ndescription = \"load room {i}\"\nprivacy = \"open\"\n"
        );
    }
    for i in 0..users {
        let uri = format!("sip:load{i}@{domain}");
        let _ = write!(
            s,
            "\n[[user]]\nuri = \"{uri}\"\npassword = \"{}\"\n",
            password_of(&uri)
        );
    }
    s
}

/// Parses a duration: `30s`, `2m`, `500ms`, `1h`, or a bare number of seconds.
/// Errors: anything else, with the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((t, ""), |i| (&t[..i], &t[i..]));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected e.g. 30s, 2m, 500ms, 1h or 30"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?}: use ms, s, m or h")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Counters shared by every session.
#[derive(Default)]
struct Counters {
    established: AtomicU64,
    failed: AtomicU64,
    posts_sent: AtomicU64,
    posts_acked: AtomicU64,
    relays: AtomicU64,
    status_503: AtomicU64,
    signin_503: AtomicU64,
    errors: AtomicU64,
    last_ack_ns: AtomicU64,
    last_relay_ns: AtomicU64,
}

struct Shared {
    start: Instant,
    /// Due time of post k, ns since `start`.
    due_ns: Vec<AtomicU64>,
    c: Counters,
    relay_hist: Vec<Mutex<Histogram<u64>>>,
    ack_hist: Vec<Mutex<Histogram<u64>>>,
    first_error: Mutex<Option<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn error(&self, msg: impl FnOnce() -> String) {
        self.c.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut f) = self.first_error.lock() {
            if f.is_none() {
                *f = Some(msg());
            }
        }
    }

    fn record(hist: &[Mutex<Histogram<u64>>], shard: usize, us: u64) {
        if let Some(Ok(mut h)) = hist.get(shard % SHARDS).map(|m| m.lock()) {
            h.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }
}

fn histograms() -> Result<Vec<Mutex<Histogram<u64>>>, String> {
    (0..SHARDS)
        .map(|_| {
            Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .map(Mutex::new)
                .map_err(|e| format!("histogram: {e}"))
        })
        .collect()
}

/// A post handed to a session: its index (the marker) and the room (index into the
/// session's room list).
#[derive(Debug, Clone, Copy)]
struct PostJob {
    id: u64,
    room: usize,
}

/// Runs the load (see the module docs) and returns its report. Errors: bad
/// parameters, or no runtime; network trouble is counted in the report instead.
pub fn run(cfg: &LoadConfig) -> Result<LoadReport, String> {
    if cfg.settings.users == 0 {
        return Err("--users must be at least 1".into());
    }
    if cfg.settings.rooms * cfg.settings.room_size > 0
        && cfg.settings.room_size > cfg.settings.users
    {
        return Err(format!(
            "--room-size {} is larger than --users {}",
            cfg.settings.room_size, cfg.settings.users
        ));
    }
    if !(cfg.settings.rate >= 0.0 && cfg.settings.rate.is_finite()) {
        return Err("--rate must be a number >= 0".into());
    }
    let memberships = cfg.settings.rooms * cfg.settings.room_size;
    let scheduled = if memberships == 0 {
        0
    } else {
        (cfg.settings.rate * cfg.settings.duration.as_secs_f64()).round() as u64
    };
    if scheduled > MAX_POSTS {
        return Err(format!(
            "--rate x --duration = {scheduled} posts; at most {MAX_POSTS} per run"
        ));
    }
    let limit = pchat_server::host::raise_nofile_limit(cfg.settings.users as u64 + 1024);
    match limit {
        Ok(n) if n < cfg.settings.users as u64 + 64 => eprintln!(
            "warning: RLIMIT_NOFILE is {n}, below the {} sockets asked for; connects will fail",
            cfg.settings.users
        ),
        Err(e) => eprintln!("warning: cannot raise RLIMIT_NOFILE: {e}"),
        _ => {}
    }
    let source_ips = match (cfg.target.ip(), cfg.settings.source_ips) {
        (IpAddr::V4(ip), k) if ip.is_loopback() => k
            .unwrap_or_else(|| cfg.settings.users.div_ceil(SESSIONS_PER_SOURCE_IP))
            .clamp(1, 254),
        _ => 1,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        due_ns: (0..scheduled).map(|_| AtomicU64::new(u64::MAX)).collect(),
        c: Counters::default(),
        relay_hist: histograms()?,
        ack_hist: histograms()?,
        first_error: Mutex::new(None),
        stop: AtomicBool::new(false),
    });
    let mut report = rt.block_on(drive(cfg, source_ips, scheduled, shared.clone()));
    report.first_error = shared.first_error.lock().ok().and_then(|f| f.clone());
    // Sessions end with the runtime (sockets closed); the server drops their dialogs.
    shared.stop.store(true, Ordering::Relaxed);
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(report)
}

/// Room numbers of each user, by the membership rule in the module docs (increasing).
fn plan(cfg: &LoadConfig) -> Vec<Vec<usize>> {
    let mut rooms_of = vec![Vec::new(); cfg.settings.users];
    for m in 0..cfg.settings.rooms * cfg.settings.room_size {
        let room = m / cfg.settings.room_size;
        if let Some(r) = rooms_of.get_mut(m % cfg.settings.users) {
            if r.last() != Some(&room) {
                r.push(room);
            }
        }
    }
    rooms_of
}

/// The URI of load room `n`.
fn room_uri(cfg: &LoadConfig, n: usize) -> String {
    let name = format!("{}{n}", cfg.settings.room_prefix);
    pchat_server::ids::room_uri(
        &cfg.settings.domain,
        &pchat_server::ids::room_guid(&cfg.settings.domain, &name),
    )
}

async fn drive(
    cfg: &LoadConfig,
    source_ips: usize,
    scheduled: u64,
    shared: Arc<Shared>,
) -> LoadReport {
    let rooms_of = plan(cfg);
    let progress = cfg.progress.then(|| {
        let s = shared.clone();
        let users = cfg.settings.users;
        tokio::spawn(progress_loop(s, users, scheduled))
    });
    let signin_started = Instant::now();
    let (senders, ready_rx) = spawn_sessions(cfg, source_ips, &rooms_of, &shared);
    let up = wait_ready(ready_rx, cfg.settings.users).await;
    let signin_s = signin_started.elapsed().as_secs_f64();
    let posters = posters(cfg, &rooms_of, &up);
    let t0_ns = shared.now_ns();
    if !posters.is_empty() && scheduled > 0 {
        send_posts(cfg, scheduled, &posters, &senders, &shared, t0_ns).await;
    }
    let window_end_ns = shared.now_ns();
    drain(cfg, &shared).await;
    let memory = server_memory(cfg);
    if let Some(p) = progress {
        p.abort();
    }
    let window_s = (window_end_ns.saturating_sub(t0_ns) as f64 / 1e9)
        .max(cfg.settings.duration.as_secs_f64())
        .max(1e-9);
    let run = RunFacts {
        source_ips,
        scheduled,
        signin_s,
        t0_ns,
        window_s,
        memory,
    };
    report(cfg, &shared, run)
}

/// Starts one session task per user; returns each session's post queue and the
/// channel on which each reports whether it signed in.
fn spawn_sessions(
    cfg: &LoadConfig,
    source_ips: usize,
    rooms_of: &[Vec<usize>],
    shared: &Arc<Shared>,
) -> (
    Vec<mpsc::Sender<PostJob>>,
    mpsc::UnboundedReceiver<(usize, bool)>,
) {
    let run_id = format!(
        "{:x}",
        std::process::id() as u64 ^ cfg.settings.seed.rotate_left(20)
    );
    let gate = Arc::new(Semaphore::new(cfg.settings.connect_concurrency.max(1)));
    let mut senders = Vec::with_capacity(cfg.settings.users);
    let (ready_tx, ready_rx) = mpsc::unbounded_channel::<(usize, bool)>();
    let uris: Vec<String> = (0..cfg.settings.rooms).map(|n| room_uri(cfg, n)).collect();
    for (i, rooms) in rooms_of.iter().enumerate() {
        let rooms = rooms.iter().filter_map(|n| uris.get(*n).cloned()).collect();
        let (tx, rx) = mpsc::channel::<PostJob>(256);
        senders.push(tx);
        let source = (source_ips > 1)
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % source_ips) as u8)));
        let s = Session {
            index: i,
            user: format!("sip:load{i}@{}", cfg.settings.domain),
            call_id: format!("load-{run_id}-{i}"),
            rooms,
            target: cfg.target,
            source,
            timeout: cfg.settings.signin_timeout,
            shared: shared.clone(),
        };
        tokio::spawn(s.run(rx, gate.clone(), ready_tx.clone()));
    }
    (senders, ready_rx)
}

/// Waits until every session answered; whether each one is up.
async fn wait_ready(
    mut ready_rx: mpsc::UnboundedReceiver<(usize, bool)>,
    users: usize,
) -> Vec<bool> {
    let mut up = vec![false; users];
    for _ in 0..users {
        match ready_rx.recv().await {
            Some((i, ok)) => {
                if let Some(u) = up.get_mut(i) {
                    *u = ok;
                }
            }
            None => break,
        }
    }
    up
}

/// Memberships whose session is up, as (user, index into the user's rooms): only they post.
fn posters(cfg: &LoadConfig, rooms_of: &[Vec<usize>], up: &[bool]) -> Vec<(usize, usize)> {
    (0..cfg.settings.rooms * cfg.settings.room_size)
        .filter_map(|m| {
            let user = m % cfg.settings.users;
            let room = m / cfg.settings.room_size;
            if !up.get(user).copied().unwrap_or(false) {
                return None;
            }
            let idx = rooms_of.get(user)?.iter().position(|r| *r == room)?;
            Some((user, idx))
        })
        .collect()
}

/// Hands `scheduled` posts to random posters at `--rate`, from `t0_ns` on.
async fn send_posts(
    cfg: &LoadConfig,
    scheduled: u64,
    posters: &[(usize, usize)],
    senders: &[mpsc::Sender<PostJob>],
    shared: &Shared,
    t0_ns: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.settings.seed);
    let step_ns = 1e9 / cfg.settings.rate;
    for k in 0..scheduled {
        let due = t0_ns + (k as f64 * step_ns) as u64;
        let now = shared.now_ns();
        if due > now + 200_000 {
            tokio::time::sleep(Duration::from_nanos(due - now)).await;
        }
        let (user, room) = posters[rng.gen_range(0..posters.len())];
        if let Some(d) = shared.due_ns.get(k as usize) {
            d.store(due, Ordering::Relaxed);
        }
        let job = PostJob { id: k, room };
        if senders.get(user).map(|s| s.try_send(job).is_ok()) != Some(true) {
            shared.error(|| format!("session {user}: post queue full (client saturated)"));
        }
    }
}

/// Waits (at most `--drain`) until every sent post was answered and relays stopped arriving.
async fn drain(cfg: &LoadConfig, shared: &Shared) {
    let drain_until = Instant::now() + cfg.settings.drain;
    let mut last_relays = u64::MAX;
    while Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let c = &shared.c;
        let answered = c.posts_acked.load(Ordering::Relaxed) + c.status_503.load(Ordering::Relaxed);
        let relays = c.relays.load(Ordering::Relaxed);
        if answered >= c.posts_sent.load(Ordering::Relaxed) && relays == last_relays {
            break;
        }
        last_relays = relays;
    }
}

/// What [`drive`] learned besides the counters.
struct RunFacts {
    source_ips: usize,
    scheduled: u64,
    signin_s: f64,
    /// When posting started ([`Shared::now_ns`]).
    t0_ns: u64,
    /// The posting window, in seconds (at least `--duration`).
    window_s: f64,
    /// [`server_memory`].
    memory: (u32, u64, u64, Option<String>),
}

/// The report from the counters and histograms.
fn report(cfg: &LoadConfig, shared: &Shared, run: RunFacts) -> LoadReport {
    let c = &shared.c;
    let span = |last: u64| (last.saturating_sub(run.t0_ns) as f64 / 1e9).max(run.window_s);
    let posts_acked = c.posts_acked.load(Ordering::Relaxed);
    let relays = c.relays.load(Ordering::Relaxed);
    let relay_h = merged(&shared.relay_hist);
    let ack_h = merged(&shared.ack_hist);
    let q = |h: &Option<Histogram<u64>>, p: f64| match h {
        Some(h) if !h.is_empty() => h.value_at_quantile(p) as f64 / 1000.0,
        _ => 0.0,
    };
    let (server_pid, server_rss_bytes, server_rss_peak_bytes, server_rss_note) = run.memory;
    LoadReport {
        target: cfg.target.to_string(),
        users: cfg.settings.users,
        rooms: cfg.settings.rooms,
        room_size: cfg.settings.room_size,
        rate: cfg.settings.rate,
        duration_s: cfg.settings.duration.as_secs_f64(),
        sessions_established: c.established.load(Ordering::Relaxed),
        sessions_failed: c.failed.load(Ordering::Relaxed),
        signin_s: run.signin_s,
        source_ips: run.source_ips,
        posts_scheduled: run.scheduled,
        posts_sent: c.posts_sent.load(Ordering::Relaxed),
        posts_acked,
        posts_acked_per_s: posts_acked as f64 / span(c.last_ack_ns.load(Ordering::Relaxed)),
        relays,
        relays_expected: posts_acked * cfg.settings.room_size.saturating_sub(1) as u64,
        relays_per_s: relays as f64 / span(c.last_relay_ns.load(Ordering::Relaxed)),
        latency_p50_ms: q(&relay_h, 0.5),
        latency_p99_ms: q(&relay_h, 0.99),
        latency_p999_ms: q(&relay_h, 0.999),
        latency_max_ms: relay_h.as_ref().map_or(0.0, |h| h.max() as f64 / 1000.0),
        ack_latency_p50_ms: q(&ack_h, 0.5),
        ack_latency_p99_ms: q(&ack_h, 0.99),
        status_503: c.status_503.load(Ordering::Relaxed),
        signin_503: c.signin_503.load(Ordering::Relaxed),
        errors: c.errors.load(Ordering::Relaxed),
        first_error: None,
        server_pid,
        server_rss_bytes,
        server_rss_peak_bytes,
        server_rss_note,
    }
}

fn merged(shards: &[Mutex<Histogram<u64>>]) -> Option<Histogram<u64>> {
    let mut all: Option<Histogram<u64>> = None;
    for s in shards {
        if let Ok(h) = s.lock() {
            match all.as_mut() {
                Some(a) => {
                    let _ = a.add(&*h);
                }
                None => all = Some(h.clone()),
            }
        }
    }
    all
}

async fn progress_loop(s: Arc<Shared>, users: usize, scheduled: u64) {
    let mut last = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let c = &s.c;
        let (acked, relays) = (
            c.posts_acked.load(Ordering::Relaxed),
            c.relays.load(Ordering::Relaxed),
        );
        eprintln!(
            "[{:>6.1}s] sessions {}/{} ({} failed) | posts {}/{} sent, {} acked (+{}/s) | relays {} (+{}/s) | 503 {} | errors {}",
            s.start.elapsed().as_secs_f64(),
            c.established.load(Ordering::Relaxed),
            users,
            c.failed.load(Ordering::Relaxed),
            c.posts_sent.load(Ordering::Relaxed),
            scheduled,
            acked,
            acked - last.0,
            relays,
            relays - last.1,
            c.status_503.load(Ordering::Relaxed),
            c.errors.load(Ordering::Relaxed),
        );
        last = (acked, relays);
    }
}

struct Session {
    index: usize,
    user: String,
    call_id: String,
    rooms: Vec<String>,
    target: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
    shared: Arc<Shared>,
}

/// What a session learned from its INVITE's 200 OK.
struct Dialog {
    from: String,
    to: String,
    target: String,
    local: String,
    cseq: u32,
}

impl Session {
    async fn run(
        self,
        posts: mpsc::Receiver<PostJob>,
        gate: Arc<Semaphore>,
        ready: mpsc::UnboundedSender<(usize, bool)>,
    ) {
        let signed_in = {
            let _permit = gate.acquire().await;
            tokio::time::timeout(self.timeout * 3, self.sign_in()).await
        };
        let (stream, framer, dialog) = match signed_in {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return self.fail(&ready, e),
            Err(_) => {
                return self.fail(&ready, format!("sign-in took over {:?}", self.timeout * 3))
            }
        };
        self.shared.c.established.fetch_add(1, Ordering::Relaxed);
        let _ = ready.send((self.index, true));
        drop(ready);
        self.post_loop(stream, framer, dialog, posts).await;
    }

    fn fail(&self, ready: &mpsc::UnboundedSender<(usize, bool)>, e: String) {
        self.shared.c.failed.fetch_add(1, Ordering::Relaxed);
        self.shared.error(|| format!("session {}: {e}", self.index));
        let _ = ready.send((self.index, false));
    }

    async fn connect(&self) -> Result<tokio::net::TcpStream, String> {
        let sock = match self.target {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .map_err(|e| format!("socket: {e}"))?;
        if let Some(ip) = self.source {
            sock.bind(SocketAddr::new(ip, 0))
                .map_err(|e| format!("bind {ip}: {e}"))?;
        }
        let s = tokio::time::timeout(self.timeout, sock.connect(self.target))
            .await
            .map_err(|_| format!("connect to {} timed out", self.target))?
            .map_err(|e| format!("connect to {}: {e}", self.target))?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    async fn sign_in(&self) -> Result<(tokio::net::TcpStream, Framer, Dialog), String> {
        let mut stream = self.connect().await?;
        let local = stream
            .local_addr()
            .map_err(|e| format!("local address: {e}"))?
            .to_string();
        let mut framer = Framer::new(1 << 20);
        let mut out = Vec::new();
        let mut d = self
            .invite(&mut stream, &mut framer, &mut out, local)
            .await?;
        let cseq = d.cseq; // the INVITE's (RFC 3261 17.1.1.3)
        let ack = format!(
            "ACK {t} SIP/2.0\r\nVia: SIP/2.0/TCP {l};branch=z9hG4bKlack{i}\r\nMax-Forwards: 70\r\n\
             From: {f}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            t = d.target,
            l = d.local,
            i = self.index,
            f = d.from,
            to = d.to,
            cid = self.call_id
        );
        out.extend_from_slice(ack.as_bytes());
        if self.rooms.is_empty() {
            stream
                .write_all(&out)
                .await
                .map_err(|e| format!("send ACK: {e}"))?;
        } else {
            self.bjoin(&mut stream, &mut framer, &mut out, &mut d)
                .await?;
        }
        Ok((stream, framer, d))
    }

    /// INVITE (again with SIP Digest credentials after a 401) up to its 200 OK: the
    /// dialog it opens, its CSeq the INVITE's. `out` collects answers to server requests.
    async fn invite(
        &self,
        stream: &mut tokio::net::TcpStream,
        framer: &mut Framer,
        out: &mut Vec<u8>,
        local: String,
    ) -> Result<Dialog, String> {
        let (host, port) = local.rsplit_once(':').unwrap_or((&local, "0"));
        let sdp = format!(
            "v=0\r\no=- 0 0 IN IP4 {host}\r\ns=session\r\nc=IN IP4 {host}\r\nt=0 0\r\nm=message {port} sip null\r\n"
        );
        let user_part = self.user.trim_start_matches("sip:");
        let user_part = user_part.split('@').next().unwrap_or("");
        let from = format!("<{}>;tag=lt{}", self.user, self.index);
        let domain = self.user.rsplit_once('@').map_or("", |(_, d)| d);
        let invite = |cseq: u32, auth: &str| {
            format!(
                "INVITE sip:pchat@{domain} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKlinv{i}-{cseq}\r\n\
                 Max-Forwards: 70\r\nFrom: {from}\r\nTo: <sip:pchat@{domain}>\r\nCall-ID: {cid}\r\n\
                 CSeq: {cseq} INVITE\r\nContact: <sip:{user_part}@{local};transport=tcp>\r\nSupported: timer\r\n\
                 User-Agent: pchat-sim-load\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
                i = self.index,
                cid = self.call_id,
                len = sdp.len()
            )
        };
        let mut cseq = 1;
        let mut head = self
            .invite_admitted(stream, framer, out, &|c| invite(c, ""), &mut cseq)
            .await?;
        if let (401, Some(auth)) = (head.0, self.authorization(&head.1, domain)) {
            // SIP Digest (RFC 3261 22.2): the same INVITE again with credentials.
            cseq += 1;
            let auth = format!("Authorization: {auth}\r\n");
            head = self
                .invite_admitted(stream, framer, out, &|c| invite(c, &auth), &mut cseq)
                .await?;
        }
        let (to, target) = match head {
            (200, head) => {
                let to = header(&head, "To").unwrap_or_default().to_string();
                let target = header(&head, "Contact")
                    .map(|c| {
                        c.trim()
                            .trim_start_matches('<')
                            .split('>')
                            .next()
                            .unwrap_or("")
                    })
                    .unwrap_or("")
                    .to_string();
                (to, target)
            }
            (code, _) => return Err(format!("INVITE answered {code}")),
        };
        if !to.contains("tag=") || target.is_empty() {
            return Err("200 OK to INVITE without To-tag or Contact".into());
        }
        Ok(Dialog {
            from,
            to,
            target,
            local,
            cseq,
        })
    }

    /// Sends what `out` holds (the ACK) and the bjoin of every room of this session,
    /// and waits for the bjoin's reply (`rpl:bjoin` with code 200). A bjoin answered
    /// 503 (the server sheds load) is sent again after its `Retry-After`, at most
    /// [`BJOIN_ATTEMPTS`] times in all.
    async fn bjoin(
        &self,
        stream: &mut tokio::net::TcpStream,
        framer: &mut Framer,
        out: &mut Vec<u8>,
        d: &mut Dialog,
    ) -> Result<(), String> {
        let mut body = format!(
            "<xccos ver=\"1\" envid=\"{}\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:bjoin\" seqid=\"1\"><data>",
            self.index + 1
        );
        for r in &self.rooms {
            let _ = write!(body, "<chanib uri=\"{r}\"/>");
        }
        body.push_str("</data></cmd></xccos>");
        let mut attempt = 1;
        let (frame, code) = loop {
            let bjoin_cseq = self.info(d, &body, out);
            stream
                .write_all(out)
                .await
                .map_err(|e| format!("send ACK/bjoin: {e}"))?;
            out.clear();
            let (frame, code) = self
                .read_until(stream, framer, out, |m| match m {
                    Msg::Response { cseq, code, .. } if *cseq == bjoin_cseq && *code >= 300 => {
                        Some(*code)
                    }
                    Msg::Request { body, .. } if contains(body, b"\"rpl:bjoin\"") => Some(200),
                    _ => None,
                })
                .await?;
            if code != 503 || attempt >= BJOIN_ATTEMPTS {
                break (frame, code);
            }
            self.shared.c.signin_503.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
            let wait = Msg::read(&frame)
                .and_then(|m| match m {
                    Msg::Response { head, .. } => header(head, "Retry-After")?.parse().ok(),
                    Msg::Request { .. } => None,
                })
                .unwrap_or(1u64)
                .min(10);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        };
        if code != 200 {
            return Err(format!("bjoin INFO answered {code}"));
        }
        if let Some(Msg::Request { body, .. }) = Msg::read(&frame) {
            if !contains(body, b"code=\"200\"") {
                return Err(format!(
                    "rpl:bjoin not 200: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
            }
        }
        if !out.is_empty() {
            stream
                .write_all(out)
                .await
                .map_err(|e| format!("send 200 OK: {e}"))?;
            out.clear();
        }
        Ok(())
    }

    /// [`Session::invite_once`] with the INVITE `invite(cseq)`, sent again with the next
    /// CSeq after the `Retry-After` (at most 10 s) of a 503 - the server refusing new
    /// sessions under load - at most [`BJOIN_ATTEMPTS`] times in all. Returns the last
    /// final response: (code, head); `cseq` is left at the last INVITE's.
    async fn invite_admitted(
        &self,
        stream: &mut tokio::net::TcpStream,
        framer: &mut Framer,
        out: &mut Vec<u8>,
        invite: &(dyn Fn(u32) -> String + Sync),
        cseq: &mut u32,
    ) -> Result<(u16, String), String> {
        let mut attempt = 1;
        loop {
            let head = self
                .invite_once(stream, framer, out, &invite(*cseq), *cseq)
                .await?;
            if head.0 != 503 || attempt >= BJOIN_ATTEMPTS {
                return Ok(head);
            }
            self.shared.c.signin_503.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
            let wait = header(&head.1, "Retry-After")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(1u64)
                .min(10);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            *cseq += 1;
        }
    }

    /// Sends one INVITE (with CSeq `cseq`) and waits for its final response: (code,
    /// head). Server requests met on the way are answered into `out`.
    async fn invite_once(
        &self,
        stream: &mut tokio::net::TcpStream,
        framer: &mut Framer,
        out: &mut Vec<u8>,
        invite: &str,
        cseq: u32,
    ) -> Result<(u16, String), String> {
        stream
            .write_all(invite.as_bytes())
            .await
            .map_err(|e| format!("send INVITE: {e}"))?;
        let (frame, ()) = self
            .read_until(stream, framer, out, |m| match m {
                Msg::Response { cseq: c, code, .. } if *c == cseq && *code >= 200 => Some(()),
                _ => None,
            })
            .await?;
        match Msg::read(&frame) {
            Some(Msg::Response { code, head, .. }) => Ok((code, head.to_string())),
            _ => Err("INVITE: unexpected message".into()),
        }
    }

    /// The Authorization answering the 401 whose head is `head`, with this session's
    /// password ([`password_of`]).
    fn authorization(&self, head: &str, domain: &str) -> Option<String> {
        let values = head.split("\r\n").filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case("WWW-Authenticate")
                .then_some(v.trim())
        });
        let ch = crate::auth::challenges(values).into_iter().next()?;
        let uri = format!("sip:pchat@{domain}");
        Some(crate::auth::authorization(
            &ch,
            "INVITE",
            &uri,
            &crate::auth::username_of(&self.user),
            &password_of(&self.user),
            &format!("lc{}", self.index),
            1,
        ))
    }

    /// Reads until `want` picks a message; answers server requests with 200 OK into
    /// `out` on the way (written by the caller).
    async fn read_until<T>(
        &self,
        stream: &mut tokio::net::TcpStream,
        framer: &mut Framer,
        out: &mut Vec<u8>,
        mut want: impl FnMut(&Msg) -> Option<T>,
    ) -> Result<(bytes::Bytes, T), String> {
        let mut buf = [0u8; 4096];
        loop {
            while let Some(frame) = framer
                .next_frame()
                .map_err(|e| format!("framing error from server: {e}"))?
            {
                let m = Msg::read(&frame).ok_or("unreadable message from server")?;
                if let Msg::Request { head, .. } = &m {
                    answer_200(head, out);
                }
                if let Some(t) = want(&m) {
                    return Ok((frame, t));
                }
            }
            let n = tokio::time::timeout(self.timeout, stream.read(&mut buf))
                .await
                .map_err(|_| format!("no answer within {:?}", self.timeout))?
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("server closed the connection during sign-in".into());
            }
            framer.push(&buf[..n]);
        }
    }

    fn info(&self, d: &mut Dialog, body: &str, out: &mut Vec<u8>) -> u32 {
        d.cseq += 1;
        let branch = format!("l{}x{}", self.index, d.cseq);
        let mut head = String::new();
        pchat_server::sip::InDialog {
            method: "INFO",
            target: &d.target,
            transport: "TCP",
            via: &d.local,
            branch: &branch,
            from: &d.from,
            to: &d.to,
            call_id: &self.call_id,
            cseq: d.cseq,
        }
        .write_head("text/plain", body.len(), &mut head);
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body.as_bytes());
        d.cseq
    }

    async fn post_loop(
        &self,
        mut stream: tokio::net::TcpStream,
        mut framer: Framer,
        mut d: Dialog,
        mut posts: mpsc::Receiver<PostJob>,
    ) {
        let sh = &self.shared;
        let mut pending: BTreeMap<u32, u64> = BTreeMap::new();
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::with_capacity(1024);
        let mut posts_open = true;
        loop {
            tokio::select! {
                biased;
                r = stream.read(&mut buf) => {
                    let read = crate::frames::after_read(r, &buf, &mut framer);
                    for frame in &read.frames {
                        self.on_frame(frame, &mut pending, &mut out);
                    }
                    match read.end {
                        None => {}
                        Some(crate::frames::End::Closed) => {
                            if !sh.stop.load(Ordering::Relaxed) {
                                sh.error(|| format!("session {}: server closed the connection", self.index));
                            }
                            return;
                        }
                        Some(crate::frames::End::Bad(e)) => {
                            sh.error(|| format!("session {}: framing error: {e}", self.index));
                            return;
                        }
                    }
                }
                job = posts.recv(), if posts_open => {
                    let Some(job) = job else { posts_open = false; continue };
                    let Some(room) = self.rooms.get(job.room) else { continue };
                    let body = format!(
                        "<xccos ver=\"1\" envid=\"{id}\" xmlns=\"urn:parlano:xml:ns:xccos\"><grpchat id=\"grpchat\" seqid=\"1\" \
                         chanUri=\"{room}\"><chat>load {id}</chat></grpchat></xccos>",
                        id = job.id
                    );
                    let cseq = self.info(&mut d, &body, &mut out);
                    pending.insert(cseq, job.id);
                    sh.c.posts_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    sh.error(|| format!("session {}: write failed", self.index));
                    return;
                }
                out.clear();
            }
        }
    }

    fn on_frame(&self, frame: &bytes::Bytes, pending: &mut BTreeMap<u32, u64>, out: &mut Vec<u8>) {
        let sh = &self.shared;
        let Some(m) = Msg::read(frame) else {
            return sh.error(|| format!("session {}: unreadable message from server", self.index));
        };
        let now = sh.now_ns();
        match m {
            Msg::Response { code, cseq, .. } => {
                let Some(id) = pending.remove(&cseq) else {
                    return;
                };
                match code {
                    200 => {
                        sh.c.posts_acked.fetch_add(1, Ordering::Relaxed);
                        sh.c.last_ack_ns.fetch_max(now, Ordering::Relaxed);
                        if let Some(due) = sh.due_ns.get(id as usize) {
                            let due = due.load(Ordering::Relaxed);
                            Shared::record(
                                &sh.ack_hist,
                                self.index,
                                now.saturating_sub(due) / 1000,
                            );
                        }
                    }
                    503 => {
                        sh.c.status_503.fetch_add(1, Ordering::Relaxed);
                    }
                    c => sh.error(|| format!("session {}: post answered {c}", self.index)),
                }
            }
            Msg::Request { head, body } => {
                answer_200(head, out);
                if let Some(id) = marker(body) {
                    sh.c.relays.fetch_add(1, Ordering::Relaxed);
                    sh.c.last_relay_ns.fetch_max(now, Ordering::Relaxed);
                    if let Some(due) = sh.due_ns.get(id as usize) {
                        let due = due.load(Ordering::Relaxed);
                        Shared::record(&sh.relay_hist, self.index, now.saturating_sub(due) / 1000);
                    }
                }
            }
        }
    }
}

/// Most times a session sends its bjoin when the server answers 503 (load shed).
const BJOIN_ATTEMPTS: u32 = 5;

/// The little the load tool reads of a message from the server, borrowed from the frame
/// (no copy: the generator shares the server's cores, so its cost per post counts).
enum Msg<'a> {
    Response { code: u16, cseq: u32, head: &'a str },
    Request { head: &'a str, body: &'a [u8] },
}

impl<'a> Msg<'a> {
    fn read(frame: &'a [u8]) -> Option<Msg<'a>> {
        let end = memchr::memmem::find(frame, b"\r\n\r\n")?;
        let head = std::str::from_utf8(frame.get(..end)?).ok()?;
        if let Some(rest) = head.strip_prefix("SIP/2.0 ") {
            let code = rest.get(..3)?.parse().ok()?;
            let cseq = header(head, "CSeq")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(Msg::Response { code, cseq, head })
        } else {
            let body = frame.get(end + 4..)?;
            Some(Msg::Request { head, body })
        }
    }
}

/// Value of the first header `name` (long form, case-insensitive) in a head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Appends a 200 OK to a server request (Via, From, To, Call-ID, CSeq copied; RFC 3261 8.2.6.2).
fn answer_200(head: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"SIP/2.0 200 OK\r\n");
    for l in head.split("\r\n").skip(1) {
        let name = l.split(':').next().unwrap_or("").trim();
        if ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// The post index in a relayed grpchat's `<chat>load N</chat>`.
fn marker(body: &[u8]) -> Option<u64> {
    const M: &[u8] = b"<chat>load ";
    let at = memchr::memmem::find(body, M)? + M.len();
    let digits = body.get(at..)?;
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(digits.get(..n)?).ok()?.parse().ok()
}

/// (pid, VmRSS bytes, VmHWM bytes, note when unknown).
fn server_memory(cfg: &LoadConfig) -> (u32, u64, u64, Option<String>) {
    let pid = match cfg.settings.server_pid {
        Some(p) => p,
        None => match pid_listening_on(cfg.target.port()) {
            Some(p) => p,
            None => {
                return (
                    0,
                    0,
                    0,
                    Some(format!(
                        "no local process found listening on port {}; pass --server-pid",
                        cfg.target.port()
                    )),
                )
            }
        },
    };
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => {
            let kb = |key: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|k| k * 1024)
            };
            match kb("VmRSS:") {
                Some(rss) => (pid, rss, kb("VmHWM:").unwrap_or(0), None),
                None => (pid, 0, 0, Some(format!("/proc/{pid}/status has no VmRSS"))),
            }
        }
        Err(e) => (pid, 0, 0, Some(format!("/proc/{pid}/status: {e}"))),
    }
}

/// The pid holding the listening TCP socket on `port` (see the module docs).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let p = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if p == Some(port) && *state == "0A" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| link.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn membership_plan_fills_rooms_and_leaves_extra_users_idle() {
        let cfg = LoadConfig {
            target: "127.0.0.1:5060".parse().unwrap(),
            settings: LoadSettings {
                users: 10,
                rooms: 3,
                room_size: 4,
                rate: 1.0,
                duration: Duration::from_secs(1),
                drain: Duration::from_secs(1),
                domain: "contoso.com".into(),
                room_prefix: "load-".into(),
                connect_concurrency: 1,
                source_ips: None,
                server_pid: None,
                seed: 1,
                signin_timeout: Duration::from_secs(1),
            },
            progress: false,
        };
        let p = plan(&cfg);
        let total: usize = p.iter().map(Vec::len).sum();
        assert_eq!(total, 12, "3 rooms x 4 members");
        assert_eq!(p[0], [0, 2], "user0 is memberships 0 and 10");
        assert_eq!(p[9], [2], "user9 is membership 9");
        assert_ne!(room_uri(&cfg, 0), room_uri(&cfg, 1));
        let text = server_config("contoso.com", "load-", 3, 2);
        assert!(text.contains("name = \"load-2\""));
        let cfg = pchat_server::config::Config::from_toml(&text, std::path::Path::new("load"))
            .expect("the printed config loads");
        assert_eq!(cfg.auth.mode, pchat_server::config::AuthMode::Digest);
        assert_eq!(cfg.users.len(), 2);
        assert_eq!(cfg.users[1].password.as_deref(), Some("load1-pw"));
    }

    #[test]
    fn reads_the_server_messages_it_needs() {
        let relay = bytes::Bytes::from_static(
            b"INFO sip:u@h SIP/2.0\r\nVia: SIP/2.0/TCP s:5060;branch=z9hG4bKa\r\nFrom: <sip:p@c>;tag=1\r\n\
              To: <sip:u@c>;tag=2\r\nCall-ID: x\r\nCSeq: 4 INFO\r\nContent-Length: 30\r\n\r\n<grpchat><chat>load 42</chat>",
        );
        let Some(Msg::Request { head, body }) = Msg::read(&relay) else {
            panic!("request")
        };
        assert_eq!(marker(body), Some(42));
        let mut out = Vec::new();
        answer_200(head, &mut out);
        let ok = String::from_utf8(out).unwrap();
        assert!(ok.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP s:5060;branch=z9hG4bKa\r\n"));
        assert!(ok.contains("CSeq: 4 INFO\r\n") && ok.ends_with("Content-Length: 0\r\n\r\n"));
        let resp =
            bytes::Bytes::from_static(b"SIP/2.0 503 Service Unavailable\r\nCSeq: 9 INFO\r\n\r\n");
        assert!(matches!(
            Msg::read(&resp),
            Some(Msg::Response {
                code: 503,
                cseq: 9,
                ..
            })
        ));
        assert_eq!(marker(b"<chat>hello</chat>"), None);
    }
}
