//! [`SizeTree`]: the heap_2 free-block index in O(log n).
//!
//! Same choices as [`SizeList`](super::index::SizeList) (and so as FreeRTOS heap_2), for every
//! request sequence: the smallest free block that fits is taken and, among blocks of that size, the
//! one freed (or split off) last. What changes is how that block is found:
//!
//! - one AVL tree with a node per *distinct* free-block size, keyed by size;
//! - the blocks of one size form a LIFO stack whose top (the newest) is the tree node itself; a
//!   block of a size already present takes the place of the old top in the tree (its children and
//!   height copied) and links to it.
//!
//! *find* descends to the smallest size ≥ the request (its node is the newest block of that size);
//! *take* pops that block (the next of its stack takes its place, or the node is deleted when it
//! was the last of its size); *insert* descends by size. Every operation is one or two
//! root-to-leaf passes over at most `1.45 log2(distinct sizes + 2)` levels: O(log n) worst case.
//!
//! # Node layout
//!
//! The node is stored in the free block, as [`AddressTree`](super::tree::AddressTree)'s is (same
//! word slots: the link word first, then the header's padding, then the payload): three 32-bit
//! words `left | h_lo`, `right | h_hi`, `next` (next block of the same size, or none). Block
//! offsets are multiples of `portBYTE_ALIGNMENT` (at least 8), so the low three bits of each child
//! link hold half of the node's height (6 bits: heights up to 63). `portBYTE_ALIGNMENT` 4 is
//! rejected at compile time; heaps spanning more than [`MAX_SPAN`](super::tree::MAX_SPAN) bytes
//! are refused when they are defined.
//!
//! The tree words are not validated with `validate-cheap` (heap_2 has no bad-link detection in
//! this index); with `SizeTree<true>` every operation is followed by a full check of the tree
//! (order, heights, balance, stacks of equal sizes), panicking on the first violation: the tests
//! use it.

// The `FreeIndex` methods take crate-private types (the trait is sealed).
#![allow(private_interfaces)]

use core::marker::PhantomData;

use crate::error::CheckErrorKind;
use crate::raw::{Arena, NIL};
use crate::target::TargetLayout;

use super::index::{FreeIndex, Pos};
use super::tree::{MAX_SPAN, node_bytes, slot};
use super::{Region, Summary};

/// The null link (no child, no next block): above every offset a heap can have.
const NT: usize = 0xFFFF_FFF8;
/// Low bits of a child link that hold height bits.
const LOW: u32 = 7;

/// Compile-time check of the target layout: three low bits free in every block offset.
struct Fits<T>(PhantomData<T>);

impl<T: TargetLayout> Fits<T> {
    const OK: () = assert!(
        T::ALIGN >= 8,
        "SizeTree needs portBYTE_ALIGNMENT >= 8 (heights live in the low 3 bits of child links)"
    );
}

/// heap_2's best fit in O(log n): an AVL tree of the distinct free-block sizes, each node the
/// newest block of its size with the older ones stacked below it.
///
/// Select it with `Heap2<T, SizeTree>`; [`SizeList`](crate::SizeList) (FreeRTOS's own list, O(free
/// blocks)) stays the default and the reference. Placement, statistics and every returned offset
/// are identical (the differential tests check it over random sequences).
///
/// `VERIFY = true` checks the whole tree after every operation (tests only).
///
/// # Examples
///
/// ```
/// use core::mem::MaybeUninit;
/// use rtos_heap::{CortexM, Heap2, RawHeap, SizeTree};
///
/// let memory: &'static mut [MaybeUninit<u8>] = Box::leak(Box::new([MaybeUninit::uninit(); 1024]));
/// let mut heap = Heap2::<CortexM, SizeTree>::new();
/// heap.init(memory).unwrap();
/// let a = heap.malloc(8).unwrap();
/// let b = heap.malloc(8).unwrap();
/// unsafe { heap.free(a, None).unwrap(); heap.free(b, None).unwrap() };
/// assert_eq!(heap.malloc(8).unwrap(), b); // newest first among equal sizes, as heap_2
/// ```
#[derive(Debug)]
pub struct SizeTree<const VERIFY: bool = false> {
    root: usize,
}

