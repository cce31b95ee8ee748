//! loopwarden's proof lab: mirrors a host into throwaway network namespaces and fires the real
//! attacks from a neighbour namespace.
//!
//! [`prove`] builds a victim namespace with the host's interface names, addresses, sysctls and
//! packet filter, opens decoy listeners on the host's loopback and wildcard addresses and
//! ports, and sends hand-built frames from a neighbour on the same segment: loopback
//! destinations, spoofed loopback sources (IPv4, `::1`, `::ffff:127.0.0.1`), NAT-published
//! ports. The [`ProofReport`] is the attack matrix; [`ProofReport::findings`] turns it into
//! `confidence: proven` findings for the audit.
//!
//! Order of a run: namespaces and links, sysctls, decoys; the controls (local clients on `lo`,
//! ordinary traffic from the neighbour), which test the lab itself; then the host's ruleset is
//! loaded into the victim and the attacks are fired, one phase per attack kind.
//!
//! Safety: everything happens in namespaces the lab creates (unique names) and removes on every
//! exit path (drop guards; SIGINT/SIGTERM raise a flag that ends the run early). Traffic stays
//! inside them: they are linked only to each other, never to a namespace outside the lab, and
//! have no route out, so keeping the host's own (possibly routable) addresses inside them
//! reaches nobody.
#![warn(missing_docs)]

pub mod attacks;
pub mod counters;
pub mod decoy;
pub mod engine;
pub mod mirror;
pub mod nat;
pub mod netns;
pub mod observe;
pub mod packet;
pub mod plan;
pub mod priority;
pub mod render;
pub mod report;
pub mod routes;
pub mod scenario;
pub mod signal;
pub mod sources;
pub mod topology;

pub use report::{AttackResult, Outcome, ProofReport, PROOF_SCHEMA};
pub use scenario::{Scenario, SCENARIOS};

use loopwarden_core::facts::HostFacts;
use std::time::{Duration, Instant};

/// Why the lab could not run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Creating namespaces needs root (`CAP_SYS_ADMIN` and `CAP_NET_ADMIN`).
    #[error("the lab needs root to create network namespaces")]
    NotRoot,
    /// A namespace, link or tool step failed.
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// SIGINT or SIGTERM arrived; the lab was removed.
    #[error("interrupted; every lab namespace was removed")]
    Interrupted,
}

