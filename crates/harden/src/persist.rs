//! `--persist`: keeping the table and sysctls across reboots and firewall reloads, and nothing
//! installed without it.
//!
//! Three files and two links, under an install root (`/` unless `--root`):
//! - `etc/loopwarden/harden.json`: the nft JSON batch that re-creates the table (declare,
//!   delete, re-create: idempotent);
//! - `etc/sysctl.d/99-zz-loopwarden.conf`: the sysctls (per-interface keys prefixed `-`, so that
//!   a missing interface is not an error; systemd re-applies them when the interface appears).
//!   Its name sorts after every other `99-…` file — Debian's `99-sysctl.conf` (a link to
//!   `/etc/sysctl.conf`) among them — so that systemd-sysctl, which applies the files in name
//!   order and lets the last one win, applies it last;
//! - `etc/systemd/system/loopwarden-harden.service`: loads the batch early at boot, like
//!   nftables.service (before `network-pre.target`: no interface is up yet), after nftables.service
//!   and firewalld.service; again whenever nftables.service restarts (`PartOf=`) or reloads
//!   (`ReloadPropagatedFrom=`) — Debian's `/etc/nftables.conf` begins with `flush ruleset` — and
//!   started whenever it starts (`WantedBy=nftables.service`: `PartOf=` does not pass a start on);
//! - `etc/systemd/system/{sysinit.target,nftables.service}.wants/…`: the unit enabled.
//!
//! A file that is there and was not written by loopwarden is never overwritten nor removed, and
//! nothing is written, read or removed through a directory another user controls
//! ([`crate::trusted_path`]). The names of earlier versions (`99-loopwarden.conf`, the
//! `multi-user.target.wants` link) are taken away when the copy is installed again or removed.

use crate::error::{io, ActError};
use crate::plan::sysctls::SysctlKey;
use crate::trusted_path;
use loopwarden_core::spoof_drops::{TABLE_FAMILY, TABLE_NAME};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The batch file, relative to the install root.
pub const TABLE_FILE: &str = "etc/loopwarden/harden.json";
/// The sysctl drop-in, relative to the install root.
pub const SYSCTL_FILE: &str = "etc/sysctl.d/99-zz-loopwarden.conf";
/// The drop-in's name before: it sorted before Debian's `99-sysctl.conf`, whose settings then won.
const OLD_SYSCTL_FILE: &str = "etc/sysctl.d/99-loopwarden.conf";
/// Which network namespace installed the copy (`net:[INODE]`), relative to the install root: only
/// that namespace updates or removes it — an `ip netns exec NS loopwarden harden --apply` must not
/// replace the host's boot-time table with a container's, nor `--remove` take it away.
pub const NETNS_FILE: &str = "etc/loopwarden/harden.netns";
/// The unit, relative to the install root.
pub const UNIT_FILE: &str = "etc/systemd/system/loopwarden-harden.service";
/// The links that enable the unit (as `systemctl enable` makes them from its `[Install]`),
/// relative to the install root.
pub const WANTS_LINKS: [&str; 2] = [
    "etc/systemd/system/sysinit.target.wants/loopwarden-harden.service",
    "etc/systemd/system/nftables.service.wants/loopwarden-harden.service",
];
/// The link that enabled the unit before (too late: after the network was up).
const OLD_WANTS_LINK: &str = "etc/systemd/system/multi-user.target.wants/loopwarden-harden.service";
/// What every link points to.
const LINK_TARGET: &str = "../loopwarden-harden.service";
/// The first line of every text file loopwarden installs.
const MARKER: &str = "# Written by `loopwarden harden --persist`; `loopwarden harden --remove` takes it away.";

/// The contents of the persistent copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// [`TABLE_FILE`].
    pub table_json: String,
    /// [`SYSCTL_FILE`] (`None`: no sysctl to keep).
    pub sysctl_conf: Option<String>,
    /// [`UNIT_FILE`].
    pub unit: String,
}

/// What to install where (kept in a confirmation window until confirmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The install root.
    pub root: PathBuf,
    /// What.
    pub files: Files,
}

