//! What a running guard shares between its tasks: each front's configuration, current policy
//! (swapped on reload), counters and open connections, and the guard-wide services.

use crate::accounts::MembershipCache;
use crate::config::FrontConfig;
use crate::counters::Counters;
use crate::identity::Peer;
use crate::log::RefusalLog;
use crate::policy::{Occupancy, Policy, Refusal};
use crate::upstream::{self, ConnectError, Owner};
use loopwarden_core::facts::GuardEndpoint;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// One front at run time.
#[derive(Debug)]
pub struct FrontState {
    /// Its configuration (listen address, upstream and mode never change while running).
    pub config: FrontConfig,
    /// The sockets it listens on, as published (a TCP front without IPv6 loopback has one).
    pub endpoints: Vec<GuardEndpoint>,
    /// The policy in force; replaced whole on reload.
    pub policy: RwLock<Arc<Policy>>,
    /// Its counters.
    pub counters: Counters,
    /// Its open connections.
    pub occupancy: Arc<Occupancy>,
    /// Who must hold its upstream.
    pub upstream_owner: Owner,
}

impl FrontState {
    /// A front with its first policy, listening on `endpoints`, forwarding to an upstream
    /// `upstream_owner` holds.
    pub fn new(
        config: FrontConfig,
        policy: Policy,
        endpoints: Vec<GuardEndpoint>,
        upstream_owner: Owner,
    ) -> FrontState {
        FrontState {
            upstream_owner,
            config,
            endpoints,
            policy: RwLock::new(Arc::new(policy)),
            counters: Counters::default(),
            occupancy: Arc::new(Occupancy::default()),
        }
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the policy.
    pub fn set_policy(&self, policy: Policy) {
        match self.policy.write() {
            Ok(mut p) => *p = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
    }
}

/// Guard-wide services.
#[derive(Debug)]
pub struct Shared {
    /// Instance name.
    pub name: String,
    /// Group memberships of TCP peers.
    pub accounts: MembershipCache,
    /// Rate limit on refusal lines.
    pub refusal_log: RefusalLog,
    /// Turns true when the guard drains (SIGTERM).
    pub draining: watch::Receiver<bool>,
}

impl Shared {
    /// Counts a refusal and logs it (rate-limited). A TCP peer's process is looked up in
    /// `/proc` on a blocking thread while the caller still holds the connection open (so the
    /// client has not exited yet); that lookup is only done for lines that are written.
    pub async fn refuse(&self, front: &FrontState, peer: Option<Peer>, refusal: &Refusal) {
        front.counters.refused(refusal.key());
        if !self.refusal_log.permit(&self.name) {
            return;
        }
        let line = format!("loopwarden guard {} front {}: refused", self.name, front.config.name);
        match peer {
            Some(mut peer) => {
                if peer.inode.is_some() {
                    let mut named = peer.clone();
                    let lookup = tokio::task::spawn_blocking(move || {
                        crate::identity::find_process(&mut named);
                        named
                    });
                    peer = lookup.await.unwrap_or(peer);
                }
                crate::logln!("{line} {}: {refusal}", peer.describe());
            }
            None => crate::logln!("{line}: {refusal}"),
        }
    }
}

impl FrontState {
    /// Connects this front's upstream, checking who holds it; logs the owner when this
    /// connection pinned it, and every failure (rate-limited) with its reason.
    pub async fn connect_upstream(&self, shared: &Shared) -> Result<upstream::Stream, ConnectError> {
        let result = upstream::connect(&self.config.upstream, &self.upstream_owner, |uid| {
            crate::logln!(
                "loopwarden guard {} front {}: upstream {} is held by {}: only that user's service is sent requests",
                shared.name,
                self.config.name,
                self.config.upstream,
                crate::accounts::describe(uid)
            )
        })
        .await;
        if let Err(e) = &result {
            self.counters.upstream_error();
            let wrong = matches!(e, ConnectError::WrongOwner(_));
            if wrong || shared.refusal_log.permit(&shared.name) {
                crate::logln!(
                    "loopwarden guard {} front {}: upstream {}: {e}",
                    shared.name,
                    self.config.name,
                    self.config.upstream
                );
            }
        }
        result
    }
}

/// Resolves when the guard starts draining.
pub async fn drained(draining: &mut watch::Receiver<bool>) {
    let _ = draining.wait_for(|d| *d).await;
}
