//! The multi-thread stress test under the hardening features: run it with
//! `cargo test -p rtos-heap --features heap-protector,validate-full,poison --test stress_hardened`
//! (`.ci/run` does). 8 threads share one locked heap_2 / heap_4 / heap_5; every block is filled
//! with a tag and verified at free; with `heap-protector` a canary is set first; with
//! `validate-full` every operation runs `check()` first; with `poison` every allocation verifies the
//! pattern. No fault may be reported, no free refused, and every byte must come back. With the
//! default features it is a plain (smaller) stress run.

mod common;

use rtos_heap_workloads::Rng;
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

use rtos_heap::validate;
use rtos_heap::{Heap2, Heap4, Heap5, HeapRegion, LockedHeap, Native, RawHeap};

const THREADS: usize = 8;
/// Fewer operations than `stress.rs`: with `validate-full` each one walks the whole heap.
const OPS: usize = if validate::FULL { 4_000 } else { 20_000 };
const HEAP: usize = 256 * 1024;

fn hammer<H: RawHeap + Send + 'static>(heap: Arc<LockedHeap<H>>) {
    let faults = validate::fault_count();
    let initial_free = heap.free_bytes();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let heap = Arc::clone(&heap);
            std::thread::spawn(move || {
                let mut rng = Rng::new(0xC0FF_EE00 + t as u64);
                let mut live: Vec<(NonNull<u8>, Layout, u8)> = Vec::new();
                let mut allocs = 0usize;
                for i in 0..OPS {
                    if live.is_empty() || (live.len() < 48 && rng.below(2) == 0) {
                        let size = rng.range(1, 600) as usize;
                        let align = 1usize << rng.below(5);
                        let layout = Layout::from_size_align(size, align).unwrap();
                        if let Ok(p) = heap.lock().allocate(layout) {
                            let tag = (t * 37 + i) as u8 | 1;
                            assert_eq!(p.as_ptr() as usize % align, 0);
                            // SAFETY: a fresh block of `size` bytes owned by this thread.
                            unsafe { p.as_ptr().write_bytes(tag, size) };
                            live.push((p, layout, tag));
                            allocs += 1;
                        }
                    } else if rng.below(8) == 0 {
                        // Realloc keeps the contents (up to the smaller size).
                        let k = rng.below(live.len() as u64) as usize;
                        let (p, layout, tag) = live[k];
                        let new_size = rng.range(1, 900) as usize;
                        // SAFETY: this thread's live block, made with `layout`.
                        let r = unsafe { heap.lock().reallocate(p, layout, new_size) };
                        if let Ok(q) = r {
                            let keep = layout.size().min(new_size);
                            // SAFETY: the live (possibly moved) block.
                            let bytes = unsafe { std::slice::from_raw_parts(q.as_ptr(), keep) };
                            assert!(bytes.iter().all(|&b| b == tag), "realloc lost data");
                            // SAFETY: the block has `new_size` bytes.
                            unsafe { q.as_ptr().write_bytes(tag, new_size) };
                            let nl = Layout::from_size_align(new_size, layout.align()).unwrap();
                            live[k] = (q, nl, tag);
                        }
                    } else {
                        let (p, layout, tag) =
                            live.swap_remove(rng.below(live.len() as u64) as usize);
                        // SAFETY: this thread's live block.
                        let bytes =
                            unsafe { std::slice::from_raw_parts(p.as_ptr(), layout.size()) };
                        assert!(
                            bytes.iter().all(|&b| b == tag),
                            "thread {t}: block overwritten"
                        );
                        // SAFETY: freed once, by its owner.
                        unsafe { heap.lock().free(p, Some(layout)) }.unwrap();
                    }
                    if i % 1000 == 0 {
                        heap.lock().check().unwrap();
                    }
                }
                for (p, layout, _) in live {
                    // SAFETY: this thread's live blocks.
                    unsafe { heap.lock().free(p, Some(layout)) }.unwrap();
                }
                allocs
            })
        })
        .collect();
    let allocs: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    heap.lock().check().unwrap();
    assert!(allocs > THREADS * OPS / 8, "too few allocations: {allocs}");
    let s = heap.stats();
    assert_eq!(s.rejected_frees, 0);
    assert_eq!(heap.free_bytes(), initial_free, "every byte returned");
    assert_eq!(validate::fault_count(), faults, "a fault was reported");
}

fn buffer() -> (NonNull<u8>, usize) {
    let (p, len) = common::buffer(HEAP, 0);
    (NonNull::new(p).unwrap(), len)
}

#[test]
fn heap4_hardened() {
    let (p, len) = buffer();
    let heap = Arc::new(LockedHeap::new(Heap4::<Native>::new()));
    {
        let mut h = heap.lock();
        #[cfg(feature = "heap-protector")]
        h.set_canary(0x5EED_1234_ABCD_0F0F_u64 as usize).unwrap();
        // SAFETY: a leaked buffer.
        unsafe { h.init_from_raw(p, len).unwrap() };
        let q = h.malloc(1).unwrap();
        // SAFETY: just allocated.
        unsafe { h.free(q, None).unwrap() };
    }
    hammer(heap);
}

#[test]
fn heap2_hardened() {
    let (p, len) = buffer();
    let heap = Arc::new(LockedHeap::new(Heap2::<Native>::new()));
    {
        let mut h = heap.lock();
        #[cfg(feature = "heap-protector")]
        h.set_canary(0x0BAD_CAFE).unwrap();
        // SAFETY: a leaked buffer.
        unsafe { h.init_from_raw(p, len).unwrap() };
        let q = h.malloc(1).unwrap();
        // SAFETY: just allocated.
        unsafe { h.free(q, None).unwrap() };
    }
    hammer(heap);
}

#[test]
fn heap5_hardened() {
    let (p, _) = buffer();
    let p = p.as_ptr();
    let heap = Arc::new(LockedHeap::new(Heap5::<Native, 2>::new()));
    {
        let mut h = heap.lock();
        #[cfg(feature = "heap-protector")]
        h.set_canary(0x7777_1111).unwrap();
        // SAFETY: disjoint parts of a leaked buffer.
        unsafe {
            h.define_regions_raw(&[
                HeapRegion {
                    start: p,
                    size: HEAP / 2 - 256,
                },
                HeapRegion {
                    start: p.add(HEAP / 2),
                    size: HEAP / 2,
                },
            ])
            .unwrap();
        }
    }
    hammer(heap);
}
