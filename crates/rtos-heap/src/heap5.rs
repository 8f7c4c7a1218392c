//! heap_5: the heap_4 engine over several non-adjacent regions, defined once.

use core::mem::MaybeUninit;
use core::ptr;

use crate::engine::Engine;
use crate::engine::index::{AddressList, FreeIndex};
use crate::error::RegionError;
use crate::target::{Native, TargetLayout};

/// One memory region for [`Heap5`]: FreeRTOS's `HeapRegion_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapRegion {
    /// `pucStartAddress`.
    pub start: *mut u8,
    /// `xSizeInBytes`.
    pub size: usize,
}

/// FreeRTOS heap_5: heap_4's algorithm over up to `N` regions (e.g. SRAM1 + SRAM2).
///
/// Same engine as [`Heap4`](crate::Heap4): first fit by address, merging. Each region is aligned
/// and closed by an end marker that stays in the free list (skipped by the search, counted by
/// `stats().free_blocks`) until a free block below it absorbs it, exactly as heap_5.c does; blocks
/// never merge across regions. Unlike heap_4, the regions are laid out at once by
/// [`define_regions`](Self::define_regions), and allocating before that fails with
/// [`AllocError::Uninitialized`](crate::AllocError::Uninitialized).
///
/// Differences from FreeRTOS: the region list is validated (ascending, non-overlapping, each large
/// enough, at most `N`) with a [`RegionError`] instead of a single assert, so the 64-bit overlap
/// quirk of heap_5.c is refused; [`reset`](crate::RawHeap::reset) lays the same regions out again
/// (FreeRTOS needs `vPortDefineHeapRegions` again).
///
/// # Free-block index
/// `I` is [`AddressList`] (default, FreeRTOS's list) or [`AddressTree`](crate::AddressTree)
/// (O(log n) trees inside the free blocks); placement and statistics are the same, see
/// [`Heap4`](crate::Heap4).
///
/// # Time complexity
/// O(free blocks + regions) for allocation and free with [`AddressList`]; O(log free blocks +
/// regions) with [`AddressTree`](crate::AddressTree) (the regions term: end markers still listed
/// between two free blocks, at most one per region).
///
/// # Examples
///
/// ```
/// use core::mem::MaybeUninit;
/// use rtos_heap::{CortexM, Heap5, RawHeap};
///
/// let memory: &'static mut [MaybeUninit<u8>] = Box::leak(Box::new([MaybeUninit::uninit(); 4096]));
/// let (sram1, rest) = memory.split_at_mut(1024);
/// let sram2 = &mut rest[1024..]; // a gap between the two
/// let mut heap = Heap5::<CortexM, 2>::new();
/// heap.define_regions([sram1, sram2]).unwrap();
/// // Each region costs one 8-byte end marker.
/// assert_eq!(heap.free_bytes(), 1024 - 8 + 2048 - 8);
/// assert_eq!(heap.stats().free_blocks, 3); // two blocks and the first region's end marker
/// ```
pub struct Heap5<T: TargetLayout = Native, const N: usize = 8, I: FreeIndex = AddressList> {
    pub(crate) engine: Engine<T, I, N>,
}

impl<T: TargetLayout, const N: usize, I: FreeIndex> Heap5<T, N, I> {
    /// A heap with no regions yet.
    pub const fn new() -> Self {
        Heap5 {
            engine: Engine::new(),
        }
    }

    /// `vPortDefineHeapRegions` with `'static` memory: the regions, in ascending address order.
    ///
    /// # Errors
    /// A [`RegionError`] naming the first offending region; nothing is defined then.
    pub fn define_regions<const K: usize>(
        &mut self,
        regions: [&'static mut [MaybeUninit<u8>]; K],
    ) -> Result<(), RegionError> {
        let list = regions.map(|r| HeapRegion {
            size: r.len(),
            start: ptr::from_mut(r).cast::<u8>(),
        });
        // SAFETY: `&'static mut` slices are memory nobody else can reach, for ever.
        unsafe { self.define_regions_raw(&list) }
    }

    /// `vPortDefineHeapRegions` from raw regions (without FreeRTOS's terminating zero entry).
    ///
    /// # Safety
    /// Every region must be valid for reads and writes and used by nothing else for as long as the
    /// heap is in use.
    pub unsafe fn define_regions_raw(&mut self, regions: &[HeapRegion]) -> Result<(), RegionError> {
        if let (Some(first), Some(last)) = (regions.first(), regions.last()) {
            let (lo, hi) = (
                first.start as usize,
                (last.start as usize).saturating_add(last.size),
            );
            if hi > lo && hi - lo > I::MAX_SPAN {
                return Err(RegionError::TooLarge {
                    index: regions.len() - 1,
                });
            }
        }
        // SAFETY: forwarded contract.
        unsafe { self.engine.define(regions) }
    }

    /// Whether regions were defined.
    pub fn is_initialized(&self) -> bool {
        self.engine.is_defined()
    }

    /// The physical blocks, region by region, end markers included.
    pub fn blocks(&self) -> impl Iterator<Item = crate::BlockInfo> + '_ {
        crate::Blocks::new(&self.engine)
    }
}

impl<T: TargetLayout, const N: usize, I: FreeIndex> Default for Heap5<T, N, I> {
    fn default() -> Self {
        Self::new()
    }
}

crate::engine_scheme!(Heap5<T, const N: usize, I>, reset_regions);
