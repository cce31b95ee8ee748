//! `harden --all-netns`: the harden table for every network namespace that needs it. Every
//! namespace is collected and planned (pure, verified with the firewall evaluator as always);
//! those with an interface beyond `lo` whose plan closes an open finding or changes a sysctl are
//! printed and, with `--apply`,
//! applied by a thread that entered the namespace — each namespace gets its own table, its own
//! state directory (keyed by its cookie) and its own rollback watchdog. `--check`, `--confirm`
//! and `--remove` visit every namespace and act where `--apply` left a record.

use super::netns_args::collect_all;
use super::output;
use super::progress::Progress;
use loopwarden_core::facts::{NamespaceFacts, NamespaceIdentity};
use loopwarden_harden::apply::{self, ApplyOptions};
use loopwarden_harden::plan::findings::Outcome;
use loopwarden_harden::plan::{self, Options, Plan};
use loopwarden_harden::render::{human, json, outcome};
use loopwarden_harden::{check, in_force, remove, rollback, state, ActError};
use serde::Serialize;
use std::path::PathBuf;

/// What `harden --all-netns` does in each namespace.
pub enum Action {
    /// Print the plans.
    Plan,
    /// Apply where needed.
    Apply(ApplyOptions),
    /// Confirm pending applies.
    Confirm,
    /// Check what was applied (`--root` for the persistent copy).
    Check(PathBuf),
    /// Remove what was applied (`--root` for the persistent copy; `--force` for a foreign table).
    Remove(PathBuf, bool),
}

/// One namespace's part of the output.
#[derive(Serialize)]
struct Part {
    namespace: NamespaceIdentity,
    /// What was done or found, for people.
    #[serde(skip)]
    text: String,
    /// The same as JSON (`loopwarden.harden/v1` for a plan).
    result: serde_json::Value,
    /// Whether it counts against the exit status (`--check`: missing or drifted).
    #[serde(skip)]
    failed: bool,
}

