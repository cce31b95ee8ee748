//! Readers: third-party configuration, as captured in a snapshot, turned into typed models.
//!
//! A reader parses text that some other program wrote — `sshd -T`, `nginx -T`, a HAProxy
//! configuration file, `caddy adapt` JSON and its Caddyfile, Apache's included files,
//! `/etc/hosts`, the `hosts:` line of `nsswitch.conf`, a forwarder's argv — and says what it
//! configures. It never judges (no findings, no severities) and never does I/O: the checks judge
//! the models, and `harden` and `guard` may reuse them (a reverse proxy's upstream, the hosts
//! file's entries). The firewall dumps have their own readers in [`crate::firewall`].
//!
//! Snapshot text is hostile input: a reader never panics on it and reports what it cannot read as
//! absent rather than guessing.

pub mod apache;
pub mod caddy;
pub mod endpoint;
pub mod forwarder_argv;
pub mod haproxy;
pub mod hosts;
pub mod nginx;
pub mod nsswitch;
pub mod pasta_ports;
pub mod reverse_proxy;
pub mod sshd;
