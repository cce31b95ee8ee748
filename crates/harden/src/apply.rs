//! `--apply`: the plan on the host, never half-configured.
//!
//! An apply that died half-way before is put back by the caller before it collects the facts the
//! plan is made from ([`crate::recover::recover_in`]); one found here is put back and the plan,
//! made from the host it half-changed, refused. `nft -c` first;
//! then what the apply replaces (loopwarden's previous table, the sysctls' values) is saved
//! durably under `/run/loopwarden/harden/` — the first value of every sysctl, and the whole
//! apply in progress ([`Applying`]) — before anything changes; the table is replaced in one nft
//! transaction (skipped when the live table is already the planned one, which keeps its
//! counters); the sysctls are written and the route cache flushed; the table and sysctls are read
//! back and compared with the plan; then the apply is recorded and its record of progress
//! removed. Any failure after the first change restores everything; a SIGKILL leaves the record
//! of progress for the next `--apply`, `--remove` or `--confirm` to restore from. A
//! `table inet loopwarden` harden did not make is replaced only with `force`
//! ([`crate::ownership`]). With a confirmation window, a watchdog in its own session — started
//! before the first change — restores everything unless `--confirm` comes in time. From the first
//! change to its record, SIGHUP, SIGINT, SIGTERM and SIGQUIT are ignored.

use crate::clock;
use crate::error::ActError;
use crate::nft::Nft;
use crate::ownership;
use crate::persist;
use crate::plan::sysctls::SysctlKey;
use crate::plan::Plan;
use crate::recover::{self, Recovered};
use crate::render::nft_json::{self, batch, normalized};
use crate::rollback;
use crate::signals::Steady;
use crate::state::{files, Applied, Applying, Before, Pending, Saved, StateDir};
use crate::sysctl;
use loopwarden_core::spoof_drops::SINCE_PREFIX;
use serde::Serialize;
use serde_json::Value;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The root of the state directories (`/run/loopwarden/harden`).
    pub state_root: PathBuf,
    /// `--confirm-within`: roll back unless confirmed within this time.
    pub confirm_within: Option<Duration>,
    /// `--persist`: install the persistent copy under this root (at once, or when confirmed).
    pub persist_root: Option<PathBuf>,
    /// Whether `persist_root` was not asked for but holds an earlier copy, which is updated:
    /// otherwise the next boot or nftables reload would bring back the old table.
    pub persist_existing: bool,
    /// The command that runs the rollback watchdog; the window's token is appended.
    pub watchdog: Vec<OsString>,
    /// `--force`: replace a `table inet loopwarden` that harden did not make.
    pub force: bool,
}

/// What happened to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableChange {
    /// There was none; it was created.
    Created,
    /// A different one was replaced (its counters restart).
    Replaced,
    /// It was already the planned one: not touched, counters kept.
    Unchanged,
}

/// A sysctl written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// Which.
    pub key: SysctlKey,
    /// Its value before.
    pub from: String,
    /// Its value now.
    pub to: String,
}

/// What `--apply` did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The table.
    pub table: TableChange,
    /// Sysctls written (those already at the planned value are not).
    pub sysctls: Vec<Written>,
    /// Whether the route cache was flushed.
    pub route_cache_flushed: bool,
    /// With a confirmation window: when it rolls back unless confirmed.
    pub confirm_by: Option<String>,
    /// Files of the persistent copy written now.
    pub persisted: Vec<PathBuf>,
    /// Whether the persistent copy waits for the confirmation.
    pub persist_on_confirm: bool,
    /// Whether the persistent copy is one an earlier `--persist` installed, updated (now or on
    /// confirmation) without `--persist`.
    pub persist_existing: bool,
    /// Where what was replaced is saved.
    pub saved_in: PathBuf,
    /// An earlier apply that died half-way, put back before this one.
    pub recovered: Option<Recovered>,
}

/// Applies a verified plan (see the module documentation).
pub fn apply(plan: &Plan, opts: &ApplyOptions) -> Result<ApplyReport, ActError> {
    if !plan.verified() {
        return Err(ActError::Unverified(plan.unverified().map(|p| p.failure()).collect()));
    }
    let nft = Nft::find()?;
    let state = StateDir::open(&opts.state_root)?;
    if let Some(recovered) = recover::recover(&state, &nft)? {
        // The plan was made from facts the dead apply had half-changed: never apply it.
        return Err(ActError::StalePlan(recovered.describe()));
    }
    if let Some(pending) = state.read::<Pending>(files::PENDING)? {
        let what_to_do = if rollback::watchdog_alive(&pending) {
            "run `loopwarden harden --confirm` to keep it, or wait for its rollback".to_string()
        } else {
            rollback::unwatched_advice(&pending)
        };
        return Err(ActError::Pending {
            deadline: pending.deadline,
            what_to_do,
        });
    }
    let prepared = prepare(plan, opts, &nft, &state)?;
    commit(prepared, opts, &nft, &state)
}

