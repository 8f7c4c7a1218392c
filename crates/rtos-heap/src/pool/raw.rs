//! The unlocked pool: block grid, intrusive free list, allocation bitmap, statistics, check.

use core::alloc::Layout;
use core::mem::{MaybeUninit, align_of, size_of};
use core::ptr::{self, NonNull};

use super::storage::PoolStorage;
use super::{PoolError, PoolStats};
use crate::error::{AllocError, CheckError, CheckErrorKind, FreeError, RegionError};
use crate::{BlockInfo, BlockKind, RawHeap, ReallocError};

/// End of the free list.
const NIL: usize = usize::MAX;

/// The smallest block: a free block holds the index of the next free block.
const LINK_SIZE: usize = size_of::<usize>();
/// The smallest block alignment: the link is read and written as an aligned `usize`.
const LINK_ALIGN: usize = align_of::<usize>();

/// A fixed-block memory pool: `capacity()` blocks of one size, O(1) allocation and free, no
/// fragmentation (CMSIS-RTOS `osPoolCreate` / `osMemoryPoolNew`).
///
/// `Pool` is the unlocked core (`&mut self`, no lock), like the heap schemes; put it in a
/// [`LockedPool`](crate::LockedPool) to share it between tasks and interrupts, use it as a
/// [`GlobalAlloc`](core::alloc::GlobalAlloc) or an `Allocator`, and get typed
/// [`PoolBox`](crate::PoolBox)es from it.
///
/// # Memory
///
/// Its memory is a region given once: a `&'static mut [MaybeUninit<u8>]` ([`init`](Self::init)), a
/// raw pointer and length ([`init_from_raw`](Self::init_from_raw)), or a [`PoolStorage`] in a
/// `static` ([`init_storage`](Self::init_storage)). In a region the pool lays out
///
/// ```text
/// | bitmap: ceil(n / 8) bytes | padding to the block alignment | block 0 | block 1 | … | block n-1 |
/// ```
///
/// with as many blocks `n` as fit. Each block is [`block_layout(block)`](Self::block_layout): the
/// requested size and alignment, raised to at least one `usize` (a free block stores its link) and
/// the size rounded up to the alignment. [`region_size`](Self::region_size) gives the bytes that hold
/// exactly `n` blocks.
///
/// # Free list and double-free detection
///
/// Free blocks form an intrusive LIFO list: each free block holds the index of the next one, so the
/// most recently freed block is handed out next (it is the one most likely still in cache). Blocks
/// never handed out since [`init`](Self::init)/[`reset`](RawHeap::reset) are not linked at all: a
/// counter hands them out in address order once the list is empty, so initialisation does not touch
/// the blocks.
///
/// A **bitmap of one bit per block** (set = allocated) lets [`free_block`](Self::free_block) refuse
/// a block that is already free in O(1), with no header in the blocks. It costs `ceil(n / 8)`
/// bytes, carved from the start of a region (plus padding up to the block alignment) or held by
/// the [`PoolStorage`]: 32 bytes for 256 blocks. The pool's own state is a few words beside it.
///
/// A freed pointer is mapped to its block index without a division: the block size is
/// `odd << shift`, and the pool keeps the inverse of `odd` modulo `2^usize::BITS`. For an offset
/// `off` below `n * size` with its low `shift` bits clear, `q = (off >> shift) * inverse` (wrapping)
/// is below `n` exactly when `off` is a multiple of the block size, and `q` is then the index
/// (the multiply-by-inverse divisibility test of Granlund and Montgomery). So a free costs a
/// subtraction, two comparisons, a shift and a multiplication — no division, which Cortex-M0 lacks.
///
/// # Bad input
///
/// Refused with an error, the pool unchanged except for its
/// [`rejected_frees`](PoolStats::rejected_frees) counter: a pointer outside the blocks
/// ([`PoolError::NotInPool`]), inside but not at the start of a block
/// ([`PoolError::NotBlockStart`]), a block that is free ([`PoolError::DoubleFree`]). A free-list
/// link that an application overwrote (a write after free) is caught when the block would be handed
/// out ([`PoolError::Corrupted`]) and by [`check`](RawHeap::check); a stale pointer to a block that
/// has since been handed out again cannot be told from its new owner's, as with every allocator.
///
/// # Time complexity
/// [`alloc_block`](Self::alloc_block), [`free_block`](Self::free_block),
/// [`stats`](Self::stats): O(1), no loop. `init` and `reset`: O(n / 8) (the bitmap is cleared).
/// [`check`](RawHeap::check) and [`blocks`](Self::blocks): O(n).
///
/// # Examples
///
/// A pool of 32-byte blocks over a region, with the raw API:
///
/// ```
/// use core::alloc::Layout;
/// use core::mem::MaybeUninit;
/// use rtos_heap::{Pool, PoolError};
///
/// let block = Layout::from_size_align(32, 8).unwrap();
/// let region: &'static mut [MaybeUninit<u8>] =
///     vec![MaybeUninit::uninit(); Pool::region_size(block, 16)].leak();
/// let mut pool = Pool::new();
/// pool.init(region, block).unwrap();
/// assert_eq!((pool.capacity(), pool.block_size()), (16, 32));
///
/// let a = pool.alloc_block().unwrap();
/// let b = pool.alloc_block_zeroed().unwrap(); // osPoolCAlloc
/// assert_eq!(unsafe { *b.as_ptr().add(31) }, 0);
/// assert_eq!(pool.blocks_in_use(), 2);
///
/// unsafe { pool.free_block(a).unwrap() };
/// assert_eq!(unsafe { pool.free_block(a) }, Err(PoolError::DoubleFree));
/// assert_eq!(unsafe { pool.free_block(b.add(1)) }, Err(PoolError::NotBlockStart));
/// unsafe { pool.free_block(b).unwrap() };
///
/// let s = pool.stats();
/// assert_eq!((s.blocks_free, s.min_ever_free_blocks, s.rejected_frees), (16, 14, 2));
/// ```
pub struct Pool {
    /// Block 0 (null until the pool has memory).
    base: *mut u8,
    /// `ceil(count / 8)` bytes, bit `i % 8` of byte `i / 8` set while block `i` is allocated.
    bitmap: *mut u8,
    /// Block size (a multiple of `align`).
    stride: usize,
    /// Block alignment.
    align: usize,
    /// Number of blocks.
    count: usize,
    /// `count * stride`.
    span: usize,
    /// `stride.trailing_zeros()`.
    shift: u32,
    /// Inverse of `stride >> shift` modulo `2^usize::BITS`.
    inverse: usize,
    /// First block of the free list, or `NIL`.
    head: usize,
    /// Blocks `fresh..count` were never handed out since the last init/reset (free, not linked).
    fresh: usize,
    in_use: usize,
    min_free: usize,
    allocations: usize,
    frees: usize,
    rejected: usize,
    failed: usize,
}

