//! The `--allow` restrictions an earlier apply put in force, carried into the next plan: harden
//! replaces its whole table, so a plan made only from the command line would lift every allow the
//! command line does not repeat — silently opening those ports to every local user again.

use crate::error::ActError;
use crate::plan::allow::{self, AllowSpec};
use crate::plan::Options;
use crate::state;
use std::path::Path;

/// The options a plan is made with, and what to tell the user about the allows in force.
#[derive(Debug, Clone)]
pub struct Carried {
    /// `given` with the allows in force merged in (or, with `replace`, as given).
    pub options: Options,
    /// One line per allow kept, replaced or dropped, or why the record could not be read.
    pub said: Vec<String>,
}

/// Merges the allows in force in the calling thread's network namespace (recorded under
/// `state_root`) into `given`: kept unless given again for the same port, or all dropped with
/// `replace` (`--replace-allows`). An unprivileged plan cannot read the record: it says so and
/// plans with what was given.
pub fn carry(given: &Options, state_root: &Path, replace: bool) -> Result<Carried, ActError> {
    let mut options = given.clone();
    let in_force = match state::allows_in_force(state_root) {
        Ok(Some(in_force)) => in_force,
        Ok(None) => {
            return Ok(Carried {
                options,
                said: Vec::new(),
            })
        }
        Err(ActError::Io { path, source }) if source.kind() == std::io::ErrorKind::PermissionDenied => {
            let said = vec![format!(
                "cannot read the allows in force ({}: {source}): this plan shows only the --allow given; \
                 run as root to see what --apply would keep",
                path.display()
            )];
            return Ok(Carried { options, said });
        }
        Err(e) => return Err(e),
    };
    let earlier = parse(&in_force)?;
    let since = format!("in force since {}", in_force.at);
    if replace {
        let said = earlier
            .iter()
            .map(|spec| format!("dropping --allow {spec} ({since}): --replace-allows"))
            .collect();
        return Ok(Carried { options, said });
    }
    let merged = allow::merge(&earlier, &given.allow);
    let mut said: Vec<String> = merged
        .kept
        .iter()
        .map(|spec| format!("keeping --allow {spec} ({since}): give the port again to change it, or --replace-allows"))
        .collect();
    for old in &merged.replaced {
        let new: Vec<String> = given
            .allow
            .iter()
            .filter(|n| n.port == old.port)
            .map(ToString::to_string)
            .collect();
        said.push(format!("--allow {} replaces {old} ({since})", new.join(" ")));
    }
    if given.limit_connections.is_none() && !merged.kept.is_empty() {
        if let Some(limit) = in_force.limit_connections {
            options.limit_connections = Some(limit);
            said.push(format!("keeping --limit-connections {limit} ({since})"));
        }
    }
    options.allow = merged.all;
    Ok(Carried { options, said })
}

/// The recorded specs, parsed back; a record harden did not write is refused, naming it.
fn parse(in_force: &state::InForce) -> Result<Vec<AllowSpec>, ActError> {
    in_force
        .allows
        .iter()
        .map(|text| {
            text.parse::<AllowSpec>().map_err(|why| ActError::Untrusted {
                path: in_force.path.clone(),
                why: format!("its allow {why}"),
            })
        })
        .collect()
}
