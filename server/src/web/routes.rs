//! HTTP routes of the web services and their OpenAPI description ([`ApiDoc`]).
//!
//! | route | what |
//! |---|---|
//! | `PUT /v1/rooms/{room}/files/{name}?token=T` | upload (body: the bytes) -> 201 [`FileInfo`] |
//! | `GET /v1/rooms/{room}/files/{name}?token=T` | download -> 200 bytes |
//! | `GET /v1/rooms` | my rooms (member or manager) -> 200 [`RoomList`] |
//! | `POST /v1/rooms` | create a room ([`RoomCreate`]) -> 201 [`RoomView`] |
//! | `PATCH /v1/rooms/{room}` | update a room ([`RoomUpdate`]) -> 200 [`RoomView`] |
//! | `GET /openapi.json` | this API's OpenAPI 3.1 document |
//!
//! Every `/v1` route needs `Authorization: Bearer <token from cmd:gethttptok>`.
//! `{room}` is the room GUID (the last segment of its `ma-chan://` URI).

use super::api::{
    percent_encode, ApiError, FileInfo, HttpReply, HttpRequest, ReplyBody, RoomCreate, RoomList,
    RoomUpdate, RoomView,
};
use super::CoreHandle;
use crate::config::HttpConfig;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, put};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;

/// The OpenAPI document of the web services.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pchat web services",
        description = "File upload/download for rooms and room management (call-flows.md \
                       \"Web services\"). Every /v1 route needs `Authorization: Bearer <token>` \
                       with a token from the XCCOS command cmd:gethttptok. Errors are JSON \
                       ApiError bodies.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(upload, download, list_rooms, create_room, update_room),
    components(schemas(ApiError, FileInfo, RoomList, RoomView, RoomCreate, RoomUpdate))
)]
pub struct ApiDoc;

/// The OpenAPI document as served (pretty JSON, trailing newline).
pub fn openapi_json() -> String {
    let mut s = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[derive(Clone)]
struct AppState {
    core: CoreHandle,
    max_file_bytes: u64,
    /// The file store, where uploads are staged before the core's turn.
    files: crate::files::FileStore,
}

/// The JSON API's router (state: the core handle and the file size limit).
pub fn router(core: CoreHandle, cfg: &HttpConfig) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/v1/rooms", get(list_rooms).post(create_room))
        .route("/v1/rooms/{room}", patch(update_room))
        .route("/v1/rooms/{room}/files/{name}", put(upload).get(download))
        .fallback(|| async { reply(HttpReply::error(404, "not_found", "no such route")) })
        .method_not_allowed_fallback(|| async {
            reply(HttpReply::error(
                405,
                "method_not_allowed",
                "method not allowed on this route",
            ))
        })
        .with_state(AppState {
            core,
            max_file_bytes: cfg.max_file_bytes,
            files: crate::files::FileStore::new(&cfg.file_store),
        })
}

/// The `token` query parameter of the file routes.
#[derive(Debug, Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

/// `filename*` per RFC 6266 / RFC 8187: UTF-8, percent-encoded.
fn content_disposition(name: &str) -> String {
    format!("attachment; filename*=UTF-8''{}", percent_encode(name))
}

/// The core's reply as an HTTP response (JSON, or the file's bytes read now).
pub(crate) fn reply(r: HttpReply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match r.body {
        ReplyBody::Json(v) => (status, Json(v)).into_response(),
        ReplyBody::File { name, path } => {
            // Read here, after the core's turn and off its task (the core checked the
            // token, the rights and that the file exists, and recorded the event).
            let content = match std::fs::read(&path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("web service: reading {}: {e}", path.display());
                    return reply(HttpReply::error(500, "internal", e.to_string()));
                }
            };
            let mut resp = (status, content).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&content_disposition(&name)) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
    }
}

