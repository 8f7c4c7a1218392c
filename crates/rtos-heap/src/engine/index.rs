//! Free-block indexes: how the engine finds, keeps and returns free blocks.
//!
//! Both lists here are singly linked through the link word of the free blocks themselves (no side
//! table), exactly as FreeRTOS keeps them:
//! - [`AddressList`]: ascending address, first fit, neighbours merged on insertion (heap_4/heap_5).
//!   The end marker of every region is a zero-size node of the list; the last one is `pxEnd`.
//! - [`SizeList`]: ascending size, best fit, LIFO among equal sizes, no merging (heap_2).
//!
//! Every method takes the arena and offsets that the engine guarantees are block offsets inside its
//! regions (engine invariant: a free-list node is always a free block or an end marker).

// `FreeIndex` is public (it bounds `Heap4`'s and `Heap5`'s index parameter) but sealed: its
// methods take crate-private types, which nobody outside can name or call.
#![allow(private_interfaces, private_bounds)]

use crate::error::CheckErrorKind;
use crate::raw::{Arena, NIL};
use crate::target::TargetLayout;

use super::{Region, Summary};

/// Where a found block sits in the index: its predecessor (`NIL` = the list head) and itself.
#[derive(Debug, Clone, Copy)]
pub struct Pos {
    pub prev: usize,
    pub block: usize,
}

/// What an index's `find` fills in for its `take`: every index answers with the block found.
pub trait Found {
    /// Nothing found yet (what `find` starts from).
    fn none() -> Self;
    /// The offset of the block found.
    fn block(&self) -> usize;
}

impl Found for Pos {
    #[inline(always)]
    fn none() -> Pos {
        Pos {
            prev: NIL,
            block: NIL,
        }
    }

    #[inline(always)]
    fn block(&self) -> usize {
        self.block
    }
}

pub(crate) mod sealed {
    /// Keeps [`FreeIndex`](super::FreeIndex) implementable only inside this crate.
    pub trait Sealed {}
}

impl sealed::Sealed for AddressList {}
impl sealed::Sealed for SizeList {}

/// What the engine's integrity walk meets, in address order, for the index to check against itself.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Met {
    /// A free block at this offset.
    Free(usize),
    /// The end marker of a region; `last`: it is `pxEnd`.
    Marker { at: usize, last: bool },
}

/// The free-block index interface the engine is written against.
///
/// Public so that it can bound the index parameter of [`Heap4`](crate::Heap4) and
/// [`Heap5`](crate::Heap5) ([`AddressList`] or [`AddressTree`](crate::AddressTree)); sealed: only
/// this crate implements it, and its methods are internal.
pub trait FreeIndex: sealed::Sealed {
    /// Whether freed blocks merge with their free neighbours (heap_4/5) or not (heap_2).
    const MERGES: bool;
    /// Whether each region ends in an end marker (heap_4/5).
    const END_MARKERS: bool;
    /// An empty index.
    const EMPTY: Self;
    /// Whether the link word of every free block holds the next node of a FreeRTOS-style list
    /// (`true` for the lists). The tree keeps part of its node there instead, so a free block's
    /// link word says nothing to the engine.
    const THREADED: bool = true;
    /// The largest heap span (first region start to last region end, in bytes) the index can
    /// address; larger heaps are refused when they are defined.
    const MAX_SPAN: usize = usize::MAX;
    /// Bytes at the start of a free block's payload (after its header) that the index itself
    /// writes (its node) on target layout `T`, up to the payload's length: 0 for the lists. A
    /// check that the payload of a free block is untouched (poisoning) skips them.
    #[inline(always)]
    fn node_bytes<T: TargetLayout>() -> usize {
        0
    }

    /// Where `find` found a block, for `take` (filled in place: the tree's is a search path).
    type Found: Found;

