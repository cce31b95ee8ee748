//! The relay checks on a real captured snapshot (`fixtures/relays/capture.sh`): sshd, nginx,
//! HAProxy, Caddy and Apache configuration dumps and socat/ncat forwarders, each once open and once
//! configured safely. Offline: no root, no namespace, no daemons.

use loopwarden_core::checks::CheckId;
use loopwarden_core::report::{Attacker, Status};
use loopwarden_core::{audit, HostFacts};

const DIR: &str = "/tmp/lw-fixture-relays";

fn report() -> loopwarden_core::Report {
    let text = include_str!("fixtures/relays/namespace-relays.json");
    audit(&HostFacts::from_json(text).expect("fixture parses"))
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

fn evidence(report: &loopwarden_core::Report, check: CheckId, service: &str) -> String {
    let found: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.check == check && f.service.as_deref() == Some(service))
        .collect();
    assert_eq!(found.len(), 1, "{check} on {service}: {found:#?}");
    found[0].evidence.join("\n")
}

#[test]
fn reverse_proxies_publish_exactly_their_open_upstreams() {
    let report = report();
    assert_eq!(
        ids(&report, CheckId::RelayReverseProxy),
        [
            "tcp:127.0.0.1:7001",
            "tcp:127.0.0.1:7003",
            "tcp:127.0.0.1:7005",
            "tcp:127.0.0.1:7007"
        ]
    );
    let nginx = evidence(&report, CheckId::RelayReverseProxy, "tcp:127.0.0.1:7001");
    assert!(
        nginx.contains(&format!("{DIR}/nginx.conf:8: upstream server 127.0.0.1:7001")),
        "{nginx}"
    );
    assert!(
        nginx.contains(&format!("{DIR}/nginx.conf:11: proxy_pass http://app;")),
        "{nginx}"
    );
    assert!(
        nginx.contains(&format!("8080 ({DIR}/nginx.conf:10)")) && nginx.contains("$proxy_host"),
        "{nginx}"
    );
    let haproxy = evidence(&report, CheckId::RelayReverseProxy, "tcp:127.0.0.1:7003");
    assert!(
        haproxy.contains(&format!("{DIR}/haproxy.cfg:13: server s1 127.0.0.1:7003")),
        "{haproxy}"
    );
    let caddy = evidence(&report, CheckId::RelayReverseProxy, "tcp:127.0.0.1:7005");
    assert!(
        caddy.contains(&format!("{DIR}/Caddyfile:6: reverse_proxy 127.0.0.1:7005")),
        "{caddy}"
    );
    let apache = evidence(&report, CheckId::RelayReverseProxy, "tcp:127.0.0.1:7007");
    assert!(
        apache.contains(&format!("{DIR}/apache-sites.conf:2: ProxyPass")),
        "{apache}"
    );
    assert!(
        apache.contains(&format!("Listen 8087 ({DIR}/apache2.conf:13)")),
        "{apache}"
    );
    for f in report.findings.iter().filter(|f| f.check == CheckId::RelayReverseProxy) {
        assert_eq!((f.status, f.attacker), (Status::Open, Attacker::Remote));
        assert!(
            f.evidence
                .iter()
                .any(|e| e.contains("do not tell remote clients apart")),
            "{f:#?}"
        );
    }
}

#[test]
fn sshd_with_default_forwarding_is_found_and_disableforwarding_is_not() {
    let report = report();
    assert_eq!(ids(&report, CheckId::RelaySshForwarding), ["tcp:0.0.0.0:2222"]);
    let ssh = evidence(&report, CheckId::RelaySshForwarding, "tcp:0.0.0.0:2222");
    assert!(
        ssh.contains("allowtcpforwarding yes") && ssh.contains("permitopen any"),
        "{ssh}"
    );
    assert!(ssh.contains("tcp:127.0.0.1:7001"), "{ssh}");
}

#[test]
fn forwarders_listening_beyond_loopback_are_found_on_their_targets() {
    let report = report();
    assert_eq!(
        ids(&report, CheckId::RelayForwarder),
        ["tcp:127.0.0.1:7001", "tcp:127.0.0.1:7009"]
    );
    let socat = evidence(&report, CheckId::RelayForwarder, "tcp:127.0.0.1:7001");
    assert!(
        socat.contains("it listens beyond loopback on tcp:0.0.0.0:9090"),
        "{socat}"
    );
    assert!(evidence(&report, CheckId::RelayForwarder, "tcp:127.0.0.1:7009").contains("ncat 127.0.0.1 7009"));
}
