//! Differential test of the O(log n) free-block index: the list index (FreeRTOS's own algorithm,
//! checked against the C vectors by `conformance.rs`) and the tree index side by side, fed the same
//! random requests, must hand out the same offsets, refuse the same frees and report the same
//! statistics after every single operation — on heap_4 and heap_5 (1 to 4 regions), on four target
//! layouts, with several size mixes; and heap_2's `SizeList` against `SizeTree<true>` the same way. The tree heaps are `AddressTree<true>`: after every index
//! operation the trees are checked in full (address order, AVL balance, stored heights, subtree
//! maxima, block classes, same blocks as the threaded list); a violation panics.

use core::alloc::Layout;
use core::ptr::NonNull;

use rtos_heap::{
    AddressList, AddressTree, AllocError, CortexM, FreeError, FreeIndex, Heap2, Heap4, Heap5,
    HeapRegion, Host64, Host64Align16, Hybrid, RawHeap, SizeList, SizeTree, Target, TargetLayout,
};
use rtos_heap_workloads::Rng;

/// How request sizes are drawn.
#[derive(Debug, Clone, Copy)]
enum Sizes {
    /// 1..=24 bytes: many minimum-size blocks (the small tree).
    Tiny,
    /// 1..=600 bytes.
    Mixed,
    /// Mostly small with rare large requests (fragmenting).
    Skewed,
    /// 1..=4000 bytes: few blocks, many failures.
    Large,
}

fn draw(rng: &mut Rng, sizes: Sizes) -> usize {
    (match sizes {
        Sizes::Tiny => rng.range(1, 25),
        Sizes::Mixed => rng.range(1, 601),
        Sizes::Skewed => {
            if rng.below(20) == 0 {
                rng.range(200, 3000)
            } else {
                rng.range(1, 64)
            }
        }
        Sizes::Large => rng.range(1, 4001),
    }) as usize
}

struct Live {
    list: NonNull<u8>,
    tree: NonNull<u8>,
    layout: Layout,
}

/// One list heap and one tree heap over byte-identical memory layouts.
struct Pair<A, B> {
    list: A,
    tree: B,
    list_base: usize,
    tree_base: usize,
    live: Vec<Live>,
    /// A pointer pair freed last (for double frees).
    freed: Option<(NonNull<u8>, NonNull<u8>)>,
    ops: usize,
}

impl<A: RawHeap, B: RawHeap> Pair<A, B> {
    /// The two heaps over memory starting at `list_base` and `tree_base`, nothing live yet.
    fn new(list: A, tree: B, list_base: *mut u8, tree_base: *mut u8, ops: usize) -> Self {
        Pair {
            list,
            tree,
            list_base: list_base as usize,
            tree_base: tree_base as usize,
            live: Vec::new(),
            freed: None,
            ops,
        }
    }

    fn off_l(&self, p: NonNull<u8>) -> usize {
        p.as_ptr() as usize - self.list_base
    }

    fn off_t(&self, p: NonNull<u8>) -> usize {
        p.as_ptr() as usize - self.tree_base
    }

    fn same(&self, what: &str) {
        assert_eq!(
            self.list.stats(),
            self.tree.stats(),
            "stats differ after op {} ({what})",
            self.ops
        );
        assert_eq!(
            self.list.min_ever_free_bytes(),
            self.tree.min_ever_free_bytes()
        );
    }

    fn alloc(&mut self, layout: Layout, c_api: bool) {
        // A freed block may be handed out again: no double free of it from now on.
        self.freed = None;
        let (l, t) = if c_api {
            (
                self.list.malloc(layout.size()),
                self.tree.malloc(layout.size()),
            )
        } else {
            (self.list.allocate(layout), self.tree.allocate(layout))
        };
        match (l, t) {
            (Ok(l), Ok(t)) => {
                assert_eq!(
                    self.off_l(l),
                    self.off_t(t),
                    "different placement at op {} for {layout:?}",
                    self.ops
                );
                self.live.push(Live {
                    list: l,
                    tree: t,
                    layout,
                });
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "different errors at op {}", self.ops),
            (l, t) => panic!("op {}: list {l:?}, tree {t:?}", self.ops),
        }
    }

