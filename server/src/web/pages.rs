//! The web pages (issue 16; docs/web.md "Pages"): room management in a browser,
//! server-rendered with maud (every interpolated value is HTML-escaped), no JavaScript,
//! one small stylesheet (`/style.css`). Handlers parse the form or query, ask the core
//! through [`CoreHandle`] ([`SiteRequest`]; the core decides with the same rules and
//! code as the JSON API and XCCOS) and render its answer.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | sign-in form (user name, password, CSRF token) |
//! | `POST /signin` | check the password -> session cookie, 303 to `/rooms` |
//! | `POST /signout` | end the session, 303 to `/` |
//! | `GET /rooms` | my rooms (member or manager) + "Create room" form |
//! | `POST /rooms` | create a room -> 303 to its page |
//! | `GET /rooms/{room}?before=ID&q=KEYWORD` | room page: attributes, roles, history (paged, search), file links, edit forms for managers |
//! | `POST /rooms/{room}/edit` | description, topic, privacy, type (managers) |
//! | `POST /rooms/{room}/roles` | add or remove a member, manager or presenter (managers) |
//! | `GET /rooms/{room}/files/{name}` | download a file of the room |
//! | `GET /style.css` | the stylesheet |
//!
//! Security: the session cookie `pchat_session` is `HttpOnly; SameSite=Strict; Path=/`
//! (plus `Secure` over HTTPS: `[http] tls`, or `public_url` is `https://`); every form carries a CSRF
//! token (the session's, checked by the core; the sign-in form's is double-submitted
//! with the `pchat_signin` cookie); every response carries [`CSP`] (set in `routes.rs`).

use super::api::site::{MyRooms, RoomPage, SignInForm, SignedIn, SiteRequest};
use super::api::{ApiError, HttpReply, ReplyBody, RoomCreate, RoomUpdate, RoomView};
use super::layout::{page, privacy_select};
use super::CoreHandle;
use crate::config::HttpConfig;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

/// The Content-Security-Policy of every response: resources only from this origin,
/// no script at all (so no inline script), forms post only here, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
                       base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "pchat_session";
/// Name of the sign-in form's double-submit cookie.
pub const SIGNIN_COOKIE: &str = "pchat_signin";

const STYLE: &str = include_str!("style.css");

/// Every response gets the pages' Content-Security-Policy and `nosniff` (issue 16).
pub async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The client's IP address, put into each connection's requests by `web::serve`
/// (for the brute-force guard).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

#[derive(Clone)]
struct Pages {
    core: CoreHandle,
    /// Cookies get `Secure` (served over TLS: `[http] tls`, or `public_url` is `https://`).
    secure: bool,
}

/// The pages' routes (merged into the web services' router).
pub fn router(core: CoreHandle, cfg: &HttpConfig) -> Router {
    let secure = cfg.tls
        || cfg
            .public_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"));
    Router::new()
        .route("/", get(sign_in_page))
        .route("/style.css", get(style))
        .route("/signin", post(sign_in))
        .route("/signout", post(sign_out))
        .route("/rooms", get(my_rooms).post(create))
        .route("/rooms/{room}", get(room_page))
        .route("/rooms/{room}/edit", post(edit))
        .route("/rooms/{room}/roles", post(roles))
        .route("/rooms/{room}/files/{name}", get(download))
        .with_state(Pages { core, secure })
}

impl Pages {
    /// Asks the core `req` and reads its answer as `T` ([`decode`]: the error page, or
    /// the sign-in page when the session is gone, for a refusal).
    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        req: SiteRequest,
    ) -> Result<T, Box<Response>> {
        decode(self.core.call(site(req)).await)
    }
}

