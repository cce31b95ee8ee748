//! Truth on a real Docker host (issue 8, items 1, 2, 3, 4, 9): Debian's `docker.io` 20.10 dockerd
//! running in the victim namespace of a LAN segment (see `common/docker.rs` for how), once with
//! its defaults and once with `"userland-proxy": false` in its daemon.json.
//!
//! How the truth is established: an independent attacker (Debian's python3-scapy,
//! `tests/real/attacker.py`) in the neighbour namespace sends hand-built Ethernet frames to the
//! victim's MAC — UDP datagrams carrying a token, TCP SYNs completed into a handshake plus data
//! (it answers ARP for its own claimed address, as a real attacker must when the victim asks
//! "tell 127.0.0.1"). With `--userland-proxy=false` a second attacker runs *inside* a container
//! (`docker exec`, Docker's default capabilities, which include NET_RAW) and sends to the bridge's
//! MAC. Each attack is delivered or not according to a receiver (`tests/real/receiver.py`) that
//! logs the token and the peer address the application saw: in the victim namespace for the
//! host's own services, and in each container's network namespace (through `nsenter`) for the
//! published ones. The expected truths are asserted first, so a broken scenario fails loudly.
//!
//! Then `loopwarden audit --json`, `audit --prove --json` and `prove --json` run inside the
//! victim namespace and every attacked path is compared with what loopwarden says; the test
//! prints the whole agreement table and fails listing each disagreement.

mod common;

use common::docker::{DockerHost, Proxy, BRIDGE_V4, CONTAINER_CLAIM_V4};
use common::real::*;
use common::require_root;

/// What a Docker truth test needs: Debian's dockerd and client, busybox-static for the image.
const DOCKER_TOOLS: &[&str] = &["/usr/sbin/dockerd", "/usr/bin/docker", "/bin/busybox", "nsenter", "tar"];

/// The host's own services: loopback TCP and UDP, and a dual-stack `[::]` UDP socket.
const HOST_SOCKETS: &[&str] = &["tcp:127.0.0.1:7001", "udp:127.0.0.1:7003", "udp:[::]:7008"];

/// The published containers: one TCP port, one UDP port, and two ports of one container (two
/// DNAT rules to one backend address: the shape that crashed the lab, issue 8 item 1).
struct Published {
    receivers: Vec<Receiver>,
}

fn publish(host: &mut DockerHost) -> Published {
    let web = host.run("web", &["127.0.0.1:8080:8080"]);
    let dns = host.run("dns", &["127.0.0.1:8081:8081/udp"]);
    let two = host.run("two", &["127.0.0.1:8090:80", "127.0.0.1:8443:443"]);
    let receivers = vec![
        Receiver::in_netns_of(web.pid, &["tcp:0.0.0.0:8080"]),
        Receiver::in_netns_of(dns.pid, &["udp:0.0.0.0:8081"]),
        Receiver::in_netns_of(two.pid, &["tcp:0.0.0.0:80", "tcp:0.0.0.0:443"]),
    ];
    Published { receivers }
}

/// Establishes that every published port is reachable from the LAN through the victim's MAC
/// (Docker 20.10 has no raw-table drop), with the attacker's own address as the peer.
fn establish_published(ledger: &mut Ledger, lan_attacker: &mut Attacker, p: &Published) {
    let cases = [
        (Attack::tcp("pub-tcp-8080", CLAIM_V4, "127.0.0.1", 8080), 0),
        (Attack::udp("pub-udp-8081", CLAIM_V4, "127.0.0.1", 8081), 1),
        (Attack::tcp("pub-two-8090", CLAIM_V4, "127.0.0.1", 8090), 2),
        (Attack::tcp("pub-two-8443", CLAIM_V4, "127.0.0.1", 8443), 2),
    ];
    for (attack, receiver) in cases {
        let truth = lan_attacker.fire(&p.receivers[receiver], &attack);
        ledger.establish(&attack, &truth, TruthIs::Delivered);
    }
}

