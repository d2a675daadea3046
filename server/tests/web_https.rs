//! HTTPS for the web services (issue 16: "HTTPS on the same tls_cert/tls_key when
//! configured"): `[http] tls = true` serves the pages and the API over TLS with the
//! SIP certificate; the sign-in form keeps its CSP, the session cookie gets `Secure`,
//! plain HTTP on that port gets no HTTP answer, and bad certificate files stop the
//! server from starting.

mod web_common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use web_common::{https, start_https};

#[tokio::test]
async fn https_serves_the_sign_in_form_and_a_secure_session_cookie() {
    let (s, cert) = start_https().await;
    let form = https(&s.http, &cert, "GET", "/", "", None).await;
    assert_eq!(form.status, 200, "{form:?}");
    assert!(form
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = form.header("content-security-policy").expect("CSP header");
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(form.body.contains(r#"type="password""#), "{}", form.body);
    let signin = form.all("set-cookie").join("\n");
    assert!(
        signin.contains("pchat_signin=") && signin.contains("Secure"),
        "{signin}"
    );
    let (jar, body) = form.user1_sign_in();
    let r = https(&s.http, &cert, "POST", "/signin", &jar, Some(&body)).await;
    assert_eq!(r.status, 303, "{r:?}");
    let set = r.session_set_cookie();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = format!("pchat_session={}", r.cookie("pchat_session").unwrap());
    let rooms = https(&s.http, &cert, "GET", "/rooms", &cookie, None).await;
    assert_eq!(rooms.status, 200);
    assert!(rooms.body.contains("Design"), "{}", rooms.body);
    s.stop().await;
}

#[tokio::test]
async fn plain_http_to_the_https_port_gets_no_http_answer() {
    let (s, cert) = start_https().await;
    let mut tcp = tokio::net::TcpStream::connect(&s.http).await.unwrap();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.http
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut raw),
    )
    .await
    .expect("the server ends the connection");
    assert!(
        !raw.starts_with(b"HTTP/"),
        "an HTTP answer on the TLS port ({read:?}): {}",
        String::from_utf8_lossy(&raw)
    );
    // The server is still fine for TLS clients afterwards.
    let ok = https(&s.http, &cert, "GET", "/style.css", "", None).await;
    assert_eq!(ok.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn unreadable_certificate_files_stop_the_server_from_starting() {
    use pchat_server::clock::TokioClock;
    let dir = tempfile::tempdir().unwrap();
    let text = web_common::config(dir.path(), None).replace("[http]\n", "[http]\ntls = true\n")
        + "[sip]\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n";
    let cfg = pchat_server::config::Config::from_toml(&text, std::path::Path::new("w.toml"))
        .expect("config");
    let sip = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let clock = std::sync::Arc::new(TokioClock::starting_at(1_700_100_000_000));
    let core = pchat_server::build_core(cfg, clock, 7, "127.0.0.1:5060").expect("core");
    let err = pchat_server::host::serve_full(
        sip,
        Some(http),
        core,
        None,
        std::future::pending(),
        Default::default(),
    )
    .await
    .expect_err("must not start");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(
        msg.contains("[http] tls") && msg.contains("/nonexistent/cert.pem"),
        "{msg}"
    );
    // Nothing listens: the HTTP socket was released.
    assert!(tokio::net::TcpStream::connect(http_addr).await.is_err());
}
