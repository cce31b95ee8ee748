//! `--allow PORT[/tcp|/udp]=USER[,USER|@GROUP…]`: which local users may connect to a loopback
//! port, resolved against the snapshot's accounts and listeners.

use super::table::{AllowedBy, AllowedUid, PortRule};
use super::PlanError;
use loopwarden_core::addr::{is_loopback, is_wildcard};
use loopwarden_core::facts::{HostFacts, Protocol};
use loopwarden_core::inventory::is_inet_service;
use std::fmt;
use std::str::FromStr;

/// Someone named in `--allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A login name.
    User(String),
    /// A numeric uid.
    Uid(u32),
    /// `@group`: its members (primary or supplementary) when the plan is made.
    Group(String),
}

/// One `--allow` argument as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowSpec {
    /// The loopback port.
    pub port: u16,
    /// `/tcp` or `/udp`; without it, both (whatever listens on the port now).
    pub proto: Option<Protocol>,
    /// Who may connect besides root and the service's owner.
    pub who: Vec<Who>,
}

impl FromStr for AllowSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<AllowSpec, String> {
        let (port, who) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected PORT=USER[,USER|@GROUP…], e.g. 8000=alice,@dev"))?;
        let (port, proto) = match port.split_once('/') {
            Some((p, "tcp")) => (p, Some(Protocol::Tcp)),
            Some((p, "udp")) => (p, Some(Protocol::Udp)),
            Some((_, other)) => return Err(format!("{s:?}: unknown protocol {other:?} (tcp or udp)")),
            None => (port, None),
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: {port:?} is not a port (1-65535)"))?;
        let who = who
            .split(',')
            .map(|w| match w.strip_prefix('@') {
                _ if w.is_empty() => Err(format!("{s:?}: an empty name")),
                Some(group) => Ok(Who::Group(group.to_string())),
                None => Ok(w.parse().map_or_else(|_| Who::User(w.to_string()), Who::Uid)),
            })
            .collect::<Result<Vec<Who>, String>>()?;
        Ok(AllowSpec { port, proto, who })
    }
}

impl fmt::Display for AllowSpec {
    /// The spec as `--allow` takes it back: `8000/tcp=alice,1001,@dev`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        match self.proto {
            Some(Protocol::Tcp) => f.write_str("/tcp")?,
            Some(Protocol::Udp) => f.write_str("/udp")?,
            None => {}
        }
        let who: Vec<String> = self
            .who
            .iter()
            .map(|w| match w {
                Who::User(name) => name.clone(),
                Who::Uid(uid) => uid.to_string(),
                Who::Group(name) => format!("@{name}"),
            })
            .collect();
        write!(f, "={}", who.join(","))
    }
}

impl serde::Serialize for AllowSpec {
    /// As written on the command line (the JSON plan and harden's state record it so).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The allows an apply is made with when an earlier apply's are in force: every spec given, and
/// each earlier spec on a port that none given names — so that `--allow 9000=bob` after
/// `--allow 8000=alice` restricts both ports instead of silently lifting 8000's restriction. A
/// port given again is replaced as a whole (its new list is the list, whatever the protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// What the plan is made with.
    pub all: Vec<AllowSpec>,
    /// The earlier specs kept (said to the user: they were not on this command line).
    pub kept: Vec<AllowSpec>,
    /// The earlier specs replaced by a spec given for the same port.
    pub replaced: Vec<AllowSpec>,
}

/// Merges `given` over `earlier`, as [`Merged`] says.
pub fn merge(earlier: &[AllowSpec], given: &[AllowSpec]) -> Merged {
    let (replaced, kept): (Vec<AllowSpec>, Vec<AllowSpec>) = earlier
        .iter()
        .cloned()
        .partition(|old| given.iter().any(|new| new.port == old.port));
    let mut all = kept.clone();
    all.extend(given.iter().cloned());
    all.sort_by_key(|s| s.port);
    Merged { all, kept, replaced }
}

