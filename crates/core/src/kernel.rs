//! How the kernel combines the per-interface IPv4 settings that decide whether loopback-addressed
//! packets arriving from outside are routed — one place for the rules every check and the
//! firewall evaluator apply (measured on 6.18, `shared/notes.md` §1).
//!
//! - `route_localnet`: `all` OR the interface (`IN_DEV_ROUTE_LOCALNET`).
//! - `rp_filter`: the maximum of `all` and the interface.
//! - `accept_local`: `all` OR the interface.
//! - A 127/8 source passes `fib_validate_source()` only with route_localnet on, and then: with
//!   rp_filter 1 never; with rp_filter 2 only with accept_local; with rp_filter 0 always, except
//!   that a *configured* address (127.0.0.1 on `lo`) needs accept_local.

use crate::facts::Sysctls;

/// The effective IPv4 input settings of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Input {
    /// Effective `route_localnet`.
    pub route_localnet: bool,
    /// Effective `rp_filter` (0, 1 or 2).
    pub rp_filter: i64,
    /// Effective `accept_local`.
    pub accept_local: bool,
}

/// The sysctl that a decision needed and the snapshot does not have as a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSysctl(pub String);

impl MissingSysctl {
    /// Why the decision could not use it: absent, or present with a value that is not a number
    /// (a hostile or hand-edited snapshot) — the value shown as the snapshot has it, escaped.
    pub fn describe(&self, sysctls: &Sysctls) -> String {
        match sysctls.0.get(&self.0) {
            Some(value) => format!(
                "{} is {:?} in the snapshot, not a number",
                self.0,
                crate::report::shown::clip(value, 64)
            ),
            None => format!("{} is not in the snapshot", self.0),
        }
    }
}

impl Ipv4Input {
    /// The settings of `ifname`. A key the decision needs and the snapshot lacks is an error,
    /// never a default: `net.ipv4.conf.default.*` is only the template for new interfaces.
    pub fn of(sysctls: &Sysctls, ifname: &str) -> Result<Ipv4Input, MissingSysctl> {
        let get = |scope: &str, name: &str| {
            sysctls
                .ipv4_conf(scope, name)
                .ok_or_else(|| MissingSysctl(format!("net.ipv4.conf.{scope}.{name}")))
        };
        let route_localnet = route_localnet(sysctls, ifname)?;
        Ok(Ipv4Input {
            route_localnet,
            rp_filter: get("all", "rp_filter")?.max(get(ifname, "rp_filter")?),
            accept_local: get("all", "accept_local")? != 0 || get(ifname, "accept_local")? != 0,
        })
    }

    /// Whether a packet from `ifname` with a spoofed 127/8 source is accepted; `configured` says
    /// whether that source is an address configured on this host (127.0.0.1).
    pub fn accepts_loopback_source(&self, configured: bool) -> bool {
        self.route_localnet
            && match self.rp_filter {
                0 => !configured || self.accept_local,
                2 => self.accept_local,
                _ => false,
            }
    }
}

/// Effective `route_localnet` of `ifname`: `all` OR the interface. Known as soon as `all` is on.
pub fn route_localnet(sysctls: &Sysctls, ifname: &str) -> Result<bool, MissingSysctl> {
    let all = sysctls.ipv4_conf("all", "route_localnet");
    let own = sysctls.ipv4_conf(ifname, "route_localnet");
    match (all, own) {
        (Some(a), _) if a != 0 => Ok(true),
        (_, Some(o)) if o != 0 => Ok(true),
        (Some(_), Some(_)) => Ok(false),
        (None, _) => Err(MissingSysctl("net.ipv4.conf.all.route_localnet".into())),
        (_, None) => Err(MissingSysctl(format!("net.ipv4.conf.{ifname}.route_localnet"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctls(all: [i64; 3], dev: [i64; 3]) -> Sysctls {
        let mut s = Sysctls::default();
        for (scope, v) in [("all", all), ("eth0.100", dev)] {
            for (name, value) in ["route_localnet", "rp_filter", "accept_local"].iter().zip(v) {
                s.0.insert(format!("net.ipv4.conf.{scope}.{name}"), value.to_string());
            }
        }
        s
    }

    /// notes.md §1: sources 127.0.0.1 (configured) and 127.0.0.2 (not) under each column.
    #[test]
    fn loopback_sources_follow_the_measured_table() {
        let cases = [
            // (all, device) as [route_localnet, rp_filter, accept_local] -> (127.0.0.1, 127.0.0.2)
            ([0, 0, 0], [0, 0, 0], (false, false)), // a
            ([1, 0, 0], [0, 0, 0], (false, true)),  // b
            ([0, 0, 0], [1, 1, 0], (false, false)), // b+c1 on the device
            ([1, 2, 0], [0, 0, 0], (false, false)), // b+c2
            ([1, 0, 1], [0, 0, 0], (true, true)),   // b+al
            ([1, 1, 1], [0, 0, 0], (false, false)), // b+al+c1
            ([1, 0, 1], [0, 2, 0], (true, true)),   // b+al+c2 (rp_filter from the device)
        ];
        for (all, dev, (configured, other)) in cases {
            let input = Ipv4Input::of(&sysctls(all, dev), "eth0.100").expect("complete");
            assert_eq!(input.accepts_loopback_source(true), configured, "{all:?} {dev:?}");
            assert_eq!(input.accepts_loopback_source(false), other, "{all:?} {dev:?}");
        }
    }

    /// A value that is not a number is said as such, not as missing (a hand-edited snapshot).
    #[test]
    fn a_value_that_is_not_a_number_is_named_with_its_text() {
        let mut s = sysctls([0, 0, 0], [0, 0, 0]);
        s.0.insert("net.ipv4.conf.all.route_localnet".into(), "yes".into());
        let missing = route_localnet(&s, "eth0.100").expect_err("not a number");
        assert_eq!(
            missing.describe(&s),
            "net.ipv4.conf.all.route_localnet is \"yes\" in the snapshot, not a number"
        );
        s.0.remove("net.ipv4.conf.all.route_localnet");
        let missing = MissingSysctl("net.ipv4.conf.all.route_localnet".into());
        assert_eq!(
            missing.describe(&s),
            "net.ipv4.conf.all.route_localnet is not in the snapshot"
        );
    }

    #[test]
    fn a_missing_device_value_is_an_error_unless_all_decides() {
        let mut s = sysctls([0, 0, 0], [0, 0, 0]);
        s.0.remove("net.ipv4.conf.eth0.100.route_localnet");
        s.0.insert("net.ipv4.conf.default.route_localnet".into(), "0".into());
        assert_eq!(
            route_localnet(&s, "eth0.100"),
            Err(MissingSysctl("net.ipv4.conf.eth0.100.route_localnet".into()))
        );
        s.0.insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        assert_eq!(route_localnet(&s, "eth0.100"), Ok(true));
    }
}
