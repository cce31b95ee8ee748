//! `loopwarden guard`: a front that lets only the intended local users (and, with --http, only
//! the intended web pages) reach a local service.

use anyhow::Context;
use loopwarden_guard::config::{self, FrontConfig, GuardConfig, HttpConfig, SocketFileConfig};
use loopwarden_guard::endpoint::{Listen, Upstream};
use std::path::PathBuf;
use std::time::Duration;

/// Put a local service behind a front that admits only the users (and web pages) you intend.
///
/// Every connection's user is identified before a byte reaches the service — loopback TCP
/// clients by the kernel's record of their socket (inet_diag), Unix clients by SO_PEERCRED —
/// and refused unless allowed. A TCP front takes both 127.0.0.1 and [::1] on its port.
///
/// Without --http (TCP mode), allowed connections are forwarded zero-copy (splice) and nothing
/// in them is checked: a web page in an allowed user's browser (DNS rebinding, another site's
/// fetch) reaches the service through the front like the user does. For web services use --http:
/// every request's Host, Origin and Sec-Fetch-Site are checked (DNS rebinding, cross-site and
/// same-site requests from other local ports, frames, WebSocket hijacking), incoming
/// X-Forwarded-*/Forwarded headers are removed, and refusals — a user not allowed included — are
/// answered 421/403/400 with a one-line reason.
///
/// The service itself must not be reachable around the guard: keep it on a Unix socket in a
/// private directory, or restrict its loopback port to the guard's user with
/// `loopwarden harden --allow PORT=GUARD-USER` (the guard warns at start when it is not).
///
/// SIGTERM drains open connections, SIGHUP reloads the policy without dropping allowed ones.
#[derive(clap::Args)]
#[command(
    override_usage = "loopwarden guard --listen ADDR --to ADDR (--allow-user USER | --allow-group GROUP)... [--http [HTTP OPTIONS]] [OPTIONS]
       loopwarden guard --config FILE [--name NAME] [--status-dir DIR] [--workers N]
       loopwarden guard --status [--json | --prometheus] [--status-dir DIR]",
    after_help = "Examples:
  loopwarden guard --listen 127.0.0.1:8080 --to 127.0.0.1:18080 --allow-user alice
        alice (only) reaches the service on 127.0.0.1:18080 through localhost:8080
  loopwarden guard --listen localhost:8080 --to 127.0.0.1:18080 --allow-group dev --http
        members of dev, from their own browser pages only: foreign Host/Origin refused
  loopwarden guard --listen unix:/run/app/app.sock --to 127.0.0.1:18080 --allow-group dev
        members of dev, through a Unix socket (0666: the guard decides who is served)
  loopwarden guard --listen 127.0.0.1:8080 --to 127.0.0.1:18080 --allow-user alice --upstream-user app
        as above, and nothing is forwarded unless app holds 127.0.0.1:18080
  loopwarden guard --config /etc/loopwarden/guard/app.toml  several fronts, one process
  loopwarden guard --status                                 what running guards let in and refused
  loopwarden harden --allow 18080=loopwarden-guard          then only the guard reaches the service
  sudo loopwarden guard --config /etc/loopwarden/guard/app.toml --check-upstreams-for loopwarden-guard
        as root, before the guard starts: who else reaches the upstreams (the guard reads the verdict)

