//! A real ufw host for the truth tests: Debian's `ufw` 0.36 enabled inside the victim namespace
//! of a [`Lan`]. ufw writes its configuration while enabling, so it runs in a private mount
//! namespace where `/etc/ufw`, `/lib/ufw` and `/etc/default/ufw` are bind-mounted from copies
//! under a temporary directory: the host's files are never changed. Its rules live in the
//! victim namespace's netfilter tables and stay after the mount namespace is gone; its
//! `sysctl.conf` (accept_redirects, icmp_*, log_martians — all per network namespace) is
//! applied inside the victim namespace by ufw itself.

use super::real::{Ipv6, Lan};
use super::{must, TempDir};
use std::process::Command;

/// A victim namespace with ufw enabled.
pub struct UfwHost {
    /// The segment: `victim` runs ufw.
    pub lan: Lan,
    _dir: TempDir,
}

/// Copies the configuration into place inside the private mount namespace, then runs the ufw
/// commands given as arguments (each one a single shell word list).
const RUN: &str = r#"set -eu
copy=$1; shift
mount --bind "$copy/etc-ufw" /etc/ufw
mount --bind "$copy/lib-ufw" /lib/ufw
mount --bind "$copy/default-ufw" /etc/default/ufw
for c in "$@"; do
    # shellcheck disable=SC2086
    ufw $c
done
"#;

impl UfwHost {
    /// Builds the LAN and runs `ufw --force enable` followed by each of `rules` (`allow 22`).
    pub fn start(tag: &str, rules: &[&str]) -> UfwHost {
        let lan = Lan::new(tag, Ipv6::Global);
        let dir = TempDir::new(&format!("ufw{tag}"));
        let copy = dir.path();
        must(Command::new("cp").arg("-a").arg("/etc/ufw").arg(copy.join("etc-ufw")));
        must(Command::new("cp").arg("-aL").arg("/lib/ufw").arg(copy.join("lib-ufw")));
        must(
            Command::new("cp")
                .arg("-a")
                .arg("/etc/default/ufw")
                .arg(copy.join("default-ufw")),
        );
        let copy_arg = copy.to_string_lossy().into_owned();
        let mut argv = vec![
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            RUN,
            "ufw-in-namespace",
            &copy_arg,
            "--force enable",
        ];
        argv.extend_from_slice(rules);
        must(&mut lan.victim.command(&argv));
        UfwHost { lan, _dir: dir }
    }

    /// `iptables-save` and `ip6tables-save` of the victim, for failure messages and fixtures.
    pub fn rules(&self) -> String {
        let v4 = self.lan.victim.exec(&["iptables-save"]).unwrap_or_default();
        let v6 = self.lan.victim.exec(&["ip6tables-save"]).unwrap_or_default();
        format!("{v4}\n{v6}")
    }
}
