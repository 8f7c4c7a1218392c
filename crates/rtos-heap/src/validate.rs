//! Heap hardening: the validation level compiled in, and the corruption fault hook.
//!
//! The level is chosen with cargo features of `rtos-heap` (see `docs/robustness.md` for what each
//! level detects):
//!
//! | level | feature | what is checked | cost |
//! |---|---|---|---|
//! | none | (default) | the freed block's own header ([`FreeError`](crate::FreeError)) | nothing beyond FreeRTOS |
//! | cheap | `validate-cheap` | and every free-list link the engine follows: inside a region, on the block grid, pointing at a header that is a free block (or an end marker), in list order | a few compares per link followed |
//! | full | `validate-full` | and [`check()`](crate::RawHeap::check) before every allocate / free / realloc | O(heap blocks) per operation |
//! | poisoning | `poison` | freed payloads are filled with [`POISON`] and verified when handed out again | O(block size) per free and allocation |
//!
//! `poison` combines with any level; `heap-protector` (link masking) combines with any level and
//! makes `validate-cheap` far stronger, since an overrun then cannot forge a link that passes.
//!
//! Features rather than a type parameter: the level is a property of a whole build (a debug image
//! versus a release image of the firmware), it must not change the heap types that the
//! application, the C ABI and the global allocator name, and a disabled level compiles to exactly
//! the code without it (no branch on a runtime flag in the hot paths).
//!
//! When a check fails, the operation is refused (the allocation fails, the free returns an error)
//! before anything was written, and the [fault hook](set_fault_hook) is called with a
//! [`Corruption`] naming the block. On [`Heap2`](crate::Heap2) / [`Heap4`](crate::Heap4) /
//! [`Heap5`](crate::Heap5), corruption found while allocating is returned as
//! [`AllocError::Corrupted`](crate::AllocError::Corrupted) and corruption found while freeing as
//! [`FreeError::Corrupted`](crate::FreeError::Corrupted) (a freed block's own header that does not
//! check out stays [`FreeError::NotABlock`](crate::FreeError::NotABlock), at every level).

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::error::CheckErrorKind;

/// The byte written over freed payloads with the `poison` feature.
pub const POISON: u8 = 0xA5;

/// Whether `validate-cheap` (or `validate-full`) is compiled in.
pub const CHEAP: bool = cfg!(feature = "validate-cheap");
/// Whether `validate-full` is compiled in.
pub const FULL: bool = cfg!(feature = "validate-full");
/// Whether `poison` is compiled in.
pub const POISONING: bool = cfg!(feature = "poison");

/// What kind of corruption a check found.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorruptionKind {
    /// A free-list link that leaves every region, leaves the block grid, breaks the list order, or
    /// leads to a header that is not a free block (an overwritten link, or a forged one).
    BadLink,
    /// The header in front of a freed pointer does not check out (its size word, or the
    /// allocated marker in its link word, was overwritten — or the pointer is an interior one).
    BadHeader,
    /// Bytes of a free block changed while it was free: a write after free (`poison`).
    UseAfterFree,
    /// [`check()`](crate::RawHeap::check) failed before an operation (`validate-full`).
    Check(CheckErrorKind),
}

/// Which operation found the corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// An allocation (`pvPortMalloc`, `allocate`, the allocation half of a realloc).
    Allocate,
    /// A free (`vPortFree`, `free`, the free half of a realloc).
    Free,
    /// The in-place part of a realloc.
    Reallocate,
    /// The free-list walk of `stats()` (`vPortGetHeapStats`), which stops at the bad link.
    Stats,
}

/// A corruption report: what, where, and during which operation. The operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Corruption {
    /// What the check found.
    pub kind: CorruptionKind,
    /// Host address of the offending block header (the block whose link or header is bad, or the
    /// block found poisoned); for a failed `check()`, the address it reports.
    pub address: usize,
    /// The refused operation.
    pub operation: Operation,
}

static HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Installs (or with `None` removes) the corruption fault hook, returning the previous one.
///
/// The hook is process-wide (every heap of the program reports to it, as FreeRTOS's application
/// hooks are global functions). It is called *inside* the failing heap operation — under the
/// lock of a [`LockedHeap`](crate::LockedHeap) — so it must not use the heap that faulted; log,
/// record or halt. It is never called without a validation feature.
pub fn set_fault_hook(hook: Option<fn(Corruption)>) -> Option<fn(Corruption)> {
    let new = hook.map_or(core::ptr::null_mut(), |f| f as *mut ());
    // load + store rather than `swap`: Armv6-M has no atomic read-modify-write. Installing hooks
    // from two contexts at once is the application's race to avoid.
    let old = HOOK.load(Ordering::Acquire);
    HOOK.store(new, Ordering::Release);
    if old.is_null() {
        None
    } else {
        // SAFETY: every non-null value stored in HOOK was made from a `fn(Corruption)` above.
        Some(unsafe { core::mem::transmute::<*mut (), fn(Corruption)>(old) })
    }
}

/// How many corruptions were reported since the program started (all heaps, all threads).
pub fn fault_count() -> usize {
    COUNT.load(Ordering::Relaxed)
}

/// Reports a corruption: counts it and calls the hook, if any.
#[cold]
#[inline(never)]
pub(crate) fn report(kind: CorruptionKind, address: usize, operation: Operation) {
    // Not `fetch_add` (absent on Armv6-M): reports come from inside heap operations, which the
    // heap's lock serialises; a lost count between two unlocked raw heaps is harmless.
    COUNT.store(
        COUNT.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    let p = HOOK.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: every non-null value stored in HOOK was made from a `fn(Corruption)`.
        let hook = unsafe { core::mem::transmute::<*mut (), fn(Corruption)>(p) };
        hook(Corruption {
            kind,
            address,
            operation,
        });
    }
}
