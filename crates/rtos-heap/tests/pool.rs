//! Fixed-block pools: a model-based test over random operation streams and block layouts, every bad
//! input, the typed box, the heap/allocator faces, and the benchmark's pool workload.
//!
//! The model knows nothing of the pool's internals: it derives the block grid from the documented
//! layout rules (bitmap of `ceil(n / 8)` bytes, then blocks of `max(size, word)` rounded to
//! `max(align, word)`), and tracks which blocks are allocated as a `Vec<bool>`.

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use proptest::prelude::*;
use rtos_heap::{
    AllocError, BlockInfo, BlockKind, CheckErrorKind, FreeError, Hooks, LockedPool, Pool, PoolBox,
    PoolError, PoolStats, PoolStorage, RawHeap, ReallocError, RegionError,
};
use rtos_heap_workloads::Rng;

const WORD: usize = size_of::<usize>();

fn round_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

/// A pool over `len` bytes starting `misalign` bytes past a 64-byte boundary, and that start.
fn pool_over(len: usize, misalign: usize, block: Layout) -> Result<(Pool, usize), RegionError> {
    let (p, start) = raw_pool_over(len, misalign, block);
    p.map(|p| (p, start))
}

/// As [`pool_over`], returning the start whatever the outcome.
fn raw_pool_over(len: usize, misalign: usize, block: Layout) -> (Result<Pool, RegionError>, usize) {
    let (p, len) = common::buffer(len, misalign);
    let mut pool = Pool::new();
    // SAFETY: `buffer` leaks a fresh allocation of at least `len` bytes.
    let r = unsafe { pool.init_from_raw(NonNull::new(p).unwrap(), len, block) };
    (r.map(|()| pool), p as usize)
}

/// `free_block` of a pointer the test knows to be refused, or a live block it never uses again.
fn free(pool: &mut Pool, ptr: NonNull<u8>) -> Result<(), PoolError> {
    // SAFETY: see above (every caller passes a refused pointer or gives up a live block).
    unsafe { pool.free_block(ptr) }
}

/// [`RawHeap::free`], under the same rule as [`free`].
fn heap_free(pool: &mut Pool, ptr: NonNull<u8>, layout: Option<Layout>) -> Result<(), FreeError> {
    // SAFETY: as `free`.
    unsafe { RawHeap::free(pool, ptr, layout) }
}

/// The pool as the documentation describes it, computed the slow, obvious way.
struct Model {
    first: usize,
    stride: usize,
    align: usize,
    allocated: Vec<bool>,
    /// Tag written into each live block (to catch overlap and writes by the pool).
    tags: Vec<u8>,
    min_free: usize,
    allocs: usize,
    frees: usize,
    rejected: usize,
    failed: usize,
}

impl Model {
    fn new(start: usize, len: usize, block: Layout) -> Self {
        let align = block.align().max(WORD);
        let stride = round_up(block.size().max(WORD), align);
        let first_for = |n: usize| round_up(start + n.div_ceil(8), align);
        let mut count = 0;
        while first_for(count + 1) + (count + 1) * stride <= start + len {
            count += 1;
        }
        Model {
            first: first_for(count),
            stride,
            align,
            allocated: vec![false; count],
            tags: vec![0; count],
            min_free: count,
            allocs: 0,
            frees: 0,
            rejected: 0,
            failed: 0,
        }
    }

    fn count(&self) -> usize {
        self.allocated.len()
    }

    fn free_count(&self) -> usize {
        self.allocated.iter().filter(|a| !**a).count()
    }

    fn addr(&self, i: usize) -> usize {
        self.first + i * self.stride
    }

    fn index(&self, addr: usize) -> usize {
        assert!(addr >= self.first, "{addr:#x} below the first block");
        assert_eq!(
            (addr - self.first) % self.stride,
            0,
            "{addr:#x} off the block grid"
        );
        let i = (addr - self.first) / self.stride;
        assert!(i < self.count(), "{addr:#x} past the last block");
        i
    }

    fn live(&self) -> Vec<usize> {
        (0..self.count()).filter(|&i| self.allocated[i]).collect()
    }

    fn stats(&self) -> PoolStats {
        let free = self.free_count();
        PoolStats {
            capacity: self.count(),
            block_size: self.stride,
            blocks_in_use: self.count() - free,
            blocks_free: free,
            min_ever_free_blocks: self.min_free,
            successful_allocations: self.allocs,
            successful_frees: self.frees,
            rejected_frees: self.rejected,
            failed_allocations: self.failed,
        }
    }

