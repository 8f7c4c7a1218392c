//! Corruption injection: one test per row of the matrix in `docs/robustness.md`.
//!
//! Each test lays a heap inside a guarded buffer (guard bytes before and after), corrupts it the
//! way a bug does (an overrun writing over the next header, a write after free, a forged link),
//! and asserts what the level compiled in promises: detection (the error, the fault hook with the
//! block address), refusal (the heap's counters and blocks as they were), and that nothing outside
//! the heap was written (the guards). Rows that only a validation feature detects are gated on it;
//! run them with e.g. `cargo test -p rtos-heap --features validate-cheap,heap-protector,poison`.

use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;

use rtos_heap::validate::{self, Corruption, CorruptionKind};
use rtos_heap::{
    AllocError, BlockKind, CortexM, FreeError, Heap2, Heap4, Heap5, HeapRegion, Native, RawHeap,
    RegionError, TargetLayout,
};

const GUARD: usize = 256;
const GUARD_BYTE: u8 = 0x5A;
const LEN: usize = 4096;

thread_local! {
    static SEEN: RefCell<Vec<Corruption>> = const { RefCell::new(Vec::new()) };
}

fn record(c: Corruption) {
    SEEN.with(|s| s.borrow_mut().push(c));
}

/// Installs the recording hook (idempotent) and clears this thread's record.
fn watch() {
    validate::set_fault_hook(Some(record));
    SEEN.with(|s| s.borrow_mut().clear());
}

fn seen() -> Vec<Corruption> {
    SEEN.with(|s| s.borrow().clone())
}

/// A heap buffer between two guard zones.
struct Guarded {
    buf: Box<[u64]>,
}

impl Guarded {
    fn new() -> Self {
        let mut g = Guarded {
            buf: vec![0u64; (2 * GUARD + LEN) / 8].into_boxed_slice(),
        };
        let bytes = g.bytes_mut();
        bytes[..GUARD].fill(GUARD_BYTE);
        bytes[GUARD + LEN..].fill(GUARD_BYTE);
        g
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.buf.len() * 8;
        // SAFETY: the u64 buffer viewed as bytes.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast(), len) }
    }
    fn heap_ptr(&mut self) -> NonNull<u8> {
        NonNull::new(self.bytes_mut()[GUARD..].as_mut_ptr()).unwrap()
    }
    fn assert_guards(&self) {
        let len = self.buf.len() * 8;
        // SAFETY: the u64 buffer viewed as bytes (read only).
        let b = unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), len) };
        assert!(
            b[..GUARD].iter().all(|&x| x == GUARD_BYTE),
            "front guard written"
        );
        assert!(
            b[GUARD + LEN..].iter().all(|&x| x == GUARD_BYTE),
            "back guard written"
        );
    }
}

fn heap4<T: TargetLayout>(g: &mut Guarded) -> Heap4<T> {
    let mut h = Heap4::new();
    // SAFETY: the guarded buffer outlives the heap in every test (both live in the test's frame).
    unsafe { h.init_from_raw(g.heap_ptr(), LEN).unwrap() };
    h
}

fn heap2<T: TargetLayout>(g: &mut Guarded) -> Heap2<T> {
    let mut h = Heap2::new();
    // SAFETY: as `heap4`.
    unsafe { h.init_from_raw(g.heap_ptr(), LEN).unwrap() };
    h
}

#[cfg(feature = "validate-cheap")]
fn heap5<T: TargetLayout>(g: &mut Guarded) -> Heap5<T, 2> {
    let p = g.heap_ptr().as_ptr();
    let mut h = Heap5::new();
    let regions = [
        HeapRegion {
            start: p,
            size: LEN / 2 - 256,
        },
        HeapRegion {
            // SAFETY: inside the guarded heap area.
            start: unsafe { p.add(LEN / 2) },
            size: LEN / 2,
        },
    ];
    // SAFETY: both regions lie in the guarded buffer, which outlives the heap.
    unsafe { h.define_regions_raw(&regions).unwrap() };
    h
}

