//! Fixed-block memory pools (CMSIS-RTOS `osPool*` / `osMemoryPool*`): O(1) allocation and free of
//! one block size, no fragmentation, typed owners, and the same lock and error conventions as the
//! heaps.
//!
//! | type | what it is |
//! |---|---|
//! | [`Pool`] | the unlocked pool (`&mut self`): raw blocks, statistics, check |
//! | [`LockedPool`] | a `Pool` behind a lock ([`LockedHeap<Pool, R>`](crate::LockedHeap)): `Sync`, `static`, a `GlobalAlloc` and an `Allocator` for one size class |
//! | [`PoolBox`] | a typed owner of one block of a `LockedPool`: `T` written into the block, dropped and the block returned on drop |
//! | [`PoolStorage`] | `N` blocks of `T` and their bitmap in a `static`, given to one pool once |
//! | [`PoolStats`] | capacity, block size, blocks in use and free, minimum ever free, counters |
//!
//! # Thread and interrupt safety
//!
//! [`LockedPool`] takes the heaps' lock parameter: a critical section by default
//! ([`CriticalSectionRawMutex`](crate::CriticalSectionRawMutex), which needs no compare-and-swap
//! and so works on Cortex-M0), or any [`lock_api::RawMutex`]. The lock is held for a constant,
//! short time: an allocation or a free is a few loads and stores with no loop (zeroing and `T`'s
//! construction and drop happen outside it), so the pool can be used from interrupt handlers.
//!
//! There is no lock-free variant. A lock-free pool is a Treiber stack, whose pop is exposed to ABA
//! (a block popped, freed and pushed again between another context's read of the head and its
//! compare-and-swap makes that CAS install a stale `next`). The known cures — a version tag beside
//! the head updated by a double-width CAS, or LL/SC reservations — need instructions that
//! Cortex-M0 and several RTOS targets do not have, and a tag of a few bits only makes ABA unlikely.
//! Rather than ship an argument we cannot prove on every target, the pool relies on the lock.
//!
//! # Examples
//!
//! A pool as the allocator of one size class, through [`allocator_api2`]:
//!
//! ```
//! use core::alloc::Layout;
//! use rtos_heap::{LockedPool, Pool, StaticRegion};
//! use allocator_api2::boxed::Box;
//!
//! const BLOCK: Layout = Layout::new::<[u32; 8]>();
//! static POOL: LockedPool = LockedPool::new(Pool::new());
//! static MEMORY: StaticRegion<{ Pool::region_size(BLOCK, 8) }> = StaticRegion::new();
//!
//! POOL.lock().init(MEMORY.take().unwrap(), BLOCK).unwrap();
//! let a = Box::new_in([1u32; 8], &POOL);
//! let b = Box::new_in(7u64, &POOL); // smaller requests use a whole block
//! assert!(Box::try_new_in([0u8; 33], &POOL).is_err()); // larger ones fail cleanly
//! assert_eq!(POOL.pool_stats().blocks_in_use, 2);
//! drop((a, b));
//! ```

mod boxed;
mod raw;
mod storage;

use core::fmt;
use core::ptr::NonNull;

use lock_api::RawMutex;

pub use boxed::PoolBox;
pub use raw::Pool;
pub use storage::PoolStorage;

use crate::{CriticalSectionRawMutex, LockedHeap};

/// A [`Pool`] behind a lock: [`LockedHeap<Pool, R>`](crate::LockedHeap).
///
/// Everything a `LockedHeap` does — `static` construction, [`lock`](LockedHeap::lock) for the raw
/// API, [`GlobalAlloc`](core::alloc::GlobalAlloc), [`allocator_api2::alloc::Allocator`],
/// [`Hooks`](crate::Hooks) — with a pool inside, plus the pool's own
/// [`alloc_block`](LockedHeap::alloc_block) / [`free_block`](LockedHeap::free_block) /
/// [`pool_stats`](LockedHeap::pool_stats) and [`PoolBox`].
///
/// # Examples
///
/// ```
/// use core::alloc::Layout;
/// use rtos_heap::{LockedPool, Pool, StaticRegion};
///
/// static POOL: LockedPool = LockedPool::new(Pool::new());
/// static MEMORY: StaticRegion<1024> = StaticRegion::new();
///
/// POOL.lock().init(MEMORY.take().unwrap(), Layout::new::<[u8; 48]>()).unwrap();
/// let p = POOL.alloc_block().unwrap();
/// unsafe { POOL.free_block(p).unwrap() };
/// assert_eq!(POOL.pool_stats().successful_frees, 1);
/// ```
pub type LockedPool<R = CriticalSectionRawMutex> = LockedHeap<Pool, R>;

