//! FreeRTOS facts checked by hand against the semantics document, plus realloc and the
//! over-alignment extension.

mod common;

use std::alloc::Layout;
use std::ptr::NonNull;

use rtos_heap::{
    BlockKind, CortexM, Heap1, Heap2, Heap4, Heap5, HeapRegion, Host64, RawHeap, TargetLayout,
};

fn heap4<T: TargetLayout>(len: usize) -> (Heap4<T>, usize) {
    let (p, len) = common::buffer(len, 0);
    let mut h = Heap4::new();
    // SAFETY: a leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
    (h, p as usize)
}

#[test]
fn heap4_first_allocation() {
    // 32-bit: header 8; malloc(100) -> block round_up(108, 8) = 112 at offset 0, payload at 8.
    let (mut h, base) = heap4::<CortexM>(65536);
    assert_eq!(
        h.free_bytes(),
        0,
        "FreeRTOS reads 0 before the first malloc"
    );
    let p = h.malloc(100).unwrap();
    assert_eq!(p.as_ptr() as usize - base, 8);
    assert_eq!(h.free_bytes(), 65536 - 8 - 112);
    // 64-bit: header 16; block round_up(116, 8) = 120.
    let (mut h, base) = heap4::<Host64>(65536);
    let p = h.malloc(100).unwrap();
    assert_eq!(p.as_ptr() as usize - base, 16);
    assert_eq!(h.free_bytes(), 65536 - 16 - 120);
    assert_eq!(h.stats().free_blocks, 1);
}

#[test]
fn heap4_no_split_threshold() {
    // A 112-byte hole (32-bit); a request of 88 wants 96 and leaves 16 = two headers: not split.
    let (mut h, _) = heap4::<CortexM>(4096);
    let a = h.malloc(100).unwrap();
    let _b = h.malloc(8).unwrap();
    // SAFETY: live block.
    unsafe { h.free(a, None).unwrap() };
    let c = h.malloc(88).unwrap();
    assert_eq!(c, a);
    let block = h.blocks().next().unwrap();
    assert_eq!((block.size, block.kind), (112, BlockKind::Allocated));
    // One byte less wanted (80 + 8 = 88 -> remainder 24 > 16): split.
    // SAFETY: live block.
    unsafe { h.free(c, None).unwrap() };
    let d = h.malloc(80).unwrap();
    assert_eq!(d, a);
    assert_eq!(h.blocks().next().unwrap().size, 88);
}

#[test]
fn heap4_min_ever_and_its_reset() {
    let (mut h, _) = heap4::<CortexM>(4096);
    let a = h.malloc(1000).unwrap();
    let low = h.free_bytes();
    // SAFETY: live block.
    unsafe { h.free(a, None).unwrap() };
    assert_eq!(h.min_ever_free_bytes(), low);
    h.reset_min_ever_free();
    assert_eq!(h.min_ever_free_bytes(), h.free_bytes());
}

#[test]
fn heap5_end_marker_cost() {
    // The semantics document's example (64-bit): regions 0:1000 and 1003:2000 of an aligned array
    // give blocks of 984 and 1976 (1003 rounds up to 1008): 2960 free.
    let (p, _) = common::buffer(4096, 0);
    let mut h = Heap5::<Host64, 2>::new();
    // SAFETY: disjoint parts of a leaked buffer.
    unsafe {
        h.define_regions_raw(&[
            HeapRegion {
                start: p,
                size: 1000,
            },
            HeapRegion {
                start: p.add(1003),
                size: 2000,
            },
        ])
        .unwrap();
    }
    assert_eq!(h.free_bytes(), 2960);
    let sizes: Vec<_> = h
        .blocks()
        .map(|b| (b.address - p as usize, b.size, b.kind))
        .collect();
    assert_eq!(
        sizes,
        [
            (0, 984, BlockKind::Free),
            (984, 0, BlockKind::EndMarker),
            (1008, 1976, BlockKind::Free),
            (2984, 0, BlockKind::EndMarker)
        ]
    );
    // The intermediate marker is a free-list node: 3 "free blocks", smallest ignores it.
    let s = h.stats();
    assert_eq!(
        (s.free_blocks, s.smallest_free_block, s.largest_free_block),
        (3, 984, 1976)
    );
    // Freeing a block that reaches the marker absorbs it: the count drops.
    let a = h.malloc(984 - 16).unwrap();
    // SAFETY: live block.
    unsafe { h.free(a, None).unwrap() };
    assert_eq!(h.stats().free_blocks, 2);
    h.check().unwrap();
}

