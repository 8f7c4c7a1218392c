//! Replaying a workload's operations against a subject.
//!
//! The timed loop ([`replay_timed`]) is `#[inline(never)]` with a name that appears nowhere else,
//! so that `valgrind --tool=callgrind --toggle-collect='*replay_timed*'` counts exactly the timed
//! operations and nothing of the set-up. It does nothing but what every allocator's replay must do:
//! read the operation, call the allocator, keep the pointer by id. The same loop over the no-op
//! allocator is the baseline that is subtracted.

use core::ptr::NonNull;

use rtos_heap_workloads::{Op, Workload};

use crate::subjects::BenchAlloc;

/// Per-allocation-id state of a replay: pointer (null = not live or refused), size and alignment.
pub struct Slots {
    ptr: Vec<*mut u8>,
    size: Vec<usize>,
    align: Vec<usize>,
}

impl Slots {
    /// Slots for every id of `w`, with sizes and alignments filled in from its allocations.
    pub fn for_workload(w: &Workload) -> Slots {
        let n = w.id_count();
        let mut s = Slots {
            ptr: vec![core::ptr::null_mut(); n],
            size: vec![0; n],
            align: vec![0; n],
        };
        for op in w.setup.iter().chain(&w.ops) {
            if let Op::Alloc { id, size, align } = *op {
                s.size[id as usize] = size as usize;
                s.align[id as usize] = align as usize;
            }
        }
        s
    }

    /// The pointer currently held for `id` (null when not live).
    pub fn ptr(&self, id: u32) -> *mut u8 {
        self.ptr[id as usize]
    }
}

/// What an untimed, counting replay observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Operations executed (allocations attempted + frees of live blocks).
    pub ops: usize,
    /// Allocations refused.
    pub failed: usize,
    /// Frees skipped because their allocation had been refused.
    pub skipped_frees: usize,
    /// Largest sum of requested bytes live at once (successful allocations only).
    pub peak_live_bytes: usize,
}

/// One operation, as every replay performs it. Returns whether an allocation failed.
#[inline(always)]
pub(crate) fn step<A: BenchAlloc>(heap: &mut A, op: Op, slots: &mut Slots) -> bool {
    match op {
        Op::Alloc { id, size, align } => {
            let p = heap.alloc(size as usize, align as usize);
            slots.ptr[id as usize] = p;
            p.is_null()
        }
        Op::Free { id } => {
            let i = id as usize;
            if let Some(p) = NonNull::new(slots.ptr[i]) {
                slots.ptr[i] = core::ptr::null_mut();
                // SAFETY: `p` was returned by this heap for id `i` with this size and alignment and
                // is freed once (the slot is cleared).
                unsafe { heap.free(p, slots.size[i], slots.align[i]) };
            }
            false
        }
    }
}

/// Replays the untimed set-up operations. Returns the number of failed allocations.
///
/// Inlined into its caller on purpose: a separate function with the same body as
/// [`replay_timed`] would be merged with it by the linker, and callgrind would then see one name.
#[inline(always)]
pub fn replay_setup<A: BenchAlloc>(heap: &mut A, ops: &[Op], slots: &mut Slots) -> usize {
    let mut failed = 0;
    for &op in ops {
        failed += usize::from(step(heap, op, slots));
    }
    failed
}

/// The timed replay measured by callgrind and criterion. Returns the number of failed allocations.
#[inline(never)]
pub fn replay_timed<A: BenchAlloc>(heap: &mut A, ops: &[Op], slots: &mut Slots) -> usize {
    let mut failed = 0;
    for &op in ops {
        failed += usize::from(step(heap, op, slots));
    }
    failed
}

/// Frees every block still live (untimed clean-up, so a subject can be dropped in a clean state).
pub fn free_all<A: BenchAlloc>(heap: &mut A, slots: &mut Slots) {
    for i in 0..slots.ptr.len() {
        if let Some(p) = NonNull::new(slots.ptr[i]) {
            slots.ptr[i] = core::ptr::null_mut();
            // SAFETY: a live pointer of this heap with its own size and alignment, freed once.
            unsafe { heap.free(p, slots.size[i], slots.align[i]) };
        }
    }
}

