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

/// The statistics walk of the tree index checks every node it visits at every level (a node on
/// the grid inside a region, a bounded depth): a damaged node stops it and is reported as the
/// list's bad link is, `validate-cheap` or not.
#[test]
fn a_damaged_tree_node_is_reported_by_the_stats_walk() {
    watch();
    let mut g = Guarded::new();
    let mut h = heap4_of::<rtos_heap::AddressTree>(&mut g);
    let a = h.malloc(24).unwrap();
    let b = h.malloc(24).unwrap();
    let _c = h.malloc(24).unwrap();
    // SAFETY: `b` is live; freed, it becomes the tree's one node (the rest is the top block).
    unsafe { h.free(b, None).unwrap() };
    assert_eq!(h.stats().free_blocks, 2);
    assert!(seen().is_empty());
    // An overrun from `a` over `b`'s header into its node words (its children's links).
    // SAFETY: inside the heap: `a`'s payload, `b`'s header and the start of its payload.
    unsafe { a.as_ptr().add(24 + CortexM::HEADER).write_bytes(0x41, 8) };
    let s = h.stats();
    let f = seen();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].operation, validate::Operation::Stats, "{f:?}");
    assert_eq!(f[0].kind, CorruptionKind::BadLink, "{f:?}");
    // What was counted before the damaged node: the top block and `b`.
    assert!(s.free_blocks <= 2, "{s:?}");
    g.assert_guards();
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
        let mut h = heap4_of::<I>(&mut g);
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

// ---- split-off pieces refused by a damaged index (validate-cheap) ------------------------------
//
// An allocation aligned above `portBYTE_ALIGNMENT` gives the pieces around its aligned block back
// to the index (the tail after it, the gap in front), and a realloc that grows into its free upper
// neighbour gives the remainder after the grown block back. When the index refuses such a piece
// (its insert meets a link that does not check out) the piece must stay allocated: reported,
// counted nowhere as free, the heap consistent once the damage is repaired.
//
// Which of those inserts a damaged address list (heap_4/heap_5, and `Hybrid` in list form) can
// refuse:
// - the tail (aligned allocation) and the remainder (realloc): both end where the block taken
//   ended, and their insert merges with the list node right above and reads that node's link,
//   which nothing validated before. On heap_5 that node can be an intermediate end marker still
//   listed: one bad word. On heap_4 no free block lies right above a free one, so it takes a link
//   forged to the allocated block above and that block's header forged free.
// - the gap (aligned allocation): no corruption reaches it. Its insert walks the list up to the
//   block taken, through exactly the links that the allocation's own first-fit walk validated a
//   moment before (nothing below that block was written since, and the node it stops at is the
//   one `take` or the tail's insert just linked, itself validated), and it never merges up: the
//   aligned block lies right above it. A list test of a refused gap would assert nothing; the
//   list tests below check instead that the gap is given back while the tail is refused.
//
// The tree (`AddressTree`, `Hybrid` above its threshold) searches by subtree maximum and inserts
// by address, on different paths: there the gap's insert can be refused (tested below).

/// The 32-bit words of a `CortexM` heap's blocks, from its base (offset 0), stored plain (no
/// canary is set): the header's [`LINK`] and [`SIZE`] words, and a tree node's [`RIGHT`] word.
#[cfg(feature = "validate-cheap")]
#[derive(Clone, Copy)]
struct Words(*mut u8);

/// The link word (a tree node's left child and balance).
#[cfg(feature = "validate-cheap")]
const LINK: usize = 0;
/// The size word, its MSB the allocated bit.
#[cfg(feature = "validate-cheap")]
const SIZE: usize = 1;
/// A tree node's right child: the first payload word.
#[cfg(feature = "validate-cheap")]
const RIGHT: usize = 2;

