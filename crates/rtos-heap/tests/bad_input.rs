//! Every kind of bad input has a defined result: the error is returned, the heap is unchanged
//! (same free bytes, same blocks), `check()` passes and later allocations work.

mod common;

use std::alloc::Layout;
use std::ptr::NonNull;

use rtos_heap::{
    AddressList, AddressTree, AllocError, CheckErrorKind, CortexM, FreeError, FreeIndex, Heap1,
    Heap2, Heap3, Heap4, Heap5, HeapRegion, Host64, RawHeap, ReallocError, RegionError, Target,
    TargetLayout,
};

fn heap4<T: TargetLayout, I: FreeIndex>(len: usize) -> Heap4<T, I> {
    let (p, len) = common::buffer(len, 0);
    let mut h = Heap4::new();
    // SAFETY: a leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
    h
}

fn heap2<T: TargetLayout>(len: usize) -> Heap2<T> {
    let (p, len) = common::buffer(len, 0);
    let mut h = Heap2::new();
    // SAFETY: a leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
    h
}

fn heap5<T: TargetLayout, I: FreeIndex>(len: usize) -> Heap5<T, 4, I> {
    let (p, _) = common::buffer(len, 0);
    let half = len / 2;
    let mut h = Heap5::new();
    let regions = [
        HeapRegion {
            start: p,
            size: half - 64,
        },
        HeapRegion {
            // SAFETY: inside the buffer.
            start: unsafe { p.add(half) },
            size: half,
        },
    ];
    // SAFETY: disjoint parts of a leaked buffer.
    unsafe { h.define_regions_raw(&regions).unwrap() };
    h
}

/// Snapshot of what a refused operation must leave untouched.
fn snapshot<H: RawHeap>(h: &H) -> (usize, usize, usize, usize) {
    let s = h.stats();
    (
        s.available_bytes,
        s.free_blocks,
        s.largest_free_block,
        s.successful_frees,
    )
}

/// Frees `p` expecting `err`, then proves nothing changed and the heap still works.
fn refused<H: RawHeap>(h: &mut H, p: NonNull<u8>, layout: Option<Layout>, err: FreeError) {
    let before = snapshot(h);
    let rejected = h.stats().rejected_frees;
    // SAFETY: the pointer is bad on purpose; the heap must refuse it without touching memory it
    // does not own (every pointer used here points into the heap or into memory the test owns).
    assert_eq!(unsafe { h.free(p, layout) }, Err(err));
    assert_eq!(snapshot(h), before, "a refused free changed the heap");
    assert_eq!(h.stats().rejected_frees, rejected + 1);
    h.check().expect("heap consistent after a refused free");
    let q = h.malloc(24).expect("heap usable after a refused free");
    // SAFETY: just allocated.
    unsafe { h.free(q, None).unwrap() };
    h.check().unwrap();
}

