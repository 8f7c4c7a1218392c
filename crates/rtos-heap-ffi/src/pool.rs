//! Fixed-block pools from C: the core crate's [`rtos_heap::Pool`] over a caller-supplied buffer,
//! behind the build's lock (the kernel's scheduler suspension, or the critical section).
//!
//! The pool's control block is carved from the start of the buffer, the bitmap and the blocks
//! follow; nothing is allocated from the heap. Every function is O(1) except `xPoolCheck`.

use core::alloc::Layout;
use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};

use rtos_heap::{Pool, PoolError, RawHeap};

use crate::lock::Lock;
use crate::{heap, hooks};

/// A pool's control block (opaque to C): the pool behind the build's lock.
pub struct PoolControl {
    pool: lock_api::Mutex<Lock, Pool>,
}

/// Handle of a pool made by [`xPoolCreate`]; NULL when creation failed.
pub type PoolHandle_t = *mut PoolControl;

/// Extra: bytes of a buffer that a pool's control block takes (before alignment padding; it
/// depends on the build's lock). Size a buffer as `uxPoolControlSize() + 2 * 8 + capacity / 8 +
/// capacity * block size` to be sure of `capacity` blocks.
#[unsafe(no_mangle)]
pub extern "C" fn uxPoolControlSize() -> usize {
    size_of::<PoolControl>()
}

fn fault_code(e: PoolError) -> i32 {
    match e {
        PoolError::NotInPool => crate::heapFAULT_OUTSIDE_HEAP,
        PoolError::NotBlockStart => crate::heapFAULT_MISALIGNED,
        PoolError::DoubleFree => crate::heapFAULT_DOUBLE_FREE,
        _ => crate::heapFAULT_OTHER,
    }
}

/// Extra: creates a pool of blocks of `xBlockSize` bytes (aligned to `portBYTE_ALIGNMENT`) over
/// the caller's buffer: as many blocks as fit after the control block and a bitmap of one bit per
/// block. Returns NULL when the buffer is NULL, `xBlockSize` is 0, or not one block fits.
///
/// # Safety
/// `pvBuffer .. pvBuffer + xBufferSize` is valid for reads and writes and used by nothing else for
/// as long as the pool or any of its blocks is in use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xPoolCreate(
    pvBuffer: *mut c_void,
    xBufferSize: usize,
    xBlockSize: usize,
) -> PoolHandle_t {
    let Ok(block) = Layout::from_size_align(xBlockSize, crate::config::BYTE_ALIGNMENT) else {
        return ptr::null_mut();
    };
    if pvBuffer.is_null() || xBlockSize == 0 {
        return ptr::null_mut();
    }
    let start = pvBuffer.cast::<u8>();
    let pad = start.align_offset(align_of::<PoolControl>());
    let Some(rest) = xBufferSize
        .checked_sub(pad)
        .and_then(|n| n.checked_sub(size_of::<PoolControl>()))
    else {
        return ptr::null_mut();
    };
    // SAFETY: `pad + size_of::<PoolControl>() <= xBufferSize`: both pointers stay in the buffer.
    let (control, region) = unsafe {
        let c = start.add(pad).cast::<PoolControl>();
        (c, c.add(1).cast::<u8>())
    };
    let mut pool = Pool::new();
    let Some(region_nn) = NonNull::new(region) else {
        return ptr::null_mut();
    };
    // SAFETY: the caller's contract: the rest of the buffer is memory nobody else uses.
    if unsafe { pool.init_from_raw(region_nn, rest, block) }.is_err() {
        return ptr::null_mut();
    }
    // SAFETY: `control` is aligned for `PoolControl` and inside the buffer, which the caller gave
    // over to the pool.
    unsafe {
        control.write(PoolControl {
            pool: lock_api::Mutex::const_new(<Lock as lock_api::RawMutex>::INIT, pool),
        })
    };
    control
}

/// Borrows the pool of a handle.
///
/// # Safety
/// `h` is NULL or a handle from [`xPoolCreate`] whose buffer is still given to the pool.
unsafe fn pool<'a>(h: PoolHandle_t) -> Option<&'a PoolControl> {
    // SAFETY: the caller's contract; shared access only, the pool is behind its lock.
    unsafe { h.as_ref() }
}