#[cfg(feature = "validate-cheap")]
impl Words {
    fn ptr(self, off: usize, k: usize) -> *mut u32 {
        self.0.wrapping_add(off + 4 * k).cast()
    }
    fn get(self, off: usize, k: usize) -> u32 {
        // SAFETY: a word of a block of the heap, inside the guarded buffer (4-byte aligned: blocks
        // lie on the 8-byte grid of a u64 buffer).
        unsafe { self.ptr(off, k).read() }
    }
    fn set(self, off: usize, k: usize, v: u32) {
        // SAFETY: as `get`: the deliberate damage, or its repair.
        unsafe { self.ptr(off, k).write(v) }
    }
    /// Host address of offset `off`.
    fn addr(self, off: usize) -> usize {
        self.0 as usize + off
    }
    /// Offset of the header of the block of payload `p`.
    fn block(self, p: NonNull<u8>) -> usize {
        p.as_ptr() as usize - self.0 as usize - CortexM::HEADER
    }
    /// The size of a filler block allocated first (at offset 0) that puts the payload of the
    /// block `at` bytes after the filler `below` bytes under a 64-byte boundary.
    fn filler(self, at: usize, below: usize) -> usize {
        let x = (self.0 as usize + at + CortexM::HEADER + below) % 64;
        let fw = (64 - x) % 64;
        if fw < CortexM::MIN_BLOCK { fw + 64 } else { fw }
    }
    /// The block walk as (offset, size, kind).
    fn walk(
        self,
        blocks: impl Iterator<Item = rtos_heap::BlockInfo>,
    ) -> Vec<(usize, usize, BlockKind)> {
        blocks
            .map(|b| (b.address - self.0 as usize, b.size, b.kind))
            .collect()
    }
}

/// The counters are the blocks: the free blocks of the walk add up to `free_bytes()`, and the walk
/// meets no block it cannot read (a piece counted free but never written as a block).
#[cfg(feature = "validate-cheap")]
fn assert_counted(blocks: &[(usize, usize, BlockKind)], free_bytes: usize, form: &str) {
    assert!(
        blocks.iter().all(|b| b.2 != BlockKind::Corrupt),
        "{form}: {blocks:?}"
    );
    let walk: usize = blocks
        .iter()
        .filter(|b| b.2 == BlockKind::Free)
        .map(|b| b.1)
        .sum();
    assert_eq!(walk, free_bytes, "{form}: {blocks:?}");
}

/// One fault was reported, for `op`: the bad link at `addr`, or with `validate-full` the
/// `check()` run before the operation.
#[cfg(feature = "validate-cheap")]
fn assert_one_fault(addr: usize, op: validate::Operation, form: &str) {
    let f = seen();
    assert_eq!(f.len(), 1, "{form}: {f:?}");
    assert_eq!(f[0].operation, op, "{form}: {f:?}");
    if validate::FULL {
        assert!(
            matches!(f[0].kind, CorruptionKind::Check(_)),
            "{form}: {f:?}"
        );
    } else {
        assert_eq!(f[0].kind, CorruptionKind::BadLink, "{form}: {f:?}");
        assert_eq!(f[0].address, addr, "{form}: {f:?}");
    }
}

/// After the repair: the live blocks freed, the heap is whole again (`total` free bytes), fills
/// up with small blocks and empties, splits an aligned allocation cleanly; consistent all along
/// and no fault reported.
#[cfg(feature = "validate-cheap")]
fn keeps_working<H: RawHeap>(h: &mut H, live: &[NonNull<u8>], total: usize, form: &str) {
    watch();
    for &p in live {
        // SAFETY: live blocks of `h`, each freed once.
        unsafe { h.free(p, None) }.unwrap();
    }
    assert_eq!(h.check(), Ok(()), "{form}");
    assert_eq!(h.free_bytes(), total, "{form}");
    let mut all = Vec::new();
    let e = loop {
        match h.malloc(24) {
            Ok(p) => all.push(p),
            Err(e) => break e,
        }
    };
    assert_eq!(e, AllocError::OutOfMemory, "{form}");
    assert!(all.len() > total / 40, "{form}: {}", all.len());
    assert_eq!(h.check(), Ok(()), "{form}");
    for p in all {
        // SAFETY: as above.
        unsafe { h.free(p, None) }.unwrap();
    }
    let layout = Layout::from_size_align(40, 64).unwrap();
    let p = h.allocate(layout).unwrap();
    assert_eq!(p.as_ptr() as usize % 64, 0, "{form}");
    assert_eq!(h.check(), Ok(()), "{form}");
    // SAFETY: as above.
    unsafe { h.free(p, Some(layout)) }.unwrap();
    assert_eq!(h.check(), Ok(()), "{form}");
    assert_eq!(h.free_bytes(), total, "{form}");
    assert!(seen().is_empty(), "{form}: {:?}", seen());
}