macro_rules! merging_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn double_free() {
                let mut h = $make;
                let a = h.malloc(40).unwrap();
                let b = h.malloc(40).unwrap();
                let _c = h.malloc(40).unwrap();
                // SAFETY: live blocks.
                unsafe { h.free(a, None).unwrap() };
                refused(&mut h, a, None, FreeError::DoubleFree);
                // b merges into a's free block below it: its stale header must still read "free".
                // SAFETY: live block.
                unsafe { h.free(b, None).unwrap() };
                refused(&mut h, b, None, FreeError::DoubleFree);
            }

            #[test]
            fn foreign_pointer() {
                let mut h = $make;
                let _a = h.malloc(40).unwrap();
                let mut other = [0u64; 8];
                let p = NonNull::new(other.as_mut_ptr().cast::<u8>()).unwrap();
                refused(
                    &mut h,
                    p.map_addr(|a| a.checked_add(16).unwrap()),
                    None,
                    FreeError::OutsideHeap,
                );
            }

            #[test]
            fn interior_and_misaligned_pointers() {
                let mut h = $make;
                let a = h.malloc(200).unwrap();
                let _b = h.malloc(8).unwrap();
                // SAFETY: inside the live block.
                let inside = unsafe { a.add(64) };
                // Payload of zeros: no allocated header there.
                // SAFETY: the block is 200 bytes.
                unsafe { a.as_ptr().write_bytes(0, 200) };
                refused(&mut h, inside, None, FreeError::NotABlock);
                // Payload forged to look allocated, with an absurd size: still refused.
                // SAFETY: as above.
                unsafe { a.as_ptr().write_bytes(0xff, 200) };
                refused(&mut h, inside, None, FreeError::NotABlock);
                // SAFETY: inside the block.
                refused(&mut h, unsafe { a.add(3) }, None, FreeError::Misaligned);
            }

            #[test]
            fn layout_contradicting_the_block() {
                let mut h = $make;
                let a = h.malloc(100).unwrap();
                refused(
                    &mut h,
                    a,
                    Some(Layout::from_size_align(400, 1).unwrap()),
                    FreeError::LayoutMismatch,
                );
                refused(
                    &mut h,
                    a,
                    Some(Layout::from_size_align(8, 1).unwrap()),
                    FreeError::LayoutMismatch,
                );
                // An alignment the block's address does not have (a fixed one, say 4096, is met
                // by chance when the buffer lands on such a boundary).
                let unmet = 1usize << ((a.as_ptr() as usize).trailing_zeros() + 1);
                refused(
                    &mut h,
                    a,
                    Some(Layout::from_size_align(100, unmet).unwrap()),
                    FreeError::LayoutMismatch,
                );
                // The right layout is accepted.
                // SAFETY: live block.
                unsafe {
                    h.free(a, Some(Layout::from_size_align(100, 1).unwrap()))
                        .unwrap()
                };
            }

            #[test]
            fn overwritten_header_is_reported_and_refused() {
                let mut h = $make;
                let a = h.malloc(32).unwrap();
                let b = h.malloc(32).unwrap();
                let c = h.malloc(32).unwrap();
                // An overrun of `a` writes over b's header.
                // SAFETY: the test owns the heap memory; b's header lies just below `b`.
                let hdr = unsafe { b.sub(8) };
                // SAFETY: 8 bytes of b's header.
                let saved = unsafe { hdr.cast::<[u8; 8]>().read() };
                // SAFETY: as above.
                unsafe { hdr.as_ptr().write_bytes(0x5a, 8) };
                let e = h.check().unwrap_err();
                assert_eq!(e.kind, CheckErrorKind::BadBlockSize);
                let header_at = b.as_ptr() as usize - e.address;
                assert!(
                    header_at == 8 || header_at == 16,
                    "reported address is b's header"
                );
                let before = snapshot(&h);
                // With `validate-full`, check() before each operation finds the damage first.
                let refusal = if rtos_heap::validate::FULL {
                    FreeError::Corrupted
                } else {
                    FreeError::NotABlock
                };
                // SAFETY: refused: b's header does not check out.
                assert_eq!(unsafe { h.free(b, None) }, Err(refusal));
                // a's upper neighbour is corrupt: freeing a must not merge into garbage.
                // SAFETY: refused: the next header does not check out.
                assert_eq!(unsafe { h.free(a, None) }, Err(refusal));
                assert_eq!(snapshot(&h), before);
                // Repair the header: everything is as before.
                // SAFETY: restoring the saved bytes.
                unsafe { hdr.cast::<[u8; 8]>().write(saved) };
                h.check().unwrap();
                // SAFETY: live blocks.
                unsafe {
                    h.free(a, None).unwrap();
                    h.free(b, None).unwrap();
                    h.free(c, None).unwrap();
                }
                h.check().unwrap();
            }

            #[test]
            fn sizes_that_overflow_or_are_zero() {
                let mut h = $make;
                // malloc(0) fails but lays a lazily initialised heap out, as in FreeRTOS.
                assert_eq!(h.malloc(0), Err(AllocError::ZeroSize));
                let before = h.free_bytes();
                assert!(before > 0);
                assert_eq!(h.malloc(usize::MAX), Err(AllocError::SizeOverflow));
                assert_eq!(h.malloc(usize::MAX - 3), Err(AllocError::SizeOverflow));
                assert_eq!(h.calloc(usize::MAX, 2), Err(AllocError::CallocOverflow));
                assert_eq!(h.malloc(1 << 20), Err(AllocError::OutOfMemory));
                assert_eq!(
                    h.allocate(Layout::from_size_align(16, 1 << 30).unwrap()),
                    Err(AllocError::OutOfMemory)
                );
                assert_eq!(h.free_bytes(), before);
                // calloc's overflow never reaches the heap and is not counted.
                assert_eq!(h.stats().failed_allocations, 5);
                h.check().unwrap();
                assert!(h.malloc(16).is_ok());
            }

            #[test]
            fn realloc_of_a_bad_pointer() {
                let mut h = $make;
                let a = h.malloc(64).unwrap();
                let l = Layout::from_size_align(64, 1).unwrap();
                // SAFETY: live block.
                unsafe { h.free(a, None).unwrap() };
                // SAFETY: refused: already free.
                let r = unsafe { h.reallocate(a, l, 128) };
                assert_eq!(r, Err(ReallocError::Free(FreeError::DoubleFree)));
                h.check().unwrap();
            }
        }
    };
}

