//! The measurements themselves checked against facts stated outside this crate: the FreeRTOS
//! semantics (block sizes of heap_4 on a 64-bit host), the heap_4 efficiency, the workload
//! generator's own peak, and the shape of first-fit costs.

use rtos_heap_bench::metrics::{self, FOOTPRINT_REGION};
use rtos_heap_bench::replay::{Slots, replay_setup, replay_timed};
use rtos_heap_bench::subjects::Kind;
use rtos_heap_bench::{MAIN_WORKLOADS, with_subject, workload};

#[test]
fn every_allocator_replays_the_main_workloads_without_overlap() {
    // `outcome` fills each block with a tag and checks it on free: it panics on overlap.
    for name in MAIN_WORKLOADS {
        let w = workload(name).unwrap();
        for k in Kind::measured() {
            let o = metrics::outcome(k, name);
            assert_eq!(
                o.ops + o.skipped_frees,
                w.setup.len() + w.ops.len(),
                "{name} {k:?}"
            );
            if o.failed == 0 {
                // The generator's own count of the peak.
                assert_eq!(o.peak_live_bytes, w.peak_live_bytes(), "{name} {k:?}");
            }
        }
    }
}

#[test]
fn merging_schemes_never_fail_on_the_main_workloads() {
    // rtos: peak 70.5 KB in 96 KiB; random: at most 1,000 blocks of 512 B in 1 MiB.
    for name in MAIN_WORKLOADS {
        for k in [
            Kind::Heap4,
            Kind::Heap4C,
            Kind::Heap5x1,
            Kind::Talc,
            Kind::Rlsf,
        ] {
            assert_eq!(metrics::outcome(k, name).failed, 0, "{name} {k:?}");
        }
    }
}

#[test]
fn heap4_block_sizes_are_freertos_ones_on_a_64_bit_host() {
    // freertos-heap-semantics.md §0, 64-bit, A=8: wanted = round_up(n + 16, 8):
    // n=1 → 24, n=8 → 24, n=100 → 120.
    for (n, block) in [(1, 24), (8, 24), (100, 120), (256, 272)] {
        let f = metrics::footprint(Kind::Heap4, n);
        assert_eq!(f.stride, block, "request {n}");
        // Capacity: the region less the 16-byte end marker, cut by the split rule (§4: split only
        // when the remainder is larger than 2·hs = 32, else the whole block is handed out).
        let (mut free, mut count) = (FOOTPRINT_REGION - 16, 0);
        while free >= block {
            free = if free - block > 32 { free - block } else { 0 };
            count += 1;
        }
        assert_eq!(f.capacity, count, "request {n}");
    }
    // §4: 65,520 of 65,536 bytes free; one block of all of it has a 16-byte header.
    let c = metrics::control(Kind::Heap4, FOOTPRINT_REGION);
    assert_eq!(c.largest_alloc, 65_520 - 16);
}

#[test]
fn heap4_efficiency_equals_freertos_heap4() {
    // The issue: heap_4's efficiency is 0.935 (mean over seeds 1..=50), and rtos-heap's Heap4
    // places blocks exactly like it.
    let ratios: Vec<f64> = rtos_heap_bench::EFFICIENCY_SEEDS
        .map(|s| metrics::efficiency(Kind::Heap4, s).expect("a 256 KiB heap fails"))
        .collect();
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!((mean - 0.935).abs() < 0.0005, "mean {mean}");
    // The same engine through the other APIs and heap_5 with one region: identical placement.
    for seed in [1, 17, 50] {
        let r = metrics::efficiency(Kind::Heap4, seed);
        assert_eq!(metrics::efficiency(Kind::Heap4C, seed), r);
        assert_eq!(metrics::efficiency(Kind::Heap5x1, seed), r);
    }
}