#[test]
fn heap2_never_merges() {
    let (p, len) = common::buffer(256, 0);
    let mut h = Heap2::<CortexM>::new();
    // SAFETY: a leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
    // 248 bytes usable; blocks of 80 (72 + 8), 80, and the last 88 (its 8-byte remainder is too
    // small to split off, so the whole block is handed out).
    let a = h.malloc(72).unwrap();
    let b = h.malloc(72).unwrap();
    let c = h.malloc(72).unwrap();
    // SAFETY: live blocks.
    unsafe {
        h.free(a, None).unwrap();
        h.free(b, None).unwrap();
    }
    assert_eq!(h.free_bytes(), 160);
    assert_eq!(h.stats().free_blocks, 2);
    // 160 bytes lie free side by side, but never merged: 152 + 8 does not fit.
    assert!(h.malloc(152).is_err());
    // A heap_4 would have merged them; heap_2 still hands out each hole.
    assert_eq!(
        h.malloc(72).unwrap(),
        b,
        "newest free block first among equal sizes"
    );
    // SAFETY: live block.
    unsafe { h.free(c, None).unwrap() };
    h.check().unwrap();
}

#[test]
fn heap1_never_uses_its_last_alignment_bytes() {
    let (p, len) = common::buffer(65536, 0);
    let mut h = Heap1::<CortexM>::new();
    // SAFETY: a leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
    assert_eq!(h.free_bytes(), 65528);
    assert!(h.malloc(65528).is_err());
    assert!(h.malloc(65520).is_ok());
    assert!(h.malloc(1).is_err(), "the strict < keeps the last 8 bytes");
}

#[test]
fn realloc_in_place_and_by_moving() {
    let (mut h, _) = heap4::<CortexM>(4096);
    let l = |n| Layout::from_size_align(n, 4).unwrap();
    let a = h.malloc(100).unwrap();
    // SAFETY: a live block of 100 bytes.
    unsafe { a.as_ptr().write_bytes(7, 100) };
    let free0 = h.free_bytes();
    // Grow into the free space above: same pointer.
    // SAFETY: live block allocated with l(100).
    let a2 = unsafe { h.reallocate(a, l(100), 300) }.unwrap();
    assert_eq!(a2, a);
    assert_eq!(h.free_bytes(), free0 - 200);
    // Shrink: same pointer, tail returned (block 312 -> 64 bytes).
    // SAFETY: live block, now 300 bytes.
    let a3 = unsafe { h.reallocate(a2, l(300), 50) }.unwrap();
    assert_eq!(a3, a);
    assert_eq!(h.free_bytes(), free0 + (112 - 64));
    // Blocked above: moves, contents kept.
    let _b = h.malloc(16).unwrap();
    // SAFETY: live block of 50 bytes.
    let a4 = unsafe { h.reallocate(a3, l(50), 500) }.unwrap();
    assert_ne!(a4, a);
    // SAFETY: the first 50 bytes were copied.
    let moved = unsafe { std::slice::from_raw_parts(a4.as_ptr(), 50) };
    assert!(moved.iter().all(|&x| x == 7));
    h.check().unwrap();
    // Too large: error, old block intact.
    // SAFETY: live block.
    assert!(unsafe { h.reallocate(a4, l(500), 1 << 20) }.is_err());
    // SAFETY: live block.
    unsafe { h.free(a4, Some(l(500))).unwrap() };
    h.check().unwrap();
}

#[test]
fn alignment_above_port_alignment() {
    for &align in &[16usize, 32, 64, 256, 4096] {
        let (mut h, _) = heap4::<CortexM>(32768);
        let mut blocks = Vec::new();
        for i in 0..8 {
            let small = h.malloc(5 + i).unwrap();
            let l = Layout::from_size_align(24 + i * 8, align).unwrap();
            let p = h.allocate(l).unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0, "align {align}");
            // SAFETY: fresh blocks.
            unsafe { p.as_ptr().write_bytes(i as u8, l.size()) };
            h.check().unwrap();
            blocks.push((p, l, i as u8));
            // SAFETY: live block.
            unsafe { h.free(small, None).unwrap() };
        }
        for (p, l, tag) in blocks {
            // SAFETY: live block.
            let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), l.size()) };
            assert!(bytes.iter().all(|&x| x == tag));
            // SAFETY: live block, its layout.
            unsafe { h.free(p, Some(l)).unwrap() };
            h.check().unwrap();
        }
        // Everything merged back into one block.
        assert_eq!(h.stats().free_blocks, 1);
    }
}
