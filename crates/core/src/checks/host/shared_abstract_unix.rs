//! `netns.shared-abstract-unix`: an abstract Unix socket in a network namespace that a container
//! shares (`--net=host`, Podman's `--network=host`, a host-network pod). Abstract names belong to
//! the network namespace and have no permission check, so every process of the container — root
//! in it, and whatever it runs — connects. containerd-shim's API socket was such a socket
//! (CVE-2020-15257): a host-network container connected and started privileged containers.

use super::{HostCheck, HostContext};
use crate::checks::{CheckId, CheckSpec, Stage};
use crate::facts::{Container, UnixName};
use crate::inventory::{unix_service_id, Processes};
use crate::report::{Attacker, Confidence, Finding, HostFinding, Severity, Status};

/// Catalogue entry.
pub const CHECK: HostCheck = HostCheck {
    spec: CheckSpec {
        id: CheckId::NetnsSharedAbstractUnix,
        attackers: &[Attacker::LocalUser],
        stage: Stage::AllNetns,
        summary: "abstract Unix socket in a network namespace a container shares (--net=host): every \
                  process of the container can connect",
        why: "abstract names belong to the network namespace and have no permission check: a container \
              run with the host's network connects to the host's abstract sockets as any local process \
              would — containerd-shim's API socket let such a container start privileged containers \
              (CVE-2020-15257)",
    },
    evaluate,
};

fn evaluate(ctx: &HostContext) -> Vec<HostFinding> {
    let mut out = Vec::new();
    for (ns, _) in ctx.namespaces() {
        let sharers: Vec<&Container> = ns.namespace.containers.iter().filter(|c| c.shares_namespace).collect();
        if sharers.is_empty() {
            continue;
        }
        let container_pids: Vec<u32> = sharers.iter().filter_map(|c| c.pid).collect();
        let processes = Processes::new(&ns.facts);
        for socket in &ns.facts.unix_sockets {
            let UnixName::Abstract(name) = &socket.name else {
                continue;
            };
            // The container's own socket is not the host's handed to it.
            if !socket.owners.is_empty() && socket.owners.iter().all(|pid| container_pids.contains(pid)) {
                continue;
            }
            let id = unix_service_id(socket);
            if out
                .iter()
                .any(|f: &HostFinding| f.netns == ns.namespace.id && f.finding.service.as_deref() == Some(&id))
            {
                continue;
            }
            let mut evidence = vec![format!(
                "abstract socket @{name} in {} ({}), held by {}",
                ns.namespace.id,
                ns.namespace.label(),
                processes.describe(&socket.owners)
            )];
            evidence.extend(sharers.iter().map(|c| sharer(c)));
            evidence.push(
                "an abstract socket has no owner or mode: any process in the network namespace connects, \
                 whatever its uid and whatever file system it sees"
                    .to_string(),
            );
            out.push(HostFinding {
                netns: ns.namespace.id.clone(),
                finding: Finding {
                    check: CHECK.spec.id,
                    service: Some(id),
                    attacker: Attacker::LocalUser,
                    severity: Severity::High,
                    status: Status::Open,
                    confidence: Confidence::Inspected,
                    title: format!(
                        "{} can connect: {} this network namespace",
                        names(&sharers),
                        if sharers.len() == 1 {
                            "a container shares"
                        } else {
                            "containers share"
                        }
                    )
                    .into(),
                    evidence,
                    fix: "bind a filesystem path in a directory the containers cannot see (containerd fixed \
                          CVE-2020-15257 so), or check SO_PEERCRED on every connection; run containers with \
                          a network namespace of their own instead of --net=host"
                        .into(),
                    subject: None,
                },
            });
        }
    }
    out
}

/// `container lw-hostnet (docker, busybox:1, network mode host, init pid 42)`.
fn sharer(c: &Container) -> String {
    let mut parts = vec![c.runtime.as_str().to_string()];
    parts.extend(c.image.clone());
    parts.extend(c.network_mode.as_ref().map(|m| format!("network mode {m}")));
    parts.extend(c.pid.map(|p| format!("init pid {p}")));
    format!(
        "container {} ({}) shares this network namespace",
        c.short_name(),
        parts.join(", ")
    )
}

/// `container a`, `containers a, b`.
fn names(sharers: &[&Container]) -> String {
    let list: Vec<String> = sharers.iter().map(|c| c.short_name()).collect();
    match list.len() {
        1 => format!("container {}", list[0]),
        _ => format!("containers {}", list.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{container, evaluate, namespace, set};
    use super::*;
    use crate::checks::test_facts::unix_path;

    fn abstract_socket(name: &str, owner: u32) -> crate::facts::UnixSocket {
        let mut s = unix_path("x", None, vec![]);
        s.owners = vec![owner];
        s.name = UnixName::Abstract(name.into());
        s
    }

    #[test]
    fn a_host_socket_in_a_namespace_a_container_shares_is_flagged_high() {
        let mut host = namespace(1, true);
        host.facts
            .unix_sockets
            .push(abstract_socket("/containerd-shim/moby/abc/shim.sock", 100));
        host.namespace.containers.push(container("hostnet", "host", 4242));
        let found = evaluate(&CHECK, &set(vec![host]));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0].finding;
        assert_eq!(
            (f.severity, f.status, f.attacker),
            (Severity::High, Status::Open, Attacker::LocalUser)
        );
        assert_eq!(f.service.as_deref(), Some("unix:@/containerd-shim/moby/abc/shim.sock"));
        assert!(f.title.starts_with("container hostnet can connect"), "{}", f.title);
        assert!(
            f.evidence.iter().any(|e| e.contains("network mode host")),
            "{:?}",
            f.evidence
        );
    }

    #[test]
    fn no_sharing_container_or_the_containers_own_socket_is_no_finding() {
        let mut host = namespace(1, true);
        host.facts.unix_sockets.push(abstract_socket("/tmp/.X11-unix/X0", 100));
        host.namespace.containers.push(container("bridged", "default", 4243));
        assert!(evaluate(&CHECK, &set(vec![host.clone()])).is_empty());
        host.namespace.containers = vec![container("hostnet", "host", 100)];
        assert!(
            evaluate(&CHECK, &set(vec![host])).is_empty(),
            "held by the container itself"
        );
    }
}
