//! The verbs over every network namespace (`--all-netns`): `facts` writes one multi-namespace
//! snapshot, `audit` one whole-host report (each namespace's audit, probed inside that namespace
//! and proven in a lab of its own when asked, plus the whole-host checks), `prove` one lab run
//! per namespace that has an interface beyond `lo`.

use super::format::{Clock, Format, Output};
use super::output;
use super::progress::Progress;
use anyhow::Context;
use loopwarden_core::facts::{HostFactsSet, NamespaceFacts};
use loopwarden_core::report::prometheus::Family;
use loopwarden_core::report::{host_human, prometheus_set, Finding, HostReport, NamespaceReport, Report, Severity};
use loopwarden_lab::{ProofReport, ProveOptions};
use serde::Serialize;
use std::path::Path;

/// The schema tag of `prove --all-netns --json`.
pub const HOST_PROOF_SCHEMA: &str = "loopwarden.host-proof/v1";

/// Reads a multi-namespace snapshot (`facts --all-netns --out FILE`; `-`: standard input), naming
/// the file in every error. Hostile input: only parsed, bounded in size (a host's namespaces
/// together may hold several single snapshots' worth of firewall dumps).
pub fn load(path: &Path) -> anyhow::Result<HostFactsSet> {
    use std::io::Read;
    let limit = super::snapshot::limit(super::snapshot::DEFAULT_MAX_SET_MIB)?;
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("cannot read snapshot {}", path.display()))?)
    };
    let mut text = String::new();
    reader
        .take(limit + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read snapshot {}", path.display()))?;
    if text.len() as u64 > limit {
        return Err(super::snapshot::too_large(&path.display().to_string(), None, limit));
    }
    HostFactsSet::from_json(&text).with_context(|| format!("snapshot {} is not usable", path.display()))
}

/// What `audit --all-netns` was asked to add to the static audit.
pub struct AuditOptions {
    /// `--probe`, with its options.
    pub probe: Option<loopwarden_probe::ProbeOptions>,
    /// `--prove`.
    pub prove: bool,
    /// `--fail-on`: `None` for `never`.
    pub fail_on: Option<Severity>,
}

/// `audit --all-netns`: writes the whole-host report (human, JSON, HTML or metrics) and returns
/// the exit status.
pub fn audit(
    set: &HostFactsSet,
    opts: &AuditOptions,
    out: &Output,
    progress: &Progress,
    clock: &Clock,
) -> anyhow::Result<u8> {
    progress.step(&format!("auditing {} network namespaces", set.namespaces.len()));
    let mut reports: Vec<Report> = set
        .namespaces
        .iter()
        .map(|n| loopwarden_core::audit(&n.facts))
        .collect();
    if let Some(probe) = &opts.probe {
        progress.step("probing the listeners of every namespace, from inside each");
        for (report, findings) in reports.iter_mut().zip(probe_each(set, probe)?) {
            report.merge_active(findings);
        }
    }
    if opts.prove {
        let total = set.namespaces.len();
        for (i, (n, report)) in set.namespaces.iter().zip(reports.iter_mut()).enumerate() {
            progress.count(&format!("lab for {}; namespaces", n.namespace.label()), i, total);
            with_lab(n, report, prove_one(n, progress)?.as_ref());
        }
    }
    progress.clear();
    let report = loopwarden_core::audit_host::host_report(set, reports);
    emit_host(set, &report, out, clock, &|_| Vec::new())?;
    Ok(if opts.fail_on.is_some_and(|threshold| report.fails(threshold)) {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
}

/// Merges a namespace's lab run into its report (the attacks' outcomes as proven paths), or says
/// why it had none.
fn with_lab(n: &NamespaceFacts, report: &mut Report, lab: Option<&ProofReport>) {
    match lab {
        Some(lab) => {
            report.merge_active(lab.findings(&n.facts));
            report.host.limits.extend(lab.limits());
        }
        None => report.host.limits.push(no_lab(n)),
    }
}

/// Writes a whole-host report in the chosen format; the metrics carry each namespace's harden
/// drop counters and whatever `extra` adds for it.
fn emit_host(
    set: &HostFactsSet,
    report: &HostReport,
    out: &Output,
    clock: &Clock,
    extra: &dyn Fn(&NamespaceReport) -> Vec<Family>,
) -> anyhow::Result<()> {
    let text = match out.format() {
        Format::Json => output::to_json(report, "whole-host report")?,
        Format::Html => loopwarden_core::report::html::render_host(report),
        Format::Prometheus => prometheus_set::render_host(report, clock.run_info(), &|n| {
            let mut families = set
                .namespace(n.namespace.inode)
                .map(|f| loopwarden_core::spoof_drops::metrics(&f.facts))
                .unwrap_or_default();
            families.extend(extra(n));
            families
        }),
        Format::Human => host_human::render(report, out.color()),
    };
    out.emit(&text)
}

/// Probes every namespace from inside it (each on a thread that entered it); a namespace that
/// could not be entered again keeps its static findings and says so.
fn probe_each(set: &HostFactsSet, opts: &loopwarden_probe::ProbeOptions) -> anyhow::Result<Vec<Vec<Finding>>> {
    let inodes: Vec<u64> = set.namespaces.iter().map(|n| n.namespace.inode).collect();
    let facts_of = |inode: u64| set.namespace(inode).map(|n| &n.facts);
    let results = loopwarden_core::collect::netns::in_each(&inodes, 2, &|inode| match facts_of(inode) {
        Some(facts) => loopwarden_probe::probe(facts, opts, &|_, _| {})
            .map(|probed| probed.findings)
            .map_err(|e| e.to_string()),
        None => Ok(Vec::new()),
    });
    let mut out = Vec::new();
    for (n, result) in set.namespaces.iter().zip(results) {
        match result {
            Ok(Ok(findings)) => out.push(findings),
            Ok(Err(e)) => anyhow::bail!("probing {} ({}) failed: {e}", n.namespace.id, n.namespace.label()),
            Err(e) => {
                let label = loopwarden_core::report::shown::line(&n.namespace.label()).into_owned();
                eprintln!("loopwarden: {} ({label}) not probed: {}", n.namespace.id, e.why);
                out.push(Vec::new());
            }
        }
    }
    Ok(out)
}

/// The lab for one namespace; `None` when it has no interface beyond `lo` (no LAN attack to
/// replay: nothing reaches it from outside).
fn prove_one(n: &NamespaceFacts, progress: &Progress) -> anyhow::Result<Option<ProofReport>> {
    if !n.facts.interfaces.iter().any(|i| !i.loopback) {
        return Ok(None);
    }
    let opts = ProveOptions {
        source: format!("namespace {} ({})", n.namespace.id, n.namespace.label()),
        progress: Some(Box::new(progress.reporter("lab"))),
        ..ProveOptions::default()
    };
    loopwarden_lab::prove(&n.facts, &opts)
        .map(Some)
        .with_context(|| format!("the proof lab failed for {} ({})", n.namespace.id, n.namespace.label()))
}

/// The limit a namespace without a lab run carries.
fn no_lab(n: &NamespaceFacts) -> String {
    format!(
        "lab: not run for {}: it has no interface beyond lo, so no LAN attack reaches it",
        n.namespace.id
    )
}

/// One namespace's lab run in `prove --all-netns --json`.
#[derive(Serialize)]
struct NamespaceProof<'a> {
    namespace: &'a loopwarden_core::facts::NamespaceIdentity,
    /// The attack matrix (`loopwarden.proof/v1`), or `null` when no lab was run.
    proof: Option<ProofReport>,
    /// Why no lab was run.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
}

/// `prove --all-netns --json`.
#[derive(Serialize)]
struct HostProof<'a> {
    schema: &'static str,
    hostname: &'a str,
    namespaces: &'a [NamespaceProof<'a>],
}

