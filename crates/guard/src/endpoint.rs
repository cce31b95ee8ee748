//! Where a front listens and where it forwards, parsed from text such as `127.0.0.1:8080`,
//! `localhost:8080`, `[::1]:8080` or `unix:/run/app/app.sock`.

use loopwarden_core::facts::GuardEndpoint;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// Where a front listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A loopback TCP port, taken on both `127.0.0.1` and `[::1]` (else any user could squat
    /// the other family's port and receive the clients of `localhost`).
    Tcp(u16),
    /// A Unix socket path.
    Unix(PathBuf),
}

/// Where a front forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A TCP address on this host's loopback.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Listen {
    /// Parses a front address. Only loopback (either family, or `localhost`) or a Unix path.
    pub fn parse(text: &str) -> Result<Listen, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return unix_path(path).map(Listen::Unix);
        }
        let (ip, port) = host_port(text)?;
        if !ip.is_loopback() || !(ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)) {
            return Err(format!(
                "{ip} is not loopback: a guard front listens on 127.0.0.1 and [::1] (give 127.0.0.1:PORT, \
                 [::1]:PORT or localhost:PORT) or on unix:PATH"
            ));
        }
        Ok(Listen::Tcp(port))
    }

    /// The socket addresses a TCP front binds: `127.0.0.1:P` and `[::1]:P`.
    pub fn tcp_addresses(port: u16) -> [SocketAddr; 2] {
        [
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]
    }

    /// Whether two fronts would take the same socket.
    pub fn overlaps(&self, other: &Listen) -> bool {
        self == other
    }

    /// The front's endpoints, as the published status shows them.
    pub fn published(&self) -> Vec<GuardEndpoint> {
        match self {
            Listen::Tcp(port) => Listen::tcp_addresses(*port)
                .into_iter()
                .map(|address| GuardEndpoint::Tcp { address })
                .collect(),
            Listen::Unix(path) => vec![GuardEndpoint::Unix {
                path: path.display().to_string(),
            }],
        }
    }

    /// The TCP port, for a TCP front.
    pub fn port(&self) -> Option<u16> {
        match self {
            Listen::Tcp(p) => Some(*p),
            Listen::Unix(_) => None,
        }
    }
}

impl Upstream {
    /// Parses an upstream address: a loopback TCP address (`localhost` means `127.0.0.1`) or a
    /// Unix path. The guard forwards to services of this host only.
    pub fn parse(text: &str) -> Result<Upstream, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return unix_path(path).map(Upstream::Unix);
        }
        let (ip, port) = host_port(text)?;
        if !loopwarden_core::addr::is_loopback(ip) {
            return Err(format!(
                "{ip} is not loopback: the upstream must be a service of this host (127.0.0.0/8, [::1]) or unix:PATH"
            ));
        }
        Ok(Upstream::Tcp(SocketAddr::new(
            loopwarden_core::addr::unmapped(ip),
            port,
        )))
    }

    /// Whether forwarding to this upstream would reach the front itself.
    pub fn same_as(&self, listen: &Listen) -> bool {
        match (self, listen) {
            (Upstream::Tcp(a), Listen::Tcp(p)) => a.port() == *p && Listen::tcp_addresses(*p).contains(a),
            (Upstream::Unix(a), Listen::Unix(b)) => a == b,
            _ => false,
        }
    }

    /// The upstream as the published status shows it.
    pub fn published(&self) -> GuardEndpoint {
        match self {
            Upstream::Tcp(address) => GuardEndpoint::Tcp { address: *address },
            Upstream::Unix(path) => GuardEndpoint::Unix {
                path: path.display().to_string(),
            },
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(port) => write!(f, "localhost:{port}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Tcp(a) => write!(f, "{a}"),
            Upstream::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

fn unix_path(path: &str) -> Result<PathBuf, String> {
    if path.starts_with('@') || path.starts_with('\0') {
        return Err("abstract Unix sockets have no permissions at all: use a path".into());
    }
    if !path.starts_with('/') {
        return Err(format!("unix:{path} is not an absolute path"));
    }
    if path.len() >= 108 {
        return Err(format!("unix:{path} is longer than a socket path may be (107 bytes)"));
    }
    Ok(PathBuf::from(path))
}

/// `HOST:PORT` with `HOST` an address, `[v6]` or `localhost`.
fn host_port(text: &str) -> Result<(IpAddr, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT or unix:PATH"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{port:?} in {text:?} is not a port (1-65535)"))?;
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        bare.parse::<IpAddr>()
            .map_err(|_| format!("{host:?} in {text:?} is not an IP address or localhost"))?
    };
    Ok((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fronts_are_loopback_ports_or_unix_paths() {
        assert_eq!(Listen::parse("127.0.0.1:8080"), Ok(Listen::Tcp(8080)));
        assert_eq!(Listen::parse("[::1]:8080"), Ok(Listen::Tcp(8080)));
        assert_eq!(Listen::parse("localhost:8080"), Ok(Listen::Tcp(8080)));
        assert_eq!(
            Listen::parse("unix:/run/a.sock"),
            Ok(Listen::Unix("/run/a.sock".into()))
        );
        assert!(Listen::parse("127.0.0.2:80").unwrap_err().contains("not loopback"));
        assert!(Listen::parse("[::]:80").is_err());
        assert!(Listen::parse("unix:@x").unwrap_err().contains("abstract"));
        assert!(Listen::parse("unix:rel").unwrap_err().contains("absolute"));
        assert!(Listen::parse("localhost:0").unwrap_err().contains("not a port"));
        assert!(Listen::parse("8080").unwrap_err().contains("HOST:PORT"));
    }

    #[test]
    fn upstreams_stay_on_this_host() {
        assert_eq!(
            Upstream::parse("localhost:18080"),
            Ok(Upstream::Tcp("127.0.0.1:18080".parse().unwrap()))
        );
        assert_eq!(
            Upstream::parse("[::ffff:127.0.0.1]:5"),
            Ok(Upstream::Tcp("127.0.0.1:5".parse().unwrap()))
        );
        assert!(Upstream::parse("192.0.2.1:80").unwrap_err().contains("not loopback"));
        assert!(Upstream::parse("127.0.0.1:8080").unwrap().same_as(&Listen::Tcp(8080)));
        assert!(!Upstream::parse("127.0.0.2:8080").unwrap().same_as(&Listen::Tcp(8080)));
    }
}
