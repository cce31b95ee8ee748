//! A fleet: many hosts' snapshots (collected by an engine the operator already runs — the
//! Ansible role in `contrib/ansible/`) audited into one report: hosts × checks, the worst paths
//! first, and each host's full report one step away. JSON schema `loopwarden.fleet/v1`.
//!
//! Pure: each host's audit (or the reason there is none) goes into a [`FleetBuilder`] as it is
//! made, which keeps only its summary — the counts per check and the host's open and unknown
//! paths, of which the fleet keeps the [`WORST_PATHS_KEPT`] worst — so that a fleet of any size
//! is held in memory bounded by its hosts and checks, not by their reports. A snapshot is
//! hostile input like any other; one that cannot be audited is a host whose state is unknown,
//! one that is older than the freshness limit says what the host *was*, and one taken without
//! root or with blind spots is incomplete — none of them is ever shown as clean.

use crate::checks::CheckId;
use crate::report::{Attacker, Confidence, Report, Severity, Status};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};

/// The schema tag of the fleet's JSON.
pub const FLEET_SCHEMA: &str = "loopwarden.fleet/v1";

/// How many of the fleet's worst paths are kept (JSON and HTML list them; the terminal shows
/// fewer). The rest are counted in [`Fleet::paths_total`]; each host's report has them all.
pub const WORST_PATHS_KEPT: usize = 1000;

/// Findings of one host (or one check on one host) by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Open paths.
    pub open: usize,
    /// Paths whose status could not be established.
    pub unknown: usize,
    /// Paths something stops.
    pub blocked: usize,
}

impl Counts {
    fn add(&mut self, status: Status) {
        match status {
            Status::Open => self.open += 1,
            Status::Unknown => self.unknown += 1,
            Status::Blocked => self.blocked += 1,
        }
    }
}

/// One cell of the hosts × checks table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckCell {
    /// The check.
    pub check: CheckId,
    /// Its findings on this host.
    #[serde(flatten)]
    pub counts: Counts,
}

/// The worst finding of a host that is not blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Worst {
    /// Its severity.
    pub severity: Severity,
    /// Open or unknown.
    pub status: Status,
}

/// When a snapshot was taken, and whether that is too long ago to stand for the host now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Now, in seconds since the Unix epoch.
    pub now: u64,
    /// A snapshot older than this many seconds is stale.
    pub stale_after: u64,
}

/// How far a snapshot's clock may be ahead of this one before its time is not believed.
const CLOCK_SKEW: u64 = 300;

/// One host of the fleet: the summary kept of its audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetHost {
    /// The host's name in the fleet: its snapshot's file name without `.json` (what the Ansible
    /// role names it: the inventory name), made unique.
    pub name: String,
    /// The snapshot file, as given.
    pub source: String,
    /// Why the snapshot could not be audited (the host's state is then unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the snapshot was taken (seconds since the Unix epoch), when it says.
    pub collected_at: Option<u64>,
    /// How old the snapshot was when the fleet was audited, in seconds.
    pub age_seconds: Option<u64>,
    /// Whether the snapshot is older than the freshness limit, has no time, or comes from the
    /// future: it says what the host was, not what it is. Counts as failing.
    pub stale: bool,
    /// Whether the snapshot saw every socket's owner (taken as root).
    pub privileged: Option<bool>,
    /// How many things the snapshot could not see (the report's limit lines).
    pub limits: usize,
    /// Unprivileged or with limits: findings may be missing, so the host is never shown as
    /// clean.
    pub incomplete: bool,
    /// Its findings by status.
    pub counts: Counts,
    /// Its worst open or unknown finding.
    pub worst: Option<Worst>,
    /// The highest severity among its open and unknown findings (what `--fail-on` compares).
    pub highest: Option<Severity>,
    /// Its findings per check (only checks with findings).
    pub checks: Vec<CheckCell>,
}