/// The NAT findings every Docker host must show as open, in both audit runs.
fn compare_published(ledger: &mut Ledger, runs: &Runs) {
    for (name, run) in runs.reports() {
        for (case, service) in [
            ("3 dnat tcp 8080", "tcp:127.0.0.1:8080"),
            ("3 dnat udp 8081", "udp:127.0.0.1:8081"),
            ("1 dnat two 8090", "tcp:127.0.0.1:8090"),
            ("1 dnat two 8443", "tcp:127.0.0.1:8443"),
        ] {
            ledger.expect(
                case,
                "LAN→published port delivered",
                name,
                run,
                "net.dnat-loopback",
                Some(service),
                Expect::Open,
            );
        }
    }
    for (case, proto, port) in [
        ("3 lab tcp 8080", "tcp", "8080"),
        ("3 lab udp 8081", "udp", "8081"),
        ("1 lab two 8090", "tcp", "8090"),
        ("1 lab two 8443", "tcp", "8443"),
    ] {
        let dst = format!("127.0.0.1:{port}");
        let truth = format!("LAN {proto} → {dst} delivered");
        ledger.lab(case, &truth, &runs.prove, true, lab_row(proto, &dst, None));
    }
}

/// Docker with its defaults: docker-proxy holds the published loopback ports, route_localnet
/// stays 0 everywhere. Truth: every published port (TCP, UDP, two ports of one container) is
/// reachable from the LAN; the host's own loopback services are not (from the LAN or from a
/// container); a `::ffff:127.0.0.1` datagram reaches the `[::]` socket with a loopback peer.
#[test]
fn docker_default_publishes_loopback_ports_to_the_lan() {
    if !require_root("docker_default_publishes_loopback_ports_to_the_lan")
        || !require_truth_tools("docker_default_publishes_loopback_ports_to_the_lan", DOCKER_TOOLS)
    {
        return;
    }
    let mut ledger = Ledger::new("docker 20.10 default (userland proxy)");
    let mut host = DockerHost::start("dflt", Proxy::Userland);
    eprintln!("dockerd up in {:.1}s", host.startup.as_secs_f64());
    let host_rx = Receiver::in_namespace(&host.lan.victim, HOST_SOCKETS);
    let published = publish(&mut host);
    let atk_ctr = host.run("atk", &[]);
    let mut lan = host.lan.attacker();
    let mut inside = host.attacker_in(&atk_ctr);

    establish_published(&mut ledger, &mut lan, &published);
    let direct_tcp = Attack::tcp("lan-tcp-7001", CLAIM_V4, "127.0.0.1", 7001);
    let direct_udp = Attack::udp("lan-udp-7003", CLAIM_V4, "127.0.0.1", 7003);
    let mapped = Attack::udp("lan-mapped-7008", "::ffff:127.0.0.1", VICTIM_V6, 7008);
    let from_ctr = Attack::udp("ctr-udp-7003", CONTAINER_CLAIM_V4, "127.0.0.1", 7003);
    let t = lan.fire(&host_rx, &direct_tcp);
    ledger.establish(&direct_tcp, &t, TruthIs::Dropped);
    let t = lan.fire(&host_rx, &direct_udp);
    ledger.establish(&direct_udp, &t, TruthIs::Dropped);
    let t = lan.fire(&host_rx, &mapped);
    ledger.establish(&mapped, &t, TruthIs::DeliveredLoopbackPeer);
    let t = inside.fire(&host_rx, &from_ctr);
    ledger.establish(&from_ctr, &t, TruthIs::Dropped);

    let runs = Runs::collect(&host.lan.victim);
    ledger.run_worked("1 audit", &runs.audit);
    ledger.run_worked("1 audit --prove", &runs.audit_prove);
    ledger.run_worked("1 prove", &runs.prove);
    compare_published(&mut ledger, &runs);
    for (name, run) in runs.reports() {
        ledger.expect(
            "4 route-localnet",
            "127.0.0.1:7001/7003 dropped from LAN and bridge; route_localnet=0 everywhere",
            name,
            run,
            "net.route-localnet",
            None,
            Expect::NotOpen,
        );
        ledger.expect(
            "3 udp-loopback 8081",
            "LAN UDP → 127.0.0.1:8081 delivered (DNAT)",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:8081"),
            Expect::Open,
        );
        ledger.expect(
            "udp-loopback 7003",
            "UDP → 127.0.0.1:7003 dropped (LAN and container)",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:7003"),
            Expect::NotOpen,
        );
        ledger.expect(
            "mapped [::]:7008",
            "::ffff:127.0.0.1 → [::]:7008 delivered, loopback peer",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:[::]:7008"),
            Expect::Open,
        );
        ledger.output_rules(name, run);
    }
    ledger.finish();
}

