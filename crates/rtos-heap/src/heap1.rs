//! heap_1: bump allocation; nothing is ever freed.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use crate::RawHeap;
use crate::error::{AllocError, CheckError, CheckErrorKind, FreeError, RegionError};
use crate::stats::HeapStats;
use crate::target::{Native, TargetLayout, align_up};

/// FreeRTOS heap_1: hands out memory from the bottom of the array up and never takes it back.
///
/// Reproduces heap_1.c (V11): no headers; a request is rounded up to `ALIGN`; the array loses
/// `ALIGN` bytes to alignment whatever its address (`configADJUSTED_HEAP_SIZE`); an allocation
/// succeeds only while `used + wanted < adjusted` (strictly), so the last `ALIGN` bytes are never
/// handed out. Deterministic and O(1): the right choice when everything is allocated at start-up.
///
/// **Freeing is accepted and does nothing**: [`free`](RawHeap::free) returns `Ok` for a pointer
/// inside the heap (FreeRTOS asserts instead) and [`FreeError::OutsideHeap`] for any other.
/// [`reset`](RawHeap::reset) frees everything at once (`vPortInitialiseBlocks` /
/// `vPortHeapResetState`).
///
/// Statistics (FreeRTOS heap_1 has only `xPortGetFreeHeapSize`): the untouched top of the array is
/// reported as one free block; the minimum ever is the current free size.
///
/// # Examples
///
/// ```
/// use core::mem::MaybeUninit;
/// use rtos_heap::{CortexM, Heap1, RawHeap};
///
/// let memory: &'static mut [MaybeUninit<u8>] = Box::leak(Box::new([MaybeUninit::uninit(); 256]));
/// let mut heap = Heap1::<CortexM>::new();
/// heap.init(memory).unwrap();
/// heap.malloc(10).unwrap(); // rounded up to 16
/// assert_eq!(heap.free_bytes(), 256 - 8 - 16);
/// ```
pub struct Heap1<T: TargetLayout = Native> {
    base: usize,
    adjusted: usize,
    next: usize,
    allocs: usize,
    failed: usize,
    rejected: usize,
    _target: PhantomData<T>,
}

impl<T: TargetLayout> Heap1<T> {
    /// An empty heap; give it memory with [`init`](Self::init).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = T::VALID;
        Heap1 {
            base: 0,
            adjusted: 0,
            next: 0,
            allocs: 0,
            failed: 0,
            rejected: 0,
            _target: PhantomData,
        }
    }

    /// Gives the heap its memory (`ucHeap`).
    ///
    /// # Errors
    /// `AlreadyDefined` on a second call, `TooSmall` for fewer than `2 * ALIGN` bytes.
    pub fn init(&mut self, region: &'static mut [MaybeUninit<u8>]) -> Result<(), RegionError> {
        let len = region.len();
        let start = NonNull::from(region).cast::<u8>();
        // SAFETY: a `&'static mut` slice is memory nobody else can reach, for ever.
        unsafe { self.init_from_raw(start, len) }
    }

    /// [`init`](Self::init) from a raw pointer and length.
    ///
    /// # Safety
    /// `start .. start + len` must be valid for reads and writes and used by nothing else for as long
    /// as the heap is in use.
    pub unsafe fn init_from_raw(
        &mut self,
        start: NonNull<u8>,
        len: usize,
    ) -> Result<(), RegionError> {
        if self.base != 0 {
            return Err(RegionError::AlreadyDefined);
        }
        let a = start.as_ptr() as usize;
        if a.checked_add(len).is_none() || a > usize::MAX - T::ALIGN {
            return Err(RegionError::TooLarge { index: 0 });
        }
        if len < 2 * T::ALIGN {
            return Err(RegionError::TooSmall { index: 0 });
        }
        let _ = start.as_ptr().expose_provenance();
        self.base = align_up(a, T::ALIGN);
        self.adjusted = len - T::ALIGN;
        self.next = 0;
        Ok(())
    }

    /// Bytes handed out so far (alignment padding included).
    pub fn used_bytes(&self) -> usize {
        self.next
    }

    fn bump(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        if self.base == 0 {
            return Err(AllocError::Uninitialized);
        }
        if size == 0 {
            return Err(AllocError::ZeroSize);
        }
        let pad = (T::ALIGN - (size & (T::ALIGN - 1))) & (T::ALIGN - 1);
        let wanted = size
            .checked_add(pad)
            .filter(|&w| w <= T::SIZE_MAX)
            .ok_or(AllocError::SizeOverflow)?;
        let here = self.base + self.next;
        let skip = if align > T::ALIGN {
            align_up(here, align) - here
        } else {
            0
        };
        let end = self
            .next
            .checked_add(skip)
            .and_then(|n| n.checked_add(wanted))
            .ok_or(AllocError::SizeOverflow)?;
        if end >= self.adjusted {
            return Err(AllocError::OutOfMemory);
        }
        self.next = end;
        self.allocs += 1;
        let p = core::ptr::with_exposed_provenance_mut::<u8>(here + skip);
        // SAFETY: `here + skip` lies inside the array, whose address is not null.
        Ok(unsafe { NonNull::new_unchecked(p) })
    }

    fn counted(&mut self, r: Result<NonNull<u8>, AllocError>) -> Result<NonNull<u8>, AllocError> {
        if r.is_err() {
            self.failed += 1;
        }
        r
    }
}

