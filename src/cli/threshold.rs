//! `--fail-on`: the severity at which a reporting verb exits 1, or `never`. Shared by `audit`
//! and `fleet`, so that both accept the same values (and their completions offer them).

use clap::builder::PossibleValue;
use loopwarden_core::report::Severity;

/// The `--fail-on` threshold: a severity, or `never` (always exit 0 unless something fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Exit 1 for an open or unknown finding at or above this severity.
    At(Severity),
    /// Never exit 1 for findings.
    Never,
}

impl FailOn {
    /// The severity to count from, `None` for `never`.
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::At(s) => Some(s),
            FailOn::Never => None,
        }
    }
}

impl clap::ValueEnum for FailOn {
    fn value_variants<'a>() -> &'a [FailOn] {
        &[
            FailOn::At(Severity::Info),
            FailOn::At(Severity::Low),
            FailOn::At(Severity::Medium),
            FailOn::At(Severity::High),
            FailOn::At(Severity::Critical),
            FailOn::Never,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            FailOn::At(s) => PossibleValue::new(s.as_str()),
            FailOn::Never => PossibleValue::new("never").help("report only: findings never make the exit status 1"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn severities_and_never_parse_in_any_case() {
        assert_eq!(FailOn::from_str("HIGH", true), Ok(FailOn::At(Severity::High)));
        assert_eq!(FailOn::from_str("never", true), Ok(FailOn::Never));
        assert!(FailOn::from_str("severe", true).is_err());
    }
}
