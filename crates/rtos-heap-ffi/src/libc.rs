//! heap_3's allocator: the C library's `malloc` / `free`.

/// On a hosted target, std's `System` allocator: `malloc` / `free` (or `posix_memalign` for the
/// rare over-aligned request).
#[cfg(not(target_os = "none"))]
pub(crate) type Libc = std::alloc::System;

/// The allocator value.
#[cfg(not(target_os = "none"))]
pub(crate) const LIBC: Libc = std::alloc::System;

/// Bare metal: the C library's `malloc` / `free` of the firmware's own C runtime (newlib, picolibc …).
#[cfg(target_os = "none")]
pub(crate) struct Libc;

/// The allocator value.
#[cfg(target_os = "none")]
pub(crate) const LIBC: Libc = Libc;

#[cfg(target_os = "none")]
unsafe extern "C" {
    fn malloc(size: usize) -> *mut core::ffi::c_void;
    fn free(p: *mut core::ffi::c_void);
}

// SAFETY: `malloc` returns blocks aligned for any fundamental type (at least two words on every
// C library this targets); larger alignments are refused with NULL rather than misaligned.
#[cfg(target_os = "none")]
unsafe impl core::alloc::GlobalAlloc for Libc {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        if layout.align() > 2 * core::mem::size_of::<usize>() {
            return core::ptr::null_mut();
        }
        // SAFETY: a plain C call; `layout.size()` is non-zero (GlobalAlloc's contract).
        unsafe { malloc(layout.size()) }.cast()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: core::alloc::Layout) {
        // SAFETY: `ptr` came from `malloc` above (GlobalAlloc's contract).
        unsafe { free(ptr.cast()) }
    }
}
