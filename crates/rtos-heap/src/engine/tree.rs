//! [`AddressTree`]: the heap_4/heap_5 free-block index in O(log n).
//!
//! Same placement and statistics as [`AddressList`](super::index::AddressList) (and so as
//! FreeRTOS), for every request sequence: the lowest-addressed free block that fits is taken, a
//! freed block merges with its address neighbours, and the address-ordered free list FreeRTOS keeps
//! is still there, threaded through the link word of every free block and end marker. What changes
//! is how the engine's requests are answered:
//!
//! - *find*: descend a balanced search tree keyed by address whose nodes also hold the largest
//!   free size of their subtree, going left whenever the left subtree holds a block large enough:
//!   the first block met that fits is the lowest-addressed one.
//! - *insert / remove / take*: the address neighbours come from predecessor descents instead of a
//!   walk of the list.
//!
//! Both are O(log n) in the number of free blocks, plus, on heap_5 only, a walk over the end markers
//! still listed between two free blocks (at most one per region: O(regions), a constant `N`).
//!
//! # Node layout
//!
//! The index allocates nothing: each free block holds its own node, right after its header, so the
//! engine's header (link word = next node in address order, size word = size, allocated bit clear)
//! stays exactly as the list index writes it. The engine's `check()`, the
//! statistics walk, the block walk and the hardening checks of the list therefore see the same
//! memory with either index.
//!
//! Every field is a `u32`; child links are byte offsets from the heap base. Block offsets are
//! multiples of `portBYTE_ALIGNMENT`, which is at least 8 here, so the three low bits of each link
//! word are free: they hold the AVL height (6 bits, low half in `left`, high half in `right`;
//! heights stay below 45 for any heap that fits 4 GiB). `0xFFFF_FFF8` is the null link.
//!
//! | bytes after the header | big node (payload ≥ 12 bytes) | small node (payload 8 bytes) |
//! |---|---|---|
//! | 0..4 | left child \| height bits 0-2 | left child \| height bits 0-2 |
//! | 4..8 | right child \| height bits 3-5 | right child \| height bits 3-5 |
//! | 8..12 | largest block size in the subtree | — |
//!
//! The smallest free block is `header + ALIGN`: 16 bytes on a 32-bit target with 8-byte alignment
//! and 24 bytes with 64-bit words — 8 bytes of payload, no room for the subtree maximum. Those
//! blocks (all exactly `header + 8` bytes) go to a second AVL tree, also keyed by address, without
//! the maximum: a request of `header + 8` bytes fits in *any* free block (the answer is the lowest
//! of the two trees' minima), and a larger request never fits a small block (the answer comes from
//! the big tree alone). Neighbour searches look in both trees. With 16-byte alignment every free
//! block is big. A block moves between trees when a merge or a split changes its class.
//!
//! # Limits (checked)
//!
//! - `portBYTE_ALIGNMENT` 4 is rejected at compile time: its smallest free block (12 bytes with
//!   32-bit words) has 4 bytes of payload, no room for two child links.
//! - Offsets and sizes are 32-bit: a heap spanning more than [`MAX_SPAN`] bytes (possible only with
//!   64-bit words) is refused by `init` / `define_regions` with `RegionError::TooLarge`.
//!
//! # Balancing
//!
//! AVL: the heights of the two subtrees of every node differ by at most one, so a tree of `n` nodes
//! is at most `1.44 log2(n + 2)` high and every operation is O(log n) in the worst case (not only
//! on average, as a treap's or a splay tree's would be). There are no parent links (no room in a
//! 16-byte block): insertion and deletion are recursive descents that rebalance and recompute
//! heights and maxima on the way back up (at most ~45 frames deep), stopping the repairs where the
//! height and the maximum stop changing; the in-place key changes of a split or a merge walk down
//! once, keeping the search path in a 64-entry stack, and never rotate.
//!
//! The tree fields are not masked by the heap protector; a write over a free block's payload can
//! break the tree as it can break a header. With `AddressTree<true>` every operation is followed by
//! a full check of the trees against the list (order, balance, heights, subtree maxima, classes,
//! membership), panicking on the first violation: the tests use it.

// The `FreeIndex` methods take crate-private types (the trait is sealed).
#![allow(private_interfaces)]

use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::raw::{Arena, NIL};
use crate::target::TargetLayout;

use crate::engine::Region;
use crate::engine::index::{FreeIndex, Order, Pos};

