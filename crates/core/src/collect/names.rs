//! `/etc/hosts` and the `hosts:` line of `/etc/nsswitch.conf`.

use super::etc_view::EtcView;
use crate::facts::{Limit, NameResolution};

/// Reads the name resolution inputs as `view`'s processes see them. A missing file is a fact
/// (`None`); an unreadable one is named in `unreadable` and in the limits.
pub fn collect(view: &EtcView, limits: &mut Vec<Limit>) -> NameResolution {
    let mut unreadable = Vec::new();
    let hosts_file = read(view, "hosts", limits, &mut unreadable);
    let nsswitch_hosts = read(view, "nsswitch.conf", limits, &mut unreadable).and_then(|text| hosts_line(&text));
    NameResolution {
        hosts_file,
        nsswitch_hosts,
        unreadable,
    }
}

fn read(view: &EtcView, file: &str, limits: &mut Vec<Limit>, unreadable: &mut Vec<String>) -> Option<String> {
    match view.read(file) {
        Ok(text) => text,
        Err(why) => {
            limits.push(Limit {
                scope: "names".into(),
                detail: why,
            });
            unreadable.push(view.shown(file));
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