// SAFETY: a pool owns its memory exclusively (the contract of every `init*`), holds no reference to
// thread-local state, and reaches that memory only through `&mut self` (writes) or `&self` (reads),
// so moving it to another thread moves the ownership with it.
unsafe impl Send for Pool {}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Pool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pool")
            .field("base", &self.base)
            .field("block_layout", &(self.stride, self.align))
            .field("stats", &self.stats())
            .finish()
    }
}

/// `x` rounded up to a multiple of the power of two `align`; `None` on overflow.
const fn align_up(x: usize, align: usize) -> Option<usize> {
    match x.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Inverse of the odd number `d` modulo `2^usize::BITS` (Newton's iteration: `d` is its own
/// inverse modulo 8, and each step doubles the number of correct low bits: 3, 6, …, 192 ≥ 128).
const fn inverse_of_odd(d: usize) -> usize {
    let mut x = d;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2usize.wrapping_sub(d.wrapping_mul(x)));
        i += 1;
    }
    x
}

impl Pool {
    /// A pool without memory: every allocation fails with [`PoolError::Uninitialized`] until one of
    /// the `init*` functions gives it a region. `const`, for a `static`
    /// [`LockedPool`](crate::LockedPool).
    pub const fn new() -> Self {
        Pool {
            base: ptr::null_mut(),
            bitmap: ptr::null_mut(),
            stride: LINK_SIZE,
            align: LINK_ALIGN,
            count: 0,
            span: 0,
            shift: 0,
            inverse: 1,
            head: NIL,
            fresh: 0,
            in_use: 0,
            min_free: 0,
            allocations: 0,
            frees: 0,
            rejected: 0,
            failed: 0,
        }
    }