/// The session cookie's value (empty without one: the core then answers `signed_out`).
struct Session(String);

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Session(cookie(&parts.headers, SESSION_COOKIE)))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (empty if absent).
fn cookie(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn set_cookie(name: &str, value: &str, secure: bool, clear: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if clear {
        c.push_str("; Max-Age=0");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Adds the `Set-Cookie` header `c` to `resp`.
fn add_cookie(resp: &mut Response, c: &str) {
    if let Ok(v) = HeaderValue::from_str(c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// An error page for a refused request (the core's `ApiError`).
fn error_page(status: u16, err: &ApiError) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = html! {
        h1 { "Refused" }
        p.error { (err.message) }
        p { small { "(" (status) " " (err.error) ")" } }
        p { a href="/rooms" { "My rooms" } }
    };
    html_response(code, page("Refused", None, body))
}

/// The error page for a request refused before the core is asked (or for an answer
/// that does not read): `status`, error `code`, `message`.
fn refused(status: u16, code: &str, message: impl Into<String>) -> Response {
    let err = ApiError {
        error: code.into(),
        message: message.into(),
    };
    error_page(status, &err)
}

/// The core's answer as `T`, or the response for its refusal (sign-in page when the
/// session is gone).
fn decode<T: serde::de::DeserializeOwned>(r: HttpReply) -> Result<T, Box<Response>> {
    let ReplyBody::Json(v) = r.body else {
        return Err(Box::new(refused(500, "internal", "unexpected answer")));
    };
    if r.status >= 400 {
        let err: ApiError = serde_json::from_value(v).unwrap_or(ApiError {
            error: "internal".into(),
            message: "unreadable error".into(),
        });
        if r.status == 401 && err.error == "signed_out" {
            return Err(Box::new(redirect("/")));
        }
        return Err(Box::new(error_page(r.status, &err)));
    }
    serde_json::from_value(v).map_err(|e| Box::new(refused(500, "internal", e.to_string())))
}

fn bad_form(rej: FormRejection) -> Response {
    refused(400, "bad_form", rej.body_text())
}

/// A form body (`application/x-www-form-urlencoded`; absent fields take their
/// defaults); one that does not parse is answered with the error page, 400 `bad_form`.
struct Fields<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequest<S> for Fields<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(f)) => Ok(Fields(f)),
            Err(rej) => Err(bad_form(rej)),
        }
    }
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

fn sign_in_markup(csrf: &str, error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        @if let Some(e) = error { p.error { (e) } }
        form.card method="post" action="/signin" {
            input type="hidden" name="csrf" value=(csrf);
            label { "User name" input type="text" name="username" autocomplete="username" required; }
            label { "Password" input type="password" name="password" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
        p { small { "The same user name and password as your chat client." } }
    };
    page("Sign in", None, body)
}

/// `GET /` (and a failed sign-in): the form, with a fresh double-submit token.
async fn sign_in_form(st: &Pages, status: StatusCode, error: Option<&str>) -> Response {
    let form = match st.ask::<SignInForm>(SiteRequest::SignInForm).await {
        Ok(f) => f,
        Err(resp) => return *resp,
    };
    let mut resp = html_response(status, sign_in_markup(&form.csrf, error));
    add_cookie(
        &mut resp,
        &set_cookie(SIGNIN_COOKIE, &form.csrf, st.secure, false),
    );
    resp
}

fn site(r: SiteRequest) -> super::api::HttpRequest {
    super::api::HttpRequest::Site(r)
}

async fn sign_in_page(State(st): State<Pages>) -> Response {
    sign_in_form(&st, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SignInFields {
    csrf: String,
    username: String,
    password: String,
}

async fn sign_in(
    State(st): State<Pages>,
    ext: Extensions,
    headers: HeaderMap,
    Fields(f): Fields<SignInFields>,
) -> Response {
    let expected = cookie(&headers, SIGNIN_COOKIE);
    if f.csrf.is_empty() || !crate::auth::digest::same(&f.csrf, &expected) {
        let msg = "The form's token is missing or wrong: try again.";
        return sign_in_form(&st, StatusCode::FORBIDDEN, Some(msg)).await;
    }
    let addr = ext
        .get::<ClientAddr>()
        .map(|a| a.0.clone())
        .unwrap_or_default();
    let req = SiteRequest::SignIn {
        username: f.username,
        password: f.password,
        addr,
    };
    let reply = st.core.call(site(req)).await;
    if reply.status == 401 || reply.status == 429 {
        let msg = if reply.status == 429 {
            "Too many failed attempts: try again later."
        } else {
            "Wrong user name or password."
        };
        let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::UNAUTHORIZED);
        return sign_in_form(&st, status, Some(msg)).await;
    }
    let signed = match decode::<SignedIn>(reply) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    let mut resp = redirect("/rooms");
    add_cookie(
        &mut resp,
        &set_cookie(SESSION_COOKIE, &signed.session, st.secure, false),
    );
    add_cookie(&mut resp, &set_cookie(SIGNIN_COOKIE, "", st.secure, true));
    resp
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

async fn sign_out(
    State(st): State<Pages>,
    Session(session): Session,
    Fields(f): Fields<CsrfOnly>,
) -> Response {
    let csrf = f.csrf;
    let _ = st
        .core
        .call(site(SiteRequest::SignOut { session, csrf }))
        .await;
    let mut resp = redirect("/");
    add_cookie(&mut resp, &set_cookie(SESSION_COOKIE, "", st.secure, true));
    resp
}

fn my_rooms_markup(m: &MyRooms) -> Markup {
    let body = html! {
        h1 { "My rooms" }
        @if m.rooms.is_empty() {
            p { "You are not a member of any room yet." }
        } @else {
            table.rooms {
                thead { tr { th { "Room" } th { "Category" } th { "Privacy" } th { "Topic" } th { "Role" } } }
                tbody {
                    @for r in &m.rooms {
                        tr {
                            td { a href={ "/rooms/" (r.id) } { (r.name) } }
                            td { (r.category) }
                            td { (r.privacy) }
                            td { (r.topic) }
                            td { @if r.manager { "manager" } @else { "member" } }
                        }
                    }
                }
            }
        }
        @if !m.categories.is_empty() {
            h2 { "Create room" }
            form.card #create method="post" action="/rooms" {
                input type="hidden" name="csrf" value=(m.csrf);
                label { "Name" input type="text" name="name" required maxlength="256"; }
                label { "Category" select name="category" {
                    @for c in &m.categories { option value=(c) { (c) } }
                } }
                label { "Description" input type="text" name="description"; }
                label { "Topic" input type="text" name="topic"; }
                label { "Privacy" (privacy_select("closed")) }
                label { "Members (comma-separated user names)" input type="text" name="members"; }
                button type="submit" { "Create room" }
            }
        }
    };
    page("My rooms", Some((&m.user, &m.csrf)), body)
}

async fn my_rooms(State(st): State<Pages>, Session(session): Session) -> Response {
    match st.ask::<MyRooms>(SiteRequest::MyRooms { session }).await {
        Ok(m) => html_response(StatusCode::OK, my_rooms_markup(&m)),
        Err(resp) => *resp,
    }
}

fn list(s: &str) -> Vec<String> {
    s.split([',', ';', ' ', '\n'])
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateFields {
    csrf: String,
    name: String,
    category: Option<String>,
    description: String,
    topic: String,
    privacy: Option<String>,
    members: String,
}

async fn create(
    State(st): State<Pages>,
    Session(session): Session,
    Fields(f): Fields<CreateFields>,
) -> Response {
    let body = RoomCreate {
        name: f.name,
        category: f.category.filter(|c| !c.is_empty()),
        description: Some(f.description),
        topic: Some(f.topic),
        privacy: f.privacy.filter(|p| !p.is_empty()),
        members: list(&f.members),
        managers: Vec::new(),
    };
    let req = SiteRequest::Create {
        session,
        csrf: f.csrf,
        body,
    };
    match st.ask::<RoomView>(req).await {
        Ok(room) => redirect(&format!("/rooms/{}", room.id)),
        Err(resp) => *resp,
    }
}

/// `?before=ID&q=KEYWORD` of the room page.
#[derive(Debug, Deserialize)]
struct RoomQuery {
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    q: Option<String>,
}

async fn room_page(
    State(st): State<Pages>,
    Session(session): Session,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<RoomQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (Ok(Path(room)), Ok(Query(q))) = (path, query) else {
        return refused(400, "bad_request", "bad room path or query");
    };
    let req = SiteRequest::Room {
        session,
        room,
        before: q.before,
        search: q.q,
    };
    match st.ask::<RoomPage>(req).await {
        Ok(p) => html_response(StatusCode::OK, super::room_page::markup(&p)),
        Err(resp) => *resp,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EditFields {
    csrf: String,
    description: Option<String>,
    topic: Option<String>,
    privacy: Option<String>,
    /// `normal` | `auditorium`.
    #[serde(rename = "type")]
    room_type: Option<String>,
}

async fn update(
    st: &Pages,
    session: String,
    room: String,
    csrf: String,
    body: RoomUpdate,
) -> Response {
    let req = SiteRequest::Update {
        session,
        csrf,
        room: room.clone(),
        body: Box::new(body),
    };
    match st.ask::<RoomView>(req).await {
        Ok(_) => redirect(&format!("/rooms/{room}")),
        Err(resp) => *resp,
    }
}

async fn edit(
    State(st): State<Pages>,
    Session(session): Session,
    Path(room): Path<String>,
    Fields(f): Fields<EditFields>,
) -> Response {
    let body = RoomUpdate::attributes(f.description, f.topic, f.privacy, f.room_type);
    update(&st, session, room, f.csrf, body).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RoleFields {
    csrf: String,
    /// `add` | `remove`.
    action: String,
    /// `member` | `manager` | `presenter`.
    role: String,
    user: String,
}

async fn roles(
    State(st): State<Pages>,
    Session(session): Session,
    Path(room): Path<String>,
    Fields(f): Fields<RoleFields>,
) -> Response {
    let users = list(&f.user);
    let mut body = RoomUpdate::default();
    let slot = match (f.action.as_str(), f.role.as_str()) {
        ("add", "member") => &mut body.add_members,
        ("remove", "member") => &mut body.remove_members,
        ("add", "manager") => &mut body.add_managers,
        ("remove", "manager") => &mut body.remove_managers,
        ("add", "presenter") => &mut body.add_presenters,
        ("remove", "presenter") => &mut body.remove_presenters,
        _ => {
            let message = "action must be add or remove, role member, manager or presenter";
            return refused(400, "bad_form", message);
        }
    };
    *slot = users;
    update(&st, session, room, f.csrf, body).await
}

async fn download(
    State(st): State<Pages>,
    Session(session): Session,
    Path((room, name)): Path<(String, String)>,
) -> Response {
    let req = SiteRequest::Download {
        session,
        room,
        name,
    };
    let reply = st.core.call(site(req)).await;
    if matches!(reply.body, ReplyBody::File { .. }) {
        return super::routes::reply(reply);
    }
    match decode::<serde_json::Value>(reply) {
        Ok(_) => redirect("/rooms"),
        Err(resp) => *resp,
    }
}
