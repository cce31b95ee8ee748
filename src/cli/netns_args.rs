//! `--netns NAME|PID|PATH` and `--all-netns`, shared by the verbs that read a namespace
//! (`facts`, `audit`, `prove`), and the collection they select.

use super::progress::Progress;
use loopwarden_core::facts::{HostFacts, HostFactsSet};

/// Which network namespace(s) a verb reads.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NetnsArgs {
    /// Read another network namespace instead of this one: an `ip netns` name, a pid (the
    /// namespace that process is in) or a namespace file (/run/docker/netns/…). Needs root.
    #[arg(long, value_name = "NAME|PID|PATH", conflicts_with = "all_netns")]
    pub netns: Option<String>,
    /// Read every network namespace of this host — each container's, pod's, `ip netns` and
    /// process-held one — name each for a person (container, pod, `ip netns` name, processes),
    /// and report them together with the findings only that view shows (JSON:
    /// loopwarden.host-facts/v1 and loopwarden.host-report/v1). Needs root to see them all.
    #[arg(long)]
    pub all_netns: bool,
}

impl NetnsArgs {
    /// The facts of this namespace, or of the one `--netns` names (its `host.netns` then says who
    /// it is: `net:[N] (container web (docker, nginx:1))`).
    pub fn collect_one(&self, progress: &Progress) -> anyhow::Result<HostFacts> {
        let Some(target) = &self.netns else {
            return Ok(loopwarden_core::collect::collect_reporting(&|step| progress.step(step)));
        };
        progress.step(&format!("collecting network namespace {target}"));
        let one = loopwarden_core::collect::netns::collect_one(target)?;
        let mut facts = one.facts;
        let label = one.namespace.label();
        if label != one.namespace.id {
            facts.host.netns = format!("{} ({label})", one.namespace.id);
        }
        Ok(facts)
    }

    /// Runs `work` in the namespace the verb reads: here, or on a thread inside the one
    /// `--netns` names (for the probes, which talk to that namespace's own listeners).
    pub fn run_in<R: Send>(&self, work: &(dyn Fn() -> R + Sync)) -> anyhow::Result<R> {
        let Some(target) = &self.netns else {
            return Ok(work());
        };
        let inode = loopwarden_core::collect::netns::target_inode(target)?;
        let mut results = loopwarden_core::collect::netns::in_each(&[inode], 1, &|_| work());
        match results.pop() {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(anyhow::anyhow!("--netns {target:?}: {e}")),
            None => Err(anyhow::anyhow!("--netns {target:?}: nothing ran")),
        }
    }
}

/// Every namespace of the host, counted on `progress`.
pub fn collect_all(progress: &Progress) -> HostFactsSet {
    loopwarden_core::collect::netns::collect_all(&|done, total, label| {
        progress.count(&format!("collected {label}; namespaces"), done, total)
    })
}
