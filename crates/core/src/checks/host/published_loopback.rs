//! `netns.published-loopback`: a service bound only to the loopback of one network namespace
//! (a container's) that a forwarder publishes in another (the host's). pasta, the user-mode
//! network of rootless Podman, forwards its own ports into the namespace it serves, and a
//! connection that reaches such a port through its side's loopback is spliced to the
//! namespace's loopback (`127.0.0.1`/`::1`): every local user of the host then reaches a service
//! its owner bound to the container's loopback so that nobody outside the container would — and
//! the service sees `127.0.0.1` as its peer.
//!
//! docker-proxy and slirp4netns are not such forwarders: they connect to the container's own
//! address, where a loopback-only service does not listen.

use super::{HostCheck, HostContext};
use crate::addr::socket_label;
use crate::checks::{CheckId, CheckSpec, Stage};
use crate::facts::{HostFacts, InetSocket, NamespaceFacts, NamespaceLink, Process};
use crate::inventory::{inet_scope, inet_service_id, is_inet_service};
use crate::readers::pasta_ports::{forwards, is_pasta, PortForward};
use crate::report::{Attacker, Confidence, Finding, HostFinding, Scope, Severity, Status};

/// Catalogue entry.
pub const CHECK: HostCheck = HostCheck {
    spec: CheckSpec {
        id: CheckId::NetnsPublishedLoopback,
        attackers: &[Attacker::LocalUser],
        stage: Stage::AllNetns,
        summary: "a container's loopback-only service is published in another network namespace (the \
                  host's) by a forwarder that delivers to the container's loopback (pasta)",
        why: "pasta splices connections from its side's loopback to the namespace's 127.0.0.1/::1: a service \
              bound to a rootless container's loopback so that only the container reaches it answers every \
              local user of the host, and sees 127.0.0.1 as their address",
    },
    evaluate,
};

fn evaluate(ctx: &HostContext) -> Vec<HostFinding> {
    let mut out = Vec::new();
    for link in &ctx.set.links {
        let (Some(from), Some(to)) = (ctx.set.namespace(link.from), ctx.set.namespace(link.to)) else {
            continue;
        };
        let Some(process) = forwarder(ctx, link) else {
            continue;
        };
        // pasta by the file it runs (its kernel name only when that is unknown: any process may
        // set its own), never by the argv[0] it was given.
        if !is_pasta(process.exe.as_deref().unwrap_or(&process.name)) {
            continue;
        }
        for forward in forwards(process.cmdline.get(1..).unwrap_or_default()) {
            out.extend(published(&forward, process, from, to));
        }
    }
    out
}

/// The process of `link`, as the snapshot of its own namespace (or any) knows it.
fn forwarder<'a>(ctx: &'a HostContext, link: &NamespaceLink) -> Option<&'a Process> {
    ctx.set
        .namespace(link.from)
        .and_then(|n| process(&n.facts, link.pid))
        .or_else(|| ctx.set.namespaces.iter().find_map(|n| process(&n.facts, link.pid)))
}

/// Process `pid` in `facts`.
fn process(facts: &HostFacts, pid: u32) -> Option<&Process> {
    facts.processes.iter().find(|p| p.pid == pid)
}

/// The findings for one `-t`/`-u` option: every loopback-only service of `to` it forwards to,
/// whose port pasta really listens on in `from`.
fn published(forward: &PortForward, pasta: &Process, from: &NamespaceFacts, to: &NamespaceFacts) -> Vec<HostFinding> {
    let mut out: Vec<HostFinding> = Vec::new();
    for socket in to.facts.inet_sockets.iter().filter(|s| s.protocol == forward.protocol) {
        if !is_inet_service(socket) || inet_scope(socket) != Scope::Loopback || !loopback_only(&to.facts, socket) {
            continue;
        }
        let Some(listen) = forward.listen_port_for(socket.port) else {
            continue;
        };
        let Some(listener) = held_listener(&from.facts, pasta.pid, socket, listen) else {
            continue;
        };
        let id = inet_service_id(socket);
        if out.iter().any(|f| f.finding.service.as_deref() == Some(&id)) {
            continue;
        }
        let local_only = inet_scope(listener) == Scope::Loopback;
        out.push(HostFinding {
            netns: to.namespace.id.clone(),
            finding: Finding {
                check: CHECK.spec.id,
                service: Some(id.clone()),
                attacker: Attacker::LocalUser,
                severity: Severity::Medium,
                status: Status::Open,
                confidence: Confidence::Inspected,
                title: format!(
                    "published in {} ({}) on port {listen} by pasta: its local users reach this loopback-only service",
                    from.namespace.id,
                    from.namespace.label()
                )
                .into(),
                evidence: vec![
                    format!(
                        "pasta (pid {}, uid {}) runs `{}`",
                        pasta.pid,
                        pasta.uid,
                        pasta.cmdline.join(" ")
                    ),
                    format!(
                        "{}: port {listen} there is forwarded to port {} here; connections arriving through \
                         that namespace's loopback are spliced to this namespace's loopback",
                        forward.spec, socket.port
                    ),
                    format!(
                        "pasta listens on {}:{} in {}{}",
                        listener.protocol.as_str(),
                        socket_label(listener.address, listener.port),
                        from.namespace.id,
                        if local_only {
                            ""
                        } else {
                            " (and takes remote clients, which go to this namespace's address instead)"
                        }
                    ),
                    format!(
                        "{id} is bound to loopback only in {} ({}): its owner meant it for this namespace alone, \
                         and it sees every such client as 127.0.0.1",
                        to.namespace.id,
                        to.namespace.label()
                    ),
                ],
                fix: format!(
                    "forward only the ports meant to be public (pasta -t/-u with explicit ports instead of the \
                     default `auto`; Podman: publish with -p, run pasta with `-t none`), or bind the service to \
                     the namespace's own address, or restrict who reaches port {listen} there \
                     (`loopwarden harden --allow {listen}=USER` in that namespace)"
                )
                .into(),
                subject: None,
            },
        });
    }
    out
}

