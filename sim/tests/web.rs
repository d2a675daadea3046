//! The web services through a real HTTP client on loopback (issue 6): the real server
//! (`host::serve_full` on tokio TCP), SIP clients that get tokens over XCCOS, hyper as
//! the HTTP client. Every bad-input case gets its specific 4xx with a JSON error body
//! and changes nothing (store, file store, room checked afterwards); file transfers
//! show up as FILEUPLOAD/FILEDOWNLOAD in the compliance adapter's output.

use bytes::Bytes;
use pchat_server::cmd::{CmdKind, GetFileToken, GetHttpToken, Join};
use pchat_server::compliance::adapter::read_output;
use pchat_server::compliance::jsonl::Jsonl;
use pchat_server::compliance::EventKind;
use pchat_server::config::Config;
use pchat_server::files::FileStore;
use pchat_server::loopback::Loopback;
use pchat_server::store::{SqliteStore, Store};
use pchat_server::xccos::RplData;
use pchat_sim::client::Client;
use pchat_sim::http::{encode_segment, send, HttpRequest, HttpResponse};
use pchat_sim::transcript::Transcript;
use std::path::Path;
use std::time::Duration;

const DOMAIN: &str = "contoso.com";

fn config(dir: &Path) -> String {
    let dirs = pchat_server::loopback::test_dirs_toml(dir);
    format!(
        r#"domain = "{DOMAIN}"
{dirs}max_file_bytes = 64
file_token_ttl_ms = 2000
[[category]]
name = "Default"
creators = ["sip:user1@{DOMAIN}"]
[[category]]
name = "NoFiles"
file_upload = false
[[room]]
name = "Design"
privacy = "open"
members = ["sip:user1@{DOMAIN}", "sip:user2@{DOMAIN}"]
managers = ["sip:user1@{DOMAIN}"]
[[room]]
name = "Lobby"
privacy = "open"
[[room]]
name = "Quiet"
privacy = "open"
category = "NoFiles"
"#
    )
}

/// The server of [`config`] on loopback.
struct Server(Loopback);

async fn start(dir: &Path) -> Server {
    let cfg = Config::from_toml(&config(dir), Path::new("web.toml")).expect("config");
    Server(Loopback::start(cfg, 1_700_000_000_000, 7).await.unwrap())
}

impl Server {
    async fn stop(self) {
        let _ = self.0.stop().await;
    }

    async fn call(&self, req: HttpRequest) -> HttpResponse {
        let stream = tokio::net::TcpStream::connect(&self.0.http).await.unwrap();
        send(stream, &self.0.http, req)
            .await
            .expect("http exchange")
    }

    async fn user(&self, name: &str, seed: u64) -> Client {
        let stream = tokio::net::TcpStream::connect(&self.0.sip).await.unwrap();
        let local = stream.local_addr().unwrap().to_string();
        let uri = format!("sip:{name}@{DOMAIN}");
        let mut c = Client::start(name, &uri, stream, &local, seed, Transcript::default());
        assert_eq!(c.subscribe_provisioning().await.unwrap().code, 200);
        let pool = c.pool_uri.clone();
        assert_eq!(c.invite(&pool).await.unwrap().code, 200);
        c
    }
}

/// A server in a fresh directory with user1 and user2 signed in (client seeds `seed`
/// and `seed + 1`).
async fn two_users(seed: u64) -> (tempfile::TempDir, Server, Client, Client) {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let u1 = srv.user("user1", seed).await;
    let u2 = srv.user("user2", seed + 1).await;
    (dir, srv, u1, u2)
}

fn room_uri(name: &str) -> (String, String) {
    let guid = pchat_server::ids::room_guid(DOMAIN, name);
    (pchat_server::ids::room_uri(DOMAIN, &guid), guid)
}

/// Sends a token command; returns (XCCOS code, token).
async fn token(c: &mut Client, kind: CmdKind) -> (u16, String) {
    let (resp, rpl) = c.command(kind).await.unwrap();
    assert_eq!(resp.code, 200);
    let rpl = rpl.expect("reply");
    let code = rpl.resp.map(|r| r.code).unwrap_or(0);
    let tok = match rpl.data {
        RplData::Token { token, .. } => token,
        _ => String::new(),
    };
    (code, tok)
}

