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
