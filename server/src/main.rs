//! `pchat-server`: the Persistent Chat server binary.
//!
//! ```text
//! pchat-server [--config FILE] [--sip ADDR] [--store PATH]
//! pchat-server [--config FILE] [--store PATH] compliance verify [--output-dir DIR] [--db PATH]
//! pchat-server [--config FILE] user hash URI [--password PW] [--realm REALM]
//! ```
//! It refuses to start (exit status 2) when `[auth] mode` is `"none"` and a listen
//! address is not loopback (docs/security.md).
//! With no `--config` it runs on the embedded default (domain contoso.com, demo rooms,
//! store under ./pchat-data). Logs go to stderr (`RUST_LOG` filters, default `info`).
//! Ctrl-C (or SIGTERM) stops it cleanly: no new connections, the current batch commits.

use clap::{Parser, Subcommand};
use pchat_server::clock::TokioClock;
use pchat_server::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc instead of glibc's malloc: the server's work is small, short-lived
/// allocations on several threads (frames, parsed messages, queue nodes) and glibc's
/// allocator was ~39 % of its CPU under load (BENCHMARKS.md, issue 18); mimalloc also
/// returns freed pages instead of leaving per-thread arenas grown after a sign-in burst.
/// Built with `no_thp`: mimalloc then does not ask for transparent huge pages, whose
/// 2 MiB zeroing on every re-fault of a purged page was 17 % of the server's CPU under
/// fan-out (perf, BENCHMARKS.md "Issue 18: session 7"). Nothing depends on addresses,
/// so behaviour is unchanged.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Open files (sockets) the server asks for at start (RLIMIT_NOFILE).
const NOFILE_WANTED: u64 = 1 << 20;

/// Persistent Chat server: XCCOS over SIP/TCP.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (see server/src/default-config.toml for every key).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// SIP/TCP listen address, overrides `[sip] listen`.
    #[arg(long, value_name = "ADDR")]
    sip: Option<String>,
    /// SQLite store file, overrides `[store] path`.
    #[arg(long, value_name = "PATH", global = true)]
    store: Option<PathBuf>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// A tool instead of the server.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compliance pipeline tools.
    Compliance {
        #[command(subcommand)]
        action: ComplianceAction,
    },
    /// User tools.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// TLS tools.
    Tls {
        #[command(subcommand)]
        action: TlsAction,
    },
}

