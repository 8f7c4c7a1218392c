//! Replaying a trace against a simulated heap: failures, peak use, fragmentation over time, heap
//! maps and per-allocation placements.

use std::collections::HashMap;
use std::io::Write;

use rtos_heap::{AllocError, HeapStats};

use crate::layout::{Layout, Scheme};
use crate::sim::{MapBlock, Sim};
use crate::trace::{Op, OpKind, TraceError};

/// What to record besides the counters.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    /// About how many points of the time series to keep (decimated evenly over the trace).
    pub samples: usize,
    /// Take a heap map after this operation index (the moment of peak use found by a first pass).
    pub snapshot_at: Option<u64>,
    /// Take heap maps (final state, first failure, `snapshot_at`).
    pub maps: bool,
    /// Stop at the first failed allocation.
    pub stop_at_first_failure: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            samples: 600,
            snapshot_at: None,
            maps: false,
            stop_at_first_failure: false,
        }
    }
}

/// The first allocation that failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// 0-based operation index.
    pub op: u64,
    /// Line of the trace.
    pub line: u64,
    /// Requested bytes.
    pub size: u64,
    /// Requested alignment (0: `portBYTE_ALIGNMENT`).
    pub align: u32,
    /// Why, as the core crate says.
    pub reason: String,
    /// Whether it fails at every heap size (zero size, size overflow).
    pub size_independent: bool,
}

/// One point of the time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    /// Operation index (after the operation).
    pub op: u64,
    /// Free bytes.
    pub free: usize,
    /// Largest free block.
    pub largest: usize,
    /// Minimum ever free bytes so far.
    pub min_ever: usize,
}

/// A heap map at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeapMap {
    /// "final", "peak use" or "first failure".
    pub label: String,
    /// Operation index the map was taken after (before, for a failure).
    pub op: u64,
    /// Trace line of that operation.
    pub line: u64,
    /// The blocks in address order.
    pub blocks: Vec<MapBlock>,
}

/// Everything one replay found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayResult {
    /// Scheme.
    pub scheme: Scheme,
    /// Device layout.
    pub layout: Layout,
    /// Region sizes (one for heap_1..4).
    pub regions: Vec<usize>,
    /// Total bytes given to the heap.
    pub heap_size: usize,
    /// Free bytes of the empty heap.
    pub capacity: usize,
    /// Operations replayed.
    pub ops: u64,
    /// Allocations attempted.
    pub allocs: u64,
    /// Successful frees.
    pub frees: u64,
    /// Failed allocations.
    pub failed_allocs: u64,
    /// Of those, the ones that fail at any heap size.
    pub size_independent_failures: u64,
    /// The first failed allocation.
    pub first_failure: Option<Failure>,
    /// Frees skipped because their allocation had failed in this replay.
    pub frees_of_failed: u64,
    /// Frees the heap refused.
    pub rejected_frees: u64,
    /// Most bytes in use at once: capacity − minimum free (heap_3: requested bytes only).
    pub peak_used: usize,
    /// First operation index at which the peak was reached.
    pub peak_op: u64,
    /// Minimum ever free bytes.
    pub min_ever_free: usize,
    /// Largest free block at the end.
    pub largest_free_end: usize,
    /// `1 − largest free block / free bytes` at the end.
    pub fragmentation_end: f64,
    /// Highest fragmentation over the samples.
    pub max_fragmentation: f64,
    /// `vPortGetHeapStats` at the end.
    pub stats: HeapStats,
    /// Free bytes, largest free block and minimum ever over time.
    pub series: Vec<Sample>,
    /// Heap maps (with [`ReplayOptions::maps`]).
    pub maps: Vec<HeapMap>,
    /// The first failed allocations (at most [`MAX_FAIL_MARKS`]), for the time axis.
    pub failures: Vec<FailMark>,
}

/// Most failed allocations a [`ReplayResult`] lists one by one.
pub const MAX_FAIL_MARKS: usize = 500;

/// A failed allocation, as marked on the report's time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FailMark {
    /// Operation index.
    pub op: u64,
    /// Trace line.
    pub line: u64,
    /// Requested bytes.
    pub size: u64,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The placements file could not be written.
    #[error("writing placements: {0}")]
    Io(#[from] std::io::Error),
}

fn fragmentation(free: usize, largest: usize) -> f64 {
    if free == 0 {
        0.0
    } else {
        1.0 - largest.min(free) as f64 / free as f64
    }
}

/// Per slot: the live allocation's address (0: none), operation index and trace line.
type Table = Vec<(usize, u64, u64)>;

fn snapshot(sim: &dyn Sim, table: &Table, label: &str, op: u64, line: u64) -> HeapMap {
    let mut blocks = Vec::new();
    sim.blocks(&mut blocks);
    let header = sim.spec().layout.header();
    let born: HashMap<(usize, usize), (u64, u64)> = table
        .iter()
        .filter(|e| e.0 != 0)
        .map(|&(addr, b, l)| {
            let (r, off) = sim.locate(addr);
            ((r, off.wrapping_sub(header)), (b, l))
        })
        .collect();
    for b in &mut blocks {
        if b.allocated
            && let Some(&(op, line)) = born.get(&(b.region, b.offset))
        {
            b.born = Some(op);
            b.line = Some(line);
        }
    }
    HeapMap {
        label: label.into(),
        op,
        line,
        blocks,
    }
}

