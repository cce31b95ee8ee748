//! Forwarders' argv: which connections a running socat, ssh (`-L`/`-R`/`-D`), ncat, `kubectl
//! port-forward`, docker-proxy or systemd-socket-proxyd relays, and whether a user-mode network
//! stack (slirp4netns, pasta) hands its sandbox the host's loopback. Only forwardings whose
//! destination is loopback (of this host, or of the machine at the other end) are described.

use super::endpoint::{is_loopback_host, split_host_port};
use std::fmt;

/// A program that forwards connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// socat, `X-LISTEN:… Y:…`.
    Socat,
    /// OpenSSH's client, `-L`, `-R`, `-D`.
    Ssh,
    /// Nmap's ncat, `-l … --sh-exec/--exec`.
    Ncat,
    /// `kubectl port-forward --address`.
    Kubectl,
    /// Docker's userland proxy.
    DockerProxy,
    /// `systemd-socket-proxyd`.
    SocketProxyd,
    /// slirp4netns (rootless containers).
    Slirp4netns,
    /// pasta/passt (rootless Podman).
    Pasta,
}

impl Tool {
    /// The tool's name, as evidence names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Socat => "socat",
            Tool::Ssh => "ssh",
            Tool::Ncat => "ncat",
            Tool::Kubectl => "kubectl",
            Tool::DockerProxy => "docker-proxy",
            Tool::SocketProxyd => "systemd-socket-proxyd",
            Tool::Slirp4netns => "slirp4netns",
            Tool::Pasta => "pasta",
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a forwarder delivers its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A TCP `host:port` on this host.
    LocalTcp(String, u16),
    /// A Unix socket path on this host.
    LocalUnix(String),
    /// A loopback port of another machine (the ssh server, a pod).
    Elsewhere(String),
    /// Every loopback service of this host, from inside a sandbox.
    SandboxLoopback,
}

/// One forwarding the argv asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The program that forwards.
    pub tool: Tool,
    /// The argument(s) that set it up, as a report quotes them.
    pub spec: String,
    /// Where clients end up.
    pub destination: Destination,
    /// The listening side is on another machine (`ssh -R`); otherwise it is the process's own
    /// listening sockets.
    pub remote_listener: bool,
}

/// The programs this reader understands, by file name.
const FORWARDERS: &[&str] = &[
    "socat",
    "ssh",
    "ncat",
    "kubectl",
    "docker-proxy",
    "systemd-socket-proxyd",
    "slirp4netns",
    "pasta",
    "passt",
];

/// Whether `name` (a file name, no directory) is a program this reader understands.
pub fn is_forwarder(name: &str) -> bool {
    FORWARDERS.contains(&name)
}

/// The file name of a path (`/usr/bin/socat` → `socat`).
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The forwardings a process's argv (`/proc/PID/cmdline`) sets up, the program told by
/// `argv[0]`; empty for any other program.
pub fn forwards(argv: &[String]) -> Vec<Forward> {
    match argv.first() {
        Some(first) => forwards_as(file_name(first), argv),
        None => Vec::new(),
    }
}

/// The forwardings `argv` sets up when the program is `program` (its executable's file name:
/// `argv[0]` is the caller's to choose — `exec -a`, systemd's `ExecStart=@`); empty for any
/// other program.
pub fn forwards_as(program: &str, argv: &[String]) -> Vec<Forward> {
    let args = argv.get(1..).unwrap_or_default();
    match program {
        "socat" => socat(args).into_iter().collect(),
        "ssh" => ssh(args),
        "ncat" => ncat(args).into_iter().collect(),
        "kubectl" => kubectl(args).into_iter().collect(),
        "docker-proxy" => docker_proxy(args).into_iter().collect(),
        "systemd-socket-proxyd" => socket_proxyd(args).into_iter().collect(),
        "slirp4netns" if !args.iter().any(|a| a == "--disable-host-loopback") => vec![Forward {
            tool: Tool::Slirp4netns,
            spec: "no --disable-host-loopback: the sandbox reaches host loopback as 10.0.2.2".into(),
            destination: Destination::SandboxLoopback,
            remote_listener: false,
        }],
        "pasta" | "passt"
            if !args
                .iter()
                .any(|a| a == "--no-map-gw" || a == "--map-host-loopback=none")
                && !args.windows(2).any(|w| w[0] == "--map-host-loopback" && w[1] == "none") =>
        {
            vec![Forward {
                tool: Tool::Pasta,
                spec: "no --no-map-gw: the sandbox reaches host loopback at its gateway address".into(),
                destination: Destination::SandboxLoopback,
                remote_listener: false,
            }]
        }
        _ => Vec::new(),
    }
}

/// A local destination from `host:port` when the host is loopback.
fn local_tcp(spec: &str) -> Option<Destination> {
    let (host, port) = split_host_port(spec)?;
    is_loopback_host(&host).then_some(Destination::LocalTcp(host, port))
}

