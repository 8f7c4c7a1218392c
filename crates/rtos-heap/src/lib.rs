//! FreeRTOS's heap schemes — heap_1 … heap_5 — re-built in `#![no_std]` Rust.
//!
//! Every scheme places blocks exactly where the FreeRTOS V11 C code would (same header, rounding,
//! split rule, end markers and statistics), on the target layout you choose, and adds what the C
//! original lacks: refused bad frees instead of silent corruption, alignments above
//! `portBYTE_ALIGNMENT`, realloc, and an integrity check.
//!
//! | scheme | FreeRTOS | placement | free | merge | cost per op |
//! |---|---|---|---|---|---|
//! | [`Heap1`] | heap_1 | bump | never (accepted, no effect) | – | O(1) |
//! | [`Heap2`] | heap_2 | best fit by size | yes | never | O(free blocks) |
//! | [`Heap3`] | heap_3 | the wrapped allocator's | yes | its own | its own |
//! | [`Heap4`] | heap_4 | first fit by address | yes | both neighbours | O(free blocks) |
//! | [`Heap5`] | heap_5 | as heap_4, over several regions | yes | within a region | O(free blocks) |
//!
//! Each raw scheme implements [`RawHeap`] (`&mut self`, no lock). [`LockedHeap`] wraps one behind a
//! lock (a `critical-section` by default, or any `lock_api::RawMutex`) and implements
//! [`GlobalAlloc`](core::alloc::GlobalAlloc) and [`allocator_api2::alloc::Allocator`].
//!
//! Beside the heaps, [`Pool`] is a fixed-block memory pool (CMSIS-RTOS `osPoolAlloc`/`osPoolFree`):
//! O(1) allocation and free of one block size through an intrusive free list, double frees caught
//! by a one-bit-per-block bitmap, [`PoolStats`] as CMSIS-RTOS2 reports them, typed [`PoolBox`]
//! owners, and a [`LockedPool`] (the same lock parameter) that is a `GlobalAlloc`/`Allocator` for
//! one size class. See [`Pool`] for the layout and costs.
//!
//! ```no_run
//! use rtos_heap::{Heap4, LockedHeap, StaticRegion};
//!
//! #[global_allocator]
//! static HEAP: LockedHeap<Heap4> = LockedHeap::new(Heap4::new());
//! static MEMORY: StaticRegion<{ 64 * 1024 }> = StaticRegion::new();
//!
//! fn main() {
//!     HEAP.lock().init(MEMORY.take().unwrap()).unwrap();
//!     let v = vec![1, 2, 3];
//!     assert_eq!(HEAP.stats().successful_allocations, 1);
//!     drop(v);
//! }
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod engine;
mod error;
mod heap1;
mod heap2;
mod heap3;
mod heap4;
mod heap5;
mod locked;
mod pool;
mod raw;
mod region;
mod stats;
mod target;
pub mod validate;

use core::alloc::Layout;
use core::ptr::NonNull;

pub use engine::hybrid::Hybrid;
pub use engine::index::{AddressList, FreeIndex, SizeList};
pub use engine::size_tree::SizeTree;
pub use engine::tree::{AddressTree, MAX_SPAN as TREE_MAX_SPAN};
pub use error::{AllocError, CheckError, CheckErrorKind, FreeError, RegionError};
pub use heap1::Heap1;
pub use heap2::Heap2;
pub use heap3::Heap3;
pub use heap4::Heap4;
pub use heap5::{Heap5, HeapRegion};
pub use locked::{CriticalSectionRawMutex, Fault, Hooks, LockedHeap};
pub use pool::{LockedPool, Pool, PoolBox, PoolError, PoolStats, PoolStorage};
pub use region::StaticRegion;
pub use stats::HeapStats;
pub use target::{CortexM, Host64, Host64Align16, Mcu32Align4, Native, Target, TargetLayout};

