//! heap_4: first fit over an address-ordered free list, merging neighbours on free; one region.

use crate::engine::Engine;
use crate::engine::index::{AddressList, FreeIndex};
use crate::target::{Native, TargetLayout};

/// FreeRTOS heap_4: first fit by address, both neighbours merged on free, one region.
///
/// Reproduces heap_4.c (V11) block for block: `wanted = round_up(n + header, ALIGN)`; the
/// lowest-addressed free block that fits is taken; it is split when the remainder is larger than
/// two headers, the low part handed out; a freed block merges with free neighbours; the end marker
/// sits inside the array and costs one header. The array is laid out at the first allocation.
///
/// Differences from FreeRTOS: bad frees are refused with an error instead of an assert; alignments
/// above `ALIGN` are honoured (a `Layout` extension that never changes placement for the others);
/// [`reallocate`](crate::RawHeap::reallocate) grows into a free upper neighbour in place.
///
/// # Free-block index
/// `I` picks how the free blocks are found; placement and statistics are the same either way:
/// - [`AddressList`] (default): FreeRTOS's address-ordered list, the smallest code.
/// - [`AddressTree`](crate::AddressTree): AVL trees of the free blocks kept inside them, for a
///   bounded allocation and free time (needs `portBYTE_ALIGNMENT` ≥ 8 and a heap of at most 4 GiB).
///
/// # Time complexity
/// With [`AddressList`], allocation and free walk the free list: O(free blocks). With
/// [`AddressTree`](crate::AddressTree), O(log free blocks). `stats()` walks the free list: O(free
/// blocks) with either.
///
/// # Examples
///
/// ```
/// use core::mem::MaybeUninit;
/// use rtos_heap::{CortexM, Heap4, RawHeap};
///
/// let memory: &'static mut [MaybeUninit<u8>] = Box::leak(Box::new([MaybeUninit::uninit(); 1024]));
/// let mut heap = Heap4::<CortexM>::new(); // laid out as on a 32-bit MCU, whatever the host
/// heap.init(memory).unwrap();
/// let p = heap.malloc(100).unwrap();
/// // 1024 bytes - 8 for the end marker - (100 + 8 rounded to 8 = 112) for the block:
/// assert_eq!(heap.free_bytes(), 1024 - 8 - 112);
/// unsafe { heap.free(p, None).unwrap() };
/// assert_eq!(unsafe { heap.free(p, None) }, Err(rtos_heap::FreeError::DoubleFree));
/// heap.check().unwrap();
/// ```
pub struct Heap4<T: TargetLayout = Native, I: FreeIndex = AddressList> {
    pub(crate) engine: Engine<T, I, 1>,
}

impl<T: TargetLayout, I: FreeIndex> Heap4<T, I> {
    /// An empty heap; give it memory with [`init`](Self::init).
    pub const fn new() -> Self {
        Heap4 {
            engine: Engine::new(),
        }
    }
}

crate::region::single_region_api!(Heap4, I);
crate::engine_scheme!(Heap4<T, I>, reset_lazy);
