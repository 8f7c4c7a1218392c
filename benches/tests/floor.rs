//! The tree floor is a fair measuring instrument only if it does heap_4's work: it must place
//! every block where `Heap4<Native>` places it and count the same free bytes, and its tree must
//! stay a valid AVL tree (an unbalanced one would cost more than the algorithm does).

use core::ptr::NonNull;

use rtos_heap::{Heap4, Native, RawHeap};
use rtos_heap_bench::floor::Floor;
use rtos_heap_bench::subjects::Memory;
use rtos_heap_workloads::Rng;

/// One seed: `steps` random mallocs (sizes up to `max`) and frees on a heap of `len` bytes; the
/// floor's tree is checked every `check_every` steps.
fn same_placement(seed: u64, len: usize, max: u64, steps: usize, check_every: usize) {
    let (m1, m2) = (Memory::new(len), Memory::new(len));
    let mut heap = Heap4::<Native>::new();
    // SAFETY: `m1` outlives the heap.
    unsafe { heap.init_from_raw(m1.start(), len) }.unwrap();
    // SAFETY: `m2` outlives the floor.
    let mut floor = unsafe { Floor::new(m2.start().as_ptr(), len) };
    let (b1, b2) = (m1.start().as_ptr() as usize, m2.start().as_ptr() as usize);
    let mut rng = Rng::new(seed);
    let mut live: Vec<(NonNull<u8>, NonNull<u8>)> = Vec::new();
    let (mut allocs, mut refused, mut tallest) = (0, 0, 0);
    for step in 0..steps {
        if live.is_empty() || rng.unit() < 0.55 {
            let size = rng.range(1, max) as usize;
            let a = heap.malloc(size).ok();
            let b = NonNull::new(floor.malloc(size));
            match (a, b) {
                (Some(a), Some(b)) => {
                    assert_eq!(
                        a.as_ptr() as usize - b1,
                        b.as_ptr() as usize - b2,
                        "step {step}"
                    );
                    live.push((a, b));
                    allocs += 1;
                }
                (None, None) => refused += 1,
                _ => panic!("seed {seed} step {step}: one refused, the other did not"),
            }
        } else {
            let (a, b) = live.swap_remove(rng.below(live.len() as u64) as usize);
            // SAFETY: both came from their heap's malloc and are freed once.
            unsafe {
                heap.free(a, None).unwrap();
                floor.free(b);
            }
        }
        assert_eq!(
            heap.free_bytes(),
            floor.free_bytes(),
            "seed {seed} step {step}"
        );
        assert_eq!(heap.min_ever_free_bytes(), floor.min_ever_free_bytes());
        if step % check_every == 0 {
            match floor.check() {
                Ok(h) => tallest = tallest.max(h),
                Err(e) => panic!("seed {seed} step {step}: {e}"),
            }
        }
    }
    // The trees grew deep enough for every rebalancing case to be met.
    assert!(
        tallest >= 5,
        "seed {seed}: the tree never grew above height {tallest}"
    );
    assert!(
        allocs > steps / 4 && refused > 0,
        "seed {seed}: {allocs} allocations, {refused} refused"
    );
}

#[test]
fn the_floor_places_blocks_where_heap4_does() {
    for seed in 1..=12 {
        same_placement(seed, 64 * 1024, 2048, 40_000, 1);
    }
    // Small requests on a large heap (many holes, deep trees) with a few large ones.
    same_placement(99, 1 << 20, 16_000, 60_000, 7);
}
