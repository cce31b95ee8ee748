//! The fleet end to end with a real engine: `ansible-core` (from PyPI, installed by
//! scripts/install-test-deps.sh into target/ansible-venv) runs contrib/ansible/playbook.yml from a
//! controller namespace over real SSH (OpenSSH's sshd in each of three host namespaces, a
//! throwaway key made by the test) — copying the binary, running `loopwarden facts --out`,
//! fetching the snapshots. Each host has its own exposure: route_localnet on its LAN interface, a
//! wildcard listener, a world-writable Unix socket. `loopwarden fleet` over the fetched directory
//! must name each host's own findings (and not the others'), in human, JSON and HTML form; a
//! hostile file beside them is shown as unusable, not audited as clean. The fetched snapshots
//! must be private (a 0700 directory, 0600 files), a removed host's old snapshot pruned, and a
//! second run with `loopwarden_install=false` must find host-b's packaged `/usr/bin/loopwarden`
//! (an overlay in its sshd's own mount namespace).

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// ansible-playbook from the test venv, else from PATH.
fn ansible_playbook() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ansible-venv/bin/ansible-playbook");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("ansible-playbook"))
            .find(|p| p.is_file())
    })
}

/// Waits until `ns` listens on TCP `port`.
fn wait_listening(ns: &Namespace, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns
        .exec(&["ss", "-Hltn"])
        .unwrap_or_default()
        .contains(&format!(":{port} "))
    {
        assert!(Instant::now() < deadline, "nothing listens on {port} in {}", ns.name());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One host of the fleet: its namespace, its address as the controller reaches it, its sshd.
struct Host {
    name: &'static str,
    _ns: TestNamespace,
    address: &'static str,
    _daemons: Vec<Spawned>,
}

/// Three hosts, each on its own link (documentation ranges) to the controller namespace.
const HOSTS: [(&str, &str, &str); 3] = [
    ("host-a", "192.0.2.1/24", "192.0.2.2"),
    ("host-b", "198.51.100.1/24", "198.51.100.2"),
    ("host-c", "203.0.113.1/24", "203.0.113.2"),
];

fn listener(code: &str) -> String {
    format!("import os, socket, threading\n{code}\nprint(\"ready\", flush=True)\nthreading.Event().wait()\n")
}

#[test]
fn ansible_collects_three_hosts_over_ssh_and_the_fleet_names_each_ones_findings() {
    let test = "ansible_collects_three_hosts_over_ssh_and_the_fleet_names_each_ones_findings";
    if !require_root(test) || !require_tool(test, "ssh-keygen") || !require_tool(test, "ssh") {
        return;
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        cannot_run(
            test,
            "openssh-server is not installed (scripts/install-test-deps.sh installs it)",
        );
        return;
    }
    let Some(playbook_bin) = ansible_playbook() else {
        cannot_run(
            test,
            "ansible-core is not installed (scripts/install-test-deps.sh puts it in target/ansible-venv)",
        );
        return;
    };
    let tmp = TempDir::new("fleet");
    let dir = tmp.path().to_path_buf();
    let d = |p: &str| dir.join(p).to_str().expect("utf-8 path").to_string();
    let key = d("id_ed25519");
    let hostkey = d("hostkey");
    must(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "fleet-test", "-f", &key]));
    must(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", &hostkey]));
    std::fs::copy(format!("{key}.pub"), d("authorized_keys")).expect("authorized_keys");
    std::fs::create_dir_all("/run/sshd").expect("sshd privilege separation directory");

    let ctl = namespace("fleetctl");
    let mut hosts = Vec::new();
    for (i, (name, ctl_addr, address)) in HOSTS.into_iter().enumerate() {
        let ns = namespace(&format!("fleet{}", (b'a' + i as u8) as char));
        let link = format!("c{i}");
        let host_ns = ns.name().to_string();
        for argv in [
            &[
                "ip", "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &host_ns,
            ][..],
            &["ip", "addr", "add", ctl_addr, "dev", &link],
            &["ip", "link", "set", &link, "up"],
        ] {
            ctl.exec(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
        let host_cidr = format!("{address}/24");
        for argv in [
            &["ip", "addr", "add", &host_cidr, "dev", "eth0"][..],
            &["ip", "link", "set", "eth0", "up"],
        ] {
            ns.exec(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
        let conf = d(&format!("sshd-{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "Port 22\nListenAddress {address}\nHostKey {hostkey}\nPidFile {}\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 AuthorizedKeysFile {}\nStrictModes no\nSubsystem sftp internal-sftp\n",
                d(&format!("sshd-{name}.pid")),
                d("authorized_keys"),
            ),
        )
        .expect("sshd config");
        let sshd = format!(
            "exec /usr/sbin/sshd -D -f '{conf}' -E '{}'",
            d(&format!("sshd-{name}.log"))
        );
        let mut daemons = vec![if name == "host-b" {
            // host-b has loopwarden installed as the Debian package puts it, /usr/bin/loopwarden:
            // an overlay over /usr/bin in a mount namespace of its sshd's own (this machine's
            // /usr/bin is never touched).
            let (upper, work) = (d("host-b-usr-bin"), d("host-b-usr-bin-work"));
            std::fs::create_dir_all(&upper).expect("overlay upper");
            std::fs::create_dir_all(&work).expect("overlay work");
            std::fs::copy(loopwarden(), Path::new(&upper).join("loopwarden")).expect("package the binary");
            let script = format!(
                "mount -t overlay overlay -o lowerdir=/usr/bin,upperdir='{upper}',workdir='{work}' /usr/bin && {sshd}"
            );
            spawn_in(&ns, &["unshare", "-m", "--propagation", "private", "sh", "-c", &script])
        } else {
            spawn_in(&ns, &["sh", "-c", &sshd])
        }];
        // Each host's own exposure.
        match name {
            "host-a" => {
                ns.exec(&["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"])
                    .expect("route_localnet");
                daemons.push(python_in(
                    &ns,
                    None,
                    &listener("s = socket.socket(); s.bind((\"127.0.0.1\", 7001)); s.listen()"),
                ));
            }
            "host-b" => daemons.push(python_in(
                &ns,
                None,
                &listener("s = socket.socket(); s.bind((\"0.0.0.0\", 8080)); s.listen()"),
            )),
            _ => {
                let sock = d("host-c-app.sock");
                daemons.push(python_in(
                    &ns,
                    None,
                    &listener(&format!(
                        "s = socket.socket(socket.AF_UNIX); s.bind({sock:?}); os.chmod({sock:?}, 0o777); s.listen()"
                    )),
                ));
            }
        }
        wait_listening(&ns, 22);
        hosts.push(Host {
            name,
            _ns: ns,
            address,
            _daemons: daemons,
        });
    }

    // Two inventories of the same three hosts: the first copies the binary to each (into the
    // test's directory); the second, for a run with loopwarden_install=false, says nothing of
    // where host-b's binary is — the role must find the packaged one.
    let inventory = d("inventory.ini");
    let installed = d("inventory-installed.ini");
    for (path, copy) in [(&inventory, true), (&installed, false)] {
        let mut text = String::from("[fleet]\n");
        for h in &hosts {
            text.push_str(&format!("{} ansible_host={}", h.name, h.address));
            if copy || h.name != "host-b" {
                text.push_str(&format!(
                    " loopwarden_remote_path={}",
                    d(&format!("{}/bin/loopwarden", h.name))
                ));
            }
            text.push('\n');
        }
        text.push_str(&format!(
            "[fleet:vars]\nansible_user=root\nansible_ssh_private_key_file={key}\nansible_python_interpreter=/usr/bin/python3\n\
             ansible_ssh_common_args='-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=no'\n"
        ));
        std::fs::write(path, text).expect("inventory");
    }
    let snapshots = d("snapshots");
    // A host removed from the inventory left its snapshot behind; the directory was made with
    // a loose mode.
    std::fs::create_dir(&snapshots).expect("snapshots dir");
    std::fs::set_permissions(&snapshots, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    std::fs::write(
        Path::new(&snapshots).join("retired-host.json"),
        "{\n  \"schema\": \"loopwarden.facts/v1\",\n  \"host\": {}\n}\n",
    )
    .expect("old snapshot");
    // Not a snapshot: never pruned, whatever its name (the directory may be a project's).
    std::fs::write(Path::new(&snapshots).join("package.json"), "{\"name\": \"my-app\"}\n").expect("not ours");
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ansible/playbook.yml");
    let playbook_arg = playbook.to_str().expect("utf-8 path");
    let binary = format!("loopwarden_binary={}", loopwarden());
    let fleet_dir = format!("loopwarden_fleet_dir={snapshots}");
    let playbook_path = playbook_bin.to_str().expect("utf-8 path");
    let playbook = |inventory: &str, extra: &[&str]| {
        let mut argv = vec![
            playbook_path,
            "-i",
            inventory,
            playbook_arg,
            "-e",
            &binary,
            "-e",
            &fleet_dir,
            "-e",
            "loopwarden_become=false",
        ];
        argv.extend_from_slice(extra);
        let mut run = ctl.command(&argv);
        run.current_dir(&dir)
            .env("LC_ALL", "C.UTF-8")
            .env("ANSIBLE_HOME", d("ansible-home"))
            .env("ANSIBLE_LOCAL_TEMP", d("ansible-local"))
            .env("ANSIBLE_REMOTE_TMP", d("ansible-remote"))
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0");
        let out = output_within(&mut run, LOOPWARDEN_TIMEOUT);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ansible-playbook {extra:?} failed: {said}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        said
    };
    let started = Instant::now();
    let said = playbook(&inventory, &[]);
    eprintln!(
        "ansible-playbook over 3 hosts: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(said.contains("failed=0"), "{said}");
    for h in &hosts {
        let snapshot = Path::new(&snapshots).join(format!("{}.json", h.name));
        assert!(snapshot.exists(), "no snapshot fetched from {}: {said}", h.name);
        assert!(
            Path::new(&d(&format!("{}/bin/loopwarden", h.name))).exists(),
            "binary put on {}",
            h.name
        );
    }

    // The snapshots are private to the user who ran the playbook, and the removed host's is gone.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(Path::new(&snapshots)), 0o700, "the snapshot directory");
    for h in &hosts {
        let snapshot = Path::new(&snapshots).join(format!("{}.json", h.name));
        assert_eq!(mode(&snapshot), 0o600, "{} is readable by others", snapshot.display());
    }
    assert!(
        !Path::new(&snapshots).join("retired-host.json").exists(),
        "a host no longer in the inventory lingers: {said}"
    );
    assert!(said.contains("retired-host.json"), "the removal is said: {said}");
    assert!(
        Path::new(&snapshots).join("package.json").exists(),
        "a file that is not a snapshot was pruned: {said}"
    );

    // host-b again, with the packaged binary: the role finds /usr/bin/loopwarden itself.
    let before = std::fs::metadata(Path::new(&snapshots).join("host-b.json"))
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(Duration::from_millis(20));
    let again = playbook(&installed, &["-e", "loopwarden_install=false", "--limit", "host-b"]);
    assert!(again.contains("failed=0"), "{again}");
    let after = std::fs::metadata(Path::new(&snapshots).join("host-b.json"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert!(
        after > before,
        "host-b's snapshot was taken again with /usr/bin/loopwarden: {again}"
    );
    for h in &hosts {
        assert!(
            Path::new(&snapshots).join(format!("{}.json", h.name)).exists(),
            "a run limited to host-b keeps the others' snapshots"
        );
    }

    // The fleet names each host's own findings.
    let fleet = |args: &[&str]| {
        let mut argv = vec![loopwarden(), "fleet", snapshots.as_str()];
        argv.extend_from_slice(args);
        output_within(Command::new(argv[0]).args(&argv[1..]), LOOPWARDEN_TIMEOUT)
    };
    let json_out = fleet(&["--json"]);
    assert_eq!(
        json_out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&json_out.stderr)
    );
    let report: Value = serde_json::from_slice(&json_out.stdout).expect("fleet JSON");
    assert_eq!(report["schema"], "loopwarden.fleet/v1");
    let host = |name: &str| {
        report["hosts"]
            .as_array()
            .and_then(|a| a.iter().find(|h| h["name"] == name))
            .unwrap_or_else(|| panic!("no {name} in {report:#}"))
            .clone()
    };
    let open = |h: &Value, check: &str, service: Option<&str>| {
        h["report"]["findings"].as_array().is_some_and(|a| {
            a.iter()
                .any(|f| f["check"] == check && f["status"] == "open" && service.is_none_or(|s| f["service"] == s))
        })
    };
    let sock = format!("unix:{}", d("host-c-app.sock"));
    let (a, b, c) = (host("host-a"), host("host-b"), host("host-c"));
    assert!(open(&a, "net.route-localnet", None), "{a:#}");
    assert!(!open(&b, "net.route-localnet", None) && !open(&c, "net.route-localnet", None));
    assert!(open(&b, "bind.wildcard", Some("tcp:0.0.0.0:8080")), "{b:#}");
    assert!(!open(&a, "bind.wildcard", Some("tcp:0.0.0.0:8080")));
    assert!(open(&c, "local.unix-world", Some(&sock)), "{c:#}");
    assert!(!open(&a, "local.unix-world", Some(&sock)) && !open(&b, "local.unix-world", Some(&sock)));
    // Each host's sshd is where Ansible reached it, on its own address.
    for (h, name) in [(&a, "host-a"), (&b, "host-b"), (&c, "host-c")] {
        let address = HOSTS.iter().find(|x| x.0 == name).map(|x| x.2).expect("address");
        assert!(
            open(h, "bind.wildcard", Some(&format!("tcp:{address}:22"))),
            "{name}'s sshd: {h:#}"
        );
    }
    let worst = &report["worst_paths"][0];
    assert_eq!(worst["host"], "host-a", "route_localnet is the worst path: {worst:#}");
    // Each snapshot says when it was taken: just now, so none is stale.
    for h in [&a, &b, &c] {
        assert!(h["age_seconds"].as_u64().is_some_and(|s| s < 600), "{h:#}");
        assert_eq!(h["stale"], false, "{h:#}");
        assert_eq!(h["privileged"], true, "ssh as root: {h:#}");
    }

    let human = fleet(&[]);
    let text = String::from_utf8_lossy(&human.stdout);
    for needle in [
        "host-a",
        "host-b",
        "host-c",
        "net.route-localnet",
        "bind.wildcard",
        "local.unix-world",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let detail = fleet(&["--host", "host-c"]);
    let detail_text = String::from_utf8_lossy(&detail.stdout);
    assert!(
        detail_text.contains("local.unix-world") && detail_text.contains(&d("host-c-app.sock")),
        "{detail_text}"
    );
    let page = d("fleet.html");
    let html_out = fleet(&["--format", "html", "--out", &page]);
    assert_eq!(html_out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).expect("fleet page");
    assert_eq!(html.matches("<section class=\"report\"").count(), 3);
    for name in ["host-a", "host-b", "host-c"] {
        assert!(html.contains(&format!("data-host=\"{name}\"")), "{name} row");
    }

    // A hostile file among the snapshots is shown as unusable, never audited as clean.
    std::fs::write(
        Path::new(&snapshots).join("evil.json"),
        "{\"schema\": \"loopwarden.facts/v1\", \"host\": [",
    )
    .expect("evil");
    let with_evil = fleet(&["--json", "--fail-on", "critical"]);
    assert_eq!(with_evil.status.code(), Some(1), "an unusable snapshot fails the run");
    let report: Value = serde_json::from_slice(&with_evil.stdout).expect("fleet JSON");
    let evil = report["hosts"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["name"] == "evil"))
        .expect("evil host")
        .clone();
    assert!(
        evil["error"].as_str().is_some_and(|e| e.contains("evil.json")),
        "{evil:#}"
    );
    assert_eq!(report["hosts"][0]["name"], "evil", "unusable first");
    drop(hosts);
}
