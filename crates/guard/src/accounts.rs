//! Users and groups from the account database (NSS: `/etc/passwd`, LDAP, sssd …): names to ids
//! for the policy, and the groups of a TCP peer's uid (a TCP peer brings only its uid; its
//! groups are what the account database says now).

use nix::unistd::{Gid, Group, Uid, User};
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a uid's group list is reused before it is asked for again.
const MEMBERSHIP_TTL: Duration = Duration::from_secs(30);

/// A resolved account: the name as written and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The name (or the number, when given as one without an account).
    pub name: String,
    /// The uid or gid.
    pub id: u32,
}

/// Resolves a user name or numeric uid.
pub fn user(text: &str) -> Result<Named, String> {
    if let Ok(uid) = text.parse::<u32>() {
        let name = User::from_uid(Uid::from_raw(uid)).ok().flatten().map(|u| u.name);
        return Ok(Named {
            name: name.unwrap_or_else(|| text.to_string()),
            id: uid,
        });
    }
    match User::from_name(text) {
        Ok(Some(u)) => Ok(Named {
            name: u.name,
            id: u.uid.as_raw(),
        }),
        Ok(None) => Err(format!("no such user {text:?} in the account database")),
        Err(e) => Err(format!("cannot look up user {text:?}: {e}")),
    }
}

/// Resolves a group name or numeric gid.
pub fn group(text: &str) -> Result<Named, String> {
    if let Ok(gid) = text.parse::<u32>() {
        let name = Group::from_gid(Gid::from_raw(gid)).ok().flatten().map(|g| g.name);
        return Ok(Named {
            name: name.unwrap_or_else(|| text.to_string()),
            id: gid,
        });
    }
    match Group::from_name(text) {
        Ok(Some(g)) => Ok(Named {
            name: g.name,
            id: g.gid.as_raw(),
        }),
        Ok(None) => Err(format!("no such group {text:?} in the account database")),
        Err(e) => Err(format!("cannot look up group {text:?}: {e}")),
    }
}

/// The account name of a uid, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid)).ok().flatten().map(|u| u.name)
}

/// What the account database says about one uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The account name (`None`: a uid without an account).
    pub name: Option<String>,
    /// The primary and supplementary gids.
    pub gids: Vec<u32>,
}

/// Group memberships of uids, asked of the account database at most every
/// [`MEMBERSHIP_TTL`] per uid (NSS lookups may go to the network).
#[derive(Debug, Default)]
pub struct MembershipCache {
    entries: Mutex<HashMap<u32, (Instant, Membership)>>,
}

impl MembershipCache {
    /// The groups of `uid` (empty for a uid without an account).
    pub fn of(&self, uid: u32) -> Membership {
        let now = Instant::now();
        if let Ok(cache) = self.entries.lock() {
            if let Some((at, m)) = cache.get(&uid) {
                if now.duration_since(*at) < MEMBERSHIP_TTL {
                    return m.clone();
                }
            }
        }
        let fresh = lookup_membership(uid);
        if let Ok(mut cache) = self.entries.lock() {
            cache.insert(uid, (now, fresh.clone()));
        }
        fresh
    }

    /// Forgets everything (on reload: group changes take effect at once).
    pub fn clear(&self) {
        if let Ok(mut cache) = self.entries.lock() {
            cache.clear();
        }
    }
}

fn lookup_membership(uid: u32) -> Membership {
    let Some(user) = User::from_uid(Uid::from_raw(uid)).ok().flatten() else {
        return Membership {
            name: None,
            gids: Vec::new(),
        };
    };
    let gids = CString::new(user.name.clone())
        .ok()
        .and_then(|name| nix::unistd::getgrouplist(&name, user.gid).ok())
        .map(|g| g.into_iter().map(Gid::as_raw).collect())
        .unwrap_or_else(|| vec![user.gid.as_raw()]);
    Membership {
        name: Some(user.name),
        gids,
    }
}

/// A uid for messages: `uid 1001 (bob)`, or `uid 1001` without an account.
pub fn describe(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_by_name_and_number_and_unknown_names_are_errors() {
        assert_eq!(
            user("root").unwrap(),
            Named {
                name: "root".into(),
                id: 0
            }
        );
        assert_eq!(user("0").unwrap().name, "root");
        assert_eq!(user("4000000001").unwrap().name, "4000000001");
        assert!(user("no-such-user-lw")
            .unwrap_err()
            .contains("no such user \"no-such-user-lw\""));
        assert_eq!(group("root").unwrap().id, 0);
        assert!(group("no-such-group-lw").is_err());
    }

    #[test]
    fn root_is_in_its_primary_group() {
        let cache = MembershipCache::default();
        let m = cache.of(0);
        assert_eq!(m.name.as_deref(), Some("root"));
        assert!(m.gids.contains(&0));
        assert_eq!(cache.of(4_000_000_001).gids, Vec::<u32>::new());
    }
}
