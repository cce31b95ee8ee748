//! Every network namespace of the host (`--all-netns`), or one named namespace (`--netns`).
//!
//! [`discover`] finds them; [`runtimes`] names them from the container runtimes' state; each is
//! then collected by a thread that entered it ([`enter`]), exactly as `loopwarden facts` run
//! inside it would collect it — except that the `/proc/*/fd` walk that maps sockets to their
//! processes is done once for the whole host and shared (socket inodes are unique host-wide),
//! and that `/etc` and Unix socket paths are read in the namespace's processes' file system.
//! Nothing is executed per namespace but the firewall listings, and only where the kernel says
//! there is a ruleset to list.

pub mod discover;
pub mod enter;
pub mod links;
pub mod runtimes;

use super::etc_view::EtcView;
use super::owners::Owners;
use super::rooted::Root;
use crate::facts::{
    HostFactsSet, Limit, NamespaceFacts, NamespaceIdentity, ProcessRef, HOST_FACTS_SCHEMA, MAX_LISTED_PROCESSES,
};
use discover::Discovery;
use std::path::PathBuf;

/// A namespace as `--netns` names it that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not a name, a pid or a path.
    #[error("--netns {0:?}: expected an `ip netns` name, a pid or the path of a namespace file")]
    Malformed(String),
    /// A number that is both an `ip netns` name and a running process's pid.
    #[error(
        "--netns {0:?} names both the `ip netns` {0} and process {0}: give /run/netns/{0} for the first or \
         /proc/{0}/ns/net for the second"
    )]
    Ambiguous(String),
    /// The file does not open or is not a network namespace.
    #[error("--netns {target:?}: {path}: {why}")]
    Unusable {
        /// As given.
        target: String,
        /// The file it names.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// The namespace could not be entered.
    #[error("--netns {target:?}: {source}")]
    Enter {
        /// As given.
        target: String,
        /// Why.
        #[source]
        source: enter::EnterError,
    },
}

/// The namespace file `--netns` names: an `ip netns` name (`/run/netns/NAME`), a pid
/// (`/proc/PID/ns/net`) or a path.
/// A number is a pid unless an `ip netns` has that name and no process that pid (`ip netns add 1`
/// must never make `--netns 1` act on pid 1's namespace, the host's); both is an error.
pub fn target_path(target: &str) -> Result<PathBuf, TargetError> {
    if target.starts_with('/') {
        return Ok(PathBuf::from(target));
    }
    if target.is_empty() || target.contains('/') || target == "." || target == ".." {
        return Err(TargetError::Malformed(target.to_string()));
    }
    let named = PathBuf::from("/run/netns").join(target);
    if !target.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(named);
    }
    let pid = PathBuf::from(format!("/proc/{target}/ns/net"));
    let exists = |p: &PathBuf| p.symlink_metadata().is_ok();
    match (exists(&named), exists(&pid)) {
        (true, true) => Err(TargetError::Ambiguous(target.to_string())),
        (true, false) => Ok(named),
        (false, _) => Ok(pid),
    }
}

/// The inode of the network namespace `target` names.
pub fn target_inode(target: &str) -> Result<u64, TargetError> {
    let path = target_path(target)?;
    let unusable = |why: String| TargetError::Unusable {
        target: target.to_string(),
        path: path.display().to_string(),
        why,
    };
    let fd = rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| unusable(e.to_string()))?;
    // nsfs files answer NS_GET_NSTYPE; a plain stat cannot tell a namespace from another file.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: ioctl(2) with a request that takes no argument, on a descriptor we own.
    let kind = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), NS_GET_NSTYPE) };
    if kind != libc::CLONE_NEWNET {
        return Err(unusable("not a network namespace".to_string()));
    }
    Ok(rustix::fs::fstat(&fd).map_err(|e| unusable(e.to_string()))?.st_ino)
}

/// What one namespace's collection needs.
struct Plan {
    identity: NamespaceIdentity,
    handles: Vec<PathBuf>,
    etc: EtcView,
    default_pid: Option<u32>,
}