/// The interface every scheme implements: an unlocked heap owned through `&mut self`.
///
/// Allocation takes a Rust [`Layout`] ([`allocate`](Self::allocate)) or a C-style byte count
/// ([`malloc`](Self::malloc), `pvPortMalloc`: aligned to `portBYTE_ALIGNMENT`). Frees are checked:
/// a pointer that does not check out is refused with a [`FreeError`] and the heap is left as it was.
///
/// # Examples
///
/// A function that works with any scheme:
///
/// ```
/// use core::alloc::Layout;
/// use rtos_heap::RawHeap;
///
/// fn churn<H: RawHeap>(heap: &mut H) {
///     let p = heap.allocate(Layout::new::<[u8; 100]>()).unwrap();
///     // SAFETY: `p` came from `heap` and is not used afterwards.
///     unsafe { heap.free(p, Some(Layout::new::<[u8; 100]>())).unwrap() };
///     heap.check().unwrap();
/// }
/// # let region = Box::leak(Box::new([core::mem::MaybeUninit::uninit(); 2048]));
/// # let mut h = rtos_heap::Heap4::<rtos_heap::Native>::new();
/// # h.init(region).unwrap();
/// # churn(&mut h);
/// ```
pub trait RawHeap {
    /// The target's `SIZE_MAX`: `calloc` refuses `count * size` above it.
    const SIZE_MAX: usize;

    /// Allocates a block for `layout` (any power-of-two alignment).
    ///
    /// # Time complexity
    /// As the scheme's table row in the crate documentation.
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError>;

    /// `pvPortMalloc(size)`: `size` bytes aligned to `portBYTE_ALIGNMENT`, placed exactly as FreeRTOS
    /// places them. `size` may be any value: zero and overflowing sizes fail with an error.
    fn malloc(&mut self, size: usize) -> Result<NonNull<u8>, AllocError>;

    /// `pvPortCalloc(count, size)`: `count * size` zeroed bytes; a product above the target's
    /// `SIZE_MAX` fails with [`AllocError::CallocOverflow`] before the heap is touched.
    fn calloc(&mut self, count: usize, size: usize) -> Result<NonNull<u8>, AllocError> {
        let total = count
            .checked_mul(size)
            .filter(|&t| t <= Self::SIZE_MAX)
            .ok_or(AllocError::CallocOverflow)?;
        let p = self.malloc(total)?;
        // SAFETY: `p` is a fresh block of at least `total` bytes.
        unsafe { p.as_ptr().write_bytes(0, total) };
        Ok(p)
    }

    /// Allocates a zeroed block for `layout`.
    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let p = self.allocate(layout)?;
        // SAFETY: `p` is a fresh block of at least `layout.size()` bytes.
        unsafe { p.as_ptr().write_bytes(0, layout.size()) };
        Ok(p)
    }

    /// `vPortFree`: returns a block. `layout`, when given, is checked against the block.
    ///
    /// Refused (heap unchanged, [`HeapStats::rejected_frees`] counted): a pointer outside the heap,
    /// off the block grid, a block already free, a header that does not check out, a contradicting
    /// layout.
    ///
    /// # Safety
    /// `ptr` must be a live allocation of this heap, not used after the call. The checks above catch
    /// most violations, but not all: a stale pointer to a block that has since been handed out
    /// again frees the new owner's block, as in FreeRTOS.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Option<Layout>) -> Result<(), FreeError>;

    /// Resizes a block to `new_size` bytes, keeping `old.align()`: in place when the scheme can,
    /// else by allocating, copying and freeing. On error the old block is untouched.
    ///
    /// # Safety
    /// `ptr` must be a live allocation of this heap made with `old`; after a successful call only the
    /// returned pointer may be used.
    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>, ReallocError> {
        let layout = Layout::from_size_align(new_size, old.align())
            .map_err(|_| ReallocError::Alloc(AllocError::SizeOverflow))?;
        let new = self.allocate(layout)?;
        // SAFETY: both blocks are live and distinct; the copy is bounded by both sizes.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), old.size().min(new_size));
        }
        // SAFETY: forwarded contract: `ptr` is live and not used again.
        match unsafe { self.free(ptr, Some(old)) } {
            Ok(()) => Ok(new),
            Err(e) => {
                // SAFETY: `new` was allocated just above and never handed out.
                let _ = unsafe { self.free(new, Some(layout)) };
                Err(ReallocError::Free(e))
            }
        }
    }

    /// The payload bytes usable in the block of `ptr` (at least what was requested), after the
    /// same checks as [`free`](Self::free). Lets C-style callers (`realloc` without a size) work.
    ///
    /// # Errors
    /// The [`FreeError`] a free of `ptr` would return; nothing is counted or changed.
    ///
    /// # Safety
    /// `ptr` must be a live allocation of this heap (as for [`free`](Self::free)).
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> Result<usize, FreeError>;

    /// `xPortGetFreeHeapSize`.
    fn free_bytes(&self) -> usize;
    /// `xPortGetMinimumEverFreeHeapSize`.
    fn min_ever_free_bytes(&self) -> usize;
    /// `xPortResetHeapMinimumEverFreeHeapSize`: the minimum ever becomes the current free bytes.
    fn reset_min_ever_free(&mut self);
    /// `vPortGetHeapStats`.
    fn stats(&self) -> HeapStats;
    /// `vPortHeapResetState`: forgets every block and counter.
    ///
    /// # Safety
    /// No block handed out before the call may be used (or freed) after it: the memory is handed
    /// out again. A safe wrapper relying on live blocks (a `Box` in an
    /// [`Allocator`](allocator_api2::alloc::Allocator), a [`PoolBox`]) must not outlive the call.
    unsafe fn reset(&mut self);
    /// Walks every block and the free structures; `Ok` or the first inconsistency found.
    fn check(&self) -> Result<(), CheckError>;
}