impl FleetHost {
    /// The summary of one host's audit — `report` of a snapshot taken at `collected_at` — or of
    /// why there is none.
    pub fn summarize(
        name: String,
        source: String,
        audited: Result<(&Report, u64), String>,
        freshness: Freshness,
    ) -> FleetHost {
        let mut host = FleetHost {
            name,
            source,
            error: None,
            collected_at: None,
            age_seconds: None,
            stale: false,
            privileged: None,
            limits: 0,
            incomplete: false,
            counts: Counts::default(),
            worst: None,
            highest: None,
            checks: Vec::new(),
        };
        let (report, collected_at) = match audited {
            Ok(audited) => audited,
            Err(error) => {
                host.error = Some(error);
                return host;
            }
        };
        // 0 is what a snapshot without a time says: its age is unknown, so it is stale.
        host.collected_at = (collected_at > 0).then_some(collected_at);
        host.age_seconds = host.collected_at.map(|t| freshness.now.saturating_sub(t));
        host.stale = match host.collected_at {
            None => true,
            Some(t) if t > freshness.now.saturating_add(CLOCK_SKEW) => true,
            Some(t) => freshness.now.saturating_sub(t) > freshness.stale_after,
        };
        host.privileged = Some(report.host.privileged);
        host.limits = report.host.limits.len();
        host.incomplete = !report.host.privileged || !report.host.limits.is_empty();
        for f in &report.findings {
            host.counts.add(f.status);
            match host.checks.iter_mut().find(|c| c.check == f.check) {
                Some(cell) => cell.counts.add(f.status),
                None => {
                    let mut cell = CheckCell {
                        check: f.check,
                        counts: Counts::default(),
                    };
                    cell.counts.add(f.status);
                    host.checks.push(cell);
                }
            }
        }
        host.checks
            .sort_by_key(|c| CheckId::ALL.iter().position(|id| *id == c.check));
        let not_blocked = || report.findings.iter().filter(|f| f.status != Status::Blocked);
        // Severity first: a critical path whose status is unknown is worse than a medium open
        // one (unknown is never safe); at equal severity, open before unknown.
        host.worst = not_blocked()
            .map(|f| (f.severity, f.status == Status::Open, f.status))
            .max()
            .map(|(severity, _, status)| Worst { severity, status });
        host.highest = not_blocked().map(|f| f.severity).max();
        host
    }

    /// Whether the host counts against `threshold` (`None`: `--fail-on never`): no usable
    /// snapshot or a stale one always does — its state now is unknown —, else a finding at or
    /// above the threshold that is not blocked.
    pub fn failing(&self, threshold: Option<Severity>) -> bool {
        self.error.is_some() || self.stale || threshold.is_some_and(|t| self.highest.is_some_and(|h| h >= t))
    }

    /// Ordering key, worst first: no usable snapshot, then stale, then open before unknown, then
    /// severity, then how many paths, then incomplete before complete.
    fn rank(&self) -> (bool, bool, Option<Severity>, bool, usize, bool) {
        (
            self.error.is_some(),
            self.stale,
            self.worst.map(|w| w.severity),
            self.worst.is_some_and(|w| w.status == Status::Open),
            self.counts.open + self.counts.unknown,
            self.incomplete,
        )
    }
}

/// One path of one host, for the fleet's list of the worst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetPath {
    /// The host's fleet name.
    pub host: String,
    /// The check.
    pub check: CheckId,
    /// The service, `None` when host-wide.
    pub service: Option<String>,
    /// Who.
    pub attacker: Attacker,
    /// How bad.
    pub severity: Severity,
    /// Open or unknown.
    pub status: Status,
    /// How it was established.
    pub confidence: Confidence,
    /// What is wrong.
    pub title: String,
}

/// Worst first: open before unknown, then severity, then confidence; then by host, check and
/// service so that the order is stable.
fn path_order(a: &FleetPath, b: &FleetPath) -> Ordering {
    (b.severity, b.status == Status::Open, b.confidence)
        .cmp(&(a.severity, a.status == Status::Open, a.confidence))
        .then_with(|| a.host.cmp(&b.host))
        .then_with(|| a.check.as_str().cmp(b.check.as_str()))
        .then_with(|| a.service.cmp(&b.service))
}

/// A file that was named (or found in a named directory) but not read as a snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The path.
    pub path: String,
    /// Why it was not read (`a symbolic link: not followed in a directory`, `a FIFO` …).
    pub reason: String,
}