/// A `Heap4` on the 32-bit layout over the guarded buffer.
fn heap4_of<I: rtos_heap::FreeIndex>(g: &mut Guarded) -> Heap4<CortexM, I> {
    let mut h = Heap4::new();
    // SAFETY: the guarded buffer outlives the heap (both live in the caller's frame).
    unsafe { h.init_from_raw(g.heap_ptr(), LEN).unwrap() };
    h
}

/// A heap_5 of two `CortexM` regions in the guarded buffer: region 0 at offsets 0..1784 (its end
/// marker at 1784), region 1 at 2048..4088.
#[cfg(feature = "validate-cheap")]
fn heap5_of<I: rtos_heap::FreeIndex>(g: &mut Guarded) -> Heap5<CortexM, 2, I> {
    let p = g.heap_ptr().as_ptr();
    let mut h = Heap5::new();
    let regions = [
        HeapRegion {
            start: p,
            size: LEN / 2 - 256,
        },
        HeapRegion {
            start: p.wrapping_add(LEN / 2),
            size: LEN / 2,
        },
    ];
    // SAFETY: both regions lie in the guarded buffer, which outlives the heap.
    unsafe { h.define_regions_raw(&regions).unwrap() };
    h
}

/// heap_4: an aligned allocation takes a hole whole; its tail's insert merges with the block above
/// (forged into the list: the hole's link points to it, its header reads free with a link going
/// backwards) and is refused. The tail stays part of the allocated block, the gap in front is
/// given back, the counters match the blocks.
#[cfg(feature = "validate-cheap")]
#[test]
fn refused_tail_of_an_aligned_allocation_stays_allocated() {
    fn run<I: rtos_heap::FreeIndex>(form: &str) {
        watch();
        let mut g = Guarded::new();
        let w = Words(g.heap_ptr().as_ptr());
        let mut h = heap4_of::<I>(&mut g);
        // A filler, then a hole B of 128 bytes whose payload lies 32 bytes below a 64-byte
        // boundary, the allocated block Y above it, the rest R free.
        let fw = w.filler(0, 32);
        let f = h.malloc(fw - CortexM::HEADER).unwrap();
        let b = h.malloc(128 - CortexM::HEADER).unwrap();
        let y = h.malloc(24).unwrap();
        let (bo, yo) = (w.block(b), w.block(y));
        assert_eq!((bo, yo), (fw, fw + 128), "{form}");
        let (ro, end) = (yo + 32, LEN - CortexM::HEADER);
        // SAFETY: `b` is live, freed once.
        unsafe { h.free(b, None) }.unwrap();
        assert_eq!(h.check(), Ok(()), "{form}");
        // 40 bytes aligned to 64: wanted 48, a search for 48 + 64 + 16 = 128 bytes finds B, taken
        // whole. Gap 32, aligned block 48, tail 48 ending at Y.
        let saved = (w.get(bo, LINK), w.get(yo, LINK), w.get(yo, SIZE));
        assert_eq!(saved.0 as usize, ro, "{form}");
        // The search validates B's link (Y reads free), not Y's, which the tail's merge reads.
        w.set(bo, LINK, yo as u32);
        w.set(yo, SIZE, saved.2 & !(1 << 31));
        w.set(yo, LINK, 0);
        let free = h.free_bytes();
        let layout = Layout::from_size_align(40, 64).unwrap();
        let r = h.allocate(layout);
        assert_one_fault(w.addr(yo), validate::Operation::Allocate, form);
        let live = if validate::FULL {
            assert_eq!(r, Err(AllocError::Corrupted), "{form}");
            assert_eq!(h.free_bytes(), free, "{form}");
            w.set(bo, LINK, saved.0);
            w.set(yo, LINK, saved.1);
            w.set(yo, SIZE, saved.2);
            vec![f, y]
        } else {
            let p = r.unwrap();
            assert_eq!(p.as_ptr() as usize, w.addr(bo + 32 + 8), "{form}");
            assert_eq!(p.as_ptr() as usize % 64, 0, "{form}");
            // The tail is part of the aligned block: 48 + 48 bytes.
            // SAFETY: `p` is live.
            assert_eq!(unsafe { h.usable_size(p) }, Ok(96 - 8), "{form}");
            // Only the gap came back.
            assert_eq!(h.free_bytes(), free - 128 + 32, "{form}");
            w.set(yo, LINK, saved.1);
            w.set(yo, SIZE, saved.2);
            let blocks = w.walk(h.blocks());
            let expected = [
                (0, fw, BlockKind::Allocated),
                (bo, 32, BlockKind::Free),
                (bo + 32, 96, BlockKind::Allocated),
                (yo, 32, BlockKind::Allocated),
                (ro, end - ro, BlockKind::Free),
                (end, 0, BlockKind::EndMarker),
            ];
            assert_eq!(blocks, expected, "{form}");
            assert_counted(&blocks, h.free_bytes(), form);
            // The gap took B's place in the list, with B's forged link: repaired.
            assert_eq!(w.get(bo, LINK) as usize, yo, "{form}");
            w.set(bo, LINK, saved.0);
            vec![f, y, p]
        };
        assert_eq!(h.check(), Ok(()), "{form}");
        assert_eq!(h.stats().free_blocks, 2, "{form}");
        keeps_working(&mut h, &live, end, form);
        g.assert_guards();
    }
    run::<rtos_heap::AddressList>("AddressList");
    run::<rtos_heap::Hybrid>("Hybrid");
}