/// Replays `ops` against `sim`. With `placements`, writes one line per allocation: the payload's
/// offset from the start of its region (`<region> <offset>` for heap_5), `-1` for a failure.
///
/// # Errors
/// [`ReplayError`] when the trace cannot be read or the placements cannot be written.
pub fn replay<I>(
    sim: &mut dyn Sim,
    ops: I,
    opts: &ReplayOptions,
    mut placements: Option<&mut dyn Write>,
) -> Result<ReplayResult, ReplayError>
where
    I: IntoIterator<Item = Result<Op, TraceError>>,
{
    let heap5 = sim.spec().scheme == Scheme::Heap5;
    let capacity = sim.capacity();
    let mut table: Table = Vec::new();
    let mut last_line = 0u64;
    let mut failures: Vec<FailMark> = Vec::new();
    let (mut n, mut allocs, mut frees, mut failed, mut indep) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut frees_of_failed, mut rejected) = (0u64, 0u64);
    let mut first_failure = None;
    let mut maps = Vec::new();
    let (mut min_free, mut peak_op) = (capacity, 0u64);
    let mut series: Vec<Sample> = Vec::new();
    let mut stride = 1u64;
    let target = opts.samples.max(2);
    for op in ops {
        let op = op?;
        let i = n;
        n += 1;
        last_line = op.line;
        let slot = op.slot as usize;
        if slot >= table.len() {
            table.resize(slot + 1, (0, 0, 0));
        }
        match op.kind {
            OpKind::Alloc { size, align } => {
                allocs += 1;
                match sim.alloc(size, align) {
                    Ok(addr) => {
                        table[slot] = (addr, i, op.line);
                        if let Some(w) = placements.as_deref_mut() {
                            let (r, off) = sim.locate(addr);
                            if heap5 {
                                writeln!(w, "{r} {off}")?;
                            } else {
                                writeln!(w, "{off}")?;
                            }
                        }
                        let f = sim.free_bytes();
                        if f < min_free {
                            min_free = f;
                            peak_op = i;
                        }
                    }
                    Err(e) => {
                        table[slot] = (0, i, op.line);
                        if failures.len() < MAX_FAIL_MARKS {
                            failures.push(FailMark {
                                op: i,
                                line: op.line,
                                size,
                            });
                        }
                        failed += 1;
                        let size_independent =
                            matches!(e, AllocError::ZeroSize | AllocError::SizeOverflow);
                        indep += u64::from(size_independent);
                        if let Some(w) = placements.as_deref_mut() {
                            writeln!(w, "-1")?;
                        }
                        if first_failure.is_none() {
                            first_failure = Some(Failure {
                                op: i,
                                line: op.line,
                                size,
                                align,
                                reason: e.to_string(),
                                size_independent,
                            });
                            if opts.maps {
                                maps.push(snapshot(sim, &table, "first failure", i, op.line));
                            }
                            if opts.stop_at_first_failure {
                                break;
                            }
                        }
                    }
                }
            }
            OpKind::Free => {
                let addr = std::mem::take(&mut table[slot].0);
                if addr == 0 {
                    frees_of_failed += 1;
                } else if sim.free(addr).is_ok() {
                    frees += 1;
                } else {
                    rejected += 1;
                }
            }
        }
        if opts.maps && opts.snapshot_at == Some(i) {
            maps.push(snapshot(sim, &table, "peak use", i, op.line));
        }
        if i % stride == 0 {
            series.push(Sample {
                op: i,
                free: sim.free_bytes(),
                largest: sim.largest_free(),
                min_ever: min_free,
            });
            if series.len() >= 2 * target {
                let mut k = 0;
                series.retain(|_| {
                    k += 1;
                    k % 2 == 1
                });
                stride *= 2;
            }
        }
    }
    let stats = sim.stats();
    let largest_end = sim.largest_free();
    let free_end = sim.free_bytes();
    if n > 0 && series.last().is_none_or(|s| s.op != n - 1) {
        series.push(Sample {
            op: n - 1,
            free: free_end,
            largest: largest_end,
            min_ever: min_free,
        });
    }
    if opts.maps {
        maps.push(snapshot(
            sim,
            &table,
            "final",
            n.saturating_sub(1),
            last_line,
        ));
    }
    let max_fragmentation = series
        .iter()
        .map(|s| fragmentation(s.free, s.largest))
        .fold(0.0, f64::max);
    // Return what is still live (heap_3 holds real host memory).
    for &(addr, _, _) in &table {
        if addr != 0 {
            let _ = sim.free(addr);
        }
    }
    let spec = sim.spec();
    Ok(ReplayResult {
        scheme: spec.scheme,
        layout: spec.layout,
        regions: spec.regions.clone(),
        heap_size: spec.total(),
        capacity,
        ops: n,
        allocs,
        frees,
        failed_allocs: failed,
        size_independent_failures: indep,
        first_failure,
        frees_of_failed,
        rejected_frees: rejected,
        peak_used: capacity - min_free,
        peak_op,
        min_ever_free: min_free,
        largest_free_end: largest_end,
        fragmentation_end: fragmentation(free_end, largest_end),
        max_fragmentation,
        stats,
        series,
        maps,
        failures,
    })
}

/// Replays operations held in memory.
///
/// # Errors
/// As [`replay`] (only placement writes can fail).
pub fn replay_ops(
    sim: &mut dyn Sim,
    ops: &[Op],
    opts: &ReplayOptions,
    placements: Option<&mut dyn Write>,
) -> Result<ReplayResult, ReplayError> {
    replay(sim, ops.iter().map(|o| Ok(*o)), opts, placements)
}
