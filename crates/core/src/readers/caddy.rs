//! Caddy: the running caddy's configuration as `caddy adapt` printed it (JSON), read into its
//! HTTP servers and their `reverse_proxy` handlers, and the Caddyfile itself when captured, for
//! line numbers. Every `reverse_proxy` under a server that listens beyond loopback publishes its
//! upstreams.

use super::endpoint::{is_loopback_host, split_host_port};
use super::reverse_proxy::{Access, Proxy, Published, Upstream};
use crate::facts::CommandCapture;
use serde_json::Value;

/// One `reverse_proxy` upstream of a server's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyDial {
    /// The upstream's `dial` address as written (`127.0.0.1:7001`, `unix//run/app.sock`).
    pub dial: String,
    /// A route on the way has a client-address matcher (`remote_ip`, `client_ip`).
    pub guarded: bool,
}

/// One server of the `http` app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaddyServer {
    /// Its name in the configuration (`srv0` …).
    pub name: String,
    /// Its listen addresses as written (`:443`, `127.0.0.1:8080`, `unix//run/x`).
    pub listen: Vec<String>,
    /// The upstreams of every `reverse_proxy` handler in its routes and subroutes, in order.
    pub proxies: Vec<ProxyDial>,
}

/// The parts of an adapted Caddy configuration that route requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaddyConfig {
    /// The servers of `apps.http.servers`, by name.
    pub servers: Vec<CaddyServer>,
}

impl CaddyConfig {
    /// Reads `caddy adapt` output; `None` when it is not JSON.
    pub fn parse(adapted: &str) -> Option<CaddyConfig> {
        let config = serde_json::from_str::<Value>(adapted).ok()?;
        let servers = config.pointer("/apps/http/servers").and_then(Value::as_object);
        let servers = servers
            .into_iter()
            .flatten()
            .map(|(name, server)| {
                let mut dials = Vec::new();
                walk(server.get("routes").unwrap_or(&Value::Null), false, &mut dials);
                CaddyServer {
                    name: name.clone(),
                    listen: server
                        .get("listen")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    proxies: dials
                        .into_iter()
                        .map(|(dial, guarded)| ProxyDial { dial, guarded })
                        .collect(),
                }
            })
            .collect();
        Some(CaddyConfig { servers })
    }
}

/// Whether a Caddy listen address (`:8080`, `0.0.0.0:443`, `tcp/[::1]:80`, `unix//run/x`) reaches
/// beyond loopback.
fn listen_is_outward(addr: &str) -> bool {
    let (network, rest) = addr
        .split_once('/')
        .filter(|(n, _)| !n.is_empty() && !n.contains(':'))
        .unwrap_or(("tcp", addr));
    if network.starts_with("unix") {
        return false;
    }
    match split_host_port(rest) {
        Some((host, _)) => host.is_empty() || !is_loopback_host(&host),
        None => rest.starts_with(':'),
    }
}

/// A `dial` address as an upstream.
fn dial_upstream(dial: &str) -> Option<Upstream> {
    if let Some(path) = dial.strip_prefix("unix/") {
        return Some(Upstream::Unix(path.to_string()));
    }
    let rest = dial.split_once('/').map_or(dial, |(_, r)| r);
    split_host_port(rest).map(|(h, p)| Upstream::Tcp(if h.is_empty() { "localhost".into() } else { h }, p))
}

/// Collects `(dial, guarded)` of every reverse_proxy under `routes`; `guarded` says a
/// client-address matcher guards the route.
fn walk(routes: &Value, guarded: bool, out: &mut Vec<(String, bool)>) {
    for route in routes.as_array().into_iter().flatten() {
        let matchers = route.get("match").map(|m| m.to_string()).unwrap_or_default();
        let guarded = guarded || matchers.contains("\"remote_ip\"") || matchers.contains("\"client_ip\"");
        for handler in route.get("handle").and_then(Value::as_array).into_iter().flatten() {
            match handler.get("handler").and_then(Value::as_str) {
                Some("reverse_proxy") => {
                    for up in handler.get("upstreams").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(dial) = up.get("dial").and_then(Value::as_str) {
                            out.push((dial.to_string(), guarded));
                        }
                    }
                }
                Some("subroute") => walk(handler.get("routes").unwrap_or(&Value::Null), guarded, out),
                _ => {}
            }
        }
    }
}