    /// The layout each block of a pool for `block` really has: alignment at least that of `usize`,
    /// size at least one `usize` (the free-list link) and rounded up to the alignment.
    ///
    /// ```
    /// use core::alloc::Layout;
    /// use rtos_heap::Pool;
    /// let l = Pool::block_layout(Layout::from_size_align(12, 2).unwrap());
    /// assert_eq!(l.align(), core::mem::align_of::<usize>().max(2));
    /// assert_eq!(l.size() % l.align(), 0);
    /// assert!(l.size() >= 12);
    /// ```
    pub const fn block_layout(block: Layout) -> Layout {
        let align = if block.align() > LINK_ALIGN {
            block.align()
        } else {
            LINK_ALIGN
        };
        let size = if block.size() > LINK_SIZE {
            block.size()
        } else {
            LINK_SIZE
        };
        // A valid `Layout`'s size rounded up to its alignment never exceeds `isize::MAX`, and the
        // link's size and alignment are tiny, so this rounding cannot fail.
        let size = match align_up(size, align) {
            Some(s) => s,
            None => panic!("block size overflows"),
        };
        match Layout::from_size_align(size, align) {
            Ok(l) => l,
            Err(_) => panic!("block size overflows"),
        }
    }

    /// Bytes of a region that holds exactly `count` blocks for `block` when it starts at an address
    /// aligned to [`block_layout(block).align()`](Self::block_layout) (any
    /// [`StaticRegion`](crate::StaticRegion) is aligned to 16): the bitmap, its padding, the
    /// blocks. A region starting elsewhere holds one block fewer at most.
    ///
    /// `const`, to size a `static` region:
    ///
    /// ```
    /// use core::alloc::Layout;
    /// use rtos_heap::{Pool, StaticRegion};
    /// const BLOCK: Layout = Layout::new::<[u64; 4]>();
    /// static MEMORY: StaticRegion<{ Pool::region_size(BLOCK, 256) }> = StaticRegion::new();
    /// let mut pool = Pool::new();
    /// pool.init(MEMORY.take().unwrap(), BLOCK).unwrap();
    /// assert_eq!(pool.capacity(), 256);
    /// assert_eq!(Pool::region_size(BLOCK, 256), 32 + 256 * 32); // 32 bytes of bitmap
    /// ```
    ///
    /// # Panics
    /// When the size overflows `usize`.
    pub const fn region_size(block: Layout, count: usize) -> usize {
        let b = Self::block_layout(block);
        let bitmap = match align_up(count.div_ceil(8), b.align()) {
            Some(v) => v,
            None => panic!("pool region size overflows"),
        };
        match count.checked_mul(b.size()) {
            Some(blocks) => match bitmap.checked_add(blocks) {
                Some(total) => total,
                None => panic!("pool region size overflows"),
            },
            None => panic!("pool region size overflows"),
        }
    }

    /// Gives the pool its memory: as many blocks for `block` as fit in `region` after the bitmap
    /// (see the type's documentation for the layout; [`region_size`](Self::region_size) sizes a
    /// region for an exact count).
    ///
    /// # Errors
    /// [`RegionError::AlreadyDefined`] when the pool already has memory; `TooSmall` when not one
    /// block fits; `TooLarge` when the region wraps around the address space.
    ///
    /// # Time complexity
    /// O(n / 8): the bitmap is cleared; the blocks are not touched.
    pub fn init(
        &mut self,
        region: &'static mut [MaybeUninit<u8>],
        block: Layout,
    ) -> Result<(), RegionError> {
        let len = region.len();
        let start = NonNull::from(region).cast::<u8>();
        // SAFETY: a `&'static mut` slice is memory nobody else can reach, for ever.
        unsafe { self.init_from_raw(start, len, block) }
    }

