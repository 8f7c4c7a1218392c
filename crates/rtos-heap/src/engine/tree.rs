//! [`AddressTree`]: the heap_4/heap_5 free-block index in O(log n).
//!
//! Same placement and statistics as [`AddressList`](super::index::AddressList) (and so as
//! FreeRTOS), for every request sequence: the lowest-addressed free block that fits is taken, a
//! freed block merges with its address neighbours. What changes is how the engine's requests are
//! answered: one AVL tree of the free blocks, keyed by address, each node also holding the largest
//! block size in its subtree.
//!
//! - *find*: descend from the root, going left whenever the left subtree holds a block large
//!   enough: the first block met that fits is the lowest-addressed one. The path is kept for *take*.
//! - *take*: a split remainder keeps its block's place in the order, so its node moves up to the
//!   remainder's address and the maxima above it are lowered; a block taken whole is deleted.
//! - *insert*: one descent by address passes through both address neighbours of the freed block,
//!   so the merge (with the lower one, the upper one, both or none) is decided and done on that
//!   path.
//!
//! The highest-addressed free block, the *top block*, is kept beside the tree: every node lies
//! below it. An allocation that nothing in the tree fits (the root's maximum says so) is carved
//! from it without a descent, and a free that ends at it or lies above it moves it, merges into it
//! or pushes it into the tree, after at most a walk down the right spine. First fit carves from
//! the top block whenever no hole below fits: while a heap fills, and when large requests meet
//! many small holes (the `fragmented` workload).
//!
//! Every operation is one or two root-to-leaf passes: O(log n) in the worst case.
//!
//! # Node layout
//!
//! Nothing is allocated: the node of a free block is stored in the block. FreeRTOS's list keeps
//! the next free block in the link word of the header; the tree has no list, so it uses that word
//! for its own node, then the header's padding, then the first payload bytes. The size word is the
//! engine's (size, allocated bit clear).
//!
//! Three 32-bit words: `left | balance`, `right`, `max` (the largest block size in the subtree).
//! Child links are byte offsets from the heap base; block offsets are multiples of
//! `portBYTE_ALIGNMENT` (at least 8 here), so the low two bits of `left` hold the AVL balance.
//!
//! The null link ([`AddressTree::nil`]) is the offset whose `max` word is `pxEnd`'s size word,
//! always 0: maxima are recomputed as `max(size, max(left), max(right))` with no test for a
//! missing child. Only that word of it is ever read, never written.
//!
//! | target | header | link word | payload bytes used | smallest free block (payload) |
//! |---|---|---|---|---|
//! | 32-bit words, align 8 (`CortexM`) | 8 | `left` | 8: `right`, `max` | 16 (8) |
//! | 32-bit words, align 16 | 16 | `left` (padding: `right`, `max`) | 0 | 32 (16) |
//! | 64-bit words, align 8 or 16 | 16 | `left`, `right` | 4: `max` | 24 (8) / 32 (16) |
//! | 32-bit words, align 4 (`Mcu32Align4`) | 8 | — | — | 12 (4): **rejected at compile time** |
//!
//! # Listed end markers (heap_5)
//!
//! FreeRTOS's stats walk counts every intermediate end marker still in its list as a free block of
//! size 0, until a freed block ending at the marker absorbs it. The tree keeps that state in the
//! marker's own link word: NIL while listed, [`ABSORBED`] after.
//!
//! # Limits (checked)
//!
//! - `portBYTE_ALIGNMENT` 4 is rejected at compile time (see the table).
//! - Offsets and sizes are 32-bit: a heap spanning more than [`MAX_SPAN`] bytes (possible only with
//!   64-bit words) is refused by `init` / `define_regions` with `RegionError::TooLarge`.
//! - The AVL height of a tree of `n` nodes is below `1.45 log2(n + 2)`: under 41 for any heap
//!   below 4 GiB, so a root-to-leaf path fits the 64-entry path buffer (256 bytes of stack).
//!
//! The tree words are not masked by the heap protector; a write over a free block can break the
//! tree as it can break a header. With `validate-cheap` every link is checked before it is read
//! (on the grid, inside a region, a free block), and a descent deeper than the path buffer is a
//! fault: the operation is refused before anything is written. With `AddressTree<true>` every
//! operation is followed by a full check of the tree (order, balance, maxima, node blocks, no
//! unmerged neighbours, all below the top block), panicking on the first violation: the tests use
//! it.

// The `FreeIndex` methods take crate-private types (the trait is sealed).
#![allow(private_interfaces)]

use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::error::CheckErrorKind;
use crate::raw::{Arena, NIL};
use crate::target::TargetLayout;

use crate::engine::index::{Found, FreeIndex, Met};
use crate::engine::{Region, Summary};

/// The largest heap span (first region start to last region end) an [`AddressTree`] handles:
/// offsets and sizes are stored as 32-bit words.
pub const MAX_SPAN: usize = 0xFFFF_FFF0;

/// "None" for the top block, a path's found block and the neighbours a free looks for (not a
/// child link: those use [`AddressTree::nil`]); also a key above every node.
const NT: usize = 0xFFFF_FFF8;
/// Link word of an intermediate end marker that a free block below it has absorbed.
const ABSORBED: usize = 0;
/// Balance of a node whose left subtree is one higher (`1 + side` is "heavy on `side`").
const LEFT_HEAVY: u32 = 1;
/// Path buffer length (a power of two: indexes are masked, never out of bounds).
const PATH: usize = 64;

/// Byte offset from the block start of node word `k` (0: left | balance, 1: right, 2: max): the
/// link word's 4-byte slots first, then the header's padding, then the payload.
pub(super) const fn slot<T: TargetLayout>(k: usize) -> usize {
    let link = T::WORD / 4;
    let pad = (T::HEADER - 2 * T::WORD) / 4;
    if k < link {
        4 * k
    } else if k < link + pad {
        2 * T::WORD + 4 * (k - link)
    } else {
        T::HEADER + 4 * (k - link - pad)
    }
}

/// Payload bytes the node uses.
pub(super) const fn node_bytes<T: TargetLayout>() -> usize {
    (slot::<T>(2) + 4).saturating_sub(T::HEADER)
}

/// Compile-time check of the target layout: the node fits the smallest free block.
struct Fits<T>(PhantomData<T>);

