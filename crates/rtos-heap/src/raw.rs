//! The one place that reads and writes block headers in raw memory.
//!
//! A header is two words of the *target's* width (see [`TargetLayout`]): the link word, then the
//! size word. Links are stored as byte offsets from the heap base (the aligned start of the first
//! region), so a 32-bit heap image works on a 64-bit host and a link can be validated by range and
//! grid checks. [`NIL`] (all ones) is the "no link" value; an allocated block's link holds it, as
//! FreeRTOS stores NULL there. The size word holds the block size with the target's MSB set when the
//! block is allocated.

use core::marker::PhantomData;
use core::ptr::NonNull;
#[cfg(feature = "validate-cheap")]
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::target::TargetLayout;

/// How many regions the link validation tracks one by one (`validate-cheap`); regions beyond are
/// tracked as one span from the start of the last tracked one to the end of the last region.
#[cfg(feature = "validate-cheap")]
const BOUNDS: usize = 8;

/// "No link": FreeRTOS's NULL. Stored as all ones of the target word.
pub(crate) const NIL: usize = usize::MAX;

/// A decoded block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Offset of the next free block, or [`NIL`].
    pub link: usize,
    /// Whole block size in bytes, header included.
    pub size: usize,
    /// The allocated bit.
    pub allocated: bool,
}

/// The array of a heap_2/heap_4 heap before its blocks are laid out (FreeRTOS's `ucHeap` before
/// the first `pvPortMalloc`): kept as a pointer, so that a heap in a `static` can be given its
/// array at compile time ([`Engine::new_pending`](crate::engine::Engine::new_pending)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingArray {
    pub start: *mut u8,
    pub len: usize,
}

impl PendingArray {
    /// No array.
    pub const NONE: PendingArray = PendingArray {
        start: core::ptr::null_mut(),
        len: 0,
    };

    /// The array's address, its provenance exposed for the offsets the arena turns back into
    /// pointers ([`Arena::expose`]).
    #[inline(always)]
    pub fn expose(&self) -> usize {
        self.start.expose_provenance()
    }
}

// SAFETY: the pointer is only an address: the heap holding it reaches the array through `&mut`
// of itself (the engine's methods), so moving or sharing the holder across threads moves or shares
// nothing else; whoever gave the array promised it to this heap alone.
unsafe impl Send for PendingArray {}
// SAFETY: as above: `&PendingArray` gives no access to the array.
unsafe impl Sync for PendingArray {}

/// Raw access to the memory of a heap, addressed by offset from `base`.
///
/// `Arena` itself owns nothing; the engine that holds it guarantees that every offset it passes
/// lies inside one of its regions (invariant stated on each method).
///
/// The base is kept as an address: heap_5 regions may be separate objects (two SRAM banks, two
/// `static` arrays), so a pointer is made from an offset with [`core::ptr::with_exposed_provenance_mut`],
/// and every region's pointer has its provenance exposed when the region is defined
/// ([`Arena::expose`]).
pub(crate) struct Arena<T> {
    base: usize,
    /// Heap protector canary (`configENABLE_HEAP_PROTECTOR`): XORed into every stored link, NIL
    /// included. Only with the `heap-protector` feature, so that builds without it pay nothing.
    #[cfg(feature = "heap-protector")]
    canary: usize,
    /// `validate-cheap`: the regions as (start, end) offsets, `end` being the end marker (heap_4/5)
    /// or the end of the memory (heap_2).
    #[cfg(feature = "validate-cheap")]
    bounds: [(usize, usize); BOUNDS],
    #[cfg(feature = "validate-cheap")]
    nbounds: usize,
    /// Whether the last tracked bound stands for several regions (end markers inside it).
    #[cfg(feature = "validate-cheap")]
    merged: bool,
    #[cfg(feature = "validate-cheap")]
    end_markers: bool,
    /// The block whose link failed validation during the current walk, or [`NIL`]. Atomic only to
    /// keep the heap `Sync`; it is written and read inside one `&mut` operation.
    #[cfg(feature = "validate-cheap")]
    fault: AtomicUsize,
    _target: PhantomData<T>,
}

impl<T: TargetLayout> Arena<T> {
    pub const fn empty() -> Self {
        Arena {
            base: 0,
            #[cfg(feature = "heap-protector")]
            canary: 0,
            #[cfg(feature = "validate-cheap")]
            bounds: [(0, 0); BOUNDS],
            #[cfg(feature = "validate-cheap")]
            nbounds: 0,
            #[cfg(feature = "validate-cheap")]
            merged: false,
            #[cfg(feature = "validate-cheap")]
            end_markers: false,
            #[cfg(feature = "validate-cheap")]
            fault: AtomicUsize::new(NIL),
            _target: PhantomData,
        }
    }

