//! SIP over TLS in the simulator (issue 12, `[[client]] tls = true`): the simulated
//! server listens on [`SIM_TLS_PORT`] beside [`crate::sim_setup::SIM_SIP_PORT`] with a
//! development certificate made for the run (rcgen, DNS name `server`), and clients with
//! `tls = true` connect there through rustls (tokio-rustls runs over any
//! `AsyncRead + AsyncWrite`, turmoil's TCP streams included) and trust exactly that
//! certificate.
//!
//! The handshake's own randomness (key shares, the certificate's key) comes from the
//! operating system, not from the seed: it changes the bytes inside TLS records, never
//! a SIP message, so transcripts stay byte-identical for a seed.

use pchat_server::auth::Peer;
use pchat_server::tls::SipStream;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// SIP-over-TLS port of the simulated server.
pub const SIM_TLS_PORT: u16 = 5061;

/// How long the simulated server waits for a client's TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A run's TLS material: the server's certificate and key (PEM) and the certificate's
/// DER, which the clients trust.
#[derive(Debug, Clone)]
pub struct SimTls {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
    der: CertificateDer<'static>,
}

impl SimTls {
    /// A fresh development certificate for the host name `server`. Errors: rcgen or
    /// PEM failures (text).
    pub fn new() -> Result<SimTls, String> {
        let (cert_pem, key_pem, _) = pchat_server::tls::self_signed(&["server".to_string()])?;
        let der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .next()
            .ok_or("no certificate in the generated PEM")?
            .map_err(|e| e.to_string())?;
        Ok(SimTls {
            cert_pem,
            key_pem,
            der,
        })
    }

    /// The server side: an acceptor with this certificate.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, String> {
        pchat_server::tls::acceptor_from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
    }

    /// The client side: a connector that trusts only this certificate.
    pub fn connector(&self) -> Result<tokio_rustls::TlsConnector, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    /// Connects to the simulated server's TLS port and completes the handshake; returns
    /// the stream and our `host:port`.
    pub async fn connect(
        &self,
    ) -> io::Result<(
        tokio_rustls::client::TlsStream<turmoil::net::TcpStream>,
        String,
    )> {
        let connector = self.connector().map_err(io::Error::other)?;
        let tcp = turmoil::net::TcpStream::connect(("server", SIM_TLS_PORT)).await?;
        let local = tcp.local_addr()?.to_string();
        let name = ServerName::try_from("server").map_err(io::Error::other)?;
        let tls = connector.connect(name, tcp).await?;
        Ok((tls, local))
    }
}

/// The simulated server's SIP listeners: TCP on the SIP port and TLS on
/// [`SIM_TLS_PORT`], as one [`pchat_server::host::Listener`] (what
/// `pchat_server::tls::SipListeners` is for tokio's TCP). Handshakes run inline with a
/// timeout: simulated clients do not stall them.
pub struct SimSipListeners {
    /// Plain SIP over TCP.
    pub plain: turmoil::net::TcpListener,
    /// SIP over TLS, and the acceptor.
    pub tls: turmoil::net::TcpListener,
    /// The run's acceptor.
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl SimSipListeners {
    async fn next(&mut self) -> io::Result<(Box<dyn SipStream>, Peer)> {
        loop {
            tokio::select! {
                biased;
                r = self.plain.accept() => {
                    let (s, a) = r?;
                    return Ok((Box::new(s), Peer::from_addr(a)));
                }
                r = self.tls.accept() => {
                    let (s, a) = r?;
                    let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(s));
                    match hs.await {
                        Ok(Ok(tls)) => {
                            let mut peer = Peer::from_addr(a);
                            peer.tls = true;
                            return Ok((Box::new(tls), peer));
                        }
                        Ok(Err(e)) => tracing::info!(%a, "simulated TLS handshake failed: {e}"),
                        Err(_) => tracing::info!(%a, "simulated TLS handshake not completed in time"),
                    }
                }
            }
        }
    }
}

impl pchat_server::host::Listener for SimSipListeners {
    type Stream = Box<dyn SipStream>;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, peer) = self.next().await?;
        Ok((s, peer.socket_or_unspecified()))
    }

    async fn accept_peer(&mut self) -> io::Result<(Self::Stream, Peer)> {
        self.next().await
    }
}
