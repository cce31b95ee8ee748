//! Apache httpd, for `relay.reverse-proxy`: the running daemon's files as `-D DUMP_INCLUDES`
//! listed them, each captured. `ProxyPass`, `ProxyPassMatch` and `RewriteRule … [P]` in a virtual
//! host (or the main server) whose port is listened on beyond loopback publish their URL, unless
//! the enclosing `<Location>`/`<Proxy>` only lets local clients in (`Require local`,
//! `Require ip 127.0.0.1`).

use super::relay_reverse_proxy::{Published, Upstream};
use crate::facts::CommandCapture;
use crate::readers::endpoint::{is_loopback_host, split_host_port};
use crate::report::Status;

/// Splits a configuration line into words, honouring double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// An open container (`<VirtualHost …>`, `<Location …>` …) and the `Require` lines seen in it.
#[derive(Debug, Clone)]
struct Container {
    kind: String,
    args: Vec<String>,
    requires: Vec<String>,
}

/// A proxying directive with where it is and what encloses it.
#[derive(Debug)]
struct Pass {
    at: String,
    text: String,
    url: String,
    stack: Vec<Container>,
}

/// What the captured files say: `Listen` addresses (with `file:line`), proxying directives, and
/// the members of `<Proxy balancer://…>` blocks as `(balancer, url)`.
#[derive(Debug, Default)]
struct Scan {
    listens: Vec<(String, String)>,
    passes: Vec<Pass>,
    members: Vec<(String, String)>,
}

