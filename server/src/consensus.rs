//! The offline `crowdroom consensus` command: it runs the consensus
//! estimators of [`crowdroom_work::consensus`] on public benchmark
//! datasets (or a synthetic crowd) and prints one JSON line per dataset
//! and method. What lives here reads files or the command line: the
//! dataset adapters ([`datasets`]), the flat YAML reader, the report and
//! the command; the estimators themselves are pure and live in the work
//! crate.

pub mod cli;
pub mod datasets;
mod flat_yaml;
pub mod report;

/// The estimators the CLI can run. The library functions take options of
/// their own; this enum only names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Majority vote.
    Mv,
    /// Weighted majority vote (weights from estimated worker accuracy).
    Wmv,
    /// Dawid-Skene EM.
    Ds,
    /// Per-item median of numeric answers.
    Median,
}

impl Method {
    /// The name used on the command line and in the JSON lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Mv => "mv",
            Method::Wmv => "wmv",
            Method::Ds => "ds",
            Method::Median => "median",
        }
    }

    /// Whether the method infers a label among categories (not a number).
    pub fn is_categorical(self) -> bool {
        match self {
            Method::Mv | Method::Wmv | Method::Ds => true,
            Method::Median => false,
        }
    }
}
