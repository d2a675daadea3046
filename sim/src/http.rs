//! A minimal HTTP/1.1 client (hyper) over any stream - tokio TCP on loopback in tests,
//! turmoil TCP in the simulator - for the web services (server `web`, docs/web.md).
//! One request per connection.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// An HTTP answer: status, headers (lower-case names, in order) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `error` code of an error body (empty when absent).
    pub fn error_code(&self) -> String {
        self.json()
            .get("error")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP request to send.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// Method, e.g. `PUT`.
    pub method: String,
    /// Path and query, e.g. `/v1/rooms?x=1`.
    pub path: String,
    /// `Authorization: Bearer` token (none when empty).
    pub bearer: String,
    /// `Content-Type` (none when empty).
    pub content_type: String,
    /// Body.
    pub body: Bytes,
}

/// Sends `req` on `stream` (a fresh connection to `host`) and reads the answer.
/// Errors: the connection or the HTTP exchange failed (as text).
pub async fn send<S>(stream: S, host: &str, req: HttpRequest) -> Result<HttpResponse, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut b = hyper::Request::builder()
        .method(req.method.as_str())
        .uri(req.path.as_str())
        .header("host", host);
    if !req.bearer.is_empty() {
        b = b.header("authorization", format!("Bearer {}", req.bearer));
    }
    if !req.content_type.is_empty() {
        b = b.header("content-type", req.content_type.as_str());
    }
    let request = b
        .body(Full::new(req.body))
        .map_err(|e| format!("bad request: {e}"))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| format!("http request: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("http body: {e}"))?
        .to_bytes();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Percent-encodes a path segment (everything but unreserved characters; RFC 3986
/// section 2.3): the server's own encoder.
pub use pchat_server::web::api::percent_encode as encode_segment;
