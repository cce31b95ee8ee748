//! Services behind a running `loopwarden guard`, for the checks that credit it
//! (`local.tcp-any-uid`, the `web.*` checks).
//!
//! A guard closes the local-user and browser paths only when two things hold: its front admits
//! only the intended users (it identifies each client's uid), and the upstream cannot be reached
//! around it. The second is asked of the firewall evaluator: the uids allowed to connect to the
//! upstream must be the guards' own (plus root and the service's owner, which no owner match can
//! keep out anyway).

use super::Context;
use crate::addr::unmapped;
use crate::facts::{Guard, GuardEndpoint, GuardFront, GuardMode, InetSocket, Protocol, SocketState};
use crate::firewall::ranges::RangeSet;

/// A guard front relevant to a socket.
#[derive(Debug, Clone, Copy)]
pub struct Cover<'a> {
    /// The guard process.
    pub guard: &'a Guard,
    /// Its front.
    pub front: &'a GuardFront,
}

impl Cover<'_> {
    /// `loopwarden guard NAME (pid P, uid U) front F admits alice, @dev`.
    pub fn describe(&self) -> String {
        let who: Vec<String> = self
            .front
            .allow_users
            .iter()
            .map(|a| a.name.clone())
            .chain(self.front.allow_groups.iter().map(|a| format!("@{}", a.name)))
            .collect();
        let listen: Vec<String> = self.front.listen.iter().map(ToString::to_string).collect();
        format!(
            "loopwarden guard {} (pid {}, uid {}) front {} on {} admits only {} (each client's uid identified by the kernel)",
            self.guard.name,
            self.guard.pid,
            self.guard.uid,
            self.front.name,
            listen.join(" and "),
            if who.is_empty() { "nobody".to_string() } else { who.join(", ") }
        )
    }
}

fn same_tcp(endpoint: &GuardEndpoint, socket: &InetSocket) -> bool {
    matches!(endpoint, GuardEndpoint::Tcp { address }
        if unmapped(address.ip()) == unmapped(socket.address) && address.port() == socket.port)
}

/// The guard front whose listening socket this is (held by the guard process).
pub fn front_of<'a>(ctx: &Context<'a>, socket: &InetSocket) -> Option<Cover<'a>> {
    if socket.protocol != Protocol::Tcp || socket.state != SocketState::Listen {
        return None;
    }
    ctx.facts.guards.iter().find_map(|guard| {
        guard
            .fronts
            .iter()
            .find(|f| f.listen.iter().any(|l| same_tcp(l, socket)) && socket.owners.contains(&guard.pid))
            .map(|front| Cover { guard, front })
    })
}

/// The guard front whose listening Unix socket this is (bound at the path the front names and
/// held by the guard process): its mode lets everyone connect by design, the guard admitting only
/// the users it names.
pub fn unix_front_of<'a>(ctx: &Context<'a>, socket: &crate::facts::UnixSocket) -> Option<Cover<'a>> {
    let crate::facts::UnixName::Path(path) = &socket.name else {
        return None;
    };
    ctx.facts.guards.iter().find_map(|guard| {
        guard
            .fronts
            .iter()
            .find(|f| {
                f.listen
                    .iter()
                    .any(|l| matches!(l, GuardEndpoint::Unix { path: p } if p == path))
                    && socket.owners.contains(&guard.pid)
            })
            .map(|front| Cover { guard, front })
    })
}

/// The guard fronts that forward to this socket.
pub fn fronts_to<'a>(ctx: &Context<'a>, socket: &InetSocket) -> Vec<Cover<'a>> {
    ctx.facts
        .guards
        .iter()
        .flat_map(|guard| {
            guard
                .fronts
                .iter()
                .filter(|f| same_tcp(&f.upstream, socket))
                .map(move |front| Cover { guard, front })
        })
        .collect()
}

