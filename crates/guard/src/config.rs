//! What a guard is told to do: its fronts, their upstreams and policies — from the command line
//! or a TOML file — validated into typed values with errors that name the bad input.

use crate::endpoint::{Listen, Upstream};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default bound on connections open at once through one front.
pub const DEFAULT_MAX_CONNS: usize = 16384;
/// Default time a client has to send a complete HTTP request head.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest HTTP request head, in bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default largest number of HTTP request header fields (hyper's own bound, kept on the stack:
/// another value costs a heap allocation per request).
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default time SIGTERM waits for open connections before closing them.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A whole guard: one process, several fronts.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// Instance name: names the status directory and the log lines.
    pub name: String,
    /// The fronts.
    pub fronts: Vec<FrontConfig>,
    /// Where to publish the status (`<dir>/status.json`); `None`: the default place.
    pub status_dir: Option<PathBuf>,
    /// How long SIGTERM waits for open connections.
    pub drain_timeout: Duration,
    /// Worker threads (each accepts and serves on its own); `0`: one per core.
    pub workers: usize,
}

/// One front: where clients connect, where allowed ones go, and who is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontConfig {
    /// The front's name in logs and status (its listen address unless named).
    pub name: String,
    /// Where clients connect.
    pub listen: Listen,
    /// Where allowed connections are forwarded.
    pub upstream: Upstream,
    /// The user whose service the upstream is (name or uid): connections to an upstream held by
    /// another uid are refused. `None`: the uid holding it when the guard first connects.
    pub upstream_user: Option<String>,
    /// Users admitted (names or numeric uids).
    pub allow_users: Vec<String>,
    /// Groups whose members are admitted (names or numeric gids).
    pub allow_groups: Vec<String>,
    /// Per-request HTTP checks; `None`: connection-level forwarding (splice).
    pub http: Option<HttpConfig>,
    /// Most connections open at once through this front; beyond, new ones are closed.
    pub max_conns: usize,
    /// Most connections open at once per peer uid.
    pub max_conns_per_user: Option<usize>,
    /// Mode, owner and group of a Unix front's socket file.
    pub socket: SocketFileConfig,
}

/// Default permission bits of a Unix front's socket file: everyone may connect, because the
/// guard decides who is served (`SO_PEERCRED` and the front's policy), not the file mode.
pub const DEFAULT_SOCKET_MODE: u32 = 0o666;

/// Mode, owner and group of a Unix front's socket file (`None`: not given; only Unix fronts
/// take them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketFileConfig {
    /// Permission bits of the socket file (connecting needs write); default
    /// [`DEFAULT_SOCKET_MODE`].
    pub mode: Option<u32>,
    /// Owner to give the socket file (needs the privilege to chown).
    pub owner: Option<String>,
    /// Group to give the socket file and the directories the guard creates for it.
    pub group: Option<String>,
}

impl SocketFileConfig {
    /// The permission bits to give the socket file.
    pub fn mode(&self) -> u32 {
        self.mode.unwrap_or(DEFAULT_SOCKET_MODE)
    }

    /// Whether any of the settings was given.
    pub fn given(&self) -> bool {
        self.mode.is_some() || self.owner.is_some() || self.group.is_some()
    }
}

/// The per-request checks of an HTTP front.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Extra `Host` names accepted besides `localhost`, `127.0.0.1` and `[::1]` (each with the
    /// front's port unless a port is given).
    pub allow_hosts: Vec<String>,
    /// Extra origins accepted besides the front's own (`http://localhost:PORT` …).
    pub allow_origins: Vec<String>,
    /// Pass the proven local user upstream in this header (incoming copies are removed).
    pub identity_header: Option<String>,
    /// Let other pages frame the answers (else `X-Frame-Options: DENY` and `frame-ancestors
    /// 'none'` are added where the service sets neither).
    pub allow_framing: bool,
    /// Time a client has to send a complete request head.
    pub header_timeout: Duration,
    /// Largest request head, in bytes.
    pub max_header_bytes: usize,
    /// Largest number of request header fields.
    pub max_headers: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            allow_hosts: Vec::new(),
            allow_origins: Vec::new(),
            identity_header: None,
            allow_framing: false,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

/// Why a configuration is refused. Every message names the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read guard config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("guard config {path} is not valid: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The TOML parser's explanation (with line and column).
        message: String,
    },
    /// A value is wrong.
    #[error("{what}: {why}")]
    Invalid {
        /// Which input (`--listen 0.0.0.0:80`, `front "api" listen`).
        what: String,
        /// What is wrong with it.
        why: String,
    },
}

