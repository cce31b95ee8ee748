//! `bind.wildcard`: a listener that is not local-only at all.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::SocketState;
use crate::inventory::{describe_owner, inet_scope, inet_service_id, is_inet_service};
use crate::report::{Attacker, Confidence, Finding, Scope, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::BindWildcard,
        attackers: &[Attacker::Lan, Attacker::Remote],
        stage: Stage::Inspect,
        summary: "listener on 0.0.0.0, :: or a non-loopback address: not local-only at all",
        why: "a service bound beyond loopback answers every host that can route to it; \
              'localhost only' was never true for it",
    },
    evaluate: Some(evaluate),
};

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for socket in ctx.facts.inet_sockets.iter().filter(|s| is_inet_service(s)) {
        let scope = inet_scope(socket);
        // Bound to `lo` (SO_BINDTODEVICE): only traffic arriving on loopback reaches it.
        if scope == Scope::Loopback || socket.bound_device.as_deref() == Some("lo") {
            continue;
        }
        let id = inet_service_id(socket);
        if out.iter().any(|f| f.service.as_deref() == Some(id.as_str())) {
            continue;
        }
        let what = if scope == Scope::Wildcard {
            "every address"
        } else {
            "a non-loopback address"
        };
        let verb = if socket.state == SocketState::Listen {
            "listens"
        } else {
            "is bound"
        };
        let mut evidence = vec![format!(
            "{} {verb} on {} ({what}), held by {}",
            socket.protocol.as_str().to_uppercase(),
            id.split_once(':').map(|(_, rest)| rest).unwrap_or(&id),
            describe_owner(ctx.facts, &socket.owners)
        )];
        if socket.address.is_ipv6() && socket.address.is_unspecified() && socket.v6only == Some(false) {
            evidence.push("IPV6_V6ONLY is off: the socket takes IPv4 connections too".to_string());
        }
        if let Some(dev) = &socket.bound_device {
            evidence.push(format!("bound to device {dev} (SO_BINDTODEVICE)"));
        }
        out.push(Finding {
            check: CHECK.spec.id,
            service: Some(id),
            attacker: Attacker::Remote,
            severity: Severity::Medium,
            status: Status::Open,
            confidence: Confidence::Inspected,
            title: format!("reachable from the network, not only from this host ({what})"),
            evidence,
            fix: "bind to 127.0.0.1 and/or ::1 (or a Unix socket) if only local clients need it; \
                  otherwise restrict it in the firewall's input chain"
                .to_string(),
            subject: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet, run};
    use crate::facts::Protocol;

    #[test]
    fn a_wildcard_socket_bound_to_lo_is_local_only() {
        let mut facts = base();
        let mut s = inet(Protocol::Tcp, "0.0.0.0", 8080);
        s.bound_device = Some("lo".into());
        facts.inet_sockets.push(s);
        assert!(run(&CHECK, &facts).is_empty());
        facts.inet_sockets[0].bound_device = Some("eth0".into());
        assert_eq!(run(&CHECK, &facts).len(), 1);
    }
}
