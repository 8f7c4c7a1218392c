//! The library as `cargo test --workspace` builds it (default features: heap_4, the library's own
//! `ucHeap` of `RTOS_HEAP_TOTAL_HEAP_SIZE` bytes, the kernel lock, no hooks), called through its
//! exported functions from Rust. The kernel's suspend/resume are provided here and counted.
#![cfg(not(any(
    feature = "heap_1",
    feature = "heap_2",
    feature = "heap_3",
    feature = "heap_5"
)))]

use std::ffi::c_void;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use rtos_heap_ffi::*;

static DEPTH: AtomicIsize = AtomicIsize::new(0);
static SUSPENDS: AtomicUsize = AtomicUsize::new(0);

/// The kernel's `vTaskSuspendAll`, counted (one test thread uses the heap).
#[unsafe(no_mangle)]
pub extern "C" fn vTaskSuspendAll() {
    DEPTH.fetch_add(1, Ordering::SeqCst);
    SUSPENDS.fetch_add(1, Ordering::SeqCst);
}

/// The kernel's `xTaskResumeAll`.
#[unsafe(no_mangle)]
pub extern "C" fn xTaskResumeAll() -> std::ffi::c_long {
    assert!(
        DEPTH.fetch_sub(1, Ordering::SeqCst) > 0,
        "resume without suspend"
    );
    0
}

#[test]
fn default_build_is_heap_4_over_its_own_array() {
    // heap_4 before its lazy initialisation (semantics §4).
    assert_eq!(xPortGetFreeHeapSize(), 0);
    let hs = 2 * size_of::<usize>(); // 64-bit host, portBYTE_ALIGNMENT 8
    let a = pvPortMalloc(100);
    assert!(!a.is_null());
    assert_eq!(a as usize % 8, 0);
    // The library's ucHeap is aligned: nothing skipped, only the end marker costs a header.
    let usable = TOTAL_HEAP_SIZE - hs;
    assert_eq!(xPortGetFreeHeapSize(), usable - 120);
    let b = pvPortCalloc(10, 10);
    // SAFETY: a fresh block of 100 bytes.
    let zeroed = unsafe { std::slice::from_raw_parts(b.cast::<u8>(), 100) };
    assert!(zeroed.iter().all(|&x| x == 0));
    assert_eq!(b as usize - a as usize, 120);

    // No hook is linked: failures just return NULL (the link of this test would fail otherwise).
    assert!(pvPortMalloc(0).is_null());
    assert!(pvPortMalloc(TOTAL_HEAP_SIZE).is_null());
    assert_eq!(xPortGetFailedAllocationCount(), 2);

    // SAFETY: `a` and `b` came from pvPortMalloc/pvPortCalloc; the second free of `a` is refused.
    unsafe {
        vPortFree(a);
        vPortFree(a);
        vPortFree(std::ptr::null_mut::<c_void>());
        vPortFree(b);
    }
    assert_eq!(xPortGetRejectedFreeCount(), 1);
    let mut s = HeapStats_t::default();
    // SAFETY: a valid HeapStats_t.
    unsafe { vPortGetHeapStats(&mut s) };
    assert_eq!(s.xAvailableHeapSpaceInBytes, usable);
    assert_eq!(s.xNumberOfFreeBlocks, 1);
    assert_eq!(s.xNumberOfSuccessfulAllocations, 2);
    assert_eq!(s.xNumberOfSuccessfulFrees, 2);
    assert_eq!(s.xMinimumEverFreeBytesRemaining, usable - 240);
    // SAFETY: NULL is allowed.
    let code = unsafe { xPortCheckHeap(std::ptr::null_mut()) };
    assert_eq!(code, heapCHECK_OK);
    assert!(SUSPENDS.load(Ordering::SeqCst) >= 10);
    assert_eq!(DEPTH.load(Ordering::SeqCst), 0);
}
