//! The one heap of the library: the scheme chosen by the cargo feature, its memory, and the
//! FreeRTOSConfig.h options applied to it.

#[cfg(not(rtos_heap_scheme = "3"))]
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::HeapFaultHandler_t;
use crate::config::BYTE_ALIGNMENT;
use crate::lock::Lock;

/// The target layout: the machine's pointer width, `portBYTE_ALIGNMENT` from the build.
#[allow(dead_code)]
pub(crate) type Port = rtos_heap::Target<{ core::mem::size_of::<usize>() }, BYTE_ALIGNMENT>;

/// The scheme of this build.
#[cfg(rtos_heap_scheme = "1")]
pub(crate) type Scheme = rtos_heap::Heap1<Port>;
/// The scheme of this build.
#[cfg(rtos_heap_scheme = "2")]
pub(crate) type Scheme = rtos_heap::Heap2<Port>;
/// The scheme of this build.
#[cfg(rtos_heap_scheme = "3")]
pub(crate) type Scheme = rtos_heap::Heap3<crate::libc::Libc>;
/// The free-block index of heap_4/heap_5: FreeRTOS's list, or with the `tree-index` feature the
/// O(log n) tree (same placement and statistics; portBYTE_ALIGNMENT 4 does not build with it).
#[cfg(not(feature = "tree-index"))]
#[allow(dead_code)]
pub(crate) type Index = rtos_heap::AddressList;
/// The free-block index of heap_4/heap_5 (see above).
#[cfg(feature = "tree-index")]
#[allow(dead_code)]
pub(crate) type Index = rtos_heap::AddressTree;
/// The scheme of this build.
#[cfg(rtos_heap_scheme = "4")]
pub(crate) type Scheme = rtos_heap::Heap4<Port, Index>;
/// The scheme of this build.
#[cfg(rtos_heap_scheme = "5")]
pub(crate) type Scheme = rtos_heap::Heap5<Port, { crate::config::MAX_REGIONS }, Index>;

const fn new_scheme() -> Scheme {
    #[cfg(rtos_heap_scheme = "3")]
    {
        rtos_heap::Heap3::new(crate::libc::LIBC)
    }
    #[cfg(not(rtos_heap_scheme = "3"))]
    {
        Scheme::new()
    }
}

/// The heap and what the C side configured or registered.
pub(crate) struct Ffi {
    /// The scheme.
    pub heap: Scheme,
    /// The options were applied and (heap_1/2/4) `ucHeap` given to the scheme.
    ready: bool,
    /// heap_4 with the protector: fetch the canary before the next allocation lays the heap out.
    #[allow(dead_code)]
    canary_due: bool,
    /// `vPortSetHeapFaultHandler`.
    pub fault_handler: HeapFaultHandler_t,
}

impl Ffi {
    const fn new() -> Self {
        Ffi {
            heap: new_scheme(),
            ready: false,
            canary_due: true,
            fault_handler: None,
        }
    }

    /// Applies the build options and gives heap_1/2/4 its array, once (lazily, as FreeRTOS).
    #[inline]
    pub fn prepare(&mut self) {
        if !self.ready {
            self.prepare_once();
        }
    }

    /// The first [`prepare`](Self::prepare): out of line (it runs once; every entry point calls
    /// `prepare`).
    #[cold]
    #[inline(never)]
    fn prepare_once(&mut self) {
        self.ready = true;
        #[cfg(any(rtos_heap_scheme = "1", rtos_heap_scheme = "2", rtos_heap_scheme = "4"))]
        {
            if let Some(start) = core::ptr::NonNull::new(heap_array()) {
                // SAFETY: `ucHeap` is `TOTAL_HEAP_SIZE` bytes that nothing but this heap uses, for
                // the life of the program; `init_from_raw` only records it (blocks are written
                // lazily).
                let r = unsafe { self.heap.init_from_raw(start, crate::TOTAL_HEAP_SIZE) };
                // Cannot fail: build.rs keeps TOTAL_HEAP_SIZE >= 64 and the array is given once.
                debug_assert!(r.is_ok());
            }
        }
        #[cfg(all(
            feature = "clear-on-free",
            any(rtos_heap_scheme = "2", rtos_heap_scheme = "4", rtos_heap_scheme = "5")
        ))]
        self.heap.set_clear_on_free(true);
    }

    /// [`prepare`](Self::prepare), and for heap_4 with the protector the canary, fetched before the
    /// allocation that lays the heap out (FreeRTOS fetches it at its lazy initialisation).
    pub fn prepare_alloc(&mut self) {
        self.prepare();
        #[cfg(all(feature = "heap-protector", rtos_heap_scheme = "4"))]
        if self.canary_due {
            self.canary_due = false;
            // Before the first allocation the blocks are not laid out, so this cannot fail.
            let _ = self.heap.set_canary(crate::hooks::random_heap_canary());
        }
    }

    /// `vPortHeapResetState`.
    pub fn reset(&mut self) {
        #[cfg(rtos_heap_scheme = "5")]
        {
            // FreeRTOS forgets the regions: vPortDefineHeapRegions must be called again.
            self.heap = new_scheme();
            self.ready = false;
        }
        #[cfg(not(rtos_heap_scheme = "5"))]
        {
            use rtos_heap::RawHeap;
            self.prepare();
            // SAFETY: vPortHeapResetState's contract: every pointer handed out before is dead.
            unsafe { self.heap.reset() };
            self.canary_due = true;
        }
    }
}