    /// First list node, or `NIL` (lists only; the tree answers `NIL`).
    fn head(&self) -> usize;
    /// The `pxEnd` node of an address list (`NIL` for lists without end markers).
    fn end(&self) -> usize;
    /// Links the single free block of every region (headers already written by the engine).
    fn build<T: TargetLayout>(&mut self, a: &Arena<T>, regions: &[Region]);
    /// Finds the block the scheme would hand out for a request of `wanted` bytes; whether there
    /// is one (then described in `found`).
    fn find<T: TargetLayout>(&self, a: &Arena<T>, wanted: usize, found: &mut Self::Found) -> bool;
    /// Removes the found block; `rest` (offset, size) is the split-off remainder to keep free.
    /// Writes the remainder's header.
    fn take<T: TargetLayout>(
        &mut self,
        a: &Arena<T>,
        found: &mut Self::Found,
        rest: Option<(usize, usize)>,
    );
    /// Adds a free block (merging where the index merges). Writes the block's header.
    fn insert<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize, size: usize);
    /// Removes a block known to be in the index.
    fn remove<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize);

    /// The `vPortGetHeapStats` walk: free blocks (and listed end markers) counted, largest and
    /// smallest. `Err` carries what was counted before a node that did not check out
    /// (`validate-cheap`) and that node's offset.
    #[inline(always)]
    fn summary<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        regions: &[Region],
    ) -> Result<Summary, (Summary, usize)> {
        let _ = regions;
        list_summary(a, self.head(), self.end())
    }

    /// Start value of the cursor the integrity walk threads through [`check_met`](Self::check_met).
    fn check_start(&self) -> usize {
        self.head()
    }
    /// Checks the index against one thing the integrity walk met (in address order). By default
    /// nothing: an index not kept in address order (the size list) is checked whole by
    /// [`check_end`](Self::check_end).
    fn check_met<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        cursor: &mut usize,
        met: Met,
        regions: &[Region],
    ) -> Result<(), CheckErrorKind> {
        let _ = (a, cursor, met, regions);
        Ok(())
    }
    /// After the walk: whether the index holds exactly the `free_blocks` blocks (`free_bytes`
    /// bytes) met. `Err` names the offending offset.
    fn check_end<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        cursor: usize,
        regions: &[Region],
        free_blocks: usize,
        free_bytes: usize,
    ) -> Result<(), (CheckErrorKind, usize)>;
}

/// The stats walk of a list from `head` to `end` (excluded): every node counted, the size-0
/// intermediate end markers too, as `vPortGetHeapStats` does. Inlined into its one caller.
#[inline(always)]
fn list_summary<T: TargetLayout>(
    a: &Arena<T>,
    head: usize,
    end: usize,
) -> Result<Summary, (Summary, usize)> {
    let mut s = Summary::EMPTY;
    let mut node = head;
    // `validate-cheap`: the stats walk follows links too; it stops at one that does not check
    // out (reported against the block holding it) instead of reading wild memory.
    if !a.follow(node, node) {
        a.take_fault();
        return Err((s, node));
    }
    let mut steps = 0usize;
    // `end` is NIL for the size-ordered list; the address list's ends at pxEnd, NIL only after a
    // corrupt link, which only `validate-cheap` lets through to here.
    while node != end && (!cfg!(feature = "validate-cheap") || node != NIL) {
        // SAFETY: `node` is an index node (with `validate-cheap`, a link validated below).
        let h = unsafe { a.header(node) };
        steps += 1;
        if !a.follow(node, h.link) || steps > a.max_nodes() {
            a.take_fault();
            return Err((s, node));
        }
        s.add(h.size);
        node = h.link;
    }
    Ok(s)
}

/// The address list's part of the integrity walk: the list must name exactly the free blocks met,
/// and the intermediate end markers not yet absorbed, in that order, ending at `pxEnd`.
fn address_list_met<T: TargetLayout>(
    a: &Arena<T>,
    cursor: &mut usize,
    met: Met,
    span: usize,
) -> Result<(), CheckErrorKind> {
    match met {
        Met::Free(off) => {
            if *cursor != off {
                return Err(CheckErrorKind::ListMismatch);
            }
            *cursor = next_node(a, off, span)?;
        }
        Met::Marker { at, last } => {
            // An intermediate marker is a list node until a free block below it absorbs it.
            if *cursor == at {
                if last {
                    // SAFETY: the end marker header lies at `at`, inside the caller's region.
                    if unsafe { a.link(at) } != NIL {
                        return Err(CheckErrorKind::BadLink);
                    }
                    *cursor = NIL;
                } else {
                    *cursor = next_node(a, at, span)?;
                }
            } else if last {
                return Err(CheckErrorKind::ListMismatch);
            }
        }
    }
    Ok(())
}

/// Follows an address-ordered link, checking it rises and stays on the grid inside the heap.
fn next_node<T: TargetLayout>(
    a: &Arena<T>,
    node: usize,
    span: usize,
) -> Result<usize, CheckErrorKind> {
    // SAFETY: `node` was matched to a block boundary or an end marker by the walk.
    let next = unsafe { a.link(node) };
    if next != NIL && (next <= node || next > span || next % T::ALIGN != 0) {
        return Err(CheckErrorKind::BadLink);
    }
    Ok(next)
}

