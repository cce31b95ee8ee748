//! HAProxy: a configuration file the running haproxy was started with (`-f`), as captured, read
//! into sections. `frontend`/`listen` sections with a `bind` beyond loopback publish the `server`s
//! of their backends (`default_backend`, `use_backend`, or their own for `listen`).

use super::endpoint::{is_loopback_host, split_host_port};
use super::reverse_proxy::{Access, Proxy, Published, Upstream};
use crate::facts::CommandCapture;

/// One line of a section, split into words (comments removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its line number in the file (1-based).
    pub number: usize,
    /// Its words: the keyword first.
    pub words: Vec<String>,
}

impl Line {
    /// The line's keyword (`bind`, `server`, `default_backend` …).
    pub fn keyword(&self) -> Option<&str> {
        self.words.first().map(String::as_str)
    }
}

/// One section: `frontend web`, `backend app`, `listen stats`, `global` …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section keyword (`frontend`, `backend`, `listen`, `defaults` …).
    pub kind: String,
    /// Its name (empty for `global` and unnamed `defaults`).
    pub name: String,
    /// Its non-empty lines, in order.
    pub lines: Vec<Line>,
}

/// A HAProxy configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyConfig {
    /// The sections in file order; lines before the first section are left out.
    pub sections: Vec<Section>,
}

impl HaproxyConfig {
    /// Reads a configuration file's text. A section starts at an unindented section keyword.
    pub fn parse(text: &str) -> HaproxyConfig {
        let mut sections: Vec<Section> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("");
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            let Some(first) = words.first() else { continue };
            if SECTION_KEYWORDS.contains(&first.as_str()) && !raw.starts_with(char::is_whitespace) {
                sections.push(Section {
                    kind: first.clone(),
                    name: words.get(1).cloned().unwrap_or_default(),
                    lines: Vec::new(),
                });
            } else if let Some(section) = sections.last_mut() {
                section.lines.push(Line { number: i + 1, words });
            }
        }
        HaproxyConfig { sections }
    }
}

/// The keywords that open a section.
const SECTION_KEYWORDS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "program",
    "http-errors",
    "ring",
    "cache",
    "mailers",
    "crt-store",
    "traces",
];

/// Rules that may refuse clients, which this reader does not evaluate.
const ACCESS_RULES: &[&str] = &["http-request", "tcp-request", "acl", "block"];

/// Whether a `bind` address reaches beyond loopback.
fn bind_is_outward(addr: &str) -> bool {
    let addr = addr.split_once('@').map_or(addr, |(family, rest)| match family {
        "ipv4" | "ipv6" | "tcp" | "tcp4" | "tcp6" | "quic4" | "quic6" => rest,
        _ => "",
    });
    if addr.is_empty() || addr.starts_with('/') {
        return false;
    }
    match addr.rsplit_once(':') {
        Some(("", _)) | Some(("*", _)) => true,
        Some((host, _)) => !is_loopback_host(host),
        None => !is_loopback_host(addr),
    }
}

/// A `server` address as an upstream, when it names a port (or a Unix socket).
fn server_upstream(addr: &str) -> Option<Upstream> {
    if let Some(path) = addr.strip_prefix("unix@") {
        return Some(Upstream::Unix(path.to_string()));
    }
    if addr.starts_with('/') {
        return Some(Upstream::Unix(addr.to_string()));
    }
    let addr = addr.split_once('@').map_or(addr, |(_, rest)| rest);
    split_host_port(addr).map(|(h, p)| Upstream::Tcp(h, p))
}