    /// [`init`](Self::init) from a raw pointer and length.
    ///
    /// # Errors
    /// As [`init`](Self::init).
    ///
    /// # Safety
    /// `start .. start + len` must be valid for reads and writes and used by nothing else for as
    /// long as the pool (or any block it handed out) is in use.
    pub unsafe fn init_from_raw(
        &mut self,
        start: NonNull<u8>,
        len: usize,
        block: Layout,
    ) -> Result<(), RegionError> {
        if self.is_initialized() {
            return Err(RegionError::AlreadyDefined);
        }
        let b = Self::block_layout(block);
        let a = start.as_ptr().addr();
        let end = a
            .checked_add(len)
            .ok_or(RegionError::TooLarge { index: 0 })?;
        let (stride, align) = (b.size(), b.align());
        // Where the blocks start for `n` blocks, if they fit.
        let first = |n: usize| -> Option<usize> {
            let blocks = align_up(a.checked_add(n.div_ceil(8))?, align)?;
            (blocks.checked_add(n.checked_mul(stride)?)? <= end).then_some(blocks)
        };
        // `n / 8 + n * stride <= len` bounds `n` from above; the ceiling and the alignment padding
        // cost at most a few blocks more, so this loop runs a handful of times.
        let mut n = ((len as u128 * 8) / (stride as u128 * 8 + 1)) as usize;
        while n > 0 && first(n).is_none() {
            n -= 1;
        }
        let Some(blocks) = first(n).filter(|_| n > 0) else {
            return Err(RegionError::TooSmall { index: 0 });
        };
        let bitmap = start.as_ptr();
        // SAFETY: `blocks - a` bytes past `start` is inside the region (`first` checked it).
        let base = unsafe { bitmap.add(blocks - a) };
        // SAFETY: the bitmap's `ceil(n / 8)` bytes and the `n` blocks lie in the region (checked
        // above), are disjoint, and `base` is aligned to `align`.
        unsafe { self.adopt(base, bitmap, b, n) };
        Ok(())
    }

    /// Gives the pool the memory of a `static` [`PoolStorage`]: exactly `N` blocks of `T`.
    ///
    /// # Errors
    /// [`RegionError::AlreadyDefined`] when the pool already has memory or the storage was already
    /// given to a pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtos_heap::{LockedPool, Pool, PoolBox, PoolStorage};
    ///
    /// struct Message { id: u32, payload: [u8; 20] }
    ///
    /// static POOL: LockedPool = LockedPool::new(Pool::new());
    /// static MEMORY: PoolStorage<Message, 64, { 64usize.div_ceil(8) }> = PoolStorage::new();
    ///
    /// POOL.lock().init_storage(&MEMORY).unwrap();
    /// let m = PoolBox::try_new(&POOL, Message { id: 7, payload: [0; 20] }).ok().unwrap();
    /// assert_eq!(m.id, 7);
    /// assert_eq!(POOL.pool_stats().blocks_in_use, 1);
    /// drop(m);
    /// assert_eq!(POOL.pool_stats().blocks_free, 64);
    /// assert!(POOL.lock().init_storage(&MEMORY).is_err()); // once only
    /// ```
    pub fn init_storage<T, const N: usize, const B: usize>(
        &mut self,
        storage: &'static PoolStorage<T, N, B>,
    ) -> Result<(), RegionError> {
        if self.is_initialized() {
            return Err(RegionError::AlreadyDefined);
        }
        let (blocks, bitmap) = storage.take().ok_or(RegionError::AlreadyDefined)?;
        // SAFETY: `take` hands out the storage's `N` slots (each `block_layout(T)` in size and
        // alignment, as `PoolStorage` asserts at compile time) and its `ceil(N / 8)`-byte bitmap,
        // once, for ever.
        unsafe { self.adopt(blocks, bitmap, PoolStorage::<T, N, B>::BLOCK, N) };
        Ok(())
    }

    /// Takes `count` blocks of `block` at `base` and a bitmap at `bitmap`; every block free.
    ///
    /// # Safety
    /// `block` is a [`block_layout`](Self::block_layout); `count >= 1`; `base` is aligned to
    /// `block.align()`; `base .. base + count * block.size()` and `bitmap .. bitmap + ceil(count / 8)`
    /// are disjoint, valid for reads and writes and owned by the pool from now on.
    unsafe fn adopt(&mut self, base: *mut u8, bitmap: *mut u8, block: Layout, count: usize) {
        let stride = block.size();
        let shift = stride.trailing_zeros();
        *self = Pool {
            base,
            bitmap,
            stride,
            align: block.align(),
            count,
            span: count * stride,
            shift,
            inverse: inverse_of_odd(stride >> shift),
            ..Pool::new()
        };
        // SAFETY: a pool that was just given its memory has handed out no block.
        unsafe { self.reset() };
    }

