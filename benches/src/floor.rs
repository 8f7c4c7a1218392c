//! A measuring instrument, not an allocator to use: what `AddressTree`'s algorithm costs with
//! nothing of the engine around it.
//!
//! [`Floor`] is heap_4's placement (`Native` layout: 16-byte header, 8-byte alignment, 32-byte
//! minimum block, the same split rule and end marker) with the tree index of `AddressTree`
//! (address-keyed AVL tree, subtree maxima, the top block kept beside the tree), and with
//! everything else taken out: no validation of any pointer or link, no statistics but the free
//! bytes and their minimum, no heap_5 regions, no hooks, no locking, one layout only. Its cost
//! is what the tree's own work costs, so that the `random` target of issue #8 (2.5× talc) can
//! be compared with a measured figure instead of an estimate. It is a second implementation of
//! the algorithm on purpose: written without the engine's abstractions (arena, layouts, checks),
//! it also shows that the tree's cost does not come from them.
//!
//! `tests/floor.rs` checks that it places every block where `Heap4<Native>` does and that its
//! tree stays a valid AVL tree with right maxima ([`Floor::check`]).

use core::mem::MaybeUninit;
use core::ptr::NonNull;

use crate::subjects::BenchAlloc;

const HDR: u32 = 16;
const MIN_BLOCK: u32 = 32;
const ALLOCATED: u64 = 1 << 63;
/// "None" for the top block.
const NT: u32 = u32::MAX;
/// Balance of a node whose left subtree is one higher (`1 + side`: heavy on `side`).
const LH: u32 = 1;

/// The floor: see the module documentation.
pub struct Floor {
    base: *mut u8,
    root: u32,
    /// Null link: 8 bytes below `pxEnd`, so that its `max` word (at +16) is `pxEnd`'s size
    /// word, 0.
    nil: u32,
    top: u32,
    free: usize,
    min_ever: usize,
}

/// A root-to-node path.
///
/// Entries are read only after they were written (as in `AddressTree`'s path).
struct Path {
    n: [MaybeUninit<u32>; 64],
    len: usize,
}

impl Path {
    #[inline(always)]
    fn new() -> Path {
        Path {
            n: [const { MaybeUninit::uninit() }; 64],
            len: 0,
        }
    }
    #[inline(always)]
    fn at(&self, i: usize) -> u32 {
        // SAFETY: entries are read only after `push` or `set` wrote them.
        unsafe { self.n[i & 63].assume_init() }
    }
    #[inline(always)]
    fn set(&mut self, i: usize, v: u32) {
        self.n[i & 63].write(v);
    }
    #[inline(always)]
    fn push(&mut self, v: u32) {
        self.n[self.len & 63].write(v);
        self.len += 1;
    }
}

impl Floor {
    /// A heap over `len` bytes at `base`.
    ///
    /// # Safety
    /// `base` is 8-byte aligned and valid for reads and writes of `len` bytes, with `len` from
    /// 64 bytes to below 4 GiB; the memory belongs to the heap for its whole life.
    pub unsafe fn new(base: *mut u8, len: usize) -> Floor {
        let end = ((len - HDR as usize) & !7) as u32;
        let mut f = Floor {
            base,
            root: 0,
            nil: end - 8,
            top: 0,
            free: end as usize,
            min_ever: end as usize,
        };
        f.root = f.nil;
        f.set_hdr(end, 0);
        f.set_hdr(0, end as u64);
        f
    }