/// Address of the block header in front of a payload.
fn header_of<T: TargetLayout>(p: NonNull<u8>) -> *mut u8 {
    p.as_ptr().wrapping_sub(T::HEADER)
}

/// Everything a refusal must leave alone: counters (but the rejected count) and the block walk.
#[derive(Debug, PartialEq)]
struct Snapshot {
    free: usize,
    allocs: usize,
    frees: usize,
    blocks: Vec<(usize, usize, BlockKind)>,
}

fn snap4<T: TargetLayout>(h: &Heap4<T>) -> Snapshot {
    let s = h.stats();
    Snapshot {
        free: h.free_bytes(),
        allocs: s.successful_allocations,
        frees: s.successful_frees,
        blocks: h.blocks().map(|b| (b.address, b.size, b.kind)).collect(),
    }
}

fn l(n: usize) -> Layout {
    Layout::from_size_align(n, 1).unwrap()
}

// ---- rows detected at every level -------------------------------------------------------------

#[test]
fn double_free_is_refused_on_every_scheme() {
    let mut g = Guarded::new();
    let mut h = heap4::<Native>(&mut g);
    let a = h.malloc(40).unwrap();
    let _b = h.malloc(40).unwrap();
    // SAFETY: `a` is live.
    unsafe { h.free(a, None).unwrap() };
    let before = snap4(&h);
    // SAFETY: deliberately freed twice: the point of the test.
    let e = unsafe { h.free(a, None) }.unwrap_err();
    // With poisoning a header merged into its lower neighbour is poison, hence "not a block".
    assert!(
        matches!(e, FreeError::DoubleFree | FreeError::NotABlock),
        "{e:?}"
    );
    assert_eq!(snap4(&h), before);
    assert_eq!(h.stats().rejected_frees, 1);
    h.check().unwrap();
    g.assert_guards();

    let mut g = Guarded::new();
    let mut h = heap2::<Native>(&mut g);
    let a = h.malloc(40).unwrap();
    // SAFETY: `a` is live, then freed twice on purpose.
    unsafe { h.free(a, None).unwrap() };
    // SAFETY: as above.
    assert_eq!(unsafe { h.free(a, None) }, Err(FreeError::DoubleFree));
    h.check().unwrap();
    g.assert_guards();
}

#[test]
fn foreign_and_interior_pointers_are_refused() {
    let mut g = Guarded::new();
    let mut h = heap4::<Native>(&mut g);
    let a = h.malloc(64).unwrap();
    let before = snap4(&h);
    let mut local = [0u8; 32];
    // SAFETY: refused pointers are not touched (the point of the test).
    unsafe {
        assert_eq!(
            h.free(NonNull::new(local.as_mut_ptr()).unwrap(), None),
            Err(FreeError::OutsideHeap)
        );
        let inner = NonNull::new(a.as_ptr().add(8)).unwrap();
        // With `poison` the payload under an interior pointer can read as a swallowed header
        // (DoubleFree); every level refuses it.
        assert!(matches!(
            h.free(inner, None),
            Err(FreeError::Misaligned | FreeError::NotABlock | FreeError::DoubleFree)
        ));
        let odd = NonNull::new(a.as_ptr().add(3)).unwrap();
        assert_eq!(h.free(odd, None), Err(FreeError::Misaligned));
    }
    assert_eq!(snap4(&h), before);
    assert_eq!(local, [0u8; 32]);
    h.check().unwrap();
    g.assert_guards();
}

