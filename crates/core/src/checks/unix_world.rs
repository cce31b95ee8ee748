//! `local.unix-world`: a Unix socket that other users can connect to.
//!
//! Connecting to a path socket needs write permission on the socket file and search (x)
//! permission on every directory above it, each judged with the class (owner, group, other) that
//! applies to the connecting user. Root bypasses both and is not counted.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::{FileMeta, HostFacts, UnixName, UnixSocket};
use crate::inventory::unix_service_id;
use crate::report::{Attacker, Confidence, Finding, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::LocalUnixWorld,
        attackers: &[Attacker::LocalUser],
        stage: Stage::Inspect,
        summary: "Unix socket connectable by other uids (socket mode and every parent directory)",
        why: "a Unix socket is the one local transport with real per-user access control — but only \
              if the socket is not writable by others and no parent directory lets them through",
    },
    evaluate: Some(evaluate),
};

/// Who may connect, judged from the file modes.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    /// Any uid that is neither the owner nor in a relevant group.
    Everyone,
    /// Only these other users (through group permissions).
    Users(Vec<u32>),
    /// Metadata is missing: cannot tell.
    Unknown(String),
}

/// Permission class bits for `uid` on `meta`: 0o4 read, 0o2 write, 0o1 search.
fn bits_for(meta: &FileMeta, uid: u32, facts: &HostFacts) -> u32 {
    if uid == meta.uid {
        (meta.mode >> 6) & 7
    } else if in_group(facts, uid, meta.gid) {
        (meta.mode >> 3) & 7
    } else {
        meta.mode & 7
    }
}

fn in_group(facts: &HostFacts, uid: u32, gid: u32) -> bool {
    let Some(user) = facts.accounts.users.iter().find(|u| u.uid == uid) else {
        return false;
    };
    user.gid == gid
        || facts
            .accounts
            .groups
            .iter()
            .any(|g| g.gid == gid && g.members.contains(&user.name))
}

/// Whether a user in the "other" class of every file can connect.
fn other_can(file: &FileMeta, parents: &[FileMeta]) -> bool {
    file.mode & 0o002 != 0 && parents.iter().all(|d| d.mode & 0o001 != 0)
}

fn can_connect(facts: &HostFacts, uid: u32, file: &FileMeta, parents: &[FileMeta]) -> bool {
    bits_for(file, uid, facts) & 0o2 != 0 && parents.iter().all(|d| bits_for(d, uid, facts) & 0o1 != 0)
}

fn reach(facts: &HostFacts, socket: &UnixSocket, owner: u32) -> Reach {
    let (Some(file), UnixName::Path(path)) = (&socket.file, &socket.name) else {
        return Reach::Unknown("the socket file's owner and mode could not be read".into());
    };
    if socket.parents.is_empty() {
        return Reach::Unknown(format!("the directories above {path} could not be read"));
    }
    if other_can(file, &socket.parents) {
        return Reach::Everyone;
    }
    let users: Vec<u32> = facts
        .accounts
        .users
        .iter()
        .map(|u| u.uid)
        .filter(|&uid| uid != 0 && uid != owner && can_connect(facts, uid, file, &socket.parents))
        .collect();
    Reach::Users(users)
}