    #[inline(always)]
    fn p(&self, off: u32) -> *mut u8 {
        // SAFETY: callers pass offsets inside the heap's memory (its blocks, `pxEnd`).
        unsafe { self.base.add(off as usize) }
    }
    #[inline(always)]
    fn w(&self, n: u32, at: u32) -> u32 {
        // SAFETY: node words of a free block (or `nil`'s max word, `pxEnd`'s size word).
        unsafe { self.p(n + at).cast::<u32>().read() }
    }
    #[inline(always)]
    fn set_w(&self, n: u32, at: u32, v: u32) {
        // SAFETY: node words of a free block.
        unsafe { self.p(n + at).cast::<u32>().write(v) }
    }
    #[inline(always)]
    fn left(&self, n: u32) -> u32 {
        self.w(n, 0) & !7
    }
    #[inline(always)]
    fn child(&self, n: u32, side: u32) -> u32 {
        self.w(n, 4 * side) & !7
    }
    #[inline(always)]
    fn set_child(&self, n: u32, side: u32, c: u32) {
        let keep = self.w(n, 4 * side) & 3;
        self.set_w(n, 4 * side, c | keep);
    }
    #[inline(always)]
    fn bal(&self, n: u32) -> u32 {
        self.w(n, 0) & 3
    }
    #[inline(always)]
    fn set_bal(&self, n: u32, b: u32) {
        let w = self.w(n, 0);
        self.set_w(n, 0, (w & !3) | b);
    }
    /// Size of a free block (low word of the size word).
    #[inline(always)]
    fn size(&self, n: u32) -> u32 {
        self.w(n, 8)
    }
    #[inline(always)]
    fn max(&self, n: u32) -> u32 {
        self.w(n, 16)
    }
    #[inline(always)]
    fn set_max(&self, n: u32, m: u32) {
        self.set_w(n, 16, m)
    }
    /// Writes a block header: link 0, the 64-bit size word.
    #[inline(always)]
    fn set_hdr(&self, n: u32, size: u64) {
        // SAFETY: a block header inside the heap.
        unsafe {
            self.p(n).cast::<u64>().write(0);
            self.p(n + 8).cast::<u64>().write(size);
        }
    }
    #[inline(always)]
    fn set_size(&self, n: u32, s: u32) {
        // SAFETY: a block header inside the heap.
        unsafe { self.p(n + 8).cast::<u64>().write(s as u64) }
    }
    #[inline(always)]
    fn fix_max(&self, n: u32) -> u32 {
        let m = self
            .size(n)
            .max(self.max(self.left(n)))
            .max(self.max(self.child(n, 1)));
        self.set_max(n, m);
        m
    }

    #[inline(always)]
    /// Makes `c` the child of `path[i - 1]` that `path[i]` is (or the root).
    fn relink(&mut self, path: &Path, i: usize, c: u32) {
        if i == 0 {
            self.root = c;
        } else {
            let p = path.at(i - 1);
            self.set_child(p, u32::from(path.at(i) > p), c);
        }
    }

    #[inline]
    fn rotate(&self, n: u32, side: u32) -> u32 {
        let c = self.child(n, side);
        self.set_child(n, side, self.child(c, 1 - side));
        self.set_child(c, 1 - side, n);
        self.fix_max(n);
        self.fix_max(c);
        c
    }

    #[inline]
    fn rotate_twice(&self, n: u32, side: u32) -> u32 {
        let c = self.child(n, side);
        let g = self.child(c, 1 - side);
        let gb = self.bal(g);
        self.set_child(n, side, self.child(g, 1 - side));
        self.set_child(c, 1 - side, self.child(g, side));
        self.set_child(g, 1 - side, n);
        self.set_child(g, side, c);
        let heavy = LH + side;
        let other = LH + 1 - side;
        self.set_bal(n, if gb == heavy { other } else { 0 });
        self.set_bal(c, if gb == other { heavy } else { 0 });
        self.set_bal(g, 0);
        self.fix_max(n);
        self.fix_max(c);
        self.fix_max(g);
        g
    }

    /// Raises the maxima of `path[0..i]` to at least `s`.
    #[inline(always)]
    fn raised(&self, path: &Path, mut i: usize, s: u32) {
        while i > 0 {
            i -= 1;
            let p = path.at(i);
            if self.max(p) >= s {
                return;
            }
            self.set_max(p, s);
        }
    }

