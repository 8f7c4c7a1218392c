//! The tree checker of `AddressTree<true>` is not vacuous: a free block's node damaged in memory
//! (as a write after free would) is caught by the check that follows the next operation. And the
//! checked heap behaves as FreeRTOS's heap_4 on a hand-made sequence whose outcome is known from the
//! semantics (first fit by address, merging).

use core::mem::MaybeUninit;
use core::ptr::NonNull;

use rtos_heap::{AddressTree, AllocError, CortexM, FreeError, Heap4, RawHeap};

type Checked = Heap4<CortexM, AddressTree<true>>;

fn heap(len: usize) -> Checked {
    let memory: &'static mut [MaybeUninit<u8>] =
        Box::leak(vec![MaybeUninit::new(0u8); len].into_boxed_slice());
    let mut h = Checked::new();
    h.init(memory).unwrap();
    h
}

/// Three blocks of 48 bytes (40 + 8-byte header), the middle one freed: a leaf of the tree.
/// Returns the heap and the freed payload.
fn with_hole() -> (Checked, NonNull<u8>) {
    let mut h = heap(4096);
    let a = h.malloc(40).unwrap();
    let b = h.malloc(40).unwrap();
    let c = h.malloc(40).unwrap();
    // SAFETY: `b` is a live block of `h`.
    unsafe { h.free(b, None).unwrap() };
    let _ = (a, c);
    (h, b)
}

/// Writes `v` over the `k`-th 32-bit word of the node kept in the free block whose payload is `p`.
/// On `CortexM` word 0 (left child | balance) is the header's link word, words 1 (right child)
/// and 2 (subtree maximum) are the first payload bytes.
fn damage(p: NonNull<u8>, k: usize, v: u32) {
    let at = [-8isize, 0, 4][k];
    // SAFETY: deliberately corrupting the heap's own free memory (a free block of a leaked
    // buffer), as a write after free would; the heap reads it only through its checks.
    unsafe { p.as_ptr().offset(at).cast::<u32>().write_unaligned(v) };
}

/// The damage is caught by the operation `op`: `AddressTree<true>`'s check after it panics with
/// `what`, or (with a validation level) the operation is refused as corrupted before it writes.
fn assert_caught<R: core::fmt::Debug>(
    what: &str,
    op: impl FnOnce() -> R,
    refused: impl Fn(&R) -> bool,
) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)) {
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            assert!(
                msg.contains(what),
                "panicked with {msg:?}, expected {what:?}"
            );
        }
        Ok(r) => assert!(
            cfg!(feature = "validate-cheap") && refused(&r),
            "the damage went unnoticed: {r:?}"
        ),
    }
}

#[test]
fn damaged_maximum_is_caught() {
    let mut h = heap(4096);
    let p: Vec<NonNull<u8>> = (0..10).map(|_| h.malloc(40).unwrap()).collect();
    // SAFETY: live blocks of `h`, not used afterwards.
    unsafe {
        for i in [1, 3, 5] {
            h.free(p[i], None).unwrap();
        }
    }
    // The lowest hole is a leaf far from where the next free inserts: no operation rewrites its
    // maximum, only the check after the free reads it.
    damage(p[1], 2, 4000);
    assert_caught(
        "subtree maximum wrong",
        // SAFETY: a live block of `h`.
        || unsafe { h.free(p[7], None) },
        |r| *r == Err(FreeError::Corrupted),
    );
}

#[test]
fn damaged_balance_is_caught() {
    let (mut h, b) = with_hole();
    // Keep the left link (null), make the leaf "right-heavy".
    // SAFETY: reading the heap's own free memory (the hole's link word, in its header).
    let left = unsafe { b.as_ptr().offset(-8).cast::<u32>().read_unaligned() };
    damage(b, 0, (left & !3) | 2);
    assert_caught(
        "stored balance wrong",
        || h.malloc(8),
        |r| *r == Err(AllocError::Corrupted),
    );
}