    fn free(&mut self, i: usize, with_layout: bool) {
        let v = self.live.swap_remove(i);
        let layout = with_layout.then_some(v.layout);
        // SAFETY: both pointers are live blocks of their heaps, not used again.
        let (l, t) = unsafe {
            (
                self.list.free(v.list, layout),
                self.tree.free(v.tree, layout),
            )
        };
        assert_eq!(l, t, "free results differ at op {}", self.ops);
        assert_eq!(l, Ok(()));
        self.freed = Some((v.list, v.tree));
    }

    fn double_free(&mut self) {
        if let Some((l, t)) = self.freed.take() {
            // SAFETY: both pointers were freed: the heaps must refuse them without touching them.
            let (l, t) = unsafe { (self.list.free(l, None), self.tree.free(t, None)) };
            assert_eq!(l, t, "double-free results differ at op {}", self.ops);
            assert_eq!(l, Err(FreeError::DoubleFree));
        }
    }

    fn realloc(&mut self, i: usize, new_size: usize) {
        self.freed = None;
        let v = &self.live[i];
        // SAFETY: both pointers are live blocks made with `v.layout`; replaced below on success.
        let (l, t) = unsafe {
            (
                self.list.reallocate(v.list, v.layout, new_size),
                self.tree.reallocate(v.tree, v.layout, new_size),
            )
        };
        match (l, t) {
            (Ok(l), Ok(t)) => {
                assert_eq!(
                    self.off_l(l),
                    self.off_t(t),
                    "realloc placement at op {}",
                    self.ops
                );
                let layout = Layout::from_size_align(new_size, v.layout.align()).unwrap();
                self.live[i] = Live {
                    list: l,
                    tree: t,
                    layout,
                };
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "realloc errors at op {}", self.ops),
            (l, t) => panic!("realloc at op {}: list {l:?}, tree {t:?}", self.ops),
        }
    }

    /// Replays `n` random operations.
    fn run(&mut self, rng: &mut Rng, n: usize, sizes: Sizes) -> usize {
        for _ in 0..n {
            self.ops += 1;
            let r = rng.below(1000);
            let what = if r < 560 || self.live.is_empty() {
                let size = draw(rng, sizes);
                if rng.below(10) == 0 {
                    let align = 16 << rng.below(3);
                    self.alloc(Layout::from_size_align(size, align).unwrap(), false);
                } else {
                    self.alloc(Layout::from_size_align(size, 1).unwrap(), rng.below(2) == 0);
                }
                "alloc"
            } else if r < 950 {
                let i = rng.below(self.live.len() as u64) as usize;
                self.free(i, rng.below(2) == 0);
                "free"
            } else if r < 990 {
                let i = rng.below(self.live.len() as u64) as usize;
                let size = draw(rng, sizes);
                self.realloc(i, size);
                "realloc"
            } else if r < 995 {
                self.double_free();
                "double free"
            } else {
                self.list.reset_min_ever_free();
                self.tree.reset_min_ever_free();
                "reset min ever"
            };
            self.same(what);
            if self.ops % 256 == 0 {
                self.list.check().unwrap();
                self.tree.check().unwrap();
            }
        }
        // Free everything: both heaps must end as one free block per region.
        while !self.live.is_empty() {
            self.ops += 1;
            self.free(0, false);
            self.same("drain");
        }
        self.list.check().unwrap();
        self.tree.check().unwrap();
        self.ops
    }
}

/// Two leaked buffers at the same offset `misalign` from a 4 KiB boundary, so that aligned
/// requests see the same addresses modulo every alignment used.
fn buffers(len: usize, misalign: usize) -> (*mut u8, *mut u8) {
    let layout = std::alloc::Layout::from_size_align(len + misalign, 4096).unwrap();
    let one = || {
        // SAFETY: non-zero size; the memory is leaked (heap memory for the rest of the test).
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!p.is_null());
        // SAFETY: `misalign` bytes into a buffer of `len + misalign` bytes.
        unsafe { p.add(misalign) }
    };
    (one(), one())
}

/// heap_4 with the list against heap_4 with index `I`.
fn heap4_against<T: TargetLayout, I: FreeIndex>(
    seed: u64,
    len: usize,
    ops: usize,
    sizes: Sizes,
) -> usize {
    single(
        Heap4::<T, AddressList>::new(),
        Heap4::<T, I>::new(),
        seed,
        len,
        ops,
        sizes,
    )
}