/// The persistent copy of `batch` (the table, re-created) and `sysctls`, loaded by `nft`.
pub fn files(batch: &Value, sysctls: &[(SysctlKey, String)], nft: &Path) -> Files {
    let table_json = serde_json::to_string_pretty(batch).unwrap_or_default() + "\n";
    let sysctl_conf = (!sysctls.is_empty()).then(|| {
        let mut text = format!(
            "{MARKER}\n# route_localnet=0: the kernel does not route 127.0.0.0/8 from outside (CVE-2020-8558);\n\
             # accept_local=0: no forged source that is one of this host's own addresses.\n"
        );
        for (key, value) in sysctls {
            let optional = if key.per_interface() { "-" } else { "" };
            text.push_str(&format!("{optional}{} = {value}\n", key.sysctl_d()));
        }
        text
    });
    let file = Path::new("/").join(TABLE_FILE);
    let nft = nft.display();
    let file = file.display();
    let unit = format!(
        "{MARKER}\n[Unit]\n\
         Description=loopwarden harden: drop spoofed loopback traffic (nftables table {TABLE_FAMILY} {TABLE_NAME})\n\
         Documentation=man:loopwarden-harden(1)\n\
         # Early, like nftables.service: before any interface is configured.\n\
         DefaultDependencies=no\n\
         Wants=network-pre.target\n\
         Before=network-pre.target shutdown.target\n\
         Conflicts=shutdown.target\n\
         # After the rulesets loaded at boot (nftables.service starts with `flush ruleset`), restarted and\n\
         # reloaded with nftables.service, and started with it (see [Install]).\n\
         After=nftables.service firewalld.service\n\
         PartOf=nftables.service\n\
         ReloadPropagatedFrom=nftables.service\n\n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart={nft} -j -f {file}\n\
         ExecReload={nft} -j -f {file}\n\n\
         [Install]\n\
         WantedBy=sysinit.target nftables.service\n"
    );
    Files {
        table_json,
        sysctl_conf,
        unit,
    }
}

/// The files of a request, with their paths (`None`: the file must not be there); the
/// namespace record names the calling thread's network namespace.
fn targets(request: &Request) -> Vec<(PathBuf, Option<String>)> {
    let (root, files) = (&request.root, &request.files);
    let netns = crate::state::namespace_inode().map(|inode| format!("{MARKER}\nnet:[{inode}]\n"));
    vec![
        (root.join(TABLE_FILE), Some(files.table_json.clone())),
        (root.join(SYSCTL_FILE), files.sysctl_conf.clone()),
        (root.join(UNIT_FILE), Some(files.unit.clone())),
        (root.join(NETNS_FILE), netns),
    ]
}

/// Whether the copy under `root` is the calling thread's namespace's to update or remove. The
/// host's copy (under `/`, which only the host's namespace installs) is the host's namespace's —
/// its inode may differ after a reboot; another root's is the namespace's that installed it, as
/// [`NETNS_FILE`] records (a copy from before the record: anyone's). `Err` names the owner.
pub fn ours(root: &Path) -> Result<Result<(), String>, ActError> {
    if root == Path::new("/") {
        return Ok(if crate::netns::is_initial() {
            Ok(())
        } else {
            Err("the host's network namespace".to_string())
        });
    }
    let path = root.join(NETNS_FILE);
    trusted_path::check(&path)?;
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("net:[").and_then(|r| r.strip_suffix(']')))
            .and_then(|n| n.parse::<u64>().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(path)(e)),
    };
    Ok(match recorded {
        Some(inode) if Some(inode) == crate::state::namespace_inode() => Ok(()),
        Some(inode) => Err(format!("net:[{inode}]")),
        None => Ok(()),
    })
}

/// Whether [`install`] may write every file of `request`: every directory on the way root's
/// alone, and no file someone else's.
pub fn check(request: &Request) -> Result<(), ActError> {
    trusted_path::check(&request.root)?;
    if let Err(owner) = ours(&request.root)? {
        return Err(ActError::Untrusted {
            path: request.root.join(NETNS_FILE),
            why: format!("the persistent copy there was installed from {owner}: only that namespace replaces it"),
        });
    }
    for (path, _) in targets(request) {
        trusted_path::check(path.parent().unwrap_or(&request.root))?;
        if !replaceable(&path)? {
            return Err(ActError::Untrusted {
                path,
                why: "exists and was not written by loopwarden: not overwritten".into(),
            });
        }
    }
    Ok(())
}

/// Installs the files under the request's root; returns the paths written (or removed: a
/// drop-in of an earlier copy that no longer has sysctls, names of earlier versions). A file
/// of someone else's in the way is an error, and nothing is written then.
pub fn install(request: &Request) -> Result<Vec<PathBuf>, ActError> {
    check(request)?;
    let root = &request.root;
    let mut changed = Vec::new();
    for (path, contents) in targets(request) {
        match contents {
            Some(text) => {
                write_file(&path, &text)?;
                changed.push(path);
            }
            None => remove_ours(&path, &mut changed)?,
        }
    }
    remove_ours(&root.join(OLD_SYSCTL_FILE), &mut changed)?;
    remove_link(&root.join(OLD_WANTS_LINK), &mut changed)?;
    for link in WANTS_LINKS.map(|l| root.join(l)) {
        if std::fs::symlink_metadata(&link).is_err() {
            let dir = link.parent().unwrap_or(root);
            trusted_path::create_dir_all(dir)?;
            std::os::unix::fs::symlink(LINK_TARGET, &link).map_err(io(&link))?;
            changed.push(link);
        }
    }
    reload_systemd(root);
    Ok(changed)
}

