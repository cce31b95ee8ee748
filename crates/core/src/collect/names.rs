//! `/etc/hosts` and the `hosts:` line of `/etc/nsswitch.conf`.

use crate::facts::{Limit, NameResolution};
use std::io::ErrorKind;

/// Reads the name resolution inputs. A missing file is a fact (`None`); an unreadable one is
/// named in `unreadable` and in the limits.
pub fn collect(limits: &mut Vec<Limit>) -> NameResolution {
    let mut unreadable = Vec::new();
    let hosts_file = read("/etc/hosts", limits, &mut unreadable);
    let nsswitch_hosts = read("/etc/nsswitch.conf", limits, &mut unreadable).and_then(|text| hosts_line(&text));
    NameResolution {
        hosts_file,
        nsswitch_hosts,
        unreadable,
    }
}

fn read(path: &str, limits: &mut Vec<Limit>, unreadable: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            limits.push(Limit {
                scope: "names".into(),
                detail: format!("cannot read {path}: {e}"),
            });
            unreadable.push(path.to_string());
            None
        }
    }
}

/// The value of the last `hosts:` line (glibc uses the last one), comments stripped.
pub fn hosts_line(nsswitch: &str) -> Option<String> {
    nsswitch
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| l.trim_start().strip_prefix("hosts:"))
        .next_back()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::hosts_line;

    #[test]
    fn reads_the_debian_default_line() {
        let text =
            "passwd: files\n# hosts: dns\nhosts:          files mdns4_minimal [NOTFOUND=return] dns myhostname # x\n";
        assert_eq!(
            hosts_line(text).as_deref(),
            Some("files mdns4_minimal [NOTFOUND=return] dns myhostname")
        );
    }

    #[test]
    fn no_hosts_line_is_none() {
        assert_eq!(hosts_line("passwd: files\n"), None);
    }
}