/// The largest heap span (first region start to last region end) an [`AddressTree`] handles:
/// offsets and sizes are stored as 32-bit words.
pub const MAX_SPAN: usize = 0xFFFF_FFF0;

/// Null child link in a node word (its low three bits are the height bits).
const NIL32: u32 = 0xFFFF_FFF8;
/// Payload bytes a big node needs (left, right, subtree maximum).
const BIG_NODE: usize = 12;

/// A root-to-node search path (AVL heights stay below 64), left uninitialised beyond `len`.
struct Path {
    nodes: [MaybeUninit<usize>; 64],
    len: usize,
}

impl Path {
    #[inline(always)]
    fn new() -> Self {
        Path {
            nodes: [const { MaybeUninit::uninit() }; 64],
            len: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, n: usize) {
        self.nodes[self.len & 63].write(n);
        self.len += 1;
    }

    #[inline(always)]
    fn get(&self, i: usize) -> usize {
        debug_assert!(i < self.len);
        // SAFETY: entries `0..len` were written by `push` (len < 64: the AVL height fits 6 bits).
        unsafe { self.nodes[i & 63].assume_init() }
    }
}

/// Compile-time check of the target layout.
struct Fits<T>(PhantomData<T>);

impl<T: TargetLayout> Fits<T> {
    const OK: () = assert!(
        T::ALIGN >= 8,
        "AddressTree needs portBYTE_ALIGNMENT >= 8: with 4 the smallest free block has no room for a tree node"
    );
}

#[inline(always)]
fn is_big<T: TargetLayout>(size: usize) -> bool {
    size >= T::HEADER + BIG_NODE
}

/// Address-ordered, first fit, merging, in O(log n): heap_4 / heap_5 placement with AVL trees.
///
/// Use it as the index parameter: `Heap4<CortexM, AddressTree>`, `Heap5<CortexM, 2, AddressTree>`.
/// `VERIFY = true` checks every invariant of the trees after every operation (for tests; O(n log n)
/// per operation). The node layout, the balancing and the limits are described in
/// `docs/tree-index.md`: AVL trees stored inside the free blocks, 32-bit offsets, portBYTE_ALIGNMENT
/// at least 8, a heap span of at most 4 GiB (`RegionError::TooLarge` beyond).
///
/// # Examples
///
/// ```
/// use core::mem::MaybeUninit;
/// use rtos_heap::{AddressTree, CortexM, Heap4, RawHeap};
///
/// let memory: &'static mut [MaybeUninit<u8>] = Box::leak(Box::new([MaybeUninit::uninit(); 4096]));
/// let mut heap = Heap4::<CortexM, AddressTree>::new();
/// heap.init(memory).unwrap();
/// let a = heap.malloc(100).unwrap();
/// let b = heap.malloc(100).unwrap();
/// unsafe { heap.free(a, None).unwrap() };
/// // First fit by address, as heap_4: the hole left by `a` is reused.
/// assert_eq!(heap.malloc(50).unwrap(), a);
/// # let _ = b;
/// heap.check().unwrap();
/// ```
///
/// A 4-byte `portBYTE_ALIGNMENT` does not build:
///
/// ```compile_fail
/// use rtos_heap::{AddressTree, Heap4, Mcu32Align4, RawHeap};
/// let memory = Box::leak(Box::new([core::mem::MaybeUninit::uninit(); 1024]));
/// let mut heap = Heap4::<Mcu32Align4, AddressTree>::new();
/// heap.init(memory).unwrap();
/// heap.malloc(8).unwrap();
/// ```
#[derive(Debug)]
pub struct AddressTree<const VERIFY: bool = false> {
    /// First node of the threaded address list (free blocks and listed end markers).
    head: usize,
    /// `pxEnd`.
    end: usize,
    /// Root of the tree of big blocks.
    big: usize,
    /// Root of the tree of small (`header + 8` bytes) blocks.
    small: usize,
}

/// The nodes of one tree, read and written in the arena. `BIG`: whether nodes hold the maximum.
///
/// Invariant relied on by every accessor: an offset passed as a node is a free block of this
/// tree's class inside a region of the heap (so its node words lie inside the block), on the
/// block grid (a multiple of `ALIGN >= 8` from the 8-aligned base, so the words are aligned).
struct Nodes<'a, T, const BIG: bool> {
    a: &'a Arena<T>,
}

/// The null node of the trees (the null link as a `usize`, above every block offset). The trees
/// use it instead of [`NIL`] so that decoding a link is a mask, without a branch.
const NT: usize = NIL32 as usize;

