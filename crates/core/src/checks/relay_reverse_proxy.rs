//! `relay.reverse-proxy`: a reverse proxy publishes a loopback upstream on a listener that
//! reaches beyond loopback. Read from the running proxies' own configuration dumps — nginx
//! (`nginx -T`), HAProxy (its `-f` files), Caddy (`caddy adapt`), Apache (`-D DUMP_INCLUDES` and
//! the files it lists). The finding is on the upstream service, with the file and line.

use super::relay_target::loopback_tcp_target;
use super::{reverse_proxy_apache, reverse_proxy_caddy, reverse_proxy_haproxy, reverse_proxy_nginx};
use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::HostFacts;
use crate::readers::endpoint::is_loopback_host;
use crate::report::{Attacker, Confidence, Finding, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::RelayReverseProxy,
        attackers: &[Attacker::Remote],
        stage: Stage::Inspect,
        summary: "a reverse-proxy configuration publishes a loopback upstream on a non-loopback listener",
        why: "the proxy connects from 127.0.0.1 and rewrites Host, so the upstream's loopback-peer \
              and Host checks pass for every remote client (Home Assistant trusted_networks, Emby)",
    },
    evaluate: Some(evaluate),
};

/// Where a proxy sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Upstream {
    /// `host:port` over TCP.
    Tcp(String, u16),
    /// A Unix socket path.
    Unix(String),
}

/// One upstream a proxy publishes beyond loopback, as a proxy-specific reader found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Published {
    /// `nginx`, `haproxy`, `caddy`, `apache`.
    pub proxy: &'static str,
    /// The proxy's pid.
    pub pid: u32,
    /// Where it sends requests.
    pub upstream: Upstream,
    /// The directive (`file:line: …`), the listener(s) beyond loopback, the Host handling.
    pub evidence: Vec<String>,
    /// `Open`, or `Unknown` when access rules were present that the reader does not evaluate.
    pub status: Status,
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let captures = &ctx.facts.relays.captures;
    let mut published = Vec::new();
    for capture in captures {
        match capture.kind.as_str() {
            "nginx" => published.extend(reverse_proxy_nginx::published(capture)),
            "haproxy" => published.extend(reverse_proxy_haproxy::published(capture)),
            "caddy" => published.extend(reverse_proxy_caddy::published(capture, captures)),
            "apache-includes" => published.extend(reverse_proxy_apache::published(capture, captures)),
            _ => {}
        }
    }
    let mut out: Vec<Finding> = Vec::new();
    for p in published {
        add(ctx.facts, p, &mut out);
    }
    out
}

/// Adds one published upstream, merging with a finding already on the same service.
fn add(facts: &HostFacts, p: Published, out: &mut Vec<Finding>) {
    let (service, shown) = match &p.upstream {
        Upstream::Tcp(host, port) if is_loopback_host(host) => {
            let (id, listening) = loopback_tcp_target(facts, host, *port);
            let now = if listening { "" } else { " (nothing listens there now)" };
            (id, format!("{host}:{port}{now}"))
        }
        Upstream::Unix(path) => (format!("unix:{path}"), format!("unix:{path}")),
        Upstream::Tcp(..) => return,
    };
    let mut evidence = p.evidence;
    evidence.push(format!(
        "{} connects to the upstream ({shown}) from this host and sets Host itself unless told \
         otherwise, so the upstream's own Host or loopback-peer checks do not tell remote clients apart",
        p.proxy
    ));
    if let Some(existing) = out.iter_mut().find(|f| f.service.as_deref() == Some(service.as_str())) {
        for line in evidence {
            if !existing.evidence.contains(&line) {
                existing.evidence.push(line);
            }
        }
        if p.status == Status::Open {
            existing.status = Status::Open;
        }
        return;
    }
    out.push(Finding {
        check: CHECK.spec.id,
        service: Some(service),
        attacker: Attacker::Remote,
        severity: Severity::High,
        status: p.status,
        confidence: Confidence::Inspected,
        title: format!("published beyond loopback by {} (pid {})", p.proxy, p.pid),
        evidence,
        fix: "make the proxy listen on 127.0.0.1/::1 only, or restrict who may use that route \
              (nginx: allow 127.0.0.1; deny all; Apache: Require local; HAProxy/Caddy: a client-address \
              rule) or put authentication in front; do not rely on the upstream's own Host or peer checks"
            .to_string(),
        subject: None,
    });
}