/// Collects every network namespace of the host. `progress` is called after each namespace with
/// how many are done, how many there are, and the namespace's label.
pub fn collect_all(progress: &(dyn Fn(usize, usize, &str) + Sync)) -> HostFactsSet {
    let (discovery, names, links, scan) = std::thread::scope(|scope| {
        let scanner = std::thread::Builder::new()
            .name("loopwarden-owners".into())
            .spawn_scoped(scope, || super::owners::scan(None));
        let discovery = discover::discover();
        let names = runtimes::read(&discovery);
        let links = links::collect(&discovery);
        let scan = match scanner {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the /proc scan panicked"))),
            Err(_) => super::owners::scan(None),
        };
        (discovery, names, links, scan)
    });
    let mut limits = names.limits.clone();
    if !discovery.unreadable.is_empty() {
        let pids: Vec<String> = discovery.unreadable.iter().take(8).map(u32::to_string).collect();
        limits.push(Limit {
            scope: "netns".into(),
            detail: format!(
                "the namespaces of {} process(es) could not be read (permission denied: pid {}): a \
                 namespace only they hold is missing",
                discovery.unreadable.len(),
                pids.join(", ")
            ),
        });
    }
    let shared = shared_scan(scan, &mut limits);
    let mut plans: Vec<Plan> = discovery
        .namespaces
        .keys()
        .map(|&inode| plan(&discovery, &names, inode, &mut limits))
        .collect();
    plans.sort_by_key(|p| (!p.identity.host, p.identity.inode));
    let total = plans.len();
    let results = enter::for_each(
        &plans,
        worker_threads(),
        &|p: &Plan| (p.identity.inode, p.handles.clone()),
        &|p: &Plan| super::collect_entered(&shared, &p.etc, p.default_pid),
        &|done, p: &Plan| progress(done, total, &p.identity.label()),
    );
    let mut namespaces = Vec::new();
    for (plan, result) in plans.into_iter().zip(results) {
        match result {
            Ok(facts) => namespaces.push(NamespaceFacts {
                namespace: plan.identity,
                facts,
            }),
            Err(e) => limits.push(Limit {
                scope: "netns".into(),
                detail: format!("{} ({}): {}", plan.identity.id, plan.identity.label(), e.why),
            }),
        }
    }
    let host = super::host::collect();
    HostFactsSet {
        schema: HOST_FACTS_SCHEMA.to_string(),
        hostname: host.hostname,
        kernel: host.kernel,
        privileged: host.privileged,
        collected_at: host.collected_at,
        limits,
        namespaces,
        links,
    }
}

/// Collects the one network namespace `target` names (`--netns`), with its identity.
pub fn collect_one(target: &str) -> Result<NamespaceFacts, TargetError> {
    let inode = target_inode(target)?;
    let discovery = discover::discover();
    let names = runtimes::read(&discovery);
    let mut limits = Vec::new();
    let shared = shared_scan(super::owners::scan(None), &mut limits);
    let mut plan = plan(&discovery, &names, inode, &mut limits);
    plan.handles.insert(0, target_path(target)?);
    let mut results = enter::for_each(
        std::slice::from_ref(&plan),
        1,
        &|p: &Plan| (p.identity.inode, p.handles.clone()),
        &|p: &Plan| super::collect_entered(&shared, &p.etc, p.default_pid),
        &|_, _| {},
    );
    let mut facts = results
        .pop()
        .unwrap_or_else(|| {
            Err(enter::EnterError {
                inode,
                why: "not collected".into(),
            })
        })
        .map_err(|source| TargetError::Enter {
            target: target.to_string(),
            source,
        })?;
    facts.host.limits.extend(limits);
    Ok(NamespaceFacts {
        namespace: plan.identity,
        facts,
    })
}

/// Runs `work` once inside each namespace of `inodes` (looked up again now, by a process or bind
/// mount that still holds it) on up to `threads` dedicated threads — for the stages that act in a
/// namespace after collection (the probes). Results come back in the order of `inodes`.
pub fn in_each<R: Send>(
    inodes: &[u64],
    threads: usize,
    work: &(dyn Fn(u64) -> R + Sync),
) -> Vec<Result<R, enter::EnterError>> {
    let discovery = discover::discover();
    let handles = |inode: &u64| {
        let found = discovery.namespaces.get(inode).map(|f| f.handles.clone());
        (*inode, found.unwrap_or_default())
    };
    enter::for_each(inodes, threads, &handles, &|inode| work(*inode), &|_, _| {})
}