#[inline(always)]
fn dec(w: u32) -> usize {
    (w & !7) as usize
}

#[inline(always)]
fn enc(n: usize) -> u32 {
    n as u32
}

impl<T: TargetLayout, const BIG: bool> Nodes<'_, T, BIG> {
    #[inline(always)]
    fn word(&self, n: usize, k: usize) -> u32 {
        debug_assert!(n != NT && k < if BIG { 3 } else { 2 });
        // SAFETY: `n` is a node (struct invariant): its payload holds this word, 4-byte aligned.
        unsafe { self.a.ptr(n + T::HEADER + 4 * k).cast::<u32>().read() }
    }

    #[inline(always)]
    fn set_word(&self, n: usize, k: usize, v: u32) {
        debug_assert!(n != NT && k < if BIG { 3 } else { 2 });
        // SAFETY: as in `word`; the block is free, so its payload belongs to the heap.
        unsafe { self.a.ptr(n + T::HEADER + 4 * k).cast::<u32>().write(v) }
    }

    #[inline(always)]
    fn left(&self, n: usize) -> usize {
        dec(self.word(n, 0))
    }

    #[inline(always)]
    fn right(&self, n: usize) -> usize {
        dec(self.word(n, 1))
    }

    #[inline(always)]
    fn height(&self, n: usize) -> u32 {
        if n == NT {
            0
        } else {
            (self.word(n, 0) & 7) | ((self.word(n, 1) & 7) << 3)
        }
    }

    #[inline(always)]
    fn size(&self, n: usize) -> usize {
        // SAFETY: `n` is a node: a free block header inside a region.
        unsafe { self.a.size(n) }
    }

    /// Largest block size in the subtree of `n` (0 for none). Only for big trees.
    #[inline(always)]
    fn max(&self, n: usize) -> usize {
        if n == NT {
            0
        } else if BIG {
            self.word(n, 2) as usize
        } else {
            self.size(n)
        }
    }

    /// Makes `l` and `r` the children of `n` and recomputes its height (and maximum).
    #[inline(always)]
    fn set(&self, n: usize, l: usize, r: usize) {
        let h = 1 + self.height(l).max(self.height(r));
        self.set_word(n, 0, enc(l) | (h & 7));
        self.set_word(n, 1, enc(r) | ((h >> 3) & 7));
        if BIG {
            let m = self.size(n).max(self.max(l)).max(self.max(r));
            self.set_word(n, 2, m as u32);
        }
    }

    /// Replaces the left child of `n`, keeping its height bits.
    #[inline(always)]
    fn set_left(&self, n: usize, c: usize) {
        let w = self.word(n, 0);
        self.set_word(n, 0, enc(c) | (w & 7));
    }

    /// Replaces the right child of `n`, keeping its height bits.
    #[inline(always)]
    fn set_right(&self, n: usize, c: usize) {
        let w = self.word(n, 1);
        self.set_word(n, 1, enc(c) | (w & 7));
    }

    /// Recomputes only the subtree maximum of `n` (big trees); whether it changed.
    #[inline(always)]
    fn fix_max(&self, n: usize) -> bool {
        if !BIG {
            return false;
        }
        let m = self
            .size(n)
            .max(self.max(self.left(n)))
            .max(self.max(self.right(n))) as u32;
        let changed = self.word(n, 2) != m;
        if changed {
            self.set_word(n, 2, m);
        }
        changed
    }

    fn rot_right(&self, n: usize) -> usize {
        let l = self.left(n);
        self.set(n, self.right(l), self.right(n));
        self.set(l, self.left(l), n);
        l
    }

    fn rot_left(&self, n: usize) -> usize {
        let r = self.right(n);
        self.set(n, self.left(n), self.left(r));
        self.set(r, n, self.right(r));
        r
    }

    /// Gives `n` the (balanced) children `l` and `r`, whose heights differ by at most 2, and
    /// returns the root of the rebalanced subtree.
    fn balance(&self, n: usize, mut l: usize, mut r: usize) -> usize {
        let (hl, hr) = (self.height(l), self.height(r));
        if hl > hr + 1 {
            if self.height(self.left(l)) < self.height(self.right(l)) {
                l = self.rot_left(l);
            }
            self.set(n, l, r);
            self.rot_right(n)
        } else if hr > hl + 1 {
            if self.height(self.right(r)) < self.height(self.left(r)) {
                r = self.rot_right(r);
            }
            self.set(n, l, r);
            self.rot_left(n)
        } else {
            self.set(n, l, r);
            n
        }
    }

    /// Inserts `x` of `xs` bytes (not in the tree; header already written): (new root, whether
    /// the subtree grew higher). Above the point where the height stops growing, only the child link
    /// and the maximum are touched.
    fn insert(&self, root: usize, x: usize, xs: usize) -> (usize, bool) {
        if root == NT {
            self.set(x, NT, NT);
            return (x, true);
        }
        let (l, r) = (self.left(root), self.right(root));
        let (l2, r2, grew) = if x < root {
            let (l2, g) = self.insert(l, x, xs);
            (l2, r, g)
        } else {
            let (r2, g) = self.insert(r, x, xs);
            (l, r2, g)
        };
        if !grew {
            if l2 != l {
                self.set_left(root, l2);
            } else if r2 != r {
                self.set_right(root, r2);
            }
            if BIG && xs as u32 > self.word(root, 2) {
                self.set_word(root, 2, xs as u32);
            }
            return (root, false);
        }
        let h0 = self.height(root);
        let n = self.balance(root, l2, r2);
        (n, self.height(n) > h0)
    }

    /// Removes the lowest node of the non-empty subtree `n`: (new subtree root, removed node).
    fn remove_min(&self, n: usize) -> (usize, usize) {
        let l = self.left(n);
        if l == NT {
            return (self.right(n), n);
        }
        let (l, m) = self.remove_min(l);
        (self.balance(n, l, self.right(n)), m)
    }

    /// Removes `x` of `xs` bytes (in the tree): (new root, whether the subtree got lower). Above
    /// the point where the height stops shrinking, the maximum is recomputed only where `x` was it.
    fn remove(&self, root: usize, x: usize, xs: usize) -> (usize, bool) {
        debug_assert!(root != NT, "removing a block that is not in the tree");
        let (l, r) = (self.left(root), self.right(root));
        if x == root {
            return if r == NT {
                (l, true)
            } else if l == NT {
                (r, true)
            } else {
                let h0 = self.height(root);
                let (r, m) = self.remove_min(r);
                let n = self.balance(m, l, r);
                (n, self.height(n) < h0)
            };
        }
        let (l2, r2, shrank) = if x < root {
            let (l2, s) = self.remove(l, x, xs);
            (l2, r, s)
        } else {
            let (r2, s) = self.remove(r, x, xs);
            (l, r2, s)
        };
        if !shrank {
            if l2 != l {
                self.set_left(root, l2);
            } else if r2 != r {
                self.set_right(root, r2);
            }
            if BIG && xs as u32 >= self.word(root, 2) {
                self.fix_max(root);
            }
            return (root, false);
        }
        let h0 = self.height(root);
        let n = self.balance(root, l2, r2);
        (n, self.height(n) < h0)
    }

    /// The node words of `n` (read before a header is written over them), for
    /// [`replace`](Self::replace): left, right, and the maximum (big trees).
    #[inline(always)]
    fn words(&self, n: usize) -> [u32; 3] {
        [
            self.word(n, 0),
            self.word(n, 1),
            if BIG { self.word(n, 2) } else { 0 },
        ]
    }

    /// Puts `new` (header written, same class, `ns` bytes, not more than `old`'s) in the place of
    /// `old`, whose node words were `w`, and returns the root. The key changes in place: `new`
    /// lies between `old`'s neighbours, so the order holds and nothing rotates. The maxima are
    /// recomputed from `new` upwards until one does not change (the path is kept in a stack: AVL
    /// heights stay below 64). A growing block uses [`replace_path`](Self::replace_path).
    #[inline]
    fn replace(&self, root: usize, old: usize, new: usize, w: [u32; 3], ns: usize) -> usize {
        let mut path = Path::new();
        let (mut n, mut parent) = (root, NT);
        while n != old {
            debug_assert!(n != NT, "replacing a block that is not in the tree");
            path.push(n);
            parent = n;
            n = if old < n { self.left(n) } else { self.right(n) };
        }
        let mut depth = path.len;
        self.set_word(new, 0, w[0]);
        self.set_word(new, 1, w[1]);
        let (mut changed, mut m) = (false, 0);
        if BIG {
            m = ns.max(self.max(dec(w[0]))).max(self.max(dec(w[1]))) as u32;
            self.set_word(new, 2, m);
            changed = m != w[2];
        }
        if parent == NT {
            return new;
        }
        if old < parent {
            self.set_left(parent, new);
        } else {
            self.set_right(parent, new);
        }
        // Recompute the maxima upwards while they change: an ancestor's maximum is its own size,
        // the (new) maximum of the child on the path, and that of its other child.
        let mut child = new;
        while changed && depth > 0 {
            depth -= 1;
            let a = path.get(depth);
            let other = if child < a {
                self.right(a)
            } else {
                self.left(a)
            };
            let nm = (self.size(a).max(self.max(other)) as u32).max(m);
            changed = nm != self.word(a, 2);
            if changed {
                self.set_word(a, 2, nm);
            }
            (m, child) = (nm, a);
        }
        root
    }

    /// `x` (in the tree) grew to `s` bytes: raises the maxima on its path, top down.
    fn grow(&self, root: usize, x: usize, s: usize) {
        let mut n = root;
        loop {
            if BIG && s as u32 > self.word(n, 2) {
                self.set_word(n, 2, s as u32);
            }
            if n == x {
                return;
            }
            n = if x < n { self.left(n) } else { self.right(n) };
        }
    }

    /// [`pred`](Self::pred), keeping the search path: it passes through both the predecessor and
    /// the successor of `key`.
    #[inline]
    fn pred_path(&self, root: usize, key: usize, path: &mut Path) -> usize {
        let (mut n, mut best) = (root, NT);
        while n != NT {
            path.push(n);
            if n < key {
                best = n;
                n = self.right(n);
            } else {
                n = self.left(n);
            }
        }
        best
    }

    /// [`grow`](Self::grow) along a search path that passes through `x`.
    #[inline]
    fn grow_path(&self, path: &Path, x: usize, s: usize) {
        for i in 0..path.len {
            let n = path.get(i);
            if BIG && s as u32 > self.word(n, 2) {
                self.set_word(n, 2, s as u32);
            }
            if n == x {
                return;
            }
        }
        debug_assert!(false, "grown block not on the path");
    }

    /// [`replace`](Self::replace) of a growing block along a search path through `old`.
    #[inline]
    fn replace_path(
        &self,
        root: usize,
        path: &Path,
        old: usize,
        new: usize,
        w: [u32; 3],
        ns: usize,
    ) -> usize {
        let mut parent = NT;
        for i in 0..path.len {
            let n = path.get(i);
            if n == old {
                break;
            }
            if BIG && ns as u32 > self.word(n, 2) {
                self.set_word(n, 2, ns as u32);
            }
            parent = n;
        }
        self.set_word(new, 0, w[0]);
        self.set_word(new, 1, w[1]);
        if BIG {
            self.set_word(new, 2, w[2].max(ns as u32));
        }
        if parent == NT {
            debug_assert_eq!(root, old);
            return new;
        }
        if old < parent {
            self.set_left(parent, new);
        } else {
            self.set_right(parent, new);
        }
        root
    }

    /// The highest node below `key`, or `NT`.
    #[inline]
    fn pred(&self, root: usize, key: usize) -> usize {
        let (mut n, mut best) = (root, NT);
        while n != NT {
            if n < key {
                best = n;
                n = self.right(n);
            } else {
                n = self.left(n);
            }
        }
        best
    }

    /// The lowest node, or `NT`.
    #[inline]
    fn min(&self, root: usize) -> usize {
        let mut n = root;
        if n == NT {
            return NT;
        }
        loop {
            let l = self.left(n);
            if l == NT {
                return n;
            }
            n = l;
        }
    }

    /// The lowest node of at least `wanted` bytes (big trees) and its predecessor in this tree,
    /// or `None`.
    #[inline]
    fn fit(&self, root: usize, wanted: usize) -> Option<(usize, usize)> {
        if root == NT || self.max(root) < wanted {
            return None;
        }
        let (mut n, mut pred) = (root, NT);
        loop {
            let l = self.left(n);
            if l != NT && self.max(l) >= wanted {
                n = l;
            } else if self.size(n) >= wanted {
                if l != NT {
                    pred = l;
                    loop {
                        let r = self.right(pred);
                        if r == NT {
                            break;
                        }
                        pred = r;
                    }
                }
                return Some((n, pred));
            } else {
                pred = n;
                n = self.right(n);
                debug_assert!(n != NT, "subtree maximum lies");
            }
        }
    }

    /// Whether `x` is a node of the tree.
    fn contains(&self, root: usize, x: usize) -> bool {
        let mut n = root;
        while n != NT {
            if n == x {
                return true;
            }
            n = if x < n { self.left(n) } else { self.right(n) };
        }
        false
    }

    /// Checks the subtree of `n` (keys in `lo..hi`): order, AVL balance, stored heights and
    /// maxima, node classes. Returns (nodes, height). Panics on a violation.
    fn verify(&self, n: usize, lo: usize, hi: usize) -> (usize, u32) {
        if n == NT {
            return (0, 0);
        }
        assert!(n >= lo && n < hi, "tree order broken at {n:#x}");
        assert!(n % T::ALIGN == 0, "node {n:#x} off the grid");
        // SAFETY: `n` is a node (struct invariant; order and grid just checked).
        let h = unsafe { self.a.header(n) };
        assert!(!h.allocated, "allocated block {n:#x} in the tree");
        assert!(h.size > 0, "zero-size node {n:#x} in the tree");
        assert_eq!(is_big::<T>(h.size), BIG, "block {n:#x} in the wrong tree");
        let (l, r) = (self.left(n), self.right(n));
        let (cl, hl) = self.verify(l, lo, n);
        let (cr, hr) = self.verify(r, n + h.size, hi);
        assert!(hl.abs_diff(hr) <= 1, "unbalanced at {n:#x}: {hl} / {hr}");
        let height = 1 + hl.max(hr);
        assert_eq!(self.height(n), height, "stored height wrong at {n:#x}");
        if BIG {
            let m = h.size.max(self.max(l)).max(self.max(r));
            assert_eq!(self.max(n), m, "subtree maximum wrong at {n:#x}");
        }
        (cl + cr + 1, height)
    }
}

