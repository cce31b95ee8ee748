//! loopwarden's probes: bounded active checks against this host's own listeners
//! (`loopwarden audit --probe`).
//!
//! Two kinds of evidence that configuration alone cannot give:
//! - **browser-borne** ([`browser`]): for every loopback- or wildcard-bound TCP listener that
//!   speaks HTTP or HTTPS, what a web page in a local browser can make it do — answer a foreign
//!   `Host` (DNS rebinding), grant a foreign origin through CORS, say yes to a Private Network
//!   Access preflight, accept a WebSocket from a foreign `Origin`, answer at `0.0.0.0`;
//! - **relays** ([`relay`]): for every listener reachable beyond loopback, whether it carries a
//!   client to this host's loopback as an HTTP or SOCKS proxy — proven only against a canary
//!   listener opened for the purpose ([`canary`]).
//!
//! Every exchange is bounded in time, bytes and concurrency. The only request that may change
//! state is one empty cross-site `text/plain` POST per service with an open finding
//! ([`ProbeOptions::post`]).
#![warn(missing_docs)]

pub mod browser;
pub mod canary;
pub mod ftp;
pub mod guarded;
pub mod http;
pub mod relay;
pub mod targets;
pub mod tls;
pub mod wire;

use loopwarden_core::facts::HostFacts;
use loopwarden_core::report::{sort_findings, Finding, Scope, Status};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use wire::Wire;

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Send the one state-changing request: an empty cross-site `text/plain` POST to services
    /// with an open finding (`--no-post` turns it off).
    pub post: bool,
    /// Log every request and its outcome on stderr (`--verbose`).
    pub verbose: bool,
    /// Most connections open at once.
    pub concurrency: usize,
    /// Bound on connecting and on a TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on one exchange after connecting.
    pub io_timeout: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            post: true,
            verbose: false,
            concurrency: 64,
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(2),
        }
    }
}

/// Why probing could not run at all (a single service failing is evidence, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The async runtime could not start.
    #[error("cannot start the probe runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The TLS client could not be configured.
    #[error("cannot configure TLS for probing: {0}")]
    Tls(#[source] tokio_rustls::rustls::Error),
    /// The canary listener could not be opened on loopback.
    #[error("cannot open the relay canary on 127.0.0.1: {0}")]
    Canary(#[source] std::io::Error),
    /// A probe task failed unexpectedly (a bug): its findings would be missing.
    #[error("a probe task failed: {0}")]
    Task(String),
    /// Invalid options.
    #[error("invalid probe options: {0}")]
    Options(String),
}

/// What probing found, and what it did: the findings (all with confidence `probed`) and the
/// summary a report shows, so that a run that found nothing still says what it asked.
#[derive(Debug)]
pub struct ProbeReport {
    /// The findings, sorted.
    pub findings: Vec<Finding>,
    /// What was probed and what was not.
    pub summary: Summary,
}

/// What the probes asked, and what they left alone and why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Loopback- and wildcard-bound TCP listeners asked as a web page would.
    pub browser_targets: usize,
    /// Of those, how many speak HTTP, and how many HTTPS.
    pub http: usize,
    /// How many speak HTTPS.
    pub https: usize,
    /// Listeners beyond loopback asked to relay to the canary.
    pub relay_targets: usize,
    /// How many relayed.
    pub relays: usize,
    /// TCP listeners bound to an address this host does not have: not probed.
    pub foreign_address: Vec<String>,
    /// UDP services, which no probe speaks to.
    pub udp: usize,
    /// Unix sockets, which no probe speaks to.
    pub unix: usize,
}

impl Summary {
    /// The summary as report lines.
    pub fn lines(&self) -> Vec<String> {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut asked = format!(
            "probe: {} asked as a web page would ({} speak HTTP, {} HTTPS)",
            plural(self.browser_targets, "TCP listener", "TCP listeners"),
            self.http,
            self.https
        );
        if self.relay_targets > 0 {
            asked.push_str(&format!(
                "; {} beyond loopback asked to relay to a canary (HTTP GET/CONNECT, SOCKS4/4a/5): {} did",
                plural(self.relay_targets, "listener", "listeners"),
                self.relays
            ));
        }
        let mut out = vec![asked];
        if !self.foreign_address.is_empty() {
            out.push(format!(
                "probe: not probed: {} bound to an address this host does not have (the probe would leave the host): {}",
                plural(self.foreign_address.len(), "listener", "listeners"),
                loopwarden_core::report::shown::list(&self.foreign_address)
            ));
        }
        if self.udp + self.unix > 0 {
            out.push(format!(
                "probe: not probed: {} and {} (the probes speak HTTP, TLS and SOCKS over TCP)",
                plural(self.udp, "UDP service", "UDP services"),
                plural(self.unix, "Unix socket", "Unix sockets")
            ));
        }
        out
    }
}

