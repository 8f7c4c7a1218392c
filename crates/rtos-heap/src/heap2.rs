//! heap_2: best fit over a size-ordered free list; freed blocks are never merged.

use crate::engine::Engine;
use crate::engine::index::{FreeIndex, SizeList};
use crate::target::{Native, TargetLayout};

/// FreeRTOS heap_2 (legacy): best fit by size, no merging of neighbours.
///
/// Reproduces heap_2.c (V11): the array loses `ALIGN` bytes to alignment whatever its address, the
/// free list is ordered by size with the newest first among equal sizes, the smallest block that
/// fits is taken and split by the heap_4 rule, and freed blocks go back whole — adjacent free blocks
/// stay separate, so fragmentation only grows. Pick it only to reproduce an existing heap_2
/// application; heap_4 is better in every other way.
///
/// Differences from FreeRTOS: bad frees are refused; [`stats`](crate::RawHeap::stats) and the
/// minimum-ever counter exist (FreeRTOS heap_2 has only `xPortGetFreeHeapSize`).
///
/// # Time complexity
/// With the default index, [`SizeList`] (FreeRTOS's list): O(free blocks) for allocation and
/// free. With [`SizeTree`](crate::SizeTree) (`Heap2<T, SizeTree>`): O(log distinct free sizes),
/// same placement.
///
/// # Examples
///
/// ```
/// use core::mem::MaybeUninit;
/// use rtos_heap::{CortexM, Heap2, RawHeap};
///
/// let memory: &'static mut [MaybeUninit<u8>] = Box::leak(Box::new([MaybeUninit::uninit(); 1024]));
/// let mut heap = Heap2::<CortexM>::new();
/// heap.init(memory).unwrap();
/// assert_eq!(heap.free_bytes(), 1024 - 8); // heap_2 always gives up portBYTE_ALIGNMENT bytes
/// let a = heap.malloc(8).unwrap();
/// let b = heap.malloc(8).unwrap();
/// unsafe { heap.free(a, None).unwrap(); heap.free(b, None).unwrap() };
/// assert_eq!(heap.stats().free_blocks, 3); // two 16-byte holes and the rest: never merged
/// ```
pub struct Heap2<T: TargetLayout = Native, I: FreeIndex = SizeList> {
    pub(crate) engine: Engine<T, I, 1>,
}

impl<T: TargetLayout, I: FreeIndex> Heap2<T, I> {
    /// An empty heap; give it memory with [`init`](Self::init).
    pub const fn new() -> Self {
        Heap2 {
            engine: Engine::new(),
        }
    }
}

crate::region::single_region_api!(Heap2, I);
crate::engine_scheme!(Heap2<T, I>, reset_lazy);
