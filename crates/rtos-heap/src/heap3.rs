//! heap_3: another allocator (the C library's `malloc` in FreeRTOS) made thread-safe and counted.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use crate::RawHeap;
use crate::error::{AllocError, CheckError, CheckErrorKind, FreeError};
use crate::stats::HeapStats;

const WORD: usize = core::mem::size_of::<usize>();
/// Tag of a live block (low byte: log2 of the alignment).
const LIVE: usize = 0x4845_4150_0000_3300_u64 as usize;
/// Tag written over a freed block's tag: a second free of it is caught while the memory is unused.
const DEAD: usize = 0x4652_4545_0000_DD00_u64 as usize;
/// Bytes in front of every payload: (requested size, tag).
const PREFIX: usize = 2 * WORD;

/// FreeRTOS heap_3: wraps another allocator (`A`: any [`GlobalAlloc`]; with the `std` feature,
/// `std::alloc::System`, the C library's `malloc`) and counts what is in use.
///
/// Every block carries a small prefix of its own (the requested size and a tag, two words rounded
/// up to the alignment), so frees need no `Layout`, the bytes in use are exact, and a double free is
/// caught while the freed memory has not been reused. An optional byte limit makes it usable as a
/// simulated heap of a given size (the CLI does this).
///
/// Statistics: `free_bytes()` is the limit minus the requested bytes in use (`usize::MAX` without a
/// limit); the wrapped allocator's free blocks are not visible, so `stats()` reports none
/// (`free_blocks` 0, `largest` 0, `smallest` `usize::MAX`). [`reset`](RawHeap::reset) does nothing,
/// as in FreeRTOS. Locking is [`LockedHeap`](crate::LockedHeap)'s job, as for every scheme.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "std")] {
/// use rtos_heap::{Heap3, RawHeap};
/// let mut heap = Heap3::with_limit(std::alloc::System, 1000);
/// let p = heap.malloc(600).unwrap();
/// assert_eq!(heap.free_bytes(), 400);
/// assert!(heap.malloc(600).is_err()); // over the limit
/// unsafe { heap.free(p, None).unwrap() };
/// # }
/// ```
pub struct Heap3<A> {
    inner: A,
    limit: usize,
    in_use: usize,
    peak: usize,
    allocs: usize,
    frees: usize,
    rejected: usize,
    failed: usize,
}

impl<A: GlobalAlloc> Heap3<A> {
    /// Wraps `inner` with no limit.
    pub const fn new(inner: A) -> Self {
        Self::with_limit(inner, usize::MAX)
    }

    /// Wraps `inner`, refusing allocations that would bring the requested bytes in use above
    /// `limit`.
    pub const fn with_limit(inner: A, limit: usize) -> Self {
        Heap3 {
            inner,
            limit,
            in_use: 0,
            peak: 0,
            allocs: 0,
            frees: 0,
            rejected: 0,
            failed: 0,
        }
    }

    /// Requested bytes in use now.
    pub fn bytes_in_use(&self) -> usize {
        self.in_use
    }

    /// Most requested bytes ever in use at once.
    pub fn peak_bytes_in_use(&self) -> usize {
        self.peak
    }

    fn outer(size: usize, align: usize) -> Option<(Layout, usize)> {
        let align = align.max(PREFIX.next_power_of_two());
        let offset = PREFIX.div_ceil(align) * align;
        let layout = Layout::from_size_align(size.checked_add(offset)?, align).ok()?;
        Some((layout, offset))
    }

    fn alloc_inner(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        if size == 0 {
            return Err(AllocError::ZeroSize);
        }
        let (layout, offset) = Self::outer(size, align).ok_or(AllocError::SizeOverflow)?;
        if size > self.limit - self.in_use {
            return Err(AllocError::OutOfMemory);
        }
        // SAFETY: `layout` has a non-zero size (it includes the prefix).
        let base =
            NonNull::new(unsafe { self.inner.alloc(layout) }).ok_or(AllocError::OutOfMemory)?;
        // SAFETY: the block holds `offset >= PREFIX` bytes in front of the payload; the prefix words
        // are aligned (offset and the block are multiples of the word size).
        let payload = unsafe {
            let payload = base.add(offset);
            let words = payload.cast::<usize>().as_ptr();
            words.sub(2).write(size);
            words
                .sub(1)
                .write(LIVE | layout.align().trailing_zeros() as usize);
            payload
        };
        self.in_use += size;
        self.peak = self.peak.max(self.in_use);
        self.allocs += 1;
        Ok(payload)
    }

