//! The `http` scenario action (issue 6): a client uses the web services - file upload
//! and download, room listing, creation and update - with tokens it gets over its SIP
//! dialog (`cmd:gethttptok`, `cmd:getfutok`, `cmd:getfdtok`, recorded in the
//! transcript). Self-contained: the step's `http` table ([`HttpStep`]) carries every
//! key of its own; the common keys `room` and `expect` keep their meaning.
//!
//! ```toml
//! [[step]]
//! client = "user1"
//! action = "http"
//! room = "Design"
//! http = { op = "upload", file = "report.txt", content = "Q3 numbers", again_status = 409 }
//! expect = { status = 201, contains = ["\"size\":10"] }
//! ```
//! `expect.status` is the HTTP status (default 201 for upload and create-room, else
//! 200); `expect.code` the XCCOS code of the file-token command (default 200; when it
//! is not 200 the step ends there); `expect.contains`/`excludes` apply to the HTTP body.
//!
//! The HTTP connection is opened by the runner's connector ([`HTTP_CONNECT`]): turmoil
//! TCP to the simulated server's HTTP port, or in a live run (`pchat-sim run --target
//! HOST:PORT --http HOST:PORT`) real TCP to the server's `[http] listen`.

use crate::client::Client;
use crate::expect::{check_contains, room_uri_of, StepResult};
use crate::http::{encode_segment, send, HttpRequest};
use crate::step::Expect;
use bytes::Bytes;
use pchat_server::cmd::{CmdKind, GetFileToken, GetHttpToken};
use pchat_server::xccos::RplData;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// A stream the HTTP client can use.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Opens a connection to the server's web services; returns the stream and the
/// `Host` header value.
pub type HttpConnector = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = std::io::Result<(Box<dyn Io>, String)>> + Send>>
        + Send
        + Sync,
>;

tokio::task_local! {
    /// The connector of the client task running the step (set by the runner).
    pub static HTTP_CONNECT: HttpConnector;
}

pub use crate::step::{HttpOp, HttpStep};

async fn token_cmd(client: &mut Client, kind: CmdKind) -> Result<(u16, String), String> {
    let (resp, rpl) = client.command(kind).await.map_err(|e| e.0)?;
    if resp.code != 200 {
        return Err(format!("token command got SIP {}", resp.code));
    }
    let rpl = rpl.ok_or("no reply to the token command")?;
    let code = rpl.resp.as_ref().map_or(500, |r| r.code);
    let token = match rpl.data {
        RplData::Token { token, .. } => token,
        _ => String::new(),
    };
    Ok((code, token))
}

/// Runs an `http` step (see the module docs): the request `h` about the room named
/// `room` (if any), checked against `e`.
pub async fn exec(client: &mut Client, h: &HttpStep, room: Option<&str>, e: &Expect) -> StepResult {
    let room_uri = room
        .map(|n| room_uri_of(&client.domain, n))
        .unwrap_or_default();
    let guid = room
        .map(|n| pchat_server::ids::room_guid(&client.domain, n))
        .unwrap_or_default();
    let (code, bearer) = token_cmd(client, CmdKind::GetHttpToken(GetHttpToken)).await?;
    if code != 200 {
        return Err(format!("cmd:gethttptok answered {code}"));
    }
    let token = match h.op {
        HttpOp::Upload | HttpOp::Download => {
            let upload = h.op == HttpOp::Upload;
            match file_token(client, h, &room_uri, upload, e).await? {
                Ok(t) => t,
                Err(refused) => return Ok(refused),
            }
        }
        _ => String::new(),
    };
    let req = request(h, bearer, &guid, &token);
    send_and_check(req, h, e).await
}

/// The HTTP request of step `h` with `bearer`, about the room `guid`; uploads and
/// downloads carry the file `token`.
fn request(h: &HttpStep, bearer: String, guid: &str, token: &str) -> HttpRequest {
    let file = h.file.clone().unwrap_or_default();
    let mut req = HttpRequest {
        bearer,
        ..HttpRequest::default()
    };
    match h.op {
        HttpOp::Upload | HttpOp::Download => {
            req.path = format!(
                "/v1/rooms/{guid}/files/{}?token={token}",
                encode_segment(&file)
            );
            if h.op == HttpOp::Upload {
                req.method = "PUT".into();
                req.content_type = "application/octet-stream".into();
                req.body = match h.size {
                    Some(n) => Bytes::from(vec![b'x'; n]),
                    None => Bytes::from(h.content.clone().unwrap_or_default()),
                };
            } else {
                req.method = "GET".into();
            }
        }
        HttpOp::ListRooms => {
            req.method = "GET".into();
            req.path = "/v1/rooms".into();
        }
        HttpOp::CreateRoom | HttpOp::UpdateRoom => {
            req.method = if h.op == HttpOp::CreateRoom {
                "POST"
            } else {
                "PATCH"
            }
            .into();
            req.path = if h.op == HttpOp::CreateRoom {
                "/v1/rooms".into()
            } else {
                format!("/v1/rooms/{guid}")
            };
            req.content_type = "application/json".into();
            req.body = Bytes::from(h.json.clone().unwrap_or_default());
        }
    }
    req
}

