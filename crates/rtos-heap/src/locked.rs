//! The locked face of every scheme: `Sync`, usable in a `static`, `GlobalAlloc` and `Allocator`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr::{self, NonNull};

use lock_api::{GuardNoSend, Mutex, MutexGuard, RawMutex};

use crate::RawHeap;
use crate::error::{AllocError, FreeError};
use crate::stats::HeapStats;

/// A bad free seen on a path that cannot return an error ([`GlobalAlloc::dealloc`],
/// [`Allocator::deallocate`](allocator_api2::alloc::Allocator::deallocate)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The pointer that was refused.
    pub address: usize,
    /// Why it was refused.
    pub error: FreeError,
}

/// Callbacks of a [`LockedHeap`], FreeRTOS's application hooks. Both run *after* the lock is
/// released, so they may use the heap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hooks {
    /// `vApplicationMallocFailedHook`: called with the request and the reason after every failed
    /// allocation (calloc overflow excepted, as in FreeRTOS).
    pub alloc_failed: Option<fn(Layout, AllocError)>,
    /// Called for every refused free on the global/allocator path. Without it the fault is only
    /// counted ([`HeapStats::rejected_frees`]) and ignored; the heap is never changed by it.
    pub fault: Option<fn(Fault)>,
}

impl Hooks {
    /// No hooks: failures are counted and ignored.
    pub const NONE: Hooks = Hooks {
        alloc_failed: None,
        fault: None,
    };
}

/// A raw [`critical_section`] as a `lock_api` mutex: the default lock of [`LockedHeap`].
///
/// Locking acquires a critical section (interrupts masked on a single-core MCU; whatever the
/// `critical-section` implementation the application chose does elsewhere) and holds it until the
/// heap operation ends. rtos-heap never picks the implementation: the application links one
/// (e.g. `cortex-m`'s `critical-section-single-core`, or `critical-section`'s `std` feature).
///
/// Re-entering the lock from inside a heap operation (which a hook cannot do, since hooks run after
/// the lock is released) panics rather than deadlocking.
pub struct CriticalSectionRawMutex {
    locked: Cell<bool>,
    restore: Cell<critical_section::RestoreState>,
}

// SAFETY: both cells are read and written only while the critical section is held, which excludes
// every other context that could touch them.
unsafe impl Sync for CriticalSectionRawMutex {}
// SAFETY: as above; the mutex holds no reference to anything.
unsafe impl Send for CriticalSectionRawMutex {}

// SAFETY: `try_lock` succeeds only when `locked` was false, under the critical section, so at most
// one context holds the mutex; `unlock` releases exactly the critical section `lock` acquired.
unsafe impl RawMutex for CriticalSectionRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = CriticalSectionRawMutex {
        locked: Cell::new(false),
        restore: Cell::new(critical_section::RestoreState::invalid()),
    };
    type GuardMarker = GuardNoSend;

    // `#[inline]` keeps these out of the crate's own code unit, so a program that never uses this
    // lock never references the critical-section symbols.
    #[inline]
    fn lock(&self) {
        assert!(
            self.try_lock(),
            "rtos-heap: heap lock re-entered from inside a heap operation"
        );
    }

    #[inline]
    fn try_lock(&self) -> bool {
        // SAFETY: the restore state is kept and handed back to `release` exactly once, in `unlock`
        // (or right here when the mutex is already held by this context).
        let state = unsafe { critical_section::acquire() };
        if self.locked.get() {
            // SAFETY: releases the section acquired just above, innermost first.
            unsafe { critical_section::release(state) };
            return false;
        }
        self.locked.set(true);
        self.restore.set(state);
        true
    }

    #[inline]
    unsafe fn unlock(&self) {
        let state = self.restore.get();
        self.locked.set(false);
        // SAFETY: the caller holds the mutex, so `state` is the one its `lock` acquired.
        unsafe { critical_section::release(state) };
    }
}

