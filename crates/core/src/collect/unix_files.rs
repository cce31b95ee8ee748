//! Who may connect to a path socket: the socket file's owner and mode, and every directory a
//! client's path lookup has to search.
//!
//! `connect(2)` resolves the path like `open(2)` does: component by component, needing search
//! (`x`) permission on each directory it looks a name up in, and following symlinks in every
//! component including the last. So this walker does the same lookup in user space: it `lstat`s
//! each component; a symlink's target is spliced into the remaining path (restarting at `/` when
//! absolute, at most 40 links like the kernel); `..` goes to the parent of the directory actually
//! reached. `parents` lists every directory searched, in order, under its resolved path: for
//! `/var/run/x.sock` with `/var/run -> /run` that is `/`, `/var`, `/run` — the directories whose
//! permissions decide access, not the lexical prefixes.
//!
//! The socket file is checked against the inode the socket was bound to (`UNIX_DIAG_VFS`): a
//! path that was unlinked, replaced, or belongs to another mount namespace gives no `file` and a
//! limit, never another file's permissions. A socket's path names a file of the binding
//! process's file system, so a walker looks paths up in one [`Root`]: ours, or a socket owner's
//! (`/proc/PID/root`, for a container or a service with a mount namespace of its own).

use super::rooted::{Meta, Root};
use super::sock_diag::unix::VfsId;
use crate::facts::FileMeta;
use rustix::fs::FileType;
use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};

/// The kernel's limit on symlinks followed in one lookup (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// What the walk established for one socket path.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PathFacts {
    /// The socket file, when it is still the bound socket.
    pub file: Option<FileMeta>,
    /// Every directory searched, from `/` on.
    pub parents: Vec<FileMeta>,
    /// What could not be established, for the snapshot's limits.
    pub problem: Option<String>,
}

/// Walks socket paths in one root, remembering directory metadata across sockets (most share
/// `/run`).
#[derive(Debug)]
pub struct Walker {
    root: Root,
    directories: HashMap<PathBuf, FileMeta>,
}

impl Default for Walker {
    /// A walker of our own file system.
    fn default() -> Walker {
        Walker::in_root(Root::Own)
    }
}

impl Walker {
    /// A walker that looks paths up in `root`.
    pub fn in_root(root: Root) -> Walker {
        Walker {
            root,
            directories: HashMap::new(),
        }
    }