/// heap_4: a realloc grows a block into the free hole N above it; the remainder's insert merges
/// with the block above N (forged into the list as above) and is refused. The whole merged block
/// stays allocated and the counters match the blocks.
#[cfg(feature = "validate-cheap")]
#[test]
fn refused_remainder_of_a_realloc_in_place_stays_allocated() {
    fn run<I: rtos_heap::FreeIndex>(form: &str) {
        watch();
        let mut g = Guarded::new();
        let w = Words(g.heap_ptr().as_ptr());
        let mut h = heap4_of::<I>(&mut g);
        // A hole H0 (32 bytes, the list's head), the block A (32), a hole N (64), the allocated
        // block Y (32), the rest R free.
        let h0 = h.malloc(24).unwrap();
        let a = h.malloc(24).unwrap();
        let n = h.malloc(56).unwrap();
        let y = h.malloc(24).unwrap();
        let (ao, no, yo) = (w.block(a), w.block(n), w.block(y));
        assert_eq!((w.block(h0), ao, no, yo), (0, 32, 64, 128), "{form}");
        let (ro, end) = (yo + 32, LEN - CortexM::HEADER);
        // SAFETY: live blocks, each freed once.
        unsafe {
            h.free(h0, None).unwrap();
            h.free(n, None).unwrap();
        }
        assert_eq!(h.check(), Ok(()), "{form}");
        // A grows from 24 to 40 bytes: 32 + 64 bytes merged, 48 wanted, a remainder of 48
        // ending at Y.
        let saved = (w.get(no, LINK), w.get(yo, LINK), w.get(yo, SIZE));
        assert_eq!(saved.0 as usize, ro, "{form}");
        // The removal of N validates N's link (Y reads free), not Y's, which the remainder's
        // merge reads.
        w.set(no, LINK, yo as u32);
        w.set(yo, SIZE, saved.2 & !(1 << 31));
        w.set(yo, LINK, 0);
        let free = h.free_bytes();
        // SAFETY: `a` is live, allocated with 24 bytes.
        let r = unsafe { h.reallocate(a, l(24), 40) };
        assert_one_fault(w.addr(yo), validate::Operation::Reallocate, form);
        if validate::FULL {
            assert_eq!(
                r,
                Err(rtos_heap::ReallocError::Free(FreeError::Corrupted)),
                "{form}"
            );
            assert_eq!(h.free_bytes(), free, "{form}");
            w.set(no, LINK, saved.0);
            w.set(yo, LINK, saved.1);
            w.set(yo, SIZE, saved.2);
            // The hole N is still there: the realloc grows into it now.
            // SAFETY: as above.
            assert_eq!(unsafe { h.reallocate(a, l(24), 40) }, Ok(a), "{form}");
        } else {
            assert_eq!(r, Ok(a), "{form}");
            // Not split: A is the whole 96 bytes.
            // SAFETY: `a` is live.
            assert_eq!(unsafe { h.usable_size(a) }, Ok(96 - 8), "{form}");
            // N left the free bytes, and nothing came back.
            assert_eq!(h.free_bytes(), free - 64, "{form}");
            w.set(yo, LINK, saved.1);
            w.set(yo, SIZE, saved.2);
            let blocks = w.walk(h.blocks());
            let expected = [
                (0, 32, BlockKind::Free),
                (ao, 96, BlockKind::Allocated),
                (yo, 32, BlockKind::Allocated),
                (ro, end - ro, BlockKind::Free),
                (end, 0, BlockKind::EndMarker),
            ];
            assert_eq!(blocks, expected, "{form}");
            assert_counted(&blocks, h.free_bytes(), form);
            // The removal gave N's forged link to H0: repaired.
            assert_eq!(w.get(0, LINK) as usize, yo, "{form}");
            w.set(0, LINK, saved.0);
        }
        assert_eq!(h.check(), Ok(()), "{form}");
        keeps_working(&mut h, &[a, y], end, form);
        g.assert_guards();
    }
    run::<rtos_heap::AddressList>("AddressList");
    run::<rtos_heap::Hybrid>("Hybrid");
}