/// Docker with `--userland-proxy=false`: no docker-proxy, DNAT only, and dockerd sets
/// route_localnet=1 on docker0. Truth: a container (raw sockets by default) sending to the
/// bridge's MAC reaches the host's 127.0.0.1 TCP and UDP services, and a 127.0.0.2 source
/// reaches the host's `[::]` UDP socket as `::ffff:127.0.0.2`; from the LAN (eth0, route_localnet
/// 0) the host's loopback services stay unreachable while the published ports are reachable.
#[test]
fn docker_without_userland_proxy_exposes_host_loopback_to_containers() {
    let name = "docker_without_userland_proxy_exposes_host_loopback_to_containers";
    if !require_root(name) || !require_truth_tools(name, DOCKER_TOOLS) {
        return;
    }
    let mut ledger = Ledger::new("docker 20.10 userland-proxy=false (daemon.json)");
    let mut host = DockerHost::start("nuprx", Proxy::Off);
    eprintln!("dockerd up in {:.1}s", host.startup.as_secs_f64());
    let host_rx = Receiver::in_namespace(&host.lan.victim, HOST_SOCKETS);
    let published = publish(&mut host);
    let atk_ctr = host.run("atk", &[]);
    let route_localnet = host
        .lan
        .victim
        .exec(&[
            "sysctl",
            "-n",
            "net.ipv4.conf.docker0.route_localnet",
            "net.ipv4.conf.eth0.route_localnet",
        ])
        .unwrap_or_default();
    assert_eq!(
        route_localnet.split_whitespace().collect::<Vec<_>>(),
        ["1", "0"],
        "dockerd --userland-proxy=false should set route_localnet=1 on docker0 only"
    );
    let mut lan = host.lan.attacker();
    let mut inside = host.attacker_in(&atk_ctr);

    establish_published(&mut ledger, &mut lan, &published);
    let ctr_tcp = Attack::tcp("ctr-tcp-7001", CONTAINER_CLAIM_V4, "127.0.0.1", 7001);
    let ctr_udp = Attack::udp("ctr-udp-7003", CONTAINER_CLAIM_V4, "127.0.0.1", 7003);
    let ctr_src2 = Attack::udp("ctr-src127002-7008", "127.0.0.2", BRIDGE_V4, 7008);
    let lan_tcp = Attack::tcp("lan-tcp-7001", CLAIM_V4, "127.0.0.1", 7001);
    let t = inside.fire(&host_rx, &ctr_tcp);
    ledger.establish(&ctr_tcp, &t, TruthIs::Delivered);
    let t = inside.fire(&host_rx, &ctr_udp);
    ledger.establish(&ctr_udp, &t, TruthIs::Delivered);
    let t = inside.fire(&host_rx, &ctr_src2);
    ledger.establish(&ctr_src2, &t, TruthIs::DeliveredLoopbackPeer);
    let t = lan.fire(&host_rx, &lan_tcp);
    ledger.establish(&lan_tcp, &t, TruthIs::Dropped);

    let runs = Runs::collect(&host.lan.victim);
    ledger.run_worked("1 audit", &runs.audit);
    ledger.run_worked("1 audit --prove", &runs.audit_prove);
    ledger.run_worked("1 prove", &runs.prove);
    compare_published(&mut ledger, &runs);
    ledger.expect(
        "2 route-localnet",
        "container → 127.0.0.1:7001 delivered via docker0",
        "audit",
        &runs.audit,
        "net.route-localnet",
        None,
        Expect::Open,
    );
    ledger.expect(
        "2 route-localnet",
        "container → 127.0.0.1:7001 delivered via docker0",
        "audit --prove",
        &runs.audit_prove,
        "net.route-localnet",
        None,
        Expect::OpenProven,
    );
    ledger.expect(
        "2 udp-loopback 7003",
        "container UDP → 127.0.0.1:7003 delivered",
        "audit",
        &runs.audit,
        "proto.udp-loopback",
        Some("udp:127.0.0.1:7003"),
        Expect::Open,
    );
    ledger.expect(
        "2 udp-loopback 7003",
        "container UDP → 127.0.0.1:7003 delivered",
        "audit --prove",
        &runs.audit_prove,
        "proto.udp-loopback",
        Some("udp:127.0.0.1:7003"),
        Expect::OpenProven,
    );
    for (name, run) in runs.reports() {
        ledger.expect(
            "127.0.0.2 → [::]:7008",
            "container 127.0.0.2 → bridge:7008 delivered, peer ::ffff:127.0.0.2",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:[::]:7008"),
            Expect::Open,
        );
        ledger.output_rules(name, run);
    }
    for (case, proto, port) in [
        ("2 lab docker0 tcp", "tcp", "7001"),
        ("2 lab docker0 udp", "udp", "7003"),
    ] {
        let dst = format!("127.0.0.1:{port}");
        let truth = format!("container {proto} → {dst} via docker0 delivered");
        ledger.lab(case, &truth, &runs.prove, true, lab_row(proto, &dst, Some("docker0")));
    }
    harden_keeps_docker_working(&mut ledger, &host, &mut inside, &host_rx, &published);
    ledger.finish();
}

