//! A corpus of hostile snapshots through the binary: cut short, nested past any limit, numbers
//! too large for their field, a 50 MB process name, terminal escapes in every kind of string,
//! bytes that are not UTF-8, wrong types, a file over the size limit. Each run must end with
//! exit status 0, 1 or 2 (never a panic, an abort or a signal), within seconds, inside a 1 GiB
//! address-space limit, with output proportional to the snapshot's services, not to its
//! strings. The property tests in `crates/core/tests/fuzz_inputs.rs` mutate the same inputs at
//! random in process.

mod common;

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/core/tests/fixtures/facts/namespace-every-listener-kind.json"
);

/// The address space a run may use: far above a real audit's needs.
const ADDRESS_SPACE: u64 = 1024 * 1024 * 1024;

/// Runs `loopwarden ARGS` under the address-space limit, bounded in time.
fn run_bounded(args: &[&str]) -> Output {
    let mut cmd = Command::new(common::loopwarden());
    cmd.args(args);
    // SAFETY: setrlimit is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    common::output_within(&mut cmd, Duration::from_secs(30))
}

/// The fixture with `edit` applied to its JSON value.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("fixture")).expect("json");
    edit(&mut v);
    serde_json::to_vec(&v).expect("serialise")
}

/// Every string of `v`, replaced by `f` of it.
fn each_string(v: &mut Value, f: &dyn Fn(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Array(items) => items.iter_mut().for_each(|i| each_string(i, f)),
        Value::Object(map) => map.values_mut().for_each(|i| each_string(i, f)),
        _ => {}
    }
}

/// The corpus: (name, bytes).
fn corpus() -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read(FIXTURE).expect("fixture");
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [1, 2, 10, 100, 1000, text.len() / 3, text.len() / 2, text.len() - 2] {
        out.push((format!("truncated-at-{cut}"), text[..cut].to_vec()));
    }
    let deep = format!(
        "{{\"schema\": \"loopwarden.facts/v1\", \"host\": {}",
        "[".repeat(100_000)
    );
    out.push(("nested-100000".into(), deep.into_bytes()));
    out.push((
        "nested-in-nft-json".into(),
        edited(|v| {
            let deep = (0..120).fold(serde_json::json!({"rule": {"expr": []}}), |v, _| serde_json::json!([v]));
            v["firewall"]["nft_json"] = serde_json::json!({"nftables": [deep]});
        }),
    ));
    let huge_number = String::from_utf8(text.clone())
        .expect("utf-8")
        .replacen("\"port\": 7001", "\"port\": 1e400", 1);
    out.push(("huge-number".into(), huge_number.into_bytes()));
    for (name, value) in [
        ("pid-too-large", serde_json::json!(u64::MAX)),
        ("negative-pid", serde_json::json!(-1)),
        ("pid-a-string", serde_json::json!("1")),
    ] {
        out.push((name.into(), edited(|v| v["processes"][0]["pid"] = value)));
    }
    out.push(("host-a-number".into(), edited(|v| v["host"] = serde_json::json!(3))));
    out.push((
        "sockets-an-object".into(),
        edited(|v| v["inet_sockets"] = serde_json::json!({})),
    ));
    out.push((
        "process-name-50MB".into(),
        edited(|v| v["processes"][0]["name"] = Value::String("\u{1b}[2J".repeat(12 * 1024 * 1024))),
    ));
    out.push((
        "escapes-everywhere".into(),
        edited(|v| each_string(v, &|s| format!("{s}\u{1b}[8m\n  CRITICAL forged\r\u{202e}\u{9b}2J"))),
    ));
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(&text);
    out.push(("byte-order-mark".into(), bom));
    let mut latin1 = text.clone();
    latin1.insert(text.len() / 2, 0xE9);
    out.push(("invalid-utf8".into(), latin1));
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.iter().flat_map(|&b| [b, 0]))
        .collect();
    out.push(("utf16".into(), utf16));
    out.push(("nul-bytes".into(), vec![0; 4096]));
    out
}

fn check(name: &str, args: &[&str]) -> Output {
    let out = run_bounded(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "{name}: exit {:?} (a signal or abort means a crash)\n{err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert!(err.len() < 64 * 1024, "{name}: {} bytes on stderr", err.len());
    assert!(!out.stderr.contains(&0x1b), "{name}: an escape on stderr");
    out
}

#[test]
fn hostile_snapshots_end_in_0_1_or_2_with_bounded_output() {
    let tmp = common::TempDir::new("fuzz-cli");
    for (name, bytes) in corpus() {
        let path = tmp.path().join(format!("{name}.json"));
        std::fs::write(&path, &bytes).expect("write corpus file");
        let path = path.to_str().expect("utf-8 path");
        let human = check(&name, &["audit", "--facts", path]);
        assert!(!human.stdout.contains(&0x1b), "{name}: an escape in the report");
        // The fixture's 11 services, whatever the size of its strings.
        assert!(
            human.stdout.len() < 512 * 1024,
            "{name}: {} bytes of report",
            human.stdout.len()
        );
        let json = check(&name, &["audit", "--json", "--facts", path]);
        assert!(
            json.stdout.len() < 512 * 1024,
            "{name}: {} bytes of JSON",
            json.stdout.len()
        );
        if human.status.code() != Some(2) {
            serde_json::from_slice::<Value>(&json.stdout).unwrap_or_else(|e| panic!("{name}: JSON report: {e}"));
        }
    }
}

/// A file over the size limit is refused from its size, before a byte is read.
#[test]
fn a_snapshot_over_the_limit_is_refused_by_its_size() {
    let tmp = common::TempDir::new("fuzz-big");
    let path = tmp.path().join("big.json");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(300 * 1024 * 1024).expect("a sparse 300 MiB file");
    let started = std::time::Instant::now();
    let out = check("big", &["audit", "--facts", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("256 MiB") && err.contains(&*Path::new(&path).to_string_lossy()),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