    fn counted(&mut self, r: Result<NonNull<u8>, AllocError>) -> Result<NonNull<u8>, AllocError> {
        if r.is_err() {
            self.failed += 1;
        }
        r
    }
}

#[cfg(feature = "std")]
impl Heap3<std::alloc::System> {
    /// FreeRTOS's heap_3 exactly: the C library's allocator, no limit.
    pub const fn system() -> Self {
        Self::new(std::alloc::System)
    }
}

impl<A: GlobalAlloc> RawHeap for Heap3<A> {
    const SIZE_MAX: usize = usize::MAX;

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let r = self.alloc_inner(layout.size(), layout.align());
        self.counted(r)
    }

    fn malloc(&mut self, size: usize) -> Result<NonNull<u8>, AllocError> {
        let r = self.alloc_inner(size, 1);
        self.counted(r)
    }

    /// Refuses a misaligned pointer, a block whose tag says it is already free (double free), and a
    /// prefix that does not check out. A foreign pointer cannot be recognised in general: its
    /// prefix words are read (the `# Safety` contract of the trait covers that).
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Option<Layout>) -> Result<(), FreeError> {
        let r = (|| {
            if ptr.as_ptr() as usize % PREFIX.next_power_of_two() != 0 {
                return Err(FreeError::Misaligned);
            }
            let words = ptr.cast::<usize>().as_ptr();
            // SAFETY: by the caller's contract `ptr` came from this heap, so a prefix precedes it.
            let (size, tag) = unsafe { (words.sub(2).read(), words.sub(1).read()) };
            if tag & !0xff == DEAD & !0xff {
                return Err(FreeError::DoubleFree);
            }
            if tag & !0xff != LIVE || tag & 0xff >= usize::BITS as usize || size > self.in_use {
                return Err(FreeError::NotABlock);
            }
            let align = 1usize << (tag & 0xff);
            if let Some(l) = layout {
                if l.size() != size || l.align() > align {
                    return Err(FreeError::LayoutMismatch);
                }
            }
            let (outer, offset) = Self::outer(size, align).ok_or(FreeError::NotABlock)?;
            // SAFETY: the prefix checked out: this is the block `alloc_inner` made with `outer`.
            unsafe {
                words.sub(1).write(DEAD);
                self.inner.dealloc(ptr.as_ptr().sub(offset), outer);
            }
            self.in_use -= size;
            Ok(())
        })();
        match r {
            Ok(()) => self.frees += 1,
            Err(_) => self.rejected += 1,
        }
        r
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> Result<usize, FreeError> {
        if ptr.as_ptr() as usize % PREFIX.next_power_of_two() != 0 {
            return Err(FreeError::Misaligned);
        }
        // SAFETY: by the caller's contract `ptr` came from this heap, so a prefix precedes it.
        let (size, tag) = unsafe {
            let words = ptr.cast::<usize>().as_ptr();
            (words.sub(2).read(), words.sub(1).read())
        };
        match tag & !0xff {
            t if t == LIVE & !0xff => Ok(size),
            t if t == DEAD & !0xff => Err(FreeError::DoubleFree),
            _ => Err(FreeError::NotABlock),
        }
    }

    fn free_bytes(&self) -> usize {
        self.limit - self.in_use
    }

    fn min_ever_free_bytes(&self) -> usize {
        self.limit - self.peak
    }

    fn reset_min_ever_free(&mut self) {
        self.peak = self.in_use;
    }

    fn stats(&self) -> HeapStats {
        HeapStats {
            available_bytes: self.free_bytes(),
            largest_free_block: 0,
            smallest_free_block: usize::MAX,
            free_blocks: 0,
            min_ever_free: self.min_ever_free_bytes(),
            successful_allocations: self.allocs,
            successful_frees: self.frees,
            rejected_frees: self.rejected,
            failed_allocations: self.failed,
        }
    }

    unsafe fn reset(&mut self) {}

    fn check(&self) -> Result<(), CheckError> {
        if self.in_use > self.peak || self.peak > self.limit {
            return Err(CheckError {
                kind: CheckErrorKind::FreeBytesMismatch,
                address: 0,
            });
        }
        Ok(())
    }
}