impl<T: TargetLayout> Fits<T> {
    const OK: () = {
        assert!(
            node_bytes::<T>() <= T::ALIGN,
            "AddressTree needs portBYTE_ALIGNMENT >= 8: with 4 the smallest free block has no room for a tree node"
        );
        // The null link `pxEnd + WORD - slot(2)` lies below `pxEnd`, closer to it than the
        // smallest block (so it is never a block), on the 8-byte grid the balance bits need.
        assert!(slot::<T>(2) >= T::WORD);
        assert!(slot::<T>(2) - T::WORD < T::HEADER + T::ALIGN);
        assert!((slot::<T>(2) - T::WORD) % 8 == 0);
    };
}

/// A root-to-node path: `n[i]` is the node at depth `i`.
///
/// The side taken below `n[i]` is not stored: keys are addresses, so `n[i + 1]` is the right
/// child of `n[i]` exactly when it is the higher of the two ([`side`](Self::side)). Repairs that
/// replace an entry keep that true (a replacement lies on the same side of every entry above it).
///
/// Entries `n[i & (PATH - 1)]` for `i` below the highest `len` reached have been written (`push`
/// writes before it counts, and `len` only shrinks below written entries); the rest is left
/// uninitialised, so that a path costs nothing to start.
pub struct Path {
    n: [MaybeUninit<u32>; PATH],
    len: usize,
    /// The highest `len` reached (debug builds check reads against it).
    #[cfg(debug_assertions)]
    high: usize,
    /// The block `find` found: the path's last node, or the top block (then `len == 0`).
    block: usize,
}

impl Path {
    #[inline(always)]
    fn new() -> Self {
        Path {
            n: [const { MaybeUninit::uninit() }; PATH],
            len: 0,
            #[cfg(debug_assertions)]
            high: 0,
            block: NT,
        }
    }

    #[inline(always)]
    fn push(&mut self, node: usize) {
        self.n[self.len & (PATH - 1)].write(node as u32);
        self.len += 1;
        #[cfg(debug_assertions)]
        {
            self.high = self.high.max(self.len);
        }
    }

    /// Entry `i`, which may lie at or past `len` if it was written before `len` shrank.
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        #[cfg(debug_assertions)]
        debug_assert!(i < self.high);
        // SAFETY: callers read entries below the highest `len` reached, which `push` or `set`
        // wrote (struct invariant).
        unsafe { self.n[i & (PATH - 1)].assume_init() as usize }
    }

    #[inline(always)]
    fn set(&mut self, i: usize, node: usize) {
        #[cfg(debug_assertions)]
        debug_assert!(i < self.high);
        self.n[i & (PATH - 1)].write(node as u32);
    }

    /// The side (0 left, 1 right) of `n[i + 1]` under `n[i]`.
    #[inline(always)]
    fn side(&self, i: usize) -> usize {
        usize::from(self.at(i + 1) > self.at(i))
    }
}

impl Found for Path {
    #[inline(always)]
    fn none() -> Path {
        Path::new()
    }

    #[inline(always)]
    fn block(&self) -> usize {
        self.block
    }
}