/// Why a [`RawHeap::reallocate`] failed. The old block is untouched.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReallocError {
    /// The old pointer was refused, as a free of it would be.
    Free(FreeError),
    /// The new size could not be allocated.
    Alloc(AllocError),
}

impl From<FreeError> for ReallocError {
    fn from(e: FreeError) -> Self {
        ReallocError::Free(e)
    }
}

impl From<AllocError> for ReallocError {
    fn from(e: AllocError) -> Self {
        ReallocError::Alloc(e)
    }
}

impl core::fmt::Display for ReallocError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReallocError::Free(e) => write!(f, "realloc of a bad pointer: {e}"),
            ReallocError::Alloc(e) => write!(f, "realloc failed: {e}"),
        }
    }
}

impl core::error::Error for ReallocError {}

/// What kind of block a [`BlockInfo`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// Handed out.
    Allocated,
    /// Free (in the free list).
    Free,
    /// A region's end marker (heap_4/heap_5): a header-sized, zero-size block closing the region.
    EndMarker,
    /// A header that does not check out; the walk of this region stops here.
    Corrupt,
}

/// One physical block of a heap, as a walk of its memory finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockInfo {
    /// Host address of the block header.
    pub address: usize,
    /// Whole block size, header included (0 for an end marker).
    pub size: usize,
    /// Allocated, free, end marker or corrupt.
    pub kind: BlockKind,
    /// Index of the region the block lies in.
    pub region: usize,
}

/// Iterator over the physical blocks of a heap_2/4/5 heap, region by region.
pub(crate) struct Blocks<'a, T, I, const N: usize> {
    engine: &'a engine::Engine<T, I, N>,
    region: usize,
    off: usize,
}

impl<T: TargetLayout, I: engine::index::FreeIndex, const N: usize> Iterator
    for Blocks<'_, T, I, N>
{
    type Item = BlockInfo;

    fn next(&mut self) -> Option<BlockInfo> {
        while self.region < self.engine.regions().len() {
            match self.engine.block_at(self.region, self.off) {
                Some((info, next)) => {
                    if next == raw::NIL {
                        self.next_region();
                    } else {
                        self.off = next;
                    }
                    return Some(info);
                }
                None => self.next_region(),
            }
        }
        None
    }
}

impl<'a, T: TargetLayout, I: engine::index::FreeIndex, const N: usize> Blocks<'a, T, I, N> {
    fn new(engine: &'a engine::Engine<T, I, N>) -> Self {
        Blocks {
            engine,
            region: 0,
            off: engine.region_start(0).unwrap_or(0),
        }
    }

    fn next_region(&mut self) {
        self.region += 1;
        self.off = self.engine.region_start(self.region).unwrap_or(0);
    }
}

