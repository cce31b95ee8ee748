//! Where a network namespace's `/etc` files are read: `hosts` and `nsswitch.conf` decide what
//! `localhost` means to its processes, `passwd` and `group` who its users are.
//!
//! They are the files its processes see: ours for the namespace loopwarden runs in; a
//! container's, through its root ([`Root`]), only when root owns them and nobody else may
//! write them (a container's files are its owner's input); for an `ip netns` namespace without
//! such a process, `/etc/netns/NAME/FILE` where it exists — what `ip netns exec` bind-mounts over
//! `/etc/FILE` — else ours.

use super::rooted::Root;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Whose `/etc` a namespace's files come from.
#[derive(Debug)]
pub enum EtcView {
    /// Ours.
    Own,
    /// A process's file system (a container's).
    Process(Root),
    /// An `ip netns` namespace's: `/etc/netns/NAME/FILE` over ours.
    IpNetns(String),
}

impl EtcView {
    /// The text of `/etc/FILE` as this view's processes see it; `Ok(None)` when it does not exist.
    pub fn read(&self, file: &str) -> Result<Option<String>, String> {
        let etc = Path::new("/etc").join(file);
        match self {
            EtcView::Own => read_own(&etc),
            EtcView::Process(root) => root
                .read_root_file(&etc)
                .map(|bytes| bytes.map(|b| String::from_utf8_lossy(&b).into_owned())),
            EtcView::IpNetns(name) => {
                let own = PathBuf::from("/etc/netns").join(name).join(file);
                match Root::Own.read_root_file(&own)? {
                    Some(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
                    None => read_own(&etc),
                }
            }
        }
    }

    /// The path a message names for `/etc/FILE` in this view.
    pub fn shown(&self, file: &str) -> String {
        match self {
            EtcView::Own => format!("/etc/{file}"),
            EtcView::Process(root) => format!("/etc/{file} (in {})", root.describe()),
            EtcView::IpNetns(name) => format!("/etc/{file} (or /etc/netns/{name}/{file})"),
        }
    }

    /// Whose files these are, for the namespace's identity.
    pub fn describe(&self) -> String {
        match self {
            EtcView::Own => "this host's /etc".to_string(),
            EtcView::Process(root) => format!("/etc in {}", root.describe()),
            EtcView::IpNetns(name) => format!("/etc/netns/{name} over this host's /etc"),
        }
    }
}

/// Our own file, as collection always read it.
fn read_own(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
