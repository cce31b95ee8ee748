//! Whole-host checks: pure functions from every namespace's facts and audit to the findings only
//! the whole view shows — a container that shares a namespace's abstract sockets, a container
//! namespace the host's firewall does not cover, a namespace's loopback service published in
//! another. Like every check they do no I/O.

mod published_loopback;
mod shared_abstract_unix;
mod unprotected_loopback;

pub use published_loopback::CHECK as PUBLISHED_LOOPBACK;
pub use shared_abstract_unix::CHECK as SHARED_ABSTRACT_UNIX;
pub use unprotected_loopback::CHECK as UNPROTECTED_LOOPBACK;

use super::{Check, CheckSpec};
use crate::facts::{HostFactsSet, NamespaceFacts};
use crate::report::{HostFinding, Report};

/// What a whole-host check looks at: every namespace's facts, and each one's audit (in the same
/// order).
pub struct HostContext<'a> {
    /// The snapshot of every namespace.
    pub set: &'a HostFactsSet,
    /// Each namespace's audit, in the order of `set.namespaces`.
    pub reports: &'a [Report],
}

impl HostContext<'_> {
    /// Every namespace with its audit.
    pub fn namespaces(&self) -> impl Iterator<Item = (&NamespaceFacts, &Report)> {
        self.set.namespaces.iter().zip(self.reports)
    }

    /// The audit of the host's own namespace, when it was collected.
    pub fn host_report(&self) -> Option<&Report> {
        self.namespaces().find(|(n, _)| n.namespace.host).map(|(_, r)| r)
    }
}

/// A whole-host check.
#[derive(Clone, Copy)]
pub struct HostCheck {
    /// What it is.
    pub spec: CheckSpec,
    /// The pure evaluation.
    pub evaluate: fn(&HostContext) -> Vec<HostFinding>,
}

impl HostCheck {
    /// Its entry in the catalogue ([`super::ALL`]): the spec, and no per-namespace evaluation.
    pub const fn catalogue_entry(self) -> Check {
        Check {
            spec: self.spec,
            evaluate: None,
        }
    }
}

/// Every whole-host check, in catalogue order.
pub static ALL: &[HostCheck] = &[SHARED_ABSTRACT_UNIX, UNPROTECTED_LOOPBACK, PUBLISHED_LOOPBACK];

/// Every whole-host finding.
pub fn evaluate(ctx: &HostContext) -> Vec<HostFinding> {
    ALL.iter().flat_map(|check| (check.evaluate)(ctx)).collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Small whole-host snapshots for the checks' tests.

    use crate::checks::test_facts::base;
    use crate::facts::*;

    /// A namespace with `base()` facts (lo and eth0) and this identity.
    pub fn namespace(inode: u64, host: bool) -> NamespaceFacts {
        NamespaceFacts {
            namespace: NamespaceIdentity {
                id: format!("net:[{inode}]"),
                inode,
                host,
                ..Default::default()
            },
            facts: base(),
        }
    }

    /// A set of namespaces.
    pub fn set(namespaces: Vec<NamespaceFacts>) -> HostFactsSet {
        HostFactsSet {
            schema: HOST_FACTS_SCHEMA.into(),
            hostname: "h".into(),
            kernel: "6.18.0".into(),
            privileged: true,
            collected_at: 0,
            limits: vec![],
            namespaces,
            links: vec![],
        }
    }

    /// A Docker container.
    pub fn container(name: &str, mode: &str, pid: u32) -> Container {
        Container {
            runtime: Runtime::Docker,
            id: format!("{name:0>64}"),
            name: Some(name.into()),
            image: Some("busybox:1".into()),
            pod: None,
            network_mode: Some(mode.into()),
            shares_namespace: mode == "host",
            pid: Some(pid),
        }
    }

    /// The whole-host findings of `set`, with each namespace audited.
    pub fn evaluate(check: &super::HostCheck, set: &HostFactsSet) -> Vec<crate::report::HostFinding> {
        let reports: Vec<_> = set.namespaces.iter().map(|n| crate::audit(&n.facts)).collect();
        (check.evaluate)(&super::HostContext { set, reports: &reports })
    }
}
