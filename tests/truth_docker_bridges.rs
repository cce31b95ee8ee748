//! Truth on a Docker host with two bridges and no userland proxy (review 8, items 3 and 6):
//! Debian's `docker.io` 20.10 dockerd with `--userland-proxy=false` in the victim namespace of a
//! LAN segment (see `common/docker.rs`), its default network `docker0` (198.51.100.0/24) and a
//! user-defined network `appnet` on bridge `br-app` (203.0.113.0/24, as a compose project makes
//! one). Published: `-p 127.0.0.1:8080:8080` (backend on docker0), `-p
//! 127.0.0.1:8081:8081/udp` (backend on br-app) and a public `-p 8084:8084` (docker0). dockerd
//! still binds `0.0.0.0:8084` itself to reserve the port, but without a proxy nothing ever reaches
//! that socket: the DNAT rule sends the connection to the container.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace completes TCP handshakes with data and sends datagrams to the victim's
//! MAC; `tests/real/receiver.py` runs in each container's network namespace (`nsenter`) and logs
//! which tokens arrived.
//!
//! What loopwarden must say: `prove` and `audit --prove` must run (NAT backends on two bridges),
//! the NAT findings and lab rows must follow the attacks, and the public port's finding must say
//! reachable rather than "no path reached a conclusion".

mod common;

use common::docker::{DockerHost, Proxy};
use common::real::*;
use common::require_root;

/// What a Docker truth test needs: Debian's dockerd and client, busybox-static for the image.
const DOCKER_TOOLS: &[&str] = &["/usr/sbin/dockerd", "/usr/bin/docker", "/bin/busybox", "nsenter", "tar"];

/// Every finding about `service` in `run`, as `check status · confidence`.
fn about(run: &Run, service: &str) -> Vec<(String, String)> {
    run.json["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["service"] == service)
        .map(|f| {
            (
                f["check"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{} · {}",
                    f["status"].as_str().unwrap_or_default(),
                    f["confidence"].as_str().unwrap_or_default()
                ),
            )
        })
        .collect()
}

/// Published ports with backends on docker0 and on a user-defined bridge, plus a public publish,
/// without docker-proxy: every published port is reachable from the LAN, and loopwarden must
/// run, agree, and decide the public port.
#[test]
fn docker_two_bridges_without_userland_proxy() {
    let name = "docker_two_bridges_without_userland_proxy";
    if !require_root(name) || !require_truth_tools(name, DOCKER_TOOLS) {
        return;
    }
    let mut ledger = Ledger::new("docker 20.10 --userland-proxy=false, docker0 + br-app");
    let mut host = DockerHost::start("twobr", Proxy::Off);
    eprintln!("dockerd up in {:.1}s", host.startup.as_secs_f64());
    host.docker(&[
        "network",
        "create",
        "--subnet",
        "203.0.113.0/24",
        "--opt",
        "com.docker.network.bridge.name=br-app",
        "appnet",
    ]);
    let web = host.run("web", &["127.0.0.1:8080:8080"]);
    let dns = host.run_on("dns", "appnet", &["127.0.0.1:8081:8081/udp"]);
    let public = host.run("pub", &["8084:8084"]);
    assert!(
        dns.ip.starts_with("203.0.113."),
        "the appnet container should sit on br-app (203.0.113.0/24), has {:?}",
        dns.ip
    );
    let web_rx = Receiver::in_netns_of(web.pid, &["tcp:0.0.0.0:8080"]);
    let dns_rx = Receiver::in_netns_of(dns.pid, &["udp:0.0.0.0:8081"]);
    let pub_rx = Receiver::in_netns_of(public.pid, &["tcp:[::]:8084"]);
    let listening = host
        .lan
        .victim
        .exec(&["ss", "-Hltn", "sport = :8084"])
        .unwrap_or_default();
    let bound: Vec<&str> = listening.lines().filter_map(|l| l.split_whitespace().nth(3)).collect();
    assert_eq!(
        bound,
        ["0.0.0.0:8084"],
        "dockerd should hold 0.0.0.0:8084 (only) for the public publish"
    );
    let mut lan = host.lan.attacker();

    let cases = [
        (
            Attack::tcp("lo-tcp-8080", CLAIM_V4, "127.0.0.1", 8080),
            &web_rx,
            TruthIs::Delivered,
        ),
        (
            Attack::udp("lo-udp-8081", CLAIM_V4, "127.0.0.1", 8081),
            &dns_rx,
            TruthIs::Delivered,
        ),
        (
            Attack::tcp("pub-tcp-8084", CLAIM_V4, VICTIM_V4, 8084),
            &pub_rx,
            TruthIs::Delivered,
        ),
        (
            Attack::tcp("lo-tcp-8084", CLAIM_V4, "127.0.0.1", 8084),
            &pub_rx,
            TruthIs::Delivered,
        ),
    ];
    for (attack, rx, expected) in &cases {
        let t = lan.fire(rx, attack);
        ledger.establish(attack, &t, *expected);
    }
    // Without `--ipv6` dockerd writes no ip6tables DNAT and binds only 0.0.0.0:8084: IPv6 to
    // the public port reaches nothing (no SYN-ACK either).
    let v6 = Attack::tcp("pub6-tcp-8084", CLAIM_V6, VICTIM_V6, 8084);
    let t = lan.fire(&pub_rx, &v6);
    ledger.establish(&v6, &t, TruthIs::Dropped);

    let runs = Runs::collect(&host.lan.victim);
    ledger.run_worked("3 audit", &runs.audit);
    ledger.run_worked("3 audit --prove", &runs.audit_prove);
    ledger.run_worked("3 prove", &runs.prove);
    for (name, run) in runs.reports() {
        for (case, service, truth) in [
            (
                "3 dnat docker0 8080",
                "tcp:127.0.0.1:8080",
                "LAN TCP → 127.0.0.1:8080 delivered (docker0)",
            ),
            (
                "3 dnat br-app 8081",
                "udp:127.0.0.1:8081",
                "LAN UDP → 127.0.0.1:8081 delivered (br-app)",
            ),
            (
                "dnat public via 127",
                "tcp:0.0.0.0:8084",
                "LAN TCP → 127.0.0.1:8084 delivered (the DOCKER chain takes every local address)",
            ),
        ] {
            ledger.expect(case, truth, name, run, "net.dnat-loopback", Some(service), Expect::Open);
        }
        let found = about(run, "tcp:0.0.0.0:8084");
        let open = found.iter().any(|(_, v)| v.starts_with("open"));
        let unknown = found.iter().any(|(_, v)| v.starts_with("unknown"));
        let said = if found.is_empty() {
            "no finding".to_string()
        } else {
            found
                .iter()
                .map(|(c, v)| format!("{c} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        ledger.about_run(
            "6 public 8084",
            "LAN TCP → 192.0.2.1:8084 and → 127.0.0.1:8084 delivered to the container ⇒ \
             tcp:0.0.0.0:8084 reachable (bind.wildcard or whatever names it open), nothing unknown",
            name,
            run,
            format!("tcp:0.0.0.0:8084: {said}"),
            open && !unknown,
        );
        ledger.output_rules(name, run);
    }
    ledger.lab(
        "3 lab docker0 8080",
        "LAN TCP → 127.0.0.1:8080 delivered",
        &runs.prove,
        true,
        lab_row("tcp", "127.0.0.1:8080", Some("eth0")),
    );
    ledger.lab(
        "3 lab br-app 8081",
        "LAN UDP → 127.0.0.1:8081 delivered",
        &runs.prove,
        true,
        lab_row("udp", "127.0.0.1:8081", Some("eth0")),
    );
    ledger.finish();
}