merging_suite!(heap4_32, heap4::<CortexM, AddressList>(4096));
merging_suite!(heap4_64, heap4::<Host64, AddressList>(4096));
merging_suite!(heap2_32, heap2::<CortexM>(4096));
merging_suite!(heap5_64, heap5::<Host64, AddressList>(4096));
merging_suite!(heap5_32a4, heap5::<Target<4, 4>, AddressList>(4096));
// The same bad input against the O(log n) index, its invariants checked after every operation.
merging_suite!(heap4_tree_32, heap4::<CortexM, AddressTree<true>>(4096));
merging_suite!(heap4_tree_64, heap4::<Host64, AddressTree<true>>(4096));
merging_suite!(heap5_tree_64, heap5::<Host64, AddressTree<true>>(4096));
merging_suite!(
    heap5_tree_64a16,
    heap5::<Target<8, 16>, AddressTree<true>>(4096)
);

#[test]
fn heap5_region_lists_are_validated() {
    let (p, _) = common::buffer(8192, 0);
    // Regions inside one leaked buffer; refused lists define nothing.
    // SAFETY: every offset used below is inside the 8192-byte buffer.
    let at = |o: usize| unsafe { p.add(o) };
    let r = |o, size| HeapRegion { start: at(o), size };
    let try_define = |regions: &[HeapRegion]| {
        let mut h = Heap5::<Host64, 4>::new();
        // SAFETY: see above.
        let e = unsafe { h.define_regions_raw(regions) };
        (e, h)
    };
    assert_eq!(try_define(&[]).0, Err(RegionError::NoRegions));
    assert_eq!(
        try_define(&[r(2048, 1000), r(0, 1000)]).0,
        Err(RegionError::NotAscending { index: 1 })
    );
    assert_eq!(
        try_define(&[r(0, 1000), r(999, 1000)]).0,
        Err(RegionError::NotAscending { index: 1 })
    );
    // heap_5.c's 64-bit quirk: a region starting 8 bytes after the previous end marker passes its
    // assert and then overwrites that marker. Here it overlaps the first region and is refused.
    assert_eq!(
        try_define(&[r(0, 1000), r(992, 1000)]).0,
        Err(RegionError::NotAscending { index: 1 })
    );
    assert_eq!(
        try_define(&[r(0, 1000), r(1000, 40)]).0,
        Err(RegionError::TooSmall { index: 1 })
    );
    let five: Vec<HeapRegion> = (0..5).map(|i| r(i * 1024, 1000)).collect();
    assert_eq!(try_define(&five).0, Err(RegionError::TooManyRegions));
    assert_eq!(
        try_define(&[HeapRegion {
            start: std::ptr::null_mut(),
            size: 100
        }])
        .0,
        Err(RegionError::Null { index: 0 })
    );
    // A refused list leaves the heap undefined: allocation fails cleanly, a good list then works.
    let (_, mut h) = try_define(&[r(1000, 1000), r(0, 1000)]);
    assert_eq!(h.malloc(8), Err(AllocError::Uninitialized));
    assert_eq!(h.free_bytes(), 0);
    // SAFETY: see above.
    unsafe { h.define_regions_raw(&[r(0, 1000), r(1000, 1000)]).unwrap() };
    // Contiguous regions are not joined: each keeps its end marker.
    assert_eq!(h.free_bytes(), (1000 - 16) + (1000 - 16));
    // SAFETY: inside the leaked buffer (and refused: the heap is defined).
    let again = unsafe { h.define_regions_raw(&[r(4096, 1000)]) };
    assert_eq!(again, Err(RegionError::AlreadyDefined));
    h.check().unwrap();
}