/// Node access over one arena.
struct Nodes<'a, T> {
    a: &'a Arena<T>,
}

impl<T> Clone for Nodes<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Nodes<'_, T> {}

impl<T: TargetLayout> Nodes<'_, T> {
    #[inline(always)]
    fn word(self, n: usize, k: usize) -> u32 {
        // SAFETY: `n` is a free block of the tree: its node words lie inside it (`Fits`, and the
        // smallest free block holds `node_bytes` payload bytes), 4-byte aligned.
        unsafe { self.a.ptr(n + slot::<T>(k)).cast::<u32>().read() }
    }

    #[inline(always)]
    fn set_word(self, n: usize, k: usize, v: u32) {
        // SAFETY: as in `word`; the block is free, its node words are the index's.
        unsafe { self.a.ptr(n + slot::<T>(k)).cast::<u32>().write(v) }
    }

    #[inline(always)]
    fn left(self, n: usize) -> usize {
        (self.word(n, 0) & !LOW) as usize
    }

    #[inline(always)]
    fn right(self, n: usize) -> usize {
        (self.word(n, 1) & !LOW) as usize
    }

    #[inline(always)]
    fn height(self, n: usize) -> u32 {
        if n == NT {
            0
        } else {
            (self.word(n, 0) & LOW) | ((self.word(n, 1) & LOW) << 3)
        }
    }

    #[inline(always)]
    fn next(self, n: usize) -> usize {
        self.word(n, 2) as usize
    }

    #[inline(always)]
    fn size(self, n: usize) -> usize {
        // SAFETY: `n` is a free block of the tree.
        unsafe { self.a.free_size(n) }
    }

    /// Makes `n` the parent of `l` and `r` and sets its height.
    #[inline(always)]
    fn set(self, n: usize, l: usize, r: usize) {
        let h = 1 + self.height(l).max(self.height(r));
        self.set_word(n, 0, l as u32 | (h & LOW));
        self.set_word(n, 1, r as u32 | (h >> 3));
    }

    /// `to` takes `from`'s place in the tree (children and height).
    #[inline(always)]
    fn replace(self, from: usize, to: usize) {
        self.set_word(to, 0, self.word(from, 0));
        self.set_word(to, 1, self.word(from, 1));
    }

    /// Sets `n`'s children to `l` and `r` and restores the AVL balance there (heights of `l` and
    /// `r` differ by at most 2); the subtree's new root.
    fn fix(self, n: usize, l: usize, r: usize) -> usize {
        let (hl, hr) = (self.height(l), self.height(r));
        if hl > hr + 1 {
            let (ll, lr) = (self.left(l), self.right(l));
            if self.height(ll) >= self.height(lr) {
                self.set(n, lr, r);
                self.set(l, ll, n);
                return l;
            }
            let (lrl, lrr) = (self.left(lr), self.right(lr));
            self.set(l, ll, lrl);
            self.set(n, lrr, r);
            self.set(lr, l, n);
            return lr;
        }
        if hr > hl + 1 {
            let (rl, rr) = (self.left(r), self.right(r));
            if self.height(rr) >= self.height(rl) {
                self.set(n, l, rl);
                self.set(r, n, rr);
                return r;
            }
            let (rll, rlr) = (self.left(rl), self.right(rl));
            self.set(r, rlr, rr);
            self.set(n, l, rll);
            self.set(rl, n, r);
            return rl;
        }
        self.set(n, l, r);
        n
    }

    /// Inserts block `b` of `size` bytes under `n`; the subtree's new root.
    fn insert(self, n: usize, b: usize, size: usize) -> usize {
        if n == NT {
            self.set(b, NT, NT);
            self.set_word(b, 2, NT as u32);
            return b;
        }
        let s = self.size(n);
        if size == s {
            // Newest first among equal sizes: `b` becomes the node, `n` the next of its stack.
            self.replace(n, b);
            self.set_word(b, 2, n as u32);
            return b;
        }
        if size < s {
            let l = self.insert(self.left(n), b, size);
            self.fix(n, l, self.right(n))
        } else {
            let r = self.insert(self.right(n), b, size);
            self.fix(n, self.left(n), r)
        }
    }

    /// Removes the node of the smallest size under `n`: (new subtree root, that node).
    fn delete_min(self, n: usize) -> (usize, usize) {
        let l = self.left(n);
        if l == NT {
            return (self.right(n), n);
        }
        let (l, min) = self.delete_min(l);
        (self.fix(n, l, self.right(n)), min)
    }

    /// Pops the top block of the stack of `size` under `n` (present); the subtree's new root.
    fn pop(self, n: usize, size: usize) -> usize {
        let s = self.size(n);
        if size < s {
            let l = self.pop(self.left(n), size);
            return self.fix(n, l, self.right(n));
        }
        if size > s {
            let r = self.pop(self.right(n), size);
            return self.fix(n, self.left(n), r);
        }
        let next = self.next(n);
        if next != NT {
            self.replace(n, next);
            return next;
        }
        let (l, r) = (self.left(n), self.right(n));
        if l == NT {
            return r;
        }
        if r == NT {
            return l;
        }
        let (r, min) = self.delete_min(r);
        self.fix(min, l, r)
    }

    /// Visits every block under `n` (depth first, each node's stack in order) while `f` says go
    /// on; whether the visit went to the end.
    fn each(self, n: usize, depth: usize, f: &mut impl FnMut(usize, usize) -> bool) -> bool {
        if n == NT {
            return true;
        }
        if depth > 64 || !f(n, depth) {
            return false;
        }
        let mut b = self.next(n);
        while b != NT {
            if !f(b, depth) {
                return false;
            }
            b = self.next(b);
        }
        self.each(self.left(n), depth + 1, f) && self.each(self.right(n), depth + 1, f)
    }

    /// Full structure check of the subtree `n` with sizes strictly within `(lo, hi)`: its height,
    /// or the offending offset. With `regions` empty, node offsets are trusted (`VERIFY`).
    fn check(self, n: usize, lo: usize, hi: usize, regions: &[Region]) -> Result<u32, usize> {
        if n == NT {
            return Ok(0);
        }
        if !regions.is_empty() && !inside::<T>(regions, n) {
            return Err(n);
        }
        // SAFETY: `n` is a node of the tree (with regions given: on the grid inside one).
        let h = unsafe { self.a.header(n) };
        if h.allocated || h.size <= lo || h.size >= hi {
            return Err(n);
        }
        // Its stack: blocks of the same size, free.
        let mut b = self.next(n);
        let mut steps = 0;
        while b != NT {
            steps += 1;
            if (!regions.is_empty() && !inside::<T>(regions, b)) || steps > self.a.max_nodes() {
                return Err(b);
            }
            // SAFETY: as for `n`.
            let hb = unsafe { self.a.header(b) };
            if hb.allocated || hb.size != h.size {
                return Err(b);
            }
            b = self.next(b);
        }
        let hl = self.check(self.left(n), lo, h.size, regions)?;
        let hr = self.check(self.right(n), h.size, hi, regions)?;
        if hl.abs_diff(hr) > 1 || self.height(n) != 1 + hl.max(hr) {
            return Err(n);
        }
        Ok(1 + hl.max(hr))
    }
}

