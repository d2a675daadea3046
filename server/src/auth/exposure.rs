//! Mode `"none"` takes the From header as the identity, so it is allowed only when no
//! one but this machine can connect: every listen address loopback (docs/security.md).

use crate::config::{AuthMode, Config};

/// Whether `addr` (`HOST:PORT`) is a loopback address (`127.0.0.0/8`, `::1`,
/// `localhost`). Anything unparsable counts as not loopback.
pub fn is_loopback(addr: &str) -> bool {
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return sa.ip().is_loopback();
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.eq_ignore_ascii_case("localhost")
}

/// Checks that the configuration does not expose an unauthenticated server. Errors:
/// a message naming the non-loopback address and what to do, when `[auth] mode` is
/// `"none"` and `[sip] listen`, `[sip] tls_listen` or `[http] listen` is not loopback.
pub fn check(cfg: &Config) -> Result<(), String> {
    if cfg.auth.mode != AuthMode::None {
        return Ok(());
    }
    let mut addrs = vec![("[sip] listen", cfg.sip.listen.as_str())];
    if let Some(t) = &cfg.sip.tls_listen {
        addrs.push(("[sip] tls_listen", t));
    }
    if let Some(h) = &cfg.http {
        addrs.push(("[http] listen", &h.listen));
    }
    for (key, addr) in addrs {
        if !is_loopback(addr) {
            return Err(format!(
                "{key} {addr:?} is not a loopback address, and [auth] mode is \"none\" \
                 (no authentication: anyone could act as any user). Set [auth] mode = \"digest\" \
                 with [[user]] entries, or listen on 127.0.0.1 only (docs/security.md)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_only_on_loopback() {
        assert!(is_loopback("127.0.0.1:5060"));
        assert!(is_loopback("[::1]:5060"));
        assert!(is_loopback("localhost:5060"));
        assert!(!is_loopback("0.0.0.0:5060"));
        assert!(!is_loopback("10.1.2.3:5060"));
        assert!(!is_loopback("pchat.example.com:5060"));
        let mut cfg = Config::embedded_default();
        cfg.auth.mode = AuthMode::None;
        assert_eq!(check(&cfg), Ok(()));
        cfg.sip.listen = "0.0.0.0:5060".into();
        let e = check(&cfg).unwrap_err();
        assert!(e.contains("0.0.0.0:5060") && e.contains("none"), "{e}");
        cfg.auth.mode = AuthMode::Digest;
        assert_eq!(check(&cfg), Ok(()));
    }
}