    /// Whether the pool has memory.
    pub fn is_initialized(&self) -> bool {
        !self.base.is_null()
    }

    /// Whether a value of `layout` fits in one block (size and alignment).
    pub fn fits(&self, layout: Layout) -> bool {
        layout.size() <= self.stride && layout.align() <= self.align
    }

    /// `osMemoryPoolGetCapacity`: number of blocks (0 without memory).
    pub fn capacity(&self) -> usize {
        self.count
    }

    /// `osMemoryPoolGetBlockSize`: bytes in each block (the requested size, rounded as
    /// [`block_layout`](Self::block_layout) says).
    pub fn block_size(&self) -> usize {
        self.stride
    }

    /// Alignment of every block.
    pub fn block_align(&self) -> usize {
        self.align
    }

    /// `osMemoryPoolGetCount`: blocks handed out and not yet freed.
    pub fn blocks_in_use(&self) -> usize {
        self.in_use
    }

    /// `osMemoryPoolGetSpace`: blocks available.
    pub fn blocks_free(&self) -> usize {
        self.count - self.in_use
    }

    /// The fewest blocks ever available since init, reset or
    /// [`reset_min_ever_free`](RawHeap::reset_min_ever_free).
    pub fn min_ever_free_blocks(&self) -> usize {
        self.min_free
    }

