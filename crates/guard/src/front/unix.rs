//! A Unix front: a socket file with its mode, owner and group, in a directory chain that nobody
//! but root and the guard's user can change.
//!
//! Every directory from `/` to the socket is walked without following links (the collectors'
//! [`path_walk`]): each must be a real directory owned by root or the guard's user, writable by
//! nobody else — a sticky directory such as `/tmp` is accepted on the way (its entries cannot be
//! renamed by others), never as the socket's own directory. Anyone who could write one of them
//! could rename the guard's directory and put their own listener where the clients connect.
//! Missing directories are created `0755` (with the socket group, if given).
//!
//! Who is served is decided by the guard (`SO_PEERCRED` and the front's policy), not by the file
//! modes: the socket is `0666` by default. A mode, group or directory that keeps an allowed user
//! from connecting is reported at start.

use super::{Bound, BoundFront};
use crate::accounts::{self, MembershipCache};
use crate::config::FrontConfig;
use crate::policy::Policy;
use loopwarden_core::collect::path_walk;
use rustix::fs::{chmodat, chownat, fstat, mkdirat, openat, readlinkat, AtFlags, FileType, Mode, OFlags, Stat, CWD};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// Mode of the directories the guard creates: everyone may search them (the socket's own access
/// control is the guard's), only their owner may change them.
const CREATED_DIRECTORY_MODE: u32 = 0o755;

/// One directory on the way to the socket, as walked.
struct Walked {
    path: String,
    stat: Stat,
}

/// Binds a Unix front's socket.
pub fn bind(front: &FrontConfig, policy: &Policy, path: &Path) -> Result<BoundFront, String> {
    let group = front
        .socket
        .group
        .as_deref()
        .map(accounts::group)
        .transpose()
        .map_err(|e| format!("socket group: {e}"))?;
    let owner = front
        .socket
        .owner
        .as_deref()
        .map(accounts::user)
        .transpose()
        .map_err(|e| format!("socket owner: {e}"))?;
    let parent = path
        .parent()
        .ok_or_else(|| format!("unix:{} has no parent directory", path.display()))?;
    let me = rustix::process::geteuid().as_raw();
    let chain = directory_chain(parent, me, group.as_ref().map(|g| g.id))?;
    clear_stale(path)?;
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot bind unix:{}: {e}", path.display()))?;
    let mode = front.socket.mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode {mode:04o} on {}: {e}", path.display()))?;
    if owner.is_some() || group.is_some() {
        std::os::unix::fs::chown(path, owner.map(|o| o.id), group.map(|g| g.id))
            .map_err(|e| format!("cannot give {} its owner/group: {e}", path.display()))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot configure unix:{}: {e}", path.display()))?;
    let socket = rustix::fs::stat(path).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    Ok(BoundFront {
        sockets: vec![Bound::Unix(listener)],
        notes: unreachable(policy, &chain, &socket, path),
    })
}

/// Walks (creating what is missing) every directory from `/` to `dir`, refusing one that someone
/// other than root and `me` could change.
fn directory_chain(dir: &Path, me: u32, group: Option<u32>) -> Result<Vec<Walked>, String> {
    let text = dir
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", dir.display()))?;
    let names = path_walk::components(text)?;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd = openat(CWD, "/", flags, Mode::empty()).map_err(|e| format!("cannot open /: {e}"))?;
    let root = fstat(&fd).map_err(|e| format!("cannot stat /: {e}"))?;
    judge("/", &root, me, !names.is_empty())?;
    let mut chain = vec![Walked {
        path: "/".into(),
        stat: root,
    }];
    let mut here = String::from("/");
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let opened = match path_walk::open_no_follow(&fd, &here, name)? {
            Some(o) => o,
            None => {
                create(&fd, &here, name, group)?;
                path_walk::open_no_follow(&fd, &here, name)?
                    .ok_or_else(|| format!("{here}/{name} vanished after it was created"))?
            }
        };
        match opened.kind {
            FileType::Directory => {}
            FileType::Symlink => {
                let target = readlinkat(&fd, *name, Vec::new())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "?".into());
                return Err(format!(
                    "{} is a symlink (to {target}): every directory on the way to a Unix front must be a real \
                     directory — give the path it points to",
                    opened.path
                ));
            }
            _ => return Err(format!("{} is not a directory", opened.path)),
        }
        judge(&opened.path, &opened.stat, me, !last)?;
        chain.push(Walked {
            path: opened.path.clone(),
            stat: opened.stat,
        });
        fd = opened.fd;
        here = opened.path;
    }
    Ok(chain)
}