/// Sends `token` over TCP to `127.0.0.1:port` from the Docker host itself (a host client of a
/// published port: DNAT in OUTPUT, then over docker0 to the container).
fn host_client(host: &DockerHost, port: u16, token: &str) {
    let code = format!(
        "import socket\ns=socket.create_connection(('127.0.0.1',{port}),timeout=3)\ns.sendall(b'{token}\\n')\ns.close()"
    );
    let _ = host.lan.victim.exec(&["python3", "-c", &code]);
}

/// `harden --apply` on this host (userland-proxy=false from daemon.json, so dockerd's command line
/// does not say so): the plan keeps docker0's route_localnet, host clients still reach the
/// published port over the bridge, and the container's attack on the host's loopback — delivered
/// before — is now dropped (the raw-table drop closes it).
fn harden_keeps_docker_working(
    ledger: &mut Ledger,
    host: &DockerHost,
    inside: &mut Attacker,
    host_rx: &Receiver,
    published: &Published,
) {
    let applied = loopwarden_in(&host.lan.victim, &["harden", "--apply", "--json"]);
    assert_eq!(applied.code, Some(0), "harden --apply: {}", applied.summary());
    let kept = applied.json["kept"].as_array().cloned().unwrap_or_default();
    let docker0_kept = kept
        .iter()
        .any(|k| k["component"] == "docker-userland-proxy-off" && k["scope"]["interface"] == "docker0");
    ledger.record(
        "4 harden keeps docker0",
        "dockerd needs route_localnet=1 on docker0",
        format!("kept: {kept:?}"),
        docker0_kept,
    );
    let route_localnet = host
        .lan
        .victim
        .exec(&["sysctl", "-n", "net.ipv4.conf.docker0.route_localnet"])
        .unwrap_or_default();
    ledger.record(
        "4 harden keeps docker0",
        "docker0 route_localnet stays 1",
        format!("after apply: {}", route_localnet.trim()),
        route_localnet.trim() == "1",
    );
    let token = published.receivers[0].token("host-client-8080");
    host_client(host, 8080, &token);
    let truth = published.receivers[0].wait_for(&token, std::time::Duration::from_secs(3));
    ledger.record(
        "4 host client after harden",
        "host → 127.0.0.1:8080 (published, over docker0)",
        truth.to_string(),
        truth.delivered(),
    );
    let attack = Attack::tcp("ctr-tcp-7001-hardened", CONTAINER_CLAIM_V4, "127.0.0.1", 7001);
    let truth = inside.fire(host_rx, &attack);
    ledger.record(
        "4 container attack after harden",
        "container → 127.0.0.1:7001 must be dropped",
        truth.to_string(),
        !truth.delivered(),
    );
}