    /// Records a successful allocation at `addr`; checks it was free and aligned; tags it.
    fn allocated_at(&mut self, addr: usize, tag: u8, zeroed: bool) {
        let i = self.index(addr);
        assert!(!self.allocated[i], "block {i} handed out twice");
        assert_eq!(addr % self.align, 0);
        if zeroed {
            // SAFETY: the block is live and `stride` bytes long.
            let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, self.stride) };
            assert!(bytes.iter().all(|&b| b == 0), "zeroed block not zero");
        }
        self.allocated[i] = true;
        self.tags[i] = tag;
        // SAFETY: as above; the block is the caller's now.
        unsafe { (addr as *mut u8).write_bytes(tag, self.stride) };
        self.allocs += 1;
        self.min_free = self.min_free.min(self.free_count());
    }

    /// Compares everything observable of `pool` with the model.
    fn compare(&self, pool: &Pool) {
        pool.check().unwrap_or_else(|e| panic!("check: {e}"));
        assert_eq!(pool.stats(), self.stats());
        let blocks: Vec<BlockInfo> = pool.blocks().collect();
        assert_eq!(blocks.len(), self.count());
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b.address, self.addr(i));
            assert_eq!(b.size, self.stride);
            let want = if self.allocated[i] {
                BlockKind::Allocated
            } else {
                BlockKind::Free
            };
            assert_eq!(b.kind, want, "block {i}");
            assert_eq!(pool.is_allocated(b.address as *const u8), self.allocated[i]);
        }
        for i in self.live() {
            // SAFETY: block `i` is live and `stride` bytes long.
            let bytes =
                unsafe { std::slice::from_raw_parts(self.addr(i) as *const u8, self.stride) };
            assert!(
                bytes.iter().all(|&b| b == self.tags[i]),
                "block {i} overwritten"
            );
        }
    }
}

/// One random stream of operations against the model, checking after every operation.
fn run_model(seed: u64, len: usize, misalign: usize, block: Layout, steps: usize) {
    let (pool, start) = raw_pool_over(len, misalign, block);
    let Ok(mut pool) = pool else {
        // Too small for one block: the model must agree.
        assert_eq!(pool.unwrap_err(), RegionError::TooSmall { index: 0 });
        assert_eq!(Model::new(start, len, block).count(), 0);
        return;
    };
    let mut m = Model::new(start, len, block);
    assert!(m.count() > 0);
    m.compare(&pool);
    let mut rng = Rng::new(seed | 1);
    for step in 0..steps {
        let live = m.live();
        let tag = (step % 251) as u8 + 1;
        match rng.below(100) {
            // Allocate (raw, zeroed, or through a layout).
            0..=29 => match pool.alloc_block() {
                Ok(p) => m.allocated_at(p.as_ptr() as usize, tag, false),
                Err(e) => {
                    assert_eq!((e, m.free_count()), (PoolError::Exhausted, 0));
                    m.failed += 1;
                }
            },
            30..=34 => match pool.alloc_block_zeroed() {
                Ok(p) => m.allocated_at(p.as_ptr() as usize, tag, true),
                Err(e) => {
                    assert_eq!((e, m.free_count()), (PoolError::Exhausted, 0));
                    m.failed += 1;
                }
            },
            35..=44 => {
                let size = rng.range(0, m.stride as u64 + 8) as usize;
                let align = 1 << rng.below(8);
                let layout = Layout::from_size_align(size, align).unwrap();
                let r = pool.allocate(layout);
                if size == 0 {
                    assert_eq!(r, Err(AllocError::ZeroSize));
                    m.failed += 1;
                } else if size > m.stride || align > m.align || m.free_count() == 0 {
                    assert_eq!(r, Err(AllocError::OutOfMemory));
                    m.failed += 1;
                } else {
                    let p = r.unwrap().as_ptr() as usize;
                    assert_eq!(p % align, 0);
                    m.allocated_at(p, tag, false);
                }
            }
            // Free a live block.
            45..=79 if !live.is_empty() => {
                let i = live[rng.below(live.len() as u64) as usize];
                let p = NonNull::new(m.addr(i) as *mut u8).unwrap();
                // SAFETY: block `i` is live and not used again.
                unsafe { pool.free_block(p) }.unwrap();
                m.allocated[i] = false;
                m.frees += 1;
            }
            // Bad frees: a free block, an interior pointer, outside the blocks.
            80..=84 => {
                if let Some(i) = (0..m.count()).find(|&i| !m.allocated[i]) {
                    let p = NonNull::new(m.addr(i) as *mut u8).unwrap();
                    // SAFETY: block `i` is free: the free is refused.
                    assert_eq!(unsafe { pool.free_block(p) }, Err(PoolError::DoubleFree));
                    m.rejected += 1;
                }
            }
            85..=89 => {
                let i = rng.below(m.count() as u64) as usize;
                let off = rng.range(1, m.stride as u64 - 1) as usize;
                let p = NonNull::new((m.addr(i) + off) as *mut u8).unwrap();
                // SAFETY: not a block start: refused.
                assert_eq!(unsafe { pool.free_block(p) }, Err(PoolError::NotBlockStart));
                m.rejected += 1;
            }
            90..=92 => {
                let end = m.addr(m.count());
                let addr = match rng.below(3) {
                    0 => m.first - 1 - rng.below((m.first - start) as u64) as usize,
                    1 => end + rng.below(4 * m.stride as u64) as usize,
                    _ => &step as *const usize as usize,
                };
                let p = NonNull::new(addr as *mut u8).unwrap();
                // SAFETY: outside the pool: refused.
                assert_eq!(unsafe { pool.free_block(p) }, Err(PoolError::NotInPool));
                m.rejected += 1;
            }
            // Free through the heap face with a layout larger than a block.
            93..=94 if !live.is_empty() => {
                let i = live[rng.below(live.len() as u64) as usize];
                let p = NonNull::new(m.addr(i) as *mut u8).unwrap();
                let big = Layout::from_size_align(m.stride + 1, 1).unwrap();
                // Refused on the layout; the block stays live.
                assert_eq!(
                    heap_free(&mut pool, p, Some(big)),
                    Err(FreeError::LayoutMismatch)
                );
                m.rejected += 1;
            }
            // Reallocate in place.
            95..=96 if !live.is_empty() => {
                let i = live[rng.below(live.len() as u64) as usize];
                let p = NonNull::new(m.addr(i) as *mut u8).unwrap();
                let old = Layout::from_size_align(1, 1).unwrap();
                let new = rng.range(0, m.stride as u64 + 4) as usize;
                // SAFETY: block `i` is live, allocated with a layout that fits `old`.
                let r = unsafe { pool.reallocate(p, old, new) };
                match new {
                    0 => assert_eq!(r, Err(ReallocError::Alloc(AllocError::ZeroSize))),
                    n if n > m.stride => {
                        assert_eq!(r, Err(ReallocError::Alloc(AllocError::OutOfMemory)))
                    }
                    _ => assert_eq!(r, Ok(p)),
                }
                if !(1..=m.stride).contains(&new) {
                    m.failed += 1;
                }
            }
            97 => {
                pool.reset_min_ever_free();
                m.min_free = m.free_count();
            }
            _ => {}
        }
        m.compare(&pool);
    }
    // Free everything: the pool is whole again.
    for i in m.live() {
        // SAFETY: live, not used again.
        unsafe { pool.free_block(NonNull::new(m.addr(i) as *mut u8).unwrap()) }.unwrap();
        m.allocated[i] = false;
        m.frees += 1;
    }
    m.compare(&pool);
    assert_eq!(pool.blocks_free(), pool.capacity());
}

