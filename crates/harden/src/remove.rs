//! `--remove`: takes it all away again — the table, the persistent copy, a confirmation window
//! in progress — and restores the sysctls to the values they had before loopwarden first
//! changed them, where they still hold the value loopwarden set. An apply that died half-way is
//! put back first ([`crate::recover`]); a first value that is neither restored nor already back
//! stays recorded; a `table inet loopwarden` harden did not make is deleted only with `force`.

use crate::error::ActError;
use crate::nft::Nft;
use crate::ownership;
use crate::persist;
use crate::plan::sysctls::SysctlKey;
use crate::recover::{self, Recovered};
use crate::render::nft_json;
use crate::state::{files, Applied, Saved, StateDir};
use crate::sysctl;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `--remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct RemoveReport {
    /// An apply that died half-way, put back first.
    pub recovered: Option<Recovered>,
    /// Whether the table was there and was removed.
    pub table_removed: bool,
    /// Sysctls restored, as `key = value`.
    pub restored: Vec<String>,
    /// Sysctls left as they are, and why.
    pub left: Vec<String>,
    /// Files of the persistent copy removed.
    pub unpersisted: Vec<PathBuf>,
    /// A persistent copy under the root that another namespace installed, left as it is.
    pub persisted_elsewhere: Option<String>,
    /// Whether a confirmation window was open (it is closed: nothing will roll back).
    pub cancelled_window: bool,
}

/// Removes everything harden applied in this network namespace, and its persistent copy under
/// `persist_root`; `force` deletes a `table inet loopwarden` harden did not make too.
pub fn remove(state_root: &Path, persist_root: &Path, force: bool) -> Result<RemoveReport, ActError> {
    let nft = Nft::find()?;
    let state = StateDir::open(state_root)?;
    let recovered = recover::recover(&state, &nft)?;
    let cancelled_window = state.read::<serde_json::Value>(files::PENDING)?.is_some();
    let live = nft.list_table()?;
    if let Some(live) = &live {
        ownership::check(live, &state, ownership::Action::Delete, force)?;
    }
    let held = match state.read::<Applied>(files::APPLIED)? {
        Some(a) => a.sysctls,
        None => persist::expected(persist_root)?.map(|k| k.sysctls).unwrap_or_default(),
    };
    let original: Vec<Saved> = state.read(files::ORIGINAL)?.unwrap_or_default();
    if live.is_some() {
        nft.load(&nft_json::removal())?;
    }
    let mut report = RemoveReport {
        recovered,
        table_removed: live.is_some(),
        restored: Vec::new(),
        left: Vec::new(),
        unpersisted: Vec::new(),
        persisted_elsewhere: None,
        cancelled_window,
    };
    for (key, set) in &held {
        restore_one(key, set, &original, &mut report)?;
    }
    if !report.restored.is_empty() {
        sysctl::flush_route_cache()?;
    }
    let unaccounted = unaccounted(&original, &held, &mut report);
    match persist::ours(persist_root)? {
        Ok(()) => report.unpersisted = persist::uninstall(persist_root)?,
        // Nothing installed there: nothing to leave or to say.
        Err(_) if !persist::installed(persist_root)? => {}
        Err(owner) => {
            report.persisted_elsewhere = Some(format!(
                "the persistent copy under {} was installed from {owner}, not this network namespace: left as it is \
                 (remove it from there)",
                persist_root.display()
            ))
        }
    }
    for name in [files::PENDING, files::APPLIED, files::ROLLED_BACK, files::LOG] {
        state.remove(name)?;
    }
    if unaccounted.is_empty() {
        state.remove(files::ORIGINAL)?;
    } else {
        state.write(files::ORIGINAL, &unaccounted)?;
    }
    Ok(report)
}

/// Puts `key` back to its first value if it still holds `set`, the value loopwarden set.
fn restore_one(key: &SysctlKey, set: &str, original: &[Saved], report: &mut RemoveReport) -> Result<(), ActError> {
    let Some(before) = original.iter().find(|s| s.key == *key) else {
        report.left.push(format!(
            "{key}: its value before loopwarden is not known here (/run is emptied by a reboot)"
        ));
        return Ok(());
    };
    match sysctl::read(key) {
        Ok(now) if now == set => {
            sysctl::write(key, &before.value)?;
            report.restored.push(format!("{key} = {}", before.value));
        }
        Ok(now) => report.left.push(format!(
            "{key} = {now}: changed since loopwarden set {set}, left as it is"
        )),
        Err(_) if key.per_interface() && !key.proc_path().exists() => {}
        Err(e) => report.left.push(format!("{key}: {e}")),
    }
    Ok(())
}

/// First values of sysctls no record says loopwarden holds, and that are not back at that
/// value: loopwarden cannot tell who set them since, so it does not touch them — and does not
/// forget them either.
fn unaccounted(original: &[Saved], held: &[(SysctlKey, String)], report: &mut RemoveReport) -> Vec<Saved> {
    let mut out = Vec::new();
    for saved in original.iter().filter(|s| !held.iter().any(|(k, _)| *k == s.key)) {
        match sysctl::read(&saved.key) {
            Ok(now) if now != saved.value => {
                report.left.push(format!(
                    "{} = {now}: no record says loopwarden set it, so it is left as it is; its value before \
                     loopwarden, {}, stays recorded",
                    saved.key, saved.value
                ));
                out.push(saved.clone());
            }
            _ => {}
        }
    }
    out
}
