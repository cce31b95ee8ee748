//! Times, in process, what the firewall analysis adds to an audit of a snapshot: the audit of
//! the snapshot as saved, against the audit of the same snapshot with its firewall capture
//! removed (snapshot loading is outside both). Used by `bench/firewall.sh`.
//!
//! Usage: `firewall_timing SNAPSHOT [RUNS]`

use loopwarden_core::HostFacts;
use std::time::Instant;

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn time_audits(facts: &HostFacts, runs: usize) -> f64 {
    let samples = (0..runs + 1)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(loopwarden_core::audit(facts));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .skip(1)
        .collect();
    median_ms(samples)
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: firewall_timing SNAPSHOT [RUNS]")?;
    let runs: usize = args
        .next()
        .map(|r| r.parse().map_err(|_| format!("RUNS is not a number: {r}")))
        .transpose()?
        .unwrap_or(15);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let facts = HostFacts::from_json(&text).map_err(|e| format!("{path}: {e}"))?;
    let mut without = facts.clone();
    without.firewall = Default::default();
    let with_ms = time_audits(&facts, runs);
    let without_ms = time_audits(&without, runs);
    let rules = loopwarden_core::firewall::read(&facts.firewall).rule_count();
    println!(
        "in-process audit, {rules} rules: median {with_ms:.1} ms; without the firewall capture: {without_ms:.1} ms"
    );
    println!(
        "firewall analysis adds (median): {:.1} ms  (target < 50 ms)",
        with_ms - without_ms
    );
    Ok(())
}