/// Tree form (`Hybrid` above its threshold, `AddressTree`): the gap's insert *can* be refused,
/// since the tree's search and insert descend by different keys. The search (by subtree maximum)
/// stops at the one hole that fits, N, vetting the nodes on its way and two levels below each;
/// the gap's insert (by address) passes N's place and goes down the right spine of N's left
/// subtree, vetting two levels ahead, and meets a node three levels below N whose header was
/// damaged (its allocated bit set). With a gap of 72 bytes there is no tail (the aligned block
/// keeps the 8 bytes after it), so the gap's is the only insert. The gap becomes an allocated
/// block of its own, counted nowhere as free; once the header is repaired it frees like any
/// block.
#[cfg(feature = "validate-cheap")]
#[test]
fn refused_gap_of_an_aligned_allocation_becomes_a_block_of_its_own() {
    fn run<I: rtos_heap::FreeIndex>(form: &str) {
        watch();
        let mut g = Guarded::new();
        let w = Words(g.heap_ptr().as_ptr());
        let mut h = heap4_of::<I>(&mut g);
        let end = LEN - CortexM::HEADER;
        // A filler; 15 pairs (kept, hole) of 32 bytes; a kept block and the hole N of 256 bytes,
        // whose payload lies 8 bytes below a 64-byte boundary; 15 pairs more; a kept block; the
        // top block. Freed in address order: 31 nodes, N in the middle.
        let fw = w.filler(15 * 64 + 32, 8);
        let f = h.malloc(fw - CortexM::HEADER).unwrap();
        let mut kept = vec![f];
        let mut holes = Vec::new();
        for i in 0..31 {
            kept.push(h.malloc(24).unwrap());
            holes.push(h.malloc(if i == 15 { 248 } else { 24 }).unwrap());
        }
        kept.push(h.malloc(24).unwrap());
        for &b in &holes {
            // SAFETY: live blocks, each freed once.
            unsafe { h.free(b, None) }.unwrap();
        }
        assert_eq!(h.check(), Ok(()), "{form}");
        let n = w.block(holes[15]);
        assert_eq!(n, fw + 15 * 64 + 32, "{form}");
        // The tree, from the node words (`CortexM`: left | balance in the link word, right in
        // the first payload word, `nil` = pxEnd - 8): N's left child L, and the node D on L's
        // right spine two levels down, which vetting L looks at.
        let nil = end - CortexM::HEADER;
        let child = |x: usize, side: usize| {
            let c = if side == 0 {
                (w.get(x, LINK) & !7) as usize
            } else {
                w.get(x, RIGHT) as usize
            };
            (c != nil).then_some(c)
        };
        let l = child(n, 0).expect("N has a left subtree");
        let d = child(l, 1)
            .and_then(|c| child(c, 1))
            .expect("L's right spine is two levels deep");
        let size = w.get(d, SIZE);
        w.set(d, SIZE, size | 1 << 31);
        let free = h.free_bytes();
        // 40 bytes aligned to 64: 128 bytes from N (split), gap 8 + 64 = 72, aligned block
        // 48 + 8 (no tail), N's rest of 128 bytes stays in N's place.
        let layout = Layout::from_size_align(40, 64).unwrap();
        let r = h.allocate(layout);
        assert_one_fault(w.addr(l), validate::Operation::Allocate, form);
        let mut live = kept;
        if validate::FULL {
            assert_eq!(r, Err(AllocError::Corrupted), "{form}");
            assert_eq!(h.free_bytes(), free, "{form}");
            w.set(d, SIZE, size);
        } else {
            let q = r.unwrap();
            assert_eq!(q.as_ptr() as usize, w.addr(n + 72 + 8), "{form}");
            // SAFETY: `q` is live.
            assert_eq!(unsafe { h.usable_size(q) }, Ok(48), "{form}");
            // Nothing came back: the gap is not free.
            assert_eq!(h.free_bytes(), free - 128, "{form}");
            w.set(d, SIZE, size);
            let blocks = w.walk(h.blocks());
            let at = blocks.iter().position(|b| b.0 == n).unwrap();
            let expected = [
                (n, 72, BlockKind::Allocated),
                (n + 72, 56, BlockKind::Allocated),
                (n + 128, 128, BlockKind::Free),
            ];
            assert_eq!(blocks[at..at + 3], expected, "{form}");
            assert_counted(&blocks, h.free_bytes(), form);
            assert_eq!(h.check(), Ok(()), "{form}");
            // The gap's block frees like any other (it merges with nothing: kept blocks below,
            // the aligned block above).
            let gap = NonNull::new(w.addr(n + CortexM::HEADER) as *mut u8).unwrap();
            // SAFETY: the gap's block, allocated by the refusal and never handed out.
            unsafe { h.free(gap, None) }.unwrap();
            assert_eq!(h.free_bytes(), free - 128 + 72, "{form}");
            live.push(q);
        }
        assert_eq!(h.check(), Ok(()), "{form}");
        keeps_working(&mut h, &live, end, form);
        g.assert_guards();
    }
    run::<rtos_heap::Hybrid<4>>("Hybrid<4>");
    run::<rtos_heap::AddressTree>("AddressTree");
}

