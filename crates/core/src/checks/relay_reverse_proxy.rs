//! `relay.reverse-proxy`: a reverse proxy publishes a loopback upstream on a listener that
//! reaches beyond loopback. Read from the running proxies' own configuration dumps — nginx
//! (`nginx -T`), HAProxy (its `-f` files), Caddy (`caddy adapt`), Apache (`-D DUMP_INCLUDES` and
//! the files it lists). The finding is on the upstream service, with the file and line.

use super::relay_target::Listeners;
use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::HostFacts;
use crate::readers::endpoint::is_loopback_host;
use crate::readers::reverse_proxy::{published, Access, Published, Upstream};
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

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let published = published(&ctx.facts.relays.captures);
    let listeners = Listeners::new(ctx.facts);
    for p in published {
        add(&listeners, p, &mut out);
    }
    out.extend(unread(ctx.facts, &listeners));
    out
}

/// The process names of the reverse proxies whose configuration the collector reads.
const PROXIES: &[&str] = &["nginx", "haproxy", "caddy", "apache2", "httpd"];

/// Reverse proxies listening beyond loopback whose configuration is not in the snapshot (their
/// program was not run, or failed; the limits say why): what they publish is unknown, never
/// "nothing". A worker counts as read when its parent (the master) was.
fn unread(facts: &HostFacts, listeners: &Listeners) -> Vec<Finding> {
    // A Caddyfile read for line numbers is not the configuration (`caddy adapt` is).
    let read = |pid: u32| {
        facts
            .relays
            .captures
            .iter()
            .any(|c| c.pid == pid && matches!(c.kind.as_str(), "nginx" | "haproxy" | "caddy" | "apache"))
    };
    let mut out: Vec<Finding> = Vec::new();
    for p in facts.processes.iter().filter(|p| PROXIES.contains(&p.name.as_str())) {
        if read(p.pid) || (p.ppid != 0 && read(p.ppid)) {
            continue;
        }
        for listener in listeners.outward(p.pid).iter().cloned() {
            if out.iter().any(|f| f.service.as_deref() == Some(listener.as_str())) {
                continue;
            }
            out.push(Finding {
                check: CHECK.spec.id,
                service: Some(listener),
                attacker: Attacker::Remote,
                severity: Severity::Medium,
                status: Status::Unknown,
                confidence: Confidence::Inspected,
                title: format!(
                    "{} (pid {}) listens beyond loopback; whether it publishes a loopback upstream is unknown",
                    p.name, p.pid
                )
                .into(),
                evidence: vec![format!(
                    "{} (pid {}, uid {}): its configuration is not in the snapshot; {}",
                    p.name,
                    p.pid,
                    p.uid,
                    why_unread(facts, p.pid)
                )],
                fix: "run loopwarden as root (or as the proxy's own user) so that its configuration can be \
                      read, or check its upstreams by hand"
                    .into(),
                subject: None,
            });
        }
    }
    out
}

/// Why a proxy's configuration was not read: the collector's limit naming the process when there
/// is one; otherwise the collector never recognised it as the daemon its name says (a process
/// can name itself `nginx`), or it shared its command line with one already read.
fn why_unread(facts: &HostFacts, pid: u32) -> String {
    let named = format!("(pid {pid},");
    match facts
        .host
        .limits
        .iter()
        .find(|l| l.scope.starts_with("relays.") && l.detail.contains(&named))
    {
        Some(limit) => format!("the limits say why ({})", limit.scope),
        None => "it was not asked: its command line is not that of the daemon its name says, or is the same as \
                 one already asked"
            .to_string(),
    }
}