/// An overrun of `n` bytes past a block's payload writes over the next (allocated) block's header:
/// on a 32-bit target (`CortexM`, header 8 bytes) the link word is the first 4 bytes, the size word
/// the next 4. Every `n` that changes the link or the size word is refused at the next block's
/// free, at every level.
#[test]
fn header_overrun_of_n_bytes_is_refused_at_free() {
    for n in 1..=CortexM::HEADER {
        let mut g = Guarded::new();
        let mut h = heap4::<CortexM>(&mut g);
        let a = h.malloc(24).unwrap(); // payload exactly 24 bytes: wanted 32, no padding
        let b = h.malloc(24).unwrap();
        assert_eq!(header_of::<CortexM>(b), a.as_ptr().wrapping_add(24));
        let before = snap4(&h);
        // SAFETY: the deliberate overrun stays inside the heap buffer.
        unsafe { a.as_ptr().add(24).write_bytes(0x41, n) };
        // SAFETY: `b` is live (its header damaged).
        let r = unsafe { h.free(b, None) };
        // The full level's check() before the free finds the damage first.
        let expected = if validate::FULL {
            FreeError::Corrupted
        } else {
            FreeError::NotABlock
        };
        assert_eq!(r, Err(expected), "n = {n}");
        assert_eq!(h.free_bytes(), before.free);
        assert!(
            h.check().is_err(),
            "n = {n}: check() finds the damaged header"
        );
        g.assert_guards();
    }
}

/// Without the protector, an overrun that happens to write all-ones over an allocated block's link
/// word forms the "allocated" marker: undetected (and harmless: the block frees normally). With
/// the protector the marker is masked, so the same bytes are caught.
#[test]
fn overrun_writing_the_plain_marker() {
    let mut g = Guarded::new();
    let mut h = heap4::<CortexM>(&mut g);
    #[cfg(feature = "heap-protector")]
    h.set_canary(0x1234_5678).unwrap();
    let a = h.malloc(24).unwrap();
    let b = h.malloc(24).unwrap();
    // SAFETY: overrun over `b`'s link word only, inside the heap.
    unsafe { a.as_ptr().add(24).write_bytes(0xFF, CortexM::WORD) };
    // SAFETY: `b` is live.
    let r = unsafe { h.free(b, None) };
    if cfg!(feature = "heap-protector") {
        // The full level's check() before the free finds the damage first.
        let expected = if validate::FULL {
            FreeError::Corrupted
        } else {
            FreeError::NotABlock
        };
        assert_eq!(r, Err(expected));
    } else {
        assert_eq!(r, Ok(()));
        h.check().unwrap();
    }
    g.assert_guards();
}

#[test]
fn size_overflow_is_refused() {
    let mut g = Guarded::new();
    let mut h = heap4::<Native>(&mut g);
    let _first = h.malloc(8).unwrap(); // heap_4 lays its blocks out at the first allocation
    let before_free = h.free_bytes();
    assert_eq!(h.malloc(usize::MAX), Err(AllocError::SizeOverflow));
    assert_eq!(
        h.malloc(usize::MAX - Native::HEADER + 1),
        Err(AllocError::SizeOverflow)
    );
    assert_eq!(h.calloc(usize::MAX / 2, 3), Err(AllocError::CallocOverflow));
    let mut c = heap4::<CortexM>(&mut Guarded::new());
    assert_eq!(c.malloc(0x8000_0000), Err(AllocError::SizeOverflow));
    assert_eq!(h.free_bytes(), before_free);
    h.check().unwrap();
    g.assert_guards();
}

