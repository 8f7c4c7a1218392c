//! [`Hybrid`]: FreeRTOS's address list while the heap has few free blocks, the
//! [`AddressTree`] when it has many.
//!
//! The list is the cheapest index when a search passes few free blocks (most firmware heaps,
//! pools of one size, up to some tens of holes), and the tree costs O(log n) whatever the count.
//! `Hybrid<HI>` keeps the free blocks as the list until their number exceeds `HI`, then rebuilds
//! them as the tree; it goes back to the list when the number falls below `HI / 4` (the gap
//! keeps a heap whose count hovers around one threshold from switching at every operation).
//! Placement and statistics are those of heap_4 in both forms (the differential tests run it
//! against [`AddressList`] with small thresholds, switching all the time).
//!
//! Bounds: in list form a search or a free passes at most `HI + 1` nodes; in tree form every
//! operation is O(log n); a switch rebuilds at most `HI + 1` blocks (list to tree: each appended
//! as the new highest node, O(log HI) each; tree to list: one in-order walk). So every single
//! operation is O(HI + log n) with `HI` fixed at compile time: 128 by default.
//!
//! Only heaps of one region switch (heap_4, or heap_5 given one region); with several regions
//! the intermediate end markers are list nodes whose state the tree keeps differently, and
//! `Hybrid` stays a list (choose [`AddressTree`] for a heap_5 of many regions and many holes).

// The `FreeIndex` methods take crate-private types (the trait is sealed).
#![allow(private_interfaces)]

use crate::error::CheckErrorKind;
use crate::raw::{Arena, NIL};
use crate::target::TargetLayout;

use super::index::{AddressList, Found, FreeIndex, Met, Pos, sealed};
use super::tree::{AddressTree, Path};
use super::{Region, Summary};

/// heap_4's free-block index as a list below `HI` free blocks and as a tree above (see the
/// [module documentation](self)); use it as `Heap4<T, Hybrid>`.
///
/// # Examples
///
/// ```
/// use rtos_heap::{Heap4, Host64, Hybrid, RawHeap};
/// use core::ptr::NonNull;
///
/// let mem = Box::leak(Box::new([0u64; 1024]));
/// let mut heap = Heap4::<Host64, Hybrid>::new();
/// // SAFETY: leaked memory, owned by the heap from now on.
/// unsafe { heap.init_from_raw(NonNull::new(mem.as_mut_ptr().cast()).unwrap(), 8192) }.unwrap();
/// let blocks: Vec<_> = (0..200).map(|_| heap.malloc(8).unwrap()).collect();
/// for b in blocks.iter().step_by(2) {
///     // SAFETY: a live block, freed once.
///     unsafe { heap.free(*b, None) }.unwrap();
/// }
/// // 100 holes and the rest: still below the threshold of 128, the list serves them.
/// assert_eq!(heap.stats().free_blocks, 101);
/// heap.check().unwrap();
/// ```
#[derive(Debug)]
pub struct Hybrid<const HI: usize = 128> {
    list: AddressList,
    tree: AddressTree,
    /// Which form holds the blocks.
    in_tree: bool,
    /// Whether the heap has one region (only then the form switches).
    single: bool,
    /// Free blocks (list nodes: end markers included).
    count: usize,
    /// The count above which the list becomes the tree: `HI` in list form on one region, else
    /// never (one comparison on the hot path).
    high: usize,
    /// The count below which the tree becomes the list: `HI / 4` in tree form, else 0.
    low: usize,
}

impl<const HI: usize> sealed::Sealed for Hybrid<HI> {}

/// What `find` found, in the form that found it.
pub struct HybridFound {
    pos: Pos,
    path: Path,
}

impl Found for HybridFound {
    #[inline(always)]
    fn none() -> Self {
        HybridFound {
            pos: <Pos as Found>::none(),
            path: <Path as Found>::none(),
        }
    }

    #[inline(always)]
    fn block(&self) -> usize {
        // Both forms' `find` leave the block found here.
        self.pos.block
    }
}

impl<const HI: usize> Hybrid<HI> {
    /// The count below which the tree goes back to the list.
    const LO: usize = HI / 4;

    /// List to tree (when the count has passed `HI`). With `validate-cheap` the list is walked
    /// first without writing: a link that does not check out leaves the list as it is (the next
    /// operation that follows that link reports it).
    #[cold]
    #[inline(never)]
    fn switch_to_tree<T: TargetLayout>(&mut self, a: &Arena<T>) {
        if cfg!(feature = "validate-cheap") && self.list.summary(a, &[]).is_err() {
            let _ = a.take_fault();
            return;
        }
        if let Some(t) = AddressTree::from_list(a, self.list.head(), self.list.end()) {
            self.tree = t;
            self.in_tree = true;
            self.high = usize::MAX;
            self.low = Self::LO;
        }
    }

