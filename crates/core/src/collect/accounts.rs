//! Users and groups from `/etc/passwd` and `/etc/group`.

use super::etc_view::EtcView;
use crate::facts::{Accounts, Group, Limit, User};

/// Reads local accounts as `view`'s processes see them; an unreadable or missing file is a limit.
pub fn collect(view: &EtcView, limits: &mut Vec<Limit>) -> Accounts {
    let mut read = |file: &str| match view.read(file) {
        Ok(Some(text)) => text,
        Ok(None) => {
            limits.push(Limit {
                scope: "accounts".into(),
                detail: format!("{} does not exist", view.shown(file)),
            });
            String::new()
        }
        Err(why) => {
            limits.push(Limit {
                scope: "accounts".into(),
                detail: why,
            });
            String::new()
        }
    };
    Accounts {
        users: parse_passwd(&read("passwd")),
        groups: parse_group(&read("group")),
    }
}

/// Parses `/etc/passwd` lines `name:x:uid:gid:…`; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<User> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?.to_string();
            let _password = f.next()?;
            let uid = f.next()?.parse().ok()?;
            let gid = f.next()?.parse().ok()?;
            Some(User { name, uid, gid })
        })
        .collect()
}

/// Parses `/etc/group` lines `name:x:gid:a,b`; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?.to_string();
            let _password = f.next()?;
            let gid = f.next()?.parse().ok()?;
            let members = f
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            Some(Group { name, gid, members })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_lines_and_skips_garbage() {
        let users =
            parse_passwd("root:x:0:0:root:/root:/bin/bash\nbroken\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n");
        assert_eq!(users.len(), 2);
        assert_eq!(
            users[1],
            User {
                name: "www-data".into(),
                uid: 33,
                gid: 33
            }
        );
        let groups = parse_group("docker:x:998:alice,bob\nroot:x:0:\n");
        assert_eq!(groups[0].members, vec!["alice", "bob"]);
        assert!(groups[1].members.is_empty());
    }
}