/// The nodes, read and written in the arena.
///
/// Invariant relied on by every accessor: an offset passed as a node is a free block of the tree
/// inside a region of the heap (its node words lie inside the block: [`Fits`]), on the block grid
/// (a multiple of `ALIGN >= 8` from the aligned base, so the words are 4-byte aligned).
struct Nodes<'a, T> {
    a: &'a Arena<T>,
    /// The null link: see [`AddressTree::nil`].
    nil: usize,
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
        debug_assert!(n != NT && (n != self.nil || k == 2));
        // SAFETY: `n` is a node (struct invariant): word `k` lies inside its block, 4-byte aligned.
        unsafe { self.a.ptr(n + slot::<T>(k)).cast::<u32>().read() }
    }

    #[inline(always)]
    fn set_word(self, n: usize, k: usize, v: u32) {
        debug_assert!(n != NT && n != self.nil);
        // SAFETY: as in `word`; the block is free, so its node words belong to the index.
        unsafe { self.a.ptr(n + slot::<T>(k)).cast::<u32>().write(v) }
    }

    /// Child on `side` (0 left, 1 right), or `nil`.
    #[inline(always)]
    fn child(self, n: usize, side: usize) -> usize {
        (self.word(n, side) & !7) as usize
    }

    /// Right child, or `nil`: the right word holds the link alone (the balance bits are in the
    /// left word), so nothing is masked.
    #[inline(always)]
    fn right(self, n: usize) -> usize {
        self.word(n, 1) as usize
    }

    /// Raises the stored maximum of `n` to at least `size`; whether it was below.
    #[inline(always)]
    fn raise(self, n: usize, size: usize) -> bool {
        let below = self.max(n) < size;
        if below {
            self.set_word(n, 2, size as u32);
        }
        below
    }

    #[inline(always)]
    fn set_child(self, n: usize, side: usize, c: usize) {
        let keep = self.word(n, side) & 3;
        self.set_word(n, side, c as u32 | keep);
    }

    #[inline(always)]
    fn bal(self, n: usize) -> u32 {
        self.word(n, 0) & 3
    }

    #[inline(always)]
    fn set_bal(self, n: usize, b: u32) {
        let w = self.word(n, 0);
        self.set_word(n, 0, (w & !3) | b);
    }

    /// Writes the whole node.
    #[inline(always)]
    fn set_node(self, n: usize, l: usize, r: usize, bal: u32, max: usize) {
        self.set_word(n, 0, l as u32 | bal);
        self.set_word(n, 1, r as u32);
        self.set_word(n, 2, max as u32);
    }

    /// Size of node `n` (a free block: its allocated bit is clear, nothing to mask).
    #[inline(always)]
    fn size(self, n: usize) -> usize {
        // SAFETY: `n` is a node: a free block header inside a region.
        unsafe { self.a.free_size(n) }
    }

    #[inline(always)]
    fn set_size(self, n: usize, s: usize) {
        // SAFETY: `n` is (becoming) a node: a free block header inside a region.
        unsafe { self.a.set_size(n, s, false) }
    }

    /// Stored subtree maximum of a link: a node's, or 0 for `nil` (whose `max` word is the size
    /// word of `pxEnd`, which is 0).
    #[inline(always)]
    fn max(self, n: usize) -> usize {
        self.word(n, 2) as usize
    }

    /// As [`max`](Self::max), without reading `nil`'s word (for the structure check, which must
    /// not rely on `pxEnd`).
    fn max_of(self, n: usize) -> usize {
        if n == self.nil { 0 } else { self.max(n) }
    }

    /// Recomputes and stores the subtree maximum of `n` from its size and children; returns it.
    #[inline(always)]
    fn fix_max(self, n: usize) -> usize {
        let m = self
            .size(n)
            .max(self.max(self.child(n, 0)))
            .max(self.max(self.child(n, 1)));
        self.set_word(n, 2, m as u32);
        m
    }

    /// Single rotation lifting the child on `side`; balances are the caller's. Returns the new
    /// subtree root.
    #[inline]
    fn rotate(self, n: usize, side: usize) -> usize {
        let c = self.child(n, side);
        self.set_child(n, side, self.child(c, 1 - side));
        self.set_child(c, 1 - side, n);
        self.fix_max(n);
        self.fix_max(c);
        c
    }

    /// Double rotation lifting the grandchild `g = child(child(n, side), 1 - side)`, with the AVL
    /// balance updates (the same after an insertion or a deletion). Returns `g`.
    #[inline]
    fn rotate_twice(self, n: usize, side: usize) -> usize {
        let c = self.child(n, side);
        let g = self.child(c, 1 - side);
        let gb = self.bal(g);
        self.set_child(n, side, self.child(g, 1 - side));
        self.set_child(c, 1 - side, self.child(g, side));
        self.set_child(g, 1 - side, n);
        self.set_child(g, side, c);
        let heavy = LEFT_HEAVY + side as u32;
        let other = LEFT_HEAVY + (1 - side) as u32;
        self.set_bal(n, if gb == heavy { other } else { 0 });
        self.set_bal(c, if gb == other { heavy } else { 0 });
        self.set_bal(g, 0);
        self.fix_max(n);
        self.fix_max(c);
        self.fix_max(g);
        g
    }

    /// Makes `c` the child of `path[i - 1]` that `path[i]` was (or the root when `i == 0`).
    #[inline(always)]
    fn relink(self, root: &mut usize, path: &Path, i: usize, c: usize) {
        if i == 0 {
            *root = c;
        } else {
            self.set_child(path.at(i - 1), path.side(i - 1), c);
        }
    }

    /// After the subtree on side `path.side(i)` of `path[i]` grew one level higher (a leaf was
    /// attached) by a block of `size` bytes: rebalances while the height changes, then raises the
    /// maxima above to at least `size`.
    fn grown(self, root: &mut usize, path: &mut Path, mut i: usize, size: usize) {
        // The node below `path[i]` on the path (the side taken is read from it).
        let mut below = path.at(i + 1);
        loop {
            let n = path.at(i);
            let side = usize::from(below > n);
            let heavy = LEFT_HEAVY + side as u32;
            let w = self.word(n, 0);
            let b = w & 3;
            if b == 0 {
                // Now heavy on `side`, one level higher: go on up.
                self.set_word(n, 0, w | heavy);
                self.raise(n, size);
                if i == 0 {
                    return;
                }
                i -= 1;
                below = n;
                continue;
            }
            if b != heavy {
                // Balanced now, the height is unchanged.
                self.set_word(n, 0, w & !3);
                self.raise(n, size);
            } else {
                let c = self.child(n, side);
                let top = if self.bal(c) == heavy {
                    let t = self.rotate(n, side);
                    self.set_bal(n, 0);
                    self.set_bal(t, 0);
                    t
                } else {
                    self.rotate_twice(n, side)
                };
                // The rotation recomputed the maxima of its subtree.
                self.relink(root, path, i, top);
                path.set(i, top);
            }
            self.raised(path, i, size);
            return;
        }
    }

    /// After the subtree on side `path.side(i)` of `path[i]` lost one level (a node was unlinked
    /// below) and some sizes below changed: rebalances while the height shrinks, then recomputes
    /// the maxima upwards: every node of the path from `path[i]` up to depth `keep` included, then
    /// further up while a maximum changes.
    fn shrunk(self, root: &mut usize, path: &mut Path, mut i: usize, keep: usize) {
        // The entry below `path[i]` on the path (the side that lost the level is read from it).
        let mut below = path.at(i + 1);
        loop {
            let n = path.at(i);
            let side = usize::from(below > n);
            let heavy = LEFT_HEAVY + side as u32;
            let old = self.max(n);
            let w = self.word(n, 0);
            let b = w & 3;
            let (top, shrinking) = if b == heavy {
                self.set_word(n, 0, w & !3);
                (n, true)
            } else if b == 0 {
                self.set_word(n, 0, w | (LEFT_HEAVY + (1 - side) as u32));
                (n, false)
            } else {
                // Heavy on the other side: rotate its child up.
                let e = 1 - side;
                let c = self.child(n, e);
                let cb = self.bal(c);
                let top = if cb == 0 {
                    let t = self.rotate(n, e);
                    self.set_bal(n, b);
                    self.set_bal(t, LEFT_HEAVY + side as u32);
                    t
                } else if cb == b {
                    let t = self.rotate(n, e);
                    self.set_bal(n, 0);
                    self.set_bal(t, 0);
                    t
                } else {
                    self.rotate_twice(n, e)
                };
                self.relink(root, path, i, top);
                path.set(i, top);
                (top, cb != 0)
            };
            // A rotation recomputed the maxima of its subtree.
            let new = if top == n {
                self.fix_max(n)
            } else {
                self.max(top)
            };
            if !shrinking {
                self.refresh(path, i, new != old, keep);
                return;
            }
            if i == 0 {
                return;
            }
            i -= 1;
            below = top;
        }
    }

    /// Recomputes the maxima above `path[i]` (whose own maximum is right, and `changed` or not):
    /// every node from there up to depth `keep` included, then further up while a maximum
    /// changes.
    #[inline]
    fn refresh(self, path: &Path, mut i: usize, mut changed: bool, keep: usize) {
        while i > 0 && (changed || i > keep) {
            i -= 1;
            let p = path.at(i);
            let old = self.max(p);
            changed = self.fix_max(p) != old;
        }
    }

    /// Lowers the maxima above `path[i]` after its subtree maximum went from `old` to `new`
    /// (`new < old`), stopping at the first node whose maximum does not depend on it.
    #[inline]
    fn lowered(self, path: &Path, mut i: usize, mut old: usize, mut new: usize) {
        while i > 0 && new != old {
            i -= 1;
            let p = path.at(i);
            let pm = self.max(p);
            if pm != old {
                return;
            }
            old = pm;
            new = self.fix_max(p);
        }
    }

    /// Raises the maxima of `path[0..i]` to at least `size`.
    #[inline]
    fn raised(self, path: &Path, i: usize, size: usize) {
        for j in (0..i).rev() {
            if !self.raise(path.at(j), size) {
                return;
            }
        }
    }

    /// Unlinks `path[len - 1]`, which has at most one child, and repairs the tree above it. The
    /// maxima are recomputed at least up to depth `keep`.
    fn unlink_last(self, root: &mut usize, path: &mut Path, keep: usize) {
        let i = path.len - 1;
        let x = path.at(i);
        let l = self.child(x, 0);
        let c = if l != self.nil { l } else { self.child(x, 1) };
        self.relink(root, path, i, c);
        path.len = i;
        if i > 0 {
            self.shrunk(root, path, i - 1, keep.min(i - 1));
        }
    }

    /// Deletes `path[len - 1]` (any node) and repairs the tree above it.
    fn delete_last(self, root: &mut usize, path: &mut Path) -> bool {
        let ix = path.len - 1;
        let x = path.at(ix);
        let (l, r) = (self.child(x, 0), self.child(x, 1));
        if l == self.nil || r == self.nil {
            self.unlink_last(root, path, ix);
            return true;
        }
        // Two children: the in-order successor `y` (leftmost of the right subtree) takes `x`'s
        // place in the tree, then `y` is unlinked from where it was.
        let Some(y) = self.spine(path, r, 0) else {
            return false;
        };
        let iy = path.len - 1;
        let yr = self.child(y, 1);
        let bal = self.bal(x);
        // `y` starts with `x`'s maximum, the old maximum of the place: the repair recomputes it.
        let xm = self.max(x);
        if iy == ix + 1 {
            // `y` is `x`'s right child: it keeps its right subtree, which lost the level. The
            // path entry below `y` must read as its right side: any key above `y` will do.
            self.set_node(y, l, yr, bal, xm);
            path.set(iy, NT);
        } else {
            self.set_child(path.at(iy - 1), 0, yr);
            self.set_node(y, l, r, bal, xm);
        }
        self.relink(root, path, ix, y);
        path.set(ix, y);
        path.len = iy;
        self.shrunk(root, path, iy - 1, ix);
        true
    }

    /// Pushes `n` and the nodes below it along `side` onto `path`, down to the one whose child on
    /// `side` is null, and returns that one. `None`: a link did not check out (recorded).
    #[inline]
    fn spine(self, path: &mut Path, mut n: usize, side: usize) -> Option<usize> {
        loop {
            if !self.vet(path, n) {
                return None;
            }
            path.push(n);
            let c = self.child(n, side);
            if c == self.nil {
                return Some(n);
            }
            n = c;
        }
    }

    /// `validate-cheap`: whether node `n` about to join the path and its children (whose words
    /// the repairs read) check out, and the path has room; records the fault otherwise. Always
    /// `true` without the feature.
    #[inline(always)]
    fn vet(self, path: &Path, n: usize) -> bool {
        #[cfg(feature = "validate-cheap")]
        {
            let ok = path.len < PATH - 1 && self.node_ok(n) && {
                let (l, r) = (self.child(n, 0), self.child(n, 1));
                (l == self.nil || (self.node_ok(l) && self.kids_ok(l)))
                    && (r == self.nil || (self.node_ok(r) && self.kids_ok(r)))
            };
            if !ok {
                self.a.fault(n);
            }
            ok
        }
        #[cfg(not(feature = "validate-cheap"))]
        {
            let _ = (path, n);
            true
        }
    }

    /// `validate-cheap`: whether the top block (which has no node words) checks out; records
    /// the fault otherwise. Always `true` without the feature.
    #[inline(always)]
    fn vet_top(self, top: usize) -> bool {
        #[cfg(feature = "validate-cheap")]
        if !self.node_ok(top) {
            self.a.fault(top);
            return false;
        }
        let _ = top;
        true
    }

    #[cfg(feature = "validate-cheap")]
    fn kids_ok(self, n: usize) -> bool {
        let (l, r) = (self.child(n, 0), self.child(n, 1));
        (l == self.nil || self.node_ok(l)) && (r == self.nil || self.node_ok(r))
    }

    /// `validate-cheap`: `n` is a free block of non-zero size on the grid inside a region.
    #[cfg(feature = "validate-cheap")]
    fn node_ok(self, n: usize) -> bool {
        // `follow` checks the grid, the region and the free bit before reading anything.
        if !self.a.follow(n, n) {
            self.a.take_fault();
            return false;
        }
        self.size(n) >= T::HEADER + T::ALIGN
    }
}

