//! # pchat-server
//!
//! A Persistent Chat server in the manner of Lync Server 2013: XCCOS (XML chat commands
//! in SIP INFO, see `shared/protocol/XCCOS.md`) over SIP/TCP, the Channel service (rooms,
//! participants, fan-out, search) and the Persistent Chat Store (SQLite).
//!
//! Layout (one module per concern, see ARCHITECTURE.md):
//! - [`sip`]: framing, normalization (compact forms, folding) and parsing over rsip.
//! - [`xccos`]: the typed XCCOS model, parser (quick-xml) and serializer.
//! - [`core`]: the sans-IO protocol core: dialogs, SIP methods, group commit.
//! - [`cmd`]: one file per XCCOS command family.
//! - `dispatch`: the public constructors of [`core::Core`], which hand the core the
//!   handlers (`cmd`, `web`, `compliance`) it calls up into.
//! - [`channel`]: rooms, online participants, authorization.
//! - [`store`]: the Persistent Chat Store trait, its SQLite and PostgreSQL stores.
//! - [`pool`]: a pool of servers on one store: relays from the store's log, leases.
//! - [`compliance`]: the compliance pipeline (outbox, mgccomp, worker, adapters, verify).
//! - [`host`]: the I/O driver, generic over tokio or turmoil TCP.
//! - [`fault`]: fault switches the simulator arms (overload, store faults).
//! - [`auth`]: who is who - Digest, registrar, brute-force guard, trusted peers.
//! - [`tls`]: SIP over TLS (rustls), the TCP+TLS listener, development certificates.
//! - [`https`]: HTTPS for the web services (`[http] tls`) on the same certificate.
//! - [`config`], [`clock`], [`ids`]: configuration, injected time, seeded identifiers.
//! - [`xml`]: the one XML escaper/writer (XCCOS, provisioning, compliance files).

pub mod auth;
pub mod channel;
pub mod clock;
pub mod cmd;
pub mod compliance;
pub mod config;
pub mod core;
mod dispatch;
pub mod fault;
pub mod files;
pub mod host;
pub mod https;
pub mod ids;
pub mod loopback;
pub mod net;
pub mod pool;
pub mod sip;
pub mod store;
pub mod tls;
pub mod web;
pub mod xccos;
pub mod xml;

use std::sync::Arc;

/// Builds a [`core::Core`] from a configuration: opens the store (`[store] url`:
/// PostgreSQL, a pool member; else the SQLite file `[store] path`), creates/updates
/// configured rooms. `seed` seeds identifiers;
/// `local_addr` is the `host:port` advertised in Via/Contact. Errors: store failures.
pub fn build_core(
    cfg: config::Config,
    clock: Arc<dyn clock::Clock>,
    seed: u64,
    local_addr: &str,
) -> Result<core::Core, store::StoreError> {
    let store = store::open(&cfg.store)?;
    core::Core::new(
        cfg,
        store,
        clock,
        seed,
        local_addr,
        fault::Faults::default(),
    )
}

/// Builds the compliance worker when `[compliance] enabled`: a second connection to the
/// store file (the outbox), the compliance database, the configured adapter; in a pool
/// it runs only while it holds the pool's compliance lease (`Worker::in_pool`; the
/// host hands it the core's clock). `hook` is
/// the tests' fault hook (None in production). Errors: a database failed to open, or
/// the store is `:memory:`.
pub fn build_worker(
    cfg: &config::Config,
    hook: Option<compliance::FaultHook>,
) -> Result<Option<compliance::Worker>, store::StoreError> {
    if !cfg.compliance.enabled {
        return Ok(None);
    }
    let worker = if cfg.store.url.is_some() {
        let db = compliance::ComplianceDb::open(&cfg.compliance.path)?;
        let adapter = compliance::worker::adapter_for(&cfg.compliance);
        let store = store::open(&cfg.store)?;
        compliance::Worker::new(store, db, adapter, &cfg.compliance, hook)
    } else {
        compliance::Worker::open(&cfg.compliance, &cfg.store.path, hook)?
    };
    // In a pool, one worker exports at a time: the one holding the compliance lease.
    Ok(Some(match cfg.pooled() {
        true => worker.in_pool(cfg.server_id(), cfg.pool.lease_s),
        false => worker,
    }))
}

/// [`build_core`] for tests and the simulator: the store is wrapped in a
/// [`store::FaultyStore`] and the core honours `faults` (retry de-duplication switch);
/// pass the same handle to [`host::serve_with_faults`] for forced overload.
/// Errors: store failures (including an armed store fault).
pub fn build_core_with_faults(
    cfg: config::Config,
    clock: Arc<dyn clock::Clock>,
    seed: u64,
    local_addr: &str,
    faults: fault::Faults,
) -> Result<core::Core, store::StoreError> {
    let store = store::SqliteStore::open(&cfg.store.path)?;
    let store = store::FaultyStore::new(Box::new(store), faults.clone());
    core::Core::new(cfg, Box::new(store), clock, seed, local_addr, faults)
}

/// A member of the simulator's pool (pchat-sim `[pool] servers = N`, docs/pool.md):
/// [`build_core_with_faults`] on the SQLite file `[store] path` that every member of
/// the pool opens, with `[pool] server_id` naming this member. Its store rings `bell`
/// (shared by the members) when it commits log entries, and the host wakes the core
/// on the others' rings (`net::pool_wake`), as PostgreSQL's NOTIFY does. Errors:
/// store failures (including an armed store fault).
pub fn build_pool_member(
    mut cfg: config::Config,
    clock: Arc<dyn clock::Clock>,
    seed: u64,
    local_addr: &str,
    faults: fault::Faults,
    bell: store::CommitBell,
) -> Result<core::Core, store::StoreError> {
    cfg.pool.shared_sqlite = true;
    let store = store::SqliteStore::open(&cfg.store.path)?;
    let hook = store::BellHook::new(faults.clone(), bell.clone());
    let store = store::HookedStore::new(Box::new(store), hook);
    let mut core = core::Core::new(cfg, Box::new(store), clock, seed, local_addr, faults)?;
    core.set_pool_bell(bell);
    Ok(core)
}

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` (`EnvFilter` syntax), else
/// by `default_filter` (e.g. `"info"`). For the binaries (`pchat-server`, `pchat-sim`);
/// call once, at start.
pub fn init_tracing(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
}
