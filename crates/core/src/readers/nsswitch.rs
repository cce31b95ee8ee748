//! The `hosts:` line of `/etc/nsswitch.conf`: which name services glibc asks, in order
//! (nsswitch.conf(5)).

use std::fmt;

/// glibc's order when nsswitch.conf has no `hosts:` line.
pub const GLIBC_DEFAULT: &str = "dns [!UNAVAIL=return] files";

/// One name service on the `hosts:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostsSource {
    /// `files`: `/etc/hosts`.
    Files,
    /// `dns`: the resolvers of `/etc/resolv.conf`.
    Dns,
    /// `myhostname`: nss-myhostname, which answers `localhost` (and `*.localhost`) with loopback.
    Myhostname,
    /// `resolve`: nss-resolve (systemd-resolved), which also answers `localhost` with loopback.
    Resolve,
    /// Any other service (`mdns4_minimal`, `wins`, …), as written.
    Other(String),
}

impl HostsSource {
    fn parse(word: &str) -> HostsSource {
        match word {
            "files" => HostsSource::Files,
            "dns" => HostsSource::Dns,
            "myhostname" => HostsSource::Myhostname,
            "resolve" => HostsSource::Resolve,
            other => HostsSource::Other(other.to_string()),
        }
    }

    /// Whether the service answers `localhost` with loopback by itself, whatever the hosts file
    /// and DNS say.
    pub fn pins_localhost(&self) -> bool {
        matches!(self, HostsSource::Myhostname | HostsSource::Resolve)
    }
}

impl fmt::Display for HostsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostsSource::Files => "files",
            HostsSource::Dns => "dns",
            HostsSource::Myhostname => "myhostname",
            HostsSource::Resolve => "resolve",
            HostsSource::Other(name) => name,
        })
    }
}

/// How glibc looks host names up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsLookup {
    /// The `hosts:` line's value as read, or [`GLIBC_DEFAULT`] when there was none.
    pub line: String,
    /// Whether there was no `hosts:` line, so glibc's default applies.
    pub defaulted: bool,
    /// The services in the order glibc asks them; the `[STATUS=action]` items between them are
    /// left out.
    pub sources: Vec<HostsSource>,
}

impl HostsLookup {
    /// Reads the value of the `hosts:` line (without the key), or glibc's default for `None`.
    pub fn parse(hosts_line: Option<&str>) -> HostsLookup {
        let (line, defaulted) = match hosts_line {
            Some(line) => (line.to_string(), false),
            None => (GLIBC_DEFAULT.to_string(), true),
        };
        let sources = line
            .split_whitespace()
            .filter(|w| !w.starts_with('['))
            .map(HostsSource::parse)
            .collect();
        HostsLookup {
            line,
            defaulted,
            sources,
        }
    }

    /// Where `source` comes in the order, if it is asked at all.
    pub fn position(&self, source: &HostsSource) -> Option<usize> {
        self.sources.iter().position(|s| s == source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_line_and_glibc_default() {
        let debian = HostsLookup::parse(Some("files mdns4_minimal [NOTFOUND=return] dns myhostname"));
        assert_eq!(
            debian.sources,
            [
                HostsSource::Files,
                HostsSource::Other("mdns4_minimal".into()),
                HostsSource::Dns,
                HostsSource::Myhostname
            ]
        );
        assert_eq!(debian.position(&HostsSource::Dns), Some(2));
        assert!(!debian.defaulted);
        let default = HostsLookup::parse(None);
        assert!(default.defaulted);
        assert_eq!(default.line, GLIBC_DEFAULT);
        assert_eq!(default.sources, [HostsSource::Dns, HostsSource::Files]);
        assert_eq!(default.position(&HostsSource::Resolve), None);
    }
}