Config file (TOML), one [[front]] table per front:
  [[front]]
  listen = \"127.0.0.1:8080\"        # or \"unix:/run/app/app.sock\"
  to = \"127.0.0.1:18080\"           # or \"unix:/run/app-private/app.sock\"
  upstream_user = \"app\"            # who must hold the upstream (else: whoever holds it at start)
  allow_users = [\"alice\"]
  allow_groups = [\"dev\"]
  http = true
  allow_hosts = [\"app.localhost\"]   # besides localhost, 127.0.0.1, [::1] with the port
  allow_origins = [\"https://tool.example\"]
  identity_header = \"X-Loopwarden-User\"
  max_conns_per_user = 64

A TCP-mode front (no --http) checks users, not requests: browser pages of allowed users pass.
With a systemd .socket unit (loopwarden-guard@.socket), systemd holds the front's sockets across
restarts: the port is never free for another user to take."
)]
pub struct Args {
    /// Where clients connect: 127.0.0.1:PORT, [::1]:PORT or localhost:PORT (both families are
    /// taken), or unix:PATH.
    #[arg(long, value_name = "ADDR", required_unless_present_any = ["config", "status"], conflicts_with = "config")]
    listen: Option<String>,
    /// Where allowed clients are forwarded: a loopback HOST:PORT or unix:PATH.
    #[arg(long, value_name = "ADDR", required_unless_present_any = ["config", "status"], conflicts_with = "config")]
    to: Option<String>,
    /// The user whose service the upstream is: a connection to an upstream held by another uid
    /// (the service stopped and someone else took its port) is refused — HTTP: 502 — before a
    /// byte is sent. Default: the uid holding the upstream when the guard starts.
    #[arg(long, value_name = "USER", value_hint = clap::ValueHint::Username, conflicts_with = "config")]
    upstream_user: Option<String>,
    /// Admit this user (name or uid); repeat for several.
    #[arg(long = "allow-user", value_name = "USER", value_hint = clap::ValueHint::Username)]
    allow_users: Vec<String>,
    /// Admit members of this group (name or gid); repeat for several.
    #[arg(long = "allow-group", value_name = "GROUP")]
    allow_groups: Vec<String>,
    /// Check every HTTP request: Host, Origin, Sec-Fetch-Site, CORS and network-access preflights;
    /// client-address headers and every header whose name contains '_' are removed.
    #[arg(long)]
    http: bool,
    /// With --http: also accept this Host (NAME means NAME with the front's port); repeatable.
    #[arg(long = "allow-host", value_name = "HOST", value_hint = clap::ValueHint::Hostname, requires = "http")]
    allow_hosts: Vec<String>,
    /// With --http: also accept this Origin (scheme://host[:port]); a present Origin is checked
    /// on every request, reads included; repeatable.
    #[arg(long = "allow-origin", value_name = "ORIGIN", value_hint = clap::ValueHint::Url, requires = "http")]
    allow_origins: Vec<String>,
    /// With --http: tell the upstream who the proven local user is, in this header (letters,
    /// digits and '-' only — headers with '_' are dropped from clients; not a hop-by-hop,
    /// framing or client-address header).
    #[arg(long, value_name = "HEADER", requires = "http")]
    identity_header: Option<String>,
    /// With --http: let other pages frame the answers (by default X-Frame-Options: DENY and
    /// frame-ancestors 'none' are added where the service sets neither).
    #[arg(long, requires = "http")]
    allow_framing: bool,
    /// With --http: seconds a client has to send a complete request head (slowloris).
    #[arg(long, value_name = "SECS", requires = "http", default_value_t = config::DEFAULT_HEADER_TIMEOUT.as_secs())]
    header_timeout: u64,
    /// With --http: largest request head in bytes (431 beyond).
    #[arg(long, value_name = "BYTES", requires = "http", default_value_t = config::DEFAULT_MAX_HEADER_BYTES)]
    max_header_bytes: usize,
    /// With --http: most request header fields (431 beyond).
    #[arg(long, value_name = "N", requires = "http", default_value_t = config::DEFAULT_MAX_HEADERS)]
    max_headers: usize,
    /// Most connections open at once through the front (new ones are closed beyond).
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_MAX_CONNS)]
    max_conns: usize,
    /// Most connections open at once per user.
    #[arg(long, value_name = "N")]
    max_conns_per_user: Option<usize>,
    /// Unix front: the socket file's mode (octal; default 0666 — the guard decides who is served).
    #[arg(long, value_name = "MODE")]
    socket_mode: Option<String>,
    /// Unix front: the socket file's owner.
    #[arg(long, value_name = "USER", value_hint = clap::ValueHint::Username)]
    socket_owner: Option<String>,
    /// Unix front: the socket file's group (and that of the directories the guard creates).
    #[arg(long, value_name = "GROUP")]
    socket_group: Option<String>,
    /// Read the fronts from a TOML file instead (re-read on SIGHUP).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    config: Option<PathBuf>,
    /// Instance name: names the status directory /run/loopwarden/guard/NAME and the log lines
    /// (a config file names itself: `name = …`, else its file name).
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    name: Option<String>,
    /// Publish the status in this directory instead (a config file says `status_dir = …`).
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, conflicts_with = "config")]
    status_dir: Option<PathBuf>,
    /// Seconds SIGTERM waits for open connections before closing them.
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_DRAIN_TIMEOUT.as_secs())]
    drain_timeout: u64,
    /// Worker threads, each accepting and serving on its own, at least 1 (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    /// Print what the running guards allow and their counters, and exit.
    #[arg(long)]
    status: bool,
    /// As root, before the guard starts (the unit's ExecStartPre=+): judge who besides USER (the
    /// guard's user), root and the service's owner reaches each upstream, print it, record it in
    /// the guard's status directory for the guard (which cannot read the firewall), and exit.
    #[arg(long, value_name = "USER", conflicts_with = "status")]
    check_upstreams_for: Option<String>,
    /// With --status: as JSON (loopwarden.guard-status/v1, one object per guard).
    #[arg(long, requires = "status")]
    json: bool,
    /// With --status: in Prometheus text format (for node_exporter's textfile collector).
    #[arg(long, requires = "status", conflicts_with = "json")]
    prometheus: bool,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    if args.status {
        return status(&args);
    }
    let source = match &args.config {
        Some(path) => loopwarden_guard::Source::File(path.clone()),
        None => loopwarden_guard::Source::Fixed(from_args(&args)?),
    };
    if let Some(user) = &args.check_upstreams_for {
        let lines = loopwarden_guard::run::check_upstreams(&source, user)?;
        let text: String = lines
            .iter()
            .map(|l| format!("{}\n", loopwarden_core::report::shown::escape(l)))
            .collect();
        super::output::print(&text)?;
        return Ok(super::EXIT_CLEAN);
    }
    loopwarden_guard::run(source)?;
    Ok(super::EXIT_CLEAN)
}