/// Extra: a block of the pool, or NULL when every block is in use (the failed-allocation hook is
/// not called: pools are not the heap).
///
/// # Time complexity
/// O(1).
///
/// # Safety
/// `xPool` is NULL or a live handle from [`xPoolCreate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pvPoolAlloc(xPool: PoolHandle_t) -> *mut c_void {
    // SAFETY: forwarded contract.
    match unsafe { pool(xPool) } {
        Some(c) => c
            .pool
            .lock()
            .alloc_block()
            .map_or(ptr::null_mut(), |p| p.as_ptr().cast()),
        None => ptr::null_mut(),
    }
}

/// Extra: returns a block to its pool. NULL is a no-op; a pointer that is not an allocated block
/// of this pool (double free, foreign or interior pointer) is refused, counted and reported like a
/// bad `vPortFree` (the heap's fault handler, or `vAssertCalled`).
///
/// # Time complexity
/// O(1).
///
/// # Safety
/// `xPool` is a live handle from [`xPoolCreate`]; `pv` is NULL or a block of it not used after
/// the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vPoolFree(xPool: PoolHandle_t, pv: *mut c_void) {
    let Some(p) = NonNull::new(pv.cast::<u8>()) else {
        return;
    };
    // SAFETY: forwarded contract.
    let r = match unsafe { pool(xPool) } {
        // SAFETY: forwarded contract; the pool refuses what is not one of its allocated blocks.
        Some(c) => unsafe { c.pool.lock().free_block(p) },
        None => Err(PoolError::NotInPool),
    };
    if let Err(e) = r {
        let handler = heap().fault_handler;
        hooks::report_fault(handler, pv, fault_code(e));
    }
}

/// Extra: blocks free now (0 for NULL).
///
/// # Safety
/// `xPool` is NULL or a live handle from [`xPoolCreate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn uxPoolGetFreeBlocks(xPool: PoolHandle_t) -> usize {
    // SAFETY: forwarded contract.
    unsafe { pool(xPool) }.map_or(0, |c| c.pool.lock().blocks_free())
}

/// Extra: the lowest number of free blocks since the pool was created (0 for NULL).
///
/// # Safety
/// `xPool` is NULL or a live handle from [`xPoolCreate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn uxPoolGetMinimumEverFreeBlocks(xPool: PoolHandle_t) -> usize {
    // SAFETY: forwarded contract.
    unsafe { pool(xPool) }.map_or(0, |c| c.pool.lock().min_ever_free_blocks())
}

/// Extra: how many blocks the pool has (0 for NULL).
///
/// # Safety
/// `xPool` is NULL or a live handle from [`xPoolCreate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn uxPoolGetCapacity(xPool: PoolHandle_t) -> usize {
    // SAFETY: forwarded contract.
    unsafe { pool(xPool) }.map_or(0, |c| c.pool.lock().capacity())
}

/// Extra: the size of each block (the request rounded up to its alignment; 0 for NULL).
///
/// # Safety
/// `xPool` is NULL or a live handle from [`xPoolCreate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn uxPoolGetBlockSize(xPool: PoolHandle_t) -> usize {
    // SAFETY: forwarded contract.
    unsafe { pool(xPool) }.map_or(0, |c| c.pool.lock().block_size())
}

/// Extra: frees refused by the pool so far (0 for NULL).
///
/// # Safety
/// `xPool` is NULL or a live handle from [`xPoolCreate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn uxPoolGetRejectedFreeCount(xPool: PoolHandle_t) -> usize {
    // SAFETY: forwarded contract.
    unsafe { pool(xPool) }.map_or(0, |c| c.pool.lock().stats().rejected_frees)
}

/// Extra: the pool's integrity check, as [`xPortCheckHeap`](crate::xPortCheckHeap): `heapCHECK_OK`
/// or a `heapCHECK_…` code with the offending block's address in `*puxFaultAddress`.
///
/// # Time complexity
/// O(blocks).
///
/// # Safety
/// `xPool` is a live handle from [`xPoolCreate`]; `puxFaultAddress` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xPoolCheck(xPool: PoolHandle_t, puxFaultAddress: *mut usize) -> i32 {
    // SAFETY: forwarded contract.
    let Some(c) = (unsafe { pool(xPool) }) else {
        return crate::heapCHECK_OTHER;
    };
    let (code, address) = match c.pool.lock().check() {
        Ok(()) => (crate::heapCHECK_OK, 0),
        Err(e) => (crate::check_code(e.kind), e.address),
    };
    if !puxFaultAddress.is_null() {
        // SAFETY: the caller's contract: NULL or a writable `uintptr_t`.
        unsafe { puxFaultAddress.write(address) };
    }
    code
}