/// Whether no socket of `socket`'s protocol and port in `facts` takes traffic beyond loopback.
fn loopback_only(facts: &HostFacts, socket: &InetSocket) -> bool {
    facts
        .inet_sockets
        .iter()
        .filter(|s| s.protocol == socket.protocol && s.port == socket.port && is_inet_service(s))
        .all(|s| inet_scope(s) == Scope::Loopback)
}

/// pasta's own socket of `socket`'s protocol listening on `port` in `facts`.
fn held_listener<'a>(facts: &'a HostFacts, pid: u32, socket: &InetSocket, port: u16) -> Option<&'a InetSocket> {
    facts
        .inet_sockets
        .iter()
        .find(|s| s.protocol == socket.protocol && s.port == port && is_inet_service(s) && s.owners.contains(&pid))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{evaluate, namespace, set};
    use super::*;
    use crate::checks::test_facts::inet;
    use crate::facts::Protocol;

    fn pasta_host(argv: &str, listen: u16) -> NamespaceFacts {
        let mut host = namespace(1, true);
        host.facts.processes.push(Process {
            pid: 700,
            ppid: 1,
            name: "passt.avx2".into(),
            exe: Some("/usr/bin/passt.avx2".into()),
            cmdline: argv.split_whitespace().map(str::to_string).collect(),
            uid: 1000,
        });
        let mut listener = inet(Protocol::Tcp, "0.0.0.0", listen);
        listener.owners = vec![700];
        host.facts.inet_sockets.push(listener);
        host
    }

    fn container(service: &str, port: u16) -> NamespaceFacts {
        let mut c = namespace(2, false);
        c.facts.inet_sockets.push(inet(Protocol::Tcp, service, port));
        c
    }

    fn linked(namespaces: Vec<NamespaceFacts>) -> crate::facts::HostFactsSet {
        let mut s = set(namespaces);
        s.links.push(NamespaceLink {
            pid: 700,
            from: 1,
            to: 2,
        });
        s
    }

    #[test]
    fn a_containers_loopback_service_forwarded_by_pasta_is_flagged() {
        let s = linked(vec![
            pasta_host("pasta --netns /run/netns/c -t 28080:18080 -u none", 28080),
            container("127.0.0.1", 18080),
        ]);
        let found = evaluate(&CHECK, &s);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].netns, "net:[2]");
        let f = &found[0].finding;
        assert_eq!(f.service.as_deref(), Some("tcp:127.0.0.1:18080"));
        assert_eq!((f.attacker, f.status), (Attacker::LocalUser, Status::Open));
        assert!(f.title.contains("port 28080 by pasta"), "{}", f.title);
        assert!(
            f.evidence.iter().any(|e| e.contains("tcp:0.0.0.0:28080")),
            "{:?}",
            f.evidence
        );
    }

    #[test]
    fn pasta_is_told_by_its_executable_not_by_argv0() {
        let mut renamed = pasta_host("podman-net -t 28080:18080", 28080);
        let found = evaluate(&CHECK, &linked(vec![renamed.clone(), container("127.0.0.1", 18080)]));
        assert_eq!(found.len(), 1, "a pasta started as `exec -a podman-net` is still pasta");
        let forwarder = renamed
            .facts
            .processes
            .iter_mut()
            .find(|p| p.pid == 700)
            .expect("the forwarder");
        forwarder.exe = Some("/usr/bin/socat".into());
        forwarder.name = "socat".into();
        forwarder.cmdline[0] = "pasta".into();
        let impostor = evaluate(&CHECK, &linked(vec![renamed, container("127.0.0.1", 18080)]));
        assert!(impostor.is_empty(), "socat calling itself pasta is not read as pasta");
    }

    #[test]
    fn wildcard_services_unforwarded_ports_and_missing_listeners_are_not_flagged() {
        let wildcard = linked(vec![
            pasta_host("pasta -t 28080:18080", 28080),
            container("0.0.0.0", 18080),
        ]);
        assert!(evaluate(&CHECK, &wildcard).is_empty(), "published on purpose");
        let other_port = linked(vec![
            pasta_host("pasta -t 28080:18081", 28080),
            container("127.0.0.1", 18080),
        ]);
        assert!(evaluate(&CHECK, &other_port).is_empty());
        let not_listening = linked(vec![
            pasta_host("pasta -t 28080:18080", 9),
            container("127.0.0.1", 18080),
        ]);
        assert!(
            evaluate(&CHECK, &not_listening).is_empty(),
            "no listener of pasta's: nothing is published"
        );
        let unlinked = set(vec![
            pasta_host("pasta -t 28080:18080", 28080),
            container("127.0.0.1", 18080),
        ]);
        assert!(evaluate(&CHECK, &unlinked).is_empty());
    }
}
