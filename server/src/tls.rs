//! SIP over TLS (RFC 3261 section 26.2; `[sip] tls_listen`, `tls_cert`, `tls_key`):
//! rustls through tokio-rustls, PEM files, optional client certificates whose SHA-256
//! fingerprint can name a trusted peer (`[auth] trusted_peers`, docs/security.md), and
//! [`SipListeners`], which serves TCP and TLS through the one driver (`crate::host`).
//! `pchat-server tls self-signed --out DIR` makes a development certificate
//! ([`self_signed`]).

use crate::net::Listener;
use sha2::Digest as _;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// `sha256:<lower-case hex>` of a DER certificate: how `[auth] trusted_peers` names it.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(der)))
}

/// Offers client authentication without requiring it, and accepts any certificate
/// whose handshake signature verifies (possession of its key): the certificate is
/// then identified by its fingerprint, pinned in `[auth] trusted_peers`, not by a CA.
#[derive(Debug)]
struct AnyClientCert(Arc<rustls::crypto::CryptoProvider>);

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificate chain (leaf first) and private key in PEM text: `cert_pem` and
/// `key_pem` (PKCS#8, PKCS#1 or SEC1). Shared by SIP over TLS and HTTPS (`https.rs`).
/// Errors: a PEM that does not parse, no certificate, no key.
pub fn parse_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    String,
> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM file".into());
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("key PEM: {e}"))?
        .ok_or("no private key in the PEM file")?;
    Ok((certs, key))
}

/// The contents of the PEM files `cert` and `key`. Errors name the file.
pub fn read_pem_files(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    Ok((read(cert)?, read(key)?))
}

/// A TLS acceptor from PEM text: `cert_pem` (the chain, leaf first) and `key_pem`
/// (PKCS#8, PKCS#1 or SEC1). Errors: no certificate, no key, or rustls refused them.
pub fn acceptor_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let (certs, key) = parse_pem(cert_pem, key_pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(Arc::new(AnyClientCert(provider)))
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate/key: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// [`acceptor_from_pem`] from files. Errors name the file.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let (cert_pem, key_pem) = read_pem_files(cert, key)?;
    acceptor_from_pem(&cert_pem, &key_pem)
}

/// A development certificate for `names` (DNS names or IP addresses): (certificate
/// PEM, key PEM, fingerprint). Errors: rcgen failed.
pub fn self_signed(names: &[String]) -> Result<(String, String, String), String> {
    let ck = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| e.to_string())?;
    let fp = fingerprint(ck.cert.der());
    Ok((ck.cert.pem(), ck.key_pair.serialize_pem(), fp))
}

/// Any SIP stream: plain TCP or TLS.
pub trait SipStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> SipStream for T {}

type Accepted = (Box<dyn SipStream>, crate::auth::Peer);

/// The server's SIP listeners as one [`Listener`]: TCP always, TLS when configured.
/// TLS handshakes run in their own tasks (bounded by `handshake_timeout`), so a slow
/// client never holds up the accept loop.
pub struct SipListeners {
    rx: mpsc::Receiver<io::Result<Accepted>>,
}

impl SipListeners {
    /// Starts accepting on `tcp` and, when given, on `tls` with its acceptor.
    pub fn new(
        tcp: tokio::net::TcpListener,
        tls: Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>,
        handshake_timeout: std::time::Duration,
    ) -> SipListeners {
        let (tx, rx) = mpsc::channel(1024);
        let plain = tx.clone();
        tokio::spawn(async move {
            loop {
                let r = tcp.accept().await.map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    let peer = crate::auth::Peer::from_addr(a);
                    (Box::new(s) as Box<dyn SipStream>, peer)
                });
                if plain.send(r).await.is_err() {
                    break;
                }
            }
        });
        if let Some((listener, acceptor)) = tls {
            tokio::spawn(accept_tls(listener, acceptor, tx, handshake_timeout));
        }
        SipListeners { rx }
    }
}

async fn accept_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    tx: mpsc::Sender<io::Result<Accepted>>,
    timeout: std::time::Duration,
) {
    loop {
        let (s, addr) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("TLS accept failed: {e}");
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(s)).await {
                Ok(Ok(tls)) => {
                    let cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| fingerprint(c));
                    let mut peer = crate::auth::Peer::from_addr(addr);
                    peer.tls = true;
                    peer.cert_sha256 = cert;
                    let _ = tx.send(Ok((Box::new(tls), peer))).await;
                }
                Ok(Err(e)) => tracing::info!(%addr, "TLS handshake failed: {e}"),
                Err(_) => tracing::info!(%addr, "TLS handshake not completed in time"),
            }
        });
    }
}

impl Listener for SipListeners {
    type Stream = Box<dyn SipStream>;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, peer) = self.accept_peer().await?;
        Ok((s, peer.socket_or_unspecified()))
    }

    async fn accept_peer(&mut self) -> io::Result<(Self::Stream, crate::auth::Peer)> {
        match self.rx.recv().await {
            Some(r) => r,
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "listeners stopped",
            )),
        }
    }
}