/// Address-ordered, first fit, merging, in O(log n): heap_4 / heap_5 placement with an AVL tree.
///
/// Use it as the index parameter: `Heap4<CortexM, AddressTree>`, `Heap5<CortexM, 2, AddressTree>`.
/// `VERIFY = true` checks every invariant of the tree after every operation (for tests; O(n) per
/// operation). The node layout, the balancing and the limits are described in
/// `docs/tree-index.md`: an AVL tree stored inside the free blocks, 32-bit offsets,
/// portBYTE_ALIGNMENT at least 8, a heap span of at most 4 GiB (`RegionError::TooLarge` beyond).
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
    /// Root node (`nil`: empty).
    root: usize,
    /// The null link, chosen so that reading its `max` word reads the size word of `pxEnd`,
    /// which is always 0: `pxEnd + WORD - slot(2)`, eight bytes below `pxEnd` in every layout
    /// (never a block: no block is that small). Maxima are then computed without a test for a
    /// missing child. Only the `max` word of `nil` is ever read, and nothing is written there.
    nil: usize,
    /// The highest-addressed free block (`NT`: none), kept beside the tree: every node lies below
    /// it. Allocations that no hole fits are carved from it, and frees next to it merge into it,
    /// without a tree update.
    top: usize,
    /// `pxEnd`, never absorbed.
    end: usize,
    /// Whether there are intermediate end markers (heap_5 with several regions): then a free
    /// looks at the header above the freed block for one to absorb.
    markers: bool,
}