#[test]
fn model_many_seeds() {
    let layouts = [
        (1, 1),
        (8, 8),
        (12, 4),
        (24, 8),
        (32, 8),
        (40, 8),
        (100, 4),
        (64, 64),
        (3, 16),
        (128, 8),
    ];
    for seed in 1..=120u64 {
        let (size, align) = layouts[seed as usize % layouts.len()];
        let block = Layout::from_size_align(size, align).unwrap();
        let len = 64 + (seed as usize * 97) % 2000;
        run_model(
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            len,
            (seed as usize * 7) % 64,
            block,
            600,
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn model_random_layouts(
        seed in any::<u64>(),
        size in 1usize..160,
        align_log in 0u32..7,
        len in 0usize..3000,
        misalign in 0usize..64,
        steps in 1usize..400,
    ) {
        run_model(seed, len, misalign, Layout::from_size_align(size, 1 << align_log).unwrap(), steps);
    }
}

#[test]
fn region_size_holds_exactly_the_count() {
    for (size, align) in [
        (1, 1),
        (8, 8),
        (12, 4),
        (32, 8),
        (33, 8),
        (64, 64),
        (100, 16),
        (4096, 4096),
    ] {
        let block = Layout::from_size_align(size, align).unwrap();
        let l = Pool::block_layout(block);
        for n in [1, 2, 7, 8, 9, 63, 64, 65, 256, 1000] {
            let bytes = Pool::region_size(block, n);
            // The buffer helper aligns to 64 at most; use an over-aligned Vec for larger alignments.
            let (p, _) = common::buffer(bytes + l.align(), 0);
            let start = round_up(p as usize, l.align());
            let mut pool = Pool::new();
            // SAFETY: `start .. start + bytes` lies in the leaked buffer.
            unsafe { pool.init_from_raw(NonNull::new(start as *mut u8).unwrap(), bytes, block) }
                .unwrap();
            assert_eq!(pool.capacity(), n, "{size}/{align} x {n}");
            let m = Model::new(start, bytes, block);
            assert_eq!(m.count(), n);
            assert_eq!(pool.blocks().next().unwrap().address, m.first);
            // One byte fewer holds one block fewer.
            let mut smaller = Pool::new();
            // SAFETY: as above.
            let r = unsafe {
                smaller.init_from_raw(NonNull::new(start as *mut u8).unwrap(), bytes - 1, block)
            };
            if n == 1 {
                assert_eq!(r, Err(RegionError::TooSmall { index: 0 }));
            } else {
                assert_eq!(smaller.capacity(), n - 1);
            }
        }
    }
}

#[test]
fn block_layout_rule() {
    for size in 1..200 {
        for align_log in 0..8 {
            let block = Layout::from_size_align(size, 1 << align_log).unwrap();
            let l = Pool::block_layout(block);
            assert_eq!(l.align(), block.align().max(WORD));
            assert_eq!(l.size(), round_up(size.max(WORD), l.align()));
        }
    }
}

/// Everything a refused operation must leave alone.
fn snapshot(pool: &Pool) -> (Vec<BlockInfo>, PoolStats) {
    let mut s = pool.stats();
    s.rejected_frees = 0;
    s.failed_allocations = 0;
    (pool.blocks().collect(), s)
}

/// Asserts that `op` fails with `want`, changes nothing but the rejected/failed counter, and that
/// the pool stays consistent and usable.
fn refused<T: std::fmt::Debug + PartialEq>(
    pool: &mut Pool,
    want: T,
    op: impl FnOnce(&mut Pool) -> T,
) {
    let before = snapshot(pool);
    let rejected = pool.stats().rejected_frees;
    assert_eq!(op(pool), want);
    assert_eq!(snapshot(pool), before);
    assert_eq!(pool.stats().rejected_frees, rejected + 1);
    pool.check().unwrap();
    if pool.blocks_free() > 0 {
        let p = pool.alloc_block().unwrap();
        // SAFETY: just allocated, not used again.
        unsafe { pool.free_block(p) }.unwrap();
        pool.check().unwrap();
    }
}

#[test]
fn bad_frees_are_refused_and_change_nothing() {
    let block = Layout::from_size_align(24, 8).unwrap();
    let (mut pool, start) = pool_over(Pool::region_size(block, 10), 0, block).unwrap();
    assert_eq!(pool.capacity(), 10);
    let a = pool.alloc_block().unwrap();
    let b = pool.alloc_block().unwrap();
    let c = pool.alloc_block().unwrap();
    free(&mut pool, b).unwrap();
    let first = pool.blocks().next().unwrap().address;
    let end = first + 10 * 24;

    // Already free: freed, and never handed out.
    refused(&mut pool, Err(PoolError::DoubleFree), |p| free(p, b));
    let fresh = NonNull::new((first + 9 * 24) as *mut u8).unwrap();
    refused(&mut pool, Err(PoolError::DoubleFree), |p| free(p, fresh));
    // Inside a block, every offset.
    for off in 1..24 {
        for blk in [a, b, fresh] {
            let q = NonNull::new(blk.as_ptr().wrapping_add(off)).unwrap();
            refused(&mut pool, Err(PoolError::NotBlockStart), |p| free(p, q));
        }
    }
    // Outside: the bitmap, just past the end, far away, the stack, another pool's block.
    let local = 0u64;
    let (mut other, _) = pool_over(256, 0, block).unwrap();
    let foreign = other.alloc_block().unwrap();
    for addr in [
        start,
        first - 1,
        end,
        end + 1,
        end + 24,
        usize::MAX,
        &local as *const u64 as usize,
        foreign.as_ptr() as usize,
    ] {
        let q = NonNull::new(addr as *mut u8).unwrap();
        refused(&mut pool, Err(PoolError::NotInPool), |p| free(p, q));
    }
    // Through the heap face: the same, plus a layout that does not fit a block.
    refused(&mut pool, Err(FreeError::DoubleFree), |p| {
        heap_free(p, b, None)
    });
    refused(&mut pool, Err(FreeError::Misaligned), |p| {
        heap_free(p, NonNull::new(a.as_ptr().wrapping_add(8)).unwrap(), None)
    });
    refused(&mut pool, Err(FreeError::OutsideHeap), |p| {
        heap_free(p, foreign, None)
    });
    let too_big = Layout::from_size_align(25, 8).unwrap();
    let over_aligned = Layout::from_size_align(8, 16).unwrap();
    refused(&mut pool, Err(FreeError::LayoutMismatch), |p| {
        heap_free(p, a, Some(too_big))
    });
    refused(&mut pool, Err(FreeError::LayoutMismatch), |p| {
        heap_free(p, a, Some(over_aligned))
    });
    refused(
        &mut pool,
        Err(ReallocError::Free(FreeError::DoubleFree)),
        |p| {
            // SAFETY: `b` is free: refused.
            unsafe { p.reallocate(b, Layout::new::<u8>(), 8) }
        },
    );

    // The good blocks still free normally.
    free(&mut pool, a).unwrap();
    heap_free(&mut pool, c, Some(block)).unwrap();
    pool.check().unwrap();
    assert_eq!(pool.blocks_free(), 10);
    free(&mut other, foreign).unwrap();
}

#[test]
fn pool_without_memory() {
    let mut pool = Pool::new();
    assert!(!pool.is_initialized());
    assert_eq!(pool.alloc_block(), Err(PoolError::Uninitialized));
    assert_eq!(
        pool.allocate(Layout::new::<u8>()),
        Err(AllocError::Uninitialized)
    );
    assert_eq!(
        pool.allocate(Layout::new::<[u8; 100]>()),
        Err(AllocError::Uninitialized)
    );
    let x = 5u64;
    // Refused: the pool has no blocks.
    assert_eq!(
        free(&mut pool, NonNull::from(&x).cast()),
        Err(PoolError::NotInPool)
    );
    pool.check().unwrap();
    let s = pool.stats();
    assert_eq!(
        (
            s.capacity,
            s.blocks_free,
            s.failed_allocations,
            s.rejected_frees
        ),
        (0, 0, 3, 1)
    );
}

#[test]
fn exhaustion_and_recovery() {
    let block = Layout::new::<[u8; 16]>();
    let (mut pool, _) = pool_over(Pool::region_size(block, 5), 0, block).unwrap();
    let blocks: Vec<_> = (0..5).map(|_| pool.alloc_block().unwrap()).collect();
    for _ in 0..3 {
        let before = snapshot(&pool);
        assert_eq!(pool.alloc_block(), Err(PoolError::Exhausted));
        assert_eq!(pool.alloc_block_zeroed(), Err(PoolError::Exhausted));
        assert_eq!(snapshot(&pool), before);
    }
    assert_eq!(pool.stats().failed_allocations, 6);
    assert_eq!(pool.min_ever_free_blocks(), 0);
    // SAFETY: live, not used again.
    unsafe { pool.free_block(blocks[3]) }.unwrap();
    // LIFO: the block just freed is handed out next.
    assert_eq!(pool.alloc_block(), Ok(blocks[3]));
    pool.check().unwrap();
}

#[test]
fn lifo_reuse_then_untouched_blocks_in_address_order() {
    let block = Layout::new::<u64>();
    let (mut pool, _) = pool_over(Pool::region_size(block, 8), 0, block).unwrap();
    let addrs: Vec<usize> = pool.blocks().map(|b| b.address).collect();
    let a = pool.alloc_block().unwrap();
    let b = pool.alloc_block().unwrap();
    assert_eq!(
        (a.as_ptr() as usize, b.as_ptr() as usize),
        (addrs[0], addrs[1])
    );
    // SAFETY: live blocks, not used again.
    unsafe {
        pool.free_block(a).unwrap();
        pool.free_block(b).unwrap();
    }
    assert_eq!(pool.alloc_block(), Ok(b));
    assert_eq!(pool.alloc_block(), Ok(a));
    assert_eq!(pool.alloc_block().unwrap().as_ptr() as usize, addrs[2]);
}

#[test]
fn init_errors() {
    let block = Layout::new::<[u8; 32]>();
    // Too small: not one block after the bitmap and padding.
    assert_eq!(
        pool_over(0, 0, block).unwrap_err(),
        RegionError::TooSmall { index: 0 }
    );
    assert_eq!(
        pool_over(32, 0, block).unwrap_err(),
        RegionError::TooSmall { index: 0 }
    );
    assert_eq!(
        pool_over(38, 1, block).unwrap_err(),
        RegionError::TooSmall { index: 0 }
    );
    assert_eq!(pool_over(39, 1, block).unwrap().0.capacity(), 1); // 1 bitmap byte + 6 padding + 32
    assert_eq!(pool_over(40, 0, block).unwrap().0.capacity(), 1);
    // Memory is given once.
    let (mut pool, _) = pool_over(1024, 0, block).unwrap();
    let region: &'static mut [MaybeUninit<u8>] = vec![MaybeUninit::uninit(); 1024].leak();
    assert_eq!(pool.init(region, block), Err(RegionError::AlreadyDefined));
    static STORAGE: PoolStorage<u64, 3, 1> = PoolStorage::new();
    assert_eq!(
        pool.init_storage(&STORAGE),
        Err(RegionError::AlreadyDefined)
    );
    assert!(
        !STORAGE.is_taken(),
        "a refused init must not use up the storage"
    );
    let mut fresh = Pool::new();
    fresh.init_storage(&STORAGE).unwrap();
    assert!(STORAGE.is_taken());
    assert_eq!((fresh.capacity(), fresh.block_size()), (3, 8));
    assert_eq!(
        Pool::new().init_storage(&STORAGE),
        Err(RegionError::AlreadyDefined)
    );
}

#[test]
fn storage_blocks_fit_their_type() {
    #[repr(align(32))]
    struct Aligned(#[allow(dead_code)] [u8; 40]);
    static STORAGE: PoolStorage<Aligned, 10, 2> = PoolStorage::new();
    let mut pool = Pool::new();
    pool.init_storage(&STORAGE).unwrap();
    assert_eq!(
        (pool.capacity(), pool.block_size(), pool.block_align()),
        (10, 64, 32)
    );
    assert!(pool.fits(Layout::new::<Aligned>()));
    let all: Vec<_> = (0..10).map(|_| pool.alloc_block().unwrap()).collect();
    for p in &all {
        assert_eq!(p.as_ptr() as usize % 32, 0);
    }
    assert_eq!(pool.alloc_block(), Err(PoolError::Exhausted));
    // The blocks are the storage's own memory.
    let range = STORAGE_RANGE(&STORAGE);
    assert!(all.iter().all(|p| range.contains(&(p.as_ptr() as usize))));
    pool.check().unwrap();
}

#[allow(non_snake_case)]
fn STORAGE_RANGE<T, const N: usize, const B: usize>(
    s: &PoolStorage<T, N, B>,
) -> std::ops::Range<usize> {
    let a = s as *const _ as usize;
    a..a + size_of::<PoolStorage<T, N, B>>()
}

#[test]
fn reset_frees_everything() {
    let block = Layout::new::<[u64; 2]>();
    let (mut pool, _) = pool_over(Pool::region_size(block, 20), 0, block).unwrap();
    for _ in 0..15 {
        pool.alloc_block().unwrap();
    }
    let p = pool.alloc_block().unwrap();
    // SAFETY: live, not used again.
    unsafe { pool.free_block(p) }.unwrap();
    // SAFETY: no block handed out before is used after the reset.
    unsafe { pool.reset() };
    pool.check().unwrap();
    let s = pool.stats();
    assert_eq!(
        (
            s.blocks_free,
            s.min_ever_free_blocks,
            s.successful_allocations,
            s.successful_frees
        ),
        (20, 20, 0, 0)
    );
    assert!(pool.blocks().all(|b| b.kind == BlockKind::Free));
    assert_eq!((0..20).filter_map(|_| pool.alloc_block().ok()).count(), 20);
}

#[test]
fn heap_face_statistics() {
    let block = Layout::new::<[u8; 48]>();
    let (mut pool, _) = pool_over(Pool::region_size(block, 4), 0, block).unwrap();
    let p = pool.malloc(10).unwrap();
    assert_eq!(pool.malloc(49), Err(AllocError::OutOfMemory));
    assert_eq!(pool.malloc(0), Err(AllocError::ZeroSize));
    assert_eq!(pool.calloc(usize::MAX, 2), Err(AllocError::CallocOverflow));
    let z = pool.calloc(6, 8).unwrap();
    // SAFETY: a live 48-byte block.
    let bytes = unsafe { std::slice::from_raw_parts(z.as_ptr(), 48) };
    assert!(bytes.iter().all(|&b| b == 0));
    let s = RawHeap::stats(&pool);
    assert_eq!(s.available_bytes, 2 * 48);
    assert_eq!(pool.free_bytes(), 2 * 48);
    assert_eq!(pool.min_ever_free_bytes(), 2 * 48);
    assert_eq!(
        (s.largest_free_block, s.smallest_free_block, s.free_blocks),
        (48, 48, 2)
    );
    assert_eq!((s.successful_allocations, s.failed_allocations), (2, 2));
    // SAFETY: live blocks, not used again.
    unsafe {
        RawHeap::free(&mut pool, p, Some(Layout::new::<[u8; 10]>())).unwrap();
        RawHeap::free(&mut pool, z, None).unwrap();
    }
    assert_eq!(pool.free_bytes(), 4 * 48);
}

#[test]
fn corrupted_free_list_is_detected() {
    let block = Layout::new::<[usize; 4]>();
    let (mut pool, _) = pool_over(Pool::region_size(block, 6), 0, block).unwrap();
    let b: Vec<_> = (0..4).map(|_| pool.alloc_block().unwrap()).collect();
    // SAFETY: live blocks, not used again by their owner...
    unsafe {
        pool.free_block(b[1]).unwrap();
        pool.free_block(b[2]).unwrap();
    }
    // ...except for a write after free over the head's link: the pool refuses to follow it.
    // SAFETY: the memory is still the (leaked) region; this simulates the application's bug.
    unsafe { b[2].cast::<usize>().write(0xDEAD_BEEF) };
    assert_eq!(pool.check().unwrap_err().kind, CheckErrorKind::BadLink);
    assert_eq!(pool.alloc_block(), Ok(b[2]));
    let before = snapshot(&pool);
    assert_eq!(pool.alloc_block(), Err(PoolError::Corrupted));
    assert_eq!(snapshot(&pool), before);
    // A link to an allocated block.
    // SAFETY: no block handed out before is used after the reset.
    unsafe { pool.reset() };
    let b: Vec<_> = (0..4).map(|_| pool.alloc_block().unwrap()).collect();
    // SAFETY: as above.
    unsafe {
        pool.free_block(b[1]).unwrap();
        b[1].cast::<usize>().write(0); // block 0 is allocated
    }
    assert_eq!(
        pool.check().unwrap_err().kind,
        CheckErrorKind::ListNodeNotFree
    );
    assert_eq!(pool.alloc_block(), Ok(b[1]));
    assert_eq!(pool.alloc_block(), Err(PoolError::Corrupted));
    // A cycle.
    // SAFETY: no block handed out before is used after the reset.
    unsafe { pool.reset() };
    let b: Vec<_> = (0..4).map(|_| pool.alloc_block().unwrap()).collect();
    // SAFETY: as above.
    unsafe {
        pool.free_block(b[1]).unwrap();
        pool.free_block(b[2]).unwrap();
        b[1].cast::<usize>().write(2); // 2 -> 1 -> 2 -> …
    }
    assert_eq!(pool.check().unwrap_err().kind, CheckErrorKind::ListMismatch);
    // A free block dropped from the list.
    // SAFETY: no block handed out before is used after the reset.
    unsafe { pool.reset() };
    let b: Vec<_> = (0..4).map(|_| pool.alloc_block().unwrap()).collect();
    // SAFETY: as above.
    unsafe {
        pool.free_block(b[1]).unwrap();
        pool.free_block(b[2]).unwrap();
        b[2].cast::<usize>().write(usize::MAX); // the list ends before block 1
    }
    assert_eq!(pool.check().unwrap_err().kind, CheckErrorKind::ListMismatch);
}

/// The `pool` workload of shared/docs/workloads.md (256 blocks; LIFO pairs, all-then-in-order,
/// random with seed 0x5EED0003), replayed through the locked pool: no failure, consistent after.
#[test]
fn workload_pool_patterns() {
    for size in [32usize, 128] {
        let block = Layout::from_size_align(size, 8).unwrap();
        let pool: LockedPool = LockedPool::new(Pool::new());
        let region: &'static mut [MaybeUninit<u8>] =
            vec![MaybeUninit::uninit(); Pool::region_size(block, 256)].leak();
        pool.lock().init(region, block).unwrap();
        // Heap-allocated Vec memory is at least 8-aligned, so exactly 256 blocks fit.
        assert_eq!(pool.pool_stats().capacity, 256);
        // (a) LIFO pairs.
        for _ in 0..100_000 {
            let p = pool.alloc_block().unwrap();
            // SAFETY: just allocated, not used again.
            unsafe { pool.free_block(p) }.unwrap();
        }
        // (b) all, then in allocation order.
        let all: Vec<_> = (0..256).map(|_| pool.alloc_block().unwrap()).collect();
        assert_eq!(pool.alloc_block(), Err(PoolError::Exhausted));
        for p in all {
            // SAFETY: live, not used again.
            unsafe { pool.free_block(p) }.unwrap();
        }
        // (c) random alloc-or-free.
        let mut rng = Rng::new(0x5EED_0003);
        let mut live = Vec::new();
        for _ in 0..100_000 {
            if live.is_empty() || (live.len() < 256 && rng.unit() < 0.5) {
                live.push(pool.alloc_block().unwrap());
            } else {
                let i = rng.below(live.len() as u64) as usize;
                // SAFETY: live, not used again.
                unsafe { pool.free_block(live.swap_remove(i)) }.unwrap();
            }
        }
        let s = pool.pool_stats();
        assert_eq!(s.blocks_in_use, live.len());
        assert_eq!((s.failed_allocations, s.rejected_frees), (1, 0));
        pool.lock().check().unwrap();
    }
}

// ---- PoolBox ----

fn locked_pool(block: Layout, count: usize) -> &'static LockedPool {
    let pool: &'static LockedPool = Box::leak(Box::new(LockedPool::new(Pool::new())));
    let region: &'static mut [MaybeUninit<u8>] =
        vec![MaybeUninit::uninit(); Pool::region_size(block, count)].leak();
    pool.lock().init(region, block).unwrap();
    pool
}

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

struct Counted(u64);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

#[test]
fn pool_box_drops_once_and_returns_the_block() {
    let pool = locked_pool(Layout::new::<[u64; 2]>(), 3);
    let start = drops();
    let a = PoolBox::try_new(pool, Counted(1)).ok().unwrap();
    let b = PoolBox::try_new_with(pool, || Counted(2)).ok().unwrap();
    assert_eq!(pool.pool_stats().blocks_in_use, 2);
    assert_eq!((a.0, b.0), (1, 2));
    drop(a);
    assert_eq!(drops(), start + 1);
    assert_eq!(pool.pool_stats().blocks_in_use, 1);
    let v = PoolBox::into_inner(b);
    assert_eq!(
        drops(),
        start + 1,
        "into_inner moves the value out without dropping it"
    );
    assert_eq!(pool.pool_stats().blocks_in_use, 0);
    drop(v);
    assert_eq!(drops(), start + 2);
    pool.lock().check().unwrap();
}

#[test]
fn pool_box_failures_give_the_value_back() {
    let pool = locked_pool(Layout::new::<[u8; 16]>(), 1);
    // Too large, over-aligned.
    let (v, e) = PoolBox::try_new(pool, [7u8; 17]).unwrap_err();
    assert_eq!((v, e), ([7u8; 17], PoolError::DoesNotFit));
    #[repr(align(64))]
    struct Big(#[allow(dead_code)] u8);
    assert_eq!(
        PoolBox::try_new(pool, Big(1)).err().map(|e| e.1),
        Some(PoolError::DoesNotFit)
    );
    let mut called = false;
    assert_eq!(
        PoolBox::try_new_with(pool, || {
            called = true;
            [0u8; 32]
        })
        .err(),
        Some(PoolError::DoesNotFit)
    );
    assert!(!called, "the constructor must not run without a block");
    // Exhausted.
    let a = PoolBox::try_new(pool, 1u32).ok().unwrap();
    assert_eq!(
        PoolBox::try_new(pool, 2u32).unwrap_err(),
        (2, PoolError::Exhausted)
    );
    assert_eq!(
        pool.pool_stats().failed_allocations,
        1,
        "DoesNotFit is decided before allocating"
    );
    drop(a);
    assert_eq!(pool.pool_stats().blocks_free, 1);
}

#[test]
fn pool_box_panicking_constructor_returns_the_block() {
    let pool = locked_pool(Layout::new::<u64>(), 2);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        PoolBox::try_new_with(pool, || -> u64 { panic!("constructor failed") })
    }));
    assert!(r.is_err());
    let s = pool.pool_stats();
    assert_eq!((s.blocks_in_use, s.successful_frees), (0, 1));
    pool.lock().check().unwrap();
}

