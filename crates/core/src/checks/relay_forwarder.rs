//! `relay.forwarder`: a running forwarder process whose listening side reaches beyond loopback and
//! whose destination is a loopback service — socat, ssh `-L`/`-R`/`-D`, ncat, `kubectl
//! port-forward --address`, docker-proxy, systemd-socket-proxyd — plus user-mode network stacks
//! (slirp4netns, pasta) that hand a sandbox the host's loopback.
//!
//! Identified from the process's argv; the listening side comes from the sockets it holds. The
//! finding is on the destination service when that is on this host (its owner is the one whose
//! boundary breaks), otherwise on the forwarder's own listener.

use super::relay_target::Listeners;
use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::Process;
use crate::readers::forwarder_argv::{file_name, forwards_as, is_forwarder, Destination, Forward, Tool};
use crate::report::{shown, Attacker, Confidence, Finding, Severity, Status};
use std::collections::HashMap;

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

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let facts = ctx.facts;
    let listeners = std::cell::OnceCell::new();
    let mut out: Vec<Finding> = Vec::new();
    // Forked children (socat fork, ncat -k) share the parent's argv and listener: one finding
    // per service and forwarding, naming every pid.
    let mut by_forwarding: HashMap<(Option<String>, Option<String>), usize> = HashMap::new();
    for process in &facts.processes {
        for forward in forwards_as(program(process), &process.cmdline) {
            let Some(finding) = judge(listeners.get_or_init(|| Listeners::new(facts)), process, &forward) else {
                continue;
            };
            let key = (finding.service.clone(), finding.evidence.get(1).cloned());
            match by_forwarding.get(&key).and_then(|&i| out.get_mut(i)) {
                Some(existing) => existing.evidence.push(format!("also held by pid {}", process.pid)),
                None => {
                    by_forwarding.insert(key, out.len());
                    out.push(finding);
                }
            }
        }
    }
    out
}

/// Which program a process is: its executable's file name when that is a known forwarder (a
/// caller chooses `argv[0]`: `exec -a myproxy socat …`, systemd's `ExecStart=@`), else its
/// kernel name, else `argv[0]`'s file name.
fn program(process: &Process) -> &str {
    let exe = process
        .exe
        .as_deref()
        .map(|e| file_name(e.strip_suffix(" (deleted)").unwrap_or(e)));
    let argv0 = process.cmdline.first().map(|a| file_name(a));
    [exe, Some(process.name.as_str()), argv0]
        .into_iter()
        .flatten()
        .find(|p| is_forwarder(p))
        .unwrap_or_default()
}

fn judge(all: &Listeners, process: &Process, forward: &Forward) -> Option<Finding> {
    let listeners = all.outward(process.pid);
    let who = format!(
        "{} (pid {}, uid {})",
        shown::clip(&process.name, shown::MAX_NAME),
        process.pid,
        process.uid
    );
    let mut evidence = vec![
        format!(
            "{who} runs `{}`",
            shown::clip(&process.cmdline.join(" "), shown::MAX_NAME)
        ),
        format!("{}: {}", forward.tool, forward.spec),
    ];
    if !forward.remote_listener && forward.destination != Destination::SandboxLoopback {
        if listeners.is_empty() {
            return None;
        }
        evidence.push(format!("it listens beyond loopback on {}", shown::list(listeners)));
    }
    let (service, severity, title) = match &forward.destination {
        Destination::LocalTcp(host, port) => {
            let (id, listening) = all.loopback_tcp_target(host, *port);
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
                        shown::list(listeners)
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
            let exposed = all.loopback_services();
            if !exposed.is_empty() {
                evidence.push(format!(
                    "loopback services the sandbox reaches: {}",
                    shown::list(exposed)
                ));
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
        title: title.into(),
        evidence,
        fix: fix(forward.tool).into(),
        subject: None,
    })
}

fn fix(tool: Tool) -> &'static str {
    match tool {
        Tool::Socat => {
            "bind the listening side to loopback (TCP-LISTEN:PORT,bind=127.0.0.1) or restrict \
                    its clients (range=…), or stop the forwarder"
        }
        Tool::Ssh => {
            "bind forwards to loopback (-L 127.0.0.1:PORT:…, no -g; on servers GatewayPorts no) \
                  or stop the forwarding"
        }
        Tool::Slirp4netns => "run slirp4netns with --disable-host-loopback",
        Tool::Pasta => "run pasta with --no-map-gw (or --map-host-loopback none)",
        Tool::Kubectl => "use kubectl port-forward without --address (it defaults to localhost)",
        Tool::Ncat | Tool::DockerProxy | Tool::SocketProxyd => {
            "bind the forwarder's listening side to loopback, restrict its clients, or stop it"
        }
    }
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

    /// `exec -a myproxy socat …`: argv[0] is the caller's choice, the executable is socat.
    #[test]
    fn a_renamed_argv0_is_told_by_the_executable() {
        use crate::checks::test_facts::{base, inet};
        use crate::facts::Protocol;
        let mut facts = base();
        let mut listener = inet(Protocol::Tcp, "0.0.0.0", 9400);
        listener.owners = vec![42];
        facts.inet_sockets.push(listener);
        let mut p = process("myproxy TCP-LISTEN:9400,bind=0.0.0.0,fork TCP:127.0.0.1:7001");
        p.exe = Some("/usr/bin/socat".into());
        facts.processes = vec![p.clone()];
        let found = evaluate(&Context::new(&facts));
        assert_eq!(found.len(), 1, "{found:#?}");
        // Nothing names the program: no finding (argv alone does not make a forwarder).
        p.exe = None;
        facts.processes = vec![p];
        assert!(evaluate(&Context::new(&facts)).is_empty());
    }
}