    /// Every statistic at once.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            capacity: self.count,
            block_size: self.stride,
            blocks_in_use: self.in_use,
            blocks_free: self.count - self.in_use,
            min_ever_free_blocks: self.min_free,
            successful_allocations: self.allocations,
            successful_frees: self.frees,
            rejected_frees: self.rejected,
            failed_allocations: self.failed,
        }
    }

    /// Address of block `idx`, with the region's provenance.
    #[inline]
    fn block_ptr(&self, idx: usize) -> *mut u8 {
        // `idx < count`, so the offset stays inside the blocks.
        self.base.wrapping_add(idx * self.stride)
    }

    /// Whether block `idx` (below `count`) is allocated.
    #[inline]
    fn is_set(&self, idx: usize) -> bool {
        // SAFETY: `idx < count`, so byte `idx / 8` is inside the bitmap.
        unsafe { *self.bitmap.add(idx >> 3) & (1 << (idx & 7)) != 0 }
    }

    /// Flips the bit of block `idx` (below `count`).
    #[inline]
    fn toggle(&mut self, idx: usize) {
        // SAFETY: `idx < count`, so byte `idx / 8` is inside the bitmap, which the pool owns.
        unsafe { *self.bitmap.add(idx >> 3) ^= 1 << (idx & 7) };
    }

    /// `osPoolAlloc` / `osMemoryPoolAlloc`: one block of [`block_size`](Self::block_size) bytes,
    /// aligned to [`block_align`](Self::block_align), contents unspecified.
    ///
    /// # Errors
    /// [`PoolError::Exhausted`] when every block is in use, [`PoolError::Uninitialized`] without
    /// memory, [`PoolError::Corrupted`] when the free list's head was overwritten (the pool is left
    /// as it was; [`check`](RawHeap::check) says where).
    ///
    /// # Time complexity
    /// O(1).
    #[inline]
    pub fn alloc_block(&mut self) -> Result<NonNull<u8>, PoolError> {
        let idx = if self.head != NIL {
            let idx = self.head;
            // Free-list nodes are below `fresh` and free: anything else is a link overwritten
            // after its block was freed.
            if idx >= self.fresh || self.is_set(idx) {
                self.failed += 1;
                return Err(PoolError::Corrupted);
            }
            // SAFETY: block `idx` is inside the pool and free, so its first word is the link the
            // pool wrote there (aligned: blocks are aligned to at least a `usize`).
            self.head = unsafe { self.block_ptr(idx).cast::<usize>().read() };
            idx
        } else if self.fresh < self.count {
            self.fresh += 1;
            self.fresh - 1
        } else {
            self.failed += 1;
            return Err(if self.is_initialized() {
                PoolError::Exhausted
            } else {
                PoolError::Uninitialized
            });
        };
        self.toggle(idx);
        self.in_use += 1;
        self.allocations += 1;
        let free = self.count - self.in_use;
        if free < self.min_free {
            self.min_free = free;
        }
        // SAFETY: the pool has memory (a block was found), so `base` is not null.
        Ok(unsafe { NonNull::new_unchecked(self.block_ptr(idx)) })
    }

    /// `osPoolCAlloc`: as [`alloc_block`](Self::alloc_block), every byte of the block zeroed.
    ///
    /// # Errors
    /// As [`alloc_block`](Self::alloc_block).
    ///
    /// # Time complexity
    /// O(block size).
    pub fn alloc_block_zeroed(&mut self) -> Result<NonNull<u8>, PoolError> {
        let p = self.alloc_block()?;
        // SAFETY: a fresh block of `stride` bytes owned by the caller from now on.
        unsafe { p.as_ptr().write_bytes(0, self.stride) };
        Ok(p)
    }

    /// Index of the block starting at `ptr`, whether allocated or free.
    #[inline]
    fn index_of(&self, ptr: *const u8) -> Result<usize, PoolError> {
        let off = ptr.addr().wrapping_sub(self.base.addr());
        if off >= self.span {
            return Err(PoolError::NotInPool);
        }
        let idx = (off >> self.shift).wrapping_mul(self.inverse);
        if off & ((1 << self.shift) - 1) != 0 || idx >= self.count {
            return Err(PoolError::NotBlockStart);
        }
        Ok(idx)
    }

    /// Index of the allocated block starting at `ptr`.
    #[inline]
    fn allocated_index(&self, ptr: *const u8) -> Result<usize, PoolError> {
        let idx = self.index_of(ptr)?;
        if idx >= self.fresh || !self.is_set(idx) {
            return Err(PoolError::DoubleFree);
        }
        Ok(idx)
    }

    /// `osPoolFree` / `osMemoryPoolFree`: returns a block to the pool.
    ///
    /// # Errors
    /// Refused, the pool unchanged but for its [`rejected_frees`](PoolStats::rejected_frees)
    /// counter: [`PoolError::NotInPool`] for a pointer outside the pool's blocks (or a pool without
    /// memory), [`PoolError::NotBlockStart`] for one inside a block but not at its start,
    /// [`PoolError::DoubleFree`] for a block that is free.
    ///
    /// # Safety
    /// When `ptr` is an allocated block of this pool, nothing may use it after the call (it is
    /// handed out again). The checks above make every other pointer harmless.
    ///
    /// # Time complexity
    /// O(1), without a division.
    #[inline]
    pub unsafe fn free_block(&mut self, ptr: NonNull<u8>) -> Result<(), PoolError> {
        let idx = match self.allocated_index(ptr.as_ptr()) {
            Ok(idx) => idx,
            Err(e) => {
                self.rejected += 1;
                return Err(e);
            }
        };
        // SAFETY: block `idx` is allocated and now returned by its owner, so the pool may write
        // its link there (aligned: blocks are aligned to at least a `usize`).
        unsafe { self.block_ptr(idx).cast::<usize>().write(self.head) };
        self.head = idx;
        self.toggle(idx);
        self.in_use -= 1;
        self.frees += 1;
        Ok(())
    }

    /// Whether `ptr` is the start of a block of this pool that is currently allocated.
    pub fn is_allocated(&self, ptr: *const u8) -> bool {
        self.allocated_index(ptr).is_ok()
    }

    /// Every block in address order, as a [`BlockInfo`] (`size` = block size, `region` = 0, kind
    /// [`Allocated`](BlockKind::Allocated) or [`Free`](BlockKind::Free) by the bitmap).
    ///
    /// # Time complexity
    /// O(1) per block.
    pub fn blocks(&self) -> impl Iterator<Item = BlockInfo> + '_ {
        (0..self.count).map(move |i| BlockInfo {
            address: self.block_ptr(i).addr(),
            size: self.stride,
            kind: if i < self.fresh && self.is_set(i) {
                BlockKind::Allocated
            } else {
                BlockKind::Free
            },
            region: 0,
        })
    }

    /// The first inconsistency of the free list, bitmap and counters.
    fn check_pool(&self) -> Result<(), CheckError> {
        let counter = |kind| Err(CheckError { kind, address: 0 });
        if self.count == 0 {
            return if self.head == NIL && self.in_use == 0 {
                Ok(())
            } else {
                counter(CheckErrorKind::ListMismatch)
            };
        }
        if self.min_free > self.count - self.in_use.min(self.count) {
            return counter(CheckErrorKind::MinEverAboveFree);
        }
        if self.fresh > self.count || self.in_use > self.fresh {
            return counter(CheckErrorKind::FreeBytesMismatch);
        }
        // The bitmap: exactly `in_use` bits, all below `fresh`.
        let mut set = 0;
        for i in 0..self.count {
            if self.is_set(i) {
                if i >= self.fresh {
                    return Err(CheckError {
                        kind: CheckErrorKind::FreeBytesMismatch,
                        address: self.block_ptr(i).addr(),
                    });
                }
                set += 1;
            }
        }
        if set != self.in_use {
            return counter(CheckErrorKind::FreeBytesMismatch);
        }
        // The list: `fresh - in_use` free blocks below `fresh`, ending in NIL. A cycle or a
        // repeated node makes it longer, so it is caught by the length bound.
        let expected = self.fresh - self.in_use;
        let (mut node, mut from, mut len) = (self.head, 0usize, 0usize);
        while node != NIL {
            if node >= self.fresh {
                return Err(CheckError {
                    kind: CheckErrorKind::BadLink,
                    address: from,
                });
            }
            let p = self.block_ptr(node);
            if self.is_set(node) {
                return Err(CheckError {
                    kind: CheckErrorKind::ListNodeNotFree,
                    address: p.addr(),
                });
            }
            len += 1;
            if len > expected {
                return Err(CheckError {
                    kind: CheckErrorKind::ListMismatch,
                    address: p.addr(),
                });
            }
            // SAFETY: block `node` is inside the pool and free: its first word is its link.
            (node, from) = (unsafe { p.cast::<usize>().read() }, p.addr());
        }
        if len != expected {
            return counter(CheckErrorKind::ListMismatch);
        }
        Ok(())
    }
}

