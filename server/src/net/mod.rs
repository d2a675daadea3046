//! What the I/O driver ([`crate::host`]) and the web services ([`crate::web`]) share,
//! below both: the listener abstraction and the item of the core task's queue.

pub(crate) mod overload;
pub(crate) mod pool_wake;

use crate::core::{ConnId, Input};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

/// A stream listener: tokio's or turmoil's TCP (or anything else that yields streams).
pub trait Listener: Send + 'static {
    /// The connection type.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// Waits for the next connection, with what the transport knows of its peer
    /// (TLS, client certificate); default: [`Listener::accept`] and the address only.
    fn accept_peer(
        &mut self,
    ) -> impl Future<Output = io::Result<(Self::Stream, crate::auth::Peer)>> + Send {
        async move {
            let (s, a) = self.accept().await?;
            Ok((s, crate::auth::Peer::from_addr(a)))
        }
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, a) = tokio::net::TcpListener::accept(self).await?;
        let _ = s.set_nodelay(true);
        Ok((s, a))
    }
}

/// What the core task receives: network input, a connection's writer, or a web
/// services request with the channel its answer goes back on.
pub(crate) enum Event {
    Input(Input),
    /// Input from a connection's reader, with the time it was read: while the posts the
    /// core task takes waited longer than `[sip] max_queue_delay`, the readers shed new
    /// ones at the door (the queue stops growing instead of holding seconds of latency).
    Read(Input, tokio::time::Instant),
    Register(ConnId, overload::ConnOut),
    Http(
        crate::web::api::HttpRequest,
        oneshot::Sender<crate::web::api::HttpReply>,
    ),
}
