//! The lock around the heap: the kernel's scheduler suspension (default, as FreeRTOS's heap_N.c)
//! or a plain critical section (feature `critical-section`).

#[cfg(not(feature = "critical-section"))]
mod kernel {
    use core::ffi::c_long;

    use lock_api::{GuardNoSend, RawMutex};

    unsafe extern "C" {
        /// FreeRTOS `vTaskSuspendAll()`: no task switch until the matching `xTaskResumeAll()`.
        fn vTaskSuspendAll();
        /// FreeRTOS `xTaskResumeAll()`; its `BaseType_t` result (whether a switch happened) is
        /// ignored, as heap_N.c ignores it.
        fn xTaskResumeAll() -> c_long;
    }

    /// `vTaskSuspendAll()` / `xTaskResumeAll()` as a [`lock_api::RawMutex`]: the lock FreeRTOS's own
    /// heap files use.
    ///
    /// Holds no state of its own: suspensions nest in the kernel, so a task that already suspended
    /// the scheduler may call the heap. As in FreeRTOS, the heap must not be called from an
    /// interrupt handler.
    pub struct SchedulerLock;

    // SAFETY: while the scheduler is suspended no other task runs (on SMP kernels no other task
    // enters a suspended-scheduler section either), and interrupt handlers never call the heap (the
    // FreeRTOS rule this library keeps): so at most one context is between `lock` and `unlock`.
    // The heap never calls back into application code between the two, except
    // `vApplicationGetRandomHeapCanary`, which must not call the heap (as in FreeRTOS).
    unsafe impl RawMutex for SchedulerLock {
        #[allow(clippy::declare_interior_mutable_const)]
        const INIT: Self = SchedulerLock;
        type GuardMarker = GuardNoSend;

        fn lock(&self) {
            // SAFETY: a kernel call with no arguments; the kernel allows it from any task.
            unsafe { vTaskSuspendAll() };
        }

        fn try_lock(&self) -> bool {
            self.lock();
            true
        }

        unsafe fn unlock(&self) {
            // SAFETY: pairs with the `vTaskSuspendAll` of `lock`, as the caller's contract says.
            unsafe { xTaskResumeAll() };
        }
    }
}

/// The lock type of this build.
#[cfg(not(feature = "critical-section"))]
pub(crate) type Lock = kernel::SchedulerLock;

#[cfg(feature = "critical-section")]
mod cs {
    use lock_api::{GuardNoSend, RawMutex};
    use rtos_heap::CriticalSectionRawMutex;

    /// The core's [`CriticalSectionRawMutex`], stopping the program instead of panicking when the
    /// heap is re-entered from inside a heap operation (only `vApplicationGetRandomHeapCanary`
    /// could, which FreeRTOS forbids too): the C library links no panic path.
    pub struct CsLock(CriticalSectionRawMutex);

    // SAFETY: every method forwards to the core's mutex, whose guarantees hold; `lock` never
    // returns without the mutex held.
    unsafe impl RawMutex for CsLock {
        #[allow(clippy::declare_interior_mutable_const)]
        const INIT: Self = CsLock(CriticalSectionRawMutex::INIT);
        type GuardMarker = GuardNoSend;

        #[inline]
        fn lock(&self) {
            if !self.0.try_lock() {
                crate::hooks::halt();
            }
        }

        #[inline]
        fn try_lock(&self) -> bool {
            self.0.try_lock()
        }

        #[inline]
        unsafe fn unlock(&self) {
            // SAFETY: forwarded contract: the caller holds the mutex.
            unsafe { self.0.unlock() }
        }
    }
}

/// The lock type of this build.
#[cfg(feature = "critical-section")]
pub(crate) type Lock = cs::CsLock;