    /// Looks `path` up as `connect(2)` would and checks the result against `bound` (the socket's
    /// bound inode; `None` when the kernel did not say, then the file found is taken as is).
    pub fn inspect(&mut self, path: &Path, bound: Option<VfsId>) -> PathFacts {
        let mut facts = PathFacts::default();
        if !path.is_absolute() {
            facts.problem = Some(format!(
                "{} is relative to the binding process's working directory at bind time, which \
                 is unknown now",
                path.display()
            ));
            return facts;
        }
        if let Some(own) = own_proc_entry(path) {
            facts.problem = Some(format!(
                "{} names /proc/{own}: each process that looks it up finds its own entry there, so the \
                 directory the socket was bound in (through the binding process's descriptor) is not known \
                 from the name",
                path.display()
            ));
            return facts;
        }
        let mut pending: VecDeque<OsString> = components(path);
        let mut current = PathBuf::from("/");
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            if let Err(problem) = self.search(&current, &mut facts.parents) {
                facts.problem = Some(problem);
                return facts;
            }
            if name == ".." {
                current.pop();
                continue;
            }
            let candidate = current.join(&name);
            let meta = match self.root.lstat(&candidate) {
                Ok(meta) => meta,
                Err(e) => {
                    facts.problem = Some(if pending.is_empty() && e.kind() == std::io::ErrorKind::NotFound {
                        format!("{} no longer exists: the socket was unlinked", self.shown(&candidate))
                    } else {
                        format!("cannot look up {}: {e}", self.shown(&candidate))
                    });
                    return facts;
                }
            };
            if meta.kind == FileType::Symlink {
                links += 1;
                if links > MAX_SYMLINKS {
                    facts.problem = Some(format!("too many symlinks resolving {}", path.display()));
                    return facts;
                }
                let target = match self.root.read_link(&candidate) {
                    Ok(target) => target,
                    Err(e) => {
                        facts.problem = Some(format!("cannot read symlink {}: {e}", self.shown(&candidate)));
                        return facts;
                    }
                };
                if target.is_absolute() {
                    current = PathBuf::from("/");
                }
                for component in components(&target).into_iter().rev() {
                    pending.push_front(component);
                }
            } else if !pending.is_empty() {
                if meta.kind != FileType::Directory {
                    facts.problem = Some(format!("{} is not a directory", self.shown(&candidate)));
                    return facts;
                }
                self.directories
                    .entry(candidate.clone())
                    .or_insert_with(|| file_meta(&candidate, &meta));
                current = candidate;
            } else {
                match same_socket(&meta, bound) {
                    Ok(()) => facts.file = Some(file_meta(&candidate, &meta)),
                    Err(why) => facts.problem = Some(format!("{}: {why}", self.shown(&candidate))),
                }
            }
        }
        facts
    }

    /// Records `dir` as searched (once), reading its metadata unless already known.
    fn search(&mut self, dir: &Path, searched: &mut Vec<FileMeta>) -> Result<(), String> {
        if searched.iter().any(|m| Path::new(&m.path) == dir) {
            return Ok(());
        }
        let meta = match self.directories.get(dir) {
            Some(meta) => meta.clone(),
            None => {
                let raw = self
                    .root
                    .stat(dir)
                    .map_err(|e| format!("cannot read directory {}: {e}", self.shown(dir)))?;
                let meta = file_meta(dir, &raw);
                self.directories.insert(dir.to_path_buf(), meta.clone());
                meta
            }
        };
        searched.push(meta);
        Ok(())
    }

    /// A path for messages: as the socket's owner names it, and in whose file system when that
    /// is not ours.
    fn shown(&self, path: &Path) -> String {
        match self.root {
            Root::Own => path.display().to_string(),
            Root::Process { .. } => format!("{} (in {})", path.display(), self.root.describe()),
        }
    }
}

/// `self` or `thread-self` when `path` goes through `/proc/self` or `/proc/thread-self`
/// (conmon binds `/proc/self/fd/N/attach` to reach a long directory through a descriptor): looked
/// up here it would name loopwarden's own descriptors, never the binding process's.
fn own_proc_entry(path: &Path) -> Option<&'static str> {
    let mut names = components(path).into_iter();
    if names.next()?.as_os_str() != "proc" {
        return None;
    }
    match names.next()?.to_str()? {
        "self" => Some("self"),
        "thread-self" => Some("thread-self"),
        _ => None,
    }
}

/// Whether the file found is a socket and, when the bound inode is known, that very one.
fn same_socket(meta: &Meta, bound: Option<VfsId>) -> Result<(), String> {
    if meta.kind != FileType::Socket {
        return Err("not a socket any more: the socket was unlinked and the path reused".into());
    }
    let Some(bound) = bound else { return Ok(()) };
    let found = VfsId {
        inode: meta.ino,
        major: meta.major,
        minor: meta.minor,
    };
    if found == bound {
        Ok(())
    } else {
        Err(format!(
            "is another socket (inode {} on {}:{}, the socket was bound as inode {} on {}:{}): \
             unlinked and replaced, or bound in another mount namespace",
            found.inode, found.major, found.minor, bound.inode, bound.major, bound.minor
        ))
    }
}