/// The heap, behind the build's lock. Reach it through [`heap`], which keeps [`FREE_BYTES`] and
/// [`MIN_EVER_FREE`] up to date.
static HEAP: lock_api::Mutex<Lock, Ffi> =
    lock_api::Mutex::const_new(<Lock as lock_api::RawMutex>::INIT, Ffi::new());

/// Free bytes as of the last heap operation, for `xPortGetFreeHeapSize`: one aligned word read
/// without the lock, as FreeRTOS reads `xFreeBytesRemaining` (a word-sized aligned load is
/// atomic on every target, and the value is only ever a snapshot). Before anything ran: what
/// FreeRTOS reports then (heap_1/2: the adjusted array; heap_4/5: 0).
#[cfg(not(rtos_heap_scheme = "3"))]
pub(crate) static FREE_BYTES: AtomicUsize = AtomicUsize::new(INITIAL_FREE);
/// The minimum ever free bytes as of the last heap operation (`xPortGetMinimumEverFreeHeapSize`).
#[cfg(not(rtos_heap_scheme = "3"))]
pub(crate) static MIN_EVER_FREE: AtomicUsize = AtomicUsize::new(INITIAL_FREE);

#[cfg(any(rtos_heap_scheme = "1", rtos_heap_scheme = "2"))]
const INITIAL_FREE: usize = crate::TOTAL_HEAP_SIZE - BYTE_ALIGNMENT;
#[cfg(any(rtos_heap_scheme = "4", rtos_heap_scheme = "5"))]
const INITIAL_FREE: usize = 0;

/// The heap, locked; the published counters are refreshed when the guard goes (before the lock
/// is released).
pub(crate) fn heap() -> HeapGuard {
    HeapGuard(HEAP.lock())
}

/// A locked heap (see [`heap`]).
pub(crate) struct HeapGuard(lock_api::MutexGuard<'static, Lock, Ffi>);

impl core::ops::Deref for HeapGuard {
    type Target = Ffi;
    fn deref(&self) -> &Ffi {
        &self.0
    }
}

impl core::ops::DerefMut for HeapGuard {
    fn deref_mut(&mut self) -> &mut Ffi {
        &mut self.0
    }
}

impl Drop for HeapGuard {
    #[inline]
    fn drop(&mut self) {
        #[cfg(not(rtos_heap_scheme = "3"))]
        {
            use rtos_heap::RawHeap;
            FREE_BYTES.store(self.0.heap.free_bytes(), Ordering::Relaxed);
            MIN_EVER_FREE.store(self.0.heap.min_ever_free_bytes(), Ordering::Relaxed);
        }
    }
}

#[cfg(all(
    any(rtos_heap_scheme = "1", rtos_heap_scheme = "2", rtos_heap_scheme = "4"),
    not(feature = "application-allocated-heap")
))]
fn heap_array() -> *mut u8 {
    use core::cell::UnsafeCell;

    /// `static uint8_t ucHeap[configTOTAL_HEAP_SIZE]`, aligned so that no bytes are lost to
    /// aligning its start.
    #[repr(C, align(16))]
    struct HeapArray(UnsafeCell<[u8; crate::TOTAL_HEAP_SIZE]>);

    // SAFETY: the array is reached only through `heap_array`, whose pointer is handed to the heap
    // once, under the heap lock (`Ffi::prepare`).
    unsafe impl Sync for HeapArray {}

    static UC_HEAP: HeapArray = HeapArray(UnsafeCell::new([0; crate::TOTAL_HEAP_SIZE]));

    UC_HEAP.0.get().cast::<u8>()
}

#[cfg(all(
    any(rtos_heap_scheme = "1", rtos_heap_scheme = "2", rtos_heap_scheme = "4"),
    feature = "application-allocated-heap"
))]
fn heap_array() -> *mut u8 {
    unsafe extern "C" {
        /// configAPPLICATION_ALLOCATED_HEAP: `uint8_t ucHeap[configTOTAL_HEAP_SIZE]` of the
        /// application.
        static mut ucHeap: [u8; crate::TOTAL_HEAP_SIZE];
    }
    // Only the address of the application's array is taken; no reference is made.
    (&raw mut ucHeap).cast::<u8>()
}
