//! The plan: pure, from a snapshot and its audit to the table, the sysctls, what each closes and
//! what stays open — verified with the firewall evaluator before anyone prints or applies it.

pub mod allow;
pub mod findings;
pub mod keep;
pub mod sysctls;
pub mod table;
#[cfg(test)]
pub(crate) mod testing;
pub mod verify;

use crate::render::{nft_json, nft_text};
use allow::AllowSpec;
use findings::Disposition;
use keep::{Keeper, NotNeeded};
use loopwarden_core::facts::HostFacts;
use loopwarden_core::firewall::questions::Firewall;
use loopwarden_core::report::Report;
use serde::Serialize;
use sysctls::{RpFilter, SysctlChange};
use table::Table;
use verify::{PathProof, Verdict};

/// What the user asked of the plan.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--allow`: loopback ports restricted to named users.
    pub allow: Vec<AllowSpec>,
    /// `--limit-connections`: connections per allowed user and port at once.
    pub limit_connections: Option<u32>,
    /// `--rp-filter`: set the reverse-path filter (never by default).
    pub rp_filter: Option<RpFilter>,
    /// `--drop-all-mapped`: drop every IPv4-mapped IPv6 address, not just mapped loopback.
    pub all_mapped: bool,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `--allow` names a user the snapshot's accounts do not have.
    #[error("--allow names user {0:?}, who is not in the snapshot's accounts (/etc/passwd)")]
    UnknownUser(String),
    /// `--allow` names a group the snapshot's accounts do not have.
    #[error("--allow names group @{0}, which is not in the snapshot's accounts (/etc/group)")]
    UnknownGroup(String),
}

/// Everything harden would do, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The table `inet loopwarden`.
    pub table: Table,
    /// The sysctls written.
    pub sysctls: Vec<SysctlChange>,
    /// Components that need `route_localnet=1`, whose setting is kept.
    pub kept: Vec<Keeper>,
    /// Components seen that do not need it (its setting is turned off all the same), and why.
    pub not_kept: Vec<NotNeeded>,
    /// Whether the route cache is flushed afterwards (after any sysctl change: a cached route
    /// keeps delivering to connected UDP sockets).
    pub flush_route_cache: bool,
    /// The evaluator's answers for every path the table claims to close.
    pub proofs: Vec<PathProof>,
    /// What happens to each open finding.
    pub findings: Vec<Disposition>,
    /// The `--allow` specs the table was made with (recorded by an apply, so that a later one
    /// keeps them).
    pub allows: Vec<AllowSpec>,
    /// `--limit-connections`, recorded likewise.
    pub limit_connections: Option<u32>,
}

impl Plan {
    /// Whether every claimed path was answered "blocked".
    pub fn verified(&self) -> bool {
        self.proofs.iter().all(|p| p.verdict == Verdict::Blocked)
    }

    /// The claims the evaluator did not confirm.
    pub fn unverified(&self) -> impl Iterator<Item = &PathProof> {
        self.proofs.iter().filter(|p| p.verdict != Verdict::Blocked)
    }
}

/// Makes the plan for `base` (a snapshot without loopwarden's own table: see
/// [`verify::without_own_table`]) and `report`, its audit.
pub fn build(base: &HostFacts, report: &Report, options: &Options) -> Result<Plan, PlanError> {
    let allows = allow::resolve(&options.allow, base, options.limit_connections)?;
    let table = Table::new(options.all_mapped, allows);
    let firewall = Firewall::new(base);
    let keep::Needs { kept, not_kept } = keep::detect(base, &firewall.analysis.ruleset, &firewall.loopback_nat());
    let sysctls = sysctls::plan(base, &kept, options.rp_filter);
    let with_table = verify::with_table(base, &nft_json::objects(&table, None), &nft_text::render(&table, None));
    // The table alone must close what it claims, whatever the sysctls: they are asked unchanged.
    let proofs = verify::prove(&with_table, &table);
    let planned = verify::with_sysctls(&with_table, &sysctls);
    let after = loopwarden_core::audit(&planned);
    let findings = findings::dispose(report, &after, &table, &sysctls, &kept);
    Ok(Plan {
        flush_route_cache: !sysctls.is_empty(),
        table,
        sysctls,
        kept,
        not_kept,
        proofs,
        findings,
        allows: options.allow.clone(),
        limit_connections: options.limit_connections,
    })
}

