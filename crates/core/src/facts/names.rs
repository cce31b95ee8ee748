//! Inputs to `localhost` name resolution.

use serde::{Deserialize, Serialize};

/// What decides where `localhost` resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NameResolution {
    /// Contents of `/etc/hosts`; `None` when it is missing or unreadable.
    pub hosts_file: Option<String>,
    /// The `hosts:` line of `/etc/nsswitch.conf` (without the `hosts:` key); `None` when the file
    /// or the line is missing (glibc then uses `dns [!UNAVAIL=return] files`).
    pub nsswitch_hosts: Option<String>,
    /// Files that exist but could not be read (`/etc/hosts`, `/etc/nsswitch.conf`): what they
    /// say is unknown, which is not the same as missing.
    #[serde(default)]
    pub unreadable: Vec<String>,
}