#[test]
fn pool_box_uninit_zeroed_raw() {
    let pool = locked_pool(Layout::new::<[u32; 8]>(), 2);
    // Dirty the blocks first so that zeroing is observable.
    let d = [
        PoolBox::try_new(pool, [u32::MAX; 8]).ok().unwrap(),
        PoolBox::try_new(pool, [u32::MAX; 8]).ok().unwrap(),
    ];
    drop(d);
    let z = PoolBox::<[u32; 8]>::try_new_zeroed(pool).unwrap();
    // SAFETY: all-zero bytes are a valid `[u32; 8]`.
    let z = unsafe { z.assume_init() };
    assert_eq!(*z, [0; 8]);
    let u = PoolBox::<[u32; 8]>::try_new_uninit(pool)
        .unwrap()
        .write([5; 8]);
    assert_eq!(u[7], 5);
    let raw = PoolBox::into_raw(u);
    assert_eq!(
        pool.pool_stats().blocks_in_use,
        2,
        "into_raw keeps the block"
    );
    // SAFETY: from `into_raw` of this pool.
    let back = unsafe { PoolBox::from_raw(pool, raw) };
    assert_eq!(back[0], 5);
    assert!(std::ptr::eq(PoolBox::pool(&back), pool));
    assert_eq!(format!("{back:?}"), format!("{:?}", [5u32; 8]));
    drop((z, back));
    assert_eq!(pool.pool_stats().blocks_in_use, 0);
}