fn socat(args: &[String]) -> Option<Forward> {
    let addresses: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') || a.as_str() == "-")
        .collect();
    let [first, second] = addresses.as_slice() else {
        return None;
    };
    let is_listen = |a: &str| {
        let kind = a.split(':').next().unwrap_or("").to_ascii_uppercase();
        kind.contains("-LISTEN") || kind.ends_with("-L")
    };
    let (listen, connect) = if is_listen(first) {
        (first, second)
    } else if is_listen(second) {
        (second, first)
    } else {
        return None;
    };
    let (kind, rest) = connect.split_once(':')?;
    let body = rest.split(',').next().unwrap_or(rest);
    let destination = match kind.to_ascii_uppercase().as_str() {
        "TCP" | "TCP4" | "TCP6" | "TCP-CONNECT" | "TCP4-CONNECT" | "TCP6-CONNECT" | "OPENSSL" | "SSL" => {
            local_tcp(body)?
        }
        "UNIX-CONNECT" | "UNIX-CLIENT" | "UNIX" | "GOPEN" => Destination::LocalUnix(body.to_string()),
        "ABSTRACT-CONNECT" | "ABSTRACT-CLIENT" => Destination::LocalUnix(format!("@{body}")),
        _ => return None,
    };
    Some(Forward {
        tool: Tool::Socat,
        spec: format!("{listen} → {connect}"),
        destination,
        remote_listener: false,
    })
}

/// Splits an ssh forwarding spec on colons outside brackets.
fn colon_fields(spec: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in spec.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

fn ssh(args: &[String]) -> Vec<Forward> {
    const WITH_VALUE: &str = "BbcDEeFIiJLlmOopQRSWw";
    let mut specs: Vec<(char, String)> = Vec::new();
    let mut destination: Option<String> = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            if destination.is_none() {
                destination = Some(arg.clone());
            }
            continue;
        };
        for (i, flag) in flags.char_indices() {
            if WITH_VALUE.contains(flag) {
                let attached = &flags[i + flag.len_utf8()..];
                let value = if attached.is_empty() {
                    iter.next().cloned()
                } else {
                    Some(attached.to_string())
                };
                if let (Some(value), true) = (value, matches!(flag, 'L' | 'R' | 'D')) {
                    specs.push((flag, value));
                }
                break;
            }
        }
    }
    let server = destination.unwrap_or_default();
    let server_host = server.rsplit('@').next().unwrap_or(&server).to_string();
    let server_is_local = is_loopback_host(&server_host);
    let mut out = Vec::new();
    for (flag, spec) in specs {
        let fields = colon_fields(&spec);
        let n = fields.len();
        let forward = match flag {
            'R' if n >= 3 => {
                let host = &fields[n - 2];
                let Ok(port) = fields[n - 1].parse::<u16>() else {
                    continue;
                };
                if !is_loopback_host(host) {
                    continue;
                }
                Forward {
                    tool: Tool::Ssh,
                    spec: format!("-R {spec} (remote listener on {server_host}, destination on this host)"),
                    destination: Destination::LocalTcp(host.clone(), port),
                    remote_listener: true,
                }
            }
            'L' if n >= 3 => {
                let host = &fields[n - 2];
                let Ok(port) = fields[n - 1].parse::<u16>() else {
                    continue;
                };
                if !is_loopback_host(host) {
                    continue;
                }
                let destination = match server_is_local {
                    true => Destination::LocalTcp(host.clone(), port),
                    false => Destination::Elsewhere(format!("loopback port {port} of ssh server {server_host}")),
                };
                Forward {
                    tool: Tool::Ssh,
                    spec: format!("-L {spec}"),
                    destination,
                    remote_listener: false,
                }
            }
            'D' => {
                let what = match server_is_local {
                    true => "every loopback service of this host (SOCKS through ssh to itself)".to_string(),
                    false => format!("every loopback service of ssh server {server_host} (SOCKS)"),
                };
                Forward {
                    tool: Tool::Ssh,
                    spec: format!("-D {spec}"),
                    destination: Destination::Elsewhere(what),
                    remote_listener: false,
                }
            }
            _ => continue,
        };
        out.push(forward);
    }
    out
}

fn ncat(args: &[String]) -> Option<Forward> {
    if !args
        .iter()
        .any(|a| a == "-l" || a == "--listen" || (a.starts_with('-') && !a.starts_with("--") && a.contains('l')))
    {
        return None;
    }
    let pos = args
        .iter()
        .position(|a| matches!(a.as_str(), "--sh-exec" | "-c" | "--exec" | "-e"))?;
    let command = args.get(pos + 1)?;
    let words: Vec<&str> = command.split_whitespace().collect();
    let destination = words.iter().find_map(|w| {
        let (kind, rest) = w.split_once(':')?;
        kind.to_ascii_uppercase()
            .starts_with("TCP")
            .then(|| local_tcp(rest.split(',').next().unwrap_or(rest)))
            .flatten()
    });
    let destination = destination.or_else(|| {
        let start = words
            .iter()
            .position(|w| matches!(w.rsplit('/').next(), Some("ncat" | "nc" | "netcat")))?;
        let rest: Vec<&&str> = words[start + 1..].iter().filter(|w| !w.starts_with('-')).collect();
        let (host, port) = (rest.first()?, rest.get(1)?.parse::<u16>().ok()?);
        is_loopback_host(host).then(|| Destination::LocalTcp(host.to_string(), port))
    })?;
    Some(Forward {
        tool: Tool::Ncat,
        spec: format!("{} \"{command}\"", args[pos]),
        destination,
        remote_listener: false,
    })
}