/// Everything an apply decides before it changes anything.
struct Prepared {
    change: TableChange,
    table_batch: Value,
    writes: Vec<Written>,
    before: Before,
    applied: Applied,
    persist: Option<persist::Request>,
}

/// Compares the plan with the live table and sysctls, checks the batch with `nft -c` and
/// records what would be replaced. Changes nothing.
fn prepare(plan: &Plan, opts: &ApplyOptions, nft: &Nft, state: &StateDir) -> Result<Prepared, ActError> {
    let live = nft.list_table()?;
    if let Some(live) = &live {
        ownership::check(live, state, ownership::Action::Replace, opts.force)?;
    }
    let change = match &live {
        None => TableChange::Created,
        Some(l) if normalized(l) == normalized(&nft_json::objects(&plan.table, None)) => TableChange::Unchanged,
        Some(_) => TableChange::Replaced,
    };
    let since = match change {
        TableChange::Unchanged => live.as_deref().and_then(live_since),
        _ => Some(clock::now_rfc3339()),
    };
    let objects = nft_json::objects(&plan.table, since.as_deref());
    let table_batch = batch(&objects);
    if change != TableChange::Unchanged {
        nft.check(&table_batch)?;
    }
    let mut writes = Vec::new();
    for c in &plan.sysctls {
        let from = sysctl::read(&c.key)?;
        if from != c.to {
            writes.push(Written {
                key: c.key.clone(),
                from,
                to: c.to.clone(),
            });
        }
    }
    let previous: Option<Applied> = state.read(files::APPLIED)?;
    let before = Before {
        table_text: if live.is_some() { nft.list_table_text()? } else { None },
        sysctls: writes
            .iter()
            .map(|w| Saved {
                key: w.key.clone(),
                value: w.from.clone(),
            })
            .collect(),
        applied: previous.clone(),
    };
    let applied = Applied {
        at: clock::now_rfc3339(),
        table: objects,
        sysctls: merged(previous.as_ref(), &writes),
        allows: plan.allows.iter().map(ToString::to_string).collect(),
        limit_connections: plan.limit_connections,
    };
    let persist = opts.persist_root.as_ref().map(|root| persist::Request {
        root: root.clone(),
        files: persist::files(
            &batch(&nft_json::objects(&plan.table, None)),
            &applied.sysctls,
            nft.path(),
        ),
    });
    if let Some(request) = &persist {
        persist::check(request)?;
    }
    Ok(Prepared {
        change,
        table_batch,
        writes,
        before,
        applied,
        persist,
    })
}

/// Makes the changes, reads them back and records them; restores everything on a failure.
fn commit(p: Prepared, opts: &ApplyOptions, nft: &Nft, state: &StateDir) -> Result<ApplyReport, ActError> {
    // From the first change to the record of it, a closing terminal or a Ctrl-C must not cut
    // the apply short; a window's watchdog runs before the first change, so that even a
    // SIGKILL leaves a way back.
    let _steady = Steady::hold();
    remember_originals(state, &p.writes)?;
    state.write(
        files::APPLYING,
        &Applying {
            at: clock::now_rfc3339(),
            pid: std::process::id(),
            before: p.before.clone(),
            applied: p.applied.clone(),
        },
    )?;
    let window = match opts.confirm_within {
        Some(within) => {
            match open_window(state, p.before.clone(), p.persist.clone(), within, &opts.watchdog) {
                Ok(deadline) => Some(deadline),
                Err(e) => {
                    // Nothing changed yet: the apply simply did not happen.
                    let _ = state.remove(files::APPLYING);
                    return Err(e);
                }
            }
        }
        None => None,
    };
    let acted =
        act(nft, p.change, &p.table_batch, &p.writes).and_then(|()| read_back(nft, &p.applied.table, &p.writes));
    if let Err(e) = acted {
        if window.is_some() {
            let _ = state.remove(files::PENDING);
        }
        return Err(undo(state, nft, &p.before, e));
    }
    state.write(files::APPLIED, &p.applied)?;
    state.remove(files::APPLYING)?;
    state.remove(files::ROLLED_BACK)?;
    let persisted = match (&window, &p.persist) {
        (None, Some(request)) => persist::install(request)?,
        _ => Vec::new(),
    };
    Ok(ApplyReport {
        table: p.change,
        route_cache_flushed: !p.writes.is_empty(),
        sysctls: p.writes,
        persist_on_confirm: window.is_some() && p.persist.is_some(),
        persist_existing: opts.persist_existing && p.persist.is_some(),
        confirm_by: window,
        persisted,
        saved_in: state.path().to_path_buf(),
        recovered: None,
    })
}

/// The sysctls loopwarden holds after this apply: those earlier applies wrote (still in force
/// until `--remove`) and those this one writes.
fn merged(previous: Option<&Applied>, writes: &[Written]) -> Vec<(SysctlKey, String)> {
    let mut out: Vec<(SysctlKey, String)> = previous.map(|a| a.sysctls.clone()).unwrap_or_default();
    for w in writes {
        match out.iter_mut().find(|(k, _)| *k == w.key) {
            Some(entry) => entry.1 = w.to.clone(),
            None => out.push((w.key.clone(), w.to.clone())),
        }
    }
    out
}

