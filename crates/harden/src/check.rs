//! `--check`: whether what harden applied is still in place — the table exactly as planned (a
//! `flush ruleset`, such as a reload of Debian's nftables.service, removes it) and the sysctls at
//! the values it set — for monitoring and CI.

use crate::clock;
use crate::error::ActError;
use crate::nft::Nft;
use crate::persist;
use crate::plan::sysctls::SysctlKey;
use crate::recover;
use crate::render::nft_json::normalized;
use crate::rollback;
use crate::stale;
use crate::state::{files, Applied, Pending, RolledBack, StateDir};
use crate::sysctl;
use loopwarden_core::facts::FirewallFacts;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// How long past its deadline a confirmation window may stay open before `--check` says that
/// its watchdog did not roll it back (the watchdog polls every 100 ms).
const ROLLBACK_GRACE_MS: u64 = 5_000;

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Applied and intact.
    Intact,
    /// Applied, and the table is gone.
    Missing,
    /// Applied, and the table or a sysctl differs.
    Drifted,
    /// Nothing was applied in this namespace (no record, no persistent copy).
    NotApplied,
    /// An apply died half-way: the table and sysctls may be partly changed.
    Interrupted,
    /// A confirmation window is open and its rollback watchdog is gone: nothing will roll back.
    Unwatched,
}

/// What `--check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The verdict.
    pub status: Status,
    /// What is missing or differs.
    pub problems: Vec<String>,
    /// What the live state was compared with: the runtime record or the persistent copy.
    pub compared_with: Option<String>,
    /// A confirmation window in progress, if any: its deadline.
    pub pending_until: Option<String>,
    /// The last rollback in this namespace, if any.
    pub rolled_back: Option<RolledBack>,
    /// What the table's counters say (one line per family).
    pub counters: Vec<String>,
    /// State directories of network namespaces that no longer exist, or whose existence cannot
    /// be told (this check does not remove them).
    pub stale: Vec<String>,
}

impl CheckReport {
    /// Whether the check passes (exit status 0).
    pub fn ok(&self) -> bool {
        self.status == Status::Intact
    }
}

/// Compares the live table and sysctls with the runtime record (`state_root`), else with the
/// persistent copy under `persist_root` (after a reboot `/run` is empty). Changes nothing: an
/// interrupted apply or a confirmation window without its watchdog is reported, with what to do.
pub fn check(state_root: &Path, persist_root: &Path) -> Result<CheckReport, ActError> {
    let nft = Nft::find()?;
    let state = StateDir::open(state_root)?;
    let applied: Option<Applied> = state.read(files::APPLIED)?;
    let pending: Option<Pending> = state.read(files::PENDING)?;
    let rolled_back: Option<RolledBack> = state.read(files::ROLLED_BACK)?;
    let interrupted = recover::interrupted(&state)?;
    let from_record = applied.is_some();
    let (expected, compared_with) = match applied {
        Some(a) => (
            Some((a.table, a.sysctls)),
            Some(format!("what --apply applied at {}", a.at)),
        ),
        None => match persist::expected(persist_root)? {
            Some(kept) => (
                Some((kept.table, kept.sysctls)),
                Some(format!(
                    "the persistent copy in {}",
                    persist_root.join(persist::TABLE_FILE).display()
                )),
            ),
            None => (None, None),
        },
    };
    let live = nft.list_table()?;
    let mut report = CheckReport {
        status: Status::Intact,
        problems: Vec::new(),
        compared_with,
        pending_until: pending.as_ref().map(|p| p.deadline.clone()),
        rolled_back,
        // A table nobody applied here (a foreign one of that name) has no counters of ours.
        counters: match (&expected, live.as_deref()) {
            (Some(_), Some(live)) => counters(live),
            _ => Vec::new(),
        },
        stale: stale::report(state_root, state.path()),
    };
    if let Some(a) = &interrupted {
        report.status = Status::Interrupted;
        report.problems.push(format!(
            "the apply started at {} (pid {}) did not finish: its process died between its first change and its \
             record, so the table and sysctls may be half-changed; what it replaced is saved in {} — \
             `loopwarden harden --apply` puts that back and applies again, `loopwarden harden --remove` puts it back \
             and takes everything away",
            a.at,
            a.pid,
            state.path().display()
        ));
        return Ok(report);
    }
    if let Some(p) = &pending {
        window_problem(p, &mut report);
    }
    let Some((table, sysctls)) = expected else {
        report.status = Status::NotApplied;
        report.problems.push(
            "nothing was applied in this network namespace (no record under /run/loopwarden/harden, no persistent copy)"
                .into(),
        );
        return Ok(report);
    };
    let worse = |report: &mut CheckReport, status: Status, problem: String| {
        if report.status == Status::Intact {
            report.status = status;
        }
        report.problems.push(problem);
    };
    match &live {
        None => worse(
            &mut report,
            Status::Missing,
            "table inet loopwarden is gone: a `flush ruleset` removes it (Debian's /etc/nftables.conf starts with one, \
             so a reload of nftables.service does); `loopwarden harden --apply` puts it back, `--persist` keeps it"
                .into(),
        ),
        Some(live) => {
            let (want, got) = (normalized(&table), normalized(live));
            if want != got {
                for problem in differences(&want, &got) {
                    worse(&mut report, Status::Drifted, problem);
                }
            }
        }
    }
    for (key, value) in &sysctls {
        if let Some(problem) = sysctl_problem(key, value) {
            worse(&mut report, Status::Drifted, problem);
        }
    }
    if from_record {
        for problem in persisted_problems(persist_root, &table, &sysctls)? {
            worse(&mut report, Status::Drifted, problem);
        }
    }
    Ok(report)
}

