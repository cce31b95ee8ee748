//! pasta's port forwarding, from its argv: which ports of the namespace it joins (`--netns`, or a
//! pid) it publishes in its own. `-t`/`--tcp-ports` and `-u`/`--udp-ports` take `none`, `auto`
//! (every port bound in the namespace, the default), or a comma-separated list of
//! `[ADDR[%IF]/]PORT[-PORT][:PORT[-PORT]]` with `~PORT[-PORT]` exclusions (pasta(1)). A
//! connection that reaches a forwarded port through pasta's side's loopback is spliced to the
//! namespace's loopback (`127.0.0.1` or `::1`), the rest goes to the namespace's address.

use crate::facts::Protocol;
use std::ops::RangeInclusive;

/// One `-t`/`-u` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// TCP (`-t`) or UDP (`-u`).
    pub protocol: Protocol,
    /// The option as given, for evidence (`-t 28080:18080`).
    pub spec: String,
    /// Forwarded ranges; empty with `auto`.
    pub ranges: Vec<Forwarded>,
    /// `auto`: every port bound in the namespace.
    pub auto: bool,
    /// Ports excluded with `~`.
    pub excluded: Vec<RangeInclusive<u16>>,
}

/// A forwarded range: pasta's ports `listen` to the namespace's ports from `target_start` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The address pasta binds on its side, when one is given.
    pub address: Option<String>,
    /// Ports pasta listens on.
    pub listen: RangeInclusive<u16>,
    /// The namespace port the first of them goes to.
    pub target_start: u16,
}

impl PortForward {
    /// The port pasta listens on for namespace port `target`, if it forwards that one.
    pub fn listen_port_for(&self, target: u16) -> Option<u16> {
        let excluded = |port: u16| self.excluded.iter().any(|r| r.contains(&port));
        if self.auto {
            return (!excluded(target)).then_some(target);
        }
        self.ranges.iter().find_map(|r| {
            let offset = target.checked_sub(r.target_start)?;
            let listen = r.listen.start().checked_add(offset)?;
            (r.listen.contains(&listen) && !excluded(listen)).then_some(listen)
        })
    }
}

/// Whether a program, named by its executable (`/usr/bin/passt.avx2`: `pasta` is passt under
/// another name) or by `comm`, is pasta/passt. Not by `argv[0]`, which its caller chooses.
pub fn is_pasta(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    base.starts_with("passt") || base.starts_with("pasta")
}

/// The forwardings pasta's arguments (`argv` without `argv[0]`) set up.
pub fn forwards(args: &[String]) -> Vec<PortForward> {
    let mut out = Vec::new();
    let (mut tcp, mut udp) = (false, false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (protocol, value): (Protocol, Option<&str>) = if let Some(v) = arg.strip_prefix("--tcp-ports=") {
            (Protocol::Tcp, Some(v))
        } else if let Some(v) = arg.strip_prefix("--udp-ports=") {
            (Protocol::Udp, Some(v))
        } else {
            match arg.as_str() {
                "-t" | "--tcp-ports" => (Protocol::Tcp, args.next().map(String::as_str)),
                "-u" | "--udp-ports" => (Protocol::Udp, args.next().map(String::as_str)),
                _ => continue,
            }
        };
        let Some(value) = value else { break };
        match protocol {
            Protocol::Tcp => tcp = true,
            Protocol::Udp => udp = true,
        }
        let flag = if protocol == Protocol::Tcp { "-t" } else { "-u" };
        if let Some(forward) = parse(protocol, &format!("{flag} {value}"), value) {
            out.push(forward);
        }
    }
    // Without an option, pasta forwards every bound port ("default: auto").
    for (given, protocol) in [(tcp, Protocol::Tcp), (udp, Protocol::Udp)] {
        if !given {
            out.push(PortForward {
                protocol,
                spec: format!(
                    "no {} option: auto",
                    if protocol == Protocol::Tcp { "-t" } else { "-u" }
                ),
                ranges: Vec::new(),
                auto: true,
                excluded: Vec::new(),
            });
        }
    }
    out
}

/// One option's value; `None` for `none` or a value that does not parse.
fn parse(protocol: Protocol, spec: &str, value: &str) -> Option<PortForward> {
    let mut forward = PortForward {
        protocol,
        spec: spec.to_string(),
        ranges: Vec::new(),
        auto: false,
        excluded: Vec::new(),
    };
    match value {
        "none" => return None,
        "auto" | "all" => {
            forward.auto = true;
            return Some(forward);
        }
        _ => {}
    }
    for item in value.split(',') {
        if let Some(excluded) = item.strip_prefix('~') {
            forward.excluded.push(range(excluded)?);
            continue;
        }
        let (address, ports) = match item.rsplit_once('/') {
            Some((address, ports)) => (Some(address.to_string()), ports),
            None => (None, item),
        };
        let (listen, target) = match ports.split_once(':') {
            Some((listen, target)) => (range(listen)?, range(target)?),
            None => (range(ports)?, range(ports)?),
        };
        forward.ranges.push(Forwarded {
            address,
            listen,
            target_start: *target.start(),
        });
    }
    // Only exclusions: every bound port but those.
    forward.auto = forward.ranges.is_empty();
    Some(forward)
}

/// `80` or `22-80`.
fn range(text: &str) -> Option<RangeInclusive<u16>> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some(a..=b)
        }
        None => {
            let port = text.parse().ok()?;
            Some(port..=port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments of a command line, without `argv[0]`.
    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().skip(1).map(str::to_string).collect()
    }

    #[test]
    fn explicit_ports_map_to_their_targets() {
        let found = forwards(&argv(
            "pasta --netns /run/netns/c -t 28080:18080,22 -u none -f --config-net",
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        let tcp = &found[0];
        assert_eq!(tcp.spec, "-t 28080:18080,22");
        assert_eq!(tcp.listen_port_for(18080), Some(28080));
        assert_eq!(tcp.listen_port_for(22), Some(22));
        assert_eq!(tcp.listen_port_for(28080), None);
    }

    #[test]
    fn ranges_addresses_and_exclusions() {
        let found = forwards(&argv("/usr/bin/pasta -t 192.0.2.1/2000-2010:3000-3010,~2005 -u 53"));
        let tcp = found.iter().find(|f| f.protocol == Protocol::Tcp).expect("tcp");
        assert_eq!(tcp.listen_port_for(3003), Some(2003));
        assert_eq!(tcp.listen_port_for(3005), None, "excluded");
        assert_eq!(tcp.ranges[0].address.as_deref(), Some("192.0.2.1"));
        let udp = found.iter().find(|f| f.protocol == Protocol::Udp).expect("udp");
        assert_eq!(udp.listen_port_for(53), Some(53));
    }

    #[test]
    fn without_options_every_bound_port_is_forwarded() {
        let found = forwards(&argv("pasta --config-net 4242"));
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.auto && f.listen_port_for(631) == Some(631)));
        let except = forwards(&argv("pasta -t ~25 -u none"));
        assert_eq!(except[0].listen_port_for(25), None);
        assert_eq!(except[0].listen_port_for(80), Some(80));
    }

    #[test]
    fn pasta_is_known_by_its_executable_and_garbage_gives_nothing() {
        assert!(is_pasta("/usr/bin/passt.avx2") && is_pasta("passt.avx2") && is_pasta("/usr/bin/pasta"));
        assert!(!is_pasta("/usr/bin/socat") && !is_pasta("python3"));
        let odd = forwards(&argv("pasta -t 99999 -t 5-1 -u"));
        assert!(odd.iter().all(|f| f.protocol == Protocol::Udp || f.auto), "{odd:?}");
    }
}
