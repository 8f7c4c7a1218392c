//! Many threads through one locked pool: 8 threads × 50,000 operations each, blocks filled with
//! the owner's tag and verified before they are returned, with the default critical-section lock
//! and with a spin lock given as the `R` parameter. The threads share fewer blocks than they want,
//! so exhaustion is exercised too.

mod common;

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use lock_api::RawMutex;
use rtos_heap::{LockedPool, Pool, PoolBox, PoolError, PoolStorage, RawHeap};
use rtos_heap_workloads::Rng;

const THREADS: u64 = 8;
const OPS: u64 = 50_000;
/// Each thread holds at most this many blocks; together they want twice the pool.
const MAX_LIVE: usize = 16;
const BLOCKS: usize = THREADS as usize * MAX_LIVE / 2;
/// Blocks left to the threads while the main thread holds the others.
const SPARE: usize = 12;

type Block = [u64; 4];

/// A test-and-set spin lock: the pool with a lock other than the default.
struct Spin(AtomicBool);

// SAFETY: `try_lock` succeeds for one holder at a time (compare-exchange from false), with acquire
// ordering; `unlock` releases with release ordering.
unsafe impl RawMutex for Spin {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Spin = Spin(AtomicBool::new(false));
    type GuardMarker = lock_api::GuardSend;

    fn lock(&self) {
        while !self.try_lock() {
            std::thread::yield_now();
        }
    }

    fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    unsafe fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A block held by a thread, through the typed or the raw API.
enum Held<'a, R: RawMutex> {
    Boxed(PoolBox<'a, Block, R>),
    Raw(NonNull<Block>),
}

impl<R: RawMutex> Held<'_, R> {
    fn value(&self) -> Block {
        match self {
            Held::Boxed(b) => **b,
            // SAFETY: a live block this thread allocated and initialised.
            Held::Raw(p) => unsafe { p.read() },
        }
    }
}

/// What one thread did.
#[derive(Default)]
struct Tally {
    allocated: usize,
    freed: usize,
    exhausted: usize,
}

fn worker<R: RawMutex + Sync>(pool: &LockedPool<R>, tid: u64) -> Tally {
    let mut rng = Rng::new(0x5EED_5000 + tid);
    let mut live: Vec<(Held<'_, R>, u64)> = Vec::new();
    let mut t = Tally::default();
    for seq in 0..OPS {
        let tag = tid << 32 | seq;
        if live.len() < MAX_LIVE && (live.is_empty() || rng.unit() < 0.5) {
            let held = if seq % 2 == 0 {
                PoolBox::try_new(pool, [tag; 4])
                    .map(Held::Boxed)
                    .map_err(|(_, e)| e)
            } else {
                pool.alloc_block().map(|p| {
                    let p = p.cast::<Block>();
                    // SAFETY: a fresh block of at least 32 bytes, aligned to 8.
                    unsafe { p.write([tag; 4]) };
                    Held::Raw(p)
                })
            };
            match held {
                Ok(h) => {
                    t.allocated += 1;
                    live.push((h, tag));
                }
                Err(e) => {
                    assert_eq!(e, PoolError::Exhausted);
                    t.exhausted += 1;
                }
            }
        } else {
            let (h, tag) = live.swap_remove(rng.below(live.len() as u64) as usize);
            assert_eq!(h.value(), [tag; 4], "thread {tid}: block overwritten");
            match h {
                Held::Boxed(b) => drop(b),
                // SAFETY: a live block of this pool, not used again.
                Held::Raw(p) => unsafe { pool.free_block(p.cast()) }.unwrap(),
            }
            t.freed += 1;
        }
        // Now and then, verify everything this thread holds.
        if seq % 1024 == 0 {
            for (h, tag) in &live {
                assert_eq!(h.value(), [*tag; 4], "thread {tid}: block overwritten");
            }
        }
    }
    for (h, tag) in live {
        assert_eq!(h.value(), [tag; 4]);
        if let Held::Raw(p) = h {
            // SAFETY: a live block of this pool, not used again.
            unsafe { pool.free_block(p.cast()) }.unwrap();
        }
        t.freed += 1;
    }
    t
}

fn hammer<R: RawMutex + Sync>(pool: &'static LockedPool<R>) {
    // The main thread holds all but `SPARE` blocks, so that even a thread running alone runs out
    // (it holds up to `MAX_LIVE`), whatever the scheduling.
    let held: Vec<PoolBox<'_, Block, R>> = (0..BLOCKS - SPARE)
        .map(|i| PoolBox::try_new(pool, [!(i as u64); 4]).ok().unwrap())
        .collect();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|tid| s.spawn(move || worker(pool, tid)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, b) in held.iter().enumerate() {
        assert_eq!(**b, [!(i as u64); 4], "a held block was overwritten");
    }
    drop(held);
    let allocated: usize = tallies.iter().map(|t| t.allocated).sum();
    let freed: usize = tallies.iter().map(|t| t.freed).sum();
    let exhausted: usize = tallies.iter().map(|t| t.exhausted).sum();
    assert_eq!(allocated, freed);
    assert!(
        exhausted > 0,
        "the pool is smaller than the demand: some allocations must fail"
    );
    let s = pool.pool_stats();
    assert_eq!(s.successful_allocations, allocated + BLOCKS - SPARE);
    assert_eq!(s.successful_frees, freed + BLOCKS - SPARE);
    assert_eq!(s.failed_allocations, exhausted);
    assert_eq!(
        (s.blocks_in_use, s.blocks_free, s.rejected_frees),
        (0, BLOCKS, 0)
    );
    assert_eq!(s.min_ever_free_blocks, 0);
    pool.lock().check().unwrap();
    eprintln!(
        "{THREADS} threads x {OPS} ops: {allocated} allocations, {exhausted} refused as exhausted"
    );
}

#[test]
fn eight_threads_critical_section_lock() {
    static POOL: LockedPool = LockedPool::new(Pool::new());
    static MEMORY: PoolStorage<Block, BLOCKS, { BLOCKS.div_ceil(8) }> = PoolStorage::new();
    POOL.lock().init_storage(&MEMORY).unwrap();
    hammer(&POOL);
}

#[test]
fn eight_threads_spin_lock() {
    static POOL: LockedPool<Spin> = LockedPool::new(Pool::new());
    let block = std::alloc::Layout::new::<Block>();
    let region = vec![std::mem::MaybeUninit::uninit(); Pool::region_size(block, BLOCKS)].leak();
    POOL.lock().init(region, block).unwrap();
    assert_eq!(POOL.pool_stats().capacity, BLOCKS);
    hammer(&POOL);
    // The heap face under the same lock still works afterwards.
    let p = POOL.lock().malloc(32).unwrap();
    // SAFETY: just allocated, not used again.
    unsafe { POOL.free_block(p) }.unwrap();
}