/// The shared owner scan, or an empty one with a limit when `/proc` could not be scanned.
fn shared_scan(scan: std::io::Result<Owners>, limits: &mut Vec<Limit>) -> Owners {
    scan.unwrap_or_else(|e| {
        limits.push(Limit {
            scope: "owners".into(),
            detail: format!("cannot scan /proc for socket owners: {e}; every owner is unknown"),
        });
        Owners::default()
    })
}

/// The part of the shared scan about `inodes` (one namespace's sockets).
pub(super) fn owners_of(shared: &Owners, inodes: impl Iterator<Item = u64>) -> Owners {
    Owners {
        by_inode: inodes
            .filter_map(|inode| shared.by_inode.get(&inode).map(|pids| (inode, pids.clone())))
            .collect(),
        unreadable: shared.unreadable,
        scanned: shared.scanned,
        // The shared scan read every process: nobody was passed over.
        elsewhere: Vec::new(),
    }
}

/// How many namespaces are collected at once: the work is mostly system calls, so one thread
/// per core, at least two.
fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

/// The identity of namespace `inode` and where its files are read.
fn plan(discovery: &Discovery, names: &runtimes::Names, inode: u64, limits: &mut Vec<Limit>) -> Plan {
    let found = discovery.namespaces.get(&inode).cloned().unwrap_or_default();
    let processes = discovery.processes_in(inode);
    let containers: Vec<_> = names
        .containers
        .iter()
        .filter(|p| p.netns == inode)
        .map(|p| p.container.clone())
        .collect();
    // The files of the namespace's own container, else of its first process.
    let pid = containers
        .iter()
        .filter(|c| !c.shares_namespace)
        .find_map(|c| c.pid)
        .or_else(|| processes.first().map(|p| p.pid));
    let etc = if Some(inode) == discovery.own {
        EtcView::Own
    } else {
        match (pid, found.ip_netns.first()) {
            (Some(pid), _) => match Root::of_process(pid) {
                Ok(root) => EtcView::Process(root),
                Err(e) => {
                    limits.push(Limit {
                        scope: "netns".into(),
                        detail: format!(
                            "net:[{inode}]: cannot open the root of pid {pid} ({e}): its /etc is read from this host's"
                        ),
                    });
                    EtcView::Own
                }
            },
            (None, Some(name)) => EtcView::IpNetns(name.clone()),
            (None, None) => EtcView::Own,
        }
    };
    let identity = NamespaceIdentity {
        id: format!("net:[{inode}]"),
        inode,
        host: Some(inode) == discovery.host,
        ip_netns: found.ip_netns.clone(),
        bind_mounts: found.bind_mounts.clone(),
        containers,
        machine: names
            .machines
            .iter()
            .find(|(ns, _)| *ns == inode)
            .map(|(_, m)| m.clone()),
        processes: processes
            .iter()
            .take(MAX_LISTED_PROCESSES)
            .map(|p| ProcessRef {
                pid: p.pid,
                name: p.name.clone(),
                uid: p.uid,
            })
            .collect(),
        process_count: processes.len(),
        etc_from: etc.describe(),
    };
    Plan {
        identity,
        handles: found.handles,
        etc,
        default_pid: pid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_names_pids_or_paths() {
        assert_eq!(target_path("web").unwrap(), PathBuf::from("/run/netns/web"));
        assert_eq!(target_path("1234").unwrap(), PathBuf::from("/proc/1234/ns/net"));
        assert_eq!(target_path("/proc/1/ns/net").unwrap(), PathBuf::from("/proc/1/ns/net"));
        for bad in ["", "..", "a/b", "."] {
            assert!(matches!(target_path(bad), Err(TargetError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_network_namespace_is_refused() {
        let err = target_inode("/etc/hostname").unwrap_err().to_string();
        assert!(err.contains("not a network namespace"), "{err}");
        let mnt = target_inode("/proc/self/ns/mnt").unwrap_err().to_string();
        assert!(mnt.contains("not a network namespace"), "{mnt}");
        let own = target_inode(&std::process::id().to_string()).expect("our own namespace");
        assert_eq!(Some(own), discover::ns_inode("/proc/self/ns/net"));
    }
}