impl<const VERIFY: bool> AddressTree<VERIFY> {
    #[inline(always)]
    fn nodes<'a, T: TargetLayout>(&self, a: &'a Arena<T>) -> Nodes<'a, T> {
        Nodes { a, nil: self.nil }
    }

    /// Attaches the free block `b` of `size` bytes (header written) as a leaf at the end of `path`
    /// (the search path of `b`), and repairs the tree.
    fn attach<T: TargetLayout>(&mut self, a: &Arena<T>, path: &mut Path, b: usize, size: usize) {
        let t = self.nodes(a);
        t.set_node(b, t.nil, t.nil, 0, size);
        if path.len == 0 {
            self.root = b;
            return;
        }
        let i = path.len - 1;
        // `b` joins the path: `grown` reads the side below `path[i]` from it.
        path.push(b);
        t.set_child(path.at(i), path.side(i), b);
        t.grown(&mut self.root, path, i, size);
    }

    /// Adds the free block `b` (header written), above every node, to the tree.
    fn push_last<T: TargetLayout>(&mut self, a: &Arena<T>, b: usize) -> bool {
        let t = self.nodes(a);
        let mut path = Path::new();
        if self.root != self.nil && t.spine(&mut path, self.root, 1).is_none() {
            return false;
        }
        self.attach(a, &mut path, b, t.size(b));
        true
    }

    /// Removes the highest node from the tree and returns it (`NT`: the tree was empty; `None`:
    /// a link did not check out, nothing was changed).
    fn pop_last<T: TargetLayout>(&mut self, a: &Arena<T>) -> Option<usize> {
        let t = self.nodes(a);
        let mut path = Path::new();
        if self.root == self.nil {
            return Some(NT);
        }
        let n = t.spine(&mut path, self.root, 1)?;
        let keep = path.len - 1;
        t.unlink_last(&mut self.root, &mut path, keep);
        Some(n)
    }

    /// The highest node (`NT`: none; `None`: a link did not check out).
    #[inline]
    fn last<T: TargetLayout>(&self, a: &Arena<T>) -> Option<usize> {
        let t = self.nodes(a);
        let path = Path::new();
        let mut n = self.root;
        let mut last = NT;
        while n != self.nil {
            if !t.vet(&path, n) {
                return None;
            }
            last = n;
            n = t.child(n, 1);
        }
        Some(last)
    }

    /// The free of a block that ends where the top block begins: the top block moves down to it,
    /// or, when the highest node ends where the block begins, to that node.
    #[inline]
    fn free_below_top<T: TargetLayout>(
        &mut self,
        a: &Arena<T>,
        block: usize,
        size: usize,
    ) -> Option<usize> {
        let t = self.nodes(a);
        let last = self.last(a)?;
        let top = self.top;
        let mut s = size + t.size(top);
        if last != NT && last + t.size(last) == block {
            s += t.size(last);
            // The spine is walked again, with a path: rare, and cheaper than keeping a path on
            // the common walk above (measured: `fragmented` 130 -> 158 instructions per operation).
            self.pop_last(a)?;
            t.set_size(last, s);
            self.top = last;
            // SAFETY: `block`'s header now lies inside the merged free block `last`.
            unsafe { a.retire_header(block) };
            retire_node::<T>(a, top);
            return Some(2);
        }
        t.set_size(block, s);
        self.top = block;
        retire_node::<T>(a, top);
        Some(1)
    }

    /// The free of a block above the top block: it merges into the top block, or becomes the top
    /// block and the old one joins the tree.
    #[inline]
    fn free_above_top<T: TargetLayout>(
        &mut self,
        a: &Arena<T>,
        block: usize,
        size: usize,
    ) -> Option<usize> {
        let t = self.nodes(a);
        let top = self.top;
        let ts = t.size(top);
        if top + ts == block {
            t.set_size(top, ts + size);
            // SAFETY: `block`'s header now lies inside the merged free block `top`.
            unsafe { a.retire_header(block) };
            Some(1)
        } else {
            // The block's header is written first: a refused push leaves it out of the index
            // (the engine restores its allocated bit).
            t.set_size(block, size);
            if !self.push_last(a, top) {
                return None;
            }
            self.top = block;
            Some(0)
        }
    }

    /// Adds the free block `block` of `size` bytes, merging it with its free neighbours; writes
    /// the merged block's header. Returns how many free blocks it merged with (0, 1 or 2);
    /// `None`: a link did not check out (recorded), nothing written.
    #[inline(always)]
    fn merge_in<T: TargetLayout>(
        &mut self,
        a: &Arena<T>,
        block: usize,
        size: usize,
    ) -> Option<usize> {
        let t = self.nodes(a);
        let end = block + size;
        let top = self.top;
        if top == NT {
            t.set_size(block, size);
            self.top = block;
            return Some(0);
        }
        if end == top {
            return if t.vet_top(top) {
                self.free_below_top(a, block, size)
            } else {
                None
            };
        }
        if block > top {
            return if t.vet_top(top) {
                self.free_above_top(a, block, size)
            } else {
                None
            };
        }
        // One descent by address: it passes through both neighbours of `block` in the tree.
        let mut path = Path::new();
        // Depths of the deepest nodes passed below and above `block`: its lower and upper
        // neighbours in the tree.
        let (mut ip, mut is) = (usize::MAX, usize::MAX);
        let mut n = self.root;
        while n != self.nil {
            if !t.vet(&path, n) {
                return None;
            }
            let right = block > n;
            if right {
                ip = path.len;
            } else {
                is = path.len;
            }
            path.push(n);
            n = t.child(n, usize::from(right));
        }
        let pred = if ip == usize::MAX { NT } else { path.at(ip) };
        let succ = if is == usize::MAX { NT } else { path.at(is) };
        let low = pred != NT && pred + t.size(pred) == block;
        let up = succ == end;
        match (low, up) {
            (false, false) => {
                t.set_size(block, size);
                self.attach(a, &mut path, block, size);
            }
            (true, false) => {
                // The lower neighbour grows in place.
                let s = t.size(pred) + size;
                t.set_size(pred, s);
                t.raised(&path, ip + 1, s);
                // SAFETY: `block`'s header now lies inside the merged free block `pred`.
                unsafe { a.retire_header(block) };
            }
            (false, true) => {
                // The freed block takes its upper neighbour's node (same place in the order).
                let s = size + t.size(succ);
                let (w0, w1) = (t.word(succ, 0), t.word(succ, 1));
                let m = t.max(succ).max(s);
                t.set_size(block, s);
                t.set_word(block, 0, w0);
                t.set_word(block, 1, w1);
                t.set_word(block, 2, m as u32);
                t.relink(&mut self.root, &path, is, block);
                path.set(is, block);
                t.raised(&path, is, s);
                retire_node::<T>(a, succ);
            }
            (true, true) => {
                let s = t.size(pred) + size + t.size(succ);
                if is > ip {
                    // `succ` is the last node of the path (its left child is null): unlink it,
                    // `pred` grows in place.
                    t.set_size(pred, s);
                    t.unlink_last(&mut self.root, &mut path, ip);
                } else {
                    // `pred` is the last node (its right child is null): unlink it, then the
                    // merged block (at `pred`) takes `succ`'s node.
                    let pl = t.child(pred, 0);
                    t.relink(&mut self.root, &path, ip, pl);
                    let (w0, w1, w2) = (t.word(succ, 0), t.word(succ, 1), t.word(succ, 2));
                    t.set_size(pred, s);
                    t.set_word(pred, 0, w0);
                    t.set_word(pred, 1, w1);
                    // The old maximum of this place: `shrunk` recomputes it and goes on up
                    // while it changes.
                    t.set_word(pred, 2, w2);
                    t.relink(&mut self.root, &path, is, pred);
                    path.set(is, pred);
                    path.len = ip;
                    t.shrunk(&mut self.root, &mut path, ip - 1, is);
                }
                // SAFETY: both headers now lie inside the merged free block `pred`.
                unsafe { a.retire_header(block) };
                retire_node::<T>(a, succ);
            }
        }
        Some(usize::from(low) + usize::from(up))
    }

    /// The full check of `AddressTree<true>`, panicking on the first violation.
    fn verify<T: TargetLayout>(&self, a: &Arena<T>) {
        // The regions are not kept here: the span from the base to `pxEnd` bounds the nodes.
        let span = [Region {
            start: 0,
            end: self.end,
        }];
        if let Err(b) = self.structure(a, &span) {
            panic!("AddressTree: {} at offset {:#x}", b.what, b.off);
        }
    }

    /// Checks the whole tree: order (no overlap, no two neighbours left unmerged), AVL balance,
    /// stored balances and maxima, every node a free block. Returns the node count.
    fn structure<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        regions: &[Region],
    ) -> Result<usize, Broken> {
        let t = self.nodes(a);
        let top = self.top;
        if top != NT {
            let bad = |what| Broken {
                kind: CheckErrorKind::ListNodeNotFree,
                off: top,
                what,
            };
            if !inside::<T>(regions, top, T::HEADER + T::ALIGN) {
                return Err(bad("top block out of the heap"));
            }
            // SAFETY: `top` is on the grid inside a region (just checked).
            let h = unsafe { a.header(top) };
            if h.allocated || h.size < T::HEADER + T::ALIGN || !inside::<T>(regions, top, h.size) {
                return Err(bad("top block is not a free block"));
            }
        }
        let mut count = 0;
        // Every node lies below the top block.
        self.subtree(t, regions, self.root, 0, top, 0, &mut count)?;
        Ok(count)
    }

    /// Checks the subtree of `n` (keys in `lo..hi`, at `depth`): returns its height.
    #[allow(clippy::too_many_arguments)]
    fn subtree<T: TargetLayout>(
        &self,
        t: Nodes<'_, T>,
        regions: &[Region],
        n: usize,
        lo: usize,
        hi: usize,
        depth: usize,
        count: &mut usize,
    ) -> Result<u32, Broken> {
        if n == self.nil {
            return Ok(0);
        }
        let bad = |kind, what| Err(Broken { kind, off: n, what });
        if depth >= PATH - 1 {
            return bad(CheckErrorKind::BadLink, "tree too deep (a cycle?)");
        }
        if n < lo || n >= hi {
            return bad(CheckErrorKind::BadLink, "tree order broken");
        }
        if !inside::<T>(regions, n, T::HEADER + T::ALIGN) {
            return bad(CheckErrorKind::BadLink, "tree link out of the heap");
        }
        // SAFETY: `n` is on the grid inside a region (just checked).
        let h = unsafe { t.a.header(n) };
        if h.allocated || h.size < T::HEADER + T::ALIGN || !inside::<T>(regions, n, h.size) {
            return bad(
                CheckErrorKind::ListNodeNotFree,
                "tree node is not a free block",
            );
        }
        // The block ends before the next key (no overlap, no unmerged neighbours).
        if hi != NT && n + h.size >= hi {
            return bad(CheckErrorKind::BadLink, "tree order broken");
        }
        *count += 1;
        // Keys strictly between neighbours that are neither overlapping nor touching: a free
        // block that ends where the next begins would be two unmerged free neighbours.
        let (l, r) = (t.child(n, 0), t.child(n, 1));
        let hl = self.subtree(t, regions, l, lo, n, depth + 1, count)?;
        let hr = self.subtree(t, regions, r, n + h.size + 1, hi, depth + 1, count)?;
        if hl.abs_diff(hr) > 1 {
            return bad(CheckErrorKind::BadLink, "tree unbalanced");
        }
        let bal = match hl.cmp(&hr) {
            core::cmp::Ordering::Equal => 0,
            core::cmp::Ordering::Greater => LEFT_HEAVY,
            core::cmp::Ordering::Less => LEFT_HEAVY + 1,
        };
        let m = h.size.max(t.max_of(l)).max(t.max_of(r));
        if t.bal(n) != bal || t.word(n, 0) & 4 != 0 || t.word(n, 1) & 7 != 0 {
            return bad(CheckErrorKind::BadLink, "stored balance wrong");
        }
        if t.max(n) != m {
            return bad(CheckErrorKind::BadLink, "subtree maximum wrong");
        }
        Ok(1 + hl.max(hr))
    }

    /// Whether `x` is a node (a descent by address, bounded and checked as the structure walk).
    fn contains<T: TargetLayout>(&self, a: &Arena<T>, regions: &[Region], x: usize) -> bool {
        let t = self.nodes(a);
        let mut n = self.root;
        for _ in 0..PATH {
            if n == self.nil || !inside::<T>(regions, n, T::HEADER + T::ALIGN) {
                return false;
            }
            if n == x {
                return true;
            }
            n = t.child(n, usize::from(x > n));
        }
        false
    }
}