#[test]
fn bad_regions_are_refused() {
    let mut g = Guarded::new();
    let p = g.heap_ptr().as_ptr();
    let mut h = Heap5::<Native, 4>::new();
    // Overlapping, descending, null and tiny regions: refused before anything is written.
    let overlapping = [
        HeapRegion {
            start: p,
            size: 1024,
        },
        HeapRegion {
            // SAFETY: inside the buffer.
            start: unsafe { p.add(512) },
            size: 1024,
        },
    ];
    // SAFETY: refused regions are never written.
    unsafe {
        assert_eq!(
            h.define_regions_raw(&overlapping),
            Err(RegionError::NotAscending { index: 1 })
        );
        let null = [HeapRegion {
            start: std::ptr::null_mut(),
            size: 1024,
        }];
        assert_eq!(
            h.define_regions_raw(&null),
            Err(RegionError::Null { index: 0 })
        );
        let tiny = [HeapRegion { start: p, size: 8 }];
        assert_eq!(
            h.define_regions_raw(&tiny),
            Err(RegionError::TooSmall { index: 0 })
        );
        assert_eq!(h.define_regions_raw(&[]), Err(RegionError::NoRegions));
    }
    assert!(!h.is_initialized());
    assert_eq!(h.malloc(8), Err(AllocError::Uninitialized));
    let mut ok = g.bytes_mut()[GUARD..GUARD + LEN].to_vec();
    ok.dedup();
    assert_eq!(ok, vec![0], "a refused region list wrote into the memory");
    g.assert_guards();
}

/// The fault a damaged free list raises: the walk's `BadLink` naming the block whose link is bad
/// or, with `validate-full`, the `check()` run before the operation (which names the first
/// inconsistency it meets: the block, or the list position where it was expected).
#[cfg(feature = "validate-cheap")]
fn assert_walk_fault(f: Corruption, block: usize) {
    if validate::FULL {
        assert!(matches!(f.kind, CorruptionKind::Check(_)), "{f:?}");
    } else {
        assert_eq!(f.kind, CorruptionKind::BadLink, "{f:?}");
        assert_eq!(f.address, block, "{f:?}");
    }
}

// ---- rows detected with validate-cheap ---------------------------------------------------------

/// An overrun from an allocated block into the header of the *free* block after it: the next
/// allocation follows the damaged link. With `validate-cheap` the walk refuses before writing and
/// reports the block; without it this is the wild write FreeRTOS suffers (not exercised here).
#[cfg(feature = "validate-cheap")]
#[test]
fn overrun_into_free_header_is_caught_by_the_walk() {
    for n in 1..=2 * CortexM::WORD {
        watch();
        let mut g = Guarded::new();
        let mut h = heap4::<CortexM>(&mut g);
        let a = h.malloc(24).unwrap();
        let b = h.malloc(24).unwrap();
        let c = h.malloc(24).unwrap();
        // SAFETY: `b` is live; freeing it makes a free block between `a`... and `c`.
        unsafe { h.free(b, None).unwrap() };
        let before = snap4(&h);
        // Overrun from `a` over `b`'s (free) header with a plausible-looking value.
        // SAFETY: inside the heap.
        unsafe { a.as_ptr().add(24).write_bytes(0x41, n) };
        // SAFETY: reading the damaged header's bytes back for the snapshot comparison.
        let damaged: Vec<u8> =
            unsafe { std::slice::from_raw_parts(a.as_ptr().add(24), 8).to_vec() };
        // The first fit walk meets `b` first.
        assert_eq!(h.malloc(8), Err(AllocError::Corrupted), "n = {n}");
        let f = seen();
        assert_eq!(f.len(), 1, "n = {n}: {f:?}");
        assert_walk_fault(f[0], header_of::<CortexM>(b) as usize);
        // Nothing was written: same counters, same damaged bytes, guards intact.
        // The statistics walk (vPortGetHeapStats) stops at the bad link too, and reports it.
        let after = snap4(&h);
        assert_eq!(after.free, before.free);
        assert_eq!(after.allocs, before.allocs);
        let last = *seen().last().unwrap();
        assert_eq!(last.operation, validate::Operation::Stats);
        assert_eq!(last.address, header_of::<CortexM>(b) as usize);
        // SAFETY: as above.
        let now: Vec<u8> = unsafe { std::slice::from_raw_parts(a.as_ptr().add(24), 8).to_vec() };
        assert_eq!(now, damaged);
        // Freeing `c` walks past `b` too: refused, `c` still allocated.
        // SAFETY: `c` is live.
        assert_eq!(unsafe { h.free(c, None) }, Err(FreeError::Corrupted));
        assert_eq!(h.free_bytes(), before.free);
        assert!(h.check().is_err());
        g.assert_guards();
    }
}

