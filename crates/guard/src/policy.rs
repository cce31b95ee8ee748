//! Whom a front admits, and the reasons it refuses.

use crate::accounts::{self, Named};
use crate::config::{ConfigError, FrontConfig};
use crate::http::check::HttpPolicy;
use crate::identity::Peer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A front's policy with every name resolved to an id.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Users admitted.
    pub users: Vec<Named>,
    /// Groups whose members are admitted.
    pub groups: Vec<Named>,
    /// Most connections at once per uid.
    pub max_per_user: Option<usize>,
    /// Most connections at once.
    pub max_conns: usize,
    /// The per-request HTTP checks, for an HTTP front.
    pub http: Option<HttpPolicy>,
}

impl Policy {
    /// Resolves a front's configuration against the account database.
    pub fn resolve(front: &FrontConfig) -> Result<Policy, ConfigError> {
        let label = |kind: &str, name: &str| format!("front {:?} {kind} {name:?}", front.name);
        let users = front
            .allow_users
            .iter()
            .map(|u| accounts::user(u).map_err(|why| ConfigError::invalid(label("allowed user", u), why)))
            .collect::<Result<Vec<_>, _>>()?;
        let groups = front
            .allow_groups
            .iter()
            .map(|g| accounts::group(g).map_err(|why| ConfigError::invalid(label("allowed group", g), why)))
            .collect::<Result<Vec<_>, _>>()?;
        let http = front
            .http
            .as_ref()
            .map(|h| HttpPolicy::new(h, front.listen.port()))
            .transpose()
            .map_err(|why| ConfigError::invalid(format!("front {:?}", front.name), why))?;
        Ok(Policy {
            users,
            groups,
            max_per_user: front.max_conns_per_user,
            max_conns: front.max_conns,
            http,
        })
    }

    /// Whether the peer is one of the allowed users or a member of an allowed group.
    pub fn admits(&self, peer: &Peer) -> bool {
        self.users.iter().any(|u| u.id == peer.uid) || self.groups.iter().any(|g| peer.gids.contains(&g.id))
    }
}

/// Why a connection or a request was refused. The key names the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The peer could not be identified (fail closed).
    Unidentified(String),
    /// The peer is neither an allowed user nor in an allowed group.
    NotAllowed,
    /// The peer already has its maximum of open connections.
    PerUserLimit(usize),
    /// The front already has its maximum of open connections.
    TooManyConnections(usize),
    /// An HTTP request failed a check.
    Http(crate::http::check::HttpRefusal),
}

impl Refusal {
    /// The counter this refusal is counted under.
    pub fn key(&self) -> &'static str {
        match self {
            Refusal::Unidentified(_) => "unidentified",
            Refusal::NotAllowed => "not-allowed",
            Refusal::PerUserLimit(_) => "per-user-limit",
            Refusal::TooManyConnections(_) => "too-many-connections",
            Refusal::Http(h) => h.key(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unidentified(why) => write!(f, "peer not identified ({why})"),
            Refusal::NotAllowed => write!(f, "not an allowed user or group"),
            Refusal::PerUserLimit(n) => write!(f, "already {n} connections open for this user"),
            Refusal::TooManyConnections(n) => write!(f, "already {n} connections open through this front"),
            Refusal::Http(h) => write!(f, "{h}"),
        }
    }
}

/// Most refused connections of one uid (all unidentified peers count as one) answered at
/// once; beyond, they are closed at once. Refused connections do not count against
/// `--max-conns`, so a user the front refuses cannot lock the allowed ones out.
pub const REFUSED_ANSWERED_PER_USER: usize = 8;

/// Open connections per front and per uid; a [`Slot`] is held for each open connection.
#[derive(Debug, Default)]
pub struct Occupancy {
    total: AtomicUsize,
    per_user: Mutex<HashMap<u32, usize>>,
    answering: Mutex<HashMap<Option<u32>, usize>>,
}

/// A refused connection being answered, counted per uid; released on drop.
#[derive(Debug)]
pub struct Answering {
    occupancy: Arc<Occupancy>,
    uid: Option<u32>,
}

/// One open connection counted in an [`Occupancy`]; released on drop.
#[derive(Debug)]
pub struct Slot {
    occupancy: Arc<Occupancy>,
    uid: Option<u32>,
}

