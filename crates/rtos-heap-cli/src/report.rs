//! What a command found, in one structure that every output format ([`crate::export`]) renders.

use std::collections::BTreeMap;

use crate::replay::ReplayResult;
use crate::size::SizeResult;
use crate::trace::{Format, SizeExactness, TraceCounts, Warning};

/// Where the operations came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TraceInfo {
    /// File name, or `workload:<name>` for a built-in workload.
    pub source: String,
    /// Format read (`None` for a workload).
    pub format: Option<Format>,
    /// Operations replayed.
    pub ops: u64,
    /// What the parser counted.
    pub counts: TraceCounts,
    /// How exactly the replayed sizes are the application's requests.
    pub sizes: SizeExactness,
    /// Warnings (the first 100).
    pub warnings: Vec<Warning>,
    /// Number of warnings.
    pub warning_count: u64,
    /// `# key=value` header entries of the trace.
    pub header: BTreeMap<String, String>,
}

/// The `size` answer for one scheme, with the `configTOTAL_HEAP_SIZE` to use.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SizeEntry {
    /// The search result.
    #[serde(flatten)]
    pub result: SizeResult,
    /// Recommended `configTOTAL_HEAP_SIZE` (minimum + margin, rounded).
    pub recommended: Option<usize>,
    /// The margin applied, as a fraction.
    pub margin: f64,
    /// Seconds the search took.
    pub seconds: f64,
}

/// The output of one command.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// `demo`, `replay`, `size` or `compare`.
    pub command: String,
    /// The trace.
    pub trace: TraceInfo,
    /// Replays, one per scheme.
    pub replays: Vec<ReplayResult>,
    /// Size answers, one per scheme.
    pub sizes: Vec<SizeEntry>,
    /// Remarks to print under the table (e.g. what heap_3's simulation counts).
    pub notes: Vec<String>,
}