/// A scheme behind a lock: `Sync`, `const`-constructible for a `static`, a [`GlobalAlloc`] and an
/// [`allocator_api2::alloc::Allocator`].
///
/// `R` is the lock: [`CriticalSectionRawMutex`] by default, or any [`lock_api::RawMutex`] (e.g.
/// `spin::Mutex`'s raw type, or the FreeRTOS scheduler-suspension lock of the C ABI crate).
///
/// Errors that the global paths cannot return go to [`Hooks`]; nothing ever unwinds from the heap.
///
/// # Examples
///
/// ```
/// use rtos_heap::{Heap4, LockedHeap, StaticRegion, RawHeap};
///
/// static HEAP: LockedHeap<Heap4> = LockedHeap::new(Heap4::new());
/// static MEMORY: StaticRegion<4096> = StaticRegion::new();
///
/// HEAP.lock().init(MEMORY.take().unwrap()).unwrap();
/// let mut v = allocator_api2::vec::Vec::new_in(&HEAP);
/// v.extend_from_slice(&[1u32, 2, 3]);
/// assert_eq!(HEAP.stats().successful_allocations, 1);
/// ```
pub struct LockedHeap<H, R: RawMutex = CriticalSectionRawMutex> {
    heap: Mutex<R, H>,
    hooks: Hooks,
}

impl<H, R: RawMutex> LockedHeap<H, R> {
    /// Wraps a heap, with no hooks.
    pub const fn new(heap: H) -> Self {
        Self::with_hooks(heap, Hooks::NONE)
    }

    /// Wraps a heap with hooks.
    pub const fn with_hooks(heap: H, hooks: Hooks) -> Self {
        LockedHeap {
            heap: Mutex::const_new(R::INIT, heap),
            hooks,
        }
    }

    /// Locks the heap for direct use of the raw API (`init`, `check`, `blocks`, …).
    pub fn lock(&self) -> MutexGuard<'_, R, H> {
        self.heap.lock()
    }
}

impl<H: RawHeap, R: RawMutex> LockedHeap<H, R> {
    /// [`RawHeap::stats`] under the lock.
    pub fn stats(&self) -> HeapStats {
        self.heap.lock().stats()
    }

    /// [`RawHeap::free_bytes`] under the lock.
    pub fn free_bytes(&self) -> usize {
        self.heap.lock().free_bytes()
    }

    #[inline]
    fn alloc_or_hook(&self, layout: Layout) -> Option<NonNull<u8>> {
        if let Some(hook) = self.hooks.alloc_failed {
            return self.alloc_reporting(layout, hook);
        }
        // Nobody to tell: why an allocation failed is not needed.
        self.heap.lock().allocate(layout).ok()
    }

    /// An allocation whose failure goes to `hook`: out of line, so that the path without a hook
    /// does not carry the error.
    #[inline(never)]
    fn alloc_reporting(&self, layout: Layout, hook: fn(Layout, AllocError)) -> Option<NonNull<u8>> {
        let r = self.heap.lock().allocate(layout);
        r.map_err(|e| hook(layout, e)).ok()
    }

    #[cold]
    #[inline(never)]
    fn fault(&self, ptr: NonNull<u8>, error: FreeError) {
        if let Some(hook) = self.hooks.fault {
            hook(Fault {
                address: ptr.as_ptr() as usize,
                error,
            });
        }
    }

    /// Frees under the lock; a refusal goes to the fault hook.
    ///
    /// # Safety
    /// As [`RawHeap::free`].
    #[inline]
    unsafe fn free_or_fault(&self, ptr: NonNull<u8>, layout: Layout) {
        if let Some(hook) = self.hooks.fault {
            // SAFETY: forwarded contract.
            return unsafe { self.free_reporting(ptr, layout, hook) };
        }
        // Nobody to tell: the result is not needed (a refused free changed nothing), so the call
        // is the last thing done.
        // SAFETY: forwarded contract.
        let _ = unsafe { self.heap.lock().free(ptr, Some(layout)) };
    }

    /// A free whose refusal goes to `hook`: out of line, so that the path without a hook stays a
    /// plain call.
    ///
    /// # Safety
    /// As [`GlobalAlloc::dealloc`].
    #[inline(never)]
    unsafe fn free_reporting(&self, ptr: NonNull<u8>, layout: Layout, hook: fn(Fault)) {
        // SAFETY: forwarded contract.
        let r = unsafe { self.heap.lock().free(ptr, Some(layout)) };
        if let Err(error) = r {
            hook(Fault {
                address: ptr.as_ptr() as usize,
                error,
            });
        }
    }