/// heap_2: FreeRTOS's size list against the size tree.
fn heap2<T: TargetLayout, const VERIFY: bool>(
    seed: u64,
    len: usize,
    ops: usize,
    sizes: Sizes,
) -> usize {
    single(
        Heap2::<T, SizeList>::new(),
        Heap2::<T, SizeTree<VERIFY>>::new(),
        seed,
        len,
        ops,
        sizes,
    )
}

/// A single-region pair (`init_from_raw`) replaying `ops` random operations.
fn single<A: RawHeap + InitRaw, B: RawHeap + InitRaw>(
    mut list: A,
    mut tree: B,
    seed: u64,
    len: usize,
    ops: usize,
    sizes: Sizes,
) -> usize {
    let mut rng = Rng::new(seed);
    let misalign = rng.below(16) as usize;
    let (a, b) = buffers(len, misalign);
    // SAFETY: leaked buffers of `len` bytes, used by nothing else.
    unsafe {
        list.init_raw(NonNull::new(a).unwrap(), len);
        tree.init_raw(NonNull::new(b).unwrap(), len);
    }
    // Lay the heaps out with a first allocation to learn the bases (aligned starts).
    let (pa, pb) = (list.malloc(1).unwrap(), tree.malloc(1).unwrap());
    let mut pair = Pair::new(list, tree, a, b, 1);
    assert_eq!(pair.off_l(pa), pair.off_t(pb));
    pair.live.push(Live {
        list: pa,
        tree: pb,
        layout: Layout::from_size_align(1, 1).unwrap(),
    });
    pair.run(&mut rng, ops, sizes)
}

/// `init_from_raw` of the single-region schemes, for [`single`].
trait InitRaw {
    /// # Safety
    /// As `init_from_raw`.
    unsafe fn init_raw(&mut self, p: NonNull<u8>, len: usize);
}

impl<T: TargetLayout, I: FreeIndex> InitRaw for Heap4<T, I> {
    unsafe fn init_raw(&mut self, p: NonNull<u8>, len: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.init_from_raw(p, len).unwrap() }
    }
}

impl<T: TargetLayout, I: FreeIndex> InitRaw for Heap2<T, I> {
    unsafe fn init_raw(&mut self, p: NonNull<u8>, len: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.init_from_raw(p, len).unwrap() }
    }
}

fn heap5<T: TargetLayout>(seed: u64, regions: usize, ops: usize, sizes: Sizes) -> usize {
    let mut rng = Rng::new(seed);
    // Region sizes and gaps (some gaps zero-ish: adjacent regions must still not merge).
    let spans: Vec<(usize, usize)> = (0..regions)
        .map(|_| (rng.range(64, 6000) as usize, rng.range(0, 200) as usize))
        .collect();
    let total: usize = spans.iter().map(|(l, g)| l + g).sum();
    let misalign = rng.below(16) as usize;
    let (a, b) = buffers(total, misalign);
    let carve = |base: *mut u8| -> Vec<HeapRegion> {
        let mut at = 0;
        spans
            .iter()
            .map(|&(len, gap)| {
                // SAFETY: `at` stays inside the buffer of `total` bytes.
                let start = unsafe { base.add(at) };
                let r = HeapRegion { start, size: len };
                at += len + gap;
                r
            })
            .collect()
    };
    let mut list = Heap5::<T, 4, AddressList>::new();
    let mut tree = Heap5::<T, 4, AddressTree<true>>::new();
    // SAFETY: disjoint pieces of leaked buffers, used by nothing else.
    let (l, t) = unsafe {
        (
            list.define_regions_raw(&carve(a)),
            tree.define_regions_raw(&carve(b)),
        )
    };
    assert_eq!(l, t);
    if l.is_err() {
        return 0;
    }
    let mut pair = Pair::new(list, tree, a, b, 0);
    pair.same("define");
    pair.run(&mut rng, ops, sizes)
}

const SIZES: [Sizes; 4] = [Sizes::Tiny, Sizes::Mixed, Sizes::Skewed, Sizes::Large];

