//! Apache httpd: the running daemon's files as `-D DUMP_INCLUDES` listed them, each captured,
//! read into its `Listen` addresses, proxying directives and balancer members. `ProxyPass`,
//! `ProxyPassMatch` and `RewriteRule … [P]` in a virtual host (or the main server) whose port is
//! listened on beyond loopback publish their URL; the enclosing `<Location>`/`<Proxy>` may let
//! only local clients in (`Require local`, `Require ip 127.0.0.1`).

use super::endpoint::{is_loopback_host, split_host_port};
use super::reverse_proxy::{Access, Proxy, Published, Upstream};
use crate::facts::CommandCapture;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The container's kind, lowercased (`virtualhost`, `location`, `proxy` …).
    pub kind: String,
    /// Its arguments (`*:8084`, `/admin`, `balancer://app`).
    pub args: Vec<String>,
    /// The arguments of each `Require` line directly in it (`local`, `ip 127.0.0.1`, `all granted`).
    pub requires: Vec<String>,
}

/// A `Listen` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The address as written (`80`, `127.0.0.1:8085`, `[::]:443`).
    pub address: String,
    /// `file:line`.
    pub at: String,
}

/// A proxying directive (`ProxyPass`, `ProxyPassMatch`, `RewriteRule … [P]`) with where it is and
/// what encloses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// `file:line`.
    pub at: String,
    /// The line as written, trimmed.
    pub text: String,
    /// The URL it proxies to (`http://127.0.0.1:7001/`, `balancer://app/`, `unix:/run/x|http://…`).
    pub url: String,
    /// The containers around it, outermost first.
    pub stack: Vec<Container>,
}

/// A `BalancerMember` of a `<Proxy balancer://…>` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerMember {
    /// The balancer's name without a trailing slash (`balancer://app`).
    pub balancer: String,
    /// The member's URL.
    pub url: String,
}

/// What the captured files of one Apache say about proxying.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApacheConfig {
    /// Every `Listen`, in file order.
    pub listens: Vec<Listen>,
    /// Every proxying directive, in file order.
    pub passes: Vec<Pass>,
    /// Every balancer member, in file order.
    pub members: Vec<BalancerMember>,
}

impl ApacheConfig {
    /// Reads the files of one Apache, as `(path, text)` in the order `-D DUMP_INCLUDES` listed
    /// them. Containers are tracked per file; an unmatched closing tag closes nothing.
    pub fn parse(files: &[(&str, &str)]) -> ApacheConfig {
        let mut config = ApacheConfig::default();
        for (path, text) in files {
            config.read_file(path, text);
        }
        config
    }

    fn read_file(&mut self, path: &str, text: &str) {
        let mut stack: Vec<Container> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
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
                "listen" => self.listens.extend(args.first().map(|a| Listen {
                    address: a.clone(),
                    at: at.clone(),
                })),
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
                        self.members.push(BalancerMember {
                            balancer: b.trim_end_matches('/').to_string(),
                            url: url.clone(),
                        });
                    }
                }
                "proxypass" | "proxypassmatch" => {
                    let in_location = stack.iter().any(|c| c.kind.starts_with("location"));
                    let url = if in_location { args.first() } else { args.get(1) };
                    if let Some(url) = url.filter(|u| u.as_str() != "!") {
                        self.passes.push(Pass {
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
                        self.passes.push(Pass {
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

/// Every upstream the Apache whose includes list is `includes` serves on a listener beyond
/// loopback; its files are the `apache` captures of the same pid in `all`.
pub fn published(includes: &CommandCapture, all: &[CommandCapture]) -> Vec<Published> {
    let files: Vec<(&str, &str)> = all
        .iter()
        .filter(|c| c.kind == "apache" && c.pid == includes.pid)
        .map(|c| (c.command.last().map_or("", String::as_str), c.output.as_str()))
        .collect();
    let ApacheConfig {
        listens,
        passes,
        members,
    } = ApacheConfig::parse(&files);
    let outward_ports: Vec<(u16, &Listen)> = listens
        .iter()
        .filter_map(|l| match port_and_outward(&l.address) {
            Some((port, true)) => Some((port, l)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for pass in passes {
        let vhost = pass.stack.iter().find(|c| c.kind == "virtualhost");
        let published_on: Vec<&Listen> = outward_ports
            .iter()
            .filter(|(port, _)| match vhost {
                None => true,
                Some(v) => v
                    .args
                    .iter()
                    .filter_map(|a| port_and_outward(a))
                    .any(|(p, outward)| p == *port && outward),
            })
            .map(|(_, listen)| *listen)
            .collect();
        if published_on.is_empty() {
            continue;
        }
        let access = match local_only(&pass.stack) {
            Some(true) => Access::LoopbackOnly,
            _ if pass
                .stack
                .iter()
                .any(|c| c.requires.iter().any(|r| r.contains("user") || r.contains("group"))) =>
            {
                Access::Unevaluated("the location demands authentication (Require user/group); not evaluated".into())
            }
            _ => Access::Anyone,
        };
        let urls: Vec<String> = match pass.url.strip_prefix("balancer://") {
            Some(name) => {
                let key = format!("balancer://{}", name.split('/').next().unwrap_or(name));
                members
                    .iter()
                    .filter(|m| m.balancer == key)
                    .map(|m| m.url.clone())
                    .collect()
            }
            None => vec![pass.url.clone()],
        };
        for url in urls {
            let Some(upstream) = url_upstream(&url) else { continue };
            let evidence = vec![
                format!("{}: {} (`{}`)", pass.at, pass.text, includes.command.join(" ")),
                format!(
                    "published on {}",
                    published_on
                        .iter()
                        .map(|l| format!("Listen {} ({})", l.address, l.at))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "Apache sends the upstream's own name as Host unless ProxyPreserveHost On, and connects from this host"
                    .into(),
            ];
            out.push(Published {
                proxy: Proxy::Apache,
                pid: includes.pid,
                upstream,
                listen: published_on.iter().map(|l| l.address.clone()).collect(),
                access: access.clone(),
                evidence,
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
    fn proxies_in_outward_vhosts_are_published_and_local_only_ones_marked() {
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
        let all_found = published(&includes, &all);
        let (local, found): (Vec<Published>, Vec<Published>) =
            all_found.into_iter().partition(|p| p.access == Access::LoopbackOnly);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].upstream, Upstream::Tcp("127.0.0.1".into(), 7001));
        assert_eq!(
            (found[0].access.clone(), found[0].listen.clone()),
            (Access::Anyone, vec!["8084".into()])
        );
        assert!(found[0].evidence[0].starts_with("/etc/apache2/sites/a.conf:2: ProxyPass"));
        assert!(found[0].evidence[1].contains("Listen 8084 (/etc/apache2/apache2.conf:1)"));
        let local: Vec<&Upstream> = local.iter().map(|p| &p.upstream).collect();
        assert_eq!(local, [&Upstream::Tcp("127.0.0.1".into(), 7002)], "Require local");
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