fn describe(meta: &FileMeta, facts: &HostFacts) -> String {
    let user = facts
        .accounts
        .user_name(meta.uid)
        .map(str::to_string)
        .unwrap_or_else(|| meta.uid.to_string());
    let group = facts
        .accounts
        .groups
        .iter()
        .find(|g| g.gid == meta.gid)
        .map(|g| g.name.clone())
        .unwrap_or_else(|| meta.gid.to_string());
    format!("{} {:04o} {user}:{group}", meta.path, meta.mode)
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let facts = ctx.facts;
    let mut out = Vec::new();
    for socket in facts
        .unix_sockets
        .iter()
        .filter(|s| matches!(s.name, UnixName::Path(_)))
    {
        let owner = socket.uid.or(socket.file.as_ref().map(|f| f.uid)).unwrap_or(0);
        let reach = reach(facts, socket, owner);
        let mut evidence = vec![format!("held by {}", ctx.processes.describe(&socket.owners))];
        if let Some(file) = &socket.file {
            evidence.push(format!("socket {}", describe(file, facts)));
        }
        evidence.extend(
            socket
                .parents
                .iter()
                .map(|d| format!("directory {}", describe(d, facts))),
        );
        let guard = super::guarded::unix_front_of(ctx, socket);
        let (severity, status, title) = match reach {
            Reach::Everyone | Reach::Users(_) if guard.is_some() => {
                evidence.extend(guard.iter().map(super::guarded::Cover::describe));
                (
                    Severity::Low,
                    Status::Blocked,
                    "blocked by loopwarden guard: other users connect, and only the users it admits are served"
                        .to_string(),
                )
            }
            Reach::Everyone => (Severity::Low, Status::Open, "every local user can connect".to_string()),
            Reach::Users(users) if users.is_empty() => continue,
            Reach::Users(users) => {
                let names: Vec<String> = users
                    .iter()
                    .map(|u| {
                        facts
                            .accounts
                            .user_name(*u)
                            .map(str::to_string)
                            .unwrap_or_else(|| u.to_string())
                    })
                    .collect();
                (
                    Severity::Info,
                    Status::Open,
                    format!(
                        "other users can connect through group permissions: {}",
                        names.join(", ")
                    ),
                )
            }
            Reach::Unknown(why) => {
                evidence.push(why);
                (
                    Severity::Low,
                    Status::Unknown,
                    "cannot tell who can connect".to_string(),
                )
            }
        };
        out.push(Finding {
            check: CHECK.spec.id,
            service: Some(unix_service_id(socket)),
            attacker: Attacker::LocalUser,
            severity,
            status,
            confidence: Confidence::Inspected,
            title: title.into(),
            evidence,
            fix: "put the socket in a directory owned by the service with mode 0700 (or 0750 with a \
                  dedicated group for the intended clients) and create it with mode 0600/0660; \
                  the socket mode alone is not enough on every system"
                .into(),
            subject: None,
            reaches: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, dir, run, unix_path};

    fn parents(last_mode: u32) -> Vec<FileMeta> {
        vec![
            dir("/", 0, 0, 0o755),
            dir("/run", 0, 0, 0o755),
            dir("/run/svc", 1000, 1000, last_mode),
        ]
    }

    #[test]
    fn world_writable_socket_in_searchable_dirs_is_open_to_everyone() {
        let mut facts = base();
        facts.unix_sockets.push(unix_path(
            "/run/svc/api.sock",
            Some(dir("/run/svc/api.sock", 1000, 1000, 0o777)),
            parents(0o755),
        ));
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].title, "every local user can connect");
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e == "directory /run/svc 0755 alice:alice"),
            "{:?}",
            found[0].evidence
        );
    }

    #[test]
    fn private_parent_directory_closes_a_world_writable_socket() {
        let mut facts = base();
        facts.unix_sockets.push(unix_path(
            "/run/svc/api.sock",
            Some(dir("/run/svc/api.sock", 1000, 1000, 0o777)),
            parents(0o700),
        ));
        assert!(run(&CHECK, &facts).is_empty());
    }

    #[test]
    fn group_write_names_the_other_group_members() {
        let mut facts = base();
        facts.unix_sockets.push(unix_path(
            "/run/svc/api.sock",
            Some(dir("/run/svc/api.sock", 1000, 2000, 0o770)),
            vec![
                dir("/", 0, 0, 0o755),
                dir("/run", 0, 0, 0o755),
                dir("/run/svc", 1000, 2000, 0o750),
            ],
        ));
        let found = run(&CHECK, &facts);
        assert_eq!(found[0].title, "other users can connect through group permissions: bob");
        assert_eq!(found[0].severity, Severity::Info);
    }

    #[test]
    fn missing_metadata_is_unknown() {
        let mut facts = base();
        facts.unix_sockets.push(unix_path("/run/svc/api.sock", None, vec![]));
        facts.unix_sockets.push(unix_path(
            "/run/svc/b.sock",
            Some(dir("/run/svc/b.sock", 1000, 1000, 0o777)),
            vec![],
        ));
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.status == Status::Unknown));
        assert!(found[1]
            .evidence
            .last()
            .is_some_and(|e| e.contains("directories above /run/svc/b.sock")));
    }
}