/// Keeps the first value loopwarden ever replaced of each sysctl, for `--remove`.
fn remember_originals(state: &StateDir, writes: &[Written]) -> Result<(), ActError> {
    let mut original: Vec<Saved> = state.read(files::ORIGINAL)?.unwrap_or_default();
    let before = original.len();
    for w in writes {
        if !original.iter().any(|s| s.key == w.key) {
            original.push(Saved {
                key: w.key.clone(),
                value: w.from.clone(),
            });
        }
    }
    if original.len() != before {
        state.write(files::ORIGINAL, &original)?;
    }
    Ok(())
}

fn act(nft: &Nft, change: TableChange, table_batch: &Value, writes: &[Written]) -> Result<(), ActError> {
    if change != TableChange::Unchanged {
        nft.load(table_batch)?;
    }
    for w in writes {
        sysctl::write(&w.key, &w.to)?;
    }
    if !writes.is_empty() {
        sysctl::flush_route_cache()?;
    }
    Ok(())
}

/// Reads the table and sysctls back: they must be what was planned.
fn read_back(nft: &Nft, objects: &[Value], writes: &[Written]) -> Result<(), ActError> {
    let live = nft.list_table()?.ok_or_else(|| ActError::ReadBack {
        what: "table inet loopwarden is not there".into(),
    })?;
    let (want, got) = (normalized(objects), normalized(&live));
    if want != got {
        let first = want
            .iter()
            .zip(got.iter())
            .find(|(w, g)| w != g)
            .map(|(w, g)| format!("planned {w}, listed {g}"))
            .unwrap_or_else(|| format!("{} objects planned, {} listed", want.len(), got.len()));
        return Err(ActError::ReadBack {
            what: format!("nft lists table inet loopwarden differently from the plan: {first}"),
        });
    }
    for w in writes {
        let now = sysctl::read(&w.key)?;
        if now != w.to {
            return Err(ActError::ReadBack {
                what: format!("{} reads {now}, not {}", w.key, w.to),
            });
        }
    }
    Ok(())
}

/// The creation time the live table's counting rule carries in its comment.
fn live_since(objects: &[Value]) -> Option<String> {
    objects
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter_map(|r| r.get("comment").and_then(Value::as_str))
        .find_map(|c| c.strip_prefix(SINCE_PREFIX))
        .map(str::to_string)
}

/// Records the window (rolling back to `before` at its end) and starts its watchdog, before
/// anything changes; returns the deadline. If the watchdog cannot start, nothing is applied.
fn open_window(
    state: &StateDir,
    before: Before,
    persist: Option<persist::Request>,
    within: Duration,
    watchdog: &[OsString],
) -> Result<String, ActError> {
    let deadline_ms = clock::now_ms().saturating_add(u64::try_from(within.as_millis()).unwrap_or(u64::MAX));
    let deadline = clock::rfc3339(deadline_ms / 1000);
    let token = (clock::now_ms() << 20) ^ u64::from(std::process::id());
    let mut pending = Pending {
        token,
        deadline_ms,
        deadline: deadline.clone(),
        watchdog: None,
        before,
        persist,
    };
    state.write(files::PENDING, &pending)?;
    match rollback::spawn_watchdog(watchdog, token) {
        Ok(pid) => {
            pending.watchdog = Some(pid);
            state.write(files::PENDING, &pending)?;
            Ok(deadline)
        }
        Err(e) => {
            let _ = state.remove(files::PENDING);
            Err(e)
        }
    }
}

/// Puts back what was there after `cause`; the error to report. The record of the apply in
/// progress goes only once everything is back: otherwise it is what `--remove` restores from.
fn undo(state: &StateDir, nft: &Nft, before: &Before, cause: ActError) -> ActError {
    match rollback::restore(nft, before) {
        Ok(_) => match state.remove(files::APPLYING) {
            Ok(()) => cause,
            Err(e) => ActError::RestoreFailed {
                cause: cause.to_string(),
                restore: format!("everything was put back, but the record of the apply stays: {e}"),
                saved: state.path().display().to_string(),
            },
        },
        Err(restore) => ActError::RestoreFailed {
            cause: cause.to_string(),
            restore: restore.to_string(),
            saved: state.path().display().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creation_time_is_read_from_the_counting_rules_comment() {
        let objects = nft_json::objects(
            &crate::plan::table::Table::new(false, vec![]),
            Some("2025-01-31T12:00:00Z"),
        );
        assert_eq!(live_since(&objects).as_deref(), Some("2025-01-31T12:00:00Z"));
        assert_eq!(
            live_since(&nft_json::objects(&crate::plan::table::Table::new(false, vec![]), None)),
            None
        );
    }
}