// ---- GlobalAlloc / Allocator ----

fn faults() -> &'static std::sync::Mutex<Vec<rtos_heap::Fault>> {
    static F: std::sync::Mutex<Vec<rtos_heap::Fault>> = std::sync::Mutex::new(Vec::new());
    &F
}

#[test]
fn global_alloc_face_serves_one_size_class() {
    static FAILED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let pool: &'static LockedPool = Box::leak(Box::new(LockedPool::with_hooks(
        Pool::new(),
        Hooks {
            alloc_failed: Some(|_, _| {
                FAILED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }),
            fault: Some(|f| faults().lock().unwrap().push(f)),
        },
    )));
    let block = Layout::from_size_align(64, 16).unwrap();
    let region: &'static mut [MaybeUninit<u8>] =
        vec![MaybeUninit::uninit(); Pool::region_size(block, 4)].leak();
    pool.lock().init(region, block).unwrap();
    // SAFETY: GlobalAlloc contract: non-zero sizes; every pointer freed once with its layout.
    unsafe {
        let a = pool.alloc(Layout::from_size_align(64, 16).unwrap());
        assert!(!a.is_null() && a as usize % 16 == 0);
        let b = pool.alloc_zeroed(Layout::new::<[u8; 40]>());
        assert!(std::slice::from_raw_parts(b, 40).iter().all(|&x| x == 0));
        assert!(
            pool.alloc(Layout::new::<[u8; 65]>()).is_null(),
            "larger than a block"
        );
        assert!(
            pool.alloc(Layout::from_size_align(8, 32).unwrap())
                .is_null(),
            "over-aligned"
        );
        assert_eq!(FAILED.load(std::sync::atomic::Ordering::Relaxed), 2);
        // realloc within the block stays in place; beyond it fails, keeping the block.
        assert_eq!(pool.realloc(b, Layout::new::<[u8; 40]>(), 64), b);
        assert!(pool.realloc(b, Layout::new::<[u8; 64]>(), 65).is_null());
        pool.dealloc(b, Layout::new::<[u8; 64]>());
        // A bad dealloc goes to the fault hook; the pool is unchanged.
        pool.dealloc(b, Layout::new::<[u8; 64]>());
        assert_eq!(
            faults().lock().unwrap().last().map(|f| f.error),
            Some(FreeError::DoubleFree)
        );
        pool.dealloc(a, Layout::from_size_align(64, 16).unwrap());
    }
    let s = pool.pool_stats();
    assert_eq!(
        (s.blocks_in_use, s.rejected_frees, s.successful_frees),
        (0, 1, 2)
    );
    pool.lock().check().unwrap();
}

