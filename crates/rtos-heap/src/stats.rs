//! One statistics type for every scheme, mapping field by field onto FreeRTOS's `HeapStats_t`.

/// Heap statistics, as FreeRTOS's `vPortGetHeapStats` fills `HeapStats_t`, plus two counters of
/// rtos-heap's own.
///
/// All sizes count whole blocks, headers included, exactly as FreeRTOS does.
///
/// # Examples
///
/// ```
/// use core::mem::MaybeUninit;
/// use rtos_heap::{Heap4, RawHeap};
///
/// let region: &'static mut [MaybeUninit<u8>] = Box::leak(Box::new([MaybeUninit::uninit(); 4096]));
/// let mut heap = Heap4::<rtos_heap::CortexM>::new();
/// heap.init(region).unwrap();
/// let p = heap.allocate(core::alloc::Layout::new::<[u32; 4]>()).unwrap();
/// let s = heap.stats();
/// assert_eq!(s.successful_allocations, 1);
/// assert_eq!(s.free_blocks, 1);
/// # unsafe { heap.free(p, None).unwrap() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeapStats {
    /// `xAvailableHeapSpaceInBytes`: free bytes (the same as `free_bytes()`).
    pub available_bytes: usize,
    /// `xSizeOfLargestFreeBlockInBytes`.
    pub largest_free_block: usize,
    /// `xSizeOfSmallestFreeBlockInBytes`: the target's `SIZE_MAX` when there is no free block.
    pub smallest_free_block: usize,
    /// `xNumberOfFreeBlocks` (heap_5 counts its intermediate end markers, as FreeRTOS does).
    pub free_blocks: usize,
    /// `xMinimumEverFreeBytesRemaining`.
    pub min_ever_free: usize,
    /// `xNumberOfSuccessfulAllocations`.
    pub successful_allocations: usize,
    /// `xNumberOfSuccessfulFrees`.
    pub successful_frees: usize,
    /// rtos-heap: frees refused because the pointer or block did not check out.
    pub rejected_frees: usize,
    /// rtos-heap: allocations that failed, each one a `vApplicationMallocFailedHook` call in
    /// FreeRTOS (a calloc whose `count * size` overflows never reaches the heap and is not counted).
    pub failed_allocations: usize,
}