/// Whether only the covering guards (and root and the socket's owner) may connect to the
/// socket, per the firewall evaluator. `Err` says who else may, or why it is unknown.
pub fn only_guards_reach(ctx: &Context, socket: &InetSocket, covers: &[Cover]) -> Result<String, String> {
    if !ctx.firewall.captured {
        return Err("the firewall was not captured: whether other users reach it around the guard is unknown".into());
    }
    let access = ctx.firewall.uids_allowed(socket.address, 6, socket.port);
    let mut intended: Vec<(u128, u128)> = vec![(0, 0), (socket.uid.into(), socket.uid.into())];
    intended.extend(covers.iter().map(|c| (c.guard.uid.into(), c.guard.uid.into())));
    let intended = RangeSet::from_ranges(intended);
    let others = access.allowed.union(&access.maybe).subtract(&intended);
    if !others.is_empty() || !access.cgroups.is_empty() {
        let list: Vec<String> = others
            .ranges()
            .iter()
            .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
            .collect();
        return Err(format!(
            "uids {} reach {} directly, around the guard",
            if list.is_empty() {
                "in an allowed cgroup".to_string()
            } else {
                list.join(", ")
            },
            crate::inventory::inet_service_id(socket)
        ));
    }
    let guards: Vec<String> = covers.iter().map(|c| c.guard.uid.to_string()).collect();
    Ok(format!(
        "only the guard's uid ({}), root and the service's owner (uid {}) may connect to {} (firewall: {})",
        guards.join(", "),
        socket.uid,
        crate::inventory::inet_service_id(socket),
        if access.restricting.is_empty() {
            "-".to_string()
        } else {
            access.restricting.join("; ")
        }
    ))
}