/// A free block's link overwritten with an in-heap, on-grid offset (a use-after-free write of a
/// stale pointer, or a forged link): it leads to an allocated block, or backwards. Caught by the
/// walk with `validate-cheap`.
#[cfg(feature = "validate-cheap")]
#[test]
fn forged_links_are_caught() {
    for target in ["allocated", "backwards", "outside", "off-grid"] {
        watch();
        let mut g = Guarded::new();
        let mut h = heap4::<CortexM>(&mut g);
        let a = h.malloc(24).unwrap();
        let b = h.malloc(24).unwrap();
        let _c = h.malloc(24).unwrap();
        // SAFETY: `b` is live.
        unsafe { h.free(b, None).unwrap() };
        let base = header_of::<CortexM>(a) as usize; // the heap base: offset 0
        let hb = header_of::<CortexM>(b);
        let forged: u32 = match target {
            "allocated" => 64, // `_c`'s header: an allocated block
            "backwards" => 0,  // `a`: below `b`, and allocated
            "outside" => (LEN * 4) as u32,
            _ => (hb as usize - base + 4) as u32,
        };
        // SAFETY: `b`'s link word, inside the heap (no canary set: stored plain).
        unsafe { hb.cast::<u32>().write(forged) };
        assert_eq!(h.malloc(8), Err(AllocError::Corrupted), "{target}");
        let f = seen();
        assert_eq!(f.len(), 1, "{target}: {f:?}");
        assert_walk_fault(f[0], hb as usize);
        g.assert_guards();
    }
}

/// Overruns on heap_2 (size-ordered list) and heap_5 (two regions, the link crossing the gap).
#[cfg(feature = "validate-cheap")]
#[test]
fn damaged_free_lists_of_heap2_and_heap5_are_refused() {
    watch();
    let mut g = Guarded::new();
    let mut h = heap2::<Native>(&mut g);
    let a = h.malloc(48).unwrap();
    let b = h.malloc(48).unwrap();
    let _c = h.malloc(48).unwrap();
    // SAFETY: live block freed once.
    unsafe { h.free(b, None).unwrap() };
    let free = h.free_bytes();
    // SAFETY: overrun from `a` (payload 48 bytes, no padding on Native) over `b`'s free header.
    unsafe { a.as_ptr().add(48).write_bytes(0x41, Native::HEADER) };
    assert_eq!(h.malloc(8), Err(AllocError::Corrupted));
    assert_eq!(h.free_bytes(), free);
    assert!(!seen().is_empty());
    g.assert_guards();

    watch();
    let mut g = Guarded::new();
    let mut h = heap5::<Native>(&mut g);
    // Region 0's single free block: its link leads to region 0's end marker. Point it into the gap.
    let first = h.blocks().next().unwrap();
    assert_eq!(first.kind, BlockKind::Free);
    let gap_off = (LEN / 2 - 128) as u64; // between the regions (offset from the base)
    let base = first.address;
    // SAFETY: the first block's link word, inside region 0.
    unsafe { (base as *mut u64).write(gap_off) };
    // Larger than region 0's block, smaller than region 1's: the walk must follow the link.
    assert_eq!(h.malloc(1900), Err(AllocError::Corrupted));
    let f = seen();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_walk_fault(f[0], base);
    g.assert_guards();
}