impl Occupancy {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Takes a front-wide slot, unless `max` are taken.
    pub fn enter(self: &Arc<Self>, max: usize) -> Result<Slot, Refusal> {
        let before = self.total.fetch_add(1, Ordering::AcqRel);
        let slot = Slot {
            occupancy: Arc::clone(self),
            uid: None,
        };
        if before >= max {
            return Err(Refusal::TooManyConnections(max));
        }
        Ok(slot)
    }

    /// Adds the peer's uid to a slot, unless the uid already has `max` open.
    pub fn admit_user(&self, slot: &mut Slot, uid: u32, max: Option<usize>) -> Result<(), Refusal> {
        let mut map = self
            .per_user
            .lock()
            .map_err(|_| Refusal::Unidentified("lock poisoned".into()))?;
        let count = map.entry(uid).or_insert(0);
        if let Some(max) = max {
            if *count >= max {
                return Err(Refusal::PerUserLimit(max));
            }
        }
        *count += 1;
        slot.uid = Some(uid);
        Ok(())
    }

    /// Counts a refused connection of `uid` (`None`: unidentified) while it is answered,
    /// unless [`REFUSED_ANSWERED_PER_USER`] of that uid are already (then it is closed unanswered).
    pub fn answering(self: &Arc<Self>, uid: Option<u32>) -> Option<Answering> {
        let mut map = self.answering.lock().ok()?;
        let count = map.entry(uid).or_insert(0);
        if *count >= REFUSED_ANSWERED_PER_USER {
            return None;
        }
        *count += 1;
        Some(Answering {
            occupancy: Arc::clone(self),
            uid,
        })
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        if let Ok(mut map) = self.occupancy.answering.lock() {
            if let Some(n) = map.get_mut(&self.uid) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.uid);
                }
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.occupancy.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(uid) = self.uid {
            if let Ok(mut map) = self.occupancy.per_user.lock() {
                if let Some(n) = map.get_mut(&uid) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(&uid);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gids: &[u32]) -> Peer {
        Peer {
            uid,
            user: None,
            gids: gids.to_vec(),
            pid: None,
            process: None,
            from: "test".into(),
            inode: None,
        }
    }

    #[test]
    fn users_and_group_members_are_admitted_others_not() {
        let p = Policy {
            users: vec![Named {
                name: "alice".into(),
                id: 1000,
            }],
            groups: vec![Named {
                name: "dev".into(),
                id: 2000,
            }],
            max_per_user: None,
            max_conns: 10,
            http: None,
        };
        assert!(p.admits(&peer(1000, &[1000])));
        assert!(p.admits(&peer(1001, &[1001, 2000])));
        assert!(!p.admits(&peer(1002, &[1002])));
        assert!(!p.admits(&peer(0, &[0])), "root is not implicitly allowed");
    }

    #[test]
    fn slots_count_per_front_and_per_user_and_free_on_drop() {
        let occ = Arc::new(Occupancy::default());
        let mut a = occ.enter(2).unwrap();
        occ.admit_user(&mut a, 7, Some(1)).unwrap();
        let mut b = occ.enter(2).unwrap();
        assert_eq!(occ.admit_user(&mut b, 7, Some(1)), Err(Refusal::PerUserLimit(1)));
        assert_eq!(occ.enter(2).unwrap_err(), Refusal::TooManyConnections(2));
        assert_eq!(occ.open(), 2);
        drop(a);
        occ.admit_user(&mut b, 7, Some(1)).unwrap();
        drop(b);
        assert_eq!(occ.open(), 0);
    }

    #[test]
    fn refused_connections_answered_are_bounded_per_uid() {
        let occ = Arc::new(Occupancy::default());
        let held: Vec<Answering> = (0..REFUSED_ANSWERED_PER_USER)
            .map(|_| occ.answering(Some(7)).unwrap())
            .collect();
        assert!(occ.answering(Some(7)).is_none());
        assert!(occ.answering(Some(8)).is_some(), "another uid has its own bound");
        assert!(occ.answering(None).is_some());
        assert_eq!(occ.open(), 0, "refused connections are not counted against --max-conns");
        drop(held);
        assert!(occ.answering(Some(7)).is_some());
    }
}