/// The path parameters, or 400 `bad_path`.
fn path_of<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Box<Response>> {
    path.map(|Path(p)| p)
        .map_err(|rej| error(400, "bad_path", rej.body_text()))
}

/// The file token of the query string, or 400 `bad_query` for one that does not parse
/// (e.g. `token=%ff`, a repeated or ill-encoded parameter): the documented JSON error,
/// before any bearer check.
fn token_of(query: Result<Query<TokenQuery>, QueryRejection>) -> Result<String, Box<Response>> {
    query
        .map(|Query(q)| q.token)
        .map_err(|rej| error(400, "bad_query", rej.body_text()))
}

/// What the file routes' request names: the room and file of the path, the file token
/// of the query string and the bearer token. Rejections, in this order: 400 `bad_path`,
/// 400 `bad_query` (before any bearer check: the core checks the bearer).
struct FileTarget {
    room: String,
    name: String,
    token: String,
    bearer: String,
}

impl<S: Send + Sync> FromRequestParts<S> for FileTarget {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let path = Path::<(String, String)>::from_request_parts(parts, state).await;
        let query = Query::<TokenQuery>::from_request_parts(parts, state).await;
        let (room, name) = path_of(path).map_err(|r| *r)?;
        let token = token_of(query).map_err(|r| *r)?;
        let bearer = bearer(&parts.headers);
        Ok(FileTarget {
            room,
            name,
            token,
            bearer,
        })
    }
}

/// The OpenAPI errors both file routes answer alike (the path, the query, the bearer and
/// the file token's single use and lifetime); each route lists its own 403 and 404.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // never built: it only describes responses in the OpenAPI document
enum FileTokenErrors {
    #[response(status = 400, description = "bad_file_name, bad_path, bad_query")]
    BadRequest(ApiError),
    #[response(status = 401, description = "unauthorized")]
    Unauthorized(ApiError),
    #[response(status = 409, description = "token_used")]
    TokenUsed(ApiError),
    #[response(status = 410, description = "token_expired")]
    TokenExpired(ApiError),
}

/// The OpenAPI errors both JSON-body routes answer alike (the bearer, the body's size);
/// each route lists its own 400, 403 and 404/409.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // never built: it only describes responses in the OpenAPI document
enum JsonBodyErrors {
    #[response(status = 401, description = "unauthorized")]
    Unauthorized(ApiError),
    #[response(status = 413, description = "too_large")]
    TooLarge(ApiError),
}

/// The JSON body, or 400 `bad_json`.
fn json_of<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Box<Response>> {
    body.map(|Json(b)| b)
        .map_err(|rej| error(400, "bad_json", rej.body_text()))
}

/// Asks the core `request` (unless extracting it already gave an error response) and
/// answers with its reply.
async fn ask(st: &AppState, request: Result<HttpRequest, Box<Response>>) -> Response {
    match request {
        Ok(r) => reply(st.core.call(r).await),
        Err(resp) => *resp,
    }
}