/// A realloc that grows into its free upper neighbour removes the neighbour from the index; on a
/// damaged index that removal is refused and writes nothing. `Hybrid` keeps a count of its free
/// blocks (which decides its form, and which `check()` compares with the blocks it meets): the
/// refused removal must leave it too, in list form and in tree form.
#[cfg(feature = "validate-cheap")]
#[test]
fn refused_remove_keeps_the_hybrid_count() {
    fn run<I: rtos_heap::FreeIndex>(form: &str) {
        watch();
        let mut g = Guarded::new();
        let mut h = Heap4::<CortexM, I>::new();
        // SAFETY: the guarded buffer outlives the heap (both live in this frame).
        unsafe { h.init_from_raw(g.heap_ptr(), LEN).unwrap() };
        let p: Vec<_> = (0..16).map(|_| h.malloc(24).unwrap()).collect();
        for &b in p[1..12].iter().step_by(2) {
            // SAFETY: live blocks, each freed once.
            unsafe { h.free(b, None).unwrap() };
        }
        // Six holes of 32 bytes (1, 3, ..., 11) and the rest of the heap.
        let free_blocks = h.stats().free_blocks;
        h.check().unwrap();
        // An overrun sets the allocated bit of every hole but 3: the removal of 3 meets one of
        // them (the list's head, 1; a tree node on the path to 3, or one of 3's children).
        let size_word = |i: usize| header_of::<CortexM>(p[i]).wrapping_add(CortexM::WORD);
        let flip = || {
            for i in [1, 5, 7, 9, 11] {
                let w = size_word(i).cast::<u32>();
                // SAFETY: the size word of a hole's header, inside the heap.
                unsafe { w.write(w.read() ^ 1 << 31) };
            }
        };
        flip();
        let damaged = h.check().unwrap_err();
        let free = h.free_bytes();
        // 2 grows into 3 (32 + 32 bytes for a 48-byte payload): `index.remove(3)`, refused.
        // SAFETY: `p[2]` is live, allocated with 24 bytes.
        let r = unsafe { h.reallocate(p[2], l(24), 48) };
        assert!(r.is_err(), "{form}: {r:?}");
        let f = seen();
        assert!(!f.is_empty(), "{form}");
        if !validate::FULL {
            assert_eq!(f[0].kind, CorruptionKind::BadLink, "{form}: {f:?}");
            assert_eq!(f[0].operation, validate::Operation::Reallocate, "{form}");
        }
        assert_eq!(h.free_bytes(), free, "{form}");
        assert_eq!(h.check(), Err(damaged), "{form}");
        // Repaired, the heap is what it was: the count included.
        flip();
        assert_eq!(h.check(), Ok(()), "{form}");
        assert_eq!(h.stats().free_blocks, free_blocks, "{form}");
        // And the same realloc now takes 3.
        // SAFETY: as above.
        let q = unsafe { h.reallocate(p[2], l(24), 48) }.unwrap();
        assert_eq!(q, p[2], "{form}");
        assert_eq!(h.stats().free_blocks, free_blocks - 1, "{form}");
        assert_eq!(h.check(), Ok(()), "{form}");
        g.assert_guards();
    }
    // Seven free blocks: below 128 the list holds them, above 4 the tree.
    run::<rtos_heap::Hybrid>("list form");
    run::<rtos_heap::Hybrid<4>>("tree form");
}

/// With the protector the links in memory are masked: a plain offset written by an overrun never
/// decodes to itself.
#[cfg(feature = "heap-protector")]
#[test]
fn protector_masks_stored_links() {
    let mut g = Guarded::new();
    let mut h = heap4::<CortexM>(&mut g);
    let canary = 0xA5C3_0F96;
    h.set_canary(canary).unwrap();
    let a = h.malloc(24).unwrap();
    // The free block after `a` links to the end marker at (LEN - 8) - 0 with plain value; stored
    // masked.
    let free_hdr = a.as_ptr().wrapping_add(24).cast::<u32>();
    let marker = h.blocks().find(|b| b.kind == BlockKind::EndMarker).unwrap();
    let plain = (marker.address - header_of::<CortexM>(a) as usize) as u32;
    // SAFETY: reading the free block's link word.
    let stored = unsafe { free_hdr.read() };
    assert_eq!(stored, plain ^ canary as u32);
    assert_ne!(stored, plain);
    // An allocated block's link holds the masked NIL.
    // SAFETY: `a`'s link word.
    let marker_word = unsafe { header_of::<CortexM>(a).cast::<u32>().read() };
    assert_eq!(marker_word, u32::MAX ^ canary as u32);
    g.assert_guards();
}