/// An untimed replay of set-up and timed operations that counts failures, skipped frees and the
/// peak of live requested bytes. Every returned block is filled with a tag and checked on free, so
/// a replay also proves that the subject never hands out overlapping blocks.
pub fn replay_counting<A: BenchAlloc>(heap: &mut A, w: &Workload) -> Outcome {
    let mut slots = Slots::for_workload(w);
    let mut out = Outcome::default();
    let mut live = 0usize;
    for &op in w.setup.iter().chain(&w.ops) {
        match op {
            Op::Alloc { id, size, .. } => {
                out.ops += 1;
                let failed = step(heap, op, &mut slots);
                if failed {
                    out.failed += 1;
                } else {
                    let p = slots.ptr(id);
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { p.write_bytes(tag(id), size as usize) };
                    live += size as usize;
                    out.peak_live_bytes = out.peak_live_bytes.max(live);
                }
            }
            Op::Free { id } => {
                let p = slots.ptr(id);
                if p.is_null() {
                    out.skipped_frees += 1;
                    continue;
                }
                let size = slots.size[id as usize];
                // SAFETY: the block is live and `size` bytes long.
                let bytes = unsafe { core::slice::from_raw_parts(p, size) };
                assert!(
                    bytes.iter().all(|&b| b == tag(id)),
                    "block {id} was overwritten: blocks overlap"
                );
                out.ops += 1;
                live -= size;
                step(heap, op, &mut slots);
            }
        }
    }
    free_all(heap, &mut slots);
    out
}

fn tag(id: u32) -> u8 {
    (id as u8) | 1
}

/// Replays until the first refused allocation (the `efficiency` rule) and returns the requested
/// bytes live at that moment. `None` when the sequence ends without a failure.
pub fn live_at_first_failure<A: BenchAlloc>(heap: &mut A, w: &Workload) -> Option<usize> {
    let mut slots = Slots::for_workload(w);
    let mut live = 0usize;
    let mut result = None;
    for &op in &w.ops {
        match op {
            Op::Alloc { size, .. } => {
                if step(heap, op, &mut slots) {
                    result = Some(live);
                    break;
                }
                live += size as usize;
            }
            Op::Free { id } => {
                live -= slots.size[id as usize];
                step(heap, op, &mut slots);
            }
        }
    }
    free_all(heap, &mut slots);
    result
}

/// The `ladder`'s four operations of a round (allocate 64, free it, free the top block,
/// re-allocate it), each through its own `#[inline(never)]` function so that callgrind reports the
/// cost of each kind of operation separately (`ladder_op0` … `ladder_op3`, inclusive cost).
#[inline(never)]
pub fn replay_ladder_timed<A: BenchAlloc>(heap: &mut A, ops: &[Op], slots: &mut Slots) -> usize {
    let mut failed = 0;
    for round in ops.chunks_exact(4) {
        failed += usize::from(ladder_op0(heap, round[0], slots));
        failed += usize::from(ladder_op1(heap, round[1], slots));
        failed += usize::from(ladder_op2(heap, round[2], slots));
        failed += usize::from(ladder_op3(heap, round[3], slots));
    }
    failed
}

/// Ladder operation 0 of a round: allocate 64 bytes.
#[inline(never)]
pub fn ladder_op0<A: BenchAlloc>(heap: &mut A, op: Op, slots: &mut Slots) -> bool {
    // A distinct body, so the linker cannot fold the four functions into one symbol.
    core::hint::black_box(0_u8);
    step(heap, op, slots)
}

/// Ladder operation 1 of a round: free the 64 bytes.
#[inline(never)]
pub fn ladder_op1<A: BenchAlloc>(heap: &mut A, op: Op, slots: &mut Slots) -> bool {
    // A distinct body, so the linker cannot fold the four functions into one symbol.
    core::hint::black_box(1_u8);
    step(heap, op, slots)
}

/// Ladder operation 2 of a round: free the highest-addressed live block.
#[inline(never)]
pub fn ladder_op2<A: BenchAlloc>(heap: &mut A, op: Op, slots: &mut Slots) -> bool {
    // A distinct body, so the linker cannot fold the four functions into one symbol.
    core::hint::black_box(2_u8);
    step(heap, op, slots)
}

/// Ladder operation 3 of a round: re-allocate it (16 bytes).
#[inline(never)]
pub fn ladder_op3<A: BenchAlloc>(heap: &mut A, op: Op, slots: &mut Slots) -> bool {
    // A distinct body, so the linker cannot fold the four functions into one symbol.
    core::hint::black_box(3_u8);
    step(heap, op, slots)
}

/// Cycle-counter latency of every timed operation, in TSC ticks, fenced so that each reading
/// covers one whole operation (`lfence; rdtsc; lfence; op; lfence; rdtsc`). `None` where the
/// machine has no usable cycle counter (only x86-64 is supported).
pub fn latencies<A: BenchAlloc>(heap: &mut A, ops: &[Op], slots: &mut Slots) -> Option<Vec<u32>> {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_lfence, _rdtsc};
        let mut out = Vec::with_capacity(ops.len());
        for &op in ops {
            // SAFETY: `lfence` and `rdtsc` exist on every x86-64 processor.
            let t0 = unsafe {
                _mm_lfence();
                let t = _rdtsc();
                _mm_lfence();
                t
            };
            step(heap, op, slots);
            // SAFETY: as above.
            let t1 = unsafe {
                _mm_lfence();
                _rdtsc()
            };
            out.push(u32::try_from(t1.wrapping_sub(t0)).unwrap_or(u32::MAX));
        }
        Some(out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (heap, ops, slots);
        None
    }
}
