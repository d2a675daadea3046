//! The web services (call-flows.md "Web services"; issue 6; docs/web.md): file upload
//! and download for rooms, and room management, over HTTP/1.1 (axum on hyper).
//!
//! ```text
//! HTTP bytes -> hyper (per connection, any host::Listener stream: tokio or turmoil TCP)
//!            -> axum router (routes.rs): bearer header, path, query, body limits, JSON
//!            -> CoreHandle::call: Event::Http on the core's bounded queue (full: 503)
//!            -> core: Input::Http -> ops.rs (authz, tokens, file store, store, events)
//!            -> Action::Http after the batch commits -> the handler's oneshot -> response
//! ```
//!
//! Identity: a bearer token from `cmd:gethttptok` on the user's SIP dialog
//! (`cmd::filetok`); files: single-use tokens from `cmd:getfutok`/`cmd:getfdtok`.
//! Every refusal is a 4xx with an [`api::ApiError`] JSON body and changes nothing.
//! The OpenAPI document is served at `/openapi.json` and committed as
//! `docs/openapi.json`.

pub mod api;
mod layout;
pub mod ops;
pub mod pages;
mod room_page;
pub mod routes;
pub mod state;
pub mod tokens;

use crate::config::HttpConfig;
use crate::net::{Event, Listener};
use api::{HttpReply, HttpRequest};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// How long a connection may take to send a request head.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A way for HTTP handlers to reach the core: its bounded input queue.
#[derive(Clone)]
pub struct CoreHandle {
    tx: mpsc::Sender<Event>,
}

impl CoreHandle {
    pub(crate) fn new(tx: mpsc::Sender<Event>) -> CoreHandle {
        CoreHandle { tx }
    }

    /// Sends `request` to the core and waits for its answer. A full queue or a stopped
    /// core gives 503 `busy` (the client retries, as SIP clients do on 503).
    pub async fn call(&self, request: HttpRequest) -> HttpReply {
        let busy = || HttpReply::error(503, "busy", "the server is busy or stopping; retry");
        let (tx, rx) = oneshot::channel();
        if self.tx.try_send(Event::Http(request, tx)).is_err() {
            return busy();
        }
        rx.await.unwrap_or_else(|_| busy())
    }
}

/// Serves the web services on `listener` until `shutdown` resolves (each connection
/// is served by hyper's HTTP/1.1 server on its own task). Works on any
/// [`Listener`], so the simulator runs it over turmoil's TCP.
pub async fn serve<L: Listener>(
    mut listener: L,
    core: CoreHandle,
    cfg: HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    // The JSON API, the web pages, and the security headers on every response.
    let app = routes::router(core.clone(), &cfg)
        .merge(pages::router(core, &cfg))
        .layer(axum::middleware::map_response(pages::security_headers));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "http connection accepted");
                    let app = app.clone().layer(axum::Extension(pages::ClientAddr(peer.ip().to_string())));
                    let svc = hyper_util::service::TowerToHyperService::new(app);
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        // A client that does not send its request head within
                        // HEADER_READ_TIMEOUT is disconnected (tokio time: simulated too).
                        if let Err(e) = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT)
                            .serve_connection(io, svc)
                            .await
                        {
                            tracing::debug!(%peer, "http connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("http accept failed: {e}");
                    if matches!(e.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotConnected) {
                        break;
                    }
                }
            },
        }
    }
    tracing::info!("web services stopped");
}