/// Probes this host's listeners named in `facts` (which must describe the network namespace the
/// caller runs in). `progress` is called with (done, total) as targets finish.
pub fn probe(
    facts: &HostFacts,
    opts: &ProbeOptions,
    progress: &dyn Fn(usize, usize),
) -> Result<ProbeReport, ProbeError> {
    if opts.concurrency == 0 {
        return Err(ProbeError::Options("concurrency must be at least 1".to_string()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ProbeError::Runtime)?;
    let mut report = runtime.block_on(run(facts, opts, progress))?;
    // The probe runs as root and reaches a guarded upstream itself; core's web checks decide
    // whether a running `loopwarden guard` keeps browser pages away from it.
    if !facts.guards.is_empty() {
        let ctx = loopwarden_core::checks::Context::new(facts);
        report.findings = loopwarden_core::checks::credit_guards(&ctx, report.findings);
    }
    Ok(report)
}

/// What one probe task gave.
enum Done {
    Browser(targets::Target, browser::Probed),
    Relay(Vec<Finding>),
}

async fn run(
    facts: &HostFacts,
    opts: &ProbeOptions,
    progress: &dyn Fn(usize, usize),
) -> Result<ProbeReport, ProbeError> {
    let wire = Wire {
        connect_timeout: opts.connect_timeout,
        io_timeout: opts.io_timeout,
        verbose: opts.verbose,
        tls: tls::connector().map_err(ProbeError::Tls)?,
        permits: Arc::new(Semaphore::new(opts.concurrency)),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let relay_targets = targets::relay_targets(facts);
    let browser_targets = targets::browser_targets(facts);
    let services = loopwarden_core::inventory::services(facts);
    let mut summary = Summary {
        browser_targets: browser_targets.len(),
        relay_targets: relay_targets.len(),
        foreign_address: targets::foreign_address_listeners(facts),
        udp: services.iter().filter(|s| s.proto == "udp").count(),
        unix: services.iter().filter(|s| s.proto == "unix").count(),
        ..Summary::default()
    };
    let canary = match relay_targets.is_empty() {
        true => None,
        false => Some(Arc::new(canary::Canary::open().await.map_err(ProbeError::Canary)?)),
    };
    let exposed: Arc<Vec<String>> = Arc::new(
        services
            .into_iter()
            .filter(|s| s.proto == "tcp" && s.scope == Scope::Loopback)
            .map(|s| s.id)
            .collect(),
    );
    let mut tasks: JoinSet<Done> = JoinSet::new();
    for target in browser_targets {
        let wire = wire.clone();
        let post = opts.post;
        tasks.spawn(async move {
            let probed = browser::probe(&wire, &target, post).await;
            Done::Browser(target, probed)
        });
    }
    if let Some(canary) = &canary {
        for (target, from_network) in relay_targets {
            let (wire, canary, exposed) = (wire.clone(), Arc::clone(canary), Arc::clone(&exposed));
            tasks
                .spawn(async move { Done::Relay(relay::probe(&wire, &target, from_network, &canary, &exposed).await) });
        }
    }
    let total = tasks.len();
    let mut findings = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done.map_err(|e| ProbeError::Task(e.to_string()))? {
            Done::Browser(target, probed) => {
                match probed.scheme {
                    Some(wire::Scheme::Http) => summary.http += 1,
                    Some(wire::Scheme::Https) => summary.https += 1,
                    None => {}
                }
                let guard = guarded::observed(facts, &target, &probed.first, uid);
                // A guard front that refused the probe answered with its refusal, not the
                // service's page: the web checks judged nothing there (the service behind it is
                // probed on its own listener, and credited or not by the audit).
                let refused = guard.as_ref().is_some_and(|g| g.status == Status::Blocked);
                findings.extend(probed.findings.into_iter().filter(|f| !(refused && f.check.is_web())));
                findings.extend(guard);
            }
            Done::Relay(found) => {
                summary.relays += usize::from(!found.is_empty());
                findings.extend(found);
            }
        }
        progress(total - tasks.len(), total);
    }
    sort_findings(&mut findings);
    Ok(ProbeReport { findings, summary })
}