impl<const VERIFY: bool> crate::engine::index::sealed::Sealed for AddressTree<VERIFY> {}

impl<const VERIFY: bool> FreeIndex for AddressTree<VERIFY> {
    const MERGES: bool = true;
    const END_MARKERS: bool = true;
    const EMPTY: Self = AddressTree {
        root: NT,
        nil: NT,
        top: NT,
        end: NIL,
        markers: false,
    };
    const THREADED: bool = false;
    const MAX_SPAN: usize = MAX_SPAN;

    /// The search path of the found block (its last entry).
    type Found = Path;

    #[inline(always)]
    fn node_bytes<T: TargetLayout>() -> usize {
        node_bytes::<T>()
    }

    fn head(&self) -> usize {
        NIL
    }

    fn end(&self) -> usize {
        self.end
    }

    fn build<T: TargetLayout>(&mut self, a: &Arena<T>, regions: &[Region]) {
        #[allow(clippy::let_unit_value)]
        let () = Fits::<T>::OK;
        *self = Self::EMPTY;
        if let Some(last) = regions.last() {
            self.nil = last.end + T::WORD - slot::<T>(2);
            self.root = self.nil;
        }
        // The engine wrote every region's free block and end marker (link NIL: listed). Regions
        // ascend: the last one's block is the top block, the others go into the tree in order.
        for r in regions {
            if self.top != NT {
                self.push_last(a, self.top);
            }
            self.top = r.start;
        }
        self.end = regions.last().map_or(NIL, |r| r.end);
        self.markers = regions.len() > 1;
        if VERIFY {
            self.verify(a);
        }
    }

