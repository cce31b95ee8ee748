//! `local.tcp-any-uid`: loopback TCP/UDP services accept every local user.

use super::{guarded, Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::{InetSocket, Protocol};
use crate::firewall::ranges::RangeSet;
use crate::inventory::{inet_scope, is_inet_service};
use crate::report::{Attacker, Confidence, Finding, Scope, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::LocalTcpAnyUid,
        attackers: &[Attacker::LocalUser],
        stage: Stage::Inspect,
        summary: "loopback TCP/UDP listener with no owner-match restriction: every local uid can connect",
        why: "binding to 127.0.0.1 keeps the network out, not other users: any account, sandboxed \
              app or compromised daemon on this host connects as freely as the owner",
    },
    evaluate: Some(evaluate),
};

/// The fix, one text per protocol (the port is the service's): shared by every finding.
const FIX_TCP: &str = "serve on a Unix socket in a directory only the intended users can search, or allow \
                       only the intended uids in an nftables output chain: `oif lo tcp dport <port> meta \
                       skuid != <uid> reject` (root and descriptor passing bypass owner matches)";
const FIX_UDP: &str = "serve on a Unix socket in a directory only the intended users can search, or allow \
                       only the intended uids in an nftables output chain: `oif lo udp dport <port> meta \
                       skuid != <uid> reject` (root and descriptor passing bypass owner matches)";

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for (socket, id) in ctx.inet_services(|s| is_inet_service(s) && inet_scope(s) == Scope::Loopback) {
        let owner = format!("{id} is held by {}", ctx.processes.describe(&socket.owners));
        let guard = guard_verdict(ctx, socket, &owner);
        let (status, title, evidence) = match guard.map_or_else(|| restriction(ctx, socket), Restriction::Guarded) {
            Restriction::Guarded((title, evidence)) => (Status::Blocked, title.into(), evidence),
            Restriction::None(line) => (
                Status::Open,
                match socket.protocol {
                    Protocol::Tcp => {
                        "every local user can connect (loopback TCP has no per-user access control)".into()
                    }
                    Protocol::Udp => {
                        "every local user can connect (loopback UDP has no per-user access control)".into()
                    }
                },
                vec![owner, line],
            ),
            Restriction::OwnerOnly => continue,
            Restriction::Partial {
                others,
                allowing,
                rules,
                unknown,
            } => {
                let mut evidence = vec![owner, format!("uids still allowed to connect: {others}")];
                evidence.extend(allowing.into_iter().map(|r| format!("allowed by {r}")));
                evidence.extend(rules.into_iter().map(|r| format!("restricted by {r}")));
                evidence.extend(unknown);
                if others.is_empty() {
                    (
                        Status::Unknown,
                        "whether other local users can connect is unknown".into(),
                        evidence,
                    )
                } else {
                    (
                        Status::Open,
                        format!("other local users can still connect ({others})").into(),
                        evidence,
                    )
                }
            }
        };
        out.push(Finding {
            check: CHECK.spec.id,
            service: Some(id.to_string()),
            attacker: Attacker::LocalUser,
            severity: Severity::Low,
            status,
            confidence: Confidence::Inspected,
            title,
            evidence,
            fix: match socket.protocol {
                Protocol::Tcp => FIX_TCP.into(),
                Protocol::Udp => FIX_UDP.into(),
            },
            subject: None,
            reaches: Vec::new(),
        });
    }
    out
}

/// `loopwarden guard`'s credit: the socket is a guard front (each client's uid is checked), or
/// an upstream only guards reach (the firewall keeps every other uid out). Title and evidence.
fn guard_verdict(ctx: &Context, socket: &InetSocket, owner: &str) -> Option<(String, Vec<String>)> {
    if let Some(cover) = guarded::front_of(ctx, socket) {
        return Some((
            "blocked by loopwarden guard: only the users it admits get through".into(),
            vec![owner.to_string(), cover.describe()],
        ));
    }
    let covers = guarded::fronts_to(ctx, socket);
    if covers.is_empty() {
        return None;
    }
    let reach = guarded::only_guards_reach(ctx, socket, &covers).ok()?;
    let mut evidence = vec![owner.to_string()];
    evidence.extend(covers.iter().map(guarded::Cover::describe));
    evidence.push(reach);
    Some((
        "blocked by loopwarden guard: other users reach it only through the guard".into(),
        evidence,
    ))
}

/// What the output-path rules (`meta skuid`, `-m owner --uid-owner`, `socket cgroupv2`) leave of
/// "every uid may connect".
enum Restriction {
    /// A `loopwarden guard` front, or an upstream only guards reach: title and evidence.
    Guarded((String, Vec<String>)),
    /// No restriction: the evidence line says why.
    None(String),
    /// Only root and the socket's own uid may connect.
    OwnerOnly,
    /// Some other uids may still connect (`others`, names resolved), or it is unknown.
    Partial {
        /// The other uids certainly allowed, as text (empty when only unknown ones remain).
        others: String,
        /// The rules that let the other uids through.
        allowing: Vec<String>,
        /// The rules that restrict.
        rules: Vec<String>,
        /// Why some uids are undecided.
        unknown: Vec<String>,
    },
}