/// Adds to `report` the sysctls a new plan for this namespace would still change — a value set
/// back that harden did not have to write, or an interface added since the apply that inherited
/// `route_localnet=1` — unless nothing was applied or a key is already said.
pub fn add_plan_drift(report: &mut CheckReport, plan: &crate::plan::Plan) {
    if !matches!(report.status, Status::Intact | Status::Drifted) {
        return;
    }
    for c in &plan.sysctls {
        let key = c.key.to_string();
        // The plan's `from` may be the value before the first apply: the live value decides.
        let live = match sysctl::read(&c.key) {
            Ok(live) if live == c.to => continue,
            Ok(live) => live,
            Err(e) => e.to_string(),
        };
        if report.problems.iter().any(|p| p.starts_with(&format!("{key} is"))) {
            continue;
        }
        report.problems.push(format!(
            "{key} is {live}: a new plan sets {} ({}) — an interface added since the apply, or a value changed; \
             `loopwarden harden --apply` sets it",
            c.to, c.why
        ));
        report.status = Status::Drifted;
    }
}

/// How the persistent copy this namespace installed under `root` differs from what is applied:
/// the next boot or nftables reload brings the copy back, not the live table.
fn persisted_problems(root: &Path, table: &[Value], sysctls: &[(SysctlKey, String)]) -> Result<Vec<String>, ActError> {
    if persist::ours(root)?.is_err() {
        return Ok(Vec::new());
    }
    let Some(kept) = persist::expected(root)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let shown = root.join(persist::TABLE_FILE);
    if normalized(&kept.table) != normalized(table) {
        out.push(format!(
            "the persistent copy {} is not the applied table: the next boot or nftables reload brings it back \
             instead — `loopwarden harden --apply` rewrites it",
            shown.display()
        ));
    }
    for missing in persist::missing_unit(root) {
        out.push(format!(
            "{} is missing: at the next boot or nftables reload the persistent copy is not loaded — \
             `loopwarden harden --apply --persist` installs it again",
            missing.display()
        ));
    }
    let mut want = sysctls.to_vec();
    let mut got = kept.sysctls;
    want.sort();
    got.sort();
    if want != got {
        out.push(format!(
            "the persistent copy's sysctls ({}) are not those applied: at the next boot they differ — \
             `loopwarden harden --apply` rewrites them",
            root.join(persist::SYSCTL_FILE).display()
        ));
    }
    Ok(out)
}

/// A confirmation window whose watchdog is gone, or that outlived its deadline: nothing will
/// roll it back.
fn window_problem(p: &Pending, report: &mut CheckReport) {
    if !rollback::watchdog_alive(p) {
        report.status = Status::Unwatched;
        report.problems.push(rollback::unwatched_advice(p));
    } else if clock::now_ms() > p.deadline_ms + ROLLBACK_GRACE_MS {
        report.status = Status::Unwatched;
        report.problems.push(format!(
            "the confirmation window closed at {} and its watchdog (pid {:?}) has not rolled back: \
             `loopwarden harden --confirm` rolls back now",
            p.deadline, p.watchdog
        ));
    }
}

fn sysctl_problem(key: &SysctlKey, value: &str) -> Option<String> {
    match sysctl::read(key) {
        Ok(now) if now == value => None,
        Ok(now) => Some(format!("{key} is {now}, not {value} as harden set it")),
        // An interface that went away takes its key with it: nothing to enforce there.
        Err(_) if key.per_interface() && !key.proc_path().exists() => None,
        Err(e) => Some(format!("{key}: {e}")),
    }
}

/// Lines only one side has.
fn differences(want: &[String], got: &[String]) -> Vec<String> {
    let mut out: Vec<String> = want
        .iter()
        .filter(|w| !got.contains(w))
        .map(|w| format!("missing from the live table: {w}"))
        .collect();
    out.extend(
        got.iter()
            .filter(|g| !want.contains(g))
            .map(|g| format!("in the live table but not planned: {g}")),
    );
    if out.is_empty() {
        out.push("the live table has the planned rules in another order".into());
    }
    out
}

/// The table's counters, as `loopwarden audit` reports them.
fn counters(live: &[Value]) -> Vec<String> {
    let facts = FirewallFacts {
        nft_json: Some(serde_json::json!({ "nftables": live })),
        nft_text: None,
        iptables: Vec::new(),
    };
    loopwarden_core::spoof_drops::read(&facts)
        .map(|d| [d.evidence(false), d.evidence(true)].concat())
        .unwrap_or_default()
}
