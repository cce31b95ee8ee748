//! Whether the upstream can be reached without the guard. A guard in front of a service every
//! user can reach directly guards nothing: at start (and on reload) the guard asks the firewall
//! evaluator which uids may connect to a TCP upstream, and looks at a Unix upstream's
//! permissions, and warns with the exact command that closes the gap.

use crate::config::FrontConfig;
use crate::endpoint::Upstream;
use loopwarden_core::facts::HostFacts;
use loopwarden_core::firewall::questions::Firewall;
use loopwarden_core::firewall::ranges::RangeSet;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Who the guard runs as.
#[derive(Debug, Clone)]
pub struct GuardUser {
    /// Its uid.
    pub uid: u32,
    /// Its account name (the uid as text without one).
    pub name: String,
}

/// Warnings for every front whose upstream others can reach directly, or where that is unknown.
/// `facts` is a snapshot of the guard's network namespace.
pub fn warnings(fronts: &[FrontConfig], facts: &HostFacts, me: &GuardUser) -> Vec<String> {
    let firewall = Firewall::new(facts);
    fronts
        .iter()
        .filter_map(|f| match &f.upstream {
            Upstream::Tcp(addr) => tcp_warning(&f.name, *addr, facts, &firewall, me),
            Upstream::Unix(path) => unix_warning(&f.name, path, me),
        })
        .collect()
}

fn tcp_warning(
    front: &str,
    addr: SocketAddr,
    facts: &HostFacts,
    firewall: &Firewall,
    me: &GuardUser,
) -> Option<String> {
    let fix = format!("loopwarden harden --allow {}={}", addr.port(), me.name);
    let head = format!("warning: front {front}: upstream {addr}");
    let wildcard = facts.inet_sockets.iter().find(|s| {
        s.port == addr.port()
            && s.protocol == loopwarden_core::facts::Protocol::Tcp
            && !loopwarden_core::addr::is_loopback(s.address)
    });
    if let Some(s) = wildcard {
        return Some(format!(
            "{head} also listens on {} — reachable beyond loopback, around the guard: bind it to {} only, then run `{fix}`",
            loopwarden_core::addr::socket_label(s.address, s.port),
            addr.ip()
        ));
    }
    if !firewall.captured {
        return Some(format!(
            "{head}: cannot tell whether other users reach it directly (the firewall is not readable as uid {}); \
             unless it is restricted, every local user bypasses the guard — restrict it to the guard's user: `{fix}`",
            me.uid
        ));
    }
    let access = firewall.uids_allowed(addr.ip(), 6, addr.port());
    let owners: Vec<u32> = facts
        .inet_sockets
        .iter()
        .filter(|s| s.port == addr.port() && loopwarden_core::addr::unmapped(s.address) == addr.ip())
        .map(|s| s.uid)
        .collect();
    let mut intended = vec![(0u128, 0u128), (me.uid.into(), me.uid.into())];
    intended.extend(owners.iter().map(|&u| (u128::from(u), u128::from(u))));
    let intended = RangeSet::from_ranges(intended);
    let others = access.allowed.union(&access.maybe).subtract(&intended);
    if others.is_empty() && access.cgroups.is_empty() {
        return None;
    }
    Some(format!(
        "{head} is reachable without the guard by {} — they bypass it; restrict it to the guard's user: `{fix}`",
        describe(&others, access.unrestricted())
    ))
}

fn describe(others: &RangeSet, everyone: bool) -> String {
    if everyone {
        return "every local user".to_string();
    }
    let parts: Vec<String> = others
        .ranges()
        .iter()
        .map(|&(a, b)| {
            if a == b {
                format!("uid {a}")
            } else {
                format!("uids {a}-{b}")
            }
        })
        .collect();
    if parts.is_empty() {
        "processes in a cgroup the firewall lets through".into()
    } else {
        parts.join(", ")
    }
}

/// A Unix upstream is reachable by those with write on the socket and search on every parent.
fn unix_warning(front: &str, path: &Path, me: &GuardUser) -> Option<String> {
    let head = format!("warning: front {front}: upstream unix:{}", path.display());
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return Some(format!(
                "{head}: cannot inspect it ({e}); it must be private to uid {}",
                me.uid
            ))
        }
    };
    let mut others = meta.mode() & 0o002 != 0;
    let mut group = meta.mode() & 0o020 != 0 && meta.gid() != 0;
    for dir in path.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(dir) else { break };
        others &= m.mode() & 0o001 != 0;
        group &= m.mode() & 0o011 != 0;
    }
    (others || (group && meta.uid() != me.uid)).then(|| {
        format!(
            "{head} can be opened by {} — they bypass the guard; put it in a directory only the service and the guard's user ({}) can search (mode 0750, group shared by the two)",
            if others { "every local user" } else { "members of its group" },
            me.name
        )
    })
}