async fn bearer(c: &mut Client) -> String {
    let (code, t) = token(c, CmdKind::GetHttpToken(GetHttpToken)).await;
    assert_eq!(code, 200);
    t
}

async fn file_token(c: &mut Client, upload: bool, room: &str, file: &str) -> (u16, String) {
    token(
        c,
        CmdKind::GetFileToken(GetFileToken {
            upload,
            chan_uri: room_uri(room).0,
            file: file.to_string(),
        }),
    )
    .await
}

fn put(bearer: &str, guid: &str, name: &str, token: &str, body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: "PUT".into(),
        path: format!(
            "/v1/rooms/{guid}/files/{}?token={token}",
            encode_segment(name)
        ),
        bearer: bearer.into(),
        content_type: "application/octet-stream".into(),
        body: Bytes::copy_from_slice(body),
    }
}

fn get(bearer: &str, guid: &str, name: &str, token: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: format!(
            "/v1/rooms/{guid}/files/{}?token={token}",
            encode_segment(name)
        ),
        bearer: bearer.into(),
        ..HttpRequest::default()
    }
}

fn assert_err(r: &HttpResponse, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (status, code),
        "body: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
}

fn file_rows(dir: &Path, room: &str, name: &str) -> bool {
    let mut s = SqliteStore::open(&dir.join("store.db")).unwrap();
    s.get_file(&room_uri(room).1, name).unwrap().is_some()
}