/// The files that load the copy at boot and with nftables.service — the unit and the links
/// that enable it — that are not there under `root` (`systemctl disable` removes the links).
pub fn missing_unit(root: &Path) -> Vec<PathBuf> {
    let unit = root.join(UNIT_FILE);
    let mut missing: Vec<PathBuf> = Vec::new();
    if std::fs::symlink_metadata(&unit).is_err() {
        missing.push(unit);
    }
    for link in WANTS_LINKS.map(|l| root.join(l)) {
        if !std::fs::read_link(&link).is_ok_and(|t| t == Path::new(LINK_TARGET)) {
            missing.push(link);
        }
    }
    missing
}

/// Whether a copy is installed under `root` (so that an apply keeps it up to date).
pub fn installed(root: &Path) -> Result<bool, ActError> {
    Ok(expected(root)?.is_some())
}

/// Removes what [`install`] wrote under `root` (and what earlier versions wrote); returns what
/// was removed.
pub fn uninstall(root: &Path) -> Result<Vec<PathBuf>, ActError> {
    trusted_path::check(root)?;
    let mut removed = Vec::new();
    for link in WANTS_LINKS.iter().chain([&OLD_WANTS_LINK]) {
        remove_link(&root.join(link), &mut removed)?;
    }
    for file in [UNIT_FILE, SYSCTL_FILE, OLD_SYSCTL_FILE, TABLE_FILE, NETNS_FILE] {
        remove_ours(&root.join(file), &mut removed)?;
    }
    let _ = std::fs::remove_dir(root.join("etc/loopwarden"));
    if !removed.is_empty() {
        reload_systemd(root);
    }
    Ok(removed)
}

/// Removes `link` if it is loopwarden's link to its unit.
fn remove_link(link: &Path, removed: &mut Vec<PathBuf>) -> Result<(), ActError> {
    if std::fs::read_link(link).is_ok_and(|t| t == Path::new(LINK_TARGET)) {
        trusted_path::check(link.parent().unwrap_or(Path::new("/")))?;
        std::fs::remove_file(link).map_err(io(link))?;
        removed.push(link.to_path_buf());
    }
    Ok(())
}

/// What an installed copy keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// The table's objects.
    pub table: Vec<Value>,
    /// The sysctls and their values.
    pub sysctls: Vec<(SysctlKey, String)>,
}

/// What the copy installed under `root` keeps (`None`: not installed).
pub fn expected(root: &Path) -> Result<Option<Kept>, ActError> {
    let table = root.join(TABLE_FILE);
    trusted_path::check(&table)?;
    let text = match std::fs::read_to_string(&table) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(table)(e)),
    };
    let objects = batch_objects(&text).ok_or_else(|| ActError::Untrusted {
        path: table.clone(),
        why: "not a batch loopwarden wrote".into(),
    })?;
    let conf = [SYSCTL_FILE, OLD_SYSCTL_FILE]
        .map(|f| root.join(f))
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| root.join(SYSCTL_FILE));
    trusted_path::check(&conf)?;
    let sysctls = match std::fs::read_to_string(&conf) {
        Ok(t) if t.starts_with(MARKER) => parse_sysctls(&t),
        Ok(_) => Vec::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(conf)(e)),
    };
    Ok(Some(Kept {
        table: objects,
        sysctls,
    }))
}

/// The objects a batch of ours adds (after its `add table`/`delete table` pair), or `None` when
/// the text is not such a batch (any command about another table).
fn batch_objects(text: &str) -> Option<Vec<Value>> {
    let json: Value = serde_json::from_str(text).ok()?;
    let cmds = json.get("nftables")?.as_array()?;
    let mut objects = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        let (verb, object) = cmd.as_object()?.iter().next()?;
        let (_, body) = object.as_object()?.iter().next()?;
        let ours = body.get("family")?.as_str()? == TABLE_FAMILY
            && body.get("table").or_else(|| body.get("name"))?.as_str()? == TABLE_NAME;
        if !ours || !(verb == "add" || (verb == "delete" && i == 1)) {
            return None;
        }
        if i >= 2 {
            objects.push(object.clone());
        }
    }
    Some(objects)
}

fn parse_sysctls(text: &str) -> Vec<(SysctlKey, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.split_once(" = ")?;
            let parts: Vec<&str> = key.trim_start_matches('-').split('/').collect();
            match parts.as_slice() {
                ["net", "ipv4", "conf", scope, name] => Some((SysctlKey::new(scope, name), value.trim().to_string())),
                _ => None,
            }
        })
        .collect()
}