    /// Attaches leaf `b` of size `s` below `path[len - 1]` and rebalances.
    fn attach(&mut self, path: &mut Path, b: u32, s: u32) {
        self.set_w(b, 0, self.nil);
        self.set_w(b, 4, self.nil);
        self.set_max(b, s);
        if path.len == 0 {
            self.root = b;
            return;
        }
        let mut i = path.len - 1;
        let mut below = b;
        self.set_child(path.at(i), u32::from(b > path.at(i)), b);
        loop {
            let n = path.at(i);
            let side = u32::from(below > n);
            let heavy = LH + side;
            let w = self.w(n, 0);
            let bl = w & 3;
            if bl == 0 {
                self.set_w(n, 0, w | heavy);
                if self.max(n) < s {
                    self.set_max(n, s);
                }
                if i == 0 {
                    return;
                }
                i -= 1;
                below = n;
                continue;
            }
            if bl != heavy {
                self.set_w(n, 0, w & !3);
                if self.max(n) < s {
                    self.set_max(n, s);
                }
            } else {
                let c = self.child(n, side);
                let t = if self.bal(c) == heavy {
                    let t = self.rotate(n, side);
                    self.set_bal(n, 0);
                    self.set_bal(t, 0);
                    t
                } else {
                    self.rotate_twice(n, side)
                };
                self.relink(path, i, t);
                path.set(i, t);
            }
            self.raised(path, i, s);
            return;
        }
    }

    /// The subtree of `path[i]` on the side of `below` lost a level: rebalances up while the
    /// height shrinks, recomputing maxima, then recomputes maxima up to depth `keep` and further
    /// while they change.
    fn shrunk(&mut self, path: &mut Path, mut i: usize, mut below: u32, keep: usize) {
        loop {
            let n = path.at(i);
            let side = u32::from(below > n);
            let old = self.max(n);
            let w = self.w(n, 0);
            let b = w & 3;
            let (top, shrinking) = if b == LH + side {
                self.set_w(n, 0, w & !3);
                (n, true)
            } else if b == 0 {
                self.set_w(n, 0, w | (LH + 1 - side));
                (n, false)
            } else {
                let e = 1 - side;
                let c = self.child(n, e);
                let cb = self.bal(c);
                let t = if cb == 0 {
                    let t = self.rotate(n, e);
                    self.set_bal(n, b);
                    self.set_bal(t, LH + side);
                    t
                } else if cb == b {
                    let t = self.rotate(n, e);
                    self.set_bal(n, 0);
                    self.set_bal(t, 0);
                    t
                } else {
                    self.rotate_twice(n, e)
                };
                self.relink(path, i, t);
                path.set(i, t);
                (t, cb != 0)
            };
            let new = if top == n {
                self.fix_max(n)
            } else {
                self.max(top)
            };
            if !shrinking {
                let mut changed = new != old;
                while i > 0 && (changed || i > keep) {
                    i -= 1;
                    let p = path.at(i);
                    let o = self.max(p);
                    changed = self.fix_max(p) != o;
                }
                return;
            }
            if i == 0 {
                return;
            }
            i -= 1;
            below = top;
        }
    }

    /// Deletes `path[len - 1]`.
    fn delete_last(&mut self, path: &mut Path) {
        let ix = path.len - 1;
        let x = path.at(ix);
        let (l, r) = (self.left(x), self.child(x, 1));
        if l == self.nil || r == self.nil {
            let c = if l != self.nil { l } else { r };
            self.relink(path, ix, c);
            path.len = ix;
            if ix > 0 {
                self.shrunk(path, ix - 1, x, ix - 1);
            }
            return;
        }
        // Successor `y`: leftmost of the right subtree.
        let mut y = r;
        path.push(y);
        loop {
            let c = self.left(y);
            if c == self.nil {
                break;
            }
            y = c;
            path.push(y);
        }
        let iy = path.len - 1;
        let yr = self.child(y, 1);
        let bal = self.bal(x);
        let xm = self.max(x);
        let below = if iy == ix + 1 {
            self.set_w(y, 0, l | bal);
            self.set_max(y, xm);
            // The right side of `y` lost the level: any key above `y`.
            NT
        } else {
            self.set_child(path.at(iy - 1), 0, yr);
            self.set_w(y, 0, l | bal);
            self.set_w(y, 4, r);
            self.set_max(y, xm);
            y
        };
        self.relink(path, ix, y);
        path.set(ix, y);
        path.len = iy;
        self.shrunk(path, iy - 1, below, ix);
    }

    /// Removes and returns the highest node (`NT`: empty).
    fn pop_last(&mut self) -> u32 {
        let mut path = Path::new();
        let mut n = self.root;
        if n == self.nil {
            return NT;
        }
        loop {
            path.push(n);
            let c = self.child(n, 1);
            if c == self.nil {
                break;
            }
            n = c;
        }
        let i = path.len - 1;
        let l = self.left(n);
        self.relink(&path, i, l);
        path.len = i;
        if i > 0 {
            self.shrunk(&mut path, i - 1, n, i - 1);
        }
        n
    }

