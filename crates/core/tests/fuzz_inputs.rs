//! The fuzzing harness: real captured inputs — snapshots of every listener kind and of real
//! relays, and snapshots carrying real captured rulesets (Docker, kube-proxy, ufw, owner
//! matches, native nft NAT) — mutated the ways hostile input is made: cut anywhere, a value
//! swapped for one of the wrong type, a huge number, nesting past any limit, a huge string,
//! control characters and terminal escapes, bytes that are not UTF-8, text edited inside the
//! captured rule dumps and daemon configurations. Loading, auditing and rendering must never
//! panic; a rendered line never carries a control character; what loads is audited in bounded
//! time. `tests/fuzz_cli.rs` runs a fixed corpus of the same through the binary.
//!
//! Run longer with `PROPTEST_CASES=5000 cargo test -p loopwarden-core --test fuzz_inputs`.

use loopwarden_core::facts::{FirewallFacts, IptablesDump, IptablesFamily};
use loopwarden_core::readers::{
    apache::ApacheConfig, caddy::CaddyConfig, endpoint, forwarder_argv, haproxy::HaproxyConfig, hosts::HostsFile,
    nginx::NginxConfig, nsswitch::HostsLookup, sshd::SshdConfig,
};
use loopwarden_core::report::{human, json};
use loopwarden_core::{audit, HostFacts};
use proptest::prelude::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The most a snapshot may be, as the CLI reads it.
const LIMIT: u64 = 256 * 1024 * 1024;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The captured rulesets mixed into the listener snapshot as seeds.
const RULESETS: &[&str] = &[
    "kube-proxy-firewall",
    "docker-28-loopback-publish",
    "ufw-stock",
    "owner-match-nft",
    "owner-match-iptables",
    "nft-native-nat-to-loopback",
    "ecs-agent-dnat-to-loopback",
];

/// The seeds, as JSON values: the two captured snapshots, and the listener snapshot with each
/// captured ruleset in place of its (empty) firewall.
fn seeds() -> &'static Vec<Value> {
    static SEEDS: OnceLock<Vec<Value>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let snapshot = |name: &str| -> HostFacts {
            HostFacts::from_json(&read(root().join("tests/fixtures").join(name))).expect("a fixture snapshot")
        };
        let listeners = snapshot("facts/namespace-every-listener-kind.json");
        let mut out = vec![
            serde_json::to_value(&listeners).expect("json"),
            serde_json::to_value(snapshot("relays/namespace-relays.json")).expect("json"),
        ];
        for name in RULESETS {
            let dir = root().join("../../fixtures/firewall").join(name);
            let text = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            let mut facts = listeners.clone();
            facts.firewall = FirewallFacts {
                nft_json: text("ruleset.json").and_then(|t| serde_json::from_str(&t).ok()),
                nft_text: text("ruleset.nft"),
                iptables: [
                    ("iptables-save.txt", IptablesFamily::Ipv4),
                    ("ip6tables-save.txt", IptablesFamily::Ipv6),
                ]
                .into_iter()
                .filter_map(|(f, family)| {
                    Some(IptablesDump {
                        family,
                        backend: "nft".into(),
                        text: text(f)?,
                    })
                })
                .collect(),
            };
            out.push(serde_json::to_value(&facts).expect("json"));
        }
        out
    })
}

/// Values hostile input puts where another was expected.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!(f64::MAX)),
        Just(serde_json::json!(-0.0)),
        Just(serde_json::json!(4294967296u64)),
        Just(serde_json::json!(65536)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!({})),
        Just(serde_json::json!([])),
        "[a-z0-9:./@*-]{0,12}".prop_map(Value::String),
        Just(Value::String(
            "\u{1b}[2J\u{1b}[8m\n  CRITICAL forged\r\u{202e}\u{0}\u{7f}\u{9b}".into()
        )),
        (1usize..300_000).prop_map(|n| Value::String("x".repeat(n))),
        // Nested past serde_json's recursion limit (128), and just under it.
        (100usize..160).prop_map(nested),
    ]
}

/// `depth` arrays inside one another around a string.
fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::String("deep".into()), |v, _| Value::Array(vec![v]))
}

/// Snippets written into captured text (rule dumps, daemon configurations, command lines).
fn hostile_snippet() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n-A INPUT -i lo -j ACCEPT\n-A INPUT -d 127.0.0.0/8 -j DROP\nCOMMIT\n".to_string()),
        Just("\n*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DNAT --to-destination 127.0.0.1:1\n".to_string()),
        Just("server { listen 0.0.0.0:80; location / { proxy_pass http://127.0.0.1:7001; } }".to_string()),
        Just("{".repeat(50_000)),
        Just("}".repeat(1_000)),
        Just("frontend f\n bind :80\n default_backend b\nbackend b\n server s 127.0.0.1:7001\n".to_string()),
        Just("allowtcpforwarding yes\npermitopen any\n".to_string()),
        Just("\"\\\"'\\".to_string()),
        Just("\u{1b}[2J\u{0}\u{202e}\r\n".to_string()),
        (1usize..100_000).prop_map(|n| "A".repeat(n)),
        "[ -~]{0,40}",
    ]
}