/// Every upstream the caddy whose adapted configuration is in `capture` serves on a listener
/// beyond loopback; `all` gives the Caddyfile capture of the same pid, if any, for line numbers.
pub fn published(capture: &CommandCapture, all: &[CommandCapture]) -> Vec<Published> {
    let Some(config) = CaddyConfig::parse(&capture.output) else {
        return Vec::new();
    };
    let caddyfile = all.iter().find(|c| c.kind == "caddyfile" && c.pid == capture.pid);
    let mut out = Vec::new();
    for server in &config.servers {
        let outward: Vec<&str> = server
            .listen
            .iter()
            .map(String::as_str)
            .filter(|l| listen_is_outward(l))
            .collect();
        if outward.is_empty() {
            continue;
        }
        for ProxyDial { dial, guarded } in &server.proxies {
            let Some(upstream) = dial_upstream(dial) else { continue };
            let mut evidence = vec![format!(
                "server {} (`{}`): reverse_proxy to {dial}, listening on {}",
                server.name,
                capture.command.join(" "),
                outward.join(", ")
            )];
            if let Some(line) = caddyfile.and_then(|c| caddyfile_line(c, dial)) {
                evidence.push(line);
            }
            evidence.push("Caddy passes the client's Host through unchanged but connects from this host".into());
            let access = if *guarded {
                Access::Unevaluated("the route has a remote_ip/client_ip matcher, not evaluated".into())
            } else {
                Access::Anyone
            };
            out.push(Published {
                proxy: Proxy::Caddy,
                pid: capture.pid,
                upstream,
                listen: outward.iter().map(|l| l.to_string()).collect(),
                access,
                evidence,
            });
        }
    }
    out
}

/// `file:line: text` of the Caddyfile line that proxies to `dial` (matched by its port).
fn caddyfile_line(file: &CommandCapture, dial: &str) -> Option<String> {
    let port = dial.rsplit(':').next()?;
    let path = file.command.last()?;
    file.output.lines().enumerate().find_map(|(i, l)| {
        (l.contains("reverse_proxy") && l.contains(&format!(":{port}")))
            .then(|| format!("{path}:{}: {}", i + 1, l.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(kind: &str, command: &[&str], output: &str) -> CommandCapture {
        CommandCapture {
            kind: kind.into(),
            pid: 5,
            command: command.iter().map(|s| s.to_string()).collect(),
            output: output.into(),
        }
    }

    #[test]
    fn adapted_json_and_caddyfile_lines() {
        let adapted = r#"{"apps":{"http":{"servers":{"srv0":{"listen":[":8083"],"routes":[{"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:7001"}]}]}]}]}]},"srv1":{"listen":["127.0.0.1:8084"],"routes":[{"handle":[{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:7002"}]}]}]}}}}}"#;
        let all = vec![
            capture(
                "caddy",
                &["caddy", "adapt", "--config", "/etc/caddy/Caddyfile"],
                adapted,
            ),
            capture(
                "caddyfile",
                &["cat", "/etc/caddy/Caddyfile"],
                ":8083 {\n    reverse_proxy 127.0.0.1:7001\n}\n",
            ),
        ];
        let found = published(&all[0], &all);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].upstream, Upstream::Tcp("127.0.0.1".into(), 7001));
        assert!(found[0]
            .evidence
            .iter()
            .any(|e| e == "/etc/caddy/Caddyfile:2: reverse_proxy 127.0.0.1:7001"));
    }

    #[test]
    fn listen_forms() {
        assert!(listen_is_outward(":443"));
        assert!(listen_is_outward("tcp/0.0.0.0:80"));
        assert!(!listen_is_outward("127.0.0.1:2019"));
        assert!(!listen_is_outward("unix//run/caddy.sock"));
        assert_eq!(
            dial_upstream("unix//run/app.sock"),
            Some(Upstream::Unix("/run/app.sock".into()))
        );
    }
}
