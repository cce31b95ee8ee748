//! An apply whose process died half-way — a SIGKILL, a crash, a power cut between its first
//! change and its record. `--apply` records what it replaces ([`Applying`]) durably before its
//! first change and removes that record only once the apply is recorded; whoever finds the record
//! while holding the state directory's lock knows that its apply is gone (an apply holds the
//! lock from start to end). `--apply`, `--remove` and `--confirm` then put back what it replaced
//! before they do anything else, exactly as a failed apply would have; `--check` reports it.

use crate::clock;
use crate::error::ActError;
use crate::nft::Nft;
use crate::rollback;
use crate::state::{files, Applying, RollbackCause, RolledBack, StateDir};
use crate::sysctl;
use serde::Serialize;

/// What recovering an interrupted apply did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// When the interrupted apply started.
    pub started: String,
    /// What was put back, line by line.
    pub restored: Vec<String>,
}

impl Recovered {
    /// The recovery in one line, for people.
    pub fn describe(&self) -> String {
        format!(
            "an apply started at {} did not finish (its process died), so what it replaced was put back first: {}",
            self.started,
            self.restored.join("; ")
        )
    }
}

/// The interrupted apply of this namespace, if any (`state` must be held: then its apply is
/// gone).
pub fn interrupted(state: &StateDir) -> Result<Option<Applying>, ActError> {
    state.read(files::APPLYING)
}

/// [`recover`] in the state directory of the calling thread's namespace under `state_root`: what
/// a caller runs before it collects the facts a plan is made from, so that the plan sees the host
/// as it was before the dead apply, not half-changed by it.
pub fn recover_in(state_root: &std::path::Path) -> Result<Option<Recovered>, ActError> {
    let nft = Nft::find()?;
    let state = StateDir::open(state_root)?;
    recover(&state, &nft)
}

/// Puts back what an interrupted apply replaced, if there is one: its table and sysctls, its
/// record of the apply before it; a confirmation window it opened is closed (what it would roll
/// back is restored now). Records the rollback for `--check`.
pub fn recover(state: &StateDir, nft: &Nft) -> Result<Option<Recovered>, ActError> {
    let Some(applying) = interrupted(state)? else {
        return Ok(None);
    };
    // A sysctl changed since by someone else is theirs now: only what the apply set goes back.
    let mut before = applying.before.clone();
    let mut left = Vec::new();
    before.sysctls.retain(|saved| {
        let set = applying
            .applied
            .sysctls
            .iter()
            .find(|(k, _)| *k == saved.key)
            .map(|(_, v)| v);
        match sysctl::read(&saved.key) {
            Ok(now) if Some(&now) == set => true,
            Ok(now) if now == saved.value => false,
            Ok(now) => {
                left.push(format!("{} = {now} left as it is (changed since)", saved.key));
                false
            }
            Err(_) => false,
        }
    });
    let mut restored = rollback::restore(nft, &before).map_err(|e| ActError::RestoreFailed {
        cause: format!("an apply started at {} did not finish (its process died)", applying.at),
        restore: e.to_string(),
        saved: state.path().display().to_string(),
    })?;
    restored.extend(left);
    match &applying.before.applied {
        Some(previous) => state.write(files::APPLIED, previous)?,
        None => state.remove(files::APPLIED)?,
    }
    state.remove(files::PENDING)?;
    state.write(
        files::ROLLED_BACK,
        &RolledBack {
            at: clock::now_rfc3339(),
            deadline: applying.at.clone(),
            cause: RollbackCause::Interrupted,
            restored: restored.clone(),
        },
    )?;
    state.remove(files::APPLYING)?;
    state.log(&format!(
        "the apply started at {} (pid {}) did not finish: rolled back ({})",
        applying.at,
        applying.pid,
        restored.join("; ")
    ));
    Ok(Some(Recovered {
        started: applying.at,
        restored,
    }))
}
