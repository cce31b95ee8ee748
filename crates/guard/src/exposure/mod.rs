//! Whether the upstream can be reached without the guard. A guard in front of a service every
//! user can reach directly guards nothing: at start (and on reload) the guard asks the firewall
//! evaluator which uids may connect to a TCP upstream, and looks at a Unix upstream's
//! permissions, and warns with the exact command that closes the gap.
//!
//! The firewall is readable by root only. A guard running as its own user cannot tell by
//! itself; root can, just before it starts ([`record`]: `loopwarden guard --check-upstreams-for
//! USER`, the systemd unit's `ExecStartPre=+`), and the guard reads root's verdict.

pub mod record;

use crate::config::FrontConfig;
use crate::endpoint::Upstream;
use loopwarden_core::facts::{HostFacts, Protocol};
use loopwarden_core::firewall::questions::Firewall;
use loopwarden_core::firewall::ranges::RangeSet;
use serde::{Deserialize, Serialize};
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

/// Who reaches one front's upstream around the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// Only the guard's uid, root and the service's owner.
    OnlyGuard,
    /// Others too (or beyond loopback).
    Others,
    /// The firewall could not be read.
    Unknown,
}

/// The verdict on one front's upstream, with the line for the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The front's name.
    pub front: String,
    /// The upstream, as text.
    pub upstream: String,
    /// Who reaches it.
    pub reach: Reach,
    /// What to tell the operator (a warning with the fix; for [`Reach::OnlyGuard`] the evidence).
    pub message: String,
}

/// The verdict on every front's upstream. `facts` is a snapshot of the guard's network
/// namespace.
pub fn assess(fronts: &[FrontConfig], facts: &HostFacts, me: &GuardUser) -> Vec<Verdict> {
    let firewall = Firewall::new(facts);
    fronts
        .iter()
        .map(|f| {
            let (reach, message) = match &f.upstream {
                Upstream::Tcp(addr) => tcp(&f.name, *addr, facts, &firewall, me),
                Upstream::Unix(path) => unix(&f.name, path, me),
            };
            Verdict {
                front: f.name.clone(),
                upstream: f.upstream.to_string(),
                reach,
                message,
            }
        })
        .collect()
}

/// The command that restricts `port` to the guard's user, repeating every restriction loopwarden's
/// table already has for other ports — per protocol, exactly as in force, so none is narrowed
/// (harden keeps them anyway; repeated, the command says all it leaves in place); how many it
/// repeats (`None`: unknown) and the per-user connection limit it repeats.
pub fn fix_command(port: u16, facts: &HostFacts, me: &GuardUser) -> (String, Option<usize>, Option<u32>) {
    let mut command = format!("loopwarden harden --allow {port}={}", me.name);
    let Some(allows) = loopwarden_core::port_allows::read(&facts.firewall) else {
        return (command, None, None);
    };
    let mut kept = 0;
    let mut limit = None;
    for a in allows.iter().filter(|a| !(a.port == port && a.proto == Protocol::Tcp)) {
        let owners = owners_of(facts, a.proto, a.port);
        let named: Vec<String> = a
            .uids
            .iter()
            .filter(|u| **u != 0 && !owners.contains(u))
            .map(|&u| {
                facts
                    .accounts
                    .user_name(u)
                    .map_or_else(|| u.to_string(), str::to_string)
            })
            .collect();
        // Only root and the owners: still restricted — `=0` keeps exactly that.
        let who = if named.is_empty() {
            "0".to_string()
        } else {
            named.join(",")
        };
        command.push_str(&format!(" --allow {}/{}={who}", a.port, a.proto.as_str()));
        limit = limit.max(a.limit);
        kept += 1;
    }
    if let Some(n) = limit {
        command.push_str(&format!(" --limit-connections {n}"));
    }
    (command, Some(kept), limit)
}

/// What the fix command does to the other restrictions, for the message.
fn fix_note(kept: Option<usize>, limit: Option<u32>) -> String {
    let limited = limit.map_or_else(String::new, |n| {
        format!(
            "; the --limit-connections {n} it repeats applies to the guard's user too: at most {n} connections \
             through the guard at once"
        )
    });
    match kept {
        Some(0) => String::new(),
        Some(n) => format!(
            " (harden keeps the restrictions in force — a later --allow adds, the same port given again \
             replaces that port's list, --replace-allows drops them; the command repeats the {n} \
             restriction(s) loopwarden's table has for other ports, so it says all it leaves in place{limited})"
        ),
        None => " (harden keeps the restrictions already in force and adds this one; \
                  `sudo nft list chain inet loopwarden output` lists them)"
            .to_string(),
    }
}

fn owners_of(facts: &HostFacts, proto: Protocol, port: u16) -> Vec<u32> {
    facts
        .inet_sockets
        .iter()
        .filter(|s| s.port == port && s.protocol == proto && loopwarden_core::addr::is_loopback(s.address))
        .map(|s| s.uid)
        .collect()
}

fn tcp(front: &str, addr: SocketAddr, facts: &HostFacts, firewall: &Firewall, me: &GuardUser) -> (Reach, String) {
    let (fix, kept, limit) = fix_command(addr.port(), facts, me);
    let note = fix_note(kept, limit);
    let head = format!("warning: front {front}: upstream {addr}");
    let wildcard = facts.inet_sockets.iter().find(|s| {
        s.port == addr.port() && s.protocol == Protocol::Tcp && !loopwarden_core::addr::is_loopback(s.address)
    });
    if let Some(s) = wildcard {
        return (
            Reach::Others,
            format!(
                "{head} also listens on {} — reachable beyond loopback, around the guard: bind it to {} only, then run `{fix}`{note}",
                loopwarden_core::addr::socket_label(s.address, s.port),
                addr.ip()
            ),
        );
    }
    if !firewall.captured {
        return (Reach::Unknown, unknown_message(&head, addr, &fix, &note, me));
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
        return (
            Reach::OnlyGuard,
            format!(
                "front {front}: upstream {addr}: only uid {} ({}), root and the service's owner reach it",
                me.uid, me.name
            ),
        );
    }
    (
        Reach::Others,
        format!(
            "{head} is reachable without the guard by {} — they bypass it; restrict it to the guard's user: `{fix}`{note}",
            describe(&others, access.unrestricted())
        ),
    )
}