/// Every upstream the haproxy configuration in `capture` serves on a listener beyond loopback.
pub fn published(capture: &CommandCapture) -> Vec<Published> {
    let file = capture.command.last().cloned().unwrap_or_default();
    let all = HaproxyConfig::parse(&capture.output).sections;
    let mut out = Vec::new();
    for front in all.iter().filter(|s| s.kind == "frontend" || s.kind == "listen") {
        let outward: Vec<(&str, String)> = front
            .lines
            .iter()
            .filter(|l| l.keyword() == Some("bind"))
            .flat_map(|l| {
                let addrs = l.words.get(1).map_or("", String::as_str);
                addrs
                    .split(',')
                    .filter(|a| bind_is_outward(a))
                    .map(|a| (a, format!("bind {a} ({file}:{})", l.number)))
                    .collect::<Vec<_>>()
            })
            .collect();
        if outward.is_empty() {
            continue;
        }
        let mut backends: Vec<&Section> = Vec::new();
        if front.kind == "listen" {
            backends.push(front);
        }
        for line in &front.lines {
            if matches!(line.keyword(), Some("default_backend" | "use_backend")) {
                if let Some(b) = line
                    .words
                    .get(1)
                    .and_then(|n| all.iter().find(|s| s.kind == "backend" && &s.name == n))
                {
                    backends.push(b);
                }
            }
        }
        let rules: Vec<String> = front
            .lines
            .iter()
            .filter(|l| l.keyword().is_some_and(|k| ACCESS_RULES.contains(&k)))
            .map(|l| format!("{file}:{}: {}", l.number, l.words.join(" ")))
            .collect();
        let access = if rules.is_empty() {
            Access::Anyone
        } else {
            Access::Unevaluated(format!("access rules present and not evaluated: {}", rules.join("; ")))
        };
        let shown: Vec<&str> = outward.iter().map(|(_, shown)| shown.as_str()).collect();
        for backend in backends {
            for line in backend.lines.iter().filter(|l| l.keyword() == Some("server")) {
                let Some(upstream) = line.words.get(2).and_then(|a| server_upstream(a)) else {
                    continue;
                };
                let evidence = vec![
                    format!(
                        "{file}:{}: {} (in {} {}; `{}`)",
                        line.number,
                        line.words.join(" "),
                        backend.kind,
                        backend.name,
                        capture.command.join(" ")
                    ),
                    format!(
                        "{} {} listens beyond loopback: {}",
                        front.kind,
                        front.name,
                        shown.join(", ")
                    ),
                    "HAProxy passes the client's Host through unchanged but connects from this host".to_string(),
                ];
                out.push(Published {
                    proxy: Proxy::Haproxy,
                    pid: capture.pid,
                    upstream,
                    listen: outward.iter().map(|(addr, _)| addr.to_string()).collect(),
                    access: access.clone(),
                    evidence,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(text: &str) -> CommandCapture {
        CommandCapture {
            kind: "haproxy".into(),
            pid: 9,
            command: vec!["cat".into(), "/etc/h.cfg".into()],
            output: text.into(),
        }
    }

    #[test]
    fn frontends_publish_their_backends_servers() {
        let cfg = "global\n    daemon\nfrontend web\n    bind :8082\n    default_backend app\n\
                   frontend local\n    bind 127.0.0.1:8083\n    default_backend db\n\
                   backend app\n    server a1 127.0.0.1:7001 check\nbackend db\n    server d1 127.0.0.1:5432\n\
                   listen stats\n    bind *:9000,127.0.0.1:9001\n    server s unix@/run/s.sock\n";
        let found = published(&capture(cfg));
        let ups: Vec<&Upstream> = found.iter().map(|p| &p.upstream).collect();
        assert_eq!(
            ups,
            vec![
                &Upstream::Tcp("127.0.0.1".into(), 7001),
                &Upstream::Unix("/run/s.sock".into())
            ]
        );
        assert!(found[0].evidence[0].starts_with("/etc/h.cfg:10: server a1 127.0.0.1:7001"));
        assert!(found[1].evidence[1].contains("bind *:9000 (/etc/h.cfg:14)") && !found[1].evidence[1].contains("9001"));
    }

    #[test]
    fn access_rules_are_left_unevaluated() {
        let cfg = "frontend web\n    bind 0.0.0.0:80\n    tcp-request connection reject if !{ src 127.0.0.1 }\n    default_backend app\nbackend app\n    server a 127.0.0.1:7001\n";
        assert!(matches!(published(&capture(cfg))[0].access, Access::Unevaluated(_)));
    }
}
