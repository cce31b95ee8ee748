//! `audit --all-netns` against a real Docker host (Debian's docker.io dockerd confined to a
//! network and mount namespace of its own, see `common::docker`; the image made with `docker
//! import` from busybox-static): a bridged container is found and named from dockerd's state,
//! with its loopback-only service judged inside its namespace; a `--net=host` container is named
//! as sharing dockerd's namespace, and an abstract socket there — which the container really
//! connects to — is the CVE-2020-15257 finding; docker-proxy's publish of the bridged
//! container's port does not reach its loopback-only service (really, and in the report).
//!
//! This test reads the whole machine (every namespace of every test running beside it): it
//! asserts only about the namespaces it made.

mod common;

use common::docker::{DockerHost, Proxy};
use common::real::SYSTEM_PYTHON;
use common::*;
use serde_json::Value;

fn namespace_of_container<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["namespaces"]
        .as_array()
        .and_then(|a| {
            a.iter().find(|n| {
                n["namespace"]["containers"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["name"] == name))
            })
        })
        .unwrap_or_else(|| panic!("no namespace names container {name}"))
}

#[test]
fn docker_containers_are_named_and_a_host_network_container_reaches_abstract_sockets() {
    const TEST: &str = "docker_containers_are_named_and_a_host_network_container_reaches_abstract_sockets";
    if !require_root(TEST) || !require_tool(TEST, "dockerd") || !require_tool(TEST, "busybox") {
        return;
    }
    let mut host = DockerHost::start("nsdk", Proxy::Userland);
    let bridged = host.run("lw-nsb", &["127.0.0.1:18081:8081"]);
    host.run_on("lw-nsh", "host", &[]);
    // A service the bridged container's owner bound to its loopback only; it greets each client.
    host.docker(&[
        "exec",
        "-d",
        "lw-nsb",
        SYSTEM_PYTHON,
        "-c",
        "import socket\ns = socket.socket(); s.bind(('127.0.0.1', 8081)); s.listen()\nwhile True:\n    c, _ = s.accept(); c.sendall(b'hello'); c.close()",
    ]);
    // An abstract socket in dockerd's namespace, held by a process that is not the container's.
    let abstract_name = format!("lw-nsdk-{}", std::process::id());
    let _holder = python_in(
        &host.lan.victim,
        None,
        &format!(
            "import socket, time\ns = socket.socket(socket.AF_UNIX); s.bind('\\0{abstract_name}'); s.listen(8)\nprint('ready', flush=True)\nwhile True:\n    c, _ = s.accept(); c.sendall(b'shim'); c.close()"
        ),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));

    // Truth: the --net=host container connects to the abstract socket...
    let reached = host.docker(&[
        "exec",
        "lw-nsh",
        SYSTEM_PYTHON,
        "-c",
        &format!("import socket\ns = socket.socket(socket.AF_UNIX); s.connect('\\0{abstract_name}'); print(s.recv(8).decode())"),
    ]);
    assert_eq!(
        reached.trim(),
        "shim",
        "the host-network container reaches the abstract socket"
    );
    // ...and docker-proxy's publish does not reach the bridged container's loopback-only service.
    let via_proxy = must(&mut host.lan.victim.command(&[
        SYSTEM_PYTHON,
        "-c",
        "import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', 18081), timeout=3); print(s.recv(8) or b'closed')\nexcept OSError as e:\n    print('refused', e)",
    ]));
    assert!(
        !via_proxy.contains("hello"),
        "docker-proxy reached the loopback-only service: {via_proxy}"
    );

    let out = output_within(
        std::process::Command::new(loopwarden()).args(["audit", "--all-netns", "--json", "--fail-on", "critical"]),
        LOOPWARDEN_TIMEOUT,
    );
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "audit --all-netns failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a whole-host report");

    // The bridged container: named from dockerd's state, its loopback service seen inside it.
    let b = namespace_of_container(&report, "lw-nsb");
    let container = &b["namespace"]["containers"].as_array().expect("containers")[0];
    assert_eq!(container["runtime"], "docker");
    assert_eq!(container["image"], "lwtruth-busybox:1");
    assert_eq!(container["shares_namespace"], false);
    assert_eq!(container["pid"], bridged.pid);
    let services = b["report"]["services"].as_array().expect("services");
    let service = services
        .iter()
        .find(|s| s["id"] == "tcp:127.0.0.1:8081")
        .unwrap_or_else(|| panic!("the container's loopback service: {services:?}"));
    assert_eq!(service["process"]["name"], "python3");

    // The --net=host container shares dockerd's namespace, the test's victim namespace.
    let victim = namespace_of_container(&report, "lw-nsh");
    assert!(
        victim["namespace"]["ip_netns"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n == host.lan.victim.name())),
        "{}",
        victim["namespace"]
    );
    let sharer = victim["namespace"]["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "lw-nsh"))
        .expect("lw-nsh");
    assert_eq!(sharer["shares_namespace"], true);
    assert_eq!(sharer["network_mode"], "host");

    let host_findings = report["findings"].as_array().expect("findings");
    let of = |check: &str, netns: &Value| -> Vec<&Value> {
        host_findings
            .iter()
            .filter(|f| f["check"] == check && &f["netns"] == netns)
            .collect()
    };
    let shared = of("netns.shared-abstract-unix", &victim["namespace"]["id"]);
    let ours: Vec<&&Value> = shared
        .iter()
        .filter(|f| f["service"] == format!("unix:@{abstract_name}").as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{shared:#?}");
    assert_eq!(ours[0]["severity"], "high");
    assert!(ours[0]["title"].as_str().unwrap_or_default().contains("lw-nsh"));

    let unprotected = of("netns.unprotected-loopback", &b["namespace"]["id"]);
    assert_eq!(unprotected.len(), 1, "a container's eth0 and empty ruleset");
    assert_eq!(unprotected[0]["status"], "open");
    assert!(
        of("netns.published-loopback", &b["namespace"]["id"]).is_empty(),
        "docker-proxy goes to the container's address"
    );

    // --netns by the container's pid: its v1 report, named.
    let one = output_within(
        std::process::Command::new(loopwarden()).args(["audit", "--netns", &bridged.pid.to_string(), "--json"]),
        LOOPWARDEN_TIMEOUT,
    );
    let one: Value = serde_json::from_slice(&one.stdout).expect("a report");
    assert!(
        one["host"]["netns"]
            .as_str()
            .unwrap_or_default()
            .contains("container lw-nsb (docker"),
        "{}",
        one["host"]
    );
    assert!(one["services"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["id"] == "tcp:127.0.0.1:8081")));
}