/// The warning when the firewall is not readable: what to run, and how to confirm.
fn unknown_message(head: &str, addr: SocketAddr, fix: &str, note: &str, me: &GuardUser) -> String {
    format!(
        "{head}: cannot tell whether other users reach it directly (the firewall is readable by root only, and the \
         guard runs as uid {uid}); unless it is restricted, every local user bypasses the guard — restrict it to the \
         guard's user: `{fix}`{note}. To confirm, run `sudo loopwarden audit` (local.tcp-any-uid for tcp:{addr} says \
         \"blocked by loopwarden guard\"), or let root check before the guard starts — `sudo loopwarden guard \
         --check-upstreams-for {name}` with the guard's own options (the systemd unit does this) — and this warning \
         gives way to root's verdict",
        uid = me.uid,
        name = me.name
    )
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
fn unix(front: &str, path: &Path, me: &GuardUser) -> (Reach, String) {
    let head = format!("warning: front {front}: upstream unix:{}", path.display());
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return (
                Reach::Unknown,
                format!("{head}: cannot inspect it ({e}); it must be private to uid {}", me.uid),
            )
        }
    };
    let mut others = meta.mode() & 0o002 != 0;
    let mut group = meta.mode() & 0o020 != 0 && meta.gid() != 0;
    for dir in path.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(dir) else { break };
        others &= m.mode() & 0o001 != 0;
        group &= m.mode() & 0o011 != 0;
    }
    if others || (group && meta.uid() != me.uid) {
        return (
            Reach::Others,
            format!(
                "{head} can be opened by {} — they bypass the guard; put it in a directory only the service and the guard's user ({}) can search (mode 0750, group shared by the two)",
                if others { "every local user" } else { "members of its group" },
                me.name
            ),
        );
    }
    (
        Reach::OnlyGuard,
        format!(
            "front {front}: upstream unix:{}: only its owner, its group and root can open it",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// loopwarden's table as `harden --apply --allow 18080/tcp=987 --allow 9000/tcp=1001,1002
    /// --limit-connections 4` wrote it in a namespace: the fix for a guard in front of port
    /// 19005 keeps both restrictions and the limit, and says what the limit does to the guard.
    #[test]
    fn the_fix_repeats_the_tables_restrictions_and_says_what_the_limit_does() {
        let captured = include_str!("../../../../fixtures/firewall/loopwarden-harden-two-allows/ruleset.json");
        // A real snapshot of a namespace (no loopwarden table in it), given the captured table.
        let snapshot = include_str!("../../../core/tests/fixtures/facts/namespace-every-listener-kind.json");
        let mut facts = HostFacts::from_json(snapshot).expect("snapshot");
        let unreadable = HostFacts {
            firewall: Default::default(),
            ..facts.clone()
        };
        facts.firewall.nft_json = Some(serde_json::from_str(captured).expect("captured nft JSON"));
        let me = GuardUser {
            uid: 991,
            name: "lwg-guard".into(),
        };
        let (command, kept, limit) = fix_command(19005, &facts, &me);
        assert_eq!(
            command,
            "loopwarden harden --allow 19005=lwg-guard --allow 9000/tcp=1001,1002 --allow 18080/tcp=987 \
             --limit-connections 4"
        );
        assert_eq!((kept, limit), (Some(2), Some(4)));
        let note = fix_note(kept, limit);
        assert!(
            note.contains("repeats the 2 restriction(s)")
                && note.contains("harden keeps the restrictions in force")
                && note.contains("at most 4 connections through the guard"),
            "{note}"
        );
        // Unreadable firewall: the fix says to repeat them by hand.
        let (command, kept, _) = fix_command(19005, &unreadable, &me);
        assert_eq!(command, "loopwarden harden --allow 19005=lwg-guard");
        let note = fix_note(kept, None);
        assert!(
            note.contains("harden keeps the restrictions already in force"),
            "{note}"
        );
        assert!(!note.contains("replaces the table"), "{note}");
    }

    /// loopwarden's table as `harden --apply --allow 9000=1001` wrote it with nothing listening
    /// on 9000 (one allow, both protocols): the fix repeats it for both, never as tcp alone —
    /// harden replaces a port given again as a whole, and a bare `9000=…` would cover only the
    /// protocols of the port's listeners at the time.
    #[test]
    fn an_allow_for_both_protocols_is_repeated_for_both() {
        let captured = include_str!("../../../../fixtures/firewall/loopwarden-harden-both-protocols/ruleset.json");
        let snapshot = include_str!("../../../core/tests/fixtures/facts/namespace-every-listener-kind.json");
        let mut facts = HostFacts::from_json(snapshot).expect("snapshot");
        facts.firewall.nft_json = Some(serde_json::from_str(captured).expect("captured nft JSON"));
        let me = GuardUser {
            uid: 991,
            name: "lwg-guard".into(),
        };
        let (command, kept, _) = fix_command(19005, &facts, &me);
        assert_eq!(
            command,
            "loopwarden harden --allow 19005=lwg-guard --allow 9000/tcp=1001 --allow 9000/udp=1001"
        );
        assert_eq!(kept, Some(2));
    }
}