/// Builds a one-front configuration from the options, naming the option at fault.
fn from_args(args: &Args) -> anyhow::Result<GuardConfig> {
    let listen_text = args.listen.as_deref().unwrap_or_default();
    let listen = Listen::parse(listen_text).map_err(|why| anyhow::anyhow!("--listen {listen_text}: {why}"))?;
    let to_text = args.to.as_deref().unwrap_or_default();
    let upstream = Upstream::parse(to_text).map_err(|why| anyhow::anyhow!("--to {to_text}: {why}"))?;
    let mode = args
        .socket_mode
        .as_deref()
        .map(|m| config::parse_mode(m).map_err(|why| anyhow::anyhow!("--socket-mode {m}: {why}")))
        .transpose()?;
    if listen.port().is_some()
        && (args.socket_mode.is_some() || args.socket_owner.is_some() || args.socket_group.is_some())
    {
        anyhow::bail!("--socket-mode, --socket-owner and --socket-group apply to unix: fronts only (--listen {listen_text} has no socket file)");
    }
    let name = args.name.clone().unwrap_or_else(|| match &listen {
        Listen::Tcp(port) => format!("port-{port}"),
        Listen::Unix(path) => path
            .file_stem()
            .map(|s| {
                s.to_string_lossy()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect()
            })
            .unwrap_or_else(|| "unix".into()),
    });
    let http = args.http.then(|| HttpConfig {
        allow_hosts: args.allow_hosts.clone(),
        allow_origins: args.allow_origins.clone(),
        identity_header: args.identity_header.clone(),
        allow_framing: args.allow_framing,
        header_timeout: Duration::from_secs(args.header_timeout),
        max_header_bytes: args.max_header_bytes,
        max_headers: args.max_headers,
    });
    let config = GuardConfig {
        name,
        fronts: vec![FrontConfig {
            name: listen.to_string(),
            listen,
            upstream,
            upstream_user: args.upstream_user.clone(),
            allow_users: args.allow_users.clone(),
            allow_groups: args.allow_groups.clone(),
            http,
            max_conns: args.max_conns,
            max_conns_per_user: args.max_conns_per_user,
            socket: SocketFileConfig {
                mode,
                owner: args.socket_owner.clone(),
                group: args.socket_group.clone(),
            },
        }],
        status_dir: args.status_dir.clone(),
        drain_timeout: Duration::from_secs(args.drain_timeout),
        workers: args.workers.map_or(0, usize::from),
    };
    config::validate(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config)
}

fn status(args: &Args) -> anyhow::Result<u8> {
    let root = args
        .status_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(loopwarden_core::facts::GUARD_STATUS_DIR));
    let root = match &args.name {
        Some(name) if args.status_dir.is_none() => root.join(name),
        _ => root,
    };
    let guards = if root.exists() {
        loopwarden_guard::status::read_all(&root).map_err(anyhow::Error::msg)?
    } else {
        Vec::new()
    };
    let text = if args.json {
        serde_json::to_string_pretty(&guards).context("cannot render the status as JSON")? + "\n"
    } else if args.prometheus {
        loopwarden_guard::status::prometheus(&guards)
    } else if guards.is_empty() {
        format!("no running guard publishes its status under {}\n", root.display())
    } else {
        loopwarden_guard::status::render(&guards)
    };
    super::output::print(&text)?;
    Ok(super::EXIT_CLEAN)
}
