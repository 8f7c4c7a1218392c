//! 8 threads × 50,000 random operations through the locked wrapper: every block's contents written
//! and verified (so overlapping blocks would be caught), `check()` run concurrently, and the
//! statistics consistent at the end. Run with the default critical-section lock and with a
//! `lock_api` mutex (parking_lot's).

mod common;

use rtos_heap_workloads::Rng;

use std::alloc::Layout;
use std::sync::Arc;

use lock_api::RawMutex;
use rtos_heap::{Heap2, Heap4, Heap5, HeapRegion, LockedHeap, Native, RawHeap};

const THREADS: usize = 8;
const OPS: usize = 50_000;

fn hammer<H: RawHeap + Send + 'static, R: RawMutex + Send + Sync + 'static>(
    heap: Arc<LockedHeap<H, R>>,
    ops: usize,
) {
    let initial_free = heap.free_bytes();
    let initial = heap.stats();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let heap = Arc::clone(&heap);
            std::thread::spawn(move || {
                let mut rng = Rng::new(0x9E37_79B9 + t as u64);
                let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
                let (mut allocs, mut frees) = (0usize, 0usize);
                for i in 0..ops {
                    if live.is_empty() || (live.len() < 64 && rng.below(2) == 0) {
                        let size = rng.range(1, 700) as usize;
                        let align = 1usize << rng.below(5);
                        let layout = Layout::from_size_align(size, align).unwrap();
                        if let Ok(p) = heap.lock().allocate(layout) {
                            let tag = (t * 31 + i) as u8;
                            assert_eq!(p.as_ptr() as usize % align, 0);
                            // SAFETY: a fresh block of `size` bytes owned by this thread.
                            unsafe { p.as_ptr().write_bytes(tag, size) };
                            live.push((p.as_ptr(), layout, tag));
                            allocs += 1;
                        }
                    } else {
                        let (p, layout, tag) =
                            live.swap_remove(rng.below(live.len() as u64) as usize);
                        // SAFETY: this thread's live block.
                        let bytes = unsafe { std::slice::from_raw_parts(p, layout.size()) };
                        assert!(
                            bytes.iter().all(|&b| b == tag),
                            "thread {t}: block overwritten"
                        );
                        // SAFETY: freed once, by its owner.
                        unsafe {
                            heap.lock()
                                .free(std::ptr::NonNull::new(p).unwrap(), Some(layout))
                        }
                        .unwrap();
                        frees += 1;
                    }
                    if i % 5000 == 0 {
                        heap.lock().check().unwrap();
                    }
                }
                for (p, layout, _) in live {
                    // SAFETY: this thread's live blocks.
                    unsafe {
                        heap.lock()
                            .free(std::ptr::NonNull::new(p).unwrap(), Some(layout))
                    }
                    .unwrap();
                    frees += 1;
                }
                (allocs, frees)
            })
        })
        .collect();
    let (mut allocs, mut frees) = (0, 0);
    for h in handles {
        let (a, f) = h.join().unwrap();
        allocs += a;
        frees += f;
    }
    heap.lock().check().unwrap();
    let s = heap.stats();
    assert_eq!(allocs, frees);
    assert!(
        allocs > THREADS * ops / 3,
        "too few allocations succeeded: {allocs}"
    );
    assert_eq!(
        s.successful_allocations - initial.successful_allocations,
        allocs
    );
    assert_eq!(s.successful_frees - initial.successful_frees, frees);
    assert_eq!(s.rejected_frees, 0);
    assert_eq!(heap.free_bytes(), initial_free, "every byte returned");
}

fn region(len: usize) -> (*mut u8, usize) {
    common::buffer(len, 0)
}

/// A 1 MiB heap_4 behind lock `R`, laid out (a first allocation) so that free_bytes() is its full
/// size from the start.
fn heap4_behind<R: RawMutex + Send + Sync + 'static>() -> Arc<LockedHeap<Heap4<Native>, R>> {
    let (p, len) = region(1 << 20);
    let heap = Arc::new(LockedHeap::<Heap4<Native>, R>::new(Heap4::new()));
    // SAFETY: a leaked buffer.
    unsafe {
        heap.lock()
            .init_from_raw(std::ptr::NonNull::new(p).unwrap(), len)
            .unwrap()
    };
    let q = heap.lock().malloc(1).unwrap();
    // SAFETY: just allocated.
    unsafe { heap.lock().free(q, None).unwrap() };
    heap
}

#[test]
fn heap4_critical_section() {
    hammer(heap4_behind::<rtos_heap::CriticalSectionRawMutex>(), OPS);
}

#[test]
fn heap4_parking_lot() {
    hammer(heap4_behind::<parking_lot::RawMutex>(), OPS);
}

#[test]
fn heap5_three_regions() {
    let (p, _) = region(3 << 19);
    let heap = Arc::new(LockedHeap::<Heap5<Native, 3>>::new(Heap5::new()));
    // SAFETY: disjoint parts of a leaked buffer.
    unsafe {
        heap.lock()
            .define_regions_raw(&[
                HeapRegion {
                    start: p,
                    size: 1 << 19,
                },
                HeapRegion {
                    start: p.add((1 << 19) + 64),
                    size: (1 << 19) - 64,
                },
                HeapRegion {
                    start: p.add(2 << 19),
                    size: 1 << 19,
                },
            ])
            .unwrap();
    }
    hammer(heap, OPS);
}

#[test]
fn heap2_critical_section() {
    let (p, len) = region(4 << 20);
    let heap = Arc::new(LockedHeap::<Heap2<Native>>::new(Heap2::new()));
    // SAFETY: a leaked buffer.
    unsafe {
        heap.lock()
            .init_from_raw(std::ptr::NonNull::new(p).unwrap(), len)
            .unwrap()
    };
    // heap_2 never merges: its free list grows long, so fewer operations keep the test quick.
    hammer(heap, OPS / 5);
}
