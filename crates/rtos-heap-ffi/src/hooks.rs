//! The application hooks of FreeRTOSConfig.h, each behind its cargo feature. All are called with
//! the heap lock released, except the canary, which FreeRTOS also fetches inside its lazy
//! initialisation.

use core::ffi::c_void;

use crate::HeapFaultHandler_t;

/// `vApplicationMallocFailedHook()` (feature `malloc-failed-hook`): after every allocation that
/// returns NULL, except a `pvPortCalloc` whose `count * size` overflows (as FreeRTOS).
pub(crate) fn malloc_failed() {
    #[cfg(feature = "malloc-failed-hook")]
    {
        unsafe extern "C" {
            fn vApplicationMallocFailedHook();
        }
        // SAFETY: an application hook with no arguments, called with the heap unlocked, as FreeRTOS
        // calls it.
        unsafe { vApplicationMallocFailedHook() };
    }
}

/// `vApplicationGetRandomHeapCanary(&canary)` (feature `heap-protector`).
#[cfg(all(
    feature = "heap-protector",
    any(rtos_heap_scheme = "4", rtos_heap_scheme = "5")
))]
pub(crate) fn random_heap_canary() -> usize {
    unsafe extern "C" {
        /// `portPOINTER_SIZE_TYPE` is pointer-sized on every port the protector supports.
        fn vApplicationGetRandomHeapCanary(pxHeapCanary: *mut usize);
    }
    let mut canary = 0usize;
    // SAFETY: the hook writes one pointer-sized word through a valid pointer to a local.
    unsafe { vApplicationGetRandomHeapCanary(&mut canary) };
    canary
}

/// A refused free (or realloc, or region list): the registered handler if there is one, else
/// `vAssertCalled` with feature `assert-hook`, else nothing (the core counted it).
pub(crate) fn report_fault(handler: HeapFaultHandler_t, address: *mut c_void, reason: i32) {
    match handler {
        // SAFETY: a handler the application registered, called with the heap unlocked.
        Some(h) => unsafe { h(address, reason) },
        None => assert_called(reason),
    }
}

/// `vAssertCalled("rtos-heap-ffi", reason)` with feature `assert-hook`, else nothing.
fn assert_called(reason: i32) {
    #[cfg(feature = "assert-hook")]
    {
        unsafe extern "C" {
            /// The `configASSERT` target of the FreeRTOS demos.
            fn vAssertCalled(pcFile: *const core::ffi::c_char, ulLine: core::ffi::c_ulong);
        }
        // SAFETY: a NUL-terminated static string and the reason code as the "line".
        unsafe { vAssertCalled(c"rtos-heap-ffi".as_ptr(), reason as core::ffi::c_ulong) };
    }
    #[cfg(not(feature = "assert-hook"))]
    let _ = reason;
}

/// Stops the program where no heap operation can go on (the heap lock re-entered): an abort on a
/// hosted target, a spin on bare metal (as the library's panic handler), with no panic machinery.
#[cfg(feature = "critical-section")]
#[cold]
pub(crate) fn halt() -> ! {
    #[cfg(not(target_os = "none"))]
    std::process::abort();
    #[cfg(target_os = "none")]
    loop {
        core::hint::spin_loop();
    }
}
