//! `relay.forwarder`: a running forwarder process whose listening side reaches beyond loopback and
//! whose destination is a loopback service — socat, ssh `-L`/`-R`/`-D`, ncat, `kubectl
//! port-forward --address`, docker-proxy, systemd-socket-proxyd — plus user-mode network stacks
//! (slirp4netns, pasta) that hand a sandbox the host's loopback.
//!
//! Identified from the process's argv; the listening side comes from the sockets it holds. The
//! finding is on the destination service when that is on this host (its owner is the one whose
//! boundary breaks), otherwise on the forwarder's own listener.

use super::relay_target::{loopback_services, loopback_tcp_target, outward_listeners};
use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::{HostFacts, Process};
use crate::readers::endpoint::{is_loopback_host, split_host_port};
use crate::report::{Attacker, Confidence, Finding, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::RelayForwarder,
        attackers: &[Attacker::Remote],
        stage: Stage::Inspect,
        summary: "a running forwarder (socat, ssh -L/-R/-D, ncat, kubectl port-forward, docker-proxy, \
                  systemd-socket-proxyd, slirp4netns/pasta) publishes a loopback service",
        why: "the forwarder accepts remote clients and connects to the service from 127.0.0.1, so the \
              service sees a local peer (kubectl port-forward --address 0.0.0.0, slirp4netns without \
              --disable-host-loopback)",
    },
    evaluate: Some(evaluate),
};

/// Where a forwarder delivers its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// A TCP `host:port` on this host.
    LocalTcp(String, u16),
    /// A Unix socket path on this host.
    LocalUnix(String),
    /// A loopback port of another machine (the ssh server, a pod).
    Elsewhere(String),
    /// Every loopback service of this host, from inside a sandbox.
    SandboxLoopback,
}

/// One forwarding the argv asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Forward {
    /// The tool, as named in evidence.
    tool: &'static str,
    /// The argument that sets it up.
    spec: String,
    /// Where clients end up.
    destination: Destination,
    /// The listening side is on another machine (`ssh -R`).
    remote_listener: bool,
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let facts = ctx.facts;
    let mut out: Vec<Finding> = Vec::new();
    for process in &facts.processes {
        for forward in forwards(process) {
            let listeners = outward_listeners(facts, process.pid);
            let Some(finding) = judge(facts, process, &forward, &listeners) else {
                continue;
            };
            // Forked children (socat fork, ncat -k) share the parent's argv and listener: one
            // finding per service and forwarding, naming every pid.
            let same = out
                .iter_mut()
                .find(|f| f.service == finding.service && f.evidence.get(1) == finding.evidence.get(1));
            match same {
                Some(existing) => existing.evidence.push(format!("also held by pid {}", process.pid)),
                None => out.push(finding),
            }
        }
    }
    out
}

fn judge(facts: &HostFacts, process: &Process, forward: &Forward, listeners: &[String]) -> Option<Finding> {
    let who = format!("{} (pid {}, uid {})", process.name, process.pid, process.uid);
    let mut evidence = vec![
        format!("{who} runs `{}`", process.cmdline.join(" ")),
        format!("{}: {}", forward.tool, forward.spec),
    ];
    if !forward.remote_listener && forward.destination != Destination::SandboxLoopback {
        if listeners.is_empty() {
            return None;
        }
        evidence.push(format!("it listens beyond loopback on {}", listeners.join(", ")));
    }
    let (service, severity, title) = match &forward.destination {
        Destination::LocalTcp(host, port) => {
            let (id, listening) = loopback_tcp_target(facts, host, *port);
            if !listening {
                evidence.push(format!("nothing listens on {host}:{port} now"));
            }
            let (severity, title) = if forward.remote_listener {
                (
                    Severity::Medium,
                    format!("published on a remote ssh server by {}", forward.tool),
                )
            } else {
                (
                    Severity::High,
                    format!(
                        "published beyond loopback by {} on {}",
                        forward.tool,
                        listeners.join(", ")
                    ),
                )
            };
            (Some(id), severity, title)
        }
        Destination::LocalUnix(path) => (
            Some(format!("unix:{path}")),
            Severity::High,
            format!("Unix socket published beyond loopback by {}", forward.tool),
        ),
        Destination::Elsewhere(what) => (
            listeners.first().cloned(),
            Severity::Medium,
            format!("publishes {what} to the network"),
        ),
        Destination::SandboxLoopback => {
            let exposed = loopback_services(facts);
            if !exposed.is_empty() {
                evidence.push(format!("loopback services the sandbox reaches: {}", exposed.join(", ")));
            }
            (
                None,
                Severity::Medium,
                format!("{} hands its sandbox this host's loopback", forward.tool),
            )
        }
    };
    evidence.push(
        "the forwarder connects from this host, so the service sees a local peer and cannot tell \
         remote clients apart"
            .to_string(),
    );
    Some(Finding {
        check: CHECK.spec.id,
        service,
        attacker: Attacker::Remote,
        severity,
        status: Status::Open,
        confidence: Confidence::Inspected,
        title,
        evidence,
        fix: fix(forward.tool).to_string(),
        subject: None,
    })
}

