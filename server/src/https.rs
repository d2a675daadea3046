//! HTTPS for the web services (`[http] tls = true`, docs/web.md "HTTPS"): the SIP
//! certificate (`[sip] tls_cert` / `tls_key`, PEM) served by rustls through
//! tokio-rustls on the `[http] listen` socket, and [`TlsListener`], which turns any
//! [`Listener`] into one whose streams are TLS (so `web::serve` needs no change).
//! No client certificates are asked for (a browser would offer a certificate picker).

use crate::net::Listener;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_rustls::rustls;

/// A TLS acceptor for HTTPS from PEM text: `cert_pem` (the chain, leaf first) and
/// `key_pem` (PKCS#8, PKCS#1 or SEC1); TLS 1.2 and 1.3, ALPN `http/1.1`, no client
/// authentication. Errors: no certificate, no key, or rustls refused them.
pub fn acceptor_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let (certs, key) = crate::tls::parse_pem(cert_pem, key_pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate/key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// [`acceptor_from_pem`] from the files `cert` and `key`. Errors name the file.
pub fn acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let (cert_pem, key_pem) = crate::tls::read_pem_files(cert, key)?;
    acceptor_from_pem(&cert_pem, &key_pem)
}

type Accepted<S> = io::Result<(tokio_rustls::server::TlsStream<S>, SocketAddr)>;

/// A [`Listener`] whose connections have completed a TLS handshake. Handshakes run
/// in their own tasks, each bounded by the handshake timeout (a failed or slow one
/// is logged and dropped), so a slow or plain-HTTP client never holds up the others.
pub struct TlsListener<S> {
    rx: mpsc::Receiver<Accepted<S>>,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> TlsListener<S> {
    /// Starts accepting on `inner` and handshaking with `acceptor`; a handshake not
    /// done within `timeout` is abandoned. An accept error that ends `inner`
    /// (`InvalidInput`, `NotConnected`) is passed on and ends this listener too.
    pub fn new<L: Listener<Stream = S>>(
        inner: L,
        acceptor: tokio_rustls::TlsAcceptor,
        timeout: Duration,
    ) -> TlsListener<S> {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(accept_loop(inner, acceptor, tx, timeout));
        TlsListener { rx }
    }
}

async fn accept_loop<L: Listener>(
    mut inner: L,
    acceptor: tokio_rustls::TlsAcceptor,
    tx: mpsc::Sender<Accepted<L::Stream>>,
    timeout: Duration,
) {
    loop {
        // Stop (and release the socket) as soon as the listener is dropped.
        let accepted = tokio::select! {
            biased;
            _ = tx.closed() => return,
            r = inner.accept() => r,
        };
        let (s, addr) = match accepted {
            Ok(v) => v,
            Err(e) => {
                let fatal = matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::NotConnected
                );
                if fatal {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                tracing::warn!("https accept failed: {e}");
                continue;
            }
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(s)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send(Ok((tls, addr))).await;
                }
                Ok(Err(e)) => tracing::info!(%addr, "https handshake failed: {e}"),
                Err(_) => tracing::info!(%addr, "https handshake not completed in time"),
            }
        });
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Listener
    for TlsListener<S>
{
    type Stream = tokio_rustls::server::TlsStream<S>;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        match self.rx.recv().await {
            Some(r) => r,
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "https listener stopped",
            )),
        }
    }
}