/// Address-list order: a link must rise (or be NIL). Without `validate-cheap` this is `true`.
#[inline(always)]
fn rises<T: TargetLayout>(a: &Arena<T>, from: usize, to: usize) -> bool {
    if cfg!(feature = "validate-cheap") && to != NIL && to <= from {
        a.fault(from);
        return false;
    }
    true
}

/// A size word no request reaches and every request fits: the first-fit walk's sentinel at
/// `pxEnd` (the target word's largest size without the allocated bit, clamped to the host).
#[cfg(not(feature = "validate-cheap"))]
#[inline(always)]
const fn sentinel<T: TargetLayout>() -> usize {
    if T::SIZE_MSB != 0 {
        T::SIZE_MSB - 1
    } else {
        usize::MAX
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

/// Address-ordered, first fit, merging: FreeRTOS heap_4 / heap_5.
#[derive(Debug)]
pub struct AddressList {
    head: usize,
    end: usize,
}

impl AddressList {
    /// Makes `head` the first node (the hybrid index, rebuilding the list from its tree).
    pub(super) fn set_head(&mut self, head: usize) {
        self.head = head;
    }

    /// The last node below `block` and the node after it (pxEnd at the latest): where `block`
    /// goes in the list. `None` when a link did not check out (`validate-cheap`, fault
    /// recorded).
    #[cfg(feature = "validate-cheap")]
    #[inline(always)]
    fn last_below<T: TargetLayout>(&self, a: &Arena<T>, block: usize) -> Option<(usize, usize)> {
        let mut prev = NIL;
        let mut next = self.head;
        if !a.follow(next, next) {
            return None;
        }
        while next < block {
            // SAFETY: `next` is a list node.
            let link = unsafe { a.link(next) };
            if !a.follow(next, link) || !rises(a, next, link) {
                return None;
            }
            prev = next;
            next = link;
        }
        Some((prev, next))
    }

    /// As above without link validation, two nodes per turn (no copy of the cursor per node).
    #[cfg(not(feature = "validate-cheap"))]
    #[inline(always)]
    fn last_below<T: TargetLayout>(&self, a: &Arena<T>, block: usize) -> Option<(usize, usize)> {
        let mut prev = NIL;
        let mut next = self.head;
        if cfg!(rtos_heap_small) {
            // One node per turn: less code.
            while next < block {
                prev = next;
                // SAFETY: `next` is a list node below `block`, so not pxEnd (above every block):
                // its link is a node too.
                next = unsafe { a.link(next) };
            }
            return Some((prev, next));
        }
        while next < block {
            // SAFETY: `next` is a list node below `block`, so not pxEnd (above every block): its
            // link is a node too.
            let n = unsafe { a.link(next) };
            if n >= block {
                return Some((next, n));
            }
            prev = n;
            // SAFETY: as above, for `n`.
            next = unsafe { a.link(n) };
        }
        Some((prev, next))
    }

    /// [`FreeIndex::insert`], returning how many list nodes the freed block merged with (the
    /// free blocks below and above it, or an end marker absorbed); `None`: a link did not check
    /// out (recorded), nothing written.
    #[inline(always)]
    pub(super) fn insert_merges<T: TargetLayout>(
        &mut self,
        a: &Arena<T>,
        block: usize,
        size: usize,
    ) -> Option<usize> {
        // Find the last node below the block. pxEnd is above every block, so the walk stops.
        // Every link is validated before it is followed and nothing is written until the walk is
        // over, so a corrupt list is left as it was (the engine sees the recorded fault).
        let (prev, next) = self.last_below(a, block)?;
        let (mut b, mut s) = (block, size);
        if prev != NIL {
            // SAFETY: `prev` is a list node.
            let ps = unsafe { a.size(prev) };
            if prev + ps == block {
                b = prev;
                s += ps;
            }
        }
        let mut merge_up = b + s == next && next != self.end;
        let merged = usize::from(b != block) + usize::from(merge_up);
        let link = if merge_up {
            // Merge with the upper neighbour (an intermediate end marker is absorbed, size 0).
            // SAFETY: `next` is a list node.
            let nh = unsafe { a.header(next) };
            if !a.follow(next, nh.link) || !rises(a, next, nh.link) {
                return None;
            }
            s += nh.size;
            // An intermediate end marker leaves the list but stays where it is, closing its
            // region: its header is not swallowed.
            merge_up = nh.size != 0;
            nh.link
        } else {
            next
        };
        // SAFETY: `b` is the freed block or its free lower neighbour: a header inside a region.
        unsafe { a.set_header(b, link, s, false) };
        if b != prev {
            set_prev_link(&mut self.head, a, prev, b);
        }
        // With poisoning, headers swallowed by the merge become payload of the free block.
        if b != block {
            // SAFETY: `block`'s header now lies inside the merged free block `b`.
            unsafe { a.retire_header(block) };
        }
        if merge_up {
            // SAFETY: `next`'s header now lies inside the merged free block `b`.
            unsafe { a.retire_header(next) };
        }
        Some(merged)
    }
}

impl FreeIndex for AddressList {
    const MERGES: bool = true;
    const END_MARKERS: bool = true;
    const EMPTY: Self = AddressList {
        head: NIL,
        end: NIL,
    };
    type Found = Pos;

    fn check_met<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        cursor: &mut usize,
        met: Met,
        regions: &[Region],
    ) -> Result<(), CheckErrorKind> {
        let span = regions.last().map_or(0, |r| r.end);
        address_list_met(a, cursor, met, span)
    }

    fn check_end<T: TargetLayout>(
        &self,
        _a: &Arena<T>,
        cursor: usize,
        _regions: &[Region],
        _free_blocks: usize,
        _free_bytes: usize,
    ) -> Result<(), (CheckErrorKind, usize)> {
        if cursor != NIL {
            return Err((CheckErrorKind::ListMismatch, cursor));
        }
        Ok(())
    }

    fn head(&self) -> usize {
        self.head
    }

    fn end(&self) -> usize {
        self.end
    }

    fn build<T: TargetLayout>(&mut self, a: &Arena<T>, regions: &[Region]) {
        self.head = regions.first().map_or(NIL, |r| r.start);
        for (i, r) in regions.iter().enumerate() {
            let next = regions.get(i + 1).map_or(NIL, |n| n.start);
            // SAFETY: region starts and end markers are header positions inside the regions.
            unsafe {
                a.set_link(r.start, r.end);
                a.set_link(r.end, next);
            }
        }
        self.end = regions.last().map_or(NIL, |r| r.end);
    }

    /// First fit without link validation: `pxEnd`'s size word is set to a size every request
    /// fits (a sentinel) for the walk, so the loop tests only the size of each node (no end
    /// test), and restored to 0 before returning. Intermediate end markers (size 0) are passed
    /// over as blocks too small.
    #[cfg(not(feature = "validate-cheap"))]
    #[inline]
    fn find<T: TargetLayout>(&self, a: &Arena<T>, wanted: usize, found: &mut Pos) -> bool {
        let end = self.end;
        // The engine searches only a laid-out heap, whose list ends in pxEnd.
        debug_assert_ne!(end, NIL);
        // SAFETY: `end` is pxEnd, the end marker header of the last region (engine invariant);
        // every request is below `SENTINEL` (the engine refuses sizes with the top bit set).
        unsafe { a.set_size(end, sentinel::<T>(), false) };
        let mut prev = NIL;
        let mut block = self.head;
        if cfg!(rtos_heap_small) {
            // One node per turn: less code, a copy of the cursor more per node.
            // SAFETY: `block` is a list node: the head, or the link of a node whose size was below
            // the sentinel's, hence not pxEnd (the walk stops at pxEnd at the latest).
            while unsafe { a.free_size(block) } < wanted {
                prev = block;
                // SAFETY: as above: `block` is a list node other than pxEnd.
                block = unsafe { a.link(block) };
            }
        } else {
            // Two nodes per turn: no copy of the cursor per node.
            loop {
                // SAFETY: `block` is a list node: the head, or the link of a node whose size was below
                // the sentinel's, hence not pxEnd (the walk stops at pxEnd at the latest).
                if unsafe { a.free_size(block) } >= wanted {
                    break;
                }
                // SAFETY: as above.
                let n = unsafe { a.link(block) };
                // SAFETY: as above.
                if unsafe { a.free_size(n) } >= wanted {
                    prev = block;
                    block = n;
                    break;
                }
                prev = n;
                // SAFETY: as above.
                block = unsafe { a.link(n) };
            }
        }
        // SAFETY: as above.
        unsafe { a.set_size(end, 0, false) };
        if block == end {
            return false;
        }
        *found = Pos { prev, block };
        true
    }

    /// First fit with every link validated before it is followed (`validate-cheap`).
    #[cfg(feature = "validate-cheap")]
    #[inline]
    fn find<T: TargetLayout>(&self, a: &Arena<T>, wanted: usize, found: &mut Pos) -> bool {
        let mut prev = NIL;
        let mut block = self.head;
        // The head is kept here, but the header it names is in memory: validate it as a link.
        if !a.follow(block, block) {
            return false;
        }
        if block == NIL {
            return false;
        }
        loop {
            // SAFETY: `block` is a list node (engine invariant; with `validate-cheap`, every link was
            // validated by `follow` before being followed); the walk ends at pxEnd, whose link is NIL.
            let h = unsafe { a.header(block) };
            // The found block's link is used by `take`: validate it too. Links rise (no cycle).
            if !a.follow(block, h.link) || !rises(a, block, h.link) {
                return false;
            }
            if h.size >= wanted {
                *found = Pos { prev, block };
                return true;
            }
            if h.link == NIL {
                return false;
            }
            prev = block;
            block = h.link;
        }
    }

    #[inline]
    fn take<T: TargetLayout>(&mut self, a: &Arena<T>, pos: &mut Pos, rest: Option<(usize, usize)>) {
        // SAFETY: `pos.block` is a list node; `rest` lies inside it (the engine splits it).
        let next = unsafe { a.link(pos.block) };
        let to = match rest {
            Some((r, size)) => {
                // The remainder takes the block's place in the list: same neighbours, same order.
                // SAFETY: `r` is on the grid inside the block being split.
                unsafe { a.set_header(r, next, size, false) };
                r
            }
            None => next,
        };
        set_prev_link(&mut self.head, a, pos.prev, to);
    }

    #[inline]
    fn insert<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize, size: usize) {
        self.insert_merges(a, block, size);
    }

    fn remove<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize) {
        let mut prev = NIL;
        let mut cur = self.head;
        if !a.follow(cur, cur) {
            return;
        }
        while cur != block && cur != NIL {
            // SAFETY: `cur` is a list node.
            let link = unsafe { a.link(cur) };
            if !a.follow(cur, link) || !rises(a, cur, link) {
                return;
            }
            prev = cur;
            cur = link;
        }
        if cur != block {
            // Not in the list: a header that claims to be free but is not a node (corruption, which
            // the engine's callers check for).
            a.fault(block);
            return;
        }
        // SAFETY: `block` is a list node.
        let next = unsafe { a.link(block) };
        if !a.follow(block, next) || !rises(a, block, next) {
            return;
        }
        set_prev_link(&mut self.head, a, prev, next);
    }
}