#[test]
fn damaged_link_is_caught() {
    let (mut h, b) = with_hole();
    // A right child link to offset 8 (inside an allocated block below the hole): keys of the right
    // subtree must lie above the hole. With `validate-cheap` the descent vets the link before it
    // follows it.
    damage(b, 1, 0x8);
    assert_caught(
        "tree order broken",
        || h.malloc(8),
        |r| *r == Err(AllocError::Corrupted),
    );
}

/// With `validate-cheap`, a forged child link is refused before anything is written: an allocation
/// and a free that would descend through it both fail as corrupted, and once the word is repaired
/// the heap is exactly as it was and works on.
#[cfg(feature = "validate-cheap")]
#[test]
fn forged_link_is_refused_without_a_write() {
    let mut h = heap(4096);
    let p: Vec<NonNull<u8>> = (0..6).map(|_| h.malloc(40).unwrap()).collect();
    // SAFETY: live blocks of `h`, not used afterwards.
    unsafe {
        h.free(p[1], None).unwrap();
        h.free(p[3], None).unwrap();
    }
    let before = h.stats();
    // SAFETY: reading the heap's own free memory (the node's right-link word).
    let saved = unsafe { p[1].as_ptr().cast::<u32>().read_unaligned() };
    damage(p[1], 1, 0x8);
    assert_eq!(h.malloc(8), Err(AllocError::Corrupted));
    // SAFETY: a live block of `h`; the free is refused (its descent meets the forged link).
    let r = unsafe { h.free(p[2], None) };
    assert_eq!(r, Err(FreeError::Corrupted));
    damage(p[1], 1, saved);
    let after = h.stats();
    assert_eq!(
        (
            after.available_bytes,
            after.free_blocks,
            after.largest_free_block
        ),
        (
            before.available_bytes,
            before.free_blocks,
            before.largest_free_block
        )
    );
    h.check().unwrap();
    let q = h.malloc(8).unwrap();
    assert_eq!(q, p[1]);
    // SAFETY: live blocks of `h`.
    unsafe {
        h.free(q, None).unwrap();
        h.free(p[2], None).unwrap();
    }
    h.check().unwrap();
}

/// First fit by address and merging, with the trees checked after every step: the placements
/// follow from heap_4's rules (8-byte header, 8-byte alignment, split when the rest exceeds 16).
#[test]
fn first_fit_and_merging() {
    let mut h = heap(4096);
    let base = h.malloc(8).unwrap().as_ptr() as usize; // block of 16 at offset 0
    let off = |p: NonNull<u8>| p.as_ptr() as usize - base;
    let p: Vec<NonNull<u8>> = (0..6).map(|_| h.malloc(56).unwrap()).collect(); // blocks of 64
    assert_eq!(off(p[0]), 16);
    assert_eq!(off(p[5]), 16 + 5 * 64);
    // Holes of 64 at p1 and p3, 128 after merging p3 and p4.
    // SAFETY: live blocks of `h`, not used afterwards.
    unsafe {
        h.free(p[1], None).unwrap();
        h.free(p[3], None).unwrap();
        h.free(p[4], None).unwrap();
    }
    assert_eq!(h.stats().free_blocks, 3); // two holes and the rest of the heap
    // 100 bytes (block 112) skip the 64-byte hole and take the merged 128-byte one, whole:
    // 128 - 112 = 16 is not above the 16-byte minimum, so it is not split.
    let q = h.malloc(100).unwrap();
    assert_eq!(off(q), off(p[3]));
    assert_eq!(h.stats().free_blocks, 2);
    // 8 bytes (block 16) take the lowest hole, split: 48 left behind it.
    let r = h.malloc(8).unwrap();
    assert_eq!(off(r), off(p[1]));
    assert_eq!(h.stats().smallest_free_block, 48);
    h.check().unwrap();
}