/// The JSON error `code` with `status` (boxed: an extractor's early answer).
fn error(status: u16, code: &str, message: String) -> Box<Response> {
    Box::new(reply(HttpReply::error(status, code, message)))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

/// Upload a file to a room.
#[utoipa::path(put, path = "/v1/rooms/{room}/files/{name}",
    params(
        ("room" = String, Path, description = "room GUID"),
        ("name" = String, Path, description = "file name (no path separators, no '..')"),
        ("token" = String, Query, description = "upload token from cmd:getfutok")
    ),
    request_body(content = String, content_type = "application/octet-stream",
        description = "the file's bytes, at most [http] max_file_bytes"),
    responses(
        (status = 201, description = "stored and announced in the room", body = FileInfo),
        FileTokenErrors,
        (status = 403, description = "bad_token, token_wrong_*, forbidden, upload_not_allowed", body = ApiError),
        (status = 404, description = "no_such_room", body = ApiError),
        (status = 413, description = "file_too_large", body = ApiError),
        (status = 503, description = "busy", body = ApiError)
    )
)]
async fn upload(State(st): State<AppState>, file: FileTarget, req: Request) -> Response {
    let too_large = || {
        reply(HttpReply::error(
            413,
            "file_too_large",
            format!("the file exceeds max_file_bytes {}", st.max_file_bytes),
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.max_file_bytes) {
        return too_large();
    }
    let limit = usize::try_from(st.max_file_bytes).unwrap_or(usize::MAX);
    let content = match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    // Hashing, writing and fsync happen here, off the core task; the core adopts the
    // staged file (a rename) if it accepts the upload; what is left is removed.
    let staged = match st.files.stage(&content) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("web service: staging an upload: {e}");
            return reply(HttpReply::error(500, "internal", e.to_string()));
        }
    };
    let answer = st
        .core
        .call(HttpRequest::Upload {
            bearer: file.bearer,
            room: file.room,
            name: file.name,
            token: file.token,
            staged: staged.clone(),
        })
        .await;
    let _ = std::fs::remove_file(&staged.path);
    reply(answer)
}

/// Download a file of a room.
#[utoipa::path(get, path = "/v1/rooms/{room}/files/{name}",
    params(
        ("room" = String, Path, description = "room GUID"),
        ("name" = String, Path, description = "file name"),
        ("token" = String, Query, description = "download token from cmd:getfdtok")
    ),
    responses(
        (status = 200, description = "the file's bytes", content_type = "application/octet-stream", body = String),
        FileTokenErrors,
        (status = 403, description = "bad_token, token_wrong_*, forbidden", body = ApiError),
        (status = 404, description = "no_such_room, no_such_file", body = ApiError)
    )
)]
async fn download(State(st): State<AppState>, file: FileTarget) -> Response {
    let request = HttpRequest::Download {
        bearer: file.bearer,
        room: file.room,
        name: file.name,
        token: file.token,
    };
    reply(st.core.call(request).await)
}

/// List the rooms the user is a member or manager of.
#[utoipa::path(get, path = "/v1/rooms",
    responses(
        (status = 200, body = RoomList),
        (status = 401, description = "unauthorized", body = ApiError)
    )
)]
async fn list_rooms(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = bearer(&headers);
    ask(&st, Ok(HttpRequest::ListRooms { bearer })).await
}

/// Create a room in a category (creators of the category only).
#[utoipa::path(post, path = "/v1/rooms",
    request_body = RoomCreate,
    responses(
        (status = 201, body = RoomView),
        JsonBodyErrors,
        (status = 400, description = "bad_json, bad_request", body = ApiError),
        (status = 403, description = "forbidden (not a creator)", body = ApiError),
        (status = 409, description = "conflict (name taken)", body = ApiError)
    )
)]
async fn create_room(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RoomCreate>, JsonRejection>,
) -> Response {
    let request = json_of(body).map(|body| HttpRequest::CreateRoom {
        bearer: bearer(&headers),
        body,
    });
    ask(&st, request).await
}

/// Update a room's description, topic, privacy or membership (managers only).
#[utoipa::path(patch, path = "/v1/rooms/{room}",
    params(("room" = String, Path, description = "room GUID")),
    request_body = RoomUpdate,
    responses(
        (status = 200, body = RoomView),
        JsonBodyErrors,
        (status = 400, description = "bad_json, bad_request, bad_path", body = ApiError),
        (status = 403, description = "forbidden (not a manager)", body = ApiError),
        (status = 404, description = "no_such_room", body = ApiError)
    )
)]
async fn update_room(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<RoomUpdate>, JsonRejection>,
) -> Response {
    let request = path_of(path).and_then(|room| {
        Ok(HttpRequest::UpdateRoom {
            bearer: bearer(&headers),
            room,
            body: Box::new(json_of(body)?),
        })
    });
    ask(&st, request).await
}
