//! Measurements that need no timer: efficiency, per-allocation footprint, minimum block and
//! control-structure bytes. All run natively, on fresh subjects.

use crate::replay::{Outcome, live_at_first_failure, replay_counting};
use crate::subjects::{BenchAlloc, Kind, object_size};
use crate::with_subject;

/// The efficiency ratio of `kind` for one seed: requested bytes live at the first refused
/// allocation over the heap size (256 KiB). `None` if the generated sequence never fails.
pub fn efficiency(kind: Kind, seed: u64) -> Option<f64> {
    let w = rtos_heap_workloads::efficiency(seed, crate::EFFICIENCY_STEPS);
    let live = with_subject!(kind, w.heap_size, |s| live_at_first_failure(&mut s, &w))?;
    Some(live as f64 / w.heap_size as f64)
}

/// The counting replay of workload `name` on a fresh `kind` (failed allocations, peak live bytes).
///
/// # Panics
/// If `name` is not a known workload, or if the subject hands out overlapping blocks.
pub fn outcome(kind: Kind, name: &str) -> Outcome {
    let w = crate::workload(name).expect("known workload");
    with_subject!(kind, w.heap_size, |s| replay_counting(&mut s, &w))
}

/// Footprint of one allocation of `size` bytes (align 8): what it costs in the region.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Footprint {
    /// Requested bytes.
    pub size: usize,
    /// Median distance between the addresses of consecutive allocations of `size` bytes in a fresh
    /// region: the bytes one such block occupies, header and rounding included.
    pub stride: usize,
    /// How many such blocks a fresh region of [`FOOTPRINT_REGION`] bytes holds.
    pub capacity: usize,
}

/// Region size of the footprint measurement.
pub const FOOTPRINT_REGION: usize = 64 * 1024;

/// Request sizes of the footprint table.
pub const FOOTPRINT_SIZES: [usize; 9] = [1, 8, 16, 24, 32, 64, 100, 256, 1000];

/// Allocates `size`-byte blocks from a fresh `kind` region of [`FOOTPRINT_REGION`] bytes until
/// it refuses, and measures the stride and the capacity.
pub fn footprint(kind: Kind, size: usize) -> Footprint {
    with_subject!(kind, FOOTPRINT_REGION, |s| {
        let mut ptrs = Vec::new();
        loop {
            let p = s.alloc(size, 8);
            if p.is_null() || ptrs.len() >= FOOTPRINT_REGION {
                break;
            }
            ptrs.push(p as usize);
        }
        let mut deltas: Vec<usize> = ptrs.windows(2).map(|w| w[0].abs_diff(w[1])).collect();
        deltas.sort_unstable();
        let stride = deltas.get(deltas.len() / 2).copied().unwrap_or(0);
        for &p in &ptrs {
            // SAFETY: every pointer is a live block of this subject of `size` bytes, align 8.
            unsafe {
                s.free(
                    core::ptr::NonNull::new(p as *mut u8).expect("non-null"),
                    size,
                    8,
                )
            };
        }
        Footprint {
            size,
            stride,
            capacity: ptrs.len(),
        }
    })
}

/// Fixed costs of a scheme: the allocator object and what a region loses before any allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Control {
    /// `size_of` the allocator object itself (static / stack part).
    pub object_bytes: usize,
    /// Region size used for `largest_alloc`.
    pub region: usize,
    /// Largest single request (align 8) that a fresh region of `region` bytes grants.
    pub largest_alloc: usize,
}

/// Measures [`Control`] for `kind` over a region of `region` bytes (binary search on fresh subjects).
pub fn control(kind: Kind, region: usize) -> Control {
    let fits = |n: usize| {
        with_subject!(kind, region, |s| {
            let p = s.alloc(n, 8);
            if let Some(p) = core::ptr::NonNull::new(p) {
                // SAFETY: `p` was just allocated with this size and alignment.
                unsafe { s.free(p, n, 8) };
                true
            } else {
                false
            }
        })
    };
    let (mut lo, mut hi) = (0usize, region + 1); // fits(lo) or lo == 0; !fits(hi)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Control {
        object_bytes: object_size(kind),
        region,
        largest_alloc: lo,
    }
}

/// What heap_4's free-block index has to do on a workload: how many free blocks each timed
/// operation meets, and how each changes their number. Observed with `Heap4<Native>`'s statistics
/// (the list index; the tree places every block the same, so it sees the same free blocks).
///
/// A binary search tree over `n` keys is at least `log2(n + 1)` levels high, so `mean_log2` is
/// the least height the tree index can have, on average over the operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexWork {
    /// Timed allocations that succeeded.
    pub allocs: usize,
    /// Timed frees.
    pub frees: usize,
    /// Mean number of free blocks (the top block included) before a timed operation.
    pub mean_free_blocks: f64,
    /// Mean of `log2(free blocks + 1)` before a timed operation.
    pub mean_log2: f64,
    /// Allocations that took a free block whole (one free block fewer): a deletion from the index.
    pub exact: usize,
    /// Allocations that split a free block (as many free blocks as before).
    pub split: usize,
    /// Frees that merged with no neighbour (one free block more): an insertion into the index.
    pub attach: usize,
    /// Frees that merged with one free neighbour.
    pub merge_one: usize,
    /// Frees that merged with both neighbours (one free block fewer).
    pub merge_two: usize,
}

/// [`IndexWork`] of workload `name` (set-up untimed, as in the other measurements).
///
/// # Panics
/// If `name` is not a known workload.
pub fn index_work(name: &str) -> IndexWork {
    use crate::replay::{Slots, replay_setup, step};
    use rtos_heap::RawHeap;
    use rtos_heap_workloads::Op;

    let w = crate::workload(name).expect("known workload");
    let mut s = crate::subjects::heap4_c(w.heap_size);
    let mut slots = Slots::for_workload(&w);
    replay_setup(&mut s, &w.setup, &mut slots);
    let mut out = IndexWork::default();
    let (mut blocks_sum, mut log_sum) = (0usize, 0f64);
    for &op in &w.ops {
        let before = s.heap.0.stats().free_blocks;
        let freed = match op {
            // A free whose allocation was refused does nothing.
            Op::Free { id } if slots.ptr(id).is_null() => continue,
            Op::Free { .. } => true,
            Op::Alloc { .. } => false,
        };
        if step(&mut s, op, &mut slots) {
            // A refused allocation changes nothing.
            continue;
        }
        blocks_sum += before;
        log_sum += ((before + 1) as f64).log2();
        let after = s.heap.0.stats().free_blocks;
        match (freed, after as isize - before as isize) {
            (false, -1) => out.exact += 1,
            (false, _) => out.split += 1,
            (true, 1) => out.attach += 1,
            (true, 0) => out.merge_one += 1,
            (true, _) => out.merge_two += 1,
        }
        if freed {
            out.frees += 1;
        } else {
            out.allocs += 1;
        }
    }
    // Means over the operations that did something.
    let timed = (out.allocs + out.frees).max(1) as f64;
    out.mean_free_blocks = blocks_sum as f64 / timed;
    out.mean_log2 = log_sum / timed;
    out
}