impl<T: TargetLayout> Default for Heap1<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TargetLayout> RawHeap for Heap1<T> {
    const SIZE_MAX: usize = T::SIZE_MAX;

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let r = self.bump(layout.size(), layout.align());
        self.counted(r)
    }

    fn malloc(&mut self, size: usize) -> Result<NonNull<u8>, AllocError> {
        let r = self.bump(size, 1);
        self.counted(r)
    }

    /// Accepted and ignored for a pointer inside the heap (heap_1 never frees).
    unsafe fn free(&mut self, ptr: NonNull<u8>, _layout: Option<Layout>) -> Result<(), FreeError> {
        let a = ptr.as_ptr() as usize;
        if self.base != 0 && a >= self.base && a < self.base + self.next {
            Ok(())
        } else {
            self.rejected += 1;
            Err(FreeError::OutsideHeap)
        }
    }

    /// heap_1 keeps no sizes: a pointer inside the heap reports the bytes from it to the end of the
    /// used part (an upper bound of its block).
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> Result<usize, FreeError> {
        let a = ptr.as_ptr() as usize;
        if self.base != 0 && a >= self.base && a < self.base + self.next {
            Ok(self.base + self.next - a)
        } else {
            Err(FreeError::OutsideHeap)
        }
    }

    fn free_bytes(&self) -> usize {
        self.adjusted - self.next
    }

    fn min_ever_free_bytes(&self) -> usize {
        self.free_bytes()
    }

    fn reset_min_ever_free(&mut self) {}

    fn stats(&self) -> HeapStats {
        let free = self.free_bytes();
        HeapStats {
            available_bytes: free,
            largest_free_block: free,
            smallest_free_block: if free == 0 { T::SIZE_MAX } else { free },
            free_blocks: usize::from(free != 0),
            min_ever_free: free,
            successful_allocations: self.allocs,
            successful_frees: 0,
            rejected_frees: self.rejected,
            failed_allocations: self.failed,
        }
    }

    unsafe fn reset(&mut self) {
        self.next = 0;
        self.allocs = 0;
        self.failed = 0;
        self.rejected = 0;
    }

    fn check(&self) -> Result<(), CheckError> {
        if self.next > self.adjusted {
            return Err(CheckError {
                kind: CheckErrorKind::FreeBytesMismatch,
                address: self.base + self.next,
            });
        }
        Ok(())
    }
}