/// Sends `req` and checks the answer against `e` (status - default 201 for upload and
/// create-room, else 200 - and body) and, with `again_status`, the status of the same
/// request sent once more.
async fn send_and_check(req: HttpRequest, h: &HttpStep, e: &Expect) -> StepResult {
    let default = match h.op {
        HttpOp::Upload | HttpOp::CreateRoom => 201,
        _ => 200,
    };
    let resp = call(req.clone()).await?;
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    let want = e.status.unwrap_or(default);
    if resp.status != want {
        return Err(format!("expected HTTP {want}, got {}: {body}", resp.status));
    }
    check_contains(&body, e).map_err(|m| format!("HTTP body: {m}"))?;
    if let Some(again) = h.again_status {
        let second = call(req.clone()).await?;
        if second.status != again {
            return Err(format!(
                "expected HTTP {again} on the repeated request, got {}: {}",
                second.status,
                String::from_utf8_lossy(&second.body)
            ));
        }
    }
    Ok(format!(
        "HTTP {} {} -> {}",
        req.method, req.path, resp.status
    ))
}

/// The file token of an upload/download step (`token`: fresh, none, `room:<Name>` or a
/// literal). Ok(Err(summary)): the token command was refused as expected (the step ends
/// there).
async fn file_token(
    client: &mut Client,
    h: &HttpStep,
    room_uri: &str,
    upload: bool,
    e: &Expect,
) -> Result<Result<String, String>, String> {
    let file = h.file.clone().unwrap_or_default();
    let chan_uri = match h.token.as_deref() {
        None | Some("fresh") => room_uri.to_string(),
        Some("none") => return Ok(Ok(String::new())),
        Some(other) if other.starts_with("captured:") => {
            let victim = &other["captured:".len()..];
            return captured_token(client, victim).map(Ok);
        }
        Some(other) => match other.strip_prefix("room:") {
            Some(other_room) => room_uri_of(&client.domain, other_room),
            None => return Ok(Ok(other.to_string())),
        },
    };
    let fresh = matches!(h.token.as_deref(), None | Some("fresh"));
    let kind = CmdKind::GetFileToken(GetFileToken {
        upload,
        chan_uri,
        file,
    });
    let (code, token) = token_cmd(client, kind).await?;
    if !fresh {
        return Ok(Ok(token));
    }
    let want = e.code.unwrap_or(200);
    if code != want {
        return Err(format!("expected token command code {want}, got {code}"));
    }
    if code != 200 {
        return Ok(Err(format!("token refused with {code}")));
    }
    Ok(Ok(token))
}

/// The last file token (reply to `cmd:getfutok`/`cmd:getfdtok`) the server sent to
/// client `victim` in this run, as anyone reading its unencrypted SIP would see it
/// (`token = "captured:NAME"`: spoof scenarios). Errors: none was sent.
fn captured_token(client: &Client, victim: &str) -> Result<String, String> {
    let entries = client.transcript().entries();
    entries
        .iter()
        .rev()
        .filter(|e| e.from == "server" && e.to == victim)
        .find_map(|e| {
            let text = String::from_utf8_lossy(&e.bytes);
            let at = text.find("rpl:getf")?;
            let rest = &text[at..];
            let start = rest.find("<token token=\"")? + "<token token=\"".len();
            let end = rest[start..].find('"')?;
            Some(rest[start..start + end].to_string())
        })
        .ok_or_else(|| format!("no file token sent to {victim:?} to capture"))
}

async fn call(req: HttpRequest) -> Result<crate::http::HttpResponse, String> {
    let connect = HTTP_CONNECT.try_with(|c| c.clone()).map_err(|_| {
        "no HTTP target: live runs need --http HOST:PORT (the server's [http] listen)".to_string()
    })?;
    let (stream, host) = connect()
        .await
        .map_err(|e| format!("cannot connect to the web services: {e}"))?;
    send(stream, &host, req).await
}