// heap_5 (`heap5_of`): the same two inserts, refused by a single bad word, the link of region
// 0's end marker while it is still listed: the tail's (or the remainder's) merge reads it.

/// Region 0's end marker, region 1's first block, and the free bytes of the empty heap.
#[cfg(feature = "validate-cheap")]
const MARKER: usize = 1784;
#[cfg(feature = "validate-cheap")]
const R1: usize = 2048;
#[cfg(feature = "validate-cheap")]
const TOTAL5: usize = MARKER + (LEN - CortexM::HEADER - R1);

/// heap_5: an aligned allocation takes region 0's last block whole; its tail ends at the listed
/// end marker, whose link is bad: the tail stays part of the allocated block, the gap is given
/// back.
#[cfg(feature = "validate-cheap")]
#[test]
fn heap5_refused_tail_at_a_listed_end_marker_stays_allocated() {
    fn run<I: rtos_heap::FreeIndex>(form: &str) {
        watch();
        let mut g = Guarded::new();
        let w = Words(g.heap_ptr().as_ptr());
        let mut h = heap5_of::<I>(&mut g);
        // A filler, then region 0's rest B, whose payload lies 32 bytes below a 64-byte boundary.
        let fw = w.filler(0, 32);
        let f = h.malloc(fw - CortexM::HEADER).unwrap();
        let s = MARKER - fw;
        // Taken whole by an aligned request of s bytes: gap 32, aligned block s - 80, tail 48
        // ending at the marker.
        let wanted = s - 64 - CortexM::MIN_BLOCK;
        let saved = w.get(MARKER, LINK);
        assert_eq!(saved as usize, R1, "{form}");
        w.set(MARKER, LINK, 0);
        let free = h.free_bytes();
        let layout = Layout::from_size_align(wanted - CortexM::HEADER, 64).unwrap();
        let r = h.allocate(layout);
        assert_one_fault(w.addr(MARKER), validate::Operation::Allocate, form);
        let live = if validate::FULL {
            assert_eq!(r, Err(AllocError::Corrupted), "{form}");
            assert_eq!(h.free_bytes(), free, "{form}");
            w.set(MARKER, LINK, saved);
            vec![f]
        } else {
            let p = r.unwrap();
            assert_eq!(p.as_ptr() as usize, w.addr(fw + 32 + 8), "{form}");
            // SAFETY: `p` is live.
            assert_eq!(unsafe { h.usable_size(p) }, Ok(s - 32 - 8), "{form}");
            assert_eq!(h.free_bytes(), free - s + 32, "{form}");
            let blocks = w.walk(h.blocks());
            let expected = [
                (0, fw, BlockKind::Allocated),
                (fw, 32, BlockKind::Free),
                (fw + 32, s - 32, BlockKind::Allocated),
                (MARKER, 0, BlockKind::EndMarker),
                (R1, LEN - 8 - R1, BlockKind::Free),
                (LEN - 8, 0, BlockKind::EndMarker),
            ];
            assert_eq!(blocks, expected, "{form}");
            assert_counted(&blocks, h.free_bytes(), form);
            w.set(MARKER, LINK, saved);
            vec![f, p]
        };
        assert_eq!(h.check(), Ok(()), "{form}");
        keeps_working(&mut h, &live, TOTAL5, form);
        g.assert_guards();
    }
    run::<rtos_heap::AddressList>("AddressList");
    run::<rtos_heap::Hybrid>("Hybrid");
}

