//! `relay.ssh-forwarding`: a running sshd lets its users open TCP forwardings to this host's
//! loopback. Read from `sshd -T` of the running daemon (and `sshd -T -C user=…` per user when
//! its configuration has `Match` blocks).

use super::relay_target::Listeners;
use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::{CommandCapture, HostFacts};
use crate::readers::endpoint::{is_loopback_host, split_host_port};
use crate::readers::sshd::{SshdConfig, TcpForwarding};
use crate::report::{shown, Attacker, Confidence, Finding, Severity, Status};
use std::collections::{BTreeMap, HashSet};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::RelaySshForwarding,
        attackers: &[Attacker::Remote],
        stage: Stage::Inspect,
        summary: "sshd permits TCP forwarding to loopback for its users",
        why: "every account that can log in over ssh becomes a local client of every loopback \
              service (`ssh -L`); AllowTcpForwarding is yes by default",
    },
    evaluate: Some(evaluate),
};

/// What one `sshd -T` dump says about forwarding to loopback.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    /// Whether local (client-requested) TCP forwarding to a loopback destination is allowed.
    allowed: bool,
    /// The settings that decided it.
    settings: Vec<String>,
}

/// Judges one `sshd -T` dump: whether an `ssh -L` to a loopback destination is allowed.
fn verdict(config: &SshdConfig) -> Verdict {
    let allow = &config.allow_tcp_forwarding;
    let mut shown = vec![
        format!(
            "disableforwarding {}",
            if config.disable_forwarding { "yes" } else { "no" }
        ),
        format!("allowtcpforwarding {allow}"),
        format!("permitopen {}", config.permit_open.join(" ")),
    ];
    if let Some(g) = &config.gateway_ports {
        shown.push(format!("gatewayports {g}"));
    }
    let open_to_loopback = config.permit_open.iter().any(|p| {
        p == "any" || p == "*" || p.starts_with("*:") || split_host_port(p).is_some_and(|(h, _)| is_loopback_host(&h))
    });
    let allowed =
        !config.disable_forwarding && matches!(allow, TcpForwarding::Yes | TcpForwarding::Local) && open_to_loopback;
    Verdict {
        allowed,
        settings: shown,
    }
}

/// sshd processes holding a listener beyond loopback whose effective configuration is not in
/// the snapshot (`sshd -T` failed or was not run): unknown, never safe.
fn unread_daemons(facts: &HostFacts, listeners: &Listeners, captured: &[&CommandCapture]) -> Vec<Finding> {
    let captured: HashSet<u32> = captured.iter().map(|c| c.pid).collect();
    facts
        .processes
        .iter()
        .filter(|p| p.name == "sshd" && !captured.contains(&p.pid))
        .filter(|p| !listeners.outward(p.pid).is_empty())
        .map(|p| {
            unknown(
                listeners,
                p.pid,
                "its effective configuration (sshd -T) is not in the snapshot; see the limits".into(),
            )
        })
        .collect()
}

