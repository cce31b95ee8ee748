//! A real Docker host for the truth tests: Debian's `docker.io` dockerd running inside the
//! victim namespace of a [`Lan`], in its own mount namespace (`unshare -m --propagation private`)
//! with a tmpfs over `/run`, the cgroup hierarchies mounted again (`ip netns exec` remounts
//! `/sys`), and every path (`--data-root`, `--exec-root`, `--pidfile`, the API socket) under a
//! temporary directory. The bridge uses 198.51.100.0/24 (documentation range). Images come from
//! `docker import` of a tarball holding `busybox-static` — no registry. Containers get the host's
//! `/usr` read-only, so the independent attacker (Python + scapy) can run inside one with the
//! container's own namespaces and Docker's default capabilities.
//!
//! Dropping the host removes its containers, stops dockerd (SIGTERM by pid, then the namespace's
//! clean-up kills what is left), removes its cgroups and its directory.

use super::real::{link_mac, Attacker, Ipv6, Lan, SYSTEM_PYTHON};
use super::{must, TempDir};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Docker bridge's address (dockerd `--bip`).
pub const BRIDGE_V4: &str = "198.51.100.1";
/// The address a container attacker claims on the bridge.
pub const CONTAINER_CLAIM_V4: &str = "198.51.100.200";
/// The IPv6 address a container attacker claims (unused by the bridge, which has none).
pub const CONTAINER_CLAIM_V6: &str = "2001:db8:d0c::200";

/// How dockerd publishes ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    /// The default: docker-proxy listens on the published address, plus DNAT rules.
    Userland,
    /// `"userland-proxy": false` in dockerd's `daemon.json` (where hosts set it, so its command
    /// line does not say so): DNAT rules only, and route_localnet=1 on docker0.
    Off,
}

/// A container started by [`DockerHost::run`].
#[derive(Debug, Clone)]
pub struct Container {
    /// Its name.
    pub name: String,
    /// Its init process, in the root pid namespace (for `nsenter`).
    pub pid: u32,
    /// Its address on the bridge.
    pub ip: String,
}

/// dockerd inside the victim namespace of a LAN.
pub struct DockerHost {
    /// The segment: `victim` is the Docker host.
    pub lan: Lan,
    dir: TempDir,
    daemon_pid: u32,
    /// dockerd itself (`ip netns exec` and `unshare` exec into it), reaped when stopped.
    daemon: std::process::Child,
    cgroup_parent: String,
    containers: Vec<String>,
    /// MAC address of `docker0` (what a container attacker aims at).
    pub bridge_mac: String,
    /// How long dockerd took to answer its API.
    pub startup: Duration,
}

const IMAGE: &str = "lwtruth-busybox:1";

/// Mounts `/run` and the cgroup hierarchies again inside dockerd's private mount namespace, then
/// becomes dockerd. The cgroup mounts are copied from pid 1's view (`/proc/1/mounts`).
const START: &str = r#"set -eu
mount -t tmpfs -o mode=755 tmpfs /run
awk '$2 ~ "^/sys/fs/cgroup" {print $3, $2, $4}' /proc/1/mounts | while read -r type path opts; do
    mkdir -p "$path"
    case "$type" in
        tmpfs) mount -t tmpfs -o mode=755 cgroup "$path" ;;
        cgroup) mount -t cgroup -o "$opts" cgroup "$path" ;;
        cgroup2) mount -t cgroup2 cgroup2 "$path" ;;
    esac
done
exec "$@"
"#;