/// Adds one published upstream, merging with a finding already on the same service. A route
/// only loopback clients may use publishes nothing; rules the reader could not evaluate leave it
/// unknown.
fn add(listeners: &Listeners, p: Published, out: &mut Vec<Finding>) {
    let (status, unevaluated) = match p.access {
        Access::Anyone => (Status::Open, None),
        Access::LoopbackOnly => return,
        Access::Unevaluated(why) => (Status::Unknown, Some(why)),
    };
    let (service, shown) = match &p.upstream {
        Upstream::Tcp(host, port) if is_loopback_host(host) => {
            let (id, listening) = listeners.loopback_tcp_target(host, *port);
            let now = if listening { "" } else { " (nothing listens there now)" };
            (id, format!("{host}:{port}{now}"))
        }
        Upstream::Unix(path) => (format!("unix:{path}"), format!("unix:{path}")),
        Upstream::Tcp(..) => return,
    };
    let mut evidence = p.evidence;
    evidence.extend(unevaluated);
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
        if status == Status::Open {
            existing.status = Status::Open;
        }
        return;
    }
    out.push(Finding {
        check: CHECK.spec.id,
        service: Some(service),
        attacker: Attacker::Remote,
        severity: Severity::High,
        status,
        confidence: Confidence::Inspected,
        title: format!("published beyond loopback by {} (pid {})", p.proxy, p.pid).into(),
        evidence,
        fix: "make the proxy listen on 127.0.0.1/::1 only, or restrict who may use that route \
              (nginx: allow 127.0.0.1; deny all; Apache: Require local; HAProxy/Caddy: a client-address \
              rule) or put authentication in front; do not rely on the upstream's own Host or peer checks"
            .into(),
        subject: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, run};
    use crate::facts::{CommandCapture, HostFacts};

    fn with_capture(kind: &str, command: &str, output: &str) -> HostFacts {
        let mut facts = base();
        facts.relays.captures.push(CommandCapture {
            kind: kind.into(),
            pid: 9,
            command: command.split_whitespace().map(str::to_string).collect(),
            output: output.into(),
        });
        facts
    }

    /// A process named nginx that no one asked is unknown, and the evidence says why without
    /// pointing at a limit that does not exist; with the collector's limit, it points there.
    #[test]
    fn an_unread_proxy_says_why_it_was_not_read() {
        use crate::checks::test_facts::inet;
        use crate::facts::{Limit, Process, Protocol};
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "0.0.0.0", 8080));
        facts.processes.push(Process {
            pid: 100,
            ppid: 1,
            name: "nginx".into(),
            exe: Some("/usr/bin/python3.11".into()),
            cmdline: vec!["python3".into(), "lookalike.py".into()],
            uid: 1000,
        });
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].status, Status::Unknown);
        assert!(
            found[0].evidence[0].contains("it was not asked"),
            "{:?}",
            found[0].evidence
        );
        facts.host.limits.push(Limit {
            scope: "relays.nginx".into(),
            detail: "`nginx` (pid 100, uid 1000) was not asked for its configuration: …".into(),
        });
        let found = run(&CHECK, &facts);
        assert!(
            found[0].evidence[0].ends_with("the limits say why (relays.nginx)"),
            "{:?}",
            found[0].evidence
        );
    }

    #[test]
    fn access_rules_make_it_unknown() {
        let cfg = "frontend web\n    bind 0.0.0.0:80\n    tcp-request connection reject if !{ src 127.0.0.1 }\n    default_backend app\nbackend app\n    server a 127.0.0.1:7001\n";
        let found = run(&CHECK, &with_capture("haproxy", "cat /etc/h.cfg", cfg));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].status, Status::Unknown);
        assert!(found[0].evidence[3].starts_with("access rules present and not evaluated: /etc/h.cfg:3:"));
    }

    #[test]
    fn loopback_only_routes_publish_nothing() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp {\n server {\n  listen 8080;\n  \
                    location /open { proxy_pass http://127.0.0.1:7001; }\n  \
                    location /admin { allow 127.0.0.1; deny all; proxy_pass http://127.0.0.1:7002; }\n }\n}\n";
        let found = run(&CHECK, &with_capture("nginx", "nginx -T", dump));
        let services: Vec<Option<&str>> = found.iter().map(|f| f.service.as_deref()).collect();
        assert_eq!(services, [Some("tcp:127.0.0.1:7001")]);
        assert_eq!(found[0].status, Status::Open);
    }
}