/// Whether a block header at `n` lies on the grid inside one region.
fn inside<T: TargetLayout>(regions: &[Region], n: usize) -> bool {
    n % T::ALIGN == 0
        && regions
            .iter()
            .any(|r| n >= r.start && n < r.end && r.end - n >= T::HEADER + T::ALIGN)
}

impl<const VERIFY: bool> SizeTree<VERIFY> {
    fn nodes<'a, T: TargetLayout>(&self, a: &'a Arena<T>) -> Nodes<'a, T> {
        #[allow(clippy::let_unit_value)]
        let () = Fits::<T>::OK;
        Nodes { a }
    }

    /// The whole-tree check of `VERIFY` (panics on a violation).
    fn verify<T: TargetLayout>(&self, a: &Arena<T>) {
        if let Err(off) = self.nodes(a).check(self.root, 0, usize::MAX, &[]) {
            panic!("SizeTree: broken at offset {off}");
        }
    }
}

impl<const VERIFY: bool> super::index::sealed::Sealed for SizeTree<VERIFY> {}

impl<const VERIFY: bool> FreeIndex for SizeTree<VERIFY> {
    const MERGES: bool = false;
    const END_MARKERS: bool = false;
    const EMPTY: Self = SizeTree { root: NT };
    const THREADED: bool = false;
    const MAX_SPAN: usize = MAX_SPAN;

