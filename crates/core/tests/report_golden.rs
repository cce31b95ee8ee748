//! Golden reports: the whole audit of each real captured snapshot, rendered exactly as `loopwarden
//! audit --facts FILE` prints it — `loopwarden.report/v1` JSON and the human report without
//! colour. The audit is pure, so both must be byte-stable: any change to a check, a reader or a
//! rendering shows up here as a diff to review.
//!
//! After an intended change, review and accept the new output with `cargo insta review`, or
//! rewrite the snapshots with `INSTA_UPDATE=always cargo test -p loopwarden-core --test
//! report_golden` and read the diff before committing it.

use loopwarden_core::report::{human, json};
use loopwarden_core::{audit, HostFacts};

/// The audit of a fixture snapshot, parsed from its JSON as `--facts` would.
fn report(text: &str, name: &str) -> loopwarden_core::Report {
    let facts = HostFacts::from_json(text).unwrap_or_else(|e| panic!("fixture {name} does not parse: {e}"));
    audit(&facts)
}

/// `fixtures/facts/capture.sh`: every listener kind (TCP/UDP, v4/v6, wildcard/loopback, Unix
/// path and abstract) in one namespace.
const EVERY_LISTENER_KIND: &str = include_str!("fixtures/facts/namespace-every-listener-kind.json");

/// `fixtures/relays/capture.sh`: sshd, nginx, HAProxy, Caddy, Apache and socat/ncat forwarders,
/// each once open and once configured safely.
const RELAYS: &str = include_str!("fixtures/relays/namespace-relays.json");

#[test]
fn every_listener_kind_json() {
    insta::assert_snapshot!(
        json::render(&report(EVERY_LISTENER_KIND, "every-listener-kind")).expect("a report serialises")
    );
}

#[test]
fn every_listener_kind_human() {
    insta::assert_snapshot!(human::render(
        &report(EVERY_LISTENER_KIND, "every-listener-kind"),
        false
    ));
}

#[test]
fn relays_json() {
    insta::assert_snapshot!(json::render(&report(RELAYS, "relays")).expect("a report serialises"));
}

#[test]
fn relays_human() {
    insta::assert_snapshot!(human::render(&report(RELAYS, "relays"), false));
}