/// A finding that sshd `pid` may forward to loopback, for a reason that left it undecided.
fn unknown(listeners: &Listeners, pid: u32, why: String) -> Finding {
    let listeners = listeners.outward(pid);
    Finding {
        check: CHECK.spec.id,
        service: listeners.first().cloned(),
        attacker: Attacker::Remote,
        severity: Severity::High,
        status: Status::Unknown,
        confidence: Confidence::Inspected,
        title: "whether sshd lets its users forward TCP to loopback services is unknown".into(),
        evidence: vec![format!("sshd (pid {pid}): {why}")],
        fix: "run `sshd -T` as root to see the effective AllowTcpForwarding, DisableForwarding and \
              PermitOpen"
            .into(),
        subject: None,
        reaches: Vec::new(),
    }
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let facts = ctx.facts;
    let mut out: Vec<Finding> = Vec::new();
    let sshd: Vec<&CommandCapture> = facts.relays.captures.iter().filter(|c| c.kind == "sshd").collect();
    if sshd.is_empty() && !facts.processes.iter().any(|p| p.name == "sshd") {
        return out;
    }
    let listeners = Listeners::new(facts);
    let mut by_pid: BTreeMap<u32, Vec<&CommandCapture>> = BTreeMap::new();
    for capture in &sshd {
        by_pid.entry(capture.pid).or_default().push(capture);
    }
    out.extend(unread_daemons(facts, &listeners, &sshd));
    for (pid, captures) in by_pid {
        let mut reasons = Vec::new();
        for capture in captures {
            let Some(v) = SshdConfig::parse(&capture.output).map(|config| verdict(&config)) else {
                out.push(unknown(
                    &listeners,
                    pid,
                    format!("`{}` printed nothing sshd -T would", capture.command.join(" ")),
                ));
                continue;
            };
            if v.allowed {
                let scope = capture
                    .command
                    .windows(2)
                    .find(|w| w[0] == "-C")
                    .map(|w| format!("for connection {}", w[1]))
                    .unwrap_or_else(|| "globally".to_string());
                reasons.push(format!(
                    "`{}` {scope}: {}",
                    capture.command.join(" "),
                    v.settings.join(", ")
                ));
            }
        }
        if reasons.is_empty() {
            continue;
        }
        let outward = listeners.outward(pid);
        let (service, severity, attacker, reach) = match outward.first() {
            Some(first) => (
                Some(first.clone()),
                Severity::High,
                Attacker::Remote,
                format!("sshd (pid {pid}) listens beyond loopback on {}", shown::list(outward)),
            ),
            None => (
                None,
                Severity::Low,
                Attacker::LocalUser,
                format!("sshd (pid {pid}) listens on loopback only: its users are local already"),
            ),
        };
        let mut evidence = reasons;
        evidence.push(reach);
        let exposed = listeners.loopback_services();
        if !exposed.is_empty() {
            evidence.push(format!(
                "loopback services an ssh user reaches with -L: {}",
                shown::list(exposed)
            ));
        }
        evidence.push(
            "sshd connects to the destination from 127.0.0.1; sshd_config(5): disabling forwarding \
             helps only for users without shell access (they can run their own forwarders)"
                .to_string(),
        );
        out.push(Finding {
            check: CHECK.spec.id,
            service,
            attacker,
            severity,
            status: Status::Open,
            confidence: Confidence::Inspected,
            title: "sshd lets every user who can log in forward TCP to loopback services".into(),
            evidence,
            fix: "set DisableForwarding yes (or AllowTcpForwarding no) globally and allow it only in \
                  Match blocks for the users who need it, or restrict PermitOpen to the needed \
                  host:port pairs"
                .into(),
            subject: None,
            reaches: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict_of(output: &str) -> Option<Verdict> {
        SshdConfig::parse(output).map(|config| verdict(&config))
    }

    #[test]
    fn defaults_allow_and_disable_or_permitopen_refuse() {
        let default = "allowtcpforwarding yes\ndisableforwarding no\npermitopen any\ngatewayports no\n";
        assert!(verdict_of(default).unwrap().allowed);
        assert!(
            !verdict_of("allowtcpforwarding yes\ndisableforwarding yes\n")
                .unwrap()
                .allowed
        );
        assert!(!verdict_of("allowtcpforwarding remote\n").unwrap().allowed);
        assert!(
            !verdict_of("allowtcpforwarding yes\npermitopen 192.0.2.7:80 db.example:5432\n")
                .unwrap()
                .allowed
        );
        assert!(
            verdict_of("allowtcpforwarding local\npermitopen localhost:5432\n")
                .unwrap()
                .allowed
        );
        assert!(verdict_of("port 22\n").is_none());
    }

    #[test]
    fn an_sshd_whose_configuration_was_not_read_is_unknown() {
        let mut facts = crate::checks::test_facts::base();
        facts.processes[0].name = "sshd".into();
        facts.inet_sockets.push(crate::checks::test_facts::inet(
            crate::facts::Protocol::Tcp,
            "0.0.0.0",
            22,
        ));
        let found = crate::checks::test_facts::run(&CHECK, &facts);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            (found[0].status, found[0].service.as_deref()),
            (Status::Unknown, Some("tcp:0.0.0.0:22"))
        );
        facts.relays.captures.push(CommandCapture {
            kind: "sshd".into(),
            pid: 100,
            command: vec!["/usr/sbin/sshd".into(), "-T".into()],
            output: "allowtcpforwarding no\n".into(),
        });
        assert!(crate::checks::test_facts::run(&CHECK, &facts).is_empty());
    }
}
