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

use crate::target::TargetLayout;

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
    _target: PhantomData<T>,
}

impl<T: TargetLayout> Arena<T> {
    pub const fn empty() -> Self {
        Arena {
            base: 0,
            #[cfg(feature = "heap-protector")]
            canary: 0,
            _target: PhantomData,
        }
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

    /// Size word value: (size, allocated bit). On a target whose word is wider than the host's
    /// `usize` the top bit is the allocated bit too; sizes never reach it.
    #[inline(always)]
    unsafe fn read_size_word(&self, off: usize) -> (usize, bool) {
        // SAFETY: caller guarantees a header at `off`.
        unsafe {
            let p = self.ptr(off + T::WORD);
            if T::WORD == 4 {
                let w = p.cast::<u32>().read();
                ((w & 0x7fff_ffff) as usize, w >> 31 != 0)
            } else {
                let w = if T::ALIGN >= 8 {
                    p.cast::<u64>().read()
                } else {
                    p.cast::<u64>().read_unaligned()
                };
                let s = w & 0x7fff_ffff_ffff_ffff;
                (usize::try_from(s).unwrap_or(usize::MAX), w >> 63 != 0)
            }
        }
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
