//! Memory given to a heap: a `static` storage type with a safe, once-only `take`, and the shared
//! initialisation API of the single-region schemes.

use core::cell::{Cell, UnsafeCell};
use core::mem::MaybeUninit;

/// `N` bytes of static memory for a heap, handed out once as `&'static mut`.
///
/// Aligned to 16 bytes, so no scheme loses bytes to aligning its start.
///
/// # Examples
///
/// ```
/// use rtos_heap::StaticRegion;
/// static MEMORY: StaticRegion<4096> = StaticRegion::new();
/// let region = MEMORY.take().unwrap();
/// assert_eq!(region.len(), 4096);
/// assert!(MEMORY.take().is_none()); // only once
/// ```
#[repr(C, align(16))]
pub struct StaticRegion<const N: usize> {
    memory: UnsafeCell<[MaybeUninit<u8>; N]>,
    taken: critical_section::Mutex<Cell<bool>>,
}

// SAFETY: the memory is reachable only through `take`, which hands it out at most once (guarded by
// a critical section, so this holds on cores without compare-and-swap too).
unsafe impl<const N: usize> Sync for StaticRegion<N> {}

impl<const N: usize> StaticRegion<N> {
    /// Uninitialised storage, for a `static`.
    pub const fn new() -> Self {
        StaticRegion {
            memory: UnsafeCell::new([MaybeUninit::uninit(); N]),
            taken: critical_section::Mutex::new(Cell::new(false)),
        }
    }

    /// The memory, the first time only; `None` afterwards.
    // A `&mut` from `&self` is sound here: the once-only flag guarantees a single such reference.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut [MaybeUninit<u8>]> {
        let first = critical_section::with(|cs| !self.taken.borrow(cs).replace(true));
        // SAFETY: `first` is true exactly once, so this is the only reference ever made.
        first.then(|| unsafe { &mut *self.memory.get() }.as_mut_slice())
    }
}

impl<const N: usize> Default for StaticRegion<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The initialisation API of a scheme over one array (`ucHeap`), laid out at the first allocation.
macro_rules! single_region_api {
    ($name:ident) => {
        $crate::region::single_region_api!(@impl $name [T: $crate::TargetLayout] [T]);
    };
    // A scheme with an index type parameter `I` (heap_4).
    ($name:ident, I) => {
        $crate::region::single_region_api!(@impl $name
            [T: $crate::TargetLayout, I: $crate::FreeIndex] [T, I]);
    };
    (@impl $name:ident [$($gen:tt)*] [$($arg:tt)*]) => {
        impl<$($gen)*> $name<$($arg)*> {
            /// Gives the heap its memory (FreeRTOS's `ucHeap`, `configTOTAL_HEAP_SIZE` = its length).
            /// Blocks are laid out at the first allocation, as FreeRTOS does: until then the
            /// statistics read as FreeRTOS's do before the first `pvPortMalloc`.
            ///
            /// # Errors
            /// [`RegionError::AlreadyDefined`](crate::RegionError) on a second call;
            /// `TooSmall` / `TooLarge` when the array cannot hold a block or the target's word
            /// cannot address it.
            pub fn init(
                &mut self,
                region: &'static mut [core::mem::MaybeUninit<u8>],
            ) -> Result<(), $crate::RegionError> {
                let len = region.len();
                let start = core::ptr::NonNull::from(region).cast::<u8>();
                // SAFETY: a `&'static mut` slice is memory nobody else can reach, for ever.
                unsafe { self.init_from_raw(start, len) }
            }

            /// [`init`](Self::init) from a raw pointer and length.
            ///
            /// # Safety
            /// `start .. start + len` must be valid for reads and writes, not used by anything else,
            /// for as long as the heap is in use (until it is dropped or [`reset`](crate::RawHeap::reset)
            /// is followed by no further use).
            pub unsafe fn init_from_raw(
                &mut self,
                start: core::ptr::NonNull<u8>,
                len: usize,
            ) -> Result<(), $crate::RegionError> {
                // SAFETY: forwarded contract.
                unsafe { self.engine.set_pending(start, len) }
            }

            /// A heap given its memory at compile time: [`init_from_raw`](Self::init_from_raw)
            /// in a `const`, for a heap in a `static` that needs no code to run before its first
            /// allocation (the C library's `ucHeap` is given this way). The memory is checked when
            /// it is laid out, at the first allocation: memory that cannot hold a block (or that
            /// the target's word cannot address) makes every allocation fail with
            /// [`AllocError::Uninitialized`](crate::AllocError).
            ///
            /// # Safety
            /// As [`init_from_raw`](Self::init_from_raw); `start` need not be aligned.
            ///
            /// # Examples
            ///
            /// ```
            /// use core::cell::UnsafeCell;
            /// use rtos_heap::{CortexM, Heap4, LockedHeap, RawHeap};
            ///
            /// #[repr(align(8))]
            /// struct Memory(UnsafeCell<[u8; 4096]>);
            /// // SAFETY: the array is reached only through the heap below.
            /// unsafe impl Sync for Memory {}
            /// static MEMORY: Memory = Memory(UnsafeCell::new([0; 4096]));
            ///
            /// // SAFETY: `MEMORY` is 4096 bytes that nothing but this heap uses, for ever.
            /// static HEAP: LockedHeap<Heap4<CortexM>> =
            ///     LockedHeap::new(unsafe { Heap4::from_raw(MEMORY.0.get().cast(), 4096) });
            ///
            /// let p = HEAP.lock().malloc(100).unwrap();
            /// assert_eq!(HEAP.lock().free_bytes(), 4096 - 8 - 112);
            /// unsafe { HEAP.lock().free(p, None).unwrap() };
            /// ```
            pub const unsafe fn from_raw(start: *mut u8, len: usize) -> Self {
                Self {
                    // SAFETY: forwarded contract.
                    engine: unsafe { $crate::engine::Engine::new_pending(start, len) },
                }
            }

            /// Whether [`init`](Self::init) was called.
            pub fn is_initialized(&self) -> bool {
                self.engine.is_defined()
            }

            /// The physical blocks, in address order (empty before the first allocation).
            pub fn blocks(&self) -> impl Iterator<Item = $crate::BlockInfo> + '_ {
                $crate::Blocks::new(&self.engine)
            }
        }

        impl<$($gen)*> Default for $name<$($arg)*> {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}
pub(crate) use single_region_api;