// ---- rows detected with validate-full ----------------------------------------------------------

/// With `validate-full` a damaged header anywhere is found before the next operation, even one
/// that would never look at it; the operation is refused.
#[cfg(feature = "validate-full")]
#[test]
fn full_level_refuses_any_operation_on_a_damaged_heap() {
    watch();
    let mut g = Guarded::new();
    let mut h = heap4::<Native>(&mut g);
    let a = h.malloc(48).unwrap();
    let b = h.malloc(48).unwrap();
    let _c = h.malloc(48).unwrap();
    // SAFETY: overrun of 8 bytes over `b`'s link word (allocated marker destroyed).
    unsafe { a.as_ptr().add(48).write_bytes(0, 8) };
    let free = h.free_bytes();
    assert_eq!(h.malloc(8), Err(AllocError::Corrupted));
    // SAFETY: `a` is live and undamaged, but the heap is not: refused.
    assert_eq!(unsafe { h.free(a, None) }, Err(FreeError::Corrupted));
    assert_eq!(h.free_bytes(), free);
    let f = seen();
    assert_eq!(f.len(), 2);
    assert!(matches!(f[0].kind, CorruptionKind::Check(_)));
    assert_eq!(f[0].address, header_of::<Native>(b) as usize);
    g.assert_guards();
}

// ---- rows detected with poison -----------------------------------------------------------------

/// A write after free into a block's payload: with `poison` the block is refused when it would be
/// handed out again (hook with the block address); without, it goes unnoticed.
#[test]
fn use_after_free_write() {
    watch();
    let mut g = Guarded::new();
    let mut h = heap4::<Native>(&mut g);
    let a = h.malloc(64).unwrap();
    let _b = h.malloc(64).unwrap();
    // SAFETY: `a` is live.
    unsafe { h.free(a, Some(l(64))).unwrap() };
    // SAFETY: the deliberate write after free, inside the heap.
    unsafe { a.as_ptr().add(10).write(0x77) };
    let r = h.malloc(64);
    if cfg!(feature = "poison") {
        assert_eq!(r, Err(AllocError::Corrupted));
        let f = seen();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, CorruptionKind::UseAfterFree);
        assert_eq!(f[0].address, header_of::<Native>(a) as usize);
    } else {
        assert_eq!(
            r,
            Ok(a),
            "undetected: the damaged block is handed out again"
        );
    }
    g.assert_guards();
}

/// Poisoning fills freed payloads (and headers swallowed by merges) with the pattern, so an
/// honest free/allocate cycle never trips it.
#[cfg(feature = "poison")]
#[test]
fn poison_pattern_round_trip() {
    watch();
    let mut g = Guarded::new();
    let mut h = heap4::<Native>(&mut g);
    let mut live = Vec::new();
    for i in 1..20 {
        live.push((h.malloc(i * 8).unwrap(), i * 8));
    }
    for (i, &(p, n)) in live.iter().enumerate() {
        if i % 2 == 0 {
            // SAFETY: live block, freed once.
            unsafe { h.free(p, Some(l(n))).unwrap() };
            // SAFETY: reading freed memory in the test only to check the pattern.
            let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), n) };
            assert!(bytes.iter().all(|&b| b == validate::POISON));
        }
    }
    for (i, &(p, n)) in live.iter().enumerate() {
        if i % 2 == 1 {
            // SAFETY: live block, freed once.
            unsafe { h.free(p, Some(l(n))).unwrap() };
        }
    }
    // Everything merged back: one block, all poison, handed out without a fault.
    let big = h.malloc(LEN / 2).unwrap();
    assert!(seen().is_empty(), "{:?}", seen());
    // SAFETY: a fresh block.
    unsafe { h.free(big, None).unwrap() };
    h.check().unwrap();
    g.assert_guards();
}
