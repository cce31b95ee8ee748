//! Address classification shared by checks, probes and the lab.

use std::net::{IpAddr, Ipv6Addr};

/// Whether `ip` is a loopback address: `127.0.0.0/8`, `::1`, or IPv4-mapped `::ffff:127.0.0.0/104`.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The address as the IPv4 stack sees it: an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, what
/// an AF_INET6 socket bound to an IPv4 address reports) becomes the IPv4 address it maps; every
/// other address is returned as it is.
pub fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether `ip` is a wildcard bind address: `0.0.0.0` or `::`.
pub fn is_wildcard(ip: IpAddr) -> bool {
    ip.is_unspecified()
}

/// Formats an address and port the way service ids do: `127.0.0.1:80`, `[::1]:80`.
pub fn socket_label(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The IPv6 loopback address `::1`.
pub const V6_LOOPBACK: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_loopback_is_loopback_but_mapped_lan_is_not() {
        assert!(is_loopback("::ffff:127.0.0.2".parse().unwrap()));
        assert!(!is_loopback("::ffff:192.0.2.1".parse().unwrap()));
        assert!(is_loopback("127.255.0.1".parse().unwrap()));
        assert!(!is_loopback("::".parse().unwrap()));
    }

    #[test]
    fn mapped_addresses_unmap_and_others_stay() {
        assert_eq!(
            unmapped("::ffff:127.0.0.1".parse().unwrap()),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(unmapped("::1".parse().unwrap()), "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn labels_bracket_ipv6() {
        assert_eq!(socket_label("::1".parse().unwrap(), 53), "[::1]:53");
        assert_eq!(socket_label("127.0.0.1".parse().unwrap(), 53), "127.0.0.1:53");
    }
}
