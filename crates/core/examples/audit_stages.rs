//! Where an offline audit of a large snapshot spends its time and memory: reading and parsing the
//! snapshot, the checks, and the human rendering, each timed in process, with the peak resident
//! size after each stage (`VmHWM`). Used by `bench/scale.sh` to explain its curve.
//!
//! Usage: `audit_stages SNAPSHOT`

use loopwarden_core::report::human;
use loopwarden_core::HostFacts;
use std::time::Instant;

/// The peak resident set size so far, in MiB (`VmHWM` of `/proc/self/status`).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn stage<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    println!(
        "{name:<10} {:>8.1} ms   peak {:>7.1} MiB",
        t.elapsed().as_secs_f64() * 1000.0,
        peak_mib()
    );
    out
}

fn main() -> Result<(), String> {
    let path = std::env::args().nth(1).ok_or("usage: audit_stages SNAPSHOT")?;
    let text = stage("read", || std::fs::read_to_string(&path)).map_err(|e| format!("cannot read {path}: {e}"))?;
    let facts = stage("parse", || HostFacts::from_json(&text)).map_err(|e| format!("{path}: {e}"))?;
    drop(text);
    let report = stage("audit", || loopwarden_core::audit(&facts));
    let mut sink = std::io::sink();
    stage("render", || human::write(&mut sink, &report, false)).map_err(|e| e.to_string())?;
    println!(
        "{} sockets, {} services, {} findings",
        facts.inet_sockets.len() + facts.unix_sockets.len(),
        report.services.len(),
        report.findings.len()
    );
    Ok(())
}