/// The whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fleet {
    /// Always [`FLEET_SCHEMA`].
    pub schema: String,
    /// The loopwarden that audited the snapshots.
    pub tool_version: String,
    /// When the fleet was audited, seconds since the Unix epoch.
    pub audited_at: u64,
    /// A snapshot older than this many seconds was marked stale.
    pub stale_after_seconds: u64,
    /// The columns of the hosts × checks table: every check with a finding on some host, in
    /// catalogue order.
    pub checks: Vec<CheckId>,
    /// The hosts, worst first.
    pub hosts: Vec<FleetHost>,
    /// The worst open or unknown paths of all hosts (at most [`WORST_PATHS_KEPT`]), worst first
    /// (open before unknown, then severity, then confidence).
    pub worst_paths: Vec<FleetPath>,
    /// How many open or unknown paths the fleet has in all.
    pub paths_total: usize,
    /// Files in the given directories (or given) that were not read, each with why.
    pub skipped: Vec<Skipped>,
}

impl Fleet {
    /// Whether any host counts against `threshold` (see [`FleetHost::failing`]).
    pub fn failing(&self, threshold: Option<Severity>) -> bool {
        self.hosts.iter().any(|h| h.failing(threshold))
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&FleetHost> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// Gathers hosts one at a time, keeping only what the fleet report needs.
#[derive(Debug)]
pub struct FleetBuilder {
    freshness: Freshness,
    hosts: Vec<FleetHost>,
    paths: Vec<FleetPath>,
    paths_total: usize,
}

impl FleetBuilder {
    /// An empty fleet audited at `freshness.now`.
    pub fn new(freshness: Freshness) -> FleetBuilder {
        FleetBuilder {
            freshness,
            hosts: Vec::new(),
            paths: Vec::new(),
            paths_total: 0,
        }
    }

    /// Adds one host: `audited` is its report and when its snapshot was taken, or why there is
    /// none. The report is not kept.
    pub fn add(&mut self, name: String, source: String, audited: Result<(&Report, u64), String>) {
        if let Ok((report, _)) = &audited {
            for f in report.findings.iter().filter(|f| f.status != Status::Blocked) {
                self.paths_total += 1;
                self.paths.push(FleetPath {
                    host: name.clone(),
                    check: f.check,
                    service: f.service.clone(),
                    attacker: f.attacker,
                    severity: f.severity,
                    status: f.status,
                    confidence: f.confidence,
                    title: f.title.to_string(),
                });
                // Sorting and cutting now and then keeps the list bounded at amortised cost.
                if self.paths.len() >= 2 * WORST_PATHS_KEPT {
                    self.keep_worst();
                }
            }
        }
        self.hosts
            .push(FleetHost::summarize(name, source, audited, self.freshness));
    }

    fn keep_worst(&mut self) {
        self.paths.sort_by(path_order);
        self.paths.truncate(WORST_PATHS_KEPT);
    }

    /// The fleet report: hosts worst first, the worst paths, and the files `skipped`.
    pub fn finish(mut self, skipped: Vec<Skipped>) -> Fleet {
        self.keep_worst();
        let mut hosts = self.hosts;
        hosts.sort_by(|a, b| b.rank().cmp(&a.rank()).then_with(|| a.name.cmp(&b.name)));
        let used: HashSet<CheckId> = hosts.iter().flat_map(|h| h.checks.iter().map(|c| c.check)).collect();
        Fleet {
            schema: FLEET_SCHEMA.to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            audited_at: self.freshness.now,
            stale_after_seconds: self.freshness.stale_after,
            checks: CheckId::ALL.iter().copied().filter(|c| used.contains(c)).collect(),
            hosts,
            worst_paths: self.paths,
            paths_total: self.paths_total,
            skipped,
        }
    }
}

/// The hosts' fleet names for snapshots named `stems` (their file names without `.json`), in
/// order: a name already taken gets a number (`web (2)`).
pub fn unique_names(stems: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    stems
        .into_iter()
        .map(|stem| {
            let mut name = stem.clone();
            let mut n = 1;
            while !seen.insert(name.clone()) {
                n += 1;
                name = format!("{stem} ({n})");
            }
            name
        })
        .collect()
}

/// A duration in seconds as people say it: `45s`, `20m`, `6h`, `3d`.
pub fn age_shown(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet};
    use crate::facts::{HostFacts, Limit, Protocol};

    /// The fleet's clock in these tests, and a snapshot taken an hour before it.
    pub(crate) const NOW: u64 = 1_800_000_000;
    const HOUR_AGO: u64 = NOW - 3600;
    pub(crate) const FRESH: Freshness = Freshness {
        now: NOW,
        stale_after: 86_400,
    };

    /// A clean snapshot taken as root: its firewall (captured in a namespace) drops loopback
    /// sources and destinations from outside, so no path is open or unknown.
    pub(crate) fn base_read() -> HostFacts {
        let mut facts = base();
        facts.firewall = crate::firewall::fixture_tests::facts("raw-antispoof-complete").firewall;
        facts.host.privileged = true;
        facts.host.limits.clear();
        facts
    }

    /// A snapshot taken as root with an empty firewall and route_localnet on eth0 in front of
    /// a loopback service: open paths.
    pub(crate) fn exposed() -> HostFacts {
        let mut facts = base_read();
        facts.firewall.nft_json = Some(serde_json::json!({"nftables": []}));
        facts.firewall.iptables.clear();
        facts.firewall.nft_text = None;
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.eth0.route_localnet".into(), "1".into());
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        facts
    }

    fn wildcard() -> HostFacts {
        let mut facts = base_read();
        facts.inet_sockets.push(inet(Protocol::Tcp, "0.0.0.0", 8080));
        facts
    }

    /// A fleet of `hosts` (name, snapshot or why there is none), each taken at `at`.
    pub(crate) fn fleet_of(hosts: Vec<(&str, Result<HostFacts, &str>)>, at: u64) -> Fleet {
        let mut builder = FleetBuilder::new(FRESH);
        for (name, facts) in hosts {
            let report = facts.map(|f| crate::audit(&f)).map_err(str::to_string);
            builder.add(
                name.into(),
                format!("{name}.json"),
                report.as_ref().map(|r| (r, at)).map_err(Clone::clone),
            );
        }
        builder.finish(Vec::new())
    }

    /// A critical path whose status is unknown outranks a medium open one, in the host's worst
    /// and in the list of worst paths (review of #13: it was listed below every low open path).
    #[test]
    fn an_unknown_path_ranks_by_its_severity() {
        let mut facts = wildcard();
        facts.sysctls.0.retain(|k, _| !k.ends_with(".route_localnet"));
        let fleet = fleet_of(vec![("unpriv", Ok(facts))], HOUR_AGO);
        let host = fleet.host("unpriv").expect("host");
        let worst = host.worst.expect("a worst path");
        assert_eq!(Some(worst.severity), host.highest, "{worst:?}");
        assert_eq!(worst.status, Status::Unknown, "{worst:?}");
        assert_eq!(Some(fleet.worst_paths[0].severity), host.highest);
        assert!(fleet.worst_paths.windows(2).all(|w| w[0].severity >= w[1].severity));
    }

    #[test]
    fn hosts_are_ordered_worst_first_and_each_names_its_own_findings() {
        let fleet = fleet_of(
            vec![
                ("quiet", Ok(base_read())),
                ("web", Ok(wildcard())),
                ("kube", Ok(exposed())),
                ("broken", Err("not JSON")),
            ],
            HOUR_AGO,
        );
        let names: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names[0], "broken", "an unusable snapshot first: its state is unknown");
        assert_eq!(names[1], "kube", "{names:?}");
        let kube = fleet.host("kube").expect("kube");
        assert!(kube
            .checks
            .iter()
            .any(|c| c.check == CheckId::NetRouteLocalnet && c.counts.open == 1));
        let web = fleet.host("web").expect("web");
        assert!(web.checks.iter().any(|c| c.check == CheckId::BindWildcard));
        assert!(!web.checks.iter().any(|c| c.check == CheckId::NetRouteLocalnet));
        assert!(fleet.checks.contains(&CheckId::NetRouteLocalnet) && fleet.checks.contains(&CheckId::BindWildcard));
        assert_eq!(fleet.worst_paths[0].host, "kube");
        assert!(fleet
            .worst_paths
            .windows(2)
            .all(|w| path_order(&w[0], &w[1]) != Ordering::Greater));
        assert!(
            fleet.failing(Some(Severity::Critical)),
            "the unusable snapshot alone fails"
        );
        let quiet = fleet.host("quiet").expect("quiet");
        assert_eq!(
            (quiet.incomplete, quiet.stale, quiet.age_seconds),
            (false, false, Some(3600))
        );
    }