/// One single-region comparison `run` (seed, heap length, operations, sizes) per heap length and
/// size mix.
fn single_suite(salt: u64, per_run: usize, run: fn(u64, usize, usize, Sizes) -> usize) -> usize {
    let mut n = 0;
    for (i, len) in [600usize, 4096, 20_000, 65_536].into_iter().enumerate() {
        for (j, sizes) in SIZES.into_iter().enumerate() {
            n += run(salt * 1000 + (i * 10 + j) as u64, len, per_run, sizes);
        }
    }
    n
}

fn heap4_suite<T: TargetLayout>(salt: u64, per_run: usize) -> usize {
    single_suite(salt, per_run, heap4_against::<T, AddressTree<true>>)
}

fn heap5_suite<T: TargetLayout>(salt: u64, per_run: usize) -> usize {
    let mut n = 0;
    for regions in 1..=4 {
        for (j, sizes) in SIZES.into_iter().enumerate() {
            for k in 0..2 {
                n += heap5::<T>(
                    salt * 1000 + (regions * 100 + j * 10 + k) as u64,
                    regions,
                    per_run,
                    sizes,
                );
            }
        }
    }
    n
}

/// heap_2 runs: the size list against `SizeTree<true>` (checked in full after every operation).
fn heap2_suite<T: TargetLayout>(salt: u64, per_run: usize) -> usize {
    single_suite(salt, per_run, heap2::<T, true>)
}

/// Runs the suites on one target layout and checks that they replayed their share.
fn suite<T: TargetLayout>(salt: u64) {
    let n = heap4_suite::<T>(2 * salt, HEAP4_OPS)
        + heap5_suite::<T>(2 * salt + 1, HEAP5_OPS)
        + heap2_suite::<T>(2 * salt + 7, HEAP2_OPS);
    // Every run replays its random operations plus the final drain.
    assert!(
        n >= 16 * HEAP4_OPS + 32 * HEAP5_OPS + 16 * HEAP2_OPS,
        "only {n} operations"
    );
    println!("{n} differential operations");
}

/// Per-configuration operation counts: 4 targets × (16 heap_4 + 32 heap_5 runs).
const HEAP4_OPS: usize = 16_000;
const HEAP5_OPS: usize = 9_000;
const HEAP2_OPS: usize = 8_000;

#[test]
fn cortex_m() {
    suite::<CortexM>(1);
}

#[test]
fn host64() {
    suite::<Host64>(2);
}

#[test]
fn host64_align16() {
    suite::<Host64Align16>(3);
}

#[test]
fn word4_align16() {
    suite::<Target<4, 16>>(4);
}

/// Long runs on large heaps with thousands of free blocks (deep trees): fully verified on 256 KiB,
/// placement and statistics only (plus `check()` every 256 operations) on 1 MiB.
#[test]
fn deep_trees() {
    let n = heap4_against::<CortexM, AddressTree<true>>(99, 1 << 18, 50_000, Sizes::Skewed)
        + heap4_against::<Host64, AddressTree<true>>(98, 1 << 18, 50_000, Sizes::Tiny)
        + heap4_against::<CortexM, AddressTree<false>>(97, 1 << 20, 100_000, Sizes::Skewed)
        + heap4_against::<Host64, AddressTree<false>>(96, 1 << 20, 100_000, Sizes::Tiny)
        + heap2::<CortexM, true>(95, 1 << 18, 50_000, Sizes::Mixed)
        + heap2::<Host64, false>(94, 1 << 20, 100_000, Sizes::Mixed);
    assert!(n >= 450_000);
}

/// The suite's size: the issue asks for at least 1,000,000 differential operations. Each run
/// counts what it replayed, and each test asserts its own share.
const TOTAL: usize = 4 * (16 * HEAP4_OPS + 32 * HEAP5_OPS + 16 * HEAP2_OPS) + 450_000;
const _: () = assert!(TOTAL >= 1_000_000);

