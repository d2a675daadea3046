//! Shared by `web_pages.rs` and `web_browser.rs`: a real pchat-server (in process,
//! `host::serve_full` on loopback TCP, ephemeral ports) with users, a category, a
//! room with seeded history and a stored file; a minimal HTTP/1.1 client.
#![allow(dead_code)]

use pchat_server::clock::TokioClock;
use pchat_server::config::Config;
use pchat_server::files::FileStore;
use pchat_server::loopback::Loopback;
use pchat_server::store::{FileRecord, NewMessage, SqliteStore, Store};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const DOMAIN: &str = "contoso.com";
/// Messages seeded into "Design" (more than one history page of 20).
pub const SEEDED: usize = 25;
/// The file seeded into "Design".
pub const FILE_NAME: &str = "plan (v2).txt";
pub const FILE_BYTES: &[u8] = b"the layout plan\n";

pub fn config(dir: &Path, public_url: Option<&str>) -> String {
    let public = public_url
        .map(|u| format!("public_url = \"{u}\"\n"))
        .unwrap_or_default();
    let dirs = pchat_server::loopback::test_dirs_toml(dir);
    format!(
        r#"domain = "{DOMAIN}"
{dirs}{public}[auth]
mode = "digest"
max_failures = 4
[[user]]
uri = "sip:user1@{DOMAIN}"
password = "pw-one"
[[user]]
uri = "sip:user2@{DOMAIN}"
password = "pw-two"
[[user]]
uri = "sip:user3@{DOMAIN}"
password = "pw-three"
[[category]]
name = "Product"
creators = ["sip:user1@{DOMAIN}"]
[[room]]
name = "Design"
category = "Product"
description = "Design discussions"
topic = "Q3 layout"
privacy = "closed"
members = ["sip:user1@{DOMAIN}", "sip:user2@{DOMAIN}"]
managers = ["sip:user1@{DOMAIN}"]
"#
    )
}

pub fn guid(name: &str) -> String {
    pchat_server::ids::room_guid(DOMAIN, name)
}

/// Writes history and a file into the store of `cfg` (rooms created by a first core).
fn seed(cfg: &Config, dir: &Path) {
    let clock = Arc::new(TokioClock::starting_at(1_700_000_000_000));
    drop(pchat_server::build_core(cfg.clone(), clock, 1, "127.0.0.1:5060").expect("core"));
    let mut store = SqliteStore::open(&cfg.store.path).expect("store");
    let room = guid("Design");
    for i in 1..=SEEDED {
        let author = if i % 2 == 0 { "user2" } else { "user1" };
        let text = if i == 7 {
            "the banana milestone".to_string()
        } else {
            format!("message number {i}")
        };
        store
            .append_message(&NewMessage {
                room_guid: room.clone(),
                author: format!("sip:{author}@{DOMAIN}"),
                ts_ms: 1_700_000_000_000 + i as i64 * 60_000,
                text,
                client_msgid: None,
            })
            .expect("seed message");
    }
    let files = FileStore::new(dir.join("files"));
    let staged = files.stage(FILE_BYTES).expect("stage");
    files.adopt(&staged).expect("adopt");
    let text = format!(
        "[file] {FILE_NAME} ({} bytes, sha256 {})",
        staged.size, staged.sha256
    );
    store
        .put_file(&FileRecord {
            room_guid: room.clone(),
            name: FILE_NAME.into(),
            sha256: staged.sha256.clone(),
            size: staged.size,
            uploader: format!("sip:user1@{DOMAIN}"),
            ts_ms: 1_700_000_000_000 + 30 * 60_000,
        })
        .expect("file record");
    store
        .append_message(&NewMessage {
            room_guid: room,
            author: format!("sip:user1@{DOMAIN}"),
            ts_ms: 1_700_000_000_000 + 30 * 60_000,
            text,
            client_msgid: None,
        })
        .expect("announcement");
}

pub struct Server {
    /// `127.0.0.1:port` of the web service.
    pub http: String,
    pub dir: tempfile::TempDir,
    server: Loopback,
}

/// Starts a server (see the module docs); `public_url` sets `[http] public_url`.
pub async fn start(public_url: Option<&str>) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config(dir.path(), public_url);
    start_in(dir, &text).await
}