/// Implements [`RawHeap`] and the block walk for a scheme that is a thin wrapper of the engine.
/// `$reset` is the engine's reset of the scheme: `reset_lazy` (an array laid out at the first
/// allocation) or `reset_regions` (regions laid out when given).
macro_rules! engine_scheme {
    // A scheme with an index type parameter `I` (heap_2, heap_4, heap_5).
    ($name:ident < T $(, const $n:ident : usize)?, I >, $reset:ident) => {
        $crate::engine_scheme!(@impl $name
            [T: $crate::TargetLayout $(, const $n: usize)?, I: $crate::FreeIndex] [T $(, $n)?, I] $reset);
    };
    (@impl $name:ident [$($gen:tt)*] [$($arg:tt)*] $reset:ident) => {
        impl<$($gen)*> $name<$($arg)*> {
            /// `configHEAP_CLEAR_MEMORY_ON_FREE`: zero each block's payload when it is freed.
            /// Placement and statistics do not change.
            pub fn set_clear_on_free(&mut self, on: bool) {
                self.engine.set_clear_on_free(on)
            }

            /// [`set_clear_on_free`](Self::set_clear_on_free) in a `const`.
            pub const fn with_clear_on_free(mut self, on: bool) -> Self {
                self.engine.set_clear_on_free(on);
                self
            }

            /// Frees `ptr` as FreeRTOS's `vPortFree` does, trusting the caller: only heap_N.c's
            /// own two checks are made (the block's allocated bit is set, its link is NULL), not
            /// rtos-heap's bad-free detection (inside a region, on the block grid, a plausible
            /// size, a plausible upper neighbour) that [`RawHeap::free`]($crate::RawHeap::free)
            /// makes. It saves about 25 instructions per free (docs/BENCHMARKS.md, "what the
            /// checks cost"); use it only where pointers cannot go wrong.
            ///
            /// # Errors
            /// When the block's allocated bit is clear or its link is not NULL, the error the
            /// checked [`free`]($crate::RawHeap::free) names (usually
            /// [`FreeError::DoubleFree`]($crate::FreeError)); the heap is unchanged.
            ///
            /// # Safety
            /// `ptr` must be a live allocation of this heap, not used after the call. A foreign,
            /// interior or dangling pointer is undefined behaviour here (not an error).
            pub unsafe fn free_trusted(&mut self, ptr: core::ptr::NonNull<u8>) -> Result<(), $crate::FreeError> {
                // SAFETY: forwarded contract.
                unsafe { self.engine.free_trusted(ptr) }
            }

            /// `configENABLE_HEAP_PROTECTOR`: store every free-list link XORed with `canary` (from
            /// the application's random source), so that an overrun that writes plain addresses or
            /// zeros over a header no longer forms a valid link. Must be called before the blocks are
            /// laid out (before the first allocation, or before `define_regions`); placement and
            /// statistics do not change.
            ///
            /// Available with the `heap-protector` feature (without it, links are stored plain and
            /// cost nothing extra).
            ///
            /// # Errors
            /// [`RegionError::AlreadyDefined`]($crate::RegionError) once blocks are laid out.
            #[cfg(feature = "heap-protector")]
            pub fn set_canary(&mut self, canary: usize) -> Result<(), $crate::RegionError> {
                self.engine.set_canary(canary)
            }
        }

        impl<$($gen)*> $crate::RawHeap for $name<$($arg)*> {
            const SIZE_MAX: usize = T::SIZE_MAX;
            #[inline(always)]
            fn allocate(&mut self, layout: core::alloc::Layout) -> Result<core::ptr::NonNull<u8>, $crate::AllocError> {
                self.engine.allocate(layout.size(), layout.align())
            }
            #[inline(always)]
            fn malloc(&mut self, size: usize) -> Result<core::ptr::NonNull<u8>, $crate::AllocError> {
                self.engine.malloc(size)
            }
            #[inline(always)]
            unsafe fn free(&mut self, ptr: core::ptr::NonNull<u8>, layout: Option<core::alloc::Layout>) -> Result<(), $crate::FreeError> {
                // SAFETY: forwarded contract.
                unsafe { self.engine.free(ptr, layout) }
            }
            unsafe fn reallocate(&mut self, ptr: core::ptr::NonNull<u8>, old: core::alloc::Layout, new_size: usize) -> Result<core::ptr::NonNull<u8>, $crate::ReallocError> {
                // SAFETY: forwarded contract.
                unsafe { self.engine.reallocate(ptr, old, new_size) }
            }
            unsafe fn usable_size(&self, ptr: core::ptr::NonNull<u8>) -> Result<usize, $crate::FreeError> {
                self.engine.usable_size(ptr)
            }
            fn free_bytes(&self) -> usize {
                self.engine.free_bytes()
            }
            fn min_ever_free_bytes(&self) -> usize {
                self.engine.min_ever_free_bytes()
            }
            #[inline]
            fn reset_min_ever_free(&mut self) {
                self.engine.reset_min_ever_free()
            }
            #[inline]
            fn stats(&self) -> $crate::HeapStats {
                self.engine.stats()
            }
            #[inline]
            unsafe fn reset(&mut self) {
                self.engine.$reset()
            }
            fn check(&self) -> Result<(), $crate::CheckError> {
                self.engine.check()
            }
        }
    };
}
pub(crate) use engine_scheme;