    /// Adds `b` (above every node) to the tree.
    fn push_last(&mut self, b: u32) {
        let mut path = Path::new();
        let mut n = self.root;
        while n != self.nil {
            path.push(n);
            n = self.child(n, 1);
        }
        let s = self.size(b);
        self.attach(&mut path, b, s);
    }

    /// Allocates `n` bytes (heap_4's `pvPortMalloc`): the payload, or null.
    #[inline(always)]
    pub fn malloc(&mut self, n: usize) -> *mut u8 {
        if n == 0 || n > 1 << 30 {
            return core::ptr::null_mut();
        }
        let want = ((n as u32) + HDR + 7) & !7;
        if want as usize > self.free {
            return core::ptr::null_mut();
        }
        let mut x = self.root;
        let bs;
        if self.max(x) < want {
            let top = self.top;
            if top == NT {
                return core::ptr::null_mut();
            }
            let ts = self.size(top);
            if ts < want {
                return core::ptr::null_mut();
            }
            if ts - want > MIN_BLOCK {
                self.set_size(top + want, ts - want);
                self.top = top + want;
                bs = want;
            } else {
                self.top = self.pop_last();
                bs = ts;
            }
            x = top;
        } else {
            let mut path = Path::new();
            loop {
                path.push(x);
                let l = self.left(x);
                if self.max(l) >= want {
                    x = l;
                } else if self.size(x) >= want {
                    break;
                } else {
                    x = self.child(x, 1);
                }
            }
            let s = self.size(x);
            if s - want > MIN_BLOCK {
                let r = x + want;
                let old = self.max(x);
                let (w0, w1) = (self.w(x, 0), self.w(x, 4));
                self.set_size(r, s - want);
                self.set_w(r, 0, w0);
                self.set_w(r, 4, w1);
                let mut new = self.fix_max(r);
                let mut i = path.len - 1;
                self.relink(&path, i, r);
                let mut old = old;
                while i > 0 && new != old {
                    i -= 1;
                    let p = path.at(i);
                    let pm = self.max(p);
                    if pm != old {
                        break;
                    }
                    old = pm;
                    new = self.fix_max(p);
                }
                bs = want;
            } else {
                self.delete_last(&mut path);
                bs = s;
            }
        }
        self.set_hdr(x, bs as u64 | ALLOCATED);
        self.free -= bs as usize;
        if self.free < self.min_ever {
            self.min_ever = self.free;
        }
        self.p(x + HDR)
    }