/// Refuses a directory that someone other than root and `me` owns or may write (a sticky one on
/// the way excepted).
fn judge(path: &str, stat: &Stat, me: u32, on_the_way: bool) -> Result<(), String> {
    let owners: &[u32] = if me == 0 { &[0] } else { &[0, me] };
    let problems = path_walk::untrusted(stat, path, "directory", owners, on_the_way);
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: whoever may change it could rename the guard's directory and listen in its place, receiving \
         the clients — put the socket in directories owned by root or the guard's user that nobody else can \
         write (a shared directory such as /tmp is not one)",
        problems.join("; ")
    ))
}

/// Creates `name` in `dir`: mode 0755, the socket group as group.
fn create(dir: &std::os::fd::OwnedFd, here: &str, name: &str, group: Option<u32>) -> Result<(), String> {
    let path = format!("{}/{name}", here.trim_end_matches('/'));
    let mode = Mode::from_raw_mode(CREATED_DIRECTORY_MODE);
    mkdirat(dir, name, mode).map_err(|e| format!("cannot create {path}: {e}"))?;
    // The umask may have taken bits away.
    chmodat(dir, name, mode, AtFlags::empty()).map_err(|e| format!("cannot set the mode of {path}: {e}"))?;
    if let Some(gid) = group {
        chownat(
            dir,
            name,
            None,
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| format!("cannot give {path} group {gid}: {e}"))?;
    }
    Ok(())
}