impl From<PoolError> for AllocError {
    /// `Exhausted`, `DoesNotFit` and `Corrupted` become `OutOfMemory` (no block can serve the
    /// request).
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Uninitialized => AllocError::Uninitialized,
            _ => AllocError::OutOfMemory,
        }
    }
}

impl From<PoolError> for FreeError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::NotInPool => FreeError::OutsideHeap,
            PoolError::NotBlockStart => FreeError::Misaligned,
            PoolError::DoubleFree => FreeError::DoubleFree,
            _ => FreeError::NotABlock,
        }
    }
}

/// The pool as a heap of one size class: requests that fit a block get one, larger or
/// over-aligned ones fail with [`AllocError::OutOfMemory`] (counted as failed allocations), as
/// zero-size ones with [`AllocError::ZeroSize`]. This is what makes a
/// [`LockedPool`](crate::LockedPool) a `GlobalAlloc` and an `Allocator`.
///
/// `free_bytes` and the other byte figures are block counts times the block size; `stats()` reports
/// every free block as `block_size` bytes.
impl RawHeap for Pool {
    const SIZE_MAX: usize = usize::MAX;

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            self.failed += 1;
            return Err(AllocError::ZeroSize);
        }
        if !self.fits(layout) && self.is_initialized() {
            self.failed += 1;
            return Err(AllocError::OutOfMemory);
        }
        Ok(self.alloc_block()?)
    }

    fn malloc(&mut self, size: usize) -> Result<NonNull<u8>, AllocError> {
        let layout = Layout::from_size_align(size, 1).map_err(|_| AllocError::SizeOverflow)?;
        self.allocate(layout)
    }

    /// Refuses what [`free_block`](Pool::free_block) refuses, and a `layout` that does not fit a
    /// block ([`FreeError::LayoutMismatch`]).
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Option<Layout>) -> Result<(), FreeError> {
        if layout.is_some_and(|l| !self.fits(l)) {
            self.rejected += 1;
            return Err(FreeError::LayoutMismatch);
        }
        // SAFETY: forwarded contract.
        Ok(unsafe { self.free_block(ptr) }?)
    }

    /// In place: the block is returned unchanged when `new_size` fits it; else the request fails
    /// (a pool has no larger block) and the old block stays valid.
    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>, ReallocError> {
        let checked = if self.fits(old) {
            self.allocated_index(ptr.as_ptr()).map_err(FreeError::from)
        } else {
            Err(FreeError::LayoutMismatch)
        };
        if let Err(e) = checked {
            self.rejected += 1;
            return Err(ReallocError::Free(e));
        }
        if new_size == 0 {
            self.failed += 1;
            return Err(ReallocError::Alloc(AllocError::ZeroSize));
        }
        if new_size > self.stride {
            self.failed += 1;
            return Err(ReallocError::Alloc(AllocError::OutOfMemory));
        }
        Ok(ptr)
    }

    /// The block size, for a live block of this pool.
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> Result<usize, FreeError> {
        self.allocated_index(ptr.as_ptr())
            .map(|_| self.stride)
            .map_err(FreeError::from)
    }

    fn free_bytes(&self) -> usize {
        self.blocks_free() * self.stride
    }

    fn min_ever_free_bytes(&self) -> usize {
        self.min_free * self.stride
    }

    fn reset_min_ever_free(&mut self) {
        self.min_free = self.count - self.in_use;
    }

    fn stats(&self) -> crate::HeapStats {
        let free = self.blocks_free();
        crate::HeapStats {
            available_bytes: free * self.stride,
            largest_free_block: if free > 0 { self.stride } else { 0 },
            smallest_free_block: if free > 0 { self.stride } else { usize::MAX },
            free_blocks: free,
            min_ever_free: self.min_free * self.stride,
            successful_allocations: self.allocations,
            successful_frees: self.frees,
            rejected_frees: self.rejected,
            failed_allocations: self.failed,
        }
    }

    /// Every block free again and every counter zero, keeping the memory. O(n / 8).
    unsafe fn reset(&mut self) {
        if !self.bitmap.is_null() {
            // SAFETY: the pool owns its `ceil(count / 8)`-byte bitmap.
            unsafe { self.bitmap.write_bytes(0, self.count.div_ceil(8)) };
        }
        self.head = NIL;
        self.fresh = 0;
        self.in_use = 0;
        self.min_free = self.count;
        self.allocations = 0;
        self.frees = 0;
        self.rejected = 0;
        self.failed = 0;
    }

    /// Walks the bitmap and the free list: every counter agrees with the bitmap, the list holds
    /// exactly the free blocks that were handed out before, once each, and ends.
    ///
    /// Errors: `BadLink` (a link leaving the pool or into blocks never handed out; `address` = the
    /// block holding it, 0 for the list head), `ListNodeNotFree` (a link to an allocated block),
    /// `ListMismatch` (a cycle, or free blocks missing from the list), `FreeBytesMismatch` (the
    /// in-use counter and the bitmap disagree), `MinEverAboveFree`.
    fn check(&self) -> Result<(), CheckError> {
        self.check_pool()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_is_an_inverse() {
        for d in (1..10_000usize)
            .step_by(2)
            .chain([usize::MAX, usize::MAX - 2, 0x5555_5555])
        {
            assert_eq!(d.wrapping_mul(inverse_of_odd(d)), 1, "d = {d}");
        }
    }

    #[test]
    fn divisibility_test_matches_division() {
        // The index computation against `/` and `%`, for every offset of small grids.
        for stride in (8..=200usize)
            .step_by(8)
            .chain([24, 40, 48, 72, 96, 1000, 4104])
        {
            let shift = stride.trailing_zeros();
            let inverse = inverse_of_odd(stride >> shift);
            let count = 37;
            for off in 0..count * stride {
                let idx = (off >> shift).wrapping_mul(inverse);
                let exact = off & ((1 << shift) - 1) == 0 && idx < count;
                assert_eq!(exact, off % stride == 0, "stride {stride} off {off}");
                if exact {
                    assert_eq!(idx, off / stride);
                }
            }
        }
    }
}