#[derive(Subcommand, Debug)]
enum TlsAction {
    /// Write a self-signed development certificate (`cert.pem`, `key.pem`) into DIR and
    /// print its SHA-256 fingerprint (for `[auth] trusted_peers` when used as a client
    /// certificate) and the `[sip]` lines that use it.
    SelfSigned {
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Names in the certificate (DNS names or IP addresses).
        #[arg(long = "name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        names: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum UserAction {
    /// Print the HA1 values (`ha1_sha256`, `ha1_md5`) of a password, ready to paste into
    /// a `[[user]]` entry instead of `password`. The realm is `[auth] realm` (default
    /// the domain) of `--config`, or the embedded default's.
    Hash {
        /// The user's SIP URI, e.g. sip:user1@contoso.com (or just user1).
        uri: String,
        /// The password; read from the first line of standard input when omitted.
        #[arg(long)]
        password: Option<String>,
        /// Realm, overriding the configuration's.
        #[arg(long)]
        realm: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ComplianceAction {
    /// Compare the store, the compliance database and the adapter output; report
    /// missing or duplicated events. Exit status 0 = clean, 1 = problems found.
    Verify {
        /// Adapter output directory (default `[compliance] output_dir`).
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// Compliance database (default `[compliance] path`).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    pchat_server::init_tracing("info");
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", pchat_server::config::DEFAULT_CONFIG);
        return ExitCode::SUCCESS;
    }
    let mut cfg = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pchat-server: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::embedded_default(),
    };
    if let Some(addr) = args.sip {
        cfg.sip.listen = addr;
    }
    if let Some(path) = args.store {
        cfg.store.path = path;
    }
    if let Some(Command::Compliance {
        action: ComplianceAction::Verify { output_dir, db },
    }) = args.command
    {
        return verify(&cfg, output_dir, db);
    }
    if let Some(Command::User {
        action:
            UserAction::Hash {
                uri,
                password,
                realm,
            },
    }) = args.command
    {
        return user_hash(&cfg, &uri, password, realm);
    }
    if let Some(Command::Tls {
        action: TlsAction::SelfSigned { out, names },
    }) = args.command
    {
        return tls_self_signed(&out, &names);
    }
    if let Err(e) = pchat_server::auth::exposure::check(&cfg) {
        eprintln!("pchat-server: refusing to start: {e}");
        return ExitCode::from(2);
    }
    // One socket per session: allow well past the 20,000-user anchor.
    match pchat_server::host::raise_nofile_limit(NOFILE_WANTED) {
        Ok(n) => tracing::debug!(nofile = n, "RLIMIT_NOFILE"),
        Err(e) => tracing::warn!("cannot raise RLIMIT_NOFILE: {e}"),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pchat-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg, args.config.is_none())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pchat-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tls self-signed`: writes cert.pem and key.pem into `out`.
fn tls_self_signed(out: &std::path::Path, names: &[String]) -> ExitCode {
    let (cert, key, fp) = match pchat_server::tls::self_signed(names) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("pchat-server: cannot make a certificate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::create_dir_all(out)
            .and_then(|()| std::fs::write(&path, text))
            .map(|()| path)
    };
    match (write("cert.pem", &cert), write("key.pem", &key)) {
        (Ok(c), Ok(k)) => {
            println!("# fingerprint {fp}");
            println!(
                "[sip]\ntls_listen = \"127.0.0.1:5061\"\ntls_cert = {:?}\ntls_key = {:?}",
                c.display().to_string(),
                k.display().to_string()
            );
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("pchat-server: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

/// `user hash`: prints the `[[user]]` lines with HA1 values for a password.
fn user_hash(cfg: &Config, uri: &str, password: Option<String>, realm: Option<String>) -> ExitCode {
    use pchat_server::auth::digest::{ha1, Algorithm};
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() {
                eprintln!("pchat-server: cannot read the password from standard input");
                return ExitCode::from(2);
            }
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let realm = realm.unwrap_or_else(|| cfg.realm().to_string());
    let key = pchat_server::auth::users::key_of(uri);
    let key = if key.contains('@') {
        key
    } else {
        format!("{key}@{}", cfg.domain.to_ascii_lowercase())
    };
    let user = key.split('@').next().unwrap_or_default();
    println!("# realm \"{realm}\"");
    println!("[[user]]");
    println!("uri = \"sip:{key}\"");
    println!(
        "ha1_sha256 = \"{}\"",
        ha1(Algorithm::Sha256, user, &realm, &password)
    );
    println!(
        "ha1_md5 = \"{}\"",
        ha1(Algorithm::Md5, user, &realm, &password)
    );
    ExitCode::SUCCESS
}

/// `compliance verify`: prints the report; exit 0 clean, 1 problems, 2 unreadable input.
fn verify(cfg: &Config, output_dir: Option<PathBuf>, db: Option<PathBuf>) -> ExitCode {
    use pchat_server::compliance::{verify::verify, ComplianceDb};
    let output_dir = output_dir.unwrap_or_else(|| cfg.compliance.output_dir.clone());
    let db_path = db.unwrap_or_else(|| cfg.compliance.path.clone());
    let store_name = match &cfg.store.url {
        Some(url) => url.clone(),
        None => cfg.store.path.display().to_string(),
    };
    if cfg.store.url.is_none() && !cfg.store.path.exists() {
        eprintln!("pchat-server: store {store_name} does not exist");
        return ExitCode::from(2);
    }
    let mut store = match pchat_server::store::open(&cfg.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pchat-server: {store_name}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut db = if db_path.exists() {
        match ComplianceDb::open(&db_path) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("pchat-server: {}: {e}", db_path.display());
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    match verify(store.as_mut(), db.as_mut(), &output_dir) {
        Ok(report) => {
            println!(
                "store {}, compliance db {}, output {}",
                store_name,
                db_path.display(),
                output_dir.display()
            );
            print!("{}", report.render());
            if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("pchat-server: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cfg: Config, embedded: bool) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&cfg.sip.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.sip.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    let http = match &cfg.http {
        Some(h) => Some(
            tokio::net::TcpListener::bind(&h.listen)
                .await
                .map_err(|e| format!("cannot listen on {} ([http] listen): {e}", h.listen))?,
        ),
        None => None,
    };
    let tls = bind_tls(&cfg.sip).await?;
    let tls_addr = tls
        .as_ref()
        .and_then(|(l, _)| l.local_addr().ok())
        .map_or_else(|| "off".to_string(), |a| a.to_string());
    let handshake_timeout = std::time::Duration::from_millis(cfg.sip.header_timeout.0);
    let auth_mode = format!("{:?}", cfg.auth.mode).to_ascii_lowercase();
    let users = cfg.users.len();
    let http_addr = http
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .unwrap_or_else(|| "off".to_string());
    // The one wall-clock read: the host's epoch and seed. Logic after this uses tokio time.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let clock = Arc::new(TokioClock::starting_at(now.as_millis() as i64));
    let seed = host_seed(now);
    let store_path = match &cfg.store.url {
        Some(url) => url.clone(),
        None => cfg.store.path.display().to_string(),
    };
    let rooms = cfg.rooms.len();
    let domain = cfg.domain.clone();
    let worker = pchat_server::build_worker(&cfg, None).map_err(|e| format!("compliance: {e}"))?;
    let compliance = worker.is_some();
    let core = pchat_server::build_core(cfg, clock, seed, &local)
        .map_err(|e| format!("{store_path}: {e}"))?;
    tracing::info!(
        sip = %local,
        %domain,
        store = %store_path,
        rooms = core.rooms().len(),
        configured_rooms = rooms,
        config = if embedded { "embedded default" } else { "file" },
        compliance,
        http = %http_addr,
        tls = %tls_addr,
        auth = %auth_mode,
        users,
        "pchat-server ready"
    );
    match tls {
        Some(tls) => {
            let listeners =
                pchat_server::tls::SipListeners::new(listener, Some(tls), handshake_timeout);
            serve_until_signal(listeners, http, core, worker).await
        }
        None => serve_until_signal(listener, http, core, worker).await,
    }
    .map_err(|e| e.to_string())?;
    tracing::info!("pchat-server stopped");
    Ok(())
}

/// The `[sip] tls_listen` listener and its TLS acceptor (`tls_cert`, `tls_key`), or
/// `None` without `tls_listen`; an error names the key or address at fault.
async fn bind_tls(
    sip: &pchat_server::config::SipConfig,
) -> Result<Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>, String> {
    let Some(addr) = &sip.tls_listen else {
        return Ok(None);
    };
    let (Some(cert), Some(key)) = (&sip.tls_cert, &sip.tls_key) else {
        return Err("[sip] tls_listen needs tls_cert and tls_key (PEM files; `pchat-server tls self-signed --out DIR` makes them)".into());
    };
    let acceptor = pchat_server::tls::acceptor(cert, key).map_err(|e| format!("TLS: {e}"))?;
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ([sip] tls_listen): {e}"))?;
    Ok(Some((l, acceptor)))
}

/// The host's seed from the start time `now` (since the Unix epoch) and the pid. It
/// also mints the web services' tokens: OS randomness is mixed in so they cannot be
/// guessed from the start time.
fn host_seed(now: std::time::Duration) -> u64 {
    let mut seed = now.as_nanos() as u64 ^ u64::from(std::process::id());
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let mut b = [0u8; 8];
        if std::io::Read::read_exact(&mut f, &mut b).is_ok() {
            seed ^= u64::from_le_bytes(b);
        }
    }
    seed
}

/// Serves SIP on `sip` (and the web services on `http`) until SIGINT/SIGTERM.
async fn serve_until_signal<L: pchat_server::host::Listener>(
    sip: L,
    http: Option<tokio::net::TcpListener>,
    core: pchat_server::core::Core,
    worker: Option<pchat_server::compliance::Worker>,
) -> std::io::Result<()> {
    pchat_server::host::serve_full(
        sip,
        http,
        core,
        worker,
        shutdown_signal(),
        Default::default(),
    )
    .await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    biased;
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("shutdown requested");
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