impl DockerHost {
    /// Builds the LAN, starts dockerd in its victim namespace and imports the busybox image.
    pub fn start(tag: &str, proxy: Proxy) -> DockerHost {
        let lan = Lan::new(tag, Ipv6::Global);
        let dir = TempDir::new(&format!("dk{tag}"));
        let root = dir.path().to_path_buf();
        let cgroup_parent = format!("/{}", root.file_name().and_then(|n| n.to_str()).unwrap_or("lw-docker"));
        let path = |p: &str| root.join(p).to_string_lossy().into_owned();
        let mut argv: Vec<String> = [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            START,
            "start-dockerd",
            "dockerd",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend([
            format!("--data-root={}", path("data")),
            format!("--exec-root={}", path("exec")),
            format!("--pidfile={}", path("dockerd.pid")),
            format!("--host=unix://{}", path("docker.sock")),
            format!("--bip={BRIDGE_V4}/24"),
            format!("--cgroup-parent={cgroup_parent}"),
            "--storage-driver=overlay2".into(),
        ]);
        match proxy {
            Proxy::Userland => argv.push("--userland-proxy=true".into()),
            Proxy::Off => {
                let config = root.join("daemon.json");
                std::fs::write(&config, "{\"userland-proxy\": false}\n").expect("daemon.json");
                argv.push(format!("--config-file={}", config.display()));
            }
        }
        let log = std::fs::File::create(root.join("dockerd.log")).expect("dockerd log");
        let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
        let started = Instant::now();
        let child = lan
            .victim
            .command(&argv_ref)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let mut host = DockerHost {
            lan,
            daemon_pid: child.id(),
            daemon: child,
            dir,
            cgroup_parent,
            containers: Vec::new(),
            bridge_mac: String::new(),
            startup: Duration::ZERO,
        };
        host.wait_ready(Duration::from_secs(60));
        host.startup = started.elapsed();
        host.bridge_mac = link_mac(&host.lan.victim, "docker0");
        host.import_image();
        host
    }

    fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let ok = self
                .client(&["version", "--format", "{{.Server.Version}}"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            if Instant::now() > deadline || !std::path::Path::new(&format!("/proc/{}", self.daemon_pid)).exists() {
                let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!(
                    "dockerd did not come up in the namespace:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A `docker` (Debian's client, `/usr/bin/docker`) command talking to this dockerd.
    pub fn client(&self, args: &[&str]) -> Command {
        let host = format!("unix://{}", self.dir.path().join("docker.sock").display());
        let mut argv = vec!["/usr/bin/docker", "-H", &host];
        argv.extend_from_slice(args);
        let mut cmd = self.lan.victim.command(&argv);
        cmd.env("DOCKER_CONFIG", self.dir.path().join("client"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `docker ARGS` and returns its stdout, panicking with stderr on failure.
    pub fn docker(&self, args: &[&str]) -> String {
        must(&mut self.client(args))
    }

    /// Imports a root filesystem holding busybox-static, with `/lib` and `/lib64` pointing into
    /// `/usr` (which containers get from the host, read-only).
    fn import_image(&self) {
        let rootfs = self.dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "usr", "proc", "sys", "dev", "lwtruth"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("rootfs dir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox-static");
        for (link, to) in [("bin/sh", "busybox"), ("lib", "usr/lib"), ("lib64", "usr/lib64")] {
            std::os::unix::fs::symlink(to, rootfs.join(link)).expect("rootfs symlink");
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").expect("passwd");
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").expect("group");
        let tar = self.dir.path().join("rootfs.tar");
        must(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg("."));
        self.docker(&["import", tar.to_str().unwrap_or_default(), IMAGE]);
    }

    /// `docker run -d --name NAME PUBLISH… IMAGE busybox sleep`, with the host's `/usr` and the
    /// test scripts mounted read-only.
    pub fn run(&mut self, name: &str, publish: &[&str]) -> Container {
        self.launch(name, None, publish)
    }

    /// [`DockerHost::run`] on the user-defined `network` (made by `docker network create`), or
    /// with `--network host` for `host`.
    pub fn run_on(&mut self, name: &str, network: &str, publish: &[&str]) -> Container {
        self.launch(name, Some(network), publish)
    }

    fn launch(&mut self, name: &str, network: Option<&str>, publish: &[&str]) -> Container {
        let scripts = format!("{}:/lwtruth:ro", super::real::script("").display());
        let mut args = vec!["run", "-d", "--name", name, "-v", "/usr:/usr:ro", "-v", &scripts];
        if let Some(network) = network {
            args.extend(["--network", network]);
        }
        for p in publish {
            args.extend(["-p", p]);
        }
        args.extend([IMAGE, "/bin/busybox", "sleep", "3600"]);
        self.docker(&args);
        self.containers.push(name.to_string());
        let pid = self.docker(&["inspect", "-f", "{{.State.Pid}}", name]);
        // One network per container here: the default bridge or the one named.
        let ip = self.docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            name,
        ]);
        Container {
            name: name.into(),
            pid: pid.trim().parse().expect("container pid"),
            ip: ip.trim().to_string(),
        }
    }

    /// The independent attacker running *inside* `container` (`docker exec`, the container's
    /// namespaces and Docker's default capabilities), aiming at the bridge's MAC.
    pub fn attacker_in(&self, container: &Container) -> Attacker {
        let cmd = self.client(&[
            "exec",
            "-i",
            &container.name,
            SYSTEM_PYTHON,
            "-u",
            "/lwtruth/attacker.py",
            "--iface",
            "eth0",
            "--claim",
            CONTAINER_CLAIM_V4,
            "--claim",
            CONTAINER_CLAIM_V6,
        ]);
        Attacker::start(cmd, &self.bridge_mac, CONTAINER_CLAIM_V4, CONTAINER_CLAIM_V6)
    }

    /// The directory holding dockerd's state and log.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn stop_daemon(&mut self) {
        let pid = self.daemon_pid.to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !matches!(self.daemon.try_wait(), Ok(Some(_)) | Err(_)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn remove_cgroups(&self) {
        let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for e in entries.flatten() {
            let parent = e.path().join(self.cgroup_parent.trim_start_matches('/'));
            if parent.is_dir() {
                // Children first (containers that dockerd did not clean up: their processes are
                // this test's, in this test's own cgroup parent), then the parent.
                if let Ok(children) = std::fs::read_dir(&parent) {
                    for c in children.flatten().filter(|c| c.path().is_dir()) {
                        let procs = std::fs::read_to_string(c.path().join("cgroup.procs")).unwrap_or_default();
                        for pid in procs.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                            // SAFETY: kill(2) on a process in this test's own container cgroup.
                            unsafe {
                                libc::kill(pid, libc::SIGKILL);
                            }
                        }
                        std::thread::sleep(Duration::from_millis(50));
                        let _ = std::fs::remove_dir(c.path());
                    }
                }
                let _ = std::fs::remove_dir(&parent);
            }
        }
    }
}

impl Drop for DockerHost {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(self.containers.iter().map(String::as_str));
            let _ = self.client(&args).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        self.stop_daemon();
        self.remove_cgroups();
    }
}