/// `prove --all-netns`: one lab per namespace with an interface beyond `lo`; writes every
/// matrix (human or JSON), or the whole-host report with the labs' outcomes (HTML, metrics), and
/// returns the exit status (2 when any lab's controls failed, 1 when an attack got through or an
/// outcome is uncertain anywhere).
pub fn prove(set: &HostFactsSet, out: &Output, progress: &Progress, clock: &Clock) -> anyhow::Result<u8> {
    let format = out.format();
    let mut proofs = Vec::new();
    let total = set.namespaces.len();
    for (i, n) in set.namespaces.iter().enumerate() {
        progress.count(&format!("lab for {}; namespaces", n.namespace.label()), i, total);
        let proof = prove_one(n, progress)?;
        let skipped = proof.is_none().then(|| no_lab(n));
        proofs.push(NamespaceProof {
            namespace: &n.namespace,
            proof,
            skipped,
        });
    }
    progress.clear();
    if matches!(format, Format::Html | Format::Prometheus) {
        let mut reports: Vec<Report> = set
            .namespaces
            .iter()
            .map(|n| loopwarden_core::audit(&n.facts))
            .collect();
        for ((n, report), p) in set.namespaces.iter().zip(reports.iter_mut()).zip(&proofs) {
            with_lab(n, report, p.proof.as_ref());
        }
        let host = loopwarden_core::audit_host::host_report(set, reports);
        let attacks = |n: &NamespaceReport| {
            proofs
                .iter()
                .find(|p| p.namespace.inode == n.namespace.inode)
                .and_then(|p| p.proof.as_ref())
                .map(|lab| vec![loopwarden_lab::render::attacks_metric(lab)])
                .unwrap_or_default()
        };
        emit_host(set, &host, out, clock, &attacks)?;
    } else {
        emit_proofs(set, &proofs, out)?;
    }
    let labs: Vec<&ProofReport> = proofs.iter().filter_map(|p| p.proof.as_ref()).collect();
    if labs.iter().any(|r| !r.controls_passed) {
        return Ok(super::EXIT_ERROR);
    }
    Ok(if labs.iter().any(|r| r.breached_or_uncertain()) {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
}

/// Writes every namespace's attack matrix, human or JSON (loopwarden.host-proof/v1).
fn emit_proofs(set: &HostFactsSet, proofs: &[NamespaceProof], out: &Output) -> anyhow::Result<()> {
    let text = if out.format() == Format::Json {
        output::to_json(
            &HostProof {
                schema: HOST_PROOF_SCHEMA,
                hostname: &set.hostname,
                namespaces: proofs,
            },
            "proofs",
        )?
    } else {
        let mut text = String::new();
        for p in proofs {
            let label = loopwarden_core::report::shown::line(&p.namespace.label()).into_owned();
            text.push_str(&format!("══ {label} — {}\n", p.namespace.id));
            match (&p.proof, &p.skipped) {
                (Some(proof), _) => text.push_str(&loopwarden_lab::render::human(proof, out.color())),
                (None, Some(why)) => text.push_str(why),
                (None, None) => {}
            }
            text.push_str("\n\n");
        }
        text
    };
    out.emit(text.trim_end())
}