impl ConfigError {
    /// A wrong value, naming the input.
    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// The TOML file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    name: Option<String>,
    status_dir: Option<PathBuf>,
    drain_timeout_secs: Option<u64>,
    workers: Option<usize>,
    #[serde(default)]
    front: Vec<FileFront>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFront {
    name: Option<String>,
    listen: String,
    to: String,
    upstream_user: Option<String>,
    #[serde(default)]
    allow_users: Vec<String>,
    #[serde(default)]
    allow_groups: Vec<String>,
    #[serde(default)]
    http: bool,
    #[serde(default)]
    allow_hosts: Vec<String>,
    #[serde(default)]
    allow_origins: Vec<String>,
    identity_header: Option<String>,
    #[serde(default)]
    allow_framing: bool,
    header_timeout_secs: Option<u64>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    max_conns: Option<usize>,
    max_conns_per_user: Option<usize>,
    socket_mode: Option<String>,
    socket_owner: Option<String>,
    socket_group: Option<String>,
}

/// Reads and validates a TOML guard configuration.
pub fn load(path: &Path) -> Result<GuardConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let default_name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    parse(
        &text,
        &path.display().to_string(),
        default_name.as_deref().unwrap_or("guard"),
    )
}

/// Parses and validates a TOML guard configuration; `source` names it in errors.
pub fn parse(text: &str, source: &str, default_name: &str) -> Result<GuardConfig, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: source.to_string(),
        message: one_line(text, &e),
    })?;
    if file.front.is_empty() {
        return Err(ConfigError::invalid(
            source,
            "no [[front]] table: a guard needs at least one front",
        ));
    }
    let fronts = file
        .front
        .into_iter()
        .enumerate()
        .map(|(i, f)| front_from_file(f, i))
        .collect::<Result<Vec<_>, _>>()?;
    let config = GuardConfig {
        name: file.name.unwrap_or_else(|| default_name.to_string()),
        fronts,
        status_dir: file.status_dir,
        drain_timeout: file
            .drain_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_DRAIN_TIMEOUT),
        workers: match file.workers {
            Some(0) => {
                return Err(ConfigError::invalid(
                    format!("{source} workers"),
                    "at least 1 (leave it out for one per core)",
                ))
            }
            Some(n) => n,
            None => 0,
        },
    };
    validate(&config)?;
    Ok(config)
}

fn front_from_file(f: FileFront, index: usize) -> Result<FrontConfig, ConfigError> {
    let label = match &f.name {
        Some(n) => format!("front {n:?}"),
        None => format!("front #{} ({})", index + 1, f.listen),
    };
    let listen = Listen::parse(&f.listen).map_err(|why| ConfigError::invalid(format!("{label} listen"), why))?;
    let upstream = Upstream::parse(&f.to).map_err(|why| ConfigError::invalid(format!("{label} to"), why))?;
    let http_only = !f.allow_hosts.is_empty()
        || !f.allow_origins.is_empty()
        || f.identity_header.is_some()
        || f.allow_framing
        || f.header_timeout_secs.is_some()
        || f.max_header_bytes.is_some()
        || f.max_headers.is_some();
    if http_only && !f.http {
        return Err(ConfigError::invalid(
            &label,
            "allow_hosts, allow_origins, identity_header, allow_framing and the header limits need http = true",
        ));
    }
    let defaults = HttpConfig::default();
    let http = f.http.then(|| HttpConfig {
        allow_hosts: f.allow_hosts,
        allow_origins: f.allow_origins,
        identity_header: f.identity_header,
        allow_framing: f.allow_framing,
        header_timeout: f
            .header_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(defaults.header_timeout),
        max_header_bytes: f.max_header_bytes.unwrap_or(defaults.max_header_bytes),
        max_headers: f.max_headers.unwrap_or(defaults.max_headers),
    });
    let mode = f
        .socket_mode
        .as_deref()
        .map(|m| parse_mode(m).map_err(|why| ConfigError::invalid(format!("{label} socket_mode {m:?}"), why)))
        .transpose()?;
    Ok(FrontConfig {
        name: f.name.unwrap_or_else(|| listen.to_string()),
        listen,
        upstream,
        upstream_user: f.upstream_user,
        allow_users: f.allow_users,
        allow_groups: f.allow_groups,
        http,
        max_conns: f.max_conns.unwrap_or(DEFAULT_MAX_CONNS),
        max_conns_per_user: f.max_conns_per_user,
        socket: SocketFileConfig {
            mode,
            owner: f.socket_owner,
            group: f.socket_group,
        },
    })
}

/// A TOML error on one line: `line 3, column 10: invalid type: integer `1`, expected a string`
/// (the parser's own text spans several lines, with a drawing of the spot).
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Parses an octal permission mode (`0660`, `660`, `0o660`).
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim_start_matches("0o");
    let mode = u32::from_str_radix(digits, 8).map_err(|_| "not an octal mode such as 0660".to_string())?;
    if mode > 0o777 {
        return Err("only permission bits (at most 0777) may be given".into());
    }
    Ok(mode)
}