#[inline(always)]
fn set_prev_link<T: TargetLayout>(head: &mut usize, a: &Arena<T>, prev: usize, to: usize) {
    if prev == NIL {
        *head = to;
    } else {
        // SAFETY: `prev` is a list node, hence a block header inside a region (engine invariant).
        unsafe { a.set_link(prev, to) }
    }
}

impl<const VERIFY: bool> AddressTree<VERIFY> {
    #[inline(always)]
    fn big<T: TargetLayout>(a: &Arena<T>) -> Nodes<'_, T, true> {
        Nodes { a }
    }

    #[inline(always)]
    fn small<T: TargetLayout>(a: &Arena<T>) -> Nodes<'_, T, false> {
        Nodes { a }
    }

    /// Adds the free block `n` of `size` bytes (header written) to the tree of its class.
    #[inline]
    fn tree_insert<T: TargetLayout>(&mut self, a: &Arena<T>, n: usize, size: usize) {
        if is_big::<T>(size) {
            self.big = Self::big(a).insert(self.big, n, size).0;
        } else {
            self.small = Self::small(a).insert(self.small, n, size).0;
        }
    }

    /// Removes the free block `n` of `size` bytes from the tree of its class.
    #[inline]
    fn tree_remove<T: TargetLayout>(&mut self, a: &Arena<T>, n: usize, size: usize) {
        if is_big::<T>(size) {
            self.big = Self::big(a).remove(self.big, n, size).0;
        } else {
            self.small = Self::small(a).remove(self.small, n, size).0;
        }
    }

    /// The list nodes around `block`: (last node below it or `NIL`, first node not below it).
    /// The highest free block below comes from the trees; only end markers (one per region at
    /// most) are walked from there.
    #[inline]
    fn neighbours<T: TargetLayout>(&self, a: &Arena<T>, block: usize) -> (usize, usize) {
        let prev = Self::big(a).pred(self.big, block);
        self.neighbours_from(a, block, prev)
    }

    /// [`neighbours`](Self::neighbours) knowing `big`, the highest big block below `block` (`NT`:
    /// none).
    #[inline]
    fn neighbours_from<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        block: usize,
        big: usize,
    ) -> (usize, usize) {
        let mut prev = if big == NT { NIL } else { big };
        if self.small != NT {
            let s = Self::small(a).pred(self.small, block);
            if s != NT && (prev == NIL || s > prev) {
                prev = s;
            }
        }
        let mut next = if prev == NIL {
            self.head
        } else {
            // SAFETY: `prev` is a list node.
            unsafe { a.link(prev) }
        };
        // Only listed end markers can lie between the free block `prev` and `block`; pxEnd is
        // above every block, so the walk stops.
        while next < block {
            prev = next;
            // SAFETY: `next` is a list node.
            next = unsafe { a.link(next) };
        }
        (prev, next)
    }

    /// The full check of `AddressTree<true>`: both trees, then the list against them.
    fn verify<T: TargetLayout>(&self, a: &Arena<T>) {
        let (big, small) = (Self::big(a), Self::small(a));
        let (nb, _) = big.verify(self.big, 0, NIL);
        let (ns, _) = small.verify(self.small, 0, NIL);
        let (mut lb, mut ls, mut last) = (0, 0, None);
        let mut n = self.head;
        while n != NIL {
            assert!(last.is_none_or(|l| l < n), "list order broken at {n:#x}");
            // SAFETY: `n` is a list node.
            let h = unsafe { a.header(n) };
            if h.size > 0 {
                if is_big::<T>(h.size) {
                    assert!(
                        big.contains(self.big, n),
                        "free block {n:#x} not in the big tree"
                    );
                    lb += 1;
                } else {
                    assert!(
                        small.contains(self.small, n),
                        "block {n:#x} not in the small tree"
                    );
                    ls += 1;
                }
            } else {
                assert!(h.link == NIL || n != self.end, "pxEnd links on");
            }
            last = Some(n);
            n = h.link;
        }
        assert_eq!(
            last.unwrap_or(NIL),
            self.end,
            "the list does not end at pxEnd"
        );
        assert_eq!((lb, ls), (nb, ns), "trees and list hold different blocks");
    }
}

