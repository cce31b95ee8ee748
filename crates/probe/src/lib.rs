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
pub mod http;
pub mod relay;
pub mod targets;
pub mod tls;
pub mod wire;

use loopwarden_core::facts::HostFacts;
use loopwarden_core::report::{sort_findings, Finding, Scope};
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

/// Probes this host's listeners named in `facts` (which must describe the network namespace the
/// caller runs in) and returns the findings, all with confidence `probed`.
pub fn probe(facts: &HostFacts, opts: &ProbeOptions) -> Result<Vec<Finding>, ProbeError> {
    if opts.concurrency == 0 {
        return Err(ProbeError::Options("concurrency must be at least 1".to_string()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ProbeError::Runtime)?;
    let findings = runtime.block_on(run(facts, opts))?;
    // The probe runs as root and reaches a guarded upstream itself; core's web checks decide
    // whether a running `loopwarden guard` keeps browser pages away from it.
    if facts.guards.is_empty() {
        return Ok(findings);
    }
    let ctx = loopwarden_core::checks::Context::new(facts);
    Ok(loopwarden_core::checks::credit_guards(&ctx, findings))
}

async fn run(facts: &HostFacts, opts: &ProbeOptions) -> Result<Vec<Finding>, ProbeError> {
    let wire = Wire {
        connect_timeout: opts.connect_timeout,
        io_timeout: opts.io_timeout,
        verbose: opts.verbose,
        tls: tls::connector().map_err(ProbeError::Tls)?,
        permits: Arc::new(Semaphore::new(opts.concurrency)),
    };
    let relay_targets = targets::relay_targets(facts);
    let canary = match relay_targets.is_empty() {
        true => None,
        false => Some(Arc::new(canary::Canary::open().await.map_err(ProbeError::Canary)?)),
    };
    let exposed: Arc<Vec<String>> = Arc::new(
        loopwarden_core::inventory::services(facts)
            .into_iter()
            .filter(|s| s.proto == "tcp" && s.scope == Scope::Loopback)
            .map(|s| s.id)
            .collect(),
    );
    let mut tasks: JoinSet<Vec<Finding>> = JoinSet::new();
    for target in targets::browser_targets(facts) {
        let wire = wire.clone();
        let post = opts.post;
        tasks.spawn(async move { browser::probe(&wire, &target, post).await });
    }
    if let Some(canary) = &canary {
        for (target, from_network) in relay_targets {
            let (wire, canary, exposed) = (wire.clone(), Arc::clone(canary), Arc::clone(&exposed));
            tasks.spawn(async move { relay::probe(&wire, &target, from_network, &canary, &exposed).await });
        }
    }
    let mut findings = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let mut found = done.map_err(|e| ProbeError::Task(e.to_string()))?;
        findings.append(&mut found);
    }
    sort_findings(&mut findings);
    Ok(findings)
}