    unsafe fn realloc_or_hook(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: forwarded contract.
        let r = unsafe { self.heap.lock().reallocate(ptr, old, new_size) };
        match r {
            Ok(p) => Some(p),
            Err(crate::ReallocError::Free(e)) => {
                self.fault(ptr, e);
                None
            }
            Err(crate::ReallocError::Alloc(e)) => {
                if let Some(hook) = self.hooks.alloc_failed {
                    // `new_size` and the old alignment form a valid layout: they were just used.
                    if let Ok(l) = Layout::from_size_align(new_size, old.align()) {
                        hook(l, e);
                    }
                }
                None
            }
        }
    }
}

// SAFETY: blocks come from the heap under the lock, never overlap while live, and satisfy the
// layout (every scheme honours any power-of-two alignment); refused frees change nothing.
unsafe impl<H: RawHeap, R: RawMutex> GlobalAlloc for LockedHeap<H, R> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.alloc_or_hook(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Zeroed after the lock is released, as FreeRTOS's calloc does.
        match self.alloc_or_hook(layout) {
            Some(p) => {
                // SAFETY: a fresh block of `layout.size()` bytes.
                unsafe { p.as_ptr().write_bytes(0, layout.size()) };
                p.as_ptr()
            }
            None => ptr::null_mut(),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` was allocated here with `layout`.
            unsafe { self.free_or_fault(p, layout) };
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(p) = NonNull::new(ptr) else {
            return ptr::null_mut();
        };
        // SAFETY: GlobalAlloc's contract: `ptr` was allocated here with `layout`.
        unsafe { self.realloc_or_hook(p, layout, new_size) }
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }
}

fn dangling(layout: Layout) -> NonNull<[u8]> {
    // A zero-size block needs no memory: an aligned dangling pointer, as `Vec` uses.
    let p = ptr::without_provenance_mut::<u8>(layout.align());
    // SAFETY: an alignment is never zero.
    NonNull::slice_from_raw_parts(unsafe { NonNull::new_unchecked(p) }, 0)
}

// SAFETY: as for `GlobalAlloc`; zero-size requests get a dangling pointer that is never passed to
// the heap; a block stays valid until deallocated, whichever clone of `&LockedHeap` frees it.
unsafe impl<H: RawHeap, R: RawMutex> allocator_api2::alloc::Allocator for LockedHeap<H, R> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        self.alloc_or_hook(layout)
            .map(|p| NonNull::slice_from_raw_parts(p, layout.size()))
            .ok_or(allocator_api2::alloc::AllocError)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: Allocator's contract: `ptr` is a live block of this allocator with `layout`.
            unsafe { self.free_or_fault(ptr, layout) };
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: forwarded contract (`ptr` was allocated here with `old`).
        unsafe { self.resize(ptr, old, new) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: forwarded contract (`ptr` was allocated here with `old`).
        unsafe { self.resize(ptr, old, new) }
    }
}

impl<H: RawHeap, R: RawMutex> LockedHeap<H, R> {
    /// `grow`/`shrink` of the `Allocator` face.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap allocated with `old` (dangling when `old.size()` is 0).
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        use allocator_api2::alloc::{AllocError as E, Allocator};
        if old.size() == 0 || new.size() == 0 || new.align() != old.align() {
            // Different alignment or a zero-size side: allocate, copy, free.
            let fresh = self.allocate(new)?;
            // SAFETY: distinct blocks; the copy is bounded by both sizes.
            unsafe {
                ptr::copy_nonoverlapping(
                    ptr.as_ptr(),
                    fresh.cast::<u8>().as_ptr(),
                    old.size().min(new.size()),
                );
                self.deallocate(ptr, old);
            }
            return Ok(fresh);
        }
        // SAFETY: forwarded contract.
        let p = unsafe { self.realloc_or_hook(ptr, old, new.size()) }.ok_or(E)?;
        Ok(NonNull::slice_from_raw_parts(p, new.size()))
    }
}