impl<const VERIFY: bool> crate::engine::index::sealed::Sealed for AddressTree<VERIFY> {}

impl<const VERIFY: bool> FreeIndex for AddressTree<VERIFY> {
    const MERGES: bool = true;
    const END_MARKERS: bool = true;
    const ORDER: Order = Order::Address;
    const EMPTY: Self = AddressTree {
        head: NIL,
        end: NIL,
        big: NT,
        small: NT,
    };
    const MAX_SPAN: usize = MAX_SPAN;
    const NODE_BYTES: usize = BIG_NODE;

    fn head(&self) -> usize {
        self.head
    }

    fn end(&self) -> usize {
        self.end
    }

    fn build<T: TargetLayout>(&mut self, a: &Arena<T>, regions: &[Region]) {
        #[allow(clippy::let_unit_value)]
        let () = Fits::<T>::OK;
        *self = Self::EMPTY;
        self.head = regions.first().map_or(NIL, |r| r.start);
        for (i, r) in regions.iter().enumerate() {
            let next = regions.get(i + 1).map_or(NIL, |n| n.start);
            // SAFETY: region starts and end markers are header positions inside the regions.
            unsafe {
                a.set_link(r.start, r.end);
                a.set_link(r.end, next);
            }
            self.tree_insert(a, r.start, r.end - r.start);
        }
        self.end = regions.last().map_or(NIL, |r| r.end);
        if VERIFY {
            self.verify(a);
        }
    }

