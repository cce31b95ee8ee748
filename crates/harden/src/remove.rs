//! `--remove`: takes it all away again — the table, the persistent copy, a confirmation window
//! in progress — and restores the sysctls to the values they had before loopwarden first
//! changed them, where they still hold the value loopwarden set.

use crate::error::ActError;
use crate::nft::Nft;
use crate::persist;
use crate::render::nft_json;
use crate::state::{files, Applied, Saved, StateDir};
use crate::sysctl;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `--remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct RemoveReport {
    /// Whether the table was there and was removed.
    pub table_removed: bool,
    /// Sysctls restored, as `key = value`.
    pub restored: Vec<String>,
    /// Sysctls left as they are, and why.
    pub left: Vec<String>,
    /// Files of the persistent copy removed.
    pub unpersisted: Vec<PathBuf>,
    /// Whether a confirmation window was open (it is closed: nothing will roll back).
    pub cancelled_window: bool,
}

/// Removes everything harden applied in this network namespace, and its persistent copy under
/// `persist_root`.
pub fn remove(state_root: &Path, persist_root: &Path) -> Result<RemoveReport, ActError> {
    let nft = Nft::find()?;
    let state = StateDir::open(state_root)?;
    let cancelled_window = state.read::<serde_json::Value>(files::PENDING)?.is_some();
    let table_removed = nft.list_table()?.is_some();
    if table_removed {
        nft.load(&nft_json::removal())?;
    }
    let applied: Option<Applied> = state.read(files::APPLIED)?;
    let held = match applied {
        Some(a) => a.sysctls,
        None => persist::expected(persist_root)?.map(|k| k.sysctls).unwrap_or_default(),
    };
    let original: Vec<Saved> = state.read(files::ORIGINAL)?.unwrap_or_default();
    let mut report = RemoveReport {
        table_removed,
        restored: Vec::new(),
        left: Vec::new(),
        unpersisted: Vec::new(),
        cancelled_window,
    };
    for (key, set) in &held {
        let Some(before) = original.iter().find(|s| s.key == *key) else {
            report.left.push(format!(
                "{key}: its value before loopwarden is not known here (/run is emptied by a reboot)"
            ));
            continue;
        };
        match sysctl::read(key) {
            Ok(now) if now == *set => {
                sysctl::write(key, &before.value)?;
                report.restored.push(format!("{key} = {}", before.value));
            }
            Ok(now) => report.left.push(format!(
                "{key} = {now}: changed since loopwarden set {set}, left as it is"
            )),
            Err(_) if key.per_interface() && !key.proc_path().exists() => {}
            Err(e) => report.left.push(format!("{key}: {e}")),
        }
    }
    if !report.restored.is_empty() {
        sysctl::flush_route_cache()?;
    }
    report.unpersisted = persist::uninstall(persist_root)?;
    for name in [files::PENDING, files::APPLIED, files::ORIGINAL, files::ROLLED_BACK] {
        state.remove(name)?;
    }
    Ok(report)
}