fn scan(files: &[&CommandCapture]) -> Scan {
    let mut scan = Scan::default();
    let Scan {
        listens,
        passes,
        members,
    } = &mut scan;
    for file in files {
        let path = file.command.last().cloned().unwrap_or_default();
        let mut stack: Vec<Container> = Vec::new();
        for (i, raw) in file.output.lines().enumerate() {
            let at = format!("{path}:{}", i + 1);
            let line = raw.trim();
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some(close) = line.strip_prefix("</") {
                let kind = close.trim_end_matches('>').to_ascii_lowercase();
                if let Some(pos) = stack.iter().rposition(|c| c.kind == kind) {
                    stack.truncate(pos);
                }
                continue;
            }
            if let Some(open) = line.strip_prefix('<') {
                let w = words(open.trim_end_matches('>'));
                if let Some((kind, args)) = w.split_first() {
                    stack.push(Container {
                        kind: kind.to_ascii_lowercase(),
                        args: args.to_vec(),
                        requires: Vec::new(),
                    });
                }
                continue;
            }
            let w = words(line);
            let Some((name, args)) = w.split_first() else { continue };
            match name.to_ascii_lowercase().as_str() {
                "listen" => listens.extend(args.first().map(|a| (a.clone(), at.clone()))),
                "require" => {
                    if let Some(top) = stack.last_mut() {
                        top.requires.push(args.join(" "));
                    }
                }
                "balancermember" => {
                    let balancer = stack
                        .iter()
                        .rev()
                        .find(|c| c.kind == "proxy")
                        .and_then(|c| c.args.first());
                    if let (Some(b), Some(url)) = (balancer, args.first()) {
                        members.push((b.trim_end_matches('/').to_string(), url.clone()));
                    }
                }
                "proxypass" | "proxypassmatch" => {
                    let in_location = stack.iter().any(|c| c.kind.starts_with("location"));
                    let url = if in_location { args.first() } else { args.get(1) };
                    if let Some(url) = url.filter(|u| u.as_str() != "!") {
                        passes.push(Pass {
                            at,
                            text: line.to_string(),
                            url: url.clone(),
                            stack: stack.clone(),
                        });
                    }
                }
                "rewriterule"
                    if args.get(2).is_some_and(|f| {
                        f.trim_matches(['[', ']'])
                            .split(',')
                            .any(|x| x.eq_ignore_ascii_case("P"))
                    }) =>
                {
                    if let Some(url) = args.get(1) {
                        passes.push(Pass {
                            at,
                            text: line.to_string(),
                            url: url.clone(),
                            stack: stack.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    scan
}

/// The port of a `Listen` or `<VirtualHost>` address, and whether its address reaches beyond
/// loopback.
fn port_and_outward(addr: &str) -> Option<(u16, bool)> {
    if let Ok(port) = addr.parse::<u16>() {
        return Some((port, true));
    }
    let (host, port) = split_host_port(addr)?;
    Some((port, host == "*" || host == "_default_" || !is_loopback_host(&host)))
}

/// The upstream of a proxied URL (`http://127.0.0.1:7001/`, `unix:/run/x.sock|http://localhost/`).
fn url_upstream(url: &str) -> Option<Upstream> {
    if let Some(rest) = url.strip_prefix("unix:") {
        return Some(Upstream::Unix(rest.split('|').next().unwrap_or(rest).to_string()));
    }
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let default = match scheme {
        "https" | "wss" => 443,
        "ajp" => 8009,
        _ => 80,
    };
    match split_host_port(authority) {
        Some((h, p)) => Some(Upstream::Tcp(h, p)),
        None if !authority.contains('$') => Some(Upstream::Tcp(authority.to_string(), default)),
        None => None,
    }
}

/// Whether the `Require` lines of the innermost container that has any let only local clients in;
/// `None` when no container restricts.
fn local_only(stack: &[Container]) -> Option<bool> {
    let requires = &stack.iter().rev().find(|c| !c.requires.is_empty())?.requires;
    Some(requires.iter().all(|r| {
        let w = words(r);
        match w.first().map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("local") => true,
            Some("ip") => w[1..]
                .iter()
                .all(|a| is_loopback_host(a.split('/').next().unwrap_or(a))),
            _ => false,
        }
    }))
}

/// Every upstream published beyond loopback by the Apache whose includes list is `includes`.
pub(super) fn published(includes: &CommandCapture, all: &[CommandCapture]) -> Vec<Published> {
    let files: Vec<&CommandCapture> = all
        .iter()
        .filter(|c| c.kind == "apache" && c.pid == includes.pid)
        .collect();
    let Scan {
        listens,
        passes,
        members,
    } = scan(&files);
    let outward_ports: Vec<(u16, String)> = listens
        .iter()
        .filter_map(|(addr, at)| match port_and_outward(addr) {
            Some((port, true)) => Some((port, format!("Listen {addr} ({at})"))),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for pass in passes {
        let vhost = pass.stack.iter().find(|c| c.kind == "virtualhost");
        let published_on: Vec<&String> = outward_ports
            .iter()
            .filter(|(port, _)| match vhost {
                None => true,
                Some(v) => v
                    .args
                    .iter()
                    .filter_map(|a| port_and_outward(a))
                    .any(|(p, outward)| p == *port && outward),
            })
            .map(|(_, shown)| shown)
            .collect();
        if published_on.is_empty() {
            continue;
        }
        let status = match local_only(&pass.stack) {
            Some(true) => continue,
            _ if pass
                .stack
                .iter()
                .any(|c| c.requires.iter().any(|r| r.contains("user") || r.contains("group"))) =>
            {
                Status::Unknown
            }
            _ => Status::Open,
        };
        let urls: Vec<String> = match pass.url.strip_prefix("balancer://") {
            Some(name) => {
                let key = format!("balancer://{}", name.split('/').next().unwrap_or(name));
                members
                    .iter()
                    .filter(|(b, _)| *b == key)
                    .map(|(_, u)| u.clone())
                    .collect()
            }
            None => vec![pass.url.clone()],
        };
        for url in urls {
            let Some(upstream) = url_upstream(&url) else { continue };
            let mut evidence = vec![
                format!("{}: {} (`{}`)", pass.at, pass.text, includes.command.join(" ")),
                format!(
                    "published on {}",
                    published_on.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                "Apache sends the upstream's own name as Host unless ProxyPreserveHost On, and connects from this host"
                    .into(),
            ];
            if status == Status::Unknown {
                evidence.push("the location demands authentication (Require user/group); not evaluated".into());
            }
            out.push(Published {
                proxy: "apache",
                pid: includes.pid,
                upstream,
                evidence,
                status,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> CommandCapture {
        CommandCapture {
            kind: "apache".into(),
            pid: 3,
            command: vec!["cat".into(), path.into()],
            output: text.into(),
        }
    }

    #[test]
    fn proxies_in_outward_vhosts_are_published_unless_local_only() {
        let includes = CommandCapture {
            kind: "apache-includes".into(),
            pid: 3,
            command: vec!["apache2".into(), "-t".into()],
            output: String::new(),
        };
        let all = vec![
            includes.clone(),
            file("/etc/apache2/apache2.conf", "Listen 8084\nListen 127.0.0.1:8085\n"),
            file(
                "/etc/apache2/sites/a.conf",
                "<VirtualHost *:8084>\n    ProxyPass \"/\" \"http://127.0.0.1:7001/\"\n    <Location /admin>\n        Require local\n        ProxyPass http://127.0.0.1:7002/\n    </Location>\n</VirtualHost>\n\
                 <VirtualHost 127.0.0.1:8085>\n    ProxyPass / http://127.0.0.1:7003/\n</VirtualHost>\n",
            ),
        ];
        let found = published(&includes, &all);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].upstream, Upstream::Tcp("127.0.0.1".into(), 7001));
        assert!(found[0].evidence[0].starts_with("/etc/apache2/sites/a.conf:2: ProxyPass"));
        assert!(found[0].evidence[1].contains("Listen 8084 (/etc/apache2/apache2.conf:1)"));
    }

    #[test]
    fn urls_and_balancers() {
        assert_eq!(
            url_upstream("unix:/run/php.sock|fcgi://localhost/"),
            Some(Upstream::Unix("/run/php.sock".into()))
        );
        assert_eq!(
            url_upstream("http://localhost/"),
            Some(Upstream::Tcp("localhost".into(), 80))
        );
        let includes = CommandCapture {
            kind: "apache-includes".into(),
            pid: 3,
            command: vec![],
            output: String::new(),
        };
        let all = vec![file("/a.conf", "Listen 80\n<Proxy balancer://app>\n BalancerMember http://127.0.0.1:7001\n</Proxy>\nProxyPass /x balancer://app/\n")];
        assert_eq!(
            published(&includes, &all)[0].upstream,
            Upstream::Tcp("127.0.0.1".into(), 7001)
        );
    }
}