    #[inline]
    fn find<T: TargetLayout>(&self, a: &Arena<T>, wanted: usize) -> Option<Pos> {
        #[allow(clippy::let_unit_value)]
        let () = Fits::<T>::OK;
        // `Pos::prev` is the highest big block below the found one (`NT`: none).
        if wanted <= T::HEADER + 8 {
            // Every free block is at least `header + 8` bytes: the lowest one fits, nothing below.
            let (b, s) = (Self::big(a).min(self.big), Self::small(a).min(self.small));
            let block = b.min(s);
            (block != NT).then_some(Pos { prev: NT, block })
        } else {
            let (block, prev) = Self::big(a).fit(self.big, wanted)?;
            Some(Pos { prev, block })
        }
    }

    #[inline]
    fn take<T: TargetLayout>(&mut self, a: &Arena<T>, pos: Pos, rest: Option<(usize, usize)>) {
        let block = pos.block;
        let (prev, at) = self.neighbours_from(a, block, pos.prev);
        debug_assert_eq!(at, block, "taking a block that is not in the list");
        // SAFETY: `block` is a list node (a free block of the index).
        let (next, size) = unsafe { (a.link(block), a.size(block)) };
        let to = match rest {
            Some((r, s)) => {
                if is_big::<T>(size) == is_big::<T>(s) {
                    // Same class: the remainder takes the block's node in place. Read the block's
                    // children before the remainder's header (which may overlap them) is written.
                    if is_big::<T>(s) {
                        let t = Self::big(a);
                        let w = t.words(block);
                        // SAFETY: `r` is on the grid inside the block being split.
                        unsafe { a.set_header(r, next, s, false) };
                        self.big = t.replace(self.big, block, r, w, s);
                    } else {
                        let t = Self::small(a);
                        let w = t.words(block);
                        // SAFETY: `r` is on the grid inside the block being split.
                        unsafe { a.set_header(r, next, s, false) };
                        self.small = t.replace(self.small, block, r, w, s);
                    }
                } else {
                    self.tree_remove(a, block, size);
                    // SAFETY: `r` is on the grid inside the block being split.
                    unsafe { a.set_header(r, next, s, false) };
                    self.tree_insert(a, r, s);
                }
                r
            }
            None => {
                self.tree_remove(a, block, size);
                next
            }
        };
        set_prev_link(&mut self.head, a, prev, to);
        if VERIFY {
            self.verify(a);
        }
    }