#[tokio::test]
async fn upload_download_and_every_bad_input() {
    let (dir, srv, mut u1, mut u2) = two_users(11).await;
    let (design_uri, design) = room_uri("Design");
    let (_, lobby) = room_uri("Lobby");
    let (_, quiet) = room_uri("Quiet");
    u2.command(CmdKind::Join(Join {
        chan: pchat_server::xccos::ChanRef::Uri(design_uri.clone()),
    }))
    .await
    .unwrap();
    let b1 = bearer(&mut u1).await;
    let b2 = bearer(&mut u2).await;
    let files = FileStore::new(dir.path().join("files"));

    // Bad input on upload: each its own 4xx, nothing stored, token left unused.
    let (code, t) = file_token(&mut u1, true, "Design", "report.txt").await;
    assert_eq!(code, 200);
    let body = b"quarterly numbers";
    assert_err(
        &srv.call(put("", &design, "report.txt", &t, body)).await,
        401,
        "unauthorized",
    );
    assert_err(
        &srv.call(put("nope", &design, "report.txt", &t, body)).await,
        401,
        "unauthorized",
    );
    assert_err(
        &srv.call(put(&b1, &design, "report.txt", "wrong", body))
            .await,
        403,
        "bad_token",
    );
    assert_err(
        &srv.call(put(&b1, &lobby, "report.txt", &t, body)).await,
        403,
        "token_wrong_room",
    );
    assert_err(
        &srv.call(put(&b2, &design, "report.txt", &t, body)).await,
        403,
        "token_wrong_user",
    );
    assert_err(
        &srv.call(put(&b1, &design, "other.txt", &t, body)).await,
        403,
        "token_wrong_file",
    );
    for bad in ["../report.txt", "a/b", "a\\b", ".."] {
        assert_err(
            &srv.call(put(&b1, &design, bad, &t, body)).await,
            400,
            "bad_file_name",
        );
    }
    assert_err(
        &srv.call(put(&b1, &design, "report.txt", &t, &[7u8; 65]))
            .await,
        413,
        "file_too_large",
    );
    assert_eq!(files.count(), 0, "nothing stored by refused uploads");
    assert!(!file_rows(dir.path(), "Design", "report.txt"));
    // XCCOS refusals: bad name, upload off in the category.
    assert_eq!(file_token(&mut u1, true, "Design", "../x").await.0, 400);
    assert_eq!(file_token(&mut u1, true, "Quiet", "x.txt").await.0, 403);
    assert_eq!(
        file_token(&mut u1, false, "Design", "none.txt").await.0,
        404
    );
    let _ = quiet;

    // The upload itself: 201, stored once, announced in the room.
    let ok = srv.call(put(&b1, &design, "report.txt", &t, body)).await;
    assert_eq!(ok.status, 201, "{}", String::from_utf8_lossy(&ok.body));
    let info = ok.json();
    assert_eq!(info["name"], "report.txt");
    assert_eq!(info["size"], body.len() as u64);
    assert_eq!(info["uploader"], "sip:user1@contoso.com");
    let sha = info["sha256"].as_str().unwrap().to_string();
    assert_eq!(files.get(&sha).unwrap(), body);
    assert!(file_rows(dir.path(), "Design", "report.txt"));
    let relayed = u2
        .wait_for("file announcement", |i| {
            format!("{i:?}").contains("[file] report.txt")
        })
        .await;
    assert!(relayed.is_ok(), "user2 in the room sees the announcement");
    // Reuse: 409.
    assert_err(
        &srv.call(put(&b1, &design, "report.txt", &t, body)).await,
        409,
        "token_used",
    );

    // Download: an upload token does not download; a download token does, once.
    assert_err(
        &srv.call(get(&b1, &design, "report.txt", &t)).await,
        403,
        "token_wrong_direction",
    );
    let (code, d) = file_token(&mut u2, false, "Design", "report.txt").await;
    assert_eq!(code, 200);
    let got = srv.call(get(&b2, &design, "report.txt", &d)).await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.body[..], body);
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename*=UTF-8''report.txt")
    );
    assert_err(
        &srv.call(get(&b2, &design, "report.txt", &d)).await,
        409,
        "token_used",
    );

    // Expiry (file_token_ttl_ms = 2000): 410, and the file is not served.
    let (_, late) = file_token(&mut u2, false, "Design", "report.txt").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_err(
        &srv.call(get(&b2, &design, "report.txt", &late)).await,
        410,
        "token_expired",
    );

    // The bearer dies with the dialog.
    assert_eq!(u1.bye().await.unwrap().code, 200);
    assert_err(
        &srv.call(HttpRequest {
            method: "GET".into(),
            path: "/v1/rooms".into(),
            bearer: b1.clone(),
            ..HttpRequest::default()
        })
        .await,
        401,
        "unauthorized",
    );

    // Compliance: one FILEUPLOAD and one FILEDOWNLOAD in the adapter output, and the
    // compliance file store holds a copy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    srv.stop().await;
    let out = read_output(&dir.path().join("out"), &[&Jsonl]).unwrap();
    let kinds = |k: EventKind| {
        out.iter()
            .filter(|e| e.event.kind == k && e.event.content == "report.txt")
            .count()
    };
    assert_eq!(kinds(EventKind::FileUpload), 1, "{out:#?}");
    assert_eq!(kinds(EventKind::FileDownload), 1, "{out:#?}");
    assert_eq!(
        FileStore::new(dir.path().join("compliance-files"))
            .get(&sha)
            .unwrap(),
        body
    );
}

