//! `loopwarden checks`: the catalogue of check ids.

use super::output;

/// List every check: its id, who exploits what it finds, which stage decides it, what it means
/// and why it matters.
#[derive(clap::Args)]
pub struct Args {
    /// Print the catalogue as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let specs: Vec<_> = loopwarden_core::checks::ALL.iter().map(|c| c.spec).collect();
    if args.json {
        output::print(&output::to_json(&specs, "check catalogue")?)?;
        return Ok(super::EXIT_CLEAN);
    }
    let mut text = String::new();
    for s in specs {
        let attackers: Vec<&str> = s.attackers.iter().map(|a| a.as_str()).collect();
        text.push_str(&format!(
            "{}  [{}; decided by {}]\n    {}\n    why: {}\n\n",
            s.id,
            attackers.join(", "),
            match s.stage {
                loopwarden_core::checks::Stage::Inspect => "audit",
                loopwarden_core::checks::Stage::Probe => "audit --probe",
                loopwarden_core::checks::Stage::Prove => "audit --prove",
                loopwarden_core::checks::Stage::AllNetns => "audit --all-netns",
            },
            s.summary,
            s.why
        ));
    }
    output::print(text.trim_end())?;
    Ok(super::EXIT_CLEAN)
}