    #[inline]
    fn insert<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize, size: usize) {
        // One descent of the big tree finds the predecessor and keeps the path, which also passes
        // through the successor: a merge with either updates the tree along it.
        let bt = Self::big(a);
        let mut path = Path::new();
        let pbig = bt.pred_path(self.big, block, &mut path);
        let (prev, next) = self.neighbours_from(a, block, pbig);
        let (mut b, mut s) = (block, size);
        let mut low = None;
        if prev != NIL {
            // SAFETY: `prev` is a list node.
            let ps = unsafe { a.size(prev) };
            if prev + ps == block {
                b = prev;
                s += ps;
                low = Some(ps);
            }
        }
        let mut up = None;
        let link = if b + s == next && next != self.end {
            // Merge with the upper neighbour (an intermediate end marker is absorbed, size 0).
            // SAFETY: `next` is a list node.
            let nh = unsafe { a.header(next) };
            s += nh.size;
            up = Some(nh.size);
            nh.link
        } else {
            next
        };
        // SAFETY: `b` is the freed block or its free lower neighbour: a header inside a region.
        unsafe { a.set_header(b, link, s, false) };
        // With poisoning, headers swallowed by the merge become payload of the free block. Before
        // the tree is updated: the merged block's node may then be written over them.
        if b != block {
            // SAFETY: `block`'s header now lies inside the merged free block `b`.
            unsafe { a.retire_header(block) };
        }
        // An absorbed intermediate end marker (size 0) leaves the list but keeps closing its region:
        // its header is not swallowed.
        if up.is_some_and(|ns| ns > 0) {
            // SAFETY: `next`'s header now lies inside the merged free block `b`.
            unsafe { a.retire_header(next) };
        }
        let up = up.filter(|&ns| ns > 0);
        match (low.filter(|&ps| ps > 0), up) {
            (Some(ps), None) if is_big::<T>(ps) => {
                // Still big (it only grew): raise the maxima down to it.
                bt.grow_path(&path, b, s);
            }
            (Some(ps), up) => {
                if let Some(ns) = up {
                    self.tree_remove(a, next, ns);
                }
                if is_big::<T>(ps) {
                    // Still big (it only grew): raise the maxima on its path.
                    Self::big(a).grow(self.big, b, s);
                } else {
                    self.small = Self::small(a).remove(self.small, b, ps).0;
                    self.tree_insert(a, b, s);
                }
            }
            (None, Some(ns)) if is_big::<T>(ns) => {
                // The freed block takes its upper neighbour's node: same place in the order.
                let w = bt.words(next);
                self.big = bt.replace_path(self.big, &path, next, b, w, s);
            }
            (None, Some(ns)) => {
                self.tree_remove(a, next, ns);
                self.tree_insert(a, b, s);
            }
            (None, None) => self.tree_insert(a, b, s),
        }
        // The absorbed upper neighbour's node words are payload of `b` now (they lie past `b`'s
        // own node: `next >= b + header + 8`).
        #[cfg(feature = "poison")]
        if let Some(ns) = up {
            let words = if is_big::<T>(ns) { BIG_NODE } else { 8 };
            // SAFETY: inside the merged free block `b`, past its node.
            unsafe { a.poison(next + T::HEADER, words) };
        }
        if b != prev {
            set_prev_link(&mut self.head, a, prev, b);
        }
        if VERIFY {
            self.verify(a);
        }
    }

    fn remove<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize) {
        let (prev, at) = self.neighbours(a, block);
        debug_assert_eq!(at, block, "removing a block that is not in the list");
        if at == block {
            // SAFETY: `block` is a list node.
            let (next, size) = unsafe { (a.link(block), a.size(block)) };
            set_prev_link(&mut self.head, a, prev, next);
            self.tree_remove(a, block, size);
        }
        if VERIFY {
            self.verify(a);
        }
    }
}