    /// Records the regions that links are validated against (`validate-cheap`; a no-op without).
    #[cfg(feature = "validate-cheap")]
    pub fn set_bounds(&mut self, regions: &[crate::engine::Region], end_markers: bool) {
        self.nbounds = regions.len().min(BOUNDS);
        self.merged = regions.len() > BOUNDS;
        self.end_markers = end_markers;
        for (i, r) in regions.iter().take(BOUNDS).enumerate() {
            self.bounds[i] = (r.start, r.end);
        }
        if let (true, Some(last)) = (self.merged, regions.last()) {
            self.bounds[BOUNDS - 1].1 = last.end;
        }
        *self.fault.get_mut() = NIL;
    }

    /// Records the regions that links are validated against (`validate-cheap`; a no-op without).
    #[cfg(not(feature = "validate-cheap"))]
    #[inline(always)]
    pub fn set_bounds(&mut self, _regions: &[crate::engine::Region], _end_markers: bool) {}

    /// Validates the link `to` read from the block at `from` before it is followed: `NIL`, or a
    /// grid offset inside a region whose header is a free block (or an end marker). On failure the
    /// fault is recorded against `from` and `false` is returned; the caller must then stop its walk
    /// before writing anything. Without `validate-cheap` this is `true` and folds away.
    #[inline(always)]
    pub fn follow(&self, from: usize, to: usize) -> bool {
        #[cfg(feature = "validate-cheap")]
        if !self.link_ok(to) {
            self.fault.store(from, Ordering::Relaxed);
            return false;
        }
        let _ = (from, to);
        true
    }

    /// Records a fault against the block at `from` found by an index's own checks (list order).
    /// Without `validate-cheap` it does nothing.
    #[inline(always)]
    pub fn fault(&self, from: usize) {
        #[cfg(feature = "validate-cheap")]
        self.fault.store(from, Ordering::Relaxed);
        let _ = from;
    }

    /// The block whose link failed validation since the last call, if any (always `None` without
    /// `validate-cheap`).
    #[inline(always)]
    pub fn take_fault(&self) -> Option<usize> {
        #[cfg(feature = "validate-cheap")]
        {
            let f = self.fault.load(Ordering::Relaxed);
            if f != NIL {
                self.fault.store(NIL, Ordering::Relaxed);
                return Some(f);
            }
        }
        None
    }

    /// Whether a fault is recorded and not yet taken, leaving it for [`take_fault`](Self::take_fault)
    /// (always `false` without `validate-cheap`). An index that delegates an operation (`Hybrid`
    /// to its current form) tells by it whether the operation was refused, without taking the
    /// fault the engine reports.
    #[inline(always)]
    pub fn fault_pending(&self) -> bool {
        #[cfg(feature = "validate-cheap")]
        {
            self.fault.load(Ordering::Relaxed) != NIL
        }
        #[cfg(not(feature = "validate-cheap"))]
        {
            false
        }
    }

    /// The most nodes a free list can have: a bound for walks that could otherwise cycle.
    #[inline(always)]
    pub fn max_nodes(&self) -> usize {
        #[cfg(feature = "validate-cheap")]
        if let Some(&(_, end)) = self.nbounds.checked_sub(1).and_then(|i| self.bounds.get(i)) {
            return end / T::ALIGN + self.nbounds + 1;
        }
        usize::MAX
    }

    #[cfg(feature = "validate-cheap")]
    fn link_ok(&self, to: usize) -> bool {
        if to == NIL {
            return true;
        }
        if to % T::ALIGN != 0 {
            return false;
        }
        // `get`: `nbounds <= BOUNDS` always; no panic path in the code that reads it.
        let bounds = self.bounds.get(..self.nbounds).unwrap_or(&[]);
        for (i, &(start, end)) in bounds.iter().enumerate() {
            if to < start || to > end {
                continue;
            }
            let marker_slot = self.merged && i == self.nbounds - 1;
            if to == end {
                if !self.end_markers {
                    return false;
                }
                // SAFETY: an end marker header lies at every region end of a heap with markers.
                let h = unsafe { self.header(to) };
                return h.size == 0 && !h.allocated;
            }
            if end - to < T::HEADER {
                return false;
            }
            // SAFETY: `to` is on the grid inside a region, with a header's room before its end.
            let h = unsafe { self.header(to) };
            if h.allocated {
                return false;
            }
            if h.size == 0 {
                // An intermediate end marker inside a span that merges several regions.
                return marker_slot && self.end_markers;
            }
            return h.size >= T::HEADER
                && h.size <= end - to
                && (h.size % T::ALIGN == 0 || (!self.end_markers && to + h.size == end));
        }
        false
    }