impl LabError {
    fn io(what: &str, source: std::io::Error) -> LabError {
        LabError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// A progress callback: (steps done, steps in all, what was just done).
pub type Progress = Box<dyn Fn(usize, usize, &str)>;

/// How to run the lab.
pub struct ProveOptions {
    /// What is mirrored, for the report: `host`, `snapshot` or `scenario:NAME`.
    pub source: String,
    /// How long an attack phase waits for packets that may still come.
    pub phase_timeout: Duration,
    /// Called as the run advances (for a progress bar).
    pub progress: Option<Progress>,
}

impl Default for ProveOptions {
    fn default() -> Self {
        ProveOptions {
            source: "host".to_string(),
            phase_timeout: Duration::from_millis(150),
            progress: None,
        }
    }
}

/// Mirrors `facts` into a fresh lab, fires every attack, removes the lab, and returns the
/// attack matrix. Never touches the caller's namespace.
pub fn prove(facts: &HostFacts, opts: &ProveOptions) -> Result<ProofReport, LabError> {
    if !netns::can_create_namespaces() {
        return Err(LabError::NotRoot);
    }
    let _signals = signal::Guard::install();
    let result = run(facts, opts);
    match result {
        Err(_) if signal::interrupted() => Err(LabError::Interrupted),
        other => other,
    }
}

fn run(facts: &HostFacts, opts: &ProveOptions) -> Result<ProofReport, LabError> {
    let started = Instant::now();
    let report_step = |done: usize, total: usize, what: &str| {
        if let Some(p) = &opts.progress {
            p(done, total, what);
        }
    };
    let plan = plan::plan(facts);
    report_step(0, 1, "building the lab namespaces");
    let topology = topology::build(&plan)?;
    let mut mirror = mirror::Mirror::default();
    let names: Vec<String> = topology.links.iter().map(|l| l.plan.name.clone()).collect();
    mirror::apply_sysctls(&topology.victim, &facts.sysctls, &names, &mut mirror)?;
    let mut notes = plan.notes.clone();
    let routes = routes::plan(facts, &plan.links);
    notes.extend(routes.notes.iter().cloned());
    notes.extend(routes::apply(&topology.victim, &routes, &topology.links)?);
    notes.extend(
        netns::sweep_stale()
            .into_iter()
            .map(|name| format!("removed {name}, left behind by an earlier run that was killed")),
    );
    let (decoys, decoy_notes) = decoy::open_all(&topology.victim, plan.decoys.iter().map(decoy_spec).collect())?;
    notes.extend(decoy_notes);
    let (stand_ins, stand_in_notes) = match &topology.backend {
        Some(b) => decoy::open_all(b, plan.stand_ins.iter().map(stand_in_spec).collect())?,
        None => (Vec::new(), Vec::new()),
    };
    notes.extend(stand_in_notes);
    let open = |t: &attacks::Target| match *t {
        attacks::Target::Decoy(k) => decoys.get(k).is_some_and(Option::is_some),
        attacks::Target::StandIn(k) => stand_ins.get(k).is_some_and(Option::is_some),
    };
    let sources = sources::SourcePicker::new(facts, plan.stand_in_addresses());
    let (controls, mut attacks): (Vec<_>, Vec<_>) = attacks::probes(&plan, &topology.links, &sources)
        .into_iter()
        .filter(|p| open(&p.target))
        .partition(|p| p.kind.control());
    doubt_unrouted_sources(facts, &mut attacks, &topology.links);
    let spoofed_v4: Vec<(usize, std::net::Ipv4Addr)> = attacks
        .iter()
        .filter_map(|p| match (p.link, p.src.ip()) {
            (Some(li), std::net::IpAddr::V4(ip)) => Some((li, ip)),
            _ => None,
        })
        .collect();
    topology.learn_sources(&spoofed_v4)?;
    let phases = |list: &[attacks::ProbeSpec]| {
        let mut kinds: Vec<_> = list.iter().map(|p| p.kind).collect();
        kinds.dedup();
        kinds.len()
    };
    let (control_phases, total) = (phases(&controls), phases(&controls) + phases(&attacks));
    let mut setup = engine::Setup {
        topology: &topology,
        decoys,
        stand_ins,
        decoy_services: plan.decoys.iter().map(|d| d.service.clone()).collect(),
        counters: counters::Sources::default(),
        observed: false,
        timeout: opts.phase_timeout,
    };
    // Controls run before the host's ruleset is loaded: they prove the lab's own plumbing (links,
    // addresses, decoys), which a host firewall that drops all unsolicited traffic would hide.
    let mut results = engine::run(&mut setup, controls, &|done, _, what| report_step(done, total, what))?;
    mirror::load_firewall(&topology.victim, &facts.firewall, &mut mirror)?;
    if signal::interrupted() {
        return Err(LabError::Interrupted);
    }
    setup.counters = counters::Sources {
        nft: mirror.nft_loaded,
        iptables: mirror.iptables_loaded.clone(),
    };
    observe::install(&topology.victim)?;
    setup.observed = true;
    results.extend(engine::run(&mut setup, attacks, &|done, _, what| {
        report_step(control_phases + done, total, what)
    })?);
    drop(setup);
    let controls_passed = engine::qualify(&mut results, &mirror);
    if !controls_passed {
        notes.push(
            "a control failed: the lab could not reproduce ordinary reachability, so nothing is reported as proven"
                .into(),
        );
    }
    Ok(ProofReport {
        schema: PROOF_SCHEMA.to_string(),
        source: opts.source.clone(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_default(),
        controls_passed,
        interfaces: names,
        mirror,
        notes,
        untested: plan.untested.clone(),
        results,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Marks the attacks from spoofed sources whose drop the host's unknown routes could undo (see
/// [`routes::spoofed_source_doubt`]).
fn doubt_unrouted_sources(facts: &HostFacts, attacks: &mut [attacks::ProbeSpec], links: &[topology::Link]) {
    let firewall = loopwarden_core::firewall::questions::Firewall::new(facts);
    for p in attacks.iter_mut().filter(|p| p.doubt.is_none() && spoofed(p, links)) {
        p.doubt = routes::spoofed_source_doubt(facts, &firewall, p.src.is_ipv6()).map(str::to_string);
    }
}

/// Whether `probe` carries a source other than its link's peer's own addresses.
fn spoofed(probe: &attacks::ProbeSpec, links: &[topology::Link]) -> bool {
    let Some(link) = probe.link.and_then(|li| links.get(li)) else {
        return false;
    };
    let own = [
        link.plan.peer_v4.map(std::net::IpAddr::V4),
        link.plan.peer_v6.map(std::net::IpAddr::V6),
        link.peer_ll.map(std::net::IpAddr::V6),
    ];
    !own.contains(&Some(probe.src.ip()))
}

fn decoy_spec(d: &plan::DecoyPlan) -> decoy::DecoySpec {
    decoy::DecoySpec {
        protocol: d.protocol,
        bind: std::net::SocketAddr::new(d.address, d.port),
        v6only: d.v6only,
        peer: d.peer,
    }
}

fn stand_in_spec(s: &plan::StandInPlan) -> decoy::DecoySpec {
    decoy::DecoySpec {
        protocol: s.protocol,
        bind: s.target,
        v6only: None,
        peer: None,
    }
}