    #[test]
    fn duplicate_names_are_made_unique() {
        assert_eq!(
            unique_names(["a", "b", "a", "a"].map(String::from)),
            ["a", "b", "a (2)", "a (3)"]
        );
    }

    #[test]
    fn old_and_timeless_snapshots_are_stale_and_fail_even_with_never() {
        let week_ago = NOW - 7 * 86_400;
        let fleet = fleet_of(vec![("old", Ok(base_read()))], week_ago);
        let old = fleet.host("old").expect("old");
        assert!(old.stale && old.age_seconds == Some(7 * 86_400), "{old:#?}");
        assert!(fleet.failing(None), "a stale host is not known to be clean now");
        let timeless = fleet_of(vec![("t", Ok(base_read()))], 0);
        assert!(timeless.hosts[0].stale && timeless.hosts[0].collected_at.is_none());
        let future = fleet_of(vec![("f", Ok(base_read()))], NOW + 86_400);
        assert!(future.hosts[0].stale, "a snapshot from the future is not believed");
        let fresh = fleet_of(vec![("new", Ok(base_read()))], HOUR_AGO);
        assert!(!fresh.failing(None) && !fresh.failing(Some(Severity::Info)));
        // A stale host ranks before a fresh one with findings.
        let mut builder = FleetBuilder::new(FRESH);
        let (kube, old) = (crate::audit(&exposed()), crate::audit(&base_read()));
        builder.add("kube".into(), "k".into(), Ok((&kube, HOUR_AGO)));
        builder.add("old".into(), "o".into(), Ok((&old, week_ago)));
        let mixed = builder.finish(Vec::new());
        assert_eq!(mixed.hosts[0].name, "old");
    }