fn fix(tool: &str) -> &'static str {
    match tool {
        "socat" => {
            "bind the listening side to loopback (TCP-LISTEN:PORT,bind=127.0.0.1) or restrict \
                    its clients (range=…), or stop the forwarder"
        }
        "ssh" => {
            "bind forwards to loopback (-L 127.0.0.1:PORT:…, no -g; on servers GatewayPorts no) \
                  or stop the forwarding"
        }
        "slirp4netns" => "run slirp4netns with --disable-host-loopback",
        "pasta" => "run pasta with --no-map-gw (or --map-host-loopback none)",
        "kubectl" => "use kubectl port-forward without --address (it defaults to localhost)",
        _ => "bind the forwarder's listening side to loopback, restrict its clients, or stop it",
    }
}

/// The forwardings a process's argv sets up.
fn forwards(process: &Process) -> Vec<Forward> {
    let argv = &process.cmdline;
    let Some(program) = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a)) else {
        return Vec::new();
    };
    let args = &argv[1..];
    match program {
        "socat" => socat(args).into_iter().collect(),
        "ssh" => ssh(args),
        "ncat" => ncat(args).into_iter().collect(),
        "kubectl" => kubectl(args).into_iter().collect(),
        "docker-proxy" => docker_proxy(args).into_iter().collect(),
        "systemd-socket-proxyd" => socket_proxyd(args).into_iter().collect(),
        "slirp4netns" if !args.iter().any(|a| a == "--disable-host-loopback") => vec![Forward {
            tool: "slirp4netns",
            spec: "no --disable-host-loopback: the sandbox reaches host loopback as 10.0.2.2".into(),
            destination: Destination::SandboxLoopback,
            remote_listener: false,
        }],
        "pasta" | "passt"
            if !args
                .iter()
                .any(|a| a == "--no-map-gw" || a == "--map-host-loopback=none")
                && !args.windows(2).any(|w| w[0] == "--map-host-loopback" && w[1] == "none") =>
        {
            vec![Forward {
                tool: "pasta",
                spec: "no --no-map-gw: the sandbox reaches host loopback at its gateway address".into(),
                destination: Destination::SandboxLoopback,
                remote_listener: false,
            }]
        }
        _ => Vec::new(),
    }
}

/// A local destination from `host:port` when the host is loopback.
fn local_tcp(spec: &str) -> Option<Destination> {
    let (host, port) = split_host_port(spec)?;
    is_loopback_host(&host).then_some(Destination::LocalTcp(host, port))
}

fn socat(args: &[String]) -> Option<Forward> {
    let addresses: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') || a.as_str() == "-")
        .collect();
    let [first, second] = addresses.as_slice() else {
        return None;
    };
    let is_listen = |a: &str| {
        let kind = a.split(':').next().unwrap_or("").to_ascii_uppercase();
        kind.contains("-LISTEN") || kind.ends_with("-L")
    };
    let (listen, connect) = if is_listen(first) {
        (first, second)
    } else if is_listen(second) {
        (second, first)
    } else {
        return None;
    };
    let (kind, rest) = connect.split_once(':')?;
    let body = rest.split(',').next().unwrap_or(rest);
    let destination = match kind.to_ascii_uppercase().as_str() {
        "TCP" | "TCP4" | "TCP6" | "TCP-CONNECT" | "TCP4-CONNECT" | "TCP6-CONNECT" | "OPENSSL" | "SSL" => {
            local_tcp(body)?
        }
        "UNIX-CONNECT" | "UNIX-CLIENT" | "UNIX" | "GOPEN" => Destination::LocalUnix(body.to_string()),
        "ABSTRACT-CONNECT" | "ABSTRACT-CLIENT" => Destination::LocalUnix(format!("@{body}")),
        _ => return None,
    };
    Some(Forward {
        tool: "socat",
        spec: format!("{listen} → {connect}"),
        destination,
        remote_listener: false,
    })
}