/// The port restrictions the specs ask for: one per port and protocol, with root, the owners
/// of the port's listeners and the named users. Unknown users and groups are errors.
pub fn resolve(specs: &[AllowSpec], facts: &HostFacts, limit: Option<u32>) -> Result<Vec<PortRule>, PlanError> {
    let mut rules: Vec<PortRule> = Vec::new();
    for spec in specs {
        let named = named_uids(spec, facts)?;
        for proto in protocols(spec) {
            let mut uids = vec![AllowedUid {
                uid: 0,
                by: AllowedBy::Root,
            }];
            uids.extend(owners(facts, proto, spec.port).into_iter().map(|uid| AllowedUid {
                uid,
                by: AllowedBy::Owner,
            }));
            uids.extend(named.iter().cloned());
            match rules.iter_mut().find(|r| r.proto == proto && r.port == spec.port) {
                Some(rule) => rule.uids.extend(uids),
                None => rules.push(PortRule {
                    proto,
                    port: spec.port,
                    uids,
                    limit,
                }),
            }
        }
    }
    for rule in &mut rules {
        rule.uids.sort_by_key(|a| (a.uid, rank(&a.by)));
        rule.uids.dedup_by_key(|a| a.uid);
    }
    rules.sort_by_key(|r| (r.port, r.proto));
    Ok(rules)
}

/// Root before owner before a name: the strongest reason is the one kept.
fn rank(by: &AllowedBy) -> u8 {
    match by {
        AllowedBy::Root => 0,
        AllowedBy::Owner => 1,
        AllowedBy::Allow(_) => 2,
    }
}