    #[test]
    fn unprivileged_or_limited_snapshots_are_incomplete_never_clean() {
        let mut unprivileged = base_read();
        unprivileged.host.privileged = false;
        let mut limited = base_read();
        limited.host.limits.push(Limit {
            scope: "relays.nginx".into(),
            detail: "`nginx -T` failed".into(),
        });
        let fleet = fleet_of(
            vec![
                ("clean", Ok(base_read())),
                ("unpriv", Ok(unprivileged)),
                ("limited", Ok(limited)),
            ],
            HOUR_AGO,
        );
        let get = |n: &str| fleet.host(n).expect(n);
        assert!(!get("clean").incomplete);
        assert!(get("unpriv").incomplete && get("unpriv").privileged == Some(false));
        assert!(get("limited").incomplete && get("limited").limits == 1);
        assert_eq!(
            fleet.hosts.last().map(|h| h.name.as_str()),
            Some("clean"),
            "incomplete ones first"
        );
    }

    #[test]
    fn the_worst_paths_are_bounded_and_counted() {
        let mut builder = FleetBuilder::new(FRESH);
        let mut many = base_read();
        for port in 0..300u16 {
            many.inet_sockets.push(inet(Protocol::Tcp, "0.0.0.0", 10_000 + port));
        }
        let report = crate::audit(&many);
        let per_host = report.findings.iter().filter(|f| f.status != Status::Blocked).count();
        for i in 0..10 {
            builder.add(format!("h{i}"), "x".into(), Ok((&report, HOUR_AGO)));
        }
        let fleet = builder.finish(Vec::new());
        assert_eq!(fleet.paths_total, 10 * per_host);
        assert_eq!(fleet.worst_paths.len(), WORST_PATHS_KEPT.min(10 * per_host));
        assert!(fleet
            .worst_paths
            .windows(2)
            .all(|w| path_order(&w[0], &w[1]) != Ordering::Greater));
    }

    #[test]
    fn the_json_says_its_schema_freshness_and_cells() {
        let fleet = fleet_of(vec![("kube", Ok(exposed()))], HOUR_AGO);
        let json = serde_json::to_value(&fleet).expect("json");
        assert_eq!(json["schema"], FLEET_SCHEMA);
        assert_eq!(json["hosts"][0]["collected_at"], HOUR_AGO);
        assert_eq!(json["hosts"][0]["age_seconds"], 3600);
        assert_eq!(json["hosts"][0]["stale"], false);
        assert!(json["hosts"][0]["checks"]
            .as_array()
            .expect("cells")
            .iter()
            .any(|c| c["check"] == "net.route-localnet" && c["open"] == 1));
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!([59, 600, 7200, 3 * 86400].map(age_shown), ["59s", "10m", "2h", "3d"]);
    }
}