/// Size-ordered, best fit, no merging: FreeRTOS heap_2.
#[derive(Debug)]
pub struct SizeList {
    head: usize,
}

impl FreeIndex for SizeList {
    const MERGES: bool = false;
    const END_MARKERS: bool = false;
    const EMPTY: Self = SizeList { head: NIL };
    type Found = Pos;

    fn check_end<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        _cursor: usize,
        regions: &[Region],
        free_blocks: usize,
        free_bytes: usize,
    ) -> Result<(), (CheckErrorKind, usize)> {
        check_size_list(a, self.head, regions, free_blocks, free_bytes)
    }

    fn head(&self) -> usize {
        self.head
    }

    fn end(&self) -> usize {
        NIL
    }

    fn build<T: TargetLayout>(&mut self, a: &Arena<T>, regions: &[Region]) {
        self.head = NIL;
        for r in regions {
            // SAFETY: the region's first block header was written by the engine.
            let size = unsafe { a.size(r.start) };
            self.insert(a, r.start, size);
        }
    }

    #[inline]
    fn find<T: TargetLayout>(&self, a: &Arena<T>, wanted: usize, found: &mut Pos) -> bool {
        let mut prev = NIL;
        let mut block = self.head;
        // The head is kept here, but the header it names is in memory: validate it as a link.
        if !a.follow(block, block) {
            return false;
        }
        let mut steps = 0;
        while block != NIL {
            // SAFETY: `block` is a list node (with `validate-cheap`, a validated link).
            let h = unsafe { a.header(block) };
            // The found block's link is used by `take`: validate it too.
            if !a.follow(block, h.link) || !sorted(a, block, h.size, h.link, &mut steps) {
                return false;
            }
            if h.size >= wanted {
                *found = Pos { prev, block };
                return true;
            }
            prev = block;
            block = h.link;
        }
        false
    }

    #[inline]
    fn take<T: TargetLayout>(&mut self, a: &Arena<T>, pos: &mut Pos, rest: Option<(usize, usize)>) {
        // SAFETY: `pos.block` is a list node.
        let next = unsafe { a.link(pos.block) };
        set_prev_link(&mut self.head, a, pos.prev, next);
        if let Some((r, size)) = rest {
            self.insert(a, r, size);
        }
    }

    #[inline]
    fn insert<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize, size: usize) {
        // Before the first block of equal or larger size: newest first among equals.
        // The walk validates every link and precedes every write: a corrupt list is left as it was.
        let mut prev = NIL;
        let mut next = self.head;
        if !a.follow(next, next) {
            return;
        }
        let mut steps = 0;
        while next != NIL {
            // SAFETY: `next` is a list node (with `validate-cheap`, a validated link).
            let h = unsafe { a.header(next) };
            if h.size >= size {
                break;
            }
            if !a.follow(next, h.link) || !sorted(a, next, h.size, h.link, &mut steps) {
                return;
            }
            prev = next;
            next = h.link;
        }
        // SAFETY: `block` is the block being freed: a header inside the region.
        unsafe { a.set_header(block, next, size, false) };
        set_prev_link(&mut self.head, a, prev, block);
    }

    fn remove<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize) {
        let mut prev = NIL;
        let mut cur = self.head;
        if !a.follow(cur, cur) {
            return;
        }
        let mut steps = 0;
        while cur != block && cur != NIL {
            // SAFETY: `cur` is a list node (with `validate-cheap`, a validated link).
            let h = unsafe { a.header(cur) };
            if !a.follow(cur, h.link) || !sorted(a, cur, h.size, h.link, &mut steps) {
                return;
            }
            prev = cur;
            cur = h.link;
        }
        if cur != block {
            a.fault(block);
            return;
        }
        // SAFETY: `block` is a list node.
        let next = unsafe { a.link(block) };
        if !a.follow(block, next) {
            return;
        }
        set_prev_link(&mut self.head, a, prev, next);
    }
}