/// Starts a server ([`start`], no public URL) and signs user1 and user2 in: the server
/// and their session cookies.
pub async fn start_signed_in() -> (Server, String, String) {
    let s = start(None).await;
    let user1 = sign_in(&s.http, "user1", "pw-one").await;
    let user2 = sign_in(&s.http, "user2", "pw-two").await;
    (s, user1, user2)
}

/// Starts a server serving HTTPS (`[http] tls = true`) with a fresh self-signed
/// certificate for `localhost` as `[sip] tls_cert`/`tls_key`; returns it too (DER).
pub async fn start_https() -> (Server, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let text = config(dir.path(), None).replace("[http]\n", "[http]\ntls = true\n")
        + &format!("[sip]\ntls_cert = {:?}\ntls_key = {:?}\n", cert, key);
    (start_in(dir, &text).await, ck.cert.der().to_vec())
}

/// Starts a server from config `text` with its data in `dir`.
pub async fn start_in(dir: tempfile::TempDir, text: &str) -> Server {
    let cfg = Config::from_toml(text, Path::new("web.toml")).expect("config");
    seed(&cfg, dir.path());
    let server = Loopback::start(cfg, 1_700_100_000_000, 7)
        .await
        .expect("server");
    Server {
        http: server.http.clone(),
        dir,
        server,
    }
}

impl Server {
    /// Stops the server; returns the compliance events exported by then.
    pub async fn stop_and_export(self) -> Vec<pchat_server::compliance::Event> {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        self.server.stop().await.expect("server task");
        pchat_server::compliance::adapter::read_output(
            &self.dir.path().join("out"),
            &[&pchat_server::compliance::jsonl::Jsonl],
        )
        .expect("compliance output")
        .into_iter()
        .map(|e| e.event)
        .collect()
    }

    pub async fn stop(self) {
        let _ = self.server.stop().await;
    }
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value the response sets for cookie `name`, if it sets it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.all("set-cookie").into_iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }

    /// The whole `Set-Cookie` line of the session cookie.
    pub fn session_set_cookie(&self) -> String {
        self.all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("pchat_session="))
            .expect("session cookie")
            .to_string()
    }

    /// `(cookie jar, body)` of user1's sign-in (password `pw-one`) with this sign-in
    /// form (a `GET /` answer).
    pub fn user1_sign_in(&self) -> (String, String) {
        let token = self.cookie("pchat_signin").unwrap();
        let body = format!("csrf={}&username=user1&password=pw-one", self.csrf());
        (format!("pchat_signin={token}"), body)
    }

    /// The first form's `csrf` field value on the page.
    pub fn csrf(&self) -> String {
        let re = regex::Regex::new(r#"name="csrf" value="([^"]*)""#).unwrap();
        re.captures(&self.body)
            .map(|c| c[1].to_string())
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body))
    }
}

/// A form POST of `form` to `path` ([`http`]).
pub async fn post(addr: &str, path: &str, cookie: &str, form: &str) -> Resp {
    http(addr, "POST", path, cookie, Some(form)).await
}

/// One request over a fresh connection (`Connection: close`); `form` is an
/// `application/x-www-form-urlencoded` body for POST.
pub async fn http(addr: &str, method: &str, path: &str, cookie: &str, form: Option<&str>) -> Resp {
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    request(s, addr, method, path, cookie, form).await
}

/// [`http`] over TLS, trusting only `cert` (DER, issued for `localhost`).
pub async fn https(
    addr: &str,
    cert: &[u8],
    method: &str,
    path: &str,
    cookie: &str,
    form: Option<&str>,
) -> Resp {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let s = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    request(s, addr, method, path, cookie, form).await
}

/// One request on stream `s` (see [`http`]).
pub async fn request<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    addr: &str,
    method: &str,
    path: &str,
    cookie: &str,
    form: Option<&str>,
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !cookie.is_empty() {
        req.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub use pchat_server::web::api::percent_encode as enc;

/// Signs `user` in through the form; returns the session cookie (`pchat_session=...`).
pub async fn sign_in(addr: &str, user: &str, password: &str) -> String {
    let form = http(addr, "GET", "/", "", None).await;
    let token = form.cookie("pchat_signin").expect("sign-in cookie");
    let body = format!(
        "csrf={}&username={user}&password={}",
        form.csrf(),
        enc(password)
    );
    let r = http(
        addr,
        "POST",
        "/signin",
        &format!("pchat_signin={token}"),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 303, "sign-in of {user}: {r:?}");
    format!(
        "pchat_session={}",
        r.cookie("pchat_session").expect("session cookie")
    )
}