    #[inline]
    fn find<T: TargetLayout>(&self, a: &Arena<T>, wanted: usize, path: &mut Path) -> bool {
        #[allow(clippy::let_unit_value)]
        let () = Fits::<T>::OK;
        let t = self.nodes(a);
        let mut n = self.root;
        path.len = 0;
        if n == self.nil || !t.vet(path, n) || t.max(n) < wanted {
            // Nothing in the tree fits: the top block (above every node) if it does.
            let top = self.top;
            if top == NT || !t.vet_top(top) || t.size(top) < wanted {
                return false;
            }
            // Taking the top block whole makes the highest node the top block: vet that
            // descent now, while a refusal changes nothing.
            if cfg!(feature = "validate-cheap") && self.last(a).is_none() {
                return false;
            }
            path.block = top;
            return true;
        }
        loop {
            path.push(n);
            // Left while the left subtree has a fit; else this block; else the right subtree
            // (which has one: the subtree maximum says so).
            let l = t.child(n, 0);
            n = if t.max(l) >= wanted {
                l
            } else if t.size(n) >= wanted {
                path.block = n;
                return true;
            } else {
                t.right(n)
            };
            debug_assert!(n != self.nil, "subtree maximum lies");
            if !t.vet(path, n) {
                return false;
            }
        }
    }

    #[inline(always)]
    fn take<T: TargetLayout>(
        &mut self,
        a: &Arena<T>,
        path: &mut Path,
        rest: Option<(usize, usize)>,
    ) {
        let t = self.nodes(a);
        if path.len == 0 {
            // The top block.
            match rest {
                // The remainder is the new top block: nothing in the tree changes.
                Some((r, rs)) => {
                    t.set_size(r, rs);
                    self.top = r;
                }
                // The highest node becomes the top block (`find` vetted that descent).
                None => self.top = self.pop_last(a).unwrap_or(NT),
            }
            if VERIFY {
                self.verify(a);
            }
            return;
        }
        let i = path.len - 1;
        let block = path.at(i);
        match rest {
            Some((r, rs)) => {
                // The remainder keeps the block's place in the order: its node moves up to `r`
                // (beyond the block's node words) and the maxima above are lowered.
                let old = t.max(block);
                let (w0, w1) = (t.word(block, 0), t.word(block, 1));
                t.set_size(r, rs);
                t.set_word(r, 0, w0);
                t.set_word(r, 1, w1);
                let new = t.fix_max(r);
                t.relink(&mut self.root, path, i, r);
                t.lowered(path, i, old, new);
            }
            None => {
                t.delete_last(&mut self.root, path);
            }
        }
        if VERIFY {
            self.verify(a);
        }
    }

    #[inline]
    fn insert<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize, size: usize) {
        self.insert_merges(a, block, size);
    }
    fn remove<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize) {
        if block == self.top {
            if let Some(last) = self.pop_last(a) {
                self.top = last;
            }
            if VERIFY {
                self.verify(a);
            }
            return;
        }
        let t = self.nodes(a);
        let mut path = Path::new();
        let mut n = self.root;
        loop {
            if n == self.nil {
                // Not in the tree: a header that claims to be free but is not a node.
                a.fault(block);
                return;
            }
            if !t.vet(&path, n) {
                return;
            }
            path.push(n);
            if n == block {
                break;
            }
            n = t.child(n, usize::from(block > n));
        }
        t.delete_last(&mut self.root, &mut path);
        if VERIFY {
            self.verify(a);
        }
    }

    fn summary<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        regions: &[Region],
    ) -> Result<Summary, (Summary, usize)> {
        let mut s = Summary::EMPTY;
        let n = regions.len().saturating_sub(1);
        for r in &regions[..n] {
            // SAFETY: every region's end marker header lies at its `end`.
            if unsafe { a.link(r.end) } != ABSORBED {
                s.add(0);
            }
        }
        let t = self.nodes(a);
        if self.top != NT {
            if !inside::<T>(regions, self.top, T::HEADER + T::ALIGN) {
                return Err((s, self.top));
            }
            s.add(t.size(self.top));
        }
        // Any order will do for a count, a maximum and a minimum: depth first with a stack.
        let mut stack = [0u32; PATH];
        let mut depth = 0;
        let mut node = self.root;
        loop {
            if node != self.nil {
                // `get_mut`: a path deeper than PATH (a corrupt tree) ends the walk; no panic path.
                let Some(slot) = stack.get_mut(depth) else {
                    return Err((s, node));
                };
                if !inside::<T>(regions, node, T::HEADER + T::ALIGN) {
                    return Err((s, node));
                }
                s.add(t.size(node));
                if s.count > a.max_nodes() {
                    return Err((s, node));
                }
                *slot = t.child(node, 1) as u32;
                depth += 1;
                node = t.child(node, 0);
            } else if let Some(&next) = depth.checked_sub(1).and_then(|d| stack.get(d)) {
                depth -= 1;
                node = next as usize;
            } else {
                return Ok(s);
            }
        }
    }

    fn check_start(&self) -> usize {
        0
    }

    fn check_met<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        cursor: &mut usize,
        met: Met,
        regions: &[Region],
    ) -> Result<(), CheckErrorKind> {
        match met {
            Met::Free(off) => {
                if off != self.top && !self.contains(a, regions, off) {
                    return Err(CheckErrorKind::ListMismatch);
                }
                *cursor += 1;
            }
            Met::Marker { at, last } => {
                // SAFETY: the end marker header lies at `at`, inside the caller's region.
                let link = unsafe { a.link(at) };
                if link != NIL && (last || link != ABSORBED) {
                    return Err(CheckErrorKind::BadLink);
                }
            }
        }
        Ok(())
    }

    fn check_end<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        cursor: usize,
        regions: &[Region],
        free_blocks: usize,
        _free_bytes: usize,
    ) -> Result<(), (CheckErrorKind, usize)> {
        let nodes =
            self.structure(a, regions).map_err(|b| (b.kind, b.off))? + usize::from(self.top != NT);
        if nodes != free_blocks || cursor != free_blocks {
            return Err((CheckErrorKind::ListMismatch, 0));
        }
        Ok(())
    }
}