impl<R: RawMutex> LockedHeap<Pool, R> {
    /// [`Pool::alloc_block`] under the lock.
    ///
    /// # Errors
    /// As [`Pool::alloc_block`].
    #[inline]
    pub fn alloc_block(&self) -> Result<NonNull<u8>, PoolError> {
        self.lock().alloc_block()
    }

    /// [`Pool::alloc_block_zeroed`], zeroing after the lock is released.
    ///
    /// # Errors
    /// As [`Pool::alloc_block`].
    pub fn alloc_block_zeroed(&self) -> Result<NonNull<u8>, PoolError> {
        let (p, size) = {
            let mut pool = self.lock();
            (pool.alloc_block()?, pool.block_size())
        };
        // SAFETY: a fresh block of `size` bytes, owned by the caller.
        unsafe { p.as_ptr().write_bytes(0, size) };
        Ok(p)
    }

    /// [`Pool::free_block`] under the lock.
    ///
    /// # Errors
    /// As [`Pool::free_block`].
    ///
    /// # Safety
    /// As [`Pool::free_block`].
    #[inline]
    pub unsafe fn free_block(&self, ptr: NonNull<u8>) -> Result<(), PoolError> {
        // SAFETY: forwarded contract.
        unsafe { self.lock().free_block(ptr) }
    }

    /// [`Pool::stats`] under the lock.
    pub fn pool_stats(&self) -> PoolStats {
        self.lock().stats()
    }
}

/// Why a pool operation failed. Every refused free leaves the pool unchanged (only
/// [`PoolStats::rejected_frees`] counts it).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolError {
    /// Every block is in use.
    Exhausted,
    /// The pool has no memory yet.
    Uninitialized,
    /// The value or layout is larger or more aligned than a block.
    DoesNotFit,
    /// The free list's head is not a free block of the pool: a block was written to after it was
    /// freed. Nothing was handed out; [`check`](crate::RawHeap::check) locates the damage.
    Corrupted,
    /// Freeing a pointer outside the pool's blocks (or any pointer, when the pool has no memory).
    NotInPool,
    /// Freeing a pointer inside a block but not at its start.
    NotBlockStart,
    /// Freeing a block that is already free.
    DoubleFree,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolError::Exhausted => "every block of the pool is in use",
            PoolError::Uninitialized => "the pool has no memory yet",
            PoolError::DoesNotFit => "the value does not fit a block of the pool",
            PoolError::Corrupted => "the pool's free list was overwritten",
            PoolError::NotInPool => "pointer is not in the pool",
            PoolError::NotBlockStart => "pointer is not at the start of a block",
            PoolError::DoubleFree => "block is already free",
        })
    }
}

impl core::error::Error for PoolError {}

/// A pool's statistics: the CMSIS-RTOS2 memory-pool queries, plus the counters the heaps keep.
///
/// # Examples
///
/// ```
/// use core::alloc::Layout;
/// use core::mem::MaybeUninit;
/// use rtos_heap::Pool;
///
/// let block = Layout::new::<u64>();
/// let region = vec![MaybeUninit::uninit(); Pool::region_size(block, 4)].leak();
/// let mut pool = Pool::new();
/// pool.init(region, block).unwrap();
/// let (a, b) = (pool.alloc_block().unwrap(), pool.alloc_block().unwrap());
/// unsafe { pool.free_block(a).unwrap() };
/// let s = pool.stats();
/// assert_eq!((s.capacity, s.block_size), (4, 8));
/// assert_eq!((s.blocks_in_use, s.blocks_free, s.min_ever_free_blocks), (1, 3, 2));
/// assert_eq!((s.successful_allocations, s.successful_frees), (2, 1));
/// # unsafe { pool.free_block(b).unwrap() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PoolStats {
    /// `osMemoryPoolGetCapacity`: number of blocks.
    pub capacity: usize,
    /// `osMemoryPoolGetBlockSize`: bytes per block.
    pub block_size: usize,
    /// `osMemoryPoolGetCount`: blocks allocated.
    pub blocks_in_use: usize,
    /// `osMemoryPoolGetSpace`: blocks available.
    pub blocks_free: usize,
    /// The fewest blocks ever available (since init, reset or `reset_min_ever_free`).
    pub min_ever_free_blocks: usize,
    /// Blocks handed out.
    pub successful_allocations: usize,
    /// Blocks returned.
    pub successful_frees: usize,
    /// Frees refused ([`PoolError::NotInPool`], [`NotBlockStart`](PoolError::NotBlockStart),
    /// [`DoubleFree`](PoolError::DoubleFree), or a layout that does not fit a block).
    pub rejected_frees: usize,
    /// Allocations that failed (pool exhausted, request too large, zero size, no memory, corrupted).
    pub failed_allocations: usize,
}