/// Size-list order and length: the next node's size is not below this one's, and the walk has not
/// visited more nodes than the heap can hold (a cycle). Without `validate-cheap` this is `true`.
#[inline(always)]
fn sorted<T: TargetLayout>(
    a: &Arena<T>,
    from: usize,
    size: usize,
    to: usize,
    steps: &mut usize,
) -> bool {
    if cfg!(feature = "validate-cheap") && to != NIL {
        *steps += 1;
        // SAFETY: `to` was validated by `follow` (a free header inside a region).
        let next_size = unsafe { a.size(to) };
        if next_size < size || *steps > a.max_nodes() {
            a.fault(from);
            return false;
        }
    }
    true
}

/// heap_2's list: every node a free block on the grid, sizes ascending, as many nodes and bytes
/// as the walk of the blocks found.
fn check_size_list<T: TargetLayout>(
    a: &Arena<T>,
    head: usize,
    regions: &[Region],
    phys_free: usize,
    phys_bytes: usize,
) -> Result<(), (CheckErrorKind, usize)> {
    let mut node = head;
    let (mut count, mut bytes, mut last) = (0usize, 0usize, 0usize);
    while node != NIL {
        let inside = regions
            .iter()
            .any(|r| node >= r.start && node < r.end && r.end - node >= T::HEADER);
        if !inside || node % T::ALIGN != 0 {
            return Err((CheckErrorKind::BadLink, node));
        }
        // SAFETY: `node` is on the grid inside a region, with room for a header.
        let h = unsafe { a.header(node) };
        if h.allocated || h.size == 0 {
            return Err((CheckErrorKind::ListNodeNotFree, node));
        }
        if h.size < last {
            return Err((CheckErrorKind::BadLink, node));
        }
        count += 1;
        bytes += h.size;
        if count > phys_free {
            return Err((CheckErrorKind::ListMismatch, node));
        }
        last = h.size;
        node = h.link;
    }
    if count != phys_free || bytes != phys_bytes {
        return Err((CheckErrorKind::ListMismatch, 0));
    }
    Ok(())
}
