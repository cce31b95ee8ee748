//! `local.tcp-any-uid`: loopback TCP/UDP services accept every local user.

use super::{Check, CheckSpec, Context, Stage};
use crate::inventory::{describe_owner, inet_scope, inet_service_id, is_inet_service};
use crate::report::{Attacker, Confidence, Finding, Scope, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: "local.tcp-any-uid",
        attackers: &[Attacker::LocalUser],
        stage: Stage::Inspect,
        summary: "loopback TCP/UDP listener with no owner-match restriction: every local uid can connect",
        why: "binding to 127.0.0.1 keeps the network out, not other users: any account, sandboxed \
              app or compromised daemon on this host connects as freely as the owner",
    },
    evaluate: Some(evaluate),
};

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for socket in ctx.facts.inet_sockets.iter().filter(|s| is_inet_service(s) && inet_scope(s) == Scope::Loopback) {
        let id = inet_service_id(socket);
        if out.iter().any(|f| f.service.as_deref() == Some(id.as_str())) {
            continue;
        }
        let proto = socket.protocol.as_str();
        out.push(Finding {
            check: CHECK.spec.id.to_string(),
            service: Some(id.clone()),
            attacker: Attacker::LocalUser,
            severity: Severity::Low,
            status: Status::Open,
            confidence: Confidence::Inspected,
            title: format!("every local user can connect (loopback {} has no per-user access control)", proto.to_uppercase()),
            evidence: vec![
                format!("{id} is held by {}", describe_owner(ctx.facts, &socket.owners)),
                "no firewall output rule restricting the connecting uid (meta skuid / -m owner) covers this port".into(),
            ],
            fix: format!(
                "serve on a Unix socket in a directory only the intended users can search, or allow \
                 only the intended uids in an nftables output chain: `oif lo {proto} dport {} meta skuid \
                 != <uid> reject` (root and descriptor passing bypass owner matches)",
                socket.port
            ),
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
    fn loopback_listeners_of_both_families_are_flagged_once_each() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        facts.inet_sockets.push(inet(Protocol::Udp, "::1", 53));
        facts.inet_sockets.push(inet(Protocol::Tcp, "0.0.0.0", 22));
        let found = run(&CHECK, &facts);
        let ids: Vec<_> = found.iter().filter_map(|f| f.service.as_deref()).collect();
        assert_eq!(ids, vec!["tcp:127.0.0.1:7001", "udp:[::1]:53"]);
        assert!(found[0].evidence[0].contains("svc (pid 100, uid 1000)"));
    }
}