    /// Tree to list (when the count has fallen below `HI / 4`). A tree node that does not
    /// check out (`validate-cheap`) leaves the tree as it is.
    #[cold]
    #[inline(never)]
    fn switch_to_list<T: TargetLayout>(&mut self, a: &Arena<T>) {
        match self.tree.write_list(a) {
            Some(head) => {
                self.list.set_head(head);
                self.in_tree = false;
                self.high = HI;
                self.low = 0;
            }
            None => {
                let _ = a.take_fault();
            }
        }
    }
}

impl<const HI: usize> FreeIndex for Hybrid<HI> {
    const MERGES: bool = true;
    const END_MARKERS: bool = true;
    const EMPTY: Self = Hybrid {
        list: AddressList::EMPTY,
        tree: AddressTree::EMPTY,
        in_tree: false,
        single: false,
        count: 0,
        high: usize::MAX,
        low: 0,
    };
    // The tree form keeps its node in the link word.
    const THREADED: bool = false;
    const MAX_SPAN: usize = <AddressTree as FreeIndex>::MAX_SPAN;
    type Found = HybridFound;

    #[inline(always)]
    fn node_bytes<T: TargetLayout>() -> usize {
        <AddressTree as FreeIndex>::node_bytes::<T>()
    }

    fn head(&self) -> usize {
        if self.in_tree { NIL } else { self.list.head() }
    }

    fn end(&self) -> usize {
        self.list.end()
    }

    fn build<T: TargetLayout>(&mut self, a: &Arena<T>, regions: &[Region]) {
        *self = Self::EMPTY;
        self.list.build(a, regions);
        self.single = regions.len() == 1;
        // One block per region and the intermediate end markers.
        self.count = (2 * regions.len()).saturating_sub(1);
        if self.single {
            self.high = HI;
        }
    }

    #[inline(always)]
    fn find<T: TargetLayout>(&self, a: &Arena<T>, wanted: usize, f: &mut HybridFound) -> bool {
        if self.in_tree {
            let ok = self.tree.find(a, wanted, &mut f.path);
            f.pos.block = Found::block(&f.path);
            ok
        } else {
            self.list.find(a, wanted, &mut f.pos)
        }
    }

    #[inline(always)]
    fn take<T: TargetLayout>(
        &mut self,
        a: &Arena<T>,
        f: &mut HybridFound,
        rest: Option<(usize, usize)>,
    ) {
        // `find` validated every link `take` follows: a take is never refused (the engine
        // asserts that no fault was recorded), so the count always changes with it.
        if self.in_tree {
            self.tree.take(a, &mut f.path, rest);
        } else {
            self.list.take(a, &mut f.pos, rest);
        }
        if rest.is_none() {
            self.count -= 1;
            if self.count < self.low {
                self.switch_to_list(a);
            }
        }
    }

    #[inline(always)]
    fn insert<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize, size: usize) {
        let merged = if self.in_tree {
            self.tree.insert_merges(a, block, size)
        } else {
            self.list.insert_merges(a, block, size)
        };
        // A refused insert (a link did not check out) changed nothing.
        let Some(merged) = merged else { return };
        self.count = self.count + 1 - merged;
        if self.count > self.high {
            self.switch_to_tree(a);
        }
    }

    fn remove<T: TargetLayout>(&mut self, a: &Arena<T>, block: usize) {
        // The engine removes only blocks of the index (a corrupt one is reported by the form's
        // own `remove`, and the engine stops there).
        if self.in_tree {
            self.tree.remove(a, block);
        } else {
            self.list.remove(a, block);
        }
        // A refused removal (a link did not check out) changed nothing. The fault stays
        // recorded: the engine takes and reports it.
        if a.fault_pending() {
            return;
        }
        self.count -= 1;
        if self.count < self.low {
            self.switch_to_list(a);
        }
    }

    fn summary<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        regions: &[Region],
    ) -> Result<Summary, (Summary, usize)> {
        if self.in_tree {
            self.tree.summary(a, regions)
        } else {
            self.list.summary(a, regions)
        }
    }

    fn check_start(&self) -> usize {
        if self.in_tree {
            self.tree.check_start()
        } else {
            self.list.check_start()
        }
    }

    fn check_met<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        cursor: &mut usize,
        met: Met,
        regions: &[Region],
    ) -> Result<(), CheckErrorKind> {
        if self.in_tree {
            self.tree.check_met(a, cursor, met, regions)
        } else {
            self.list.check_met(a, cursor, met, regions)
        }
    }

    fn check_end<T: TargetLayout>(
        &self,
        a: &Arena<T>,
        cursor: usize,
        regions: &[Region],
        free_blocks: usize,
        free_bytes: usize,
    ) -> Result<(), (CheckErrorKind, usize)> {
        if self.in_tree {
            self.tree
                .check_end(a, cursor, regions, free_blocks, free_bytes)?;
        } else {
            self.list
                .check_end(a, cursor, regions, free_blocks, free_bytes)?;
        }
        // The count the switch decides on must be the blocks the walk met.
        if self.single && self.count != free_blocks {
            return Err((CheckErrorKind::ListMismatch, 0));
        }
        Ok(())
    }
}