/// Splits an ssh forwarding spec on colons outside brackets.
fn colon_fields(spec: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in spec.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

fn ssh(args: &[String]) -> Vec<Forward> {
    const WITH_VALUE: &str = "BbcDEeFIiJLlmOopQRSWw";
    let mut specs: Vec<(char, String)> = Vec::new();
    let mut destination: Option<String> = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            if destination.is_none() {
                destination = Some(arg.clone());
            }
            continue;
        };
        for (i, flag) in flags.char_indices() {
            if WITH_VALUE.contains(flag) {
                let attached = &flags[i + flag.len_utf8()..];
                let value = if attached.is_empty() {
                    iter.next().cloned()
                } else {
                    Some(attached.to_string())
                };
                if let (Some(value), true) = (value, matches!(flag, 'L' | 'R' | 'D')) {
                    specs.push((flag, value));
                }
                break;
            }
        }
    }
    let server = destination.unwrap_or_default();
    let server_host = server.rsplit('@').next().unwrap_or(&server).to_string();
    let server_is_local = is_loopback_host(&server_host);
    let mut out = Vec::new();
    for (flag, spec) in specs {
        let fields = colon_fields(&spec);
        let n = fields.len();
        let forward = match flag {
            'R' if n >= 3 => {
                let host = &fields[n - 2];
                let Ok(port) = fields[n - 1].parse::<u16>() else {
                    continue;
                };
                if !is_loopback_host(host) {
                    continue;
                }
                Forward {
                    tool: "ssh",
                    spec: format!("-R {spec} (remote listener on {server_host}, destination on this host)"),
                    destination: Destination::LocalTcp(host.clone(), port),
                    remote_listener: true,
                }
            }
            'L' if n >= 3 => {
                let host = &fields[n - 2];
                let Ok(port) = fields[n - 1].parse::<u16>() else {
                    continue;
                };
                if !is_loopback_host(host) {
                    continue;
                }
                let destination = match server_is_local {
                    true => Destination::LocalTcp(host.clone(), port),
                    false => Destination::Elsewhere(format!("loopback port {port} of ssh server {server_host}")),
                };
                Forward {
                    tool: "ssh",
                    spec: format!("-L {spec}"),
                    destination,
                    remote_listener: false,
                }
            }
            'D' => {
                let what = match server_is_local {
                    true => "every loopback service of this host (SOCKS through ssh to itself)".to_string(),
                    false => format!("every loopback service of ssh server {server_host} (SOCKS)"),
                };
                Forward {
                    tool: "ssh",
                    spec: format!("-D {spec}"),
                    destination: Destination::Elsewhere(what),
                    remote_listener: false,
                }
            }
            _ => continue,
        };
        out.push(forward);
    }
    out
}

fn ncat(args: &[String]) -> Option<Forward> {
    if !args
        .iter()
        .any(|a| a == "-l" || a == "--listen" || (a.starts_with('-') && !a.starts_with("--") && a.contains('l')))
    {
        return None;
    }
    let pos = args
        .iter()
        .position(|a| matches!(a.as_str(), "--sh-exec" | "-c" | "--exec" | "-e"))?;
    let command = args.get(pos + 1)?;
    let words: Vec<&str> = command.split_whitespace().collect();
    let destination = words.iter().find_map(|w| {
        let (kind, rest) = w.split_once(':')?;
        kind.to_ascii_uppercase()
            .starts_with("TCP")
            .then(|| local_tcp(rest.split(',').next().unwrap_or(rest)))
            .flatten()
    });
    let destination = destination.or_else(|| {
        let start = words
            .iter()
            .position(|w| matches!(w.rsplit('/').next(), Some("ncat" | "nc" | "netcat")))?;
        let rest: Vec<&&str> = words[start + 1..].iter().filter(|w| !w.starts_with('-')).collect();
        let (host, port) = (rest.first()?, rest.get(1)?.parse::<u16>().ok()?);
        is_loopback_host(host).then(|| Destination::LocalTcp(host.to_string(), port))
    })?;
    Some(Forward {
        tool: "ncat",
        spec: format!("{} \"{command}\"", args[pos]),
        destination,
        remote_listener: false,
    })
}

fn kubectl(args: &[String]) -> Option<Forward> {
    if !args.iter().any(|a| a == "port-forward") {
        return None;
    }
    let address = args
        .iter()
        .position(|a| a == "--address")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--address=").map(str::to_string))
        })?;
    if address.split(',').all(is_loopback_host) {
        return None;
    }
    Some(Forward {
        tool: "kubectl",
        spec: format!("port-forward --address {address}"),
        destination: Destination::Elsewhere("a pod's ports (kubectl connects to the pod's localhost)".into()),
        remote_listener: false,
    })
}