fn kubectl(args: &[String]) -> Option<Forward> {
    if !args.iter().any(|a| a == "port-forward") {
        return None;
    }
    let address = args
        .iter()
        .position(|a| a == "--address")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--address=").map(str::to_string))
        })?;
    if address.split(',').all(is_loopback_host) {
        return None;
    }
    Some(Forward {
        tool: Tool::Kubectl,
        spec: format!("port-forward --address {address}"),
        destination: Destination::Elsewhere("a pod's ports (kubectl connects to the pod's localhost)".into()),
        remote_listener: false,
    })
}

fn docker_proxy(args: &[String]) -> Option<Forward> {
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let (ip, port) = (value("-container-ip")?, value("-container-port")?.parse::<u16>().ok()?);
    is_loopback_host(ip).then(|| Forward {
        tool: Tool::DockerProxy,
        spec: format!("-container-ip {ip} -container-port {port}"),
        destination: Destination::LocalTcp(ip.clone(), port),
        remote_listener: false,
    })
}

fn socket_proxyd(args: &[String]) -> Option<Forward> {
    let target = args.iter().find(|a| !a.starts_with('-'))?;
    let destination = if target.starts_with('/') {
        Destination::LocalUnix(target.clone())
    } else {
        local_tcp(target)?
    };
    Some(Forward {
        tool: Tool::SocketProxyd,
        spec: target.clone(),
        destination,
        remote_listener: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(cmd: &str) -> Vec<String> {
        cmd.split_whitespace().map(str::to_string).collect()
    }

    fn dests(cmd: &str) -> Vec<Destination> {
        forwards(&argv(cmd)).into_iter().map(|f| f.destination).collect()
    }

    #[test]
    fn socat_forwards_to_loopback_are_recognised_in_either_order() {
        let tcp = Destination::LocalTcp("127.0.0.1".into(), 7001);
        assert_eq!(
            dests("socat TCP-LISTEN:8080,fork,reuseaddr TCP:127.0.0.1:7001"),
            vec![tcp.clone()]
        );
        assert_eq!(dests("socat -d -d TCP:127.0.0.1:7001 TCP4-LISTEN:8080,fork"), vec![tcp]);
        assert_eq!(
            dests("socat TCP-LISTEN:8080 UNIX-CONNECT:/run/app.sock"),
            vec![Destination::LocalUnix("/run/app.sock".into())]
        );
        assert!(dests("socat TCP-LISTEN:8080,fork TCP:192.0.2.7:80").is_empty());
    }

    #[test]
    fn ssh_forward_directions_are_told_apart() {
        assert_eq!(
            dests("ssh -N -R 9000:localhost:5432 user@bastion.example"),
            vec![Destination::LocalTcp("localhost".into(), 5432)]
        );
        assert!(matches!(
            dests("ssh -g -L 8080:127.0.0.1:5432 db.example")[0],
            Destination::Elsewhere(_)
        ));
        assert_eq!(
            dests("ssh -fNL0.0.0.0:8080:127.0.0.1:5432 localhost"),
            vec![Destination::LocalTcp("127.0.0.1".into(), 5432)]
        );
        assert!(dests("ssh -L 8080:intranet.example:80 gw.example").is_empty());
    }

    #[test]
    fn the_program_may_differ_from_argv0() {
        let argv = argv("myproxy TCP-LISTEN:9400,bind=0.0.0.0,fork TCP:127.0.0.1:7001");
        assert!(forwards(&argv).is_empty());
        assert_eq!(
            forwards_as("socat", &argv)[0].destination,
            Destination::LocalTcp("127.0.0.1".into(), 7001)
        );
        assert!(is_forwarder("socat") && !is_forwarder("myproxy"));
    }

    #[test]
    fn other_forwarders_are_recognised() {
        let mut p = argv("ncat -l -k 8080 --sh-exec x");
        p[5] = "ncat 127.0.0.1 7001".into();
        assert_eq!(
            forwards(&p)[0].destination,
            Destination::LocalTcp("127.0.0.1".into(), 7001)
        );
        assert_eq!(
            dests("systemd-socket-proxyd 127.0.0.1:8080"),
            vec![Destination::LocalTcp("127.0.0.1".into(), 8080)]
        );
        assert!(matches!(
            dests("kubectl port-forward --address 0.0.0.0 pod/web 8080:80")[0],
            Destination::Elsewhere(_)
        ));
        assert!(dests("kubectl port-forward pod/web 8080:80").is_empty());
        assert_eq!(
            dests("slirp4netns --configure 1234 tap0"),
            vec![Destination::SandboxLoopback]
        );
        assert!(dests("slirp4netns --disable-host-loopback 1234 tap0").is_empty());
    }
}
