//! SIP over TLS through the real driver on loopback (issue 12), clients trusting the
//! server's self-signed certificate: in mode "trusted" a client certificate listed in
//! `[auth] trusted_peers` may assert the user in P-Asserted-Identity (200, our Contact
//! says `transport=tls`), while the same header on a TLS connection without that
//! certificate is removed and Digest is asked for (401).

mod common;

use common::{exchange, user1_pw1};
use pchat_server::clock::TokioClock;
use pchat_server::config::{AuthMode, Config};
use pchat_server::sip::Framer;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Certs {
    server_pem: (String, String),
    server_der: CertificateDer<'static>,
    client: (CertificateDer<'static>, PrivateKeyDer<'static>),
    client_fp: String,
}

fn certs() -> Certs {
    let s = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let c = rcgen::generate_simple_self_signed(vec!["frontend".to_string()]).unwrap();
    Certs {
        server_pem: (s.cert.pem(), s.key_pair.serialize_pem()),
        server_der: s.cert.der().clone(),
        client_fp: pchat_server::tls::fingerprint(c.cert.der()),
        client: (
            c.cert.der().clone(),
            PrivateKeyDer::try_from(c.key_pair.serialize_der()).unwrap(),
        ),
    }
}

async fn server(certs: &Certs, mode: AuthMode) -> std::net::SocketAddr {
    let mut cfg = Config::embedded_default();
    cfg.auth.mode = mode;
    cfg.auth.trusted_peers = vec![certs.client_fp.clone()];
    cfg.users = vec![user1_pw1()];
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_addr = tls.local_addr().unwrap();
    cfg.sip.tls_listen = Some(tls_addr.to_string());
    let acceptor = pchat_server::tls::acceptor_from_pem(
        certs.server_pem.0.as_bytes(),
        certs.server_pem.1.as_bytes(),
    )
    .unwrap();
    let local = tcp.local_addr().unwrap().to_string();
    let store = pchat_server::store::SqliteStore::in_memory().unwrap();
    let clock = Arc::new(TokioClock::starting_at(1_700_000_000_000));
    let core =
        pchat_server::core::Core::new(cfg, Box::new(store), clock, 3, &local, Default::default())
            .unwrap();
    let listeners =
        pchat_server::tls::SipListeners::new(tcp, Some((tls, acceptor)), Duration::from_secs(5));
    tokio::spawn(pchat_server::host::serve(
        listeners,
        core,
        std::future::pending(),
    ));
    tls_addr
}

async fn connect(
    addr: std::net::SocketAddr,
    certs: &Certs,
    with_client_cert: bool,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.server_der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_client_cert {
        builder
            .with_client_auth_cert(vec![certs.client.0.clone()], certs.client.1.clone_key())
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

fn invite(extra: &str, cseq: u32) -> String {
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=s\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 5061 sip null\r\n";
    format!(
        "INVITE sip:pchat@contoso.com SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bKt{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:user1@contoso.com>;tag=t\r\nTo: <sip:pchat@contoso.com>\r\n\
         Call-ID: tls-{cseq}\r\nCSeq: {cseq} INVITE\r\nContact: <sips:user1@127.0.0.1:9;transport=tls>\r\n\
         {extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[tokio::test]
async fn trusted_front_end_asserts_identity_over_tls_and_nobody_else_can() {
    let certs = certs();
    let addr = server(&certs, AuthMode::Trusted).await;
    let pai = "P-Asserted-Identity: <sip:user1@contoso.com>\r\n";
    let mut front = connect(addr, &certs, true).await;
    let mut f = Framer::new(1 << 20);
    let ok = exchange(&mut front, &mut f, &invite(pai, 1)).await;
    assert_eq!(ok.code, 200, "{ok:?}");
    let contact = ok.headers.get("Contact").unwrap();
    assert!(contact.contains("transport=tls"), "{contact}");
    let mut other = connect(addr, &certs, false).await;
    let mut f2 = Framer::new(1 << 20);
    let refused = exchange(&mut other, &mut f2, &invite(pai, 2)).await;
    assert_eq!(
        refused.code, 401,
        "no trusted certificate: P-Asserted-Identity ignored"
    );
}

#[tokio::test]
async fn self_signed_helper_makes_a_usable_certificate() {
    let (cert, key, fp) = pchat_server::tls::self_signed(&["localhost".to_string()]).unwrap();
    assert!(cert.contains("BEGIN CERTIFICATE") && key.contains("PRIVATE KEY"));
    assert!(fp.starts_with("sha256:") && fp.len() == 71, "{fp}");
    assert!(pchat_server::tls::acceptor_from_pem(cert.as_bytes(), key.as_bytes()).is_ok());
    assert!(pchat_server::tls::acceptor_from_pem(b"", key.as_bytes()).is_err());
}
