//! `relay.ftp-bounce` end to end against Debian's vsftpd, started only inside a namespace made
//! for the test: once with `port_promiscuous=YES` (the open case: vsftpd then connects wherever a
//! client's PORT/EPRT says) and once with its default (`port_promiscuous=NO`, which refuses a data
//! address that is not the client's own). The truth was checked by hand first with a plain FTP
//! client session (`USER anonymous`, `PORT 127,0,0,1,…`, `NLST` against a `nc -l` on loopback:
//! promiscuous connects, the default answers "500 Illegal PORT command.").

mod common;

use common::*;
use std::time::{Duration, Instant};

/// A vsftpd configuration for the test: standalone on `port`, anonymous login to a root-owned
/// empty directory, active mode only.
fn vsftpd_conf(dir: &std::path::Path, port: u16, promiscuous: bool) -> String {
    let root = dir.join(format!("anon-{port}"));
    std::fs::create_dir_all(&root).expect("anon root");
    std::fs::write(root.join("readme.txt"), "nothing to see\n").expect("a file to list");
    let conf = dir.join(format!("vsftpd-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_port={port}\nbackground=NO\nanonymous_enable=YES\n\
             no_anon_password=NO\nanon_root={}\nlocal_enable=NO\nwrite_enable=NO\n\
             connect_from_port_20=NO\npasv_enable=NO\nport_enable=YES\nport_promiscuous={}\n\
             secure_chroot_dir=/var/run/vsftpd/empty\nseccomp_sandbox=NO\nxferlog_enable=NO\n\
             vsftpd_log_file={}/vsftpd-{port}.log\n",
            root.display(),
            if promiscuous { "YES" } else { "NO" },
            dir.display()
        ),
    )
    .expect("write vsftpd.conf");
    conf.to_str().expect("utf-8 path").to_string()
}

fn wait_listening(ns: &Namespace, ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = ns.exec(&["ss", "-Hltn"]).unwrap_or_default();
        if ports
            .iter()
            .all(|p| table.lines().any(|l| l.contains(&format!(":{p} "))))
        {
            return;
        }
        assert!(Instant::now() < deadline, "vsftpd not listening after 10 s:\n{table}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// vsftpd with `port_promiscuous=YES` on 2121 and with its default on 2122, listening.
fn promiscuous_and_default(ns: &Namespace, dir: &std::path::Path) -> [Spawned; 2] {
    let open = vsftpd_conf(dir, 2121, true);
    let safe = vsftpd_conf(dir, 2122, false);
    let servers = [
        spawn_in(ns, &["/usr/sbin/vsftpd", &open]),
        spawn_in(ns, &["/usr/sbin/vsftpd", &safe]),
    ];
    wait_listening(ns, &[2121, 2122]);
    servers
}

#[test]
fn a_promiscuous_vsftpd_bounces_to_loopback_and_the_default_refuses() {
    if !require_root("a_promiscuous_vsftpd_bounces_to_loopback_and_the_default_refuses")
        || !require_tool(
            "a_promiscuous_vsftpd_bounces_to_loopback_and_the_default_refuses",
            "vsftpd",
        )
    {
        return;
    }
    let tmp = TempDir::new("probe-ftp");
    let ns = namespace("probeftp");
    ns.exec(&["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        .expect("veth");
    ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "v0"])
        .expect("address");
    ns.exec(&["ip", "link", "set", "v0", "up"]).expect("v0 up");
    ns.exec(&["ip", "link", "set", "v1", "up"]).expect("v1 up");
    let _servers = promiscuous_and_default(&ns, tmp.path());

    let report = audit_json(&ns, &["--probe"]);
    let bounce = findings(&report, "relay.ftp-bounce", Some("tcp:0.0.0.0:2121"));
    assert_eq!(bounce.len(), 1, "{report:#}");
    assert_eq!(bounce[0]["status"], "open", "{:#}", bounce[0]);
    assert_eq!(bounce[0]["confidence"], "probed");
    let evidence = bounce[0]["evidence"].to_string();
    assert!(
        evidence.contains("opened a data connection") && evidence.contains("PORT 127,0,0,1,"),
        "the bounce is shown: {evidence}"
    );
    let refused = findings(&report, "relay.ftp-bounce", Some("tcp:0.0.0.0:2122"));
    assert_eq!(refused.len(), 1, "{report:#}");
    assert_eq!(refused[0]["status"], "blocked", "{:#}", refused[0]);
    assert!(
        refused[0]["evidence"].to_string().contains("500"),
        "vsftpd's refusal is quoted: {:#}",
        refused[0]
    );
    // FTP servers are not mistaken for proxies.
    assert!(findings(&report, "relay.socks-proxy", None).is_empty(), "{report:#}");
    assert!(findings(&report, "relay.http-proxy", None).is_empty(), "{report:#}");
}

/// Reached only over loopback (a namespace with nothing but `lo`), vsftpd's default still refuses
/// a data address that is not its client's own — the probe's client must not share its canary's
/// address (review #12: the default was reported as a HIGH open bounce). The promiscuous server
/// still bounces; replies are shown each with its own command.
#[test]
fn over_loopback_the_default_vsftpd_is_not_taken_for_a_bouncer() {
    let test = "over_loopback_the_default_vsftpd_is_not_taken_for_a_bouncer";
    if !require_root(test) || !require_tool(test, "vsftpd") {
        return;
    }
    let tmp = TempDir::new("probe-ftp-lo");
    let ns = namespace("probeftplo");
    let _servers = promiscuous_and_default(&ns, tmp.path());

    let report = audit_json(&ns, &["--probe"]);
    let refused = findings(&report, "relay.ftp-bounce", Some("tcp:0.0.0.0:2122"));
    assert_eq!(refused.len(), 1, "{report:#}");
    assert_eq!(refused[0]["status"], "blocked", "{:#}", refused[0]);
    let evidence = refused[0]["evidence"].to_string();
    assert!(
        evidence.contains("comes from 127.0.0.2") && evidence.contains("500"),
        "{evidence}"
    );
    let bounce = findings(&report, "relay.ftp-bounce", Some("tcp:0.0.0.0:2121"));
    assert_eq!(bounce[0]["status"], "open", "{:#}", bounce[0]);
    let evidence = bounce[0]["evidence"].to_string();
    assert!(evidence.contains("NLST → 150 "), "{evidence}");
    assert!(evidence.contains("(NLST, end of transfer) → 226 "), "{evidence}");
    assert!(evidence.contains("QUIT → 221 "), "{evidence}");
}
