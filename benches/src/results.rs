//! The machine-readable results written to `results/` and read back by the report.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::metrics::{Control, Footprint, IndexWork};
use crate::replay::Outcome;

/// Instructions per operation of one allocator on one workload (callgrind, baseline subtracted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Instructions {
    /// Allocator name.
    pub alloc: String,
    /// Workload name.
    pub workload: String,
    /// Timed operations (allocations attempted + frees).
    pub ops: usize,
    /// Timed allocations attempted.
    pub allocs: usize,
    /// Timed frees.
    pub frees: usize,
    /// Instructions counted inside the timed replay.
    pub total: u64,
    /// The same replay with the no-op allocator.
    pub baseline: u64,
    /// `(total - baseline) / ops`.
    pub per_op: f64,
    /// Mean instructions of one allocation (inclusive cost of the alloc wrapper, less the no-op's).
    pub per_alloc: f64,
    /// Mean instructions of one free.
    pub per_free: f64,
    /// Ladder only: mean instructions of each of the four operations of a round (alloc 64, free it,
    /// free the top block, re-allocate it), baseline subtracted.
    pub ladder_ops: Option<[f64; 4]>,
}

/// Failed allocations and peak live bytes of one allocator on one workload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutcomeRow {
    /// Allocator name.
    pub alloc: String,
    /// Workload name.
    pub workload: String,
    /// Heap size the workload is defined for.
    pub heap_size: usize,
    /// What the counting replay observed (set-up and timed operations).
    pub outcome: Outcome,
}

/// What heap_4's free-block index has to do on one workload (see [`IndexWork`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexWorkRow {
    /// Workload name.
    pub workload: String,
    /// The counts.
    pub work: IndexWork,
}

/// Efficiency ratios of one allocator over the seeds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EfficiencyRow {
    /// Allocator name.
    pub alloc: String,
    /// Ratio per seed (seed 1 first); `null` where the sequence never failed.
    pub ratios: Vec<Option<f64>>,
    /// Mean over the seeds that failed.
    pub mean: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

/// Cycle-counter latency percentiles of one allocator on one workload (TSC ticks).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencyRow {
    /// Allocator name.
    pub alloc: String,
    /// Workload name.
    pub workload: String,
    /// Samples (operations × repetitions).
    pub samples: usize,
    /// Median.
    pub p50: u32,
    /// 99th percentile.
    pub p99: u32,
    /// 99.9th percentile.
    pub p999: u32,
    /// Maximum.
    pub max: u32,
}

/// CPU time per operation from criterion (median of the samples).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CpuTimeRow {
    /// Allocator name.
    pub alloc: String,
    /// Workload name.
    pub workload: String,
    /// Nanoseconds per operation (criterion's median time of one replay / operations).
    pub ns_per_op: f64,
}

/// Memory figures of one allocator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemoryRow {
    /// Allocator name.
    pub alloc: String,
    /// Footprint per request size.
    pub footprints: Vec<Footprint>,
    /// Fixed costs.
    pub control: Control,
}

/// Machine code bytes of an allocator's allocate + free path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CodeSizeRow {
    /// Allocator name.
    pub alloc: String,
    /// Bytes reachable from the alloc wrapper.
    pub alloc_bytes: u64,
    /// Bytes reachable from the free wrapper.
    pub free_bytes: u64,
    /// Bytes reachable from either (each function counted once).
    pub total_bytes: u64,
    /// Functions counted (demangled names).
    pub functions: Vec<String>,
}

/// The machine and toolchain a result set was measured on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// `rustc --version`.
    pub rustc: String,
    /// `valgrind --version`.
    pub valgrind: String,
    /// Load average when the run started.
    pub load: String,
    /// When (UTC, `date -u`).
    pub date: String,
}

/// Writes `value` as pretty JSON to `path`, creating its directory.
pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Reads JSON from `path`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