#[test]
fn allocator_api2_collections() {
    use allocator_api2::boxed::Box as ABox;
    use allocator_api2::vec::Vec as AVec;
    let pool = locked_pool(Layout::new::<[u64; 8]>(), 8);
    let boxes: Vec<ABox<u64, _>> = (0..8).map(|i| ABox::new_in(i, pool)).collect();
    assert!(ABox::try_new_in(9u64, pool).is_err(), "exhausted");
    assert_eq!(boxes.iter().map(|b| **b).sum::<u64>(), 28);
    drop(boxes);
    // A Vec grows in place up to the block size, then fails cleanly.
    let mut v: AVec<u64, _> = AVec::with_capacity_in(1, pool);
    v.extend(0..8);
    assert_eq!(pool.pool_stats().blocks_in_use, 1);
    assert!(v.try_reserve(1).is_err());
    assert_eq!(v.iter().sum::<u64>(), 28);
    // Zero-size requests need no block.
    let e: AVec<u64, _> = AVec::new_in(pool);
    drop((v, e));
    assert_eq!(pool.pool_stats().blocks_in_use, 0);
    pool.lock().check().unwrap();
}

#[test]
fn pool_error_display() {
    for e in [
        PoolError::Exhausted,
        PoolError::Uninitialized,
        PoolError::DoesNotFit,
        PoolError::Corrupted,
        PoolError::NotInPool,
        PoolError::NotBlockStart,
        PoolError::DoubleFree,
    ] {
        let s = e.to_string();
        assert!(
            !s.is_empty() && s.chars().next().unwrap().is_lowercase(),
            "{e:?}: {s}"
        );
        let _: &dyn std::error::Error = &e;
    }
    assert_eq!(
        AllocError::from(PoolError::Exhausted),
        AllocError::OutOfMemory
    );
    assert_eq!(
        FreeError::from(PoolError::NotBlockStart),
        FreeError::Misaligned
    );
}