fn named_uids(spec: &AllowSpec, facts: &HostFacts) -> Result<Vec<AllowedUid>, PlanError> {
    let accounts = &facts.accounts;
    let mut out = Vec::new();
    for who in &spec.who {
        match who {
            Who::Uid(uid) => out.push(AllowedUid {
                uid: *uid,
                by: AllowedBy::Allow(accounts.user_name(*uid).map_or_else(|| uid.to_string(), str::to_string)),
            }),
            Who::User(name) => {
                let user = accounts
                    .users
                    .iter()
                    .find(|u| &u.name == name)
                    .ok_or_else(|| PlanError::UnknownUser(name.clone()))?;
                out.push(AllowedUid {
                    uid: user.uid,
                    by: AllowedBy::Allow(name.clone()),
                });
            }
            Who::Group(name) => {
                let group = accounts
                    .groups
                    .iter()
                    .find(|g| &g.name == name)
                    .ok_or_else(|| PlanError::UnknownGroup(name.clone()))?;
                for uid in accounts.group_members_except(group.gid, u32::MAX) {
                    let user = accounts.user_name(uid).map_or_else(|| uid.to_string(), str::to_string);
                    out.push(AllowedUid {
                        uid,
                        by: AllowedBy::Allow(format!("{user} (@{name})")),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The protocols a spec restricts: the one it names, else both — also when only one of them
/// listens now, so that a UDP service started later on the port is not left open to every uid.
fn protocols(spec: &AllowSpec) -> Vec<Protocol> {
    match spec.proto {
        Some(p) => vec![p],
        None => vec![Protocol::Tcp, Protocol::Udp],
    }
}

/// Uids of the sockets serving `proto`/`port` on a loopback or wildcard address.
pub fn owners(facts: &HostFacts, proto: Protocol, port: u16) -> Vec<u32> {
    let mut uids: Vec<u32> = facts
        .inet_sockets
        .iter()
        .filter(|s| {
            is_inet_service(s)
                && s.protocol == proto
                && s.port == port
                && (is_loopback(s.address) || is_wildcard(s.address))
        })
        .map(|s| s.uid)
        .collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::facts_with;
    use loopwarden_core::facts::{Group, User};

    #[test]
    fn parses_ports_protocols_users_uids_and_groups() {
        let spec: AllowSpec = "8000/udp=alice,1002,@dev".parse().expect("valid");
        assert_eq!(spec.port, 8000);
        assert_eq!(spec.proto, Some(Protocol::Udp));
        assert_eq!(
            spec.who,
            vec![Who::User("alice".into()), Who::Uid(1002), Who::Group("dev".into())]
        );
        for bad in ["8000", "0=alice", "x=alice", "8000/sctp=a", "8000=a,,b", "70000=a"] {
            assert!(bad.parse::<AllowSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_spec_prints_as_it_is_written_and_parses_back() {
        for text in ["8000/udp=alice,1002,@dev", "9000=bob", "53/tcp=0"] {
            let spec: AllowSpec = text.parse().expect("valid");
            assert_eq!(spec.to_string(), text);
            assert_eq!(spec.to_string().parse::<AllowSpec>().expect("parses back"), spec);
        }
    }

    /// A later `--allow` adds to what is in force; the same port given again is replaced.
    #[test]
    fn a_later_allow_keeps_other_ports_and_replaces_its_own() {
        let spec = |t: &str| t.parse::<AllowSpec>().expect("valid");
        let earlier = [spec("8000=alice"), spec("9000/udp=bob")];
        let merged = merge(&earlier, &[spec("9000=carol"), spec("7000=dave")]);
        let all: Vec<String> = merged.all.iter().map(ToString::to_string).collect();
        assert_eq!(all, ["7000=dave", "8000=alice", "9000=carol"]);
        assert_eq!(merged.kept, [spec("8000=alice")]);
        assert_eq!(merged.replaced, [spec("9000/udp=bob")]);
        let nothing_new = merge(&earlier, &[]);
        assert_eq!(nothing_new.all, earlier);
        assert!(nothing_new.replaced.is_empty());
    }

    #[test]
    fn root_and_the_owner_are_always_allowed_and_groups_expand() {
        let mut facts = facts_with(&[(Protocol::Tcp, "127.0.0.1", 8000, 1000)]);
        facts.accounts.users = vec![
            User {
                name: "alice".into(),
                uid: 1000,
                gid: 1000,
            },
            User {
                name: "bob".into(),
                uid: 1001,
                gid: 100,
            },
            User {
                name: "carol".into(),
                uid: 1002,
                gid: 1002,
            },
        ];
        facts.accounts.groups = vec![Group {
            name: "dev".into(),
            gid: 2000,
            members: vec!["carol".into()],
        }];
        let specs: Vec<AllowSpec> = vec!["8000=bob,@dev".parse().expect("valid")];
        let rules = resolve(&specs, &facts, None).expect("resolves");
        // Only TCP listens on 8000; UDP is restricted all the same (a UDP service started later).
        assert_eq!(
            rules.iter().map(|r| r.proto).collect::<Vec<_>>(),
            [Protocol::Tcp, Protocol::Udp],
            "{rules:?}"
        );
        let uids: Vec<(u32, &AllowedBy)> = rules[0].uids.iter().map(|a| (a.uid, &a.by)).collect();
        assert_eq!(
            uids,
            vec![
                (0, &AllowedBy::Root),
                (1000, &AllowedBy::Owner),
                (1001, &AllowedBy::Allow("bob".into())),
                (1002, &AllowedBy::Allow("carol (@dev)".into())),
            ]
        );
        let unknown: Vec<AllowSpec> = vec!["8000=mallory".parse().expect("valid")];
        assert!(matches!(resolve(&unknown, &facts, None), Err(PlanError::UnknownUser(n)) if n == "mallory"));
    }

    #[test]
    fn a_port_nobody_listens_on_is_restricted_for_both_protocols() {
        let facts = facts_with(&[]);
        let specs: Vec<AllowSpec> = vec!["9000=0".parse().expect("valid")];
        let rules = resolve(&specs, &facts, Some(3)).expect("resolves");
        let protos: Vec<Protocol> = rules.iter().map(|r| r.proto).collect();
        assert_eq!(protos, vec![Protocol::Tcp, Protocol::Udp]);
        assert!(rules.iter().all(|r| r.uids.len() == 1 && r.limited_uids().is_empty()));
    }
}