/// Whether `path` may be written: absent, or a regular file of root's that loopwarden wrote.
fn replaceable(path: &Path) -> Result<bool, ActError> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(path)(e)),
        Ok(meta) if !meta.is_file() || meta.uid() != 0 => Ok(false),
        Ok(_) => {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            Ok(text.starts_with(MARKER) || batch_objects(&text).is_some())
        }
    }
}

fn remove_ours(path: &Path, removed: &mut Vec<PathBuf>) -> Result<(), ActError> {
    if std::fs::symlink_metadata(path).is_ok() && replaceable(path)? {
        std::fs::remove_file(path).map_err(io(path))?;
        removed.push(path.to_path_buf());
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), ActError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("/"));
    trusted_path::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io(&tmp))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Tells a running systemd about the changed units, only when installing into the real root
/// (best effort: the files are in place either way, and the next boot reads them).
fn reload_systemd(root: &Path) {
    if root != Path::new("/") || !Path::new("/run/systemd/system").is_dir() {
        return;
    }
    if let Ok(systemctl) = crate::program::find(&["/usr/bin/systemctl", "/bin/systemctl"]) {
        let _ = std::process::Command::new(systemctl)
            .arg("daemon-reload")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::table::Table;
    use crate::render::nft_json;

    fn request(root: &Path) -> Request {
        let batch = nft_json::batch(&nft_json::objects(&Table::new(false, vec![]), None));
        Request {
            root: root.to_path_buf(),
            files: files(
                &batch,
                &[
                    (SysctlKey::new("all", "route_localnet"), "0".into()),
                    (SysctlKey::new("eth0.100", "route_localnet"), "0".into()),
                ],
                Path::new("/usr/sbin/nft"),
            ),
        }
    }

    #[test]
    fn installs_reads_back_and_removes_only_its_own_files() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "SKIPPED installs_reads_back_and_removes_only_its_own_files: needs root (root-owned directories)"
            );
            return;
        }
        let root = std::env::temp_dir().join(format!("lw-persist-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let req = request(&root);
        // An earlier version's names are taken away when the copy is installed again.
        let old = root.join(OLD_SYSCTL_FILE);
        std::fs::create_dir_all(old.parent().expect("dir")).expect("sysctl.d");
        std::fs::write(&old, format!("{MARKER}\nnet/ipv4/conf/all/route_localnet = 0\n")).expect("old drop-in");
        let written = install(&req).expect("install");
        assert_eq!(
            written.len(),
            7,
            "four files (the namespace record too), the old drop-in removed, two links: {written:?}"
        );
        assert!(!old.exists());
        // systemd-sysctl applies the files in name order; the last one wins.
        assert!("99-zz-loopwarden.conf" > "99-sysctl.conf");
        let conf = std::fs::read_to_string(root.join(SYSCTL_FILE)).expect("conf");
        assert!(conf.contains("\nnet/ipv4/conf/all/route_localnet = 0\n"), "{conf}");
        assert!(
            conf.contains("\n-net/ipv4/conf/eth0.100/route_localnet = 0\n"),
            "{conf}"
        );
        let kept = expected(&root).expect("read").expect("installed");
        assert_eq!(kept.table, nft_json::objects(&Table::new(false, vec![]), None));
        assert_eq!(kept.sysctls.len(), 2);
        // Installing again replaces its own files; the copy is this namespace's, not another's.
        assert_eq!(ours(&root).expect("read"), Ok(()));
        assert!(install(&req).is_ok());
        std::fs::write(root.join(NETNS_FILE), format!("{MARKER}\nnet:[1]\n")).expect("another's");
        assert_eq!(ours(&root).expect("read"), Err("net:[1]".to_string()));
        assert!(matches!(install(&req), Err(ActError::Untrusted { .. })));
        std::fs::remove_file(root.join(NETNS_FILE)).expect("a copy from before the record");
        assert!(install(&req).is_ok());
        // Someone else's unit of that name is neither replaced nor removed.
        std::fs::write(root.join(UNIT_FILE), "[Unit]\nDescription=theirs\n").expect("write");
        assert!(matches!(install(&req), Err(ActError::Untrusted { .. })));
        let removed = uninstall(&root).expect("uninstall");
        let theirs = std::fs::read_to_string(root.join(UNIT_FILE));
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(removed.len(), 5, "two links and three files: {removed:?}");
        assert_eq!(theirs.expect("kept"), "[Unit]\nDescription=theirs\n");
    }

    #[test]
    fn a_batch_about_another_table_is_not_ours() {
        let theirs = r#"{"nftables": [{"add": {"table": {"family": "inet", "name": "filter"}}}]}"#;
        assert_eq!(batch_objects(theirs), None);
        assert_eq!(batch_objects("flush ruleset"), None);
    }
}
