//! Users and groups: who shares a socket's group.

use serde::{Deserialize, Serialize};

/// Local users and groups, from `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Accounts {
    /// Users: name, uid, primary gid.
    pub users: Vec<User>,
    /// Groups: name, gid, supplementary members.
    pub groups: Vec<Group>,
}

/// A local user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
}

/// A local group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Gid.
    pub gid: u32,
    /// Supplementary members by login name.
    pub members: Vec<String>,
}

impl Accounts {
    /// Login name of a uid, when known.
    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.iter().find(|u| u.uid == uid).map(|u| u.name.as_str())
    }

    /// Uids of the users in group `gid` (primary or supplementary), other than `except`.
    pub fn group_members_except(&self, gid: u32, except: u32) -> Vec<u32> {
        let supplementary: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| g.gid == gid)
            .flat_map(|g| g.members.iter().map(String::as_str))
            .collect();
        let mut uids: Vec<u32> = self
            .users
            .iter()
            .filter(|u| u.uid != except && (u.gid == gid || supplementary.contains(&u.name.as_str())))
            .map(|u| u.uid)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        uids
    }
}