/// The plan for a snapshot as collected (loopwarden's own table, if any, is set aside first, as
/// applying replaces it), with the audit it answers.
pub fn for_facts(facts: &HostFacts, options: &Options) -> Result<(Plan, Report), PlanError> {
    let base = verify::without_own_table(facts);
    let report = loopwarden_core::audit(&base);
    let plan = build(&base, &report, options)?;
    Ok((plan, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use findings::Outcome;
    use loopwarden_core::checks::CheckId;
    use loopwarden_core::facts::Protocol;
    use loopwarden_core::report::Status;

    /// The e2e test's host, as a snapshot: route_localnet on eth0, a Docker-style loopback
    /// publish, a `[::]` UDP listener and loopback listeners.
    fn host() -> HostFacts {
        let mut facts = testing::fixture("docker-27-loopback-publish");
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.eth0.route_localnet".into(), "1".into());
        let services = testing::facts_with(&[
            (Protocol::Tcp, "127.0.0.1", 8080, 1000),
            (Protocol::Udp, "127.0.0.1", 8125, 1000),
            (Protocol::Udp, "::", 5353, 0),
        ]);
        facts.inet_sockets = services.inet_sockets;
        facts
    }

    #[test]
    fn every_lan_finding_is_closed_and_verified() {
        let (plan, report) = for_facts(&host(), &Options::default()).expect("plan");
        assert!(plan.verified(), "{:#?}", plan.proofs);
        let open_lan: Vec<CheckId> = report
            .findings
            .iter()
            .filter(|f| f.status != Status::Blocked && f.attacker == loopwarden_core::report::Attacker::Lan)
            .map(|f| f.check)
            .collect();
        for check in [
            CheckId::NetRouteLocalnet,
            CheckId::NetNoLoopbackAntispoof,
            CheckId::NetDnatLoopback,
            CheckId::ProtoUdpLoopback,
            CheckId::NetLoopbackSourceTrust,
        ] {
            assert!(open_lan.contains(&check), "{check} should be open before: {open_lan:?}");
        }
        for d in plan.findings.iter().filter(|d| open_lan.contains(&d.check)) {
            assert!(matches!(d.outcome, Outcome::Closed { .. }), "{d:#?}");
        }
        let keys: Vec<String> = plan.sysctls.iter().map(|c| c.key.to_string()).collect();
        assert_eq!(keys, ["net.ipv4.conf.eth0.route_localnet"]);
        assert!(plan.flush_route_cache);
    }

    #[test]
    fn planning_twice_over_an_applied_table_gives_the_same_table() {
        let (plan, _) = for_facts(&host(), &Options::default()).expect("plan");
        let applied = verify::with_table(
            &host(),
            &nft_json::objects(&plan.table, Some("2025-01-31T12:00:00Z")),
            &nft_text::render(&plan.table, Some("2025-01-31T12:00:00Z")),
        );
        let (again, _) = for_facts(&applied, &Options::default()).expect("plan");
        assert_eq!(again.table, plan.table);
        assert_eq!(again.findings, plan.findings);
    }

    #[test]
    fn kube_proxy_keeps_route_localnet_and_the_raw_drop_covers_it() {
        let (plan, _) = for_facts(&testing::fixture("kube-proxy-firewall"), &Options::default()).expect("plan");
        assert!(plan.verified());
        assert!(
            plan.sysctls.iter().all(|c| c.key.name != "route_localnet"),
            "{:?}",
            plan.sysctls
        );
        assert_eq!(plan.kept.len(), 1);
    }

    #[test]
    fn an_allow_on_a_docker_publish_to_another_container_port_restricts_the_host_port() {
        // dockerd 20.10 with the userland proxy off: 127.0.0.1:8090 is DNATed to a container's
        // port 80 in nat OUTPUT, right after a client's connect: the restriction must act before.
        let facts = testing::fixture("docker-20-no-userland-proxy");
        let options = Options {
            allow: vec!["8090/tcp=alice".parse().expect("valid")],
            ..Options::default()
        };
        let (plan, _) = for_facts(&facts, &options).expect("plan");
        assert!(plan.verified(), "{:#?}", plan.unverified().collect::<Vec<_>>());
        let uid_proofs: Vec<&verify::PathProof> = plan
            .proofs
            .iter()
            .filter(|p| p.path.contains("uids other than"))
            .collect();
        assert_eq!(uid_proofs.len(), 2, "{uid_proofs:#?}");
    }

    #[test]
    fn the_plan_names_what_is_kept_once_per_key_and_undecided_findings_as_unknown() {
        let (mut plan, report) =
            for_facts(&testing::fixture("nft-native-nat-to-loopback"), &Options::default()).expect("plan");
        assert_eq!(plan.kept.len(), 2, "two NAT rules need route_localnet: {:?}", plan.kept);
        let text = crate::render::human::render(&plan, &report);
        assert_eq!(
            text.matches("kept on: net.ipv4.conf.all.route_localnet").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("dnat to 127.0.0.1:7001; a NAT rule") && text.contains("7003"),
            "{text}"
        );
        let d = plan
            .findings
            .iter_mut()
            .find(|d| matches!(d.outcome, Outcome::LeftOpen { .. }))
            .expect("a finding left open");
        d.after = findings::After::Unknown;
        let title = d.title.clone();
        let text = crate::render::human::render(&plan, &report);
        assert!(text.contains(&format!("UNKNOWN    {title}")), "{text}");
    }
}