/// One way of spoiling a seed.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the `at`-th value (pre-order, modulo the count) with `with`.
    Replace { at: usize, with: Value },
    /// Edit the `at`-th string: keep its first `keep` characters, then write `snippet`.
    Edit { at: usize, keep: usize, snippet: String },
    /// Cut the serialised text at byte `at` (modulo its length).
    Truncate { at: usize },
    /// Insert raw bytes at byte `at`: invalid UTF-8, control bytes, a byte order mark.
    Insert { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), hostile_value()).prop_map(|(at, with)| Mutation::Replace { at, with }),
        3 => (any::<usize>(), any::<usize>(), hostile_snippet())
            .prop_map(|(at, keep, snippet)| Mutation::Edit { at, keep, snippet }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => (
            any::<usize>(),
            prop::sample::select(vec![
                vec![0xFFu8],
                vec![0xC3],
                vec![0xED, 0xA0, 0x80],
                vec![0],
                vec![0x1B, b'['],
                vec![0xEF, 0xBB, 0xBF],
            ])
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

/// Visits every value of `v` in pre-order; `f` gets each one with its pre-order index.
fn visit(v: &mut Value, next: &mut usize, f: &mut dyn FnMut(usize, &mut Value)) {
    f(*next, v);
    *next += 1;
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| visit(i, next, f)),
        Value::Object(map) => map.values_mut().for_each(|i| visit(i, next, f)),
        _ => {}
    }
}

fn count(v: &mut Value, pred: fn(&Value) -> bool) -> usize {
    let mut n = 0;
    visit(v, &mut 0, &mut |_, x| n += usize::from(pred(x)));
    n
}

/// The seed with the mutation applied, as the bytes a snapshot file would hold.
fn spoil(seed: &Value, m: &Mutation) -> Vec<u8> {
    let mut v = seed.clone();
    match m {
        Mutation::Replace { at, with } => {
            let target = at % count(&mut v, |_| true);
            visit(&mut v, &mut 0, &mut |i, x| {
                if i == target {
                    *x = with.clone();
                }
            });
        }
        Mutation::Edit { at, keep, snippet } => {
            let strings = count(&mut v, Value::is_string).max(1);
            let target = at % strings;
            let mut seen = 0;
            visit(&mut v, &mut 0, &mut |_, x| {
                if let Value::String(s) = x {
                    if seen == target {
                        let cut: String = s.chars().take(keep % (s.chars().count() + 1)).collect();
                        *s = cut + snippet;
                    }
                    seen += 1;
                }
            });
        }
        Mutation::Truncate { .. } | Mutation::Insert { .. } => {}
    }
    let mut bytes = serde_json::to_vec(&v).expect("a value serialises");
    match m {
        Mutation::Truncate { at } => bytes.truncate(at % (bytes.len() + 1)),
        Mutation::Insert { at, bytes: b } => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        _ => {}
    }
    bytes
}

/// Loads `bytes` as the CLI does; what loads is audited and rendered both ways, and no rendered
/// line may carry a control character.
fn load_audit_render(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(facts) = HostFacts::read(bytes, LIMIT) else {
        return Ok(());
    };
    let report = audit(&facts);
    let text = human::render(&report, false);
    prop_assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached the human report"
    );
    prop_assert!(json::render(&report).is_ok());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Snapshots, and through them nft JSON, iptables-save text and every captured daemon
    /// configuration, mutated: loading and auditing never panic.
    #[test]
    fn mutated_snapshots_never_panic(seed in 0..RULESETS.len() + 2, m in mutation()) {
        let bytes = spoil(&seeds()[seed], &m);
        load_audit_render(&bytes)?;
    }

    /// Two mutations at once: a value of the wrong type beside edited rule text.
    #[test]
    fn doubly_mutated_snapshots_never_panic(seed in 0..RULESETS.len() + 2, a in mutation(), b in mutation()) {
        let once = spoil(&seeds()[seed], &a);
        if let Ok(v) = serde_json::from_slice::<Value>(&once) {
            load_audit_render(&spoil(&v, &b))?;
        }
    }

    /// Each configuration reader takes any text.
    #[test]
    fn readers_take_any_text(text in prop_oneof![any::<String>(), hostile_snippet(), "[ -~\n\t{};#\"']{0,400}"]) {
        let _ = NginxConfig::parse(&text);
        let _ = HaproxyConfig::parse(&text);
        let _ = CaddyConfig::parse(&text);
        let _ = ApacheConfig::parse(&[("/etc/apache2/apache2.conf", text.as_str())]);
        let _ = SshdConfig::parse(&text);
        let _ = HostsFile::parse(&text);
        let _ = HostsLookup::parse(Some(&text));
        let argv: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let _ = forwarder_argv::forwards(&argv);
        let _ = endpoint::split_host_port(&text);
        let _ = endpoint::is_loopback_host(&text);
    }
}

/// Deep nesting in the text readers (nginx blocks, Apache containers) and a huge file name in
/// nginx's markers: no stack overflow, no copy of the name per directive.
#[test]
fn deep_and_huge_configuration_text_is_read_in_bounded_time_and_space() {
    let deep = format!("http {{{}}}", "server { ".repeat(200_000));
    let _ = NginxConfig::parse(&deep);
    let apache = "<VirtualHost *:80>\n".repeat(200_000);
    let _ = ApacheConfig::parse(&[("/etc/apache2/apache2.conf", apache.as_str())]);
    let name = "n".repeat(8 * 1024 * 1024);
    let many = format!("# configuration file {name}:\n{}", "a;".repeat(200_000));
    let started = std::time::Instant::now();
    let config = NginxConfig::parse(&many);
    assert_eq!(config.directives.len(), 200_000);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