/// heap_5: a realloc grows a block into region 0's last free block; the remainder ends at the
/// listed end marker, whose link is bad: the whole of region 0 stays allocated.
#[cfg(feature = "validate-cheap")]
#[test]
fn heap5_refused_realloc_remainder_at_a_listed_end_marker_stays_allocated() {
    fn run<I: rtos_heap::FreeIndex>(form: &str) {
        watch();
        let mut g = Guarded::new();
        let w = Words(g.heap_ptr().as_ptr());
        let mut h = heap5_of::<I>(&mut g);
        // A (32 bytes) and region 0's rest N, free, ending at the listed marker.
        let a = h.malloc(24).unwrap();
        assert_eq!(w.block(a), 0, "{form}");
        let saved = w.get(MARKER, LINK);
        assert_eq!(saved as usize, R1, "{form}");
        w.set(MARKER, LINK, 0);
        let free = h.free_bytes();
        // A grows to 40 bytes into N: a remainder of MARKER - 48 bytes ending at the marker.
        // SAFETY: `a` is live, allocated with 24 bytes.
        let r = unsafe { h.reallocate(a, l(24), 40) };
        assert_one_fault(w.addr(MARKER), validate::Operation::Reallocate, form);
        if validate::FULL {
            assert_eq!(
                r,
                Err(rtos_heap::ReallocError::Free(FreeError::Corrupted)),
                "{form}"
            );
            assert_eq!(h.free_bytes(), free, "{form}");
        } else {
            assert_eq!(r, Ok(a), "{form}");
            // Not split: A is the whole of region 0.
            // SAFETY: `a` is live.
            assert_eq!(unsafe { h.usable_size(a) }, Ok(MARKER - 8), "{form}");
            assert_eq!(h.free_bytes(), free - (MARKER - 32), "{form}");
            let blocks = w.walk(h.blocks());
            let expected = [
                (0, MARKER, BlockKind::Allocated),
                (MARKER, 0, BlockKind::EndMarker),
                (R1, LEN - 8 - R1, BlockKind::Free),
                (LEN - 8, 0, BlockKind::EndMarker),
            ];
            assert_eq!(blocks, expected, "{form}");
            assert_counted(&blocks, h.free_bytes(), form);
        }
        w.set(MARKER, LINK, saved);
        assert_eq!(h.check(), Ok(()), "{form}");
        keeps_working(&mut h, &[a], TOTAL5, form);
        g.assert_guards();
    }
    run::<rtos_heap::AddressList>("AddressList");
    run::<rtos_heap::Hybrid>("Hybrid");
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
