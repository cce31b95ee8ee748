//! Whose `table inet loopwarden` is it? harden replaces and deletes only a table it made: one
//! that carries its mark (the comment of the rule counting drops per interface, in every table
//! harden makes, runtime or persisted) or that this namespace's state says it applied. Another
//! table of that name — someone's own — is replaced or deleted only with `--force`.

use crate::error::ActError;
use crate::recover;
use crate::render::nft_json;
use crate::state::{files, StateDir};
use loopwarden_core::spoof_drops::{TABLE_FAMILY, TABLE_NAME};
use serde_json::Value;

/// What an action would do to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `--apply`: replace it.
    Replace,
    /// `--remove`: delete it.
    Delete,
}

/// An error when `live` (the listed table) was not made by harden and `force` is not given.
pub fn check(live: &[Value], state: &StateDir, action: Action, force: bool) -> Result<(), ActError> {
    if force || nft_json::carries_mark(live) || recorded(state)? {
        return Ok(());
    }
    let count = |kind: &str| live.iter().filter(|o| o.get(kind).is_some()).count();
    Err(ActError::ForeignTable {
        table: format!("{TABLE_FAMILY} {TABLE_NAME}"),
        contents: format!("{} chain(s), {} rule(s)", count("chain"), count("rule")),
        action: match action {
            Action::Replace => "--apply would replace it",
            Action::Delete => "--remove would delete it",
        },
    })
}

/// Whether this namespace's state records an apply (done, pending or interrupted).
fn recorded(state: &StateDir) -> Result<bool, ActError> {
    Ok(state.read::<Value>(files::APPLIED)?.is_some()
        || state.read::<Value>(files::PENDING)?.is_some()
        || recover::interrupted(state)?.is_some())
}
