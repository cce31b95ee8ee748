//! The readers, through their public API, on the real configuration dumps of
//! `fixtures/relays/capture.sh`: the `sshd -T`, `nginx -T`, HAProxy, `caddy adapt` + Caddyfile and
//! Apache captures of daemons that really ran, each once open and once kept to loopback, and the
//! argv of the socat and ncat forwarders. What each should say comes from the configurations
//! that script wrote.

use loopwarden_core::facts::HostFacts;
use loopwarden_core::readers::forwarder_argv::{forwards, Destination, Tool};
use loopwarden_core::readers::hosts::HostsFile;
use loopwarden_core::readers::nsswitch::{HostsLookup, HostsSource};
use loopwarden_core::readers::reverse_proxy::{published, Access, Proxy, Upstream};
use loopwarden_core::readers::sshd::{SshdConfig, TcpForwarding};

fn facts() -> HostFacts {
    HostFacts::from_json(include_str!("fixtures/relays/namespace-relays.json")).expect("fixture parses")
}

#[test]
fn reverse_proxies_routes_listeners_and_access() {
    let facts = facts();
    let mut routes: Vec<(Proxy, u16, Vec<String>, Access)> = published(&facts.relays.captures)
        .into_iter()
        .map(|p| {
            let Upstream::Tcp(host, port) = p.upstream else {
                panic!("{:?}: no Unix upstream in the capture", p.upstream)
            };
            assert_eq!(host, "127.0.0.1");
            (p.proxy, port, p.listen, p.access)
        })
        .collect();
    routes.sort_by_key(|r| r.1);
    let listen = |l: &str| vec![l.to_string()];
    assert_eq!(
        routes,
        [
            // nginx: `proxy_pass http://app` on `listen 8080`, `upstream app { server 127.0.0.1:7001; }`.
            (Proxy::Nginx, 7001, listen("8080"), Access::Anyone),
            // nginx: `allow 127.0.0.1; deny all;` in front of 7002 on 8081.
            (Proxy::Nginx, 7002, listen("8081"), Access::LoopbackOnly),
            // HAProxy: `bind :8082` → backend 7003; `bind 127.0.0.1:8092` is not published.
            (Proxy::Haproxy, 7003, listen(":8082"), Access::Anyone),
            // Caddy: `:8085` → 7005; the site bound to 127.0.0.1:8095 is not published.
            (Proxy::Caddy, 7005, listen(":8085"), Access::Anyone),
            // Apache: `<VirtualHost *:8087>` → 7007; `Require local` in front of 7008 on 8088.
            (Proxy::Apache, 7007, listen("8087"), Access::Anyone),
            (Proxy::Apache, 7008, listen("8088"), Access::LoopbackOnly),
        ]
    );
}

#[test]
fn sshd_open_and_disableforwarding_dumps() {
    let facts = facts();
    let configs: Vec<SshdConfig> = facts
        .relays
        .captures
        .iter()
        .filter(|c| c.kind == "sshd")
        .map(|c| SshdConfig::parse(&c.output).expect("a real sshd -T dump"))
        .collect();
    assert_eq!(configs.len(), 2);
    // sshd-open.conf sets nothing about forwarding: OpenSSH's defaults.
    assert_eq!(configs[0].allow_tcp_forwarding, TcpForwarding::Yes);
    assert!(!configs[0].disable_forwarding);
    assert_eq!(configs[0].permit_open, ["any"]);
    assert_eq!(configs[0].gateway_ports.as_deref(), Some("no"));
    // sshd-safe.conf: `DisableForwarding yes`.
    assert!(configs[1].disable_forwarding);
}

#[test]
fn forwarder_argv_of_socat_and_ncat() {
    let facts = facts();
    let found: Vec<(Tool, Destination)> = facts
        .processes
        .iter()
        .flat_map(|p| forwards(&p.cmdline))
        .map(|f| (f.tool, f.destination))
        .collect();
    let tcp = |port| Destination::LocalTcp("127.0.0.1".into(), port);
    assert_eq!(
        found,
        [
            (Tool::Socat, tcp(7001)),
            (Tool::Socat, tcp(7002)),
            (Tool::Ncat, tcp(7009))
        ]
    );
}

#[test]
fn name_resolution_files() {
    let facts = facts();
    let hosts = HostsFile::parse(facts.names.hosts_file.as_deref().expect("a hosts file"));
    let localhost: Vec<&str> = hosts.entries_for("localhost").map(|e| e.line.as_str()).collect();
    assert_eq!(localhost, ["127.0.0.1 localhost"]);
    let lookup = HostsLookup::parse(facts.names.nsswitch_hosts.as_deref());
    assert_eq!(lookup.sources, [HostsSource::Files, HostsSource::Dns]);
}
