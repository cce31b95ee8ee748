//! The whole audit pipeline on a real captured snapshot (`fixtures/facts/capture.sh`): no root and
//! no namespace needed, and the snapshot survives a JSON round trip unchanged.

use loopwarden_core::checks::CheckId;
use loopwarden_core::report::{Severity, Status};
use loopwarden_core::{audit, HostFacts};

fn snapshot() -> HostFacts {
    let text = include_str!("fixtures/facts/namespace-every-listener-kind.json");
    HostFacts::from_json(text).expect("fixture parses")
}

fn ids(report: &loopwarden_core::Report, check: CheckId) -> Vec<String> {
    let mut v: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.check == check)
        .filter_map(|f| f.service.clone())
        .collect();
    v.sort();
    v
}

#[test]
fn captured_namespace_gives_the_expected_findings() {
    let report = audit(&snapshot());
    assert_eq!(
        ids(&report, CheckId::BindWildcard),
        ["tcp:0.0.0.0:7002", "tcp:[::]:7005"]
    );
    assert_eq!(
        ids(&report, CheckId::LocalPortSquat),
        ["tcp:127.0.0.1:7001", "udp:127.0.0.1:7003", "udp:[::1]:7004"]
    );
    assert_eq!(
        ids(&report, CheckId::LocalUnixWorld),
        ["unix:/tmp/lw-fixture.ctiu2F/public/api.sock"]
    );
    assert_eq!(ids(&report, CheckId::LocalUnixAbstract), ["unix:@lw-fixture-abstract"]);
    let localnet: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.check == CheckId::NetRouteLocalnet)
        .collect();
    assert_eq!(localnet.len(), 1);
    assert_eq!(
        (localnet[0].severity, localnet[0].status),
        (Severity::Critical, Status::Open)
    );
    // The connected stub-resolver-style socket is a UDP loopback exposure too.
    let udp = ids(&report, CheckId::ProtoUdpLoopback);
    let stub = udp
        .iter()
        .find(|id| id.starts_with("udp:127.0.0.1:") && *id != "udp:127.0.0.1:7003");
    stub.expect("a finding for the connected socket");
    // Every finding's service id names a listed service.
    for f in &report.findings {
        if let Some(id) = &f.service {
            assert!(
                report.services.iter().any(|s| &s.id == id),
                "{} names unlisted {id}",
                f.check
            );
        }
    }
    assert!(report
        .findings
        .iter()
        .any(|f| f.check == CheckId::NameLocalhostResolution && f.title == "DNS is consulted before /etc/hosts"));
}

#[test]
fn snapshot_round_trips_through_json() {
    let facts = snapshot();
    let again = HostFacts::from_json(&facts.to_json().expect("serialise")).expect("round trip");
    assert_eq!(facts, again);
    assert_eq!(audit(&facts), audit(&again));
}