impl<const VERIFY: bool> AddressTree<VERIFY> {
    /// [`FreeIndex::insert`], returning how many free blocks the freed one merged with (`None`:
    /// a link did not check out, nothing written).
    #[inline]
    pub(super) fn insert_merges<T: TargetLayout>(
        &mut self,
        a: &Arena<T>,
        block: usize,
        size: usize,
    ) -> Option<usize> {
        // A link that did not check out is recorded; nothing was written.
        let merged = self.merge_in(a, block, size)?;
        let end = block + size;
        if self.markers && end != self.end {
            // heap_5: an intermediate end marker right above, still listed, is absorbed.
            // SAFETY: `end` is the header after a block: a block or an end marker.
            let h = unsafe { a.header(end) };
            if h.size == 0 && !h.allocated && h.link != ABSORBED {
                // SAFETY: as above: `end` is an end marker.
                unsafe { a.set_link(end, ABSORBED) };
            }
        }
        if VERIFY {
            self.verify(a);
        }
        Some(merged)
    }

    /// A tree of the free blocks of a single-region address list (`head` first, ending at
    /// pxEnd `end`), written into the blocks (their link words and first payload bytes).
    /// `None`: a link did not check out (`validate-cheap`, recorded); then blocks may already
    /// hold node words and the caller must not use the list either.
    pub(super) fn from_list<T: TargetLayout>(
        a: &Arena<T>,
        head: usize,
        end: usize,
    ) -> Option<Self> {
        #[allow(clippy::let_unit_value)]
        let () = Fits::<T>::OK;
        let mut t = Self::EMPTY;
        t.nil = end + T::WORD - slot::<T>(2);
        t.root = t.nil;
        t.end = end;
        let mut n = head;
        let mut steps = 0;
        if !a.follow(n, n) {
            return None;
        }
        while n != end {
            steps += 1;
            // SAFETY: `n` is a node of the list, below pxEnd (the walk stops there).
            let next = unsafe { a.link(n) };
            if n == NIL || !a.follow(n, next) || next <= n || steps > a.max_nodes() {
                return None;
            }
            // The previous top block's link was read in the turn before: its words may change.
            if t.top != NT && !t.push_last(a, t.top) {
                return None;
            }
            t.top = n;
            n = next;
        }
        if VERIFY {
            t.verify(a);
        }
        Some(t)
    }

    /// Rewrites the free blocks as an address list (ascending, the last one linked to pxEnd)
    /// and returns its head (pxEnd when no block is free). With `validate-cheap` the tree is
    /// first walked without writing; `None`: a node did not check out (recorded), nothing
    /// written.
    pub(super) fn write_list<T: TargetLayout>(&self, a: &Arena<T>) -> Option<usize> {
        if cfg!(feature = "validate-cheap") {
            self.in_order(a, |_, _| ())?;
        }
        let mut head = NIL;
        let mut last = self.in_order(a, |prev, cur| {
            // With poisoning, node words in the payload become payload again: a list block's
            // payload is all pattern past its header.
            #[cfg(feature = "poison")]
            // SAFETY: `cur`'s node words (all read) lie in its own free payload.
            unsafe {
                a.poison(cur + T::HEADER, node_bytes::<T>())
            };
            if prev == NIL {
                head = cur;
            } else {
                // SAFETY: `prev` is a free block whose node words were all read (its right
                // child before `cur` was reached): its link word is the list's now.
                unsafe { a.set_link(prev, cur) };
            }
        })?;
        if self.top != NT {
            // The top block may have been a node (its words stay in its payload).
            #[cfg(feature = "poison")]
            // SAFETY: the payload of the top block, a free block.
            unsafe {
                a.poison(self.top + T::HEADER, node_bytes::<T>())
            };
            if last == NIL {
                head = self.top;
            } else {
                // SAFETY: as above.
                unsafe { a.set_link(last, self.top) };
            }
            last = self.top;
        }
        if last == NIL {
            return Some(self.end);
        }
        // SAFETY: `last` is a free block; pxEnd closes the list.
        unsafe { a.set_link(last, self.end) };
        Some(head)
    }

    /// Visits the nodes in address order, calling `visit(previous, node)` once each node's
    /// words have been read for the last time; returns the last node (`NIL`: none). `None`: a
    /// node did not check out (`validate-cheap`).
    fn in_order<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        mut visit: impl FnMut(usize, usize),
    ) -> Option<usize> {
        let t = self.nodes(a);
        let mut stack = [0usize; PATH];
        let mut depth = 0;
        let mut n = self.root;
        let mut prev = NIL;
        let mut steps = 0;
        loop {
            while n != self.nil {
                if depth >= PATH - 1 || !t.vet(&Path::new(), n) {
                    a.fault(n);
                    return None;
                }
                stack[depth] = n;
                depth += 1;
                n = t.child(n, 0);
            }
            if depth == 0 {
                return Some(prev);
            }
            depth -= 1;
            let cur = stack[depth];
            steps += 1;
            if steps > a.max_nodes() {
                a.fault(cur);
                return None;
            }
            n = t.child(cur, 1);
            visit(prev, cur);
            prev = cur;
        }
    }
}

/// With poisoning, the header and node words of a block absorbed by a merge become payload of
/// the merged free block: poison them again. A no-op without the feature.
#[inline(always)]
fn retire_node<T: TargetLayout>(a: &Arena<T>, n: usize) {
    // SAFETY: `n`'s header lies inside a merged free block.
    unsafe { a.retire_header(n) };
    #[cfg(feature = "poison")]
    // SAFETY: `n`'s node words past its header lie inside the same merged free block.
    unsafe {
        a.poison(n + T::HEADER, node_bytes::<T>())
    };
}

/// What the structure check of the tree found wrong, and where.
struct Broken {
    kind: CheckErrorKind,
    off: usize,
    what: &'static str,
}

/// Whether `size` bytes at `n` lie on the block grid inside one region.
fn inside<T: TargetLayout>(regions: &[Region], n: usize, size: usize) -> bool {
    n % T::ALIGN == 0
        && regions
            .iter()
            .any(|r| n >= r.start && n < r.end && size <= r.end - n)
}
