//! What `--apply`, `--confirm`, `--check` and `--remove` did, for people.

use crate::apply::{ApplyReport, TableChange};
use crate::check::{CheckReport, Status};
use crate::remove::RemoveReport;
use crate::rollback::Confirmed;
use std::fmt::Write;

/// After `--apply`.
pub fn applied(report: &ApplyReport) -> String {
    let mut out = String::from("applied:\n");
    if let Some(r) = &report.recovered {
        let _ = writeln!(out, "  first: {}", r.describe());
    }
    out.push_str(match report.table {
        TableChange::Created => "  table inet loopwarden created\n",
        TableChange::Replaced => "  table inet loopwarden replaced in one transaction (its counters restart)\n",
        TableChange::Unchanged => "  table inet loopwarden already as planned: not touched, counters kept\n",
    });
    for w in &report.sysctls {
        let _ = writeln!(out, "  {} {} -> {}", w.key, w.from, w.to);
    }
    if report.route_cache_flushed {
        out.push_str("  route cache flushed\n");
    }
    let _ = writeln!(
        out,
        "  read back: as planned; what was replaced is saved in {}",
        report.saved_in.display()
    );
    if let Some(deadline) = &report.confirm_by {
        let _ = writeln!(
            out,
            "  ROLLS BACK at {deadline} unless `loopwarden harden --confirm` runs before (from any shell; closing \
             this one does not stop the rollback){}",
            if report.persist_on_confirm {
                "; the persistent copy is installed on confirmation"
            } else {
                ""
            }
        );
    }
    if report.persist_existing {
        out.push_str(
            "  the persistent copy an earlier --persist installed is updated too (otherwise the next boot or \
             nftables reload would bring back the old table); `loopwarden harden --remove` takes it away\n",
        );
    }
    for p in &report.persisted {
        let _ = writeln!(out, "  persisted: {}", p.display());
    }
    super::terminal_safe(out)
}

/// After `--confirm`.
pub fn confirmed(c: &Confirmed) -> String {
    let mut out = match c.watchdog_was_gone {
        None => format!(
            "confirmed: the apply stays (it would have rolled back at {})\n",
            c.deadline
        ),
        Some(pid) => format!(
            "confirmed: the apply stays; note that its rollback watchdog ({}) was already gone, so nothing would \
             have rolled it back at {}\n",
            pid.map_or_else(|| "pid never recorded".to_string(), |p| format!("pid {p}")),
            c.deadline
        ),
    };
    for p in &c.persisted {
        let _ = writeln!(out, "  persisted: {}", p.display());
    }
    super::terminal_safe(out)
}

/// After `--check`.
pub fn checked(c: &CheckReport) -> String {
    let verdict = match c.status {
        Status::Intact => "intact",
        Status::Missing => "MISSING",
        Status::Drifted => "DRIFTED",
        Status::NotApplied => "NOT APPLIED",
        Status::Interrupted => "INTERRUPTED",
        Status::Unwatched => "UNWATCHED",
    };
    let mut out = format!("loopwarden harden: {verdict}\n");
    if let Some(with) = &c.compared_with {
        let _ = writeln!(out, "  compared with {with}");
    }
    for p in &c.problems {
        let _ = writeln!(out, "  · {p}");
    }
    if let (Some(deadline), false) = (&c.pending_until, c.status == Status::Unwatched) {
        let _ = writeln!(
            out,
            "  awaiting `loopwarden harden --confirm` until {deadline}; its watchdog rolls back then"
        );
    }
    if let Some(r) = &c.rolled_back {
        let _ = writeln!(out, "  {}: {}", r.describe(), r.restored.join("; "));
    }
    for line in &c.counters {
        let _ = writeln!(out, "  {line}");
    }
    for line in &c.stale {
        let _ = writeln!(out, "  other namespaces: {line}");
    }
    super::terminal_safe(out)
}

/// After `--remove`.
pub fn removed(r: &RemoveReport) -> String {
    let mut out = String::from("removed:\n");
    if let Some(rec) = &r.recovered {
        let _ = writeln!(out, "  first: {}", rec.describe());
    }
    out.push_str(if r.table_removed {
        "  table inet loopwarden deleted\n"
    } else {
        "  table inet loopwarden was not there\n"
    });
    if r.cancelled_window {
        out.push_str("  the pending confirmation window is closed: nothing will roll back\n");
    }
    for s in &r.restored {
        let _ = writeln!(out, "  restored {s}");
    }
    for s in &r.left {
        let _ = writeln!(out, "  left {s}");
    }
    for p in &r.unpersisted {
        let _ = writeln!(out, "  removed {}", p.display());
    }
    if let Some(note) = &r.persisted_elsewhere {
        let _ = writeln!(out, "  {note}");
    }
    super::terminal_safe(out)
}
