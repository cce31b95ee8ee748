//! `sshd -T`: the effective configuration of a running OpenSSH server (one `keyword value` per
//! line, keywords lowercased by sshd), as far as it decides TCP forwarding.

use std::collections::BTreeMap;
use std::fmt;

/// `AllowTcpForwarding`: which TCP forwardings sshd grants its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpForwarding {
    /// `yes` (also spelled `all` in sshd_config; `sshd -T` prints `yes`): local and remote.
    Yes,
    /// `local`: only client-requested forwardings (`ssh -L`, `-D`).
    Local,
    /// `remote`: only server-side listeners (`ssh -R`).
    Remote,
    /// `no`.
    No,
    /// A value sshd would not print, kept as written (lowercased).
    Other(String),
}

impl TcpForwarding {
    fn parse(value: &str) -> TcpForwarding {
        match value {
            "yes" | "all" => TcpForwarding::Yes,
            "local" => TcpForwarding::Local,
            "remote" => TcpForwarding::Remote,
            "no" => TcpForwarding::No,
            other => TcpForwarding::Other(other.to_string()),
        }
    }
}

impl fmt::Display for TcpForwarding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpForwarding::Yes => "yes",
            TcpForwarding::Local => "local",
            TcpForwarding::Remote => "remote",
            TcpForwarding::No => "no",
            TcpForwarding::Other(value) => value,
        })
    }
}

/// What one `sshd -T` dump says about TCP forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshdConfig {
    /// `AllowTcpForwarding`.
    pub allow_tcp_forwarding: TcpForwarding,
    /// `DisableForwarding yes`: every kind of forwarding off, whatever else says (absent: no).
    pub disable_forwarding: bool,
    /// `PermitOpen`: the destinations `ssh -L` may reach, as written (`any`, `none`, `host:port`,
    /// `*:port`, `host:*`); absent means `any`.
    pub permit_open: Vec<String>,
    /// `GatewayPorts` (`no`, `yes`, `clientspecified`), lowercased: whether `ssh -R` listeners
    /// may bind beyond loopback; `None` when not printed.
    pub gateway_ports: Option<String>,
}

impl SshdConfig {
    /// Reads `sshd -T` output; `None` when it has no `allowtcpforwarding` line, i.e. is not what
    /// `sshd -T` prints.
    pub fn parse(output: &str) -> Option<SshdConfig> {
        let map = settings(output);
        let one = |k: &str| map.get(k).and_then(|v| v.first()).map(|v| v.to_ascii_lowercase());
        let allow_tcp_forwarding = TcpForwarding::parse(&one("allowtcpforwarding")?);
        let permit_open = match map.get("permitopen") {
            Some(values) => values
                .iter()
                .flat_map(|v| v.split_whitespace().map(str::to_string))
                .collect(),
            None => vec!["any".to_string()],
        };
        Some(SshdConfig {
            allow_tcp_forwarding,
            disable_forwarding: one("disableforwarding").is_some_and(|v| v == "yes"),
            permit_open,
            gateway_ports: one("gatewayports"),
        })
    }
}

/// Keys of `sshd -T` output, lowercased, with all values of repeated keys.
fn settings(output: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in output.lines() {
        if let Some((key, value)) = line.trim().split_once(' ') {
            map.entry(key.to_ascii_lowercase())
                .or_default()
                .push(value.trim().to_string());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_explicit_values_are_read() {
        let default =
            SshdConfig::parse("allowtcpforwarding yes\ndisableforwarding no\npermitopen any\ngatewayports no\n");
        assert_eq!(
            default,
            Some(SshdConfig {
                allow_tcp_forwarding: TcpForwarding::Yes,
                disable_forwarding: false,
                permit_open: vec!["any".into()],
                gateway_ports: Some("no".into()),
            })
        );
        let set =
            SshdConfig::parse("AllowTcpForwarding LOCAL\nDisableForwarding yes\npermitopen a:1 b:2\npermitopen c:3\n")
                .expect("an sshd -T dump");
        assert_eq!(set.allow_tcp_forwarding, TcpForwarding::Local);
        assert!(set.disable_forwarding);
        assert_eq!(set.permit_open, ["a:1", "b:2", "c:3"]);
        assert_eq!(set.gateway_ports, None);
    }

    #[test]
    fn absent_permitopen_is_any_and_other_text_is_not_a_dump() {
        let bare = SshdConfig::parse("allowtcpforwarding remote\n").expect("an sshd -T dump");
        assert_eq!(
            (bare.allow_tcp_forwarding, bare.permit_open),
            (TcpForwarding::Remote, vec!["any".to_string()])
        );
        assert_eq!(SshdConfig::parse("port 22\n"), None);
        assert_eq!(SshdConfig::parse(""), None);
    }
}