    /// Frees a payload (`vPortFree`, without any check).
    ///
    /// # Safety
    /// `ptr` came from [`malloc`](Self::malloc) and was not freed since.
    #[inline(always)]
    pub unsafe fn free(&mut self, ptr: NonNull<u8>) {
        let block = (ptr.as_ptr() as usize - self.base as usize) as u32 - HDR;
        // SAFETY: the header of an allocated block.
        let size = unsafe { self.p(block + 8).cast::<u64>().read() } as u32;
        self.set_size(block, size);
        self.free += size as usize;
        let end = block + size;
        let top = self.top;
        if top == NT {
            self.top = block;
            return;
        }
        if end == top {
            let mut last = NT;
            let mut n = self.root;
            while n != self.nil {
                last = n;
                n = self.child(n, 1);
            }
            let mut s = size + self.size(top);
            if last != NT && last + self.size(last) == block {
                s += self.size(last);
                self.pop_last();
                self.set_size(last, s);
                self.top = last;
            } else {
                self.set_size(block, s);
                self.top = block;
            }
            return;
        }
        if block > top {
            let ts = self.size(top);
            if top + ts == block {
                self.set_size(top, ts + size);
            } else {
                self.push_last(top);
                self.top = block;
            }
            return;
        }
        let mut path = Path::new();
        let (mut ip, mut is) = (usize::MAX, usize::MAX);
        let mut n = self.root;
        while n != self.nil {
            let right = block > n;
            if right {
                ip = path.len;
            } else {
                is = path.len;
            }
            path.push(n);
            n = self.child(n, u32::from(right));
        }
        let pred = if ip == usize::MAX { NT } else { path.at(ip) };
        let succ = if is == usize::MAX { NT } else { path.at(is) };
        let low = pred != NT && pred + self.size(pred) == block;
        let up = succ == end;
        match (low, up) {
            (false, false) => self.attach(&mut path, block, size),
            (true, false) => {
                let s = self.size(pred) + size;
                self.set_size(pred, s);
                self.raised(&path, ip + 1, s);
            }
            (false, true) => {
                let s = size + self.size(succ);
                let (w0, w1) = (self.w(succ, 0), self.w(succ, 4));
                let m = self.max(succ).max(s);
                self.set_size(block, s);
                self.set_w(block, 0, w0);
                self.set_w(block, 4, w1);
                self.set_max(block, m);
                self.relink(&path, is, block);
                path.set(is, block);
                self.raised(&path, is, s);
            }
            (true, true) => {
                let s = self.size(pred) + size + self.size(succ);
                let last = path.len - 1;
                if is > ip {
                    // `succ` is the last node (left child null): unlink it; `pred` grows.
                    self.set_size(pred, s);
                    let c = self.child(succ, 1);
                    self.relink(&path, last, c);
                    path.len = last;
                    self.shrunk(&mut path, last - 1, succ, ip);
                } else {
                    // `pred` is the last node (right child null): unlink it; the merged block
                    // at `pred` takes `succ`'s node.
                    let pl = self.left(pred);
                    self.relink(&path, ip, pl);
                    let (w0, w1, w2) = (self.w(succ, 0), self.w(succ, 4), self.max(succ));
                    self.set_size(pred, s);
                    self.set_w(pred, 0, w0);
                    self.set_w(pred, 4, w1);
                    self.set_max(pred, w2);
                    self.relink(&path, is, pred);
                    path.set(is, pred);
                    path.len = ip;
                    self.shrunk(&mut path, ip - 1, pred, is);
                }
            }
        }
    }

    /// Checks the tree: keys in order and apart (no overlap, no unmerged neighbours), every node
    /// below the top block, AVL heights and the stored balances, subtree maxima. Returns the
    /// height. For the tests: a floor whose tree were unbalanced would cost more than the
    /// algorithm does.
    ///
    /// # Errors
    /// The first violation found.
    pub fn check(&self) -> Result<u32, &'static str> {
        let hi = if self.top == NT { self.nil } else { self.top };
        self.subtree(self.root, 0, hi, 0).map(|(h, _)| h)
    }

    /// Height and maximum of the subtree of `n`, whose keys must lie in `lo..hi`.
    fn subtree(&self, n: u32, lo: u32, hi: u32, depth: u32) -> Result<(u32, u32), &'static str> {
        if n == self.nil {
            return Ok((0, 0));
        }
        if depth > 60 || n < lo || n >= hi || !n.is_multiple_of(8) {
            return Err("order broken");
        }
        let size = self.size(n);
        // The smallest block: a header and one alignment unit of payload.
        if size < HDR + 8 || n + size >= hi {
            return Err("block overlaps or touches the next free block");
        }
        let (hl, ml) = self.subtree(self.left(n), lo, n, depth + 1)?;
        let (hr, mr) = self.subtree(self.child(n, 1), n + size + 1, hi, depth + 1)?;
        let bal = match hl.cmp(&hr) {
            core::cmp::Ordering::Equal => 0,
            core::cmp::Ordering::Greater => LH,
            core::cmp::Ordering::Less => LH + 1,
        };
        if hl.abs_diff(hr) > 1 || self.bal(n) != bal {
            return Err("unbalanced, or balance stored wrong");
        }
        let m = size.max(ml).max(mr);
        if self.max(n) != m {
            return Err("subtree maximum wrong");
        }
        Ok((1 + hl.max(hr), m))
    }

    /// Free bytes.
    pub fn free_bytes(&self) -> usize {
        self.free
    }

    /// Minimum free bytes ever.
    pub fn min_ever_free_bytes(&self) -> usize {
        self.min_ever
    }
}

impl BenchAlloc for Floor {
    #[inline(never)]
    fn alloc(&mut self, size: usize, _align: usize) -> *mut u8 {
        self.malloc(size)
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize, _align: usize) {
        // SAFETY: forwarded contract.
        unsafe { Floor::free(self, ptr) }
    }
}