/// Heaps the tree cannot address (beyond 4 GiB, only with 64-bit words) are refused up front.
#[test]
fn span_limit() {
    let mut h = Heap5::<Host64, 2, AddressTree>::new();
    let regions = [
        HeapRegion {
            start: 0x1000 as *mut u8,
            size: 4096,
        },
        HeapRegion {
            start: (0x1000usize + (5usize << 30)) as *mut u8,
            size: 4096,
        },
    ];
    // SAFETY: refused before any memory is touched (the span check comes first).
    let r = unsafe { h.define_regions_raw(&regions) };
    assert!(
        matches!(r, Err(rtos_heap::RegionError::TooLarge { index: 1 })),
        "{r:?}"
    );
    let mut h4 = Heap4::<Host64, AddressTree>::new();
    // SAFETY: refused before any memory is touched (the span check comes first).
    let r = unsafe { h4.init_from_raw(NonNull::dangling(), 5usize << 30) };
    assert!(
        matches!(r, Err(rtos_heap::RegionError::TooLarge { index: 0 })),
        "{r:?}"
    );
    assert_eq!(h4.malloc(8), Err(AllocError::Uninitialized));
}

/// `Hybrid` with thresholds low enough that random heaps cross them all the time (4: tree above
/// 4 free blocks, list again at 0; 16: tree above 16, list below 4): same offsets, refusals and
/// statistics as the list after every operation, on four layouts.
#[test]
fn hybrid_against_the_list() {
    fn layout<T: TargetLayout>(salt: u64) -> usize {
        single_suite(salt, 4000, heap4_against::<T, Hybrid<4>>)
            + single_suite(salt + 1, 4000, heap4_against::<T, Hybrid<16>>)
    }
    let n = layout::<CortexM>(11)
        + layout::<Host64>(13)
        + layout::<Host64Align16>(15)
        + layout::<Target<4, 16>>(17);
    assert!(n >= 4 * 2 * 16 * 4000, "only {n} operations");
}

/// A scripted pattern that crosses both thresholds of `Hybrid<8>` in every round: 40 blocks,
/// every other one freed (20 holes: the tree), then the rest (one free block: the list again).
/// Offsets, statistics and `check()` agree with the list at every step.
#[test]
fn hybrid_switches_both_ways() {
    let (a, b) = buffers(8192, 0);
    let mut list = Heap4::<Host64, AddressList>::new();
    let mut hyb = Heap4::<Host64, Hybrid<8>>::new();
    // SAFETY: leaked buffers used by nothing else.
    unsafe {
        list.init_from_raw(NonNull::new(a).unwrap(), 8192).unwrap();
        hyb.init_from_raw(NonNull::new(b).unwrap(), 8192).unwrap();
    }
    let same = |l: &Heap4<Host64, AddressList>, h: &Heap4<Host64, Hybrid<8>>| {
        assert_eq!(l.stats(), h.stats());
        l.check().unwrap();
        h.check().unwrap();
    };
    let mut crossed = 0;
    for round in 0..5 {
        let mut pairs = Vec::new();
        for i in 0..40 {
            let n = 8 + (i * 7 + round) % 40;
            let (pl, ph) = (list.malloc(n).unwrap(), hyb.malloc(n).unwrap());
            assert_eq!(
                pl.as_ptr() as usize - a as usize,
                ph.as_ptr() as usize - b as usize
            );
            pairs.push((pl, ph));
            same(&list, &hyb);
        }
        for (pl, ph) in pairs.iter().step_by(2) {
            // SAFETY: live blocks, freed once.
            unsafe {
                list.free(*pl, None).unwrap();
                hyb.free(*ph, None).unwrap();
            }
            same(&list, &hyb);
        }
        crossed += usize::from(hyb.stats().free_blocks > 8);
        // Requests served from the holes in tree form.
        for _ in 0..6 {
            let (pl, ph) = (list.malloc(8).unwrap(), hyb.malloc(8).unwrap());
            assert_eq!(
                pl.as_ptr() as usize - a as usize,
                ph.as_ptr() as usize - b as usize
            );
            pairs.push((pl, ph));
            same(&list, &hyb);
        }
        let rest = pairs[..40].iter().skip(1).step_by(2).chain(&pairs[40..]);
        for (pl, ph) in rest {
            // SAFETY: the blocks still live, freed once.
            unsafe {
                list.free(*pl, None).unwrap();
                hyb.free(*ph, None).unwrap();
            }
            same(&list, &hyb);
        }
        assert_eq!(hyb.stats().free_blocks, 1);
    }
    assert_eq!(crossed, 5);
}