/// Checks what no single field can: fronts that collide, empty allowlists, limits of zero.
pub fn validate(config: &GuardConfig) -> Result<(), ConfigError> {
    if config.name.is_empty()
        || !config
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || config.name.starts_with('.')
    {
        return Err(ConfigError::invalid(
            format!("guard name {:?}", config.name),
            "use letters, digits, '-', '_' and '.' (it names the status directory)",
        ));
    }
    for (i, front) in config.fronts.iter().enumerate() {
        let label = format!("front {:?}", front.name);
        if front.allow_users.is_empty() && front.allow_groups.is_empty() {
            return Err(ConfigError::invalid(
                &label,
                "allows nobody: give at least one --allow-user or --allow-group",
            ));
        }
        if front.max_conns == 0 || front.max_conns_per_user == Some(0) {
            return Err(ConfigError::invalid(&label, "connection limits must be at least 1"));
        }
        if let Some(user) = &front.upstream_user {
            crate::accounts::user(user)
                .map_err(|why| ConfigError::invalid(format!("{label} upstream user {user:?}"), why))?;
        }
        if front.upstream.same_as(&front.listen) {
            return Err(ConfigError::invalid(
                &label,
                format!("forwards to itself ({})", front.upstream),
            ));
        }
        if let Some(http) = &front.http {
            if http.max_header_bytes < 1024 || http.max_headers == 0 || http.header_timeout.is_zero() {
                return Err(ConfigError::invalid(
                    &label,
                    "HTTP limits too small: max header bytes at least 1024, max headers and header timeout above 0",
                ));
            }
            for host in &http.allow_hosts {
                crate::http::check::parse_allowed_host(host).map_err(|why| ConfigError::invalid(&label, why))?;
            }
            for origin in &http.allow_origins {
                crate::http::check::parse_allowed_origin(origin).map_err(|why| ConfigError::invalid(&label, why))?;
            }
            if let Some(h) = &http.identity_header {
                crate::http::check::identity_header(h).map_err(|why| ConfigError::invalid(&label, why))?;
            }
        }
        if front.listen.port().is_some() && front.socket.given() {
            return Err(ConfigError::invalid(
                &label,
                "socket mode, owner and group apply to unix: fronts only (a TCP front has no socket file)",
            ));
        }
        if let Some(other) = config.fronts[..i].iter().find(|o| o.listen.overlaps(&front.listen)) {
            return Err(ConfigError::invalid(
                &label,
                format!("listens where front {:?} already does ({})", other.name, front.listen),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_two_fronts_reads_into_typed_values() {
        let text = r#"
            name = "dev"
            [[front]]
            listen = "127.0.0.1:8080"
            to = "127.0.0.1:18080"
            allow_users = ["alice"]
            http = true
            allow_hosts = ["app.localhost"]
            identity_header = "X-Loopwarden-User"
            [[front]]
            name = "db"
            listen = "unix:/run/db/db.sock"
            to = "unix:/run/db-private/db.sock"
            allow_groups = ["dev"]
            socket_mode = "0660"
            max_conns_per_user = 4
        "#;
        let c = parse(text, "dev.toml", "x").unwrap();
        assert_eq!(c.name, "dev");
        assert_eq!(c.fronts[0].name, "localhost:8080");
        assert_eq!(c.fronts[0].http.as_ref().unwrap().allow_hosts, vec!["app.localhost"]);
        assert_eq!(c.fronts[1].listen, Listen::Unix("/run/db/db.sock".into()));
        assert_eq!(c.fronts[1].max_conns_per_user, Some(4));
        assert!(c.fronts[1].http.is_none());
    }

    #[test]
    fn errors_name_the_front_and_the_field() {
        let err = |t: &str| parse(t, "g.toml", "g").unwrap_err().to_string();
        assert_eq!(
            err("[[front]]\nlisten = \"0.0.0.0:80\"\nto = \"127.0.0.1:81\"\nallow_users = [\"a\"]\n"),
            "front #1 (0.0.0.0:80) listen: 0.0.0.0 is not loopback: a guard front listens on 127.0.0.1 and [::1] (give 127.0.0.1:PORT, [::1]:PORT or localhost:PORT) or on unix:PATH"
        );
        assert_eq!(
            err("[[front]]\nname = \"api\"\nlisten = \"localhost:80\"\nto = \"127.0.0.1:81\"\n"),
            "front \"api\": allows nobody: give at least one --allow-user or --allow-group"
        );
        assert!(err("[[front]]\nlisten = 1\n").starts_with("guard config g.toml is not valid:"));
        assert!(err("[[front]]\nlisten = \"localhost:80\"\nto = \"127.0.0.1:81\"\nallow_users = [\"a\"]\nallow_hosts = [\"x\"]\n")
            .contains("need http = true"));
        assert!(
            err("[[front]]\nlisten = \"localhost:80\"\nto = \"localhost:80\"\nallow_users = [\"a\"]\n")
                .contains("forwards to itself")
        );
        assert_eq!(
            err("workers = 0\n[[front]]\nlisten = \"localhost:80\"\nto = \"127.0.0.1:81\"\nallow_users = [\"a\"]\n"),
            "g.toml workers: at least 1 (leave it out for one per core)"
        );
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let c = parse(
            include_str!("../../../contrib/systemd/example.toml"),
            "example.toml",
            "example",
        )
        .unwrap();
        assert_eq!(c.name, "example");
        assert_eq!(c.fronts[0].listen, Listen::Tcp(8080));
    }

    #[test]
    fn modes_are_octal_permission_bits() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("4755").is_err());
        assert!(parse_mode("rw").is_err());
    }
}