/// `harden --all-netns` (see the module documentation): returns the exit status.
pub fn run(action: Action, options: &Options, as_json: bool) -> anyhow::Result<u8> {
    loopwarden_harden::require_root("hardening every network namespace")?;
    let progress = Progress::new();
    let set = collect_all(&progress);
    progress.clear();
    let mut parts = Vec::new();
    for n in &set.namespaces {
        let part = match &action {
            Action::Plan | Action::Apply(_) => plan_part(n, options, &action)?,
            Action::Confirm | Action::Check(_) | Action::Remove(..) => recorded_part(n, &action)?,
        };
        parts.extend(part);
    }
    if as_json {
        #[derive(Serialize)]
        struct All<'a> {
            schema: &'static str,
            namespaces: &'a [Part],
        }
        let doc = All {
            schema: "loopwarden.harden-all/v1",
            namespaces: &parts,
        };
        output::print(&json::serialize(&doc))?;
    } else {
        let mut text = String::new();
        for p in &parts {
            text.push_str(&format!(
                "══ {} — {}\n{}\n\n",
                loopwarden_core::report::shown::line(&p.namespace.label()),
                p.namespace.id,
                p.text.trim_end()
            ));
        }
        if parts.is_empty() {
            text.push_str(match action {
                Action::Plan | Action::Apply(_) => "no network namespace has an open path harden closes",
                _ => "no network namespace has anything `harden --apply` recorded",
            });
        } else {
            text.push_str(&summary(
                &action,
                parts.len(),
                set.namespaces.len(),
                parts.iter().filter(|p| p.failed).count(),
            ));
        }
        output::print(text.trim_end())?;
    }
    Ok(if parts.iter().any(|p| p.failed) {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
}

/// The last line: in how many of the namespaces seen the action was taken, and how many failed.
fn summary(action: &Action, acted: usize, seen: usize, failed: usize) -> String {
    let (verb, others) = match action {
        Action::Plan => ("planned for", "needed nothing"),
        Action::Apply(_) => ("applied in", "needed nothing"),
        Action::Confirm => ("confirmed in", "had nothing recorded"),
        Action::Check(_) => ("checked in", "had nothing recorded"),
        Action::Remove(..) => ("removed from", "had nothing recorded"),
    };
    let rest = seen - acted;
    let failing = match failed {
        0 => String::new(),
        n => format!("; {n} not intact"),
    };
    format!("{verb} {acted} of {seen} network namespace(s); {rest} {others}{failing}")
}

/// Whether namespace `n` needs the plan: something can reach it from outside (an interface
/// beyond `lo`: a namespace with only `lo` gets no packet from anyone until one is added, and is
/// planned again then), and the plan closes an open finding or writes a sysctl.
fn needed(n: &NamespaceFacts, plan: &Plan) -> bool {
    let interfaces = &n.facts.interfaces;
    let reachable = interfaces.iter().any(|i| i.receives_ip(interfaces));
    let closes = plan
        .findings
        .iter()
        .any(|d| matches!(d.outcome, Outcome::Closed { .. }));
    reachable && (closes || !plan.sysctls.is_empty())
}

/// The plan of one namespace, applied inside it with `--apply`; `None` when it needs nothing.
fn plan_part(n: &NamespaceFacts, options: &Options, action: &Action) -> anyhow::Result<Option<Part>> {
    // Each namespace keeps the allows an earlier apply put in force there.
    let root = PathBuf::from(state::DEFAULT_ROOT);
    let carried = inside(n, &|| in_force::carry(options, &root, false))??;
    for line in &carried.said {
        eprintln!(
            "loopwarden harden: {} ({}): {}",
            n.namespace.id,
            loopwarden_core::report::shown::line(&n.namespace.label()),
            loopwarden_core::report::shown::line(line)
        );
    }
    let (plan, report) = plan::for_facts(&n.facts, &carried.options)?;
    if !plan.verified() {
        let failed: Vec<String> = plan.unverified().map(|p| p.failure()).collect();
        return Err(ActError::Unverified(failed).into());
    }
    if !needed(n, &plan) {
        return Ok(None);
    }
    let done = match action {
        Action::Apply(opts) => Some(inside(n, &|| apply::apply(&plan, opts))??),
        _ => None,
    };
    let mut text = human::render(&plan, &report);
    if let Some(done) = &done {
        text.push('\n');
        text.push_str(&outcome::applied(done));
    }
    Ok(Some(Part {
        namespace: n.namespace.clone(),
        text,
        result: serde_json::from_str(&json::render(&plan, &report, done.as_ref()))?,
        failed: false,
    }))
}

/// `--confirm`, `--check` or `--remove` in one namespace, where `--apply` left a record.
fn recorded_part(n: &NamespaceFacts, action: &Action) -> anyhow::Result<Option<Part>> {
    let root = PathBuf::from(state::DEFAULT_ROOT);
    let work = || -> Result<Option<(String, serde_json::Value, bool)>, ActError> {
        if !state::recorded(&root)? {
            return Ok(None);
        }
        let value = |v: serde_json::Result<serde_json::Value>| v.unwrap_or_default();
        Ok(Some(match action {
            Action::Confirm => {
                let done = rollback::confirm(&root)?;
                (outcome::confirmed(&done), value(serde_json::to_value(&done)), false)
            }
            Action::Check(persist_root) => {
                let report = check::check(&root, persist_root)?;
                (
                    outcome::checked(&report),
                    value(serde_json::to_value(&report)),
                    !report.ok(),
                )
            }
            Action::Remove(persist_root, force) => {
                let report = remove::remove(&root, persist_root, *force)?;
                (outcome::removed(&report), value(serde_json::to_value(&report)), false)
            }
            Action::Plan | Action::Apply(_) => return Ok(None),
        }))
    };
    Ok(inside(n, &work)??.map(|(text, result, failed)| Part {
        namespace: n.namespace.clone(),
        text,
        result,
        failed,
    }))
}

/// Runs `work` on a thread inside namespace `n`.
fn inside<R: Send>(n: &NamespaceFacts, work: &(dyn Fn() -> R + Sync)) -> anyhow::Result<R> {
    let mut results = loopwarden_core::collect::netns::in_each(&[n.namespace.inode], 1, &|_| work());
    match results.pop() {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(anyhow::anyhow!("{} ({}): {e}", n.namespace.id, n.namespace.label())),
        None => Err(anyhow::anyhow!(
            "{} ({}): nothing ran",
            n.namespace.id,
            n.namespace.label()
        )),
    }
}