/// The components of a path as names and `..`, without `/` and `.`.
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsStr::new("..").to_os_string()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn file_meta(path: &Path, meta: &Meta) -> FileMeta {
    FileMeta {
        path: path.to_string_lossy().into_owned(),
        uid: meta.uid,
        gid: meta.gid,
        mode: meta.mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::os::unix::net::UnixListener;

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("lw-unix-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(std::fs::canonicalize(&dir).unwrap())
    }

    fn paths(metas: &[FileMeta]) -> Vec<&str> {
        metas.iter().map(|m| m.path.as_str()).collect()
    }

    /// conmon's `/proc/self/fd/13/attach`: never looked up in loopwarden's own /proc entry.
    #[test]
    fn a_path_through_proc_self_is_not_looked_up_as_ours() {
        for path in [
            "/proc/self/fd/13/attach",
            "/proc/thread-self/fd/3/s",
            "/proc/./self/fd/1/x",
        ] {
            let facts = Walker::default().inspect(Path::new(path), None);
            assert_eq!((facts.file.clone(), facts.parents.len()), (None, 0), "{path}");
            assert!(
                facts
                    .problem
                    .as_deref()
                    .is_some_and(|p| p.contains("is not known from the name")),
                "{facts:?}"
            );
        }
        assert_eq!(own_proc_entry(Path::new("/proc/1/root/run/x.sock")), None);
        assert_eq!(own_proc_entry(Path::new("/run/self/x.sock")), None);
    }

    #[test]
    fn every_parent_and_the_socket_file_are_read() {
        let dir = temp_dir("plain");
        let private = dir.0.join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let sock = private.join("s.sock");
        let _listener = UnixListener::bind(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o660)).unwrap();

        let facts = Walker::default().inspect(&sock, None);
        assert_eq!(facts.problem, None);
        let file = facts.file.unwrap();
        assert_eq!((file.path.as_str(), file.mode), (sock.to_str().unwrap(), 0o660));
        let parents = paths(&facts.parents);
        assert_eq!(parents.first(), Some(&"/"));
        assert_eq!(parents.last(), Some(&private.to_str().unwrap()));
        assert_eq!(facts.parents.last().unwrap().mode, 0o700);
        assert_eq!(parents.len(), private.components().count());
    }

    #[test]
    fn symlinked_parent_is_resolved_to_the_directory_searched() {
        let dir = temp_dir("link");
        let real = dir.0.join("real");
        std::fs::create_dir(&real).unwrap();
        symlink("real", dir.0.join("alias")).unwrap();
        let _listener = UnixListener::bind(real.join("s.sock")).unwrap();

        let facts = Walker::default().inspect(&dir.0.join("alias/s.sock"), None);
        assert_eq!(facts.problem, None);
        assert_eq!(facts.file.unwrap().path, real.join("s.sock").to_str().unwrap());
        let parents = paths(&facts.parents);
        assert_eq!(parents.last(), Some(&real.to_str().unwrap()));
        assert!(!parents.iter().any(|p| p.ends_with("alias")), "{parents:?}");
        assert!(parents.contains(&dir.0.to_str().unwrap()));
    }

    #[test]
    fn unlinked_or_replaced_socket_has_no_file() {
        let dir = temp_dir("gone");
        let sock = dir.0.join("s.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let meta = std::fs::metadata(&sock).unwrap();
        let bound = VfsId {
            inode: meta.ino(),
            major: rustix::fs::major(meta.dev()),
            minor: rustix::fs::minor(meta.dev()),
        };
        assert!(Walker::default().inspect(&sock, Some(bound)).file.is_some());

        std::fs::remove_file(&sock).unwrap();
        let facts = Walker::default().inspect(&sock, Some(bound));
        assert!(facts.file.is_none());
        assert!(facts.problem.unwrap().contains("no longer exists"));

        let _other = UnixListener::bind(&sock).unwrap();
        let facts = Walker::default().inspect(&sock, Some(bound));
        assert!(facts.file.is_none());
        assert!(facts.problem.unwrap().contains("another socket"));
        drop(listener);
    }

    #[test]
    fn relative_paths_are_not_guessed() {
        let facts = Walker::default().inspect(Path::new("run/x.sock"), None);
        assert!(facts.file.is_none() && facts.parents.is_empty());
        assert!(facts.problem.unwrap().contains("relative"));
    }

    #[test]
    fn dot_dot_leaves_the_directory_reached() {
        let dir = temp_dir("dotdot");
        std::fs::create_dir_all(dir.0.join("a/b")).unwrap();
        let _listener = UnixListener::bind(dir.0.join("a/s.sock")).unwrap();
        let facts = Walker::default().inspect(&dir.0.join("a/b/../s.sock"), None);
        assert_eq!(facts.file.unwrap().path, dir.0.join("a/s.sock").to_str().unwrap());
        assert!(paths(&facts.parents).contains(&dir.0.join("a/b").to_str().unwrap()));
    }
}
