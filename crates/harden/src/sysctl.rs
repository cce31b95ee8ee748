//! Reading and writing the IPv4 per-interface sysctls of the calling thread's network namespace
//! (`/proc/sys/net` follows the thread's namespace), and flushing the route cache.

use crate::error::{io, ActError};
use crate::plan::sysctls::SysctlKey;
use std::path::Path;

/// The current value of `key`, trimmed.
pub fn read(key: &SysctlKey) -> Result<String, ActError> {
    valid(key)?;
    let path = key.proc_path();
    std::fs::read_to_string(&path)
        .map(|v| v.trim().to_string())
        .map_err(io(path))
}

/// Writes `value` to `key`.
pub fn write(key: &SysctlKey, value: &str) -> Result<(), ActError> {
    valid(key)?;
    let path = key.proc_path();
    std::fs::write(&path, format!("{value}\n")).map_err(io(path))
}

/// Flushes the IPv4 and IPv6 route caches (`ip route flush cache`): a route cached on a
/// connected UDP socket keeps delivering what the new settings would refuse.
pub fn flush_route_cache() -> Result<(), ActError> {
    for path in ["/proc/sys/net/ipv4/route/flush", "/proc/sys/net/ipv6/route/flush"] {
        if Path::new(path).exists() {
            std::fs::write(path, "1\n").map_err(io(path))?;
        }
    }
    Ok(())
}

fn valid(key: &SysctlKey) -> Result<(), ActError> {
    if key.is_valid() {
        Ok(())
    } else {
        Err(ActError::Untrusted {
            path: key.proc_path(),
            why: format!("{key:?} is not a sysctl loopwarden writes"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_cannot_leave_its_directory() {
        for scope in ["../../kernel", "..", "a/b", "", "sixteen-chars-xx"] {
            assert!(valid(&SysctlKey::new(scope, "route_localnet")).is_err(), "{scope}");
        }
        assert!(valid(&SysctlKey::new("eth0.100", "route_localnet")).is_ok());
        assert!(valid(&SysctlKey::new("all", "../x")).is_err());
    }

    #[test]
    fn reads_this_namespace_values() {
        let value = read(&SysctlKey::new("all", "route_localnet")).expect("readable by anyone");
        assert!(value == "0" || value == "1", "{value}");
    }
}