/// Whether browser pages meet a guard's Host and Origin checks before the service `service_id`:
/// `None` when no guard forwards to it; `Some(Ok(evidence))` when every front forwarding to it is
/// in HTTP mode and nothing but guards (and root and the owner) reaches it; `Some(Err(why))`
/// otherwise — a TCP-mode front of the same upstream lets an allowed user's pages through
/// unchecked, so no front's checks can be credited.
pub fn http_guarded(ctx: &Context, service_id: &str) -> Option<Result<Vec<String>, String>> {
    let socket = ctx
        .facts
        .inet_sockets
        .iter()
        .find(|s| s.state == SocketState::Listen && crate::inventory::inet_service_id(s) == service_id)?;
    if crate::inventory::inet_scope(socket) != crate::report::Scope::Loopback {
        return None;
    }
    let covers = fronts_to(ctx, socket);
    if covers.is_empty() {
        return None;
    }
    if let Some(tcp) = covers.iter().find(|c| c.front.mode != GuardMode::Http) {
        return Some(Err(format!(
            "not credited to loopwarden guard: {} forwards to it in TCP mode, which checks no Host or Origin — \
             the pages of the users it admits reach the service through it",
            tcp.describe()
        )));
    }
    let reach = match only_guards_reach(ctx, socket, &covers) {
        Ok(reach) => reach,
        Err(why) => return Some(Err(format!("not credited to loopwarden guard: {why}"))),
    };
    let mut evidence: Vec<String> = covers.iter().map(Cover::describe).collect();
    evidence.push(reach);
    evidence.push(
        "browser pages run as local users: they reach this service only through the guard, which refuses foreign Host and Origin values, cross-site fetches and foreign preflights"
            .into(),
    );
    Some(Ok(evidence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet, run};
    use crate::facts::{GuardAccount, GuardCounters, HostFacts, IptablesDump, IptablesFamily, GUARD_STATUS_SCHEMA};
    use crate::report::{Attacker, Confidence, Finding, Severity, Status};

    /// A guard (pid 200, uid 999) fronting 127.0.0.1:18080 (pid 100, uid 1000) on 8080/[::1]:8080,
    /// with `restricted`: the upstream's port limited to root and uids 999 and 1000 (what
    /// `harden --allow 18080=guard` writes), as an iptables-save dump.
    fn guarded_facts(mode: GuardMode, restricted: bool) -> HostFacts {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 18080));
        for addr in ["127.0.0.1", "::1"] {
            let mut front = inet(Protocol::Tcp, addr, 8080);
            front.uid = 999;
            front.owners = vec![200];
            facts.inet_sockets.push(front);
        }
        facts.guards.push(Guard {
            schema: GUARD_STATUS_SCHEMA.into(),
            name: "app".into(),
            pid: 200,
            uid: 999,
            user: Some("lwguard".into()),
            started_at: 0,
            updated_at: 0,
            fronts: vec![GuardFront {
                name: "localhost:8080".into(),
                listen: vec![
                    GuardEndpoint::Tcp {
                        address: "127.0.0.1:8080".parse().unwrap(),
                    },
                    GuardEndpoint::Tcp {
                        address: "[::1]:8080".parse().unwrap(),
                    },
                ],
                upstream: GuardEndpoint::Tcp {
                    address: "127.0.0.1:18080".parse().unwrap(),
                },
                mode,
                allow_users: vec![GuardAccount {
                    name: "alice".into(),
                    id: 1001,
                }],
                allow_groups: vec![],
                allow_hosts: vec![],
                allow_origins: vec![],
                counters: GuardCounters::default(),
            }],
            status_file: String::new(),
        });
        let rules = if restricted {
            "-A OUTPUT -o lo -p tcp -m tcp --dport 18080 -m owner --uid-owner 0 -j ACCEPT\n\
             -A OUTPUT -o lo -p tcp -m tcp --dport 18080 -m owner --uid-owner 999 -j ACCEPT\n\
             -A OUTPUT -o lo -p tcp -m tcp --dport 18080 -m owner --uid-owner 1000 -j ACCEPT\n\
             -A OUTPUT -o lo -p tcp -m tcp --dport 18080 -j REJECT --reject-with tcp-reset\n"
        } else {
            ""
        };
        facts.firewall.iptables.push(IptablesDump {
            family: IptablesFamily::Ipv4,
            backend: "nft".into(),
            text: format!("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{rules}COMMIT\n"),
        });
        facts
    }

    fn statuses(facts: &HostFacts) -> Vec<(String, Status)> {
        run(&crate::checks::tcp_any_uid::CHECK, facts)
            .into_iter()
            .map(|f| (f.service.unwrap_or_default(), f.status))
            .collect()
    }

    /// A guard's Unix front is 0666 by design (the guard decides who is served): credited, not
    /// reported as a socket every user can use (review of #11); another socket stays open.
    #[test]
    fn a_guard_unix_front_is_credited_by_local_unix_world() {
        use crate::checks::test_facts::{dir, unix_path};
        let mut facts = guarded_facts(GuardMode::Http, false);
        facts.guards[0].fronts[0].listen = vec![GuardEndpoint::Unix {
            path: "/run/app/app.sock".into(),
        }];
        let parents = vec![
            dir("/", 0, 0, 0o755),
            dir("/run", 0, 0, 0o755),
            dir("/run/app", 999, 999, 0o755),
        ];
        let mut front = unix_path(
            "/run/app/app.sock",
            Some(dir("/run/app/app.sock", 999, 999, 0o666)),
            parents.clone(),
        );
        front.owners = vec![200];
        let other = unix_path(
            "/run/app/other.sock",
            Some(dir("/run/app/other.sock", 999, 999, 0o666)),
            parents,
        );
        facts.unix_sockets = vec![front, other];
        let found = run(&crate::checks::unix_world::CHECK, &facts);
        let status = |path: &str| {
            found
                .iter()
                .find(|f| f.service.as_deref() == Some(&format!("unix:{path}")[..]))
                .map(|f| (f.status, f.title.to_string()))
        };
        let (front_status, title) = status("/run/app/app.sock").expect("the front's finding");
        assert_eq!(front_status, Status::Blocked, "{title}");
        assert!(title.starts_with("blocked by loopwarden guard"), "{title}");
        assert_eq!(status("/run/app/other.sock").map(|s| s.0), Some(Status::Open));
    }

    #[test]
    fn a_guard_front_and_an_upstream_only_the_guard_reaches_are_credited() {
        let found = statuses(&guarded_facts(GuardMode::Tcp, true));
        assert_eq!(
            found,
            vec![
                ("tcp:127.0.0.1:18080".to_string(), Status::Blocked),
                ("tcp:127.0.0.1:8080".to_string(), Status::Blocked),
                ("tcp:[::1]:8080".to_string(), Status::Blocked),
            ]
        );
        let findings = run(&crate::checks::tcp_any_uid::CHECK, &guarded_facts(GuardMode::Tcp, true));
        assert!(
            findings[0].title.starts_with("blocked by loopwarden guard"),
            "{:#?}",
            findings[0]
        );
        assert!(
            findings[0].evidence.iter().any(|e| e.contains("admits only alice")),
            "{:#?}",
            findings[0]
        );
        assert!(
            findings[0]
                .evidence
                .iter()
                .any(|e| e.starts_with("only the guard's uid (999)")),
            "{:#?}",
            findings[0]
        );
    }

    #[test]
    fn an_upstream_every_user_reaches_is_not_credited() {
        let found = statuses(&guarded_facts(GuardMode::Tcp, false));
        assert_eq!(found[0], ("tcp:127.0.0.1:18080".to_string(), Status::Open));
    }

    fn probed(service: &str) -> Finding {
        Finding {
            check: crate::checks::CheckId::WebDnsRebinding,
            service: Some(service.into()),
            attacker: Attacker::Browser,
            severity: Severity::High,
            status: Status::Open,
            confidence: Confidence::Probed,
            title: "answers requests for a foreign Host name (DNS rebinding)".into(),
            evidence: vec![],
            fix: "".into(),
            subject: None,
            reaches: Vec::new(),
        }
    }

    #[test]
    fn web_findings_on_an_upstream_behind_an_http_guard_only_are_blocked() {
        let credited = |mode, restricted| {
            let facts = guarded_facts(mode, restricted);
            let ctx = Context::new(&facts);
            crate::checks::credit_guards(&ctx, vec![probed("tcp:127.0.0.1:18080")])[0].status
        };
        assert_eq!(credited(GuardMode::Http, true), Status::Blocked);
        assert_eq!(
            credited(GuardMode::Http, false),
            Status::Open,
            "reachable around the guard"
        );
        assert_eq!(
            credited(GuardMode::Tcp, true),
            Status::Open,
            "a TCP-mode guard checks no Host"
        );
    }

    /// An HTTP-mode front and a TCP-mode front of the same upstream (the same guard, the same
    /// uid, so the firewall cannot tell them apart): the TCP-mode one lets pages through, so the
    /// HTTP-mode one's checks are not credited, and the finding says why.
    #[test]
    fn a_tcp_mode_front_of_the_same_upstream_withdraws_the_web_credit() {
        let mut facts = guarded_facts(GuardMode::Http, true);
        let mut tcp = facts.guards[0].fronts[0].clone();
        tcp.name = "raw".into();
        tcp.mode = GuardMode::Tcp;
        tcp.listen = vec![GuardEndpoint::Tcp {
            address: "127.0.0.1:8081".parse().unwrap(),
        }];
        facts.guards[0].fronts.push(tcp);
        let ctx = Context::new(&facts);
        let found = crate::checks::credit_guards(&ctx, vec![probed("tcp:127.0.0.1:18080")]);
        assert_eq!(found[0].status, Status::Open);
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e.starts_with("not credited to loopwarden guard")
                    && e.contains("front raw on 127.0.0.1:8081")
                    && e.contains("TCP mode")),
            "{:#?}",
            found[0]
        );
    }
}
