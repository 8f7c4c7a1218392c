//! Benchmarks of rtos-heap against its peers (talc, rlsf, linked_list_allocator,
//! buddy_system_allocator) on the shared workloads of `shared/docs/workloads.md`.
//!
//! The workloads come from `rtos-heap-workloads` (the exact generators); this crate only replays
//! them. The pieces:
//! - [`subjects`]: every allocator behind one interface, each over its own region of the
//!   workload's heap size;
//! - [`replay`]: the timed replay loop (what callgrind counts and criterion times), the counting
//!   replay (failed allocations, peak live bytes, overlap check) and the cycle-counter latencies;
//! - [`metrics`]: efficiency, per-allocation overhead, minimum block, control-structure bytes;
//! - [`callgrind`]: runs the `bench-driver` binary under callgrind and reads the counts;
//! - [`codesize`]: bytes of machine code reachable from each allocator's allocate and free;
//! - [`freertos`]: FreeRTOS's own C heaps, compiled at benchmark time, for the side-by-side rows;
//! - [`report`] and [`svg`]: the tables of `docs/BENCHMARKS.md` and the ladder chart.
//!
//! `benches/run-all.sh` regenerates every figure; `docs/BENCHMARKS.md` explains the methods.

pub mod callgrind;
pub mod codesize;
pub mod freertos;
pub mod metrics;
pub mod replay;
pub mod report;
pub mod results;
pub mod subjects;
pub mod svg;

use rtos_heap_workloads::{LADDER_HOLES, PoolPattern, Workload};

/// The three headline workloads, in table order.
pub const MAIN_WORKLOADS: [&str; 3] = ["random", "rtos", "fragmented"];

/// Rounds of the `ladder` workload replayed per K (4 operations each).
pub const LADDER_ROUNDS: usize = 100;

/// Seeds of the `efficiency` workload.
pub const EFFICIENCY_SEEDS: core::ops::RangeInclusive<u64> = 1..=50;

/// Steps generated per `efficiency` seed: far more than a 256 KiB heap survives.
pub const EFFICIENCY_STEPS: usize = 200_000;

/// The `pool` workloads: blocks of 32 and 128 bytes, patterns LIFO, FIFO and random.
pub const POOL_WORKLOADS: [&str; 6] = [
    "pool32-lifo",
    "pool32-fifo",
    "pool32-random",
    "pool128-lifo",
    "pool128-fifo",
    "pool128-random",
];

/// Whether `name` is a `pool` workload (measured on the pools only).
pub fn is_pool(name: &str) -> bool {
    name.starts_with("pool")
}

/// Names of the ladder workloads, one per K of `workloads.md`.
pub fn ladder_names() -> Vec<String> {
    LADDER_HOLES.iter().map(|k| format!("ladder{k}")).collect()
}

/// The workload called `name`: `random`, `rtos`, `fragmented`, `ladder<K>` (K from
/// [`LADDER_HOLES`], [`LADDER_ROUNDS`] rounds), `pool<32|128>-<lifo|fifo|random>` or
/// `efficiency<seed>`.
pub fn workload(name: &str) -> Option<Workload> {
    match name {
        "random" => Some(rtos_heap_workloads::random()),
        "rtos" => Some(rtos_heap_workloads::rtos()),
        "fragmented" => Some(rtos_heap_workloads::fragmented()),
        _ => {
            if let Some(k) = name.strip_prefix("ladder") {
                let k: usize = k.parse().ok()?;
                LADDER_HOLES
                    .contains(&k)
                    .then(|| rtos_heap_workloads::ladder(k, LADDER_ROUNDS))
            } else if let Some(rest) = name.strip_prefix("pool") {
                let (block, pattern) = rest.split_once('-')?;
                let block: u32 = block.parse().ok().filter(|b| *b == 32 || *b == 128)?;
                let pattern = match pattern {
                    "lifo" => PoolPattern::Lifo,
                    "fifo" => PoolPattern::Fifo,
                    "random" => PoolPattern::Random,
                    _ => return None,
                };
                Some(rtos_heap_workloads::pool(block, pattern))
            } else if let Some(seed) = name.strip_prefix("efficiency") {
                let seed: u64 = seed.parse().ok()?;
                Some(rtos_heap_workloads::efficiency(seed, EFFICIENCY_STEPS))
            } else {
                None
            }
        }
    }
}

/// Whether `name` is a ladder workload (replayed with the per-operation split).
pub fn is_ladder(name: &str) -> bool {
    name.starts_with("ladder")
}