#[tokio::test]
async fn room_management_and_openapi() {
    let (dir, srv, mut u1, mut u2) = two_users(21).await;
    let b1 = bearer(&mut u1).await;
    let b2 = bearer(&mut u2).await;
    let json = |method: &str, path: &str, bearer: &str, body: &str| HttpRequest {
        method: method.into(),
        path: path.into(),
        bearer: bearer.into(),
        content_type: "application/json".into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
    };

    let mine = srv.call(json("GET", "/v1/rooms", &b2, "")).await;
    assert_eq!(mine.status, 200);
    let names: Vec<_> = mine.json()["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Design"]);

    // Create: malformed JSON, unknown field, not a creator, then success, then conflict.
    let before = SqliteStore::open(&dir.path().join("store.db"))
        .unwrap()
        .load_rooms()
        .unwrap();
    for (method, path, bearer, body, status, code) in [
        ("POST", "/v1/rooms", &b1, "{\"name\": ", 400, "bad_json"),
        (
            "POST",
            "/v1/rooms",
            &b1,
            r#"{"name":"X","owner":"me"}"#,
            400,
            "bad_json",
        ),
        (
            "POST",
            "/v1/rooms",
            &b2,
            r#"{"name":"Ops"}"#,
            403,
            "forbidden",
        ),
    ] {
        let r = srv.call(json(method, path, bearer, body)).await;
        assert_err(&r, status, code);
    }
    let after_bad = SqliteStore::open(&dir.path().join("store.db"))
        .unwrap()
        .load_rooms()
        .unwrap();
    assert_eq!(before, after_bad, "refused creations change nothing");
    let created = srv
        .call(json(
            "POST",
            "/v1/rooms",
            &b1,
            r#"{"name":"Ops","topic":"pager","privacy":"closed","members":["sip:user2@contoso.com"]}"#,
        ))
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let room = created.json();
    assert_eq!(room["topic"], "pager");
    assert_eq!(room["manager"], true);
    let id = room["id"].as_str().unwrap().to_string();
    let path = format!("/v1/rooms/{id}");
    for (method, path, bearer, body, status, code) in [
        (
            "POST",
            "/v1/rooms".into(),
            &b1,
            r#"{"name":"ops"}"#,
            409,
            "conflict",
        ),
        // Update: managers only; a member gets 403, an unknown room 404.
        (
            "PATCH",
            path.clone(),
            &b2,
            r#"{"topic":"mine"}"#,
            403,
            "forbidden",
        ),
        (
            "PATCH",
            "/v1/rooms/nope".into(),
            &b1,
            r#"{"topic":"x"}"#,
            404,
            "no_such_room",
        ),
        (
            "PATCH",
            path.clone(),
            &b1,
            r#"{"topic": 5}"#,
            400,
            "bad_json",
        ),
    ] {
        let r = srv.call(json(method, &path, bearer, body)).await;
        assert_err(&r, status, code);
    }
    let upd = srv
        .call(json(
            "PATCH",
            &path,
            &b1,
            r#"{"topic":"on call","description":"ops room","remove_members":["sip:user2@contoso.com"]}"#,
        ))
        .await;
    assert_eq!(upd.status, 200, "{}", String::from_utf8_lossy(&upd.body));
    assert_eq!(upd.json()["topic"], "on call");
    assert_eq!(
        upd.json()["members"],
        serde_json::json!(["sip:user1@contoso.com"])
    );
    let topic_now = || {
        SqliteStore::open(&dir.path().join("store.db"))
            .unwrap()
            .load_rooms()
            .unwrap()
            .into_iter()
            .find(|r| r.attrs.name == "Ops")
            .map(|r| r.attrs.topic)
    };
    assert_eq!(topic_now().as_deref(), Some("on call"));

    // Routing errors are JSON too.
    let raw = |method: &str, path: &str| HttpRequest {
        method: method.into(),
        path: path.into(),
        bearer: b1.clone(),
        ..HttpRequest::default()
    };
    assert_err(
        &srv.call(raw("DELETE", &path)).await,
        405,
        "method_not_allowed",
    );
    assert_err(&srv.call(raw("GET", "/v2/nothing")).await, 404, "not_found");
    assert_err(
        &srv.call(raw("GET", &format!("{path}/files/%FF%FE?token=x")))
            .await,
        400,
        "bad_path",
    );
    // A query string that does not parse: JSON 400, before the bearer is looked at.
    let no_bearer = HttpRequest {
        method: "GET".into(),
        path: format!("{path}/files/a.txt?token=a&token=b"),
        ..HttpRequest::default()
    };
    assert_err(&srv.call(no_bearer).await, 400, "bad_query");

    // The served OpenAPI document is the committed one.
    let doc = srv
        .call(HttpRequest {
            method: "GET".into(),
            path: "/openapi.json".into(),
            ..HttpRequest::default()
        })
        .await;
    assert_eq!(doc.status, 200);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json"))
            .unwrap_or_default();
    if std::env::var_os("PCHAT_UPDATE_OPENAPI").is_some() {
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json"),
            &doc.body,
        )
        .unwrap();
    } else {
        let served = String::from_utf8_lossy(&doc.body);
        let first_diff = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b);
        assert!(
            committed == served,
            "docs/openapi.json differs from the served document (first differing line: {:?}); \
             rerun with PCHAT_UPDATE_OPENAPI=1 and review the diff",
            first_diff.map(|i| i + 1)
        );
    }
    srv.stop().await;
}