/// Removes a socket file nobody listens on (left by a crash); refuses to touch anything else.
fn clear_stale(path: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(format!("{} exists and is not a socket: not replaced", path.display()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(format!("unix:{} is already served by another process", path.display())),
        Err(_) => std::fs::remove_file(path).map_err(|e| format!("cannot remove stale {}: {e}", path.display())),
    }
}

/// Someone the policy admits, as the file permissions see them.
struct Admitted {
    label: String,
    uid: Option<u32>,
    gids: Vec<u32>,
}

/// Warnings for every allowed user and group that the file modes keep from connecting (search
/// on every directory, write on the socket); ACLs are not read.
fn unreachable(policy: &Policy, chain: &[Walked], socket: &Stat, path: &Path) -> Vec<String> {
    let memberships = MembershipCache::default();
    let users = policy.users.iter().map(|u| Admitted {
        label: format!("allowed user {} (uid {})", u.name, u.id),
        uid: Some(u.id),
        gids: memberships.of(u.id).gids,
    });
    let groups = policy.groups.iter().map(|g| Admitted {
        label: format!("members of allowed group {} (gid {})", g.name, g.id),
        uid: None,
        gids: vec![g.id],
    });
    users
        .chain(groups)
        .filter(|who| who.uid != Some(0))
        .filter_map(|who| {
            let blocker = chain
                .iter()
                .find(|d| !permits(&d.stat, &who, 0o1))
                .map(|d| {
                    format!(
                        "directory {} ({}) does not let them search it",
                        d.path,
                        describe(&d.stat)
                    )
                })
                .or_else(|| {
                    (!permits(socket, &who, 0o2))
                        .then(|| format!("the socket ({}) does not let them connect", describe(socket)))
                })?;
            Some(format!(
                "warning: {} cannot connect to unix:{}: {blocker} — the guard itself decides who is served \
                 (SO_PEERCRED and its policy), so the defaults (socket 0666 in directories 0755) are safe; or \
                 give them the socket's group",
                who.label,
                path.display()
            ))
        })
        .collect()
}

/// Whether the owner/group/other bits that apply to `who` include `bit` (1 search, 2 write).
fn permits(stat: &Stat, who: &Admitted, bit: u32) -> bool {
    let mode = stat.st_mode;
    let class = if who.uid == Some(stat.st_uid) {
        mode >> 6
    } else if who.gids.contains(&stat.st_gid) {
        mode >> 3
    } else {
        mode
    };
    class & bit != 0
}

fn describe(stat: &Stat) -> String {
    format!(
        "mode {:04o}, owner uid {}, group gid {}",
        stat.st_mode & 0o7777,
        stat.st_uid,
        stat.st_gid
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SocketFileConfig;
    use crate::endpoint::{Listen, Upstream};
    use std::os::unix::fs::MetadataExt;

    fn front(path: &Path) -> FrontConfig {
        FrontConfig {
            name: "t".into(),
            listen: Listen::Unix(path.to_path_buf()),
            upstream: Upstream::Tcp("127.0.0.1:1".parse().unwrap()),
            allow_users: vec!["root".into()],
            allow_groups: vec![],
            http: None,
            max_conns: 10,
            upstream_user: None,
            max_conns_per_user: None,
            socket: SocketFileConfig::default(),
        }
    }

    fn bind_front(f: &FrontConfig) -> Result<BoundFront, String> {
        bind(
            f,
            &Policy::resolve(f).unwrap(),
            match &f.listen {
                Listen::Unix(p) => p,
                Listen::Tcp(_) => unreachable!(),
            },
        )
    }

    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(tag: &str) -> Scratch {
        let root = std::env::temp_dir().join(format!("lw-front-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(root)
    }

    #[test]
    fn missing_directories_are_created_searchable_and_the_socket_open_to_all_by_default() {
        let root = scratch("create");
        let path = root.0.join("a").join("b").join("app.sock");
        let bound = bind_front(&front(&path)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o666);
        for dir in [root.0.join("a"), root.0.join("a/b")] {
            assert_eq!(
                std::fs::metadata(&dir).unwrap().mode() & 0o7777,
                0o755,
                "{}",
                dir.display()
            );
        }
        let err = bind_front(&front(&path)).unwrap_err();
        assert!(err.contains("already served"), "{err}");
        drop(bound);
        bind_front(&front(&path)).unwrap(); // the stale file of a dead listener is replaced
    }

    fn root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn a_shared_parent_a_symlink_and_a_directory_others_may_change_anywhere_on_the_way_are_refused() {
        if !root() {
            eprintln!("SKIPPED a_shared_parent…: giving a directory to another uid needs root");
            return;
        }
        let root = scratch("refuse");
        let shared = root.0.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = bind_front(&front(&shared.join("a.sock"))).unwrap_err();
        assert!(
            err.contains("shared (mode 1777) is writable by group and others"),
            "{err}"
        );
        // Sticky on the way is fine: the directory below it is the guard's own.
        bind_front(&front(&shared.join("mine").join("a.sock"))).unwrap();

        let real = root.0.join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, root.0.join("link")).unwrap();
        let err = bind_front(&front(&root.0.join("link").join("a.sock"))).unwrap_err();
        assert!(err.contains("link is a symlink (to "), "{err}");

        // Another user's directory high up in the chain (bob's, above a private one).
        let bobdir = root.0.join("bobdir");
        std::fs::create_dir_all(bobdir.join("priv")).unwrap();
        std::os::unix::fs::chown(&bobdir, Some(4242), None).unwrap();
        std::fs::set_permissions(bobdir.join("priv"), std::fs::Permissions::from_mode(0o750)).unwrap();
        let err = bind_front(&front(&bobdir.join("priv").join("a.sock"))).unwrap_err();
        assert!(err.contains("bobdir is owned by uid 4242"), "{err}");
    }

    #[test]
    fn an_allowed_user_the_modes_keep_out_is_warned_about() {
        let root = scratch("reach");
        let private = root.0.join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o750)).unwrap();
        let mut f = front(&private.join("a.sock"));
        f.allow_users = vec!["root".into(), "4243".into()];
        f.socket.mode = Some(0o660);
        let bound = bind_front(&f).unwrap();
        assert_eq!(bound.notes.len(), 1, "{:?}", bound.notes);
        assert!(
            bound.notes[0].contains("allowed user 4243 (uid 4243) cannot connect")
                && bound.notes[0].contains("private (mode 0750"),
            "{:?}",
            bound.notes
        );
    }
}
