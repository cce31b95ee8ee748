//! `loopwarden harden`: close what the audit found on the network paths — plan, apply with
//! rollback, confirm, check, remove.

use super::output;
use anyhow::Context;
use loopwarden_harden::plan::allow::AllowSpec;
use loopwarden_harden::plan::sysctls::RpFilter;
use loopwarden_harden::plan::{self, Options};
use loopwarden_harden::render::{human, json, outcome};
use loopwarden_harden::{apply, check, in_force, persist, remove, rollback, state, ActError};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

const EXAMPLES: &str = "Examples:
  loopwarden harden
      print the plan: the nft table, the sysctls, what each
      closes, what stays open and why
  loopwarden harden --apply --confirm-within 60
      apply it; unless `loopwarden harden --confirm` runs within
      60 s (from any shell, e.g. a second SSH session), every rule
      and sysctl goes back to what it was, even when this
      terminal is closed meanwhile
  loopwarden harden --confirm
      keep the pending apply
  loopwarden harden --apply --persist
      apply and keep it across reboots and nftables reloads
      (/etc/sysctl.d/99-zz-loopwarden.conf, /etc/loopwarden/
      harden.json and loopwarden-harden.service); a later
      --apply updates that copy
  loopwarden harden --apply --allow 8000=alice,@dev \\
          --limit-connections 8
      only root, the owner of port 8000, alice and group dev
      may connect to loopback port 8000, each user with at most
      8 connections at once
  loopwarden harden --check
      exit 0 when applied and intact, 1 when missing or drifted
      (after `nft flush ruleset`), interrupted, or pending with
      its rollback watchdog gone
  loopwarden harden --remove
      take it all away, restoring the previous sysctl values
  loopwarden harden --netns web --apply
      harden the network namespace `web`: a container needs its
      own copy of the table
  loopwarden harden --all-netns [--apply]
      the plan (and apply it) for every network namespace that
      needs one: each container's, pod's and `ip netns` gets its
      own table and sysctls
  loopwarden audit
      afterwards: the findings blocked, and what the table's
      counters caught (\"dropped 3 spoofed IPv4 packet(s) since
      …: 3 on eth0\")

Never: a `flush ruleset`, a change to another table (Docker's,
kube-proxy's, ufw's, firewalld's), a `table inet loopwarden`
harden did not make replaced or deleted without --force,
rp_filter unless --rp-filter asks, route_localnet=0 where
kube-proxy's iptables mode, Docker with userland-proxy=false or
the ECS agent needs it (the raw drop covers those instead),
anything installed without --persist.

Exit status: 0 done (with --check: intact); 1 with --check:
missing, drifted, not applied, interrupted or unwatched; 2 error,
including a plan the firewall evaluator does not confirm (never
applied).";

/// Close the network paths the audit found open: one nftables table and a few sysctls,
/// verified, applied atomically, rolled back unless confirmed.
///
/// Without an action, prints the plan: `table inet loopwarden` (a prerouting chain at priority
/// raw, before conntrack and NAT, dropping loopback sources and destinations — 127.0.0.0/8, ::1,
/// ::ffff:127.0.0.0/104 — that arrive on any interface but lo, with a named counter per rule;
/// with --allow, an output chain restricting loopback ports to named users), the sysctls
/// (route_localnet=0, accept_local=0), and for every open finding the rule that closes it or why
/// it stays open. Before anything is printed or applied, the firewall evaluator is asked whether
/// this host's ruleset plus the planned table blocks every path the plan claims to close.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
#[command(group(clap::ArgGroup::new("action").args(["apply", "confirm", "check", "remove"])))]
#[command(group(clap::ArgGroup::new("replacing").args(["apply", "remove"])))]
pub struct Args {
    /// Apply the plan (root): `nft -c` first, save what it replaces under /run/loopwarden/harden/
    /// before changing anything, one nft transaction, the sysctls, a route-cache flush, then read
    /// everything back.
    #[arg(long)]
    apply: bool,
    /// With --apply: roll everything back unless `loopwarden harden --confirm` runs within SECS
    /// seconds, 1 to 86400 (iptables-apply style).
    #[arg(long, value_name = "SECS", requires = "apply", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    confirm_within: Option<u64>,
    /// Keep a pending apply (see --confirm-within).
    #[arg(long)]
    confirm: bool,
    /// Exit 0 when the applied table and sysctls are in place, 1 when missing or drifted (a
    /// `flush ruleset` or an nftables reload removes the table), when an apply died half-way, or
    /// when a confirmation window's rollback watchdog is gone. Changes nothing.
    #[arg(long)]
    check: bool,
    /// Remove the table and the persistent copy, and restore the sysctls' previous values (after
    /// putting back what an apply that died half-way replaced).
    #[arg(long)]
    remove: bool,
    /// Restrict loopback PORT (TCP and UDP, or PORT/tcp, PORT/udp) to these local users and
    /// groups (USER: a name or a numeric uid; @GROUP: its members when the plan is made); root
    /// and the service's owner are always allowed. Also holds for connections an output
    /// redirect or DNAT sends to PORT. Repeatable; the allows in force are kept.
    #[arg(long, value_name = "PORT=USER[,USER|@GROUP…]")]
    allow: Vec<AllowSpec>,
    /// With --allow (or the allows in force): at most N connections at once per named user and port, 1 to 65535 (nft ct
    /// count; root and the service's owner are never limited), so that one user cannot exhaust
    /// the service's accept queue.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65_535))]
    limit_connections: Option<u32>,
    /// Plan with exactly the --allow given (none: no port restricted). Without it, the allows an
    /// earlier apply put in force are kept — a port given again is replaced — and each one kept
    /// is said, since applying replaces the whole table.
    #[arg(long, conflicts_with = "facts")]
    replace_allows: bool,
    /// Also set net.ipv4.conf.all.rp_filter: strict (1) or loose (2). Never by default: strict
    /// breaks asymmetric routing.
    #[arg(long, value_name = "MODE")]
    rp_filter: Option<RpFilter>,
    /// Drop every IPv4-mapped IPv6 address (::ffff:0.0.0.0/96) from outside, not only mapped
    /// loopback, as Linux 5.4–5.12 did (can break a rare sender of mapped sources).
    #[arg(long)]
    drop_all_mapped: bool,
    /// Print as JSON (the plan: schema loopwarden.harden/v1).
    #[arg(long)]
    json: bool,
    /// Plan for a snapshot saved by `loopwarden facts --out FILE` (print only).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath, conflicts_with_all = ["apply", "confirm", "check", "remove", "netns"])]
    facts: Option<PathBuf>,
    /// With --apply: keep the table and sysctls across reboots and firewall reloads (a sysctl.d
    /// drop-in and a systemd unit re-applied when nftables.service reloads). With a confirmation
    /// window, installed when confirmed.
    #[arg(long, requires = "apply", conflicts_with = "netns")]
    persist: bool,
    /// Install root for --persist, and where --apply, --check and --remove look for the
    /// persistent copy (for images and tests). An --apply without --persist updates a copy
    /// installed there, so that a reboot does not bring back an older table.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, default_value = "/")]
    root: PathBuf,
    /// With --apply or --remove: replace or delete a `table inet loopwarden` that harden did not
    /// make (without it, such a table is left alone and the action refused).
    #[arg(long, requires = "replacing")]
    force: bool,
    /// Act in another network namespace: an `ip netns` name, a pid or a path.
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    /// Act in every network namespace of this host: plan each, and apply (or confirm, check,
    /// remove) in those that need it, each with its own table, sysctls and rollback.
    #[arg(long, conflicts_with_all = ["netns", "facts", "persist", "allow", "replace_allows"])]
    all_netns: bool,
    /// The rollback watchdog of a confirmation window (started by --apply itself).
    #[arg(long, value_name = "TOKEN", hide = true, exclusive = true)]
    rollback_watch: Option<u64>,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    if let Some(token) = args.rollback_watch {
        // Nobody reads its output: the state directory records what happened.
        rollback::watch(&PathBuf::from(state::DEFAULT_ROOT), token)?;
        return Ok(super::EXIT_CLEAN);
    }
    if args.all_netns {
        return all_netns(args);
    }
    match args.netns.clone() {
        Some(target) => loopwarden_harden::netns::run_in(&target, move || act(args))?,
        None => act(args),
    }
}

/// `--all-netns`: the same actions in every namespace that needs them.
fn all_netns(args: Args) -> anyhow::Result<u8> {
    use super::harden_all::Action;
    let action = if args.confirm {
        Action::Confirm
    } else if args.check {
        Action::Check(args.root.clone())
    } else if args.remove {
        Action::Remove(args.root.clone(), args.force)
    } else if args.apply {
        Action::Apply(apply::ApplyOptions {
            state_root: PathBuf::from(state::DEFAULT_ROOT),
            confirm_within: args.confirm_within.map(Duration::from_secs),
            persist_root: None,
            persist_existing: false,
            watchdog: watchdog_command()?,
            force: args.force,
        })
    } else {
        Action::Plan
    };
    let options = Options {
        allow: Vec::new(),
        limit_connections: None,
        rp_filter: args.rp_filter,
        all_mapped: args.drop_all_mapped,
    };
    super::harden_all::run(action, &options, args.json)
}

fn act(args: Args) -> anyhow::Result<u8> {
    let state_root = PathBuf::from(state::DEFAULT_ROOT);
    if args.apply || args.confirm || args.check || args.remove {
        loopwarden_harden::require_root("changing or checking what harden applied")?;
    }
    if args.confirm {
        let done = rollback::confirm(&state_root)?;
        print(&args, &outcome::confirmed(&done), &done)?;
        return Ok(super::EXIT_CLEAN);
    }
    if args.check {
        let mut report = check::check(&state_root, &args.root)?;
        if report.compared_with.is_some() {
            // What a plan made now would still change (an interface added since, a value set back).
            let carried = in_force::carry(&Options::default(), &state_root, false)?;
            match plan::for_facts(&loopwarden_core::collect::collect(), &carried.options) {
                Ok((plan, _)) => check::add_plan_drift(&mut report, &plan),
                Err(e) => report
                    .problems
                    .push(format!("no plan could be made to compare with: {e}")),
            }
        }
        print(&args, &outcome::checked(&report), &report)?;
        return Ok(if report.ok() {
            super::EXIT_CLEAN
        } else {
            super::EXIT_FINDINGS
        });
    }
    if args.remove {
        let report = remove::remove(&state_root, &args.root, args.force)?;
        print(&args, &outcome::removed(&report), &report)?;
        return Ok(super::EXIT_CLEAN);
    }
    // An apply that died half-way is put back before the facts are collected: a plan made from
    // the host it half-changed would leave out what it had already changed.
    let recovered = if args.apply {
        loopwarden_harden::recover::recover_in(&state_root)?
    } else {
        None
    };
    let facts = match &args.facts {
        Some(path) => super::snapshot::load(path)?,
        None => loopwarden_core::collect::collect(),
    };
    let given = Options {
        allow: args.allow.clone(),
        limit_connections: args.limit_connections,
        rp_filter: args.rp_filter,
        all_mapped: args.drop_all_mapped,
    };
    // A snapshot from elsewhere is planned as given; this host's plan keeps what is in force.
    let options = match &args.facts {
        Some(_) => given,
        None => {
            let carried = in_force::carry(&given, &state_root, args.replace_allows)?;
            for line in &carried.said {
                eprintln!("loopwarden harden: {}", loopwarden_core::report::shown::line(line));
            }
            carried.options
        }
    };
    if options.limit_connections.is_some() && options.allow.is_empty() {
        anyhow::bail!(
            "--limit-connections limits the users an --allow names: give --allow PORT=USER (no allow is in force \
             to apply it to)"
        );
    }
    let (plan, report) = plan::for_facts(&facts, &options)?;
    if !plan.verified() {
        output::print(&render_plan(&args, &plan, &report, None))?;
        let failed: Vec<String> = plan.unverified().map(|p| p.failure()).collect();
        return Err(ActError::Unverified(failed).into());
    }
    if !args.apply {
        output::print(&render_plan(&args, &plan, &report, None))?;
        return Ok(super::EXIT_CLEAN);
    }
    let host_root = args.root == std::path::Path::new("/");
    if args.persist && host_root && !loopwarden_harden::netns::is_initial() {
        anyhow::bail!(
            "--persist writes the host's boot configuration under /, and this is not the host's network namespace \
             (PID 1's): run it there, or give --root DIR for an image"
        );
    }
    // A copy an earlier --persist installed is kept up to date (but the host's, under /, only
    // from the host's own network namespace).
    let persist_existing = !args.persist
        && (!host_root || loopwarden_harden::netns::is_initial())
        && args.netns.is_none()
        && persist::installed(&args.root)?
        && persist::ours(&args.root)?.is_ok();
    let opts = apply::ApplyOptions {
        state_root,
        confirm_within: args.confirm_within.map(Duration::from_secs),
        persist_root: (args.persist || persist_existing).then(|| args.root.clone()),
        persist_existing,
        watchdog: watchdog_command()?,
        force: args.force,
    };
    let mut done = apply::apply(&plan, &opts)?;
    done.recovered = recovered;
    let text = if args.json {
        json::render(&plan, &report, Some(&done))
    } else {
        format!("{}\n{}", human::render(&plan, &report), outcome::applied(&done))
    };
    output::print(&text)?;
    Ok(super::EXIT_CLEAN)
}

fn render_plan(
    args: &Args,
    plan: &plan::Plan,
    report: &loopwarden_core::Report,
    done: Option<&apply::ApplyReport>,
) -> String {
    if args.json {
        json::render(plan, report, done)
    } else {
        human::render(plan, report)
    }
}

fn print<T: serde::Serialize>(args: &Args, text: &str, value: &T) -> anyhow::Result<()> {
    if args.json {
        output::print(&json::serialize(value))
    } else {
        output::print(text)
    }
}

/// This binary, run as the rollback watchdog (the token is appended by `apply`).
fn watchdog_command() -> anyhow::Result<Vec<OsString>> {
    let exe = std::env::current_exe().context("cannot find this program's path for the rollback watchdog")?;
    Ok(vec![exe.into(), "harden".into(), "--rollback-watch".into()])
}
