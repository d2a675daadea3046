//! A throwaway PostgreSQL for tests and scripts: `initdb` into a temporary directory,
//! `postgres` on a free loopback port, stopped and deleted on drop.
//!
//! The binaries are looked up in `$PCHAT_PG_BIN`, then `/usr/lib/postgresql/*/bin`
//! (Debian), then `$PATH`. `initdb` refuses to run as root, so when this process is root
//! the cluster runs as the `postgres` user (else `nobody`) through `runuser`.
//!
//! [`TempPg::start_or_skip`] is what tests call: `None` (with the reason printed) when
//! the binaries are absent - except under `CI=true`, where a missing PostgreSQL is a
//! failure, so CI cannot pass by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running throwaway cluster (see the module docs). Dropping it stops the server
/// (`pg_ctl stop -m immediate`) and removes its directory.
pub struct TempPg {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, if any.
pub fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PCHAT_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort();
    if let Some(dir) = debian.into_iter().rev().find(|d| d.join("initdb").exists()) {
        return Some(dir);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").exists())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .map(|s| s.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl TempPg {
    /// Starts a cluster, or says why not: `Ok(None)` when the binaries are absent and
    /// `CI` is not `true` (the reason is printed to stderr with `test`'s name).
    /// Panics when the binaries are absent under `CI=true`, or when they are present
    /// but the cluster does not start (both are test failures).
    pub fn start_or_skip(test: &str) -> Option<TempPg> {
        let Some(bin) = find_bin() else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "{test}: PostgreSQL (initdb) not found and CI=true: install postgresql"
            );
            eprintln!("{test}: skipped: PostgreSQL (initdb) not found (set PCHAT_PG_BIN)");
            return None;
        };
        match TempPg::start(&bin) {
            Ok(pg) => Some(pg),
            Err(e) => panic!("{test}: PostgreSQL did not start: {e}"),
        }
    }

    /// Starts a cluster with the binaries in `bin`. Errors: a step failed (its output).
    pub fn start(bin: &Path) -> Result<TempPg, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pchat-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let run_as = if is_root() {
            let user = if user_exists("postgres") {
                "postgres"
            } else {
                "nobody"
            };
            let ok = Command::new("chown")
                .arg(user)
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("chown {user} {} failed", dir.display()));
            }
            Some(user.to_string())
        } else {
            None
        };
        let mut pg = TempPg {
            dir,
            bin: bin.to_path_buf(),
            run_as,
            port: 0,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "pchat".as_ref(),
                "--auth=trust".as_ref(),
                "--no-locale".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        pg.port = free_port().map_err(|e| e.to_string())?;
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            pg.port,
            pg.dir.display()
        );
        let log = pg.dir.join("log");
        pg.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                opts.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        )?;
        Ok(pg)
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates database `name` (letters, digits, `_`) and returns its URL
    /// (`postgresql://pchat@127.0.0.1:PORT/NAME`). Errors: the server refused.
    pub fn create_db(&self, name: &str) -> Result<String, String> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad database name {name:?}"));
        }
        let admin = format!("postgresql://pchat@127.0.0.1:{}/postgres", self.port);
        let sql = format!("CREATE DATABASE {name}");
        std::thread::spawn(move || {
            let mut c = ::postgres::Client::connect(&admin, ::postgres::NoTls)
                .map_err(|e| e.to_string())?;
            c.batch_execute(&sql).map_err(|e| e.to_string())
        })
        .join()
        .map_err(|_| "create database: thread panicked".to_string())??;
        Ok(format!("postgresql://pchat@127.0.0.1:{}/{name}", self.port))
    }
}

impl Drop for TempPg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "stop".as_ref(),
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
