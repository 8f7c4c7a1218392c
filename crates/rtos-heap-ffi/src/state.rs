//! The one heap of the library: the scheme chosen by the cargo feature, its memory, and the
//! FreeRTOSConfig.h options applied to it.

use core::sync::atomic::AtomicUsize;
#[cfg(not(rtos_heap_scheme = "3"))]
use core::sync::atomic::Ordering;

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

/// The scheme as the program starts: heap_2/heap_4 hold `ucHeap` already (laid out at the first
/// allocation, as FreeRTOS), so no code runs to give it; heap_1 is given it at its first use.
const fn new_scheme() -> Scheme {
    #[cfg(rtos_heap_scheme = "3")]
    {
        rtos_heap::Heap3::new(crate::libc::LIBC)
    }
    #[cfg(rtos_heap_scheme = "1")]
    {
        Scheme::new()
    }
    #[cfg(any(rtos_heap_scheme = "2", rtos_heap_scheme = "4"))]
    {
        // SAFETY: `ucHeap` is `TOTAL_HEAP_SIZE` bytes that nothing but this heap uses, for the
        // life of the program (build.rs keeps TOTAL_HEAP_SIZE >= 64, so it holds a block).
        unsafe { Scheme::from_raw(heap_array(), crate::TOTAL_HEAP_SIZE) }
            .with_clear_on_free(cfg!(feature = "clear-on-free"))
    }
    #[cfg(rtos_heap_scheme = "5")]
    {
        Scheme::new().with_clear_on_free(cfg!(feature = "clear-on-free"))
    }
}

/// The heap and what the C side configured or registered.
pub(crate) struct Ffi {
    /// The scheme.
    pub heap: Scheme,
    /// heap_1: `ucHeap` was given to the scheme.
    #[cfg(rtos_heap_scheme = "1")]
    ready: bool,
    /// heap_4 with the protector: fetch the canary before the next allocation lays the heap out.
    #[cfg(all(feature = "heap-protector", rtos_heap_scheme = "4"))]
    canary_due: bool,
    /// `vPortSetHeapFaultHandler`.
    pub fault_handler: HeapFaultHandler_t,
}

impl Ffi {
    const fn new() -> Self {
        Ffi {
            heap: new_scheme(),
            #[cfg(rtos_heap_scheme = "1")]
            ready: false,
            #[cfg(all(feature = "heap-protector", rtos_heap_scheme = "4"))]
            canary_due: true,
            fault_handler: None,
        }
    }

    /// heap_1: gives it `ucHeap`, once (at the first use, as FreeRTOS). The other schemes start
    /// with everything they need ([`new_scheme`]).
    #[inline(always)]
    pub fn prepare(&mut self) {
        #[cfg(rtos_heap_scheme = "1")]
        if !self.ready {
            self.prepare_once();
        }
    }

    /// The first [`prepare`](Self::prepare): out of line (it runs once; every entry point calls
    /// `prepare`).
    #[cfg(rtos_heap_scheme = "1")]
    #[cold]
    #[inline(never)]
    fn prepare_once(&mut self) {
        self.ready = true;
        if let Some(start) = core::ptr::NonNull::new(heap_array()) {
            // SAFETY: `ucHeap` is `TOTAL_HEAP_SIZE` bytes that nothing but this heap uses, for
            // the life of the program.
            let r = unsafe { self.heap.init_from_raw(start, crate::TOTAL_HEAP_SIZE) };
            // Cannot fail: build.rs keeps TOTAL_HEAP_SIZE >= 64 and the array is given once.
            debug_assert!(r.is_ok());
        }
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
        }
        #[cfg(not(rtos_heap_scheme = "5"))]
        {
            use rtos_heap::RawHeap;
            self.prepare();
            // SAFETY: vPortHeapResetState's contract: every pointer handed out before is dead.
            unsafe { self.heap.reset() };
            #[cfg(all(feature = "heap-protector", rtos_heap_scheme = "4"))]
            {
                self.canary_due = true;
            }
        }
    }
}

/// The free bytes and the minimum ever as of the last heap operation, for
/// `xPortGetFreeHeapSize` / `xPortGetMinimumEverFreeHeapSize`: one aligned word read each without
/// the lock, as FreeRTOS reads `xFreeBytesRemaining` (a word-sized aligned load is atomic on every
/// target, and the value is only ever a snapshot). Before anything ran: what FreeRTOS reports then
/// (heap_1/2: the adjusted array; heap_4/5: 0). heap_3 has none.
#[cfg_attr(rtos_heap_scheme = "3", allow(dead_code))]
pub(crate) struct Published {
    pub free: AtomicUsize,
    pub min_ever: AtomicUsize,
}

/// The library's one static: the heap behind the build's lock, and the counters it publishes.
/// Together, so that one address serves the lock, the heap and the stores of the counters.
#[repr(C)]
pub(crate) struct Shared {
    pub published: Published,
    /// Reach it through [`heap`], which keeps `published` up to date, or [`heap_read`].
    heap: lock_api::Mutex<Lock, Ffi>,
}

/// See [`Shared`].
pub(crate) static SHARED: Shared = Shared {
    published: Published {
        free: AtomicUsize::new(INITIAL_FREE),
        min_ever: AtomicUsize::new(INITIAL_FREE),
    },
    heap: lock_api::Mutex::const_new(<Lock as lock_api::RawMutex>::INIT, Ffi::new()),
};

#[cfg(any(rtos_heap_scheme = "1", rtos_heap_scheme = "2"))]
const INITIAL_FREE: usize = crate::TOTAL_HEAP_SIZE - BYTE_ALIGNMENT;
#[cfg(any(rtos_heap_scheme = "3", rtos_heap_scheme = "4", rtos_heap_scheme = "5"))]
const INITIAL_FREE: usize = 0;

/// The heap, locked; the published counters are refreshed when the guard goes (before the lock
/// is released).
pub(crate) fn heap() -> HeapGuard {
    HeapGuard(SHARED.heap.lock())
}

/// The heap, locked, for a call that changes no counter (statistics, checks, the block walk):
/// nothing is published when the guard goes.
pub(crate) fn heap_read() -> lock_api::MutexGuard<'static, Lock, Ffi> {
    SHARED.heap.lock()
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
            SHARED
                .published
                .free
                .store(self.0.heap.free_bytes(), Ordering::Relaxed);
            SHARED
                .published
                .min_ever
                .store(self.0.heap.min_ever_free_bytes(), Ordering::Relaxed);
        }
    }
}

#[cfg(all(
    any(rtos_heap_scheme = "1", rtos_heap_scheme = "2", rtos_heap_scheme = "4"),
    not(feature = "application-allocated-heap")
))]
const fn heap_array() -> *mut u8 {
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
const fn heap_array() -> *mut u8 {
    unsafe extern "C" {
        /// configAPPLICATION_ALLOCATED_HEAP: `uint8_t ucHeap[configTOTAL_HEAP_SIZE]` of the
        /// application.
        static mut ucHeap: [u8; crate::TOTAL_HEAP_SIZE];
    }
    // Only the address of the application's array is taken; no reference is made.
    (&raw mut ucHeap).cast::<u8>()
}