    /// The found block (`prev` unused).
    type Found = Pos;

    #[inline(always)]
    fn node_bytes<T: TargetLayout>() -> usize {
        node_bytes::<T>()
    }

    fn head(&self) -> usize {
        NIL
    }

    fn end(&self) -> usize {
        NIL
    }

    fn build<T: TargetLayout>(&mut self, a: &Arena<T>, regions: &[Region]) {
        *self = Self::EMPTY;
        for r in regions {
            // SAFETY: the region's first block header was written by the engine.
            let size = unsafe { a.size(r.start) };
            self.insert(a, r.start, size);
        }
    }

    #[inline]
    fn find<T: TargetLayout>(&self, a: &Arena<T>, wanted: usize, found: &mut Pos) -> bool {
        let t = self.nodes(a);
        let mut n = self.root;
        let mut best = NT;
        while n != NT {
            let s = t.size(n);
            if s >= wanted {
                best = n;
                if s == wanted {
                    break;
                }
                n = t.left(n);
            } else {
                n = t.right(n);
            }
        }
        if best == NT {
            return false;
        }
        *found = Pos {
            prev: NIL,
            block: best,
        };
        true
    }

    fn take<T: TargetLayout>(&mut self, a: &Arena<T>, pos: &mut Pos, rest: Option<(usize, usize)>) {
        let t = self.nodes(a);
        self.root = t.pop(self.root, t.size(pos.block));
        match rest {
            Some((r, size)) => self.insert(a, r, size),
            None if VERIFY => self.verify(a),
            None => {}
        }
    }

    fn insert<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize, size: usize) {
        // SAFETY: `block` is a free block of the heap being added: a header inside its region.
        unsafe { a.set_size(block, size, false) };
        let t = self.nodes(a);
        self.root = t.insert(self.root, block, size);
        if VERIFY {
            self.verify(a);
        }
    }

    fn remove<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize) {
        // heap_2 never merges, so the engine never removes a block other than the one it found;
        // should it, only the newest block of a size can be removed here.
        let t = self.nodes(a);
        let size = t.size(block);
        let mut n = self.root;
        while n != NT && t.size(n) != size {
            n = if size < t.size(n) {
                t.left(n)
            } else {
                t.right(n)
            };
        }
        if n != block {
            a.fault(block);
            return;
        }
        self.root = t.pop(self.root, size);
    }

    fn summary<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        regions: &[Region],
    ) -> Result<Summary, (Summary, usize)> {
        let t = self.nodes(a);
        let mut s = Summary::EMPTY;
        let mut bad = NIL;
        let max = a.max_nodes();
        let done = t.each(self.root, 0, &mut |b, _| {
            if !inside::<T>(regions, b) || s.count >= max {
                bad = b;
                return false;
            }
            s.add(t.size(b));
            true
        });
        if done { Ok(s) } else { Err((s, bad)) }
    }

    fn check_end<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        _cursor: usize,
        regions: &[Region],
        free_blocks: usize,
        free_bytes: usize,
    ) -> Result<(), (CheckErrorKind, usize)> {
        let t = self.nodes(a);
        t.check(self.root, 0, usize::MAX, regions)
            .map_err(|off| (CheckErrorKind::BadLink, off))?;
        let (mut count, mut bytes, mut bad) = (0usize, 0usize, NIL);
        let done = t.each(self.root, 0, &mut |b, _| {
            if !inside::<T>(regions, b) || count >= free_blocks {
                bad = b;
                return false;
            }
            count += 1;
            bytes += t.size(b);
            true
        });
        if !done {
            return Err((CheckErrorKind::ListMismatch, bad));
        }
        if count != free_blocks || bytes != free_bytes {
            return Err((CheckErrorKind::ListMismatch, 0));
        }
        Ok(())
    }
}
