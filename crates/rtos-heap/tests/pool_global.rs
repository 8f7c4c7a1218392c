//! A locked pool as one size class of the process's `#[global_allocator]`: requests of up to 32
//! bytes (alignment up to 8) come from the pool, everything else (and overflow when the pool is
//! exhausted) from the system allocator. The whole test binary, harness included, runs on it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::ptr::NonNull;

use rtos_heap::{LockedPool, Pool, PoolStorage, RawHeap};

const BLOCKS: usize = 1024;

static POOL: LockedPool = LockedPool::new(Pool::new());
static MEMORY: PoolStorage<[u64; 4], BLOCKS, { BLOCKS.div_ceil(8) }> = PoolStorage::new();

struct SizeClasses;

impl SizeClasses {
    fn small(layout: Layout) -> bool {
        layout.size() <= 32 && layout.align() <= 8
    }
}

// SAFETY: every block comes from the pool (32 bytes, aligned to 8, checked by `small`) or from
// `System` with the same layout; `dealloc` sends each pointer back where it came from (the pool
// knows its own blocks).
unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::small(layout) {
            let mut pool = POOL.lock();
            if !pool.is_initialized() {
                pool.init_storage(&MEMORY).unwrap();
            }
            if let Ok(p) = pool.alloc_block() {
                return p.as_ptr();
            }
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let mut pool = POOL.lock();
        if pool.is_allocated(ptr) {
            // SAFETY: a live block of the pool, given back by its owner.
            unsafe { pool.free_block(NonNull::new_unchecked(ptr)) }.unwrap();
        } else {
            drop(pool);
            // SAFETY: not the pool's, so `System`'s, allocated with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static GLOBAL: SizeClasses = SizeClasses;

#[test]
fn std_collections_on_a_pool_size_class() {
    let before = POOL.pool_stats();
    // 512 small boxes: all from the pool.
    let boxes: Vec<Box<u64>> = (0..512u64).map(Box::new).collect();
    assert!(
        boxes
            .iter()
            .all(|b| POOL.lock().is_allocated((&**b as *const u64).cast()))
    );
    let mid = POOL.pool_stats();
    assert!(mid.successful_allocations - before.successful_allocations >= 512);
    assert!(mid.blocks_in_use >= 512);
    // Small strings in a map, across threads, while the boxes are alive.
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                let mut m = BTreeMap::new();
                for i in 0..2000 {
                    m.insert(i, format!("{t}:{i}"));
                    if i % 3 == 0 {
                        m.remove(&(i / 2));
                    }
                }
                for (k, v) in &m {
                    assert_eq!(*v, format!("{t}:{k}"));
                }
            });
        }
    });
    assert_eq!(boxes.iter().map(|b| **b).sum::<u64>(), 511 * 512 / 2);
    drop(boxes);
    let after = POOL.pool_stats();
    assert!(after.successful_frees - before.successful_frees >= 512);
    assert_eq!(after.rejected_frees, 0);
    assert!(after.min_ever_free_blocks <= BLOCKS - 512);
    POOL.lock().check().unwrap();
}