fn restriction(ctx: &Context, socket: &InetSocket) -> Restriction {
    if !ctx.firewall.captured {
        return Restriction::None("the firewall was not captured: no owner-match rule could be seen".into());
    }
    let proto = match socket.protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    };
    let access = ctx.firewall.uids_allowed(socket.address, proto, socket.port);
    if access.unrestricted() {
        return Restriction::None(
            "no firewall output rule restricting the connecting uid (meta skuid / -m owner / socket cgroupv2) covers this port".into(),
        );
    }
    let intended = RangeSet::from_ranges(vec![(0, 0), (socket.uid.into(), socket.uid.into())]);
    let others = access.allowed.subtract(&intended);
    let undecided = access.maybe.subtract(&intended);
    if others.is_empty() && undecided.is_empty() && access.cgroups.is_empty() {
        return Restriction::OwnerOnly;
    }
    let mut unknown = access.unknowns.clone();
    if !access.cgroups.is_empty() {
        unknown.insert(
            0,
            format!(
                "processes of any uid in cgroup {} may connect: who can start processes there is not in the snapshot",
                access.cgroups.join(", ")
            ),
        );
    }
    if !undecided.is_empty() {
        unknown.insert(
            0,
            format!("uids that may or may not connect: {}", uid_list(ctx, &undecided)),
        );
    }
    Restriction::Partial {
        others: uid_list(ctx, &others),
        allowing: access.allowing,
        rules: access.restricting,
        unknown,
    }
}

/// Uids as text: single uids with their account names, ranges as `a-b`.
fn uid_list(ctx: &Context, set: &RangeSet) -> String {
    let name = |uid: u128| {
        let user = ctx.facts.accounts.users.iter().find(|u| u128::from(u.uid) == uid);
        user.map_or_else(|| uid.to_string(), |u| format!("{uid} ({})", u.name))
    };
    let mut parts = Vec::new();
    for &(a, b) in set.ranges() {
        if b - a < 16 {
            parts.extend((a..=b).map(name));
        } else if b == u32::MAX as u128 {
            parts.push(format!("{a} and above"));
        } else {
            parts.push(format!("{a}-{b}"));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet, run};
    use crate::facts::Protocol;

    fn with_fixture(name: &str, sockets: &[(Protocol, &str, u16)]) -> Vec<Finding> {
        let mut facts = crate::firewall::fixture_tests::facts(name);
        for (p, a, port) in sockets {
            facts.inet_sockets.push(inet(*p, a, *port));
        }
        run(&CHECK, &facts)
    }

    #[test]
    fn nft_skuid_rule_limiting_to_root_and_the_owner_removes_the_finding() {
        let found = with_fixture(
            "owner-match-nft",
            &[(Protocol::Tcp, "127.0.0.1", 7001), (Protocol::Tcp, "127.0.0.1", 7002)],
        );
        let ids: Vec<_> = found.iter().filter_map(|f| f.service.as_deref()).collect();
        assert_eq!(ids, vec!["tcp:127.0.0.1:7002"], "{found:#?}");
    }

    #[test]
    fn iptables_owner_rule_names_the_other_uids_still_allowed() {
        let found = with_fixture(
            "owner-match-iptables",
            &[(Protocol::Tcp, "127.0.0.1", 7002), (Protocol::Tcp, "::1", 7002)],
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].service.as_deref(), Some("tcp:127.0.0.1:7002"));
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e == "uids still allowed to connect: 1001 (bob), 1002"),
            "{:#?}",
            found[0].evidence
        );
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e.starts_with("allowed by") && e.contains("--uid-owner 1000-1002 -j ACCEPT")),
            "{:#?}",
            found[0].evidence
        );
    }

    #[test]
    fn a_cgroup_gate_leaves_the_other_users_unknown_not_open() {
        // An inline iptables-save dump (the reference machine cannot capture a cgroup rule: its
        // cgroup2 mount has no child cgroup to name).
        let mut facts = base();
        facts.firewall.iptables.push(crate::facts::IptablesDump {
            family: crate::facts::IptablesFamily::Ipv4,
            backend: "nft".into(),
            text: "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                   -A OUTPUT -o lo -p tcp -m tcp --dport 7001 -m cgroup --path system.slice/app.service -j ACCEPT\n\
                   -A OUTPUT -o lo -p tcp -m tcp --dport 7001 -j DROP\nCOMMIT\n"
                .into(),
        });
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Unknown, "{:#?}", found[0]);
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e.contains("cgroup system.slice/app.service")),
            "{:#?}",
            found[0].evidence
        );
    }

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
