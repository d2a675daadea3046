//! A whole server on ephemeral loopback ports inside the caller's tokio runtime: SIP on
//! `127.0.0.1:0`, the web services on another (when the configuration has `[http]`,
//! whose `listen` is replaced by the port taken), and the compliance worker when
//! `[compliance] enabled`. For the integration tests of both crates; the binary
//! (`main.rs`) and the simulator (`sim_setup.rs`) build their own.

use crate::clock::TokioClock;
use crate::config::Config;
use std::io;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server (see the module docs); stopped by [`Loopback::stop`] or when its
/// runtime ends.
pub struct Loopback {
    /// `127.0.0.1:port` of SIP over TCP.
    pub sip: String,
    /// `127.0.0.1:port` of the web services (the port is bound even without `[http]`).
    pub http: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Loopback {
    /// Binds the ports and starts serving `cfg` with a clock starting at `now_ms` (Unix
    /// milliseconds) and identifiers seeded by `seed`. Errors: a port could not be
    /// bound, or the store or compliance database did not open (their message).
    pub async fn start(mut cfg: Config, now_ms: i64, seed: u64) -> Result<Loopback, String> {
        let sip = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let sip_addr = sip.local_addr().map_err(|e| e.to_string())?.to_string();
        let http_addr = http.local_addr().map_err(|e| e.to_string())?.to_string();
        let http = match cfg.http.as_mut() {
            Some(h) => {
                h.listen = http_addr.clone();
                Some(http)
            }
            None => None,
        };
        let clock = Arc::new(TokioClock::starting_at(now_ms));
        let worker = crate::build_worker(&cfg, None).map_err(|e| e.to_string())?;
        let core = crate::build_core(cfg, clock, seed, &sip_addr).map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(crate::host::serve_full(
            sip,
            http,
            core,
            worker,
            shutdown,
            Default::default(),
        ));
        Ok(Loopback {
            sip: sip_addr,
            http: http_addr,
            stop: Some(stop),
            task,
        })
    }

    /// Stops the server (as on SIGTERM: the compliance worker's last run included) and
    /// waits for it; returns how serving ended. Errors: the server's, or its task's panic.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await.map_err(io::Error::other)?
    }
}

/// The `[store]`, `[compliance]` and `[http]` sections of a test server whose files all
/// live under `dir`: SQLite store `store.db`, jsonl compliance output every 50 ms into
/// `out/` (database `mgccomp.db`), web services on an ephemeral loopback port with the
/// file stores `files/` and `compliance-files/`. Ends inside `[http]`, so the caller
/// may append further `[http]` keys before its next section.
pub fn test_dirs_toml(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        r#"[store]
path = "{d}/store.db"
[compliance]
enabled = true
run_interval = "50ms"
adapter = "jsonl"
output_dir = "{d}/out"
path = "{d}/mgccomp.db"
[http]
listen = "127.0.0.1:0"
file_store = "{d}/files"
compliance_file_store = "{d}/compliance-files"
"#
    )
}
