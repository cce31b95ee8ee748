//! What the reverse-proxy readers (nginx, HAProxy, Caddy, Apache) have in common: the upstreams a
//! running proxy serves on listeners beyond loopback, who may use each route, and where the
//! configuration says so.

use super::{apache, caddy, haproxy, nginx};
use crate::facts::CommandCapture;
use std::fmt;

/// A reverse proxy whose configuration loopwarden reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    /// nginx, from `nginx -T`.
    Nginx,
    /// HAProxy, from the files it was started with (`-f`).
    Haproxy,
    /// Caddy, from `caddy adapt` (and its Caddyfile, for line numbers).
    Caddy,
    /// Apache httpd, from the files `-D DUMP_INCLUDES` lists.
    Apache,
}

impl Proxy {
    /// The proxy's name, as evidence names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx",
            Proxy::Haproxy => "haproxy",
            Proxy::Caddy => "caddy",
            Proxy::Apache => "apache",
        }
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a proxy sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// `host:port` over TCP; the host as written (a name or a literal, without brackets).
    Tcp(String, u16),
    /// A Unix socket path (`@name` for an abstract one).
    Unix(String),
}

/// Who the configuration lets use a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No client rule stands in front of the route: every client of the listener.
    Anyone,
    /// Client-address rules let only loopback (or Unix-socket) clients in (nginx `allow
    /// 127.0.0.1; deny all;`, Apache `Require local`).
    LoopbackOnly,
    /// Rules that may refuse some clients are there, but the reader does not evaluate them
    /// (HAProxy ACLs, a Caddy `remote_ip` matcher, Apache `Require user`); the text says which.
    Unevaluated(String),
}

/// One upstream a proxy serves on a listener that reaches beyond loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The proxy.
    pub proxy: Proxy,
    /// The pid of the proxy whose configuration this is (from the capture).
    pub pid: u32,
    /// Where the route sends requests.
    pub upstream: Upstream,
    /// The listen addresses beyond loopback that serve the route, as the configuration spells
    /// them (`8080`, `*:80`, `[::]:443`, `:8083`).
    pub listen: Vec<String>,
    /// Who may use the route.
    pub access: Access,
    /// What the configuration says, as lines a report quotes: the directive with its `file:line`
    /// and the command that showed it, the listeners, the upstream block, the Host handling.
    pub evidence: Vec<String>,
}

/// Every upstream published beyond loopback by the proxies whose configuration is among
/// `captures` (the snapshot's relay captures; other kinds are ignored), proxy by proxy in
/// capture order.
pub fn published(captures: &[CommandCapture]) -> Vec<Published> {
    let mut out = Vec::new();
    for capture in captures {
        match capture.kind.as_str() {
            "nginx" => out.extend(nginx::published(capture)),
            "haproxy" => out.extend(haproxy::published(capture)),
            "caddy" => out.extend(caddy::published(capture, captures)),
            "apache-includes" => out.extend(apache::published(capture, captures)),
            _ => {}
        }
    }
    out
}