    /// Fills `len` bytes at `off` with [`POISON`](crate::validate::POISON) (`poison` feature).
    ///
    /// # Safety
    /// `off .. off + len` is free memory inside a region of this heap.
    #[cfg(feature = "poison")]
    pub unsafe fn poison(&self, off: usize, len: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.ptr(off).write_bytes(crate::validate::POISON, len) }
    }

    /// The offset of the first byte of `off .. off + len` that is not the poison pattern, if any.
    ///
    /// # Safety
    /// `off .. off + len` is memory inside a region of this heap that nothing else references.
    #[cfg(feature = "poison")]
    pub unsafe fn unpoisoned(&self, off: usize, len: usize) -> Option<usize> {
        // SAFETY: forwarded contract: the bytes are readable heap memory with no live reference.
        let bytes = unsafe { core::slice::from_raw_parts(self.ptr(off), len) };
        bytes
            .iter()
            .position(|&b| b != crate::validate::POISON)
            .map(|i| off + i)
    }

    /// A header at `off` was absorbed into a merged free block: poison it with the payload around
    /// it (`poison` feature; a no-op without).
    ///
    /// # Safety
    /// As [`header`](Self::header), and the header is no longer a block's.
    #[inline(always)]
    pub unsafe fn retire_header(&self, off: usize) {
        #[cfg(feature = "poison")]
        // SAFETY: forwarded contract.
        unsafe {
            self.poison(off, T::HEADER)
        }
        let _ = off;
    }

    /// Sets the heap protector's canary (only while no link is stored).
    #[cfg(feature = "heap-protector")]
    pub fn set_canary(&mut self, canary: usize) {
        self.canary = canary;
    }

    /// The mask applied to stored links: the canary, or 0 without the protector (folded away).
    #[inline(always)]
    fn mask(&self) -> usize {
        #[cfg(feature = "heap-protector")]
        return self.canary;
        #[cfg(not(feature = "heap-protector"))]
        0
    }

    /// Sets the heap base: the host address that offset 0 stands for.
    pub fn set_base(&mut self, base: usize) {
        self.base = base;
    }

    /// Exposes the provenance of a region's memory so that [`ptr`](Self::ptr) may address it.
    pub fn expose(region: NonNull<u8>) {
        let _ = region.as_ptr().expose_provenance();
    }

    /// Host address of the heap base (0 when no memory is defined).
    #[inline(always)]
    pub fn base_addr(&self) -> usize {
        self.base
    }

    /// Pointer to the byte at `off`.
    ///
    /// This function is safe; *using* the pointer needs `off` to lie inside (or one past) a region
    /// the heap owns, whose provenance was exposed by [`expose`](Self::expose).
    #[inline(always)]
    pub fn ptr(&self, off: usize) -> *mut u8 {
        debug_assert!(self.base != 0);
        core::ptr::with_exposed_provenance_mut(self.base.wrapping_add(off))
    }

    #[inline(always)]
    unsafe fn read_word(&self, off: usize) -> usize {
        // SAFETY: caller guarantees a header lies at `off`. Header words are aligned to the word size
        // whenever `ALIGN >= WORD` (the heap base and every block offset are multiples of ALIGN,
        // which is at least 4); only 8-byte words with ALIGN 4 need unaligned access.
        unsafe {
            let p = self.ptr(off);
            if T::WORD == 4 {
                let w = p.cast::<u32>().read() ^ self.mask() as u32;
                if w == u32::MAX { NIL } else { w as usize }
            } else {
                let w = if T::ALIGN >= 8 {
                    p.cast::<u64>().read()
                } else {
                    p.cast::<u64>().read_unaligned()
                } ^ self.mask() as u64;
                if w == u64::MAX { NIL } else { w as usize }
            }
        }
    }

    #[inline(always)]
    unsafe fn write_word(&self, off: usize, value: usize) {
        // SAFETY: as in `read_word`.
        unsafe {
            let p = self.ptr(off);
            if T::WORD == 4 {
                let w = if value == NIL { u32::MAX } else { value as u32 };
                p.cast::<u32>().write(w ^ self.mask() as u32)
            } else {
                let w = if value == NIL { u64::MAX } else { value as u64 } ^ self.mask() as u64;
                if T::ALIGN >= 8 {
                    p.cast::<u64>().write(w)
                } else {
                    p.cast::<u64>().write_unaligned(w)
                }
            }
        }
    }

    /// The size word at `off` as stored, widened to 64 bits: its top bit (bit `8 * WORD - 1`) is
    /// the allocated bit.
    ///
    /// # Safety
    /// As [`header`](Self::header).
    #[inline(always)]
    unsafe fn size_word(&self, off: usize) -> u64 {
        // SAFETY: caller guarantees a header at `off`; the size word is WORD-aligned (ALIGN >= WORD
        // except for 8-byte words with ALIGN 4, read unaligned).
        unsafe {
            let p = self.ptr(off + T::WORD);
            if T::WORD == 4 {
                u64::from(p.cast::<u32>().read())
            } else if T::ALIGN >= 8 {
                p.cast::<u64>().read()
            } else {
                p.cast::<u64>().read_unaligned()
            }
        }
    }

    /// Size word value: (size, allocated bit). On a target whose word is wider than the host's
    /// `usize` the top bit is the allocated bit too; sizes never reach it.
    #[inline(always)]
    unsafe fn read_size_word(&self, off: usize) -> (usize, bool) {
        let bit = 1u64 << (8 * T::WORD - 1);
        // SAFETY: forwarded contract.
        let w = unsafe { self.size_word(off) };
        (
            usize::try_from(w & !bit).unwrap_or(usize::MAX),
            w & bit != 0,
        )
    }

    /// Reads the header at `off`.
    ///
    /// # Safety
    /// `off .. off + T::HEADER` lies inside a region of this heap and `off` is on the block grid.
    #[inline(always)]
    pub unsafe fn header(&self, off: usize) -> Header {
        // SAFETY: forwarded contract.
        unsafe {
            let link = self.read_word(off);
            let (size, allocated) = self.read_size_word(off);
            Header {
                link,
                size,
                allocated,
            }
        }
    }

    /// Reads only the size of the block at `off` (allocated bit dropped).
    ///
    /// # Safety
    /// As [`header`](Self::header).
    #[inline(always)]
    pub unsafe fn size(&self, off: usize) -> usize {
        // SAFETY: forwarded contract.
        unsafe { self.read_size_word(off).0 }
    }

    /// Reads the size word of a *free* block at `off` as it is stored: the allocated bit is clear
    /// in a free block, so nothing is masked (a hot path of the tree index). A set bit reads as a
    /// size no request reaches (at least `SIZE_MSB`).
    ///
    /// # Safety
    /// As [`header`](Self::header).
    #[inline(always)]
    pub unsafe fn free_size(&self, off: usize) -> usize {
        // SAFETY: forwarded contract.
        usize::try_from(unsafe { self.size_word(off) }).unwrap_or(usize::MAX)
    }

    /// Reads only the link of the block at `off`.
    ///
    /// # Safety
    /// As [`header`](Self::header).
    #[inline(always)]
    pub unsafe fn link(&self, off: usize) -> usize {
        // SAFETY: forwarded contract.
        unsafe { self.read_word(off) }
    }

    /// Writes the link word of the block at `off`.
    ///
    /// # Safety
    /// As [`header`](Self::header).
    #[inline(always)]
    pub unsafe fn set_link(&self, off: usize, link: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.write_word(off, link) }
    }

    /// Writes the size word of the block at `off`.
    ///
    /// # Safety
    /// As [`header`](Self::header).
    #[inline(always)]
    pub unsafe fn set_size(&self, off: usize, size: usize, allocated: bool) {
        // SAFETY: forwarded contract.
        unsafe {
            let p = self.ptr(off + T::WORD);
            if T::WORD == 4 {
                let w = (size as u32) | if allocated { 1 << 31 } else { 0 };
                p.cast::<u32>().write(w)
            } else {
                let w = (size as u64) | if allocated { 1 << 63 } else { 0 };
                if T::ALIGN >= 8 {
                    p.cast::<u64>().write(w)
                } else {
                    p.cast::<u64>().write_unaligned(w)
                }
            }
        }
    }

    /// Writes a whole header.
    ///
    /// # Safety
    /// As [`header`](Self::header).
    #[inline(always)]
    pub unsafe fn set_header(&self, off: usize, link: usize, size: usize, allocated: bool) {
        // SAFETY: forwarded contract.
        unsafe {
            self.write_word(off, link);
            self.set_size(off, size, allocated);
        }
    }
}
