//! `local.unix-abstract`: abstract Unix sockets have no permission check at all.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::{UnixName, UnixType};
use crate::inventory::unix_service_id;
use crate::report::{Attacker, Confidence, Finding, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::LocalUnixAbstract,
        attackers: &[Attacker::LocalUser],
        stage: Stage::Inspect,
        summary: "abstract Unix socket: no permission check at all",
        why: "abstract names live in the network namespace, not the filesystem: every process in the \
              namespace — any uid, and containers run with the host network — can connect \
              (containerd-shim CVE-2020-15257)",
    },
    evaluate: Some(evaluate),
};

fn kind_name(kind: UnixType) -> &'static str {
    match kind {
        UnixType::Stream => "stream",
        UnixType::Seqpacket => "seqpacket",
        UnixType::Dgram => "datagram",
    }
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for socket in &ctx.facts.unix_sockets {
        let UnixName::Abstract(name) = &socket.name else {
            continue;
        };
        let id = unix_service_id(socket);
        if !seen.insert(id.clone()) {
            continue;
        }
        out.push(Finding {
            check: CHECK.spec.id,
            service: Some(id),
            attacker: Attacker::LocalUser,
            severity: Severity::Medium,
            status: Status::Open,
            confidence: Confidence::Inspected,
            title: "any process in this network namespace can connect (abstract socket)".into(),
            evidence: vec![
                format!(
                    "abstract {} socket @{name}, held by {}",
                    kind_name(socket.kind),
                    ctx.processes.describe(&socket.owners)
                ),
                format!(
                    "owner uid: {}",
                    socket.uid.map(|u| u.to_string()).unwrap_or_else(|| "unknown".into())
                ),
            ],
            fix: "bind a filesystem path in a private directory instead, or check SO_PEERCRED on every \
                  connection (containerd fixed CVE-2020-15257 by moving to path sockets)"
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
    use crate::checks::test_facts::{base, run, unix_path};

    #[test]
    fn abstract_sockets_are_flagged_and_path_sockets_are_not() {
        let mut facts = base();
        let mut abs = unix_path("x", None, vec![]);
        abs.name = UnixName::Abstract("/containerd-shim/abc.sock".into());
        facts.unix_sockets.push(abs);
        facts.unix_sockets.push(unix_path("/run/a.sock", None, vec![]));
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].service.as_deref(), Some("unix:@/containerd-shim/abc.sock"));
    }
}