#[test]
fn single_region_init_errors() {
    let mut h = Heap4::<CortexM>::new();
    assert_eq!(h.malloc(8), Err(AllocError::Uninitialized));
    let mut other = [0u64; 4];
    // SAFETY: refused: the heap has no memory.
    let r = unsafe { h.free(NonNull::new(other.as_mut_ptr().cast()).unwrap(), None) };
    assert_eq!(r, Err(FreeError::OutsideHeap));
    let (p, _) = common::buffer(4096, 0);
    // SAFETY: a leaked buffer; 16 bytes cannot hold a block and an end marker.
    let r = unsafe { h.init_from_raw(NonNull::new(p).unwrap(), 16) };
    assert_eq!(r, Err(RegionError::TooSmall { index: 0 }));
    // SAFETY: a leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(p).unwrap(), 4096).unwrap() };
    // SAFETY: a second init is refused.
    let r = unsafe { h.init_from_raw(NonNull::new(p).unwrap(), 4096) };
    assert_eq!(r, Err(RegionError::AlreadyDefined));
    assert!(h.malloc(8).is_ok());
}

/// `from_raw` (memory given in a `const`) places and reports exactly as `init_from_raw`, and
/// memory that cannot hold a block, found only at the first allocation, fails every allocation
/// with `Uninitialized` and leaves the heap usable as a heap without memory.
#[test]
fn from_raw_matches_init_and_refuses_bad_memory_at_first_use() {
    for misalign in [0, 1, 3, 7] {
        for len in [64, 100, 4096] {
            let (p, _) = common::buffer(len, misalign);
            let (q, _) = common::buffer(len, misalign);
            // SAFETY: leaked buffers of `len` bytes.
            let mut a = unsafe { Heap4::<CortexM>::from_raw(p, len) };
            let mut b = Heap4::<CortexM>::new();
            // SAFETY: as above.
            unsafe { b.init_from_raw(NonNull::new(q).unwrap(), len).unwrap() };
            assert!(a.is_initialized());
            assert_eq!(a.stats(), b.stats(), "before the first allocation");
            for n in [8, 24, 1, 40] {
                let (x, y) = (a.malloc(n), b.malloc(n));
                assert_eq!(x.is_ok(), y.is_ok(), "malloc({n}), len {len}");
                if let (Ok(x), Ok(y)) = (x, y) {
                    assert_eq!(
                        x.as_ptr() as usize - p as usize,
                        y.as_ptr() as usize - q as usize
                    );
                }
                assert_eq!(a.stats(), b.stats());
            }
            a.check().unwrap();
            // SAFETY: every pointer handed out is dead from here on.
            unsafe { a.reset() };
            assert!(a.malloc(8).is_ok(), "laid out again after a reset");
            a.check().unwrap();

            // heap_2 reports its whole array (less one alignment unit) before the first malloc.
            let (r, _) = common::buffer(len, misalign);
            // SAFETY: a leaked buffer of `len` bytes.
            let h2 = unsafe { Heap2::<CortexM>::from_raw(r, len) };
            assert_eq!(h2.free_bytes(), len - 8);
        }
    }
    for len in [0, 8, 16, 23] {
        let (p, _) = common::buffer(64, 0);
        // SAFETY: a leaked buffer, larger than `len`.
        let mut h = unsafe { Heap4::<CortexM>::from_raw(p, len) };
        assert_eq!(h.malloc(8), Err(AllocError::Uninitialized), "len {len}");
        assert_eq!(h.free_bytes(), 0);
        let mut other = [0u64; 4];
        // SAFETY: refused: the heap has no blocks.
        let r = unsafe { h.free(NonNull::new(other.as_mut_ptr().cast()).unwrap(), None) };
        assert_eq!(r, Err(FreeError::OutsideHeap));
        h.check().unwrap();
        assert_eq!(h.stats().free_blocks, 0);
        assert_eq!(h.stats().failed_allocations, 1);
    }
    // Memory the target's 32-bit word cannot address (a 64-bit host only).
    if usize::BITS == 64 {
        let (p, _) = common::buffer(64, 0);
        // SAFETY: never laid out: the length is refused before anything is written.
        let mut h = unsafe { Heap4::<CortexM>::from_raw(p, 1 << 33) };
        assert_eq!(h.malloc(8), Err(AllocError::Uninitialized));
    }
}

