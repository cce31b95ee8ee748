//! `/etc/hosts`: one address and its names per line, `#` starting a comment (hosts(5)).

use std::net::IpAddr;

/// One line of the hosts file that has at least an address field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsEntry {
    /// The address field; `None` when it is not an IP address glibc would accept as one here
    /// (a typo, a scoped `fe80::1%eth0`).
    pub address: Option<IpAddr>,
    /// The names that follow the address, as written.
    pub names: Vec<String>,
    /// The whole line, trimmed, comment included: what a report quotes.
    pub line: String,
}

impl HostsEntry {
    /// Whether the entry names `name` (host names compare without regard to case).
    pub fn names_host(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// The hosts file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostsFile {
    /// Every line with an address field; blank and comment-only lines are left out.
    pub entries: Vec<HostsEntry>,
}

impl HostsFile {
    /// Reads the text of a hosts file.
    pub fn parse(text: &str) -> HostsFile {
        let entries = text
            .lines()
            .filter_map(|line| {
                let content = line.split('#').next().unwrap_or("");
                let mut fields = content.split_whitespace();
                let address = fields.next()?;
                Some(HostsEntry {
                    address: address.parse().ok(),
                    names: fields.map(str::to_string).collect(),
                    line: line.trim().to_string(),
                })
            })
            .collect();
        HostsFile { entries }
    }

    /// The entries that give `name` an address, in file order.
    pub fn entries_for<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a HostsEntry> + 'a {
        self.entries.iter().filter(move |e| e.names_host(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_default_hosts_file() {
        let text =
            "127.0.0.1\tlocalhost\n127.0.1.1\tvm\n\n# The following lines are desirable for IPv6 capable hosts\n\
                    ::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n";
        let hosts = HostsFile::parse(text);
        assert_eq!(hosts.entries.len(), 4);
        let localhost: Vec<&str> = hosts.entries_for("LocalHost").map(|e| e.line.as_str()).collect();
        assert_eq!(
            localhost,
            ["127.0.0.1\tlocalhost", "::1     localhost ip6-localhost ip6-loopback"]
        );
        assert_eq!(hosts.entries[3].address, Some("ff02::1".parse().expect("an address")));
    }

    #[test]
    fn comments_and_bad_addresses() {
        let hosts = HostsFile::parse("  192.0.2.7 localhost # oops\nlocalhst localhost\nfe80::1%eth0 router\n");
        assert_eq!(hosts.entries[0].line, "192.0.2.7 localhost # oops");
        assert_eq!(hosts.entries[0].names, ["localhost"]);
        assert_eq!(hosts.entries[1].address, None);
        assert!(hosts.entries[1].names_host("localhost"));
        assert_eq!(hosts.entries[2].address, None);
    }
}