#[test]
fn timed_replay_reports_failures() {
    // 64 KiB is too small for `rtos` (workloads.md: every allocator must refuse some requests).
    let mut w = workload("rtos").unwrap();
    w.heap_size = 64 * 1024;
    for k in [Kind::Heap4, Kind::Talc, Kind::LinkedList] {
        let failed = with_subject!(k, w.heap_size, |s| {
            let mut slots = Slots::for_workload(&w);
            replay_setup(&mut s, &w.setup, &mut slots);
            replay_timed(&mut s, &w.ops, &mut slots)
        });
        assert!(failed > 0, "{k:?}");
    }
    let failed = with_subject!(Kind::Noop, w.heap_size, |s| {
        let mut slots = Slots::for_workload(&w);
        replay_timed(&mut s, &w.ops, &mut slots)
    });
    assert_eq!(failed, 0);
}

#[test]
fn callgrind_counts_grow_linearly_with_holes_for_first_fit() {
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: valgrind not installed");
        return;
    }
    let driver = std::path::Path::new(env!("CARGO_BIN_EXE_bench-driver"));
    let scratch = std::env::temp_dir().join(format!("rtos-heap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let run = |k: &str, w: &str| rtos_heap_bench::callgrind::run(driver, k, w, &scratch).unwrap();
    let base = run("noop", "ladder64");
    let small = run("heap4", "ladder64");
    let large = run("heap4", "ladder1024");
    let talc_small = run("talc", "ladder64");
    let talc_large = run("talc", "ladder1024");
    let _ = std::fs::remove_dir_all(&scratch);
    // 16× the holes: a first-fit walk costs more than 8× as much, a binned allocator about the same.
    let cost = |r: &rtos_heap_bench::callgrind::Run| (r.total - base.total) as f64;
    assert!(cost(&large) > 8.0 * cost(&small), "{large:?} vs {small:?}");
    assert!(cost(&talc_large) < 1.5 * cost(&talc_small));
    // The alloc and free wrappers account for the allocator's share of the run.
    assert!(small.alloc > 0 && small.free > 0);
    assert!(small.alloc + small.free <= small.total);
    assert!(small.ladder.iter().all(|&c| c > 0));
}

#[test]
fn pools_replay_the_pool_workloads_without_overlap_or_failure() {
    for name in rtos_heap_bench::POOL_WORKLOADS {
        let w = workload(name).unwrap();
        for k in Kind::POOLS {
            // Tags every block and checks it on free: panics on overlap.
            let o = metrics::outcome(k, name);
            assert_eq!(o.failed, 0, "{name} {k:?}");
            assert_eq!(o.ops, w.ops.len(), "{name} {k:?}");
            assert_eq!(o.peak_live_bytes, w.peak_live_bytes(), "{name} {k:?}");
        }
    }
    // FIFO allocates all 256 blocks at once: the pool is exactly full, one more is refused.
    let w = workload("pool32-fifo").unwrap();
    assert_eq!(w.peak_live_bytes(), 256 * 32);
    let mut s = rtos_heap_bench::subjects::pool(w.heap_size);
    use rtos_heap_bench::subjects::BenchAlloc;
    let blocks: Vec<*mut u8> = (0..256).map(|_| s.alloc(32, 8)).collect();
    assert!(blocks.iter().all(|p| !p.is_null()));
    assert!(s.alloc(32, 8).is_null());
}

#[test]
fn index_work_adds_up_and_matches_what_the_workloads_are() {
    use rtos_heap_bench::metrics::index_work;
    for name in MAIN_WORKLOADS {
        let w = workload(name).unwrap();
        let o = metrics::outcome(Kind::Heap4C, name);
        let iw = index_work(name);
        // Every timed operation that did something is counted once, in exactly one class.
        assert_eq!(iw.exact + iw.split, iw.allocs, "{name}");
        assert_eq!(iw.attach + iw.merge_one + iw.merge_two, iw.frees, "{name}");
        assert!(iw.allocs + iw.frees <= w.ops.len(), "{name}");
        if o.failed == 0 {
            // Nothing refused, so no free skipped either: every timed operation counts.
            assert_eq!(iw.allocs + iw.frees, w.ops.len(), "{name}");
        }
        // log2 is concave: the mean of log2(n + 1) is at most log2(mean of n + 1).
        assert!(
            iw.mean_log2 <= (iw.mean_free_blocks + 1.0).log2() + 1e-9,
            "{name}"
        );
        assert!(iw.mean_free_blocks >= 1.0, "{name}: the top block at least");
    }
    // `fragmented` (workloads.md): 5,000 holes that no request fits, then a 4,096-byte block
    // allocated from the top and freed back into it, over and over: every allocation splits the
    // top block, every free merges with one neighbour.
    let f = index_work("fragmented");
    assert_eq!((f.exact, f.attach, f.merge_two), (0, 0, 0));
    assert_eq!((f.split, f.merge_one), (2000, 2000));
    assert!(f.mean_free_blocks > 5000.0);
}

/// The C rows compare like with like: FreeRTOS's heap_4 (compiled from `../shared`) and
/// rtos-heap's `Heap4` hand out the same offsets on every operation of the headline and pool
/// workloads, set-up included. Skipped when the C heaps cannot be built, except under
/// `RTOS_HEAP_REQUIRE_SHARED` (as in `.ci/run`).
#[test]
fn c_heap4_and_heap4_place_identically() {
    use rtos_heap_bench::freertos::{Build, CHeap};
    use rtos_heap_bench::subjects::BenchAlloc;
    use rtos_heap_workloads::Op;
    if !rtos_heap_bench::subjects::c_available(4096) {
        assert!(
            std::env::var_os("RTOS_HEAP_REQUIRE_SHARED").is_none(),
            "RTOS_HEAP_REQUIRE_SHARED is set but the C heaps cannot be built"
        );
        eprintln!("skipped: ../shared/reference/freertos or gcc missing");
        return;
    }
    for name in ["random", "rtos", "fragmented", "pool32-fifo", "ladder64"] {
        let w = workload(name).unwrap();
        let mut c = CHeap::load(
            Build {
                scheme: 4,
                asserts: false,
            },
            w.heap_size,
        )
        .unwrap();
        let mut r = rtos_heap_bench::subjects::heap4_c(w.heap_size);
        let (mut c_live, mut r_live) = (
            std::collections::HashMap::new(),
            std::collections::HashMap::new(),
        );
        let (mut c_base, mut r_base) = (None, None);
        for (i, op) in w.setup.iter().chain(&w.ops).enumerate() {
            match *op {
                Op::Alloc { id, size, align } => {
                    let cp = c.malloc(size as usize) as usize;
                    let rp = r.alloc(size as usize, align as usize) as usize;
                    assert_eq!(cp == 0, rp == 0, "{name} op {i}: one heap failed");
                    if cp == 0 {
                        continue;
                    }
                    let (cb, rb) = (*c_base.get_or_insert(cp), *r_base.get_or_insert(rp));
                    assert_eq!(cp.wrapping_sub(cb), rp.wrapping_sub(rb), "{name} op {i}");
                    c_live.insert(id, cp);
                    r_live.insert(id, rp);
                }
                Op::Free { id } => {
                    if let (Some(cp), Some(rp)) = (c_live.remove(&id), r_live.remove(&id)) {
                        // SAFETY: both pointers are live blocks of their heaps, freed once.
                        unsafe {
                            c.free(cp as *mut u8);
                            r.free(std::ptr::NonNull::new(rp as *mut u8).unwrap(), 0, 8);
                        }
                    }
                }
            }
        }
        // Leave the C heap empty for the next user of the library in this process.
        for (_, p) in c_live {
            // SAFETY: a live block of the C heap.
            unsafe { c.free(p as *mut u8) };
        }
    }
}