fn docker_proxy(args: &[String]) -> Option<Forward> {
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let (ip, port) = (value("-container-ip")?, value("-container-port")?.parse::<u16>().ok()?);
    is_loopback_host(ip).then(|| Forward {
        tool: "docker-proxy",
        spec: format!("-container-ip {ip} -container-port {port}"),
        destination: Destination::LocalTcp(ip.clone(), port),
        remote_listener: false,
    })
}

fn socket_proxyd(args: &[String]) -> Option<Forward> {
    let target = args.iter().find(|a| !a.starts_with('-'))?;
    let destination = if target.starts_with('/') {
        Destination::LocalUnix(target.clone())
    } else {
        local_tcp(target)?
    };
    Some(Forward {
        tool: "systemd-socket-proxyd",
        spec: target.clone(),
        destination,
        remote_listener: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(cmd: &str) -> Process {
        Process {
            pid: 42,
            ppid: 1,
            name: cmd
                .split_whitespace()
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string(),
            exe: None,
            cmdline: cmd.split_whitespace().map(str::to_string).collect(),
            uid: 1000,
        }
    }

    fn dests(cmd: &str) -> Vec<Destination> {
        forwards(&process(cmd)).into_iter().map(|f| f.destination).collect()
    }

    #[test]
    fn socat_forwards_to_loopback_are_recognised_in_either_order() {
        let tcp = Destination::LocalTcp("127.0.0.1".into(), 7001);
        assert_eq!(
            dests("socat TCP-LISTEN:8080,fork,reuseaddr TCP:127.0.0.1:7001"),
            vec![tcp.clone()]
        );
        assert_eq!(dests("socat -d -d TCP:127.0.0.1:7001 TCP4-LISTEN:8080,fork"), vec![tcp]);
        assert_eq!(
            dests("socat TCP-LISTEN:8080 UNIX-CONNECT:/run/app.sock"),
            vec![Destination::LocalUnix("/run/app.sock".into())]
        );
        assert!(dests("socat TCP-LISTEN:8080,fork TCP:192.0.2.7:80").is_empty());
    }

    #[test]
    fn ssh_forward_directions_are_told_apart() {
        assert_eq!(
            dests("ssh -N -R 9000:localhost:5432 user@bastion.example"),
            vec![Destination::LocalTcp("localhost".into(), 5432)]
        );
        assert!(matches!(
            dests("ssh -g -L 8080:127.0.0.1:5432 db.example")[0],
            Destination::Elsewhere(_)
        ));
        assert_eq!(
            dests("ssh -fNL0.0.0.0:8080:127.0.0.1:5432 localhost"),
            vec![Destination::LocalTcp("127.0.0.1".into(), 5432)]
        );
        assert!(dests("ssh -L 8080:intranet.example:80 gw.example").is_empty());
    }

    #[test]
    fn forked_children_make_one_finding() {
        use crate::checks::test_facts::{base, inet};
        use crate::facts::Protocol;
        let mut facts = base();
        let mut listener = inet(Protocol::Tcp, "0.0.0.0", 9090);
        listener.owners = vec![42, 43];
        facts.inet_sockets.push(listener);
        let parent = process("socat TCP-LISTEN:9090,fork TCP:127.0.0.1:7001");
        let child = Process {
            pid: 43,
            ppid: 42,
            ..parent.clone()
        };
        facts.processes = vec![parent, child];
        let found = evaluate(&Context::new(&facts));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].service.as_deref(), Some("tcp:127.0.0.1:7001"));
        assert!(found[0].evidence.iter().any(|e| e == "also held by pid 43"));
        assert!(found[0]
            .evidence
            .iter()
            .any(|e| e.contains("nothing listens on 127.0.0.1:7001")));
    }

    #[test]
    fn other_forwarders_are_recognised() {
        let mut p = process("ncat -l -k 8080 --sh-exec x");
        p.cmdline[5] = "ncat 127.0.0.1 7001".into();
        assert_eq!(
            forwards(&p)[0].destination,
            Destination::LocalTcp("127.0.0.1".into(), 7001)
        );
        assert_eq!(
            dests("systemd-socket-proxyd 127.0.0.1:8080"),
            vec![Destination::LocalTcp("127.0.0.1".into(), 8080)]
        );
        assert!(matches!(
            dests("kubectl port-forward --address 0.0.0.0 pod/web 8080:80")[0],
            Destination::Elsewhere(_)
        ));
        assert!(dests("kubectl port-forward pod/web 8080:80").is_empty());
        assert_eq!(
            dests("slirp4netns --configure 1234 tap0"),
            vec![Destination::SandboxLoopback]
        );
        assert!(dests("slirp4netns --disable-host-loopback 1234 tap0").is_empty());
    }
}
