//! Endpoints as configuration files spell them: `host:port`, `[v6]:port`, and whether a host
//! (a name or a literal) is this host's loopback.

use crate::addr::is_loopback;
use std::net::IpAddr;

/// Names that resolve to loopback on any sane host.
const LOOPBACK_NAMES: &[&str] = &["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"];

/// Whether a destination host (name or literal, brackets allowed) is this host's loopback: a
/// loopback literal, one of the names every hosts file gives loopback, or a `.localhost` name
/// (RFC 6761 §6.3).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    LOOPBACK_NAMES.iter().any(|n| n.eq_ignore_ascii_case(bare))
        || bare.to_ascii_lowercase().ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// Splits `host:port` or `[v6]:port` into the host (without brackets) and the port; `None` when
/// there is no numeric port.
pub fn split_host_port(spec: &str) -> Option<(String, u16)> {
    let (host, port) = spec.rsplit_once(':')?;
    let port = port.parse().ok()?;
    Some((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for h in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "127.1.2.3",
            "LOCALHOST",
            "app.localhost",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["192.0.2.1", "example.com", "[2001:db8::1]", "10.0.2.2"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn host_port_splits_brackets() {
        assert_eq!(split_host_port("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(split_host_port("localhost:5432"), Some(("localhost".into(), 5432)));
        assert_eq!(split_host_port("localhost"), None);
    }
}