#[test]
fn heap1_frees_are_accepted_or_refused() {
    let (p, len) = common::buffer(1024, 0);
    let mut h = Heap1::<CortexM>::new();
    // SAFETY: a leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
    let a = h.malloc(10).unwrap();
    let used = h.free_bytes();
    // SAFETY: a block of this heap: accepted, no effect.
    assert_eq!(unsafe { h.free(a, None) }, Ok(()));
    assert_eq!(h.free_bytes(), used);
    let mut other = [0u64; 4];
    // SAFETY: refused, nothing read.
    let r = unsafe { h.free(NonNull::new(other.as_mut_ptr().cast()).unwrap(), None) };
    assert_eq!(r, Err(FreeError::OutsideHeap));
    assert_eq!(h.stats().rejected_frees, 1);
    assert_eq!(h.malloc(0), Err(AllocError::ZeroSize));
    assert_eq!(h.malloc(usize::MAX), Err(AllocError::SizeOverflow));
    h.check().unwrap();
}

#[test]
fn heap3_double_free_and_garbage() {
    let mut h = Heap3::with_limit(std::alloc::System, 4096);
    let a = h.malloc(100).unwrap();
    let b = h.malloc(100).unwrap();
    // SAFETY: live block.
    unsafe { h.free(a, None).unwrap() };
    // (A second free of `a` would read memory the C library may have reused: heap_3 catches it
    // only while that memory is untouched, which a test cannot arrange soundly.)
    let layout = Layout::from_size_align(100, 1).unwrap();
    // SAFETY: live block, wrong size given: refused.
    let wrong = unsafe { h.free(b, Some(Layout::from_size_align(50, 1).unwrap())) };
    assert_eq!(wrong, Err(FreeError::LayoutMismatch));
    // SAFETY: live block.
    unsafe { h.free(b, Some(layout)).unwrap() };
    assert_eq!(h.bytes_in_use(), 0);
    assert_eq!(h.stats().successful_frees, 2);
    // Garbage in front of a pointer the test owns: refused.
    let mut fake = [0usize; 4];
    // SAFETY: two readable words precede the pointer.
    let p = unsafe { NonNull::new(fake.as_mut_ptr()).unwrap().add(2).cast::<u8>() };
    // SAFETY: refused: no tag.
    assert_eq!(unsafe { h.free(p, None) }, Err(FreeError::NotABlock));
    assert_eq!(h.malloc(5000), Err(AllocError::OutOfMemory));
    h.check().unwrap();
}

/// `free_trusted` makes FreeRTOS's two checks: a second free of the same block (while it is
/// not merged away) is refused as a double free and changes nothing; good frees place and count
/// exactly as `free`.
#[test]
fn free_trusted_frees_as_free_does_and_refuses_a_double_free() {
    let mut a = heap4::<Host64, AddressList>(4096);
    let mut b = heap4::<Host64, AddressList>(4096);
    let pa: Vec<_> = (1..8).map(|n| a.malloc(n * 24).unwrap()).collect();
    let pb: Vec<_> = (1..8).map(|n| b.malloc(n * 24).unwrap()).collect();
    for i in [1, 3, 5, 2] {
        // SAFETY: live blocks of their heaps, freed once.
        unsafe {
            a.free(pa[i], None).unwrap();
            b.free_trusted(pb[i]).unwrap();
        }
        assert_eq!(a.stats(), b.stats());
        b.check().unwrap();
    }
    let before = b.stats();
    // Block 6 merges with block 5 below it (freed above) and the free rest above it; its own
    // header stays where it was, reading free (or poisoned, with `poison`).
    // SAFETY: a live block, freed once.
    unsafe { b.free_trusted(pb[6]).unwrap() };
    let after = b.stats();
    assert_ne!(before, after);
    // SAFETY: deliberately a double free of a block whose header still reads free: refused
    // before anything is written.
    assert_eq!(unsafe { b.free_trusted(pb[6]) }, Err(FreeError::DoubleFree));
    assert_eq!(b.stats().available_bytes, after.available_bytes);
    assert_eq!(b.stats().free_blocks, after.free_blocks);
    b.check().unwrap();
    assert!(b.malloc(100).is_ok());
}
