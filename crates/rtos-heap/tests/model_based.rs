//! Model-based tests: random operation sequences (many seeds, heap sizes, region layouts, target
//! layouts; exhaustion and failures included) run against each scheme and against the safe model of
//! its placement in `model/`; every returned offset and every statistic must agree after every
//! operation, and `check()` must pass after every operation.

mod common;
mod model;

use std::ptr::NonNull;

use common::buffer;
use model::{BestFit, Bump, FirstFit, ModelStats};
use rtos_heap::{Heap1, Heap2, Heap4, Heap5, HeapRegion, HeapStats, RawHeap, Target, TargetLayout};
use rtos_heap_workloads::Rng;

fn align_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

/// A random request size: mostly small, sometimes large, now and then zero or absurd.
fn request(rng: &mut Rng, heap: usize, size_max: usize) -> usize {
    match rng.below(100) {
        0 => 0,
        1 => size_max - rng.below(64) as usize,
        2..=9 => rng.range(1, (heap / 4) as u64) as usize,
        10..=39 => rng.range(1, 512) as usize,
        _ => rng.range(1, 64) as usize,
    }
}

fn compare(h: &HeapStats, m: &ModelStats, free: usize, min_ever: usize, ctx: &str) {
    let got = ModelStats {
        free,
        min_ever,
        largest: h.largest_free_block,
        smallest: h.smallest_free_block,
        blocks: h.free_blocks,
        allocs: h.successful_allocations,
        frees: h.successful_frees,
    };
    assert_eq!(got, *m, "{ctx}: statistics");
    assert_eq!(h.available_bytes, free, "{ctx}: available bytes");
    assert_eq!(h.min_ever_free, min_ever, "{ctx}: min ever in stats");
}

/// Model of a scheme's placement, behind one interface for the driver.
trait Model {
    fn malloc(&mut self, n: usize) -> Option<usize>;
    fn free(&mut self, off: usize);
    fn stats(&self) -> ModelStats;
    fn reset_min_ever(&mut self);
}

impl Model for FirstFit {
    fn malloc(&mut self, n: usize) -> Option<usize> {
        FirstFit::malloc(self, n)
    }
    fn free(&mut self, off: usize) {
        FirstFit::free(self, off)
    }
    fn stats(&self) -> ModelStats {
        FirstFit::stats(self)
    }
    fn reset_min_ever(&mut self) {
        FirstFit::reset_min_ever(self)
    }
}

impl Model for BestFit {
    fn malloc(&mut self, n: usize) -> Option<usize> {
        BestFit::malloc(self, n)
    }
    fn free(&mut self, off: usize) {
        BestFit::free(self, off)
    }
    fn stats(&self) -> ModelStats {
        BestFit::stats(self)
    }
    fn reset_min_ever(&mut self) {}
}

/// Where the heap lies: host address of offset 0, header size, heap length, target `SIZE_MAX`.
struct Frame {
    base: usize,
    header: usize,
    heap_len: usize,
    size_max: usize,
}

impl Frame {
    /// The frame of a heap of target layout `T` whose offset 0 is at `base`.
    fn of<T: TargetLayout>(base: usize, heap_len: usize) -> Frame {
        Frame {
            base,
            header: T::HEADER,
            heap_len,
            size_max: T::SIZE_MAX,
        }
    }
}

/// Runs `ops` random operations on `heap` and `model` side by side. Block offsets are
/// `ptr - header - base`.
fn drive<H: RawHeap, M: Model>(
    heap: &mut H,
    model: &mut M,
    f: Frame,
    seed: u64,
    ops: usize,
    min_reset: bool,
) {
    let Frame {
        base,
        header,
        heap_len,
        size_max,
    } = f;
    let mut rng = Rng::new(seed);
    let mut live: Vec<(NonNull<u8>, usize, u8)> = Vec::new();
    for step in 0..ops {
        let ctx = format!("seed {seed:#x} step {step}");
        let roll = rng.below(100);
        if live.is_empty() || roll < 55 {
            let n = request(&mut rng, heap_len, size_max);
            let calloc = rng.below(20) == 0;
            let got = if calloc && n > 0 && n < 4096 {
                heap.calloc(1, n)
            } else {
                heap.malloc(n)
            };
            let want = model.malloc(n);
            if std::env::var_os("MODEL_TRACE").is_some() {
                eprintln!(
                    "{ctx}: malloc({n}) -> {:?} / {want:?}",
                    got.map(|p| p.as_ptr() as usize - header - base)
                );
            }
            match (got, want) {
                (Ok(p), Some(off)) => {
                    assert_eq!(
                        p.as_ptr() as usize - header - base,
                        off,
                        "{ctx}: offset of malloc({n})"
                    );
                    let tag = (step % 251) as u8;
                    // SAFETY: a fresh block of `n` bytes.
                    unsafe { p.as_ptr().write_bytes(tag, n.min(256)) };
                    live.push((p, n, tag));
                }
                (Err(_), None) => {}
                (g, w) => panic!("{ctx}: malloc({n}) gave {g:?}, model {w:?}"),
            }
        } else if roll < 97 {
            let (p, n, tag) = live.swap_remove(rng.below(live.len() as u64) as usize);
            // SAFETY: the block is live; nobody else wrote it.
            let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), n.min(256)) };
            assert!(
                bytes.iter().all(|&b| b == tag),
                "{ctx}: block contents overwritten"
            );
            // SAFETY: a live block of this heap, freed once.
            unsafe { heap.free(p, None) }.unwrap_or_else(|e| panic!("{ctx}: free: {e}"));
            model.free(p.as_ptr() as usize - header - base);
            if std::env::var_os("MODEL_TRACE").is_some() {
                eprintln!("{ctx}: free({})", p.as_ptr() as usize - header - base);
            }
        } else if min_reset {
            heap.reset_min_ever_free();
            model.reset_min_ever();
        }
        if let Err(e) = heap.check() {
            panic!("{ctx}: check: {e}");
        }
        compare(
            &heap.stats(),
            &model.stats(),
            heap.free_bytes(),
            heap.min_ever_free_bytes(),
            &ctx,
        );
    }
    for (p, _, _) in live {
        // SAFETY: live blocks of this heap.
        unsafe { heap.free(p, None) }.unwrap();
    }
    heap.check().unwrap();
}

const SIZES: [usize; 5] = [256, 1024, 4096, 16384, 65536];

/// A leaked array of a random size from `SIZES` (plus 0..16 bytes), starting 0..8 bytes past a
/// 64-byte boundary.
fn random_array(rng: &mut Rng) -> (*mut u8, usize) {
    let len = SIZES[rng.below(5) as usize] + rng.below(16) as usize;
    buffer(len, rng.below(8) as usize)
}

fn heap4_layout<T: TargetLayout>(seeds: std::ops::Range<u64>, ops: usize) -> usize {
    let mut total = 0;
    for seed in seeds {
        let mut rng = Rng::new(seed * 7919 + 1);
        let (array, len) = random_array(&mut rng);
        let mut heap = Heap4::<T>::new();
        // SAFETY: a leaked buffer.
        unsafe {
            heap.init_from_raw(NonNull::new(array).unwrap(), len)
                .unwrap()
        };
        // The semantics document's layout: start rounded up, marker rounded down, one header.
        let start = align_up(array as usize, T::ALIGN);
        let end = (array as usize + len - T::HEADER) / T::ALIGN * T::ALIGN;
        let mut model = FirstFit::new(T::HEADER, T::ALIGN, T::SIZE_MAX, &[(0, end - start)]);
        drive(
            &mut heap,
            &mut model,
            Frame::of::<T>(start, len),
            0x4000 + seed,
            ops,
            true,
        );
        total += ops;
    }
    total
}

fn heap5_layout<T: TargetLayout>(seeds: std::ops::Range<u64>, ops: usize) -> usize {
    let mut total = 0;
    for seed in seeds {
        let mut rng = Rng::new(seed * 104_729 + 3);
        let count = rng.range(1, 6) as usize;
        // Regions at random gaps inside one buffer.
        let mut spans = Vec::new();
        let mut at = rng.below(8) as usize;
        for _ in 0..count {
            let len = rng.range(96, 6000) as usize;
            spans.push((at, len));
            at += len + rng.below(64) as usize;
        }
        let (array, _) = buffer(at + 64, 0);
        let regions: Vec<HeapRegion> = spans
            .iter()
            .map(|&(o, l)| HeapRegion {
                // SAFETY: inside the buffer.
                start: unsafe { array.add(o) },
                size: l,
            })
            .collect();
        let mut heap = Heap5::<T, 8>::new();
        // SAFETY: disjoint parts of a leaked buffer.
        unsafe { heap.define_regions_raw(&regions).unwrap() };
        let base = align_up(array as usize + spans[0].0, T::ALIGN);
        let model_regions: Vec<(usize, usize)> = spans
            .iter()
            .map(|&(o, l)| {
                let s = align_up(array as usize + o, T::ALIGN);
                let e = (array as usize + o + l - T::HEADER) / T::ALIGN * T::ALIGN;
                (s - base, e - base)
            })
            .collect();
        let mut model = FirstFit::new(T::HEADER, T::ALIGN, T::SIZE_MAX, &model_regions);
        drive(
            &mut heap,
            &mut model,
            Frame::of::<T>(base, at),
            0x5000 + seed,
            ops,
            true,
        );
        total += ops;
    }
    total
}

fn heap2_layout<T: TargetLayout>(seeds: std::ops::Range<u64>, ops: usize) -> usize {
    let mut total = 0;
    for seed in seeds {
        let mut rng = Rng::new(seed * 15_485_863 + 5);
        let (array, len) = random_array(&mut rng);
        let mut heap = Heap2::<T>::new();
        // SAFETY: a leaked buffer.
        unsafe {
            heap.init_from_raw(NonNull::new(array).unwrap(), len)
                .unwrap()
        };
        // heap_2 gives up ALIGN bytes whatever the address, and has no end marker.
        let start = align_up(array as usize, T::ALIGN);
        let mut model = BestFit::new(T::HEADER, T::ALIGN, T::SIZE_MAX, len - T::ALIGN);
        // The first malloc lays the heap out; before it, heap_2 reports its whole size free.
        assert_eq!(heap.free_bytes(), len - T::ALIGN);
        drive(
            &mut heap,
            &mut model,
            Frame::of::<T>(start, len),
            0x2000 + seed,
            ops,
            false,
        );
        total += ops;
    }
    total
}

fn heap1_layout<T: TargetLayout>(seeds: std::ops::Range<u64>, ops: usize) -> usize {
    let mut total = 0;
    for seed in seeds {
        let mut rng = Rng::new(seed * 31 + 7);
        let (array, len) = random_array(&mut rng);
        let mut heap = Heap1::<T>::new();
        // SAFETY: a leaked buffer.
        unsafe {
            heap.init_from_raw(NonNull::new(array).unwrap(), len)
                .unwrap()
        };
        let start = align_up(array as usize, T::ALIGN);
        let mut model = Bump::new(T::ALIGN, T::SIZE_MAX, len);
        for step in 0..ops {
            if rng.below(200) == 0 {
                // SAFETY: heap_1 blocks are not kept by this driver.
                unsafe { heap.reset() };
                model = Bump::new(T::ALIGN, T::SIZE_MAX, len);
            }
            let n = request(&mut rng, len / 8, T::SIZE_MAX);
            let got = heap.malloc(n).ok().map(|p| p.as_ptr() as usize - start);
            assert_eq!(
                got,
                model.malloc(n),
                "seed {seed} step {step}: heap_1 malloc({n})"
            );
            assert_eq!(heap.free_bytes(), model.free_bytes());
            heap.check().unwrap();
        }
        total += ops;
    }
    total
}

macro_rules! every_layout {
    ($f:ident, $seeds:expr, $ops:expr) => {
        $f::<Target<4, 8>>($seeds, $ops)
            + $f::<Target<8, 8>>($seeds, $ops)
            + $f::<Target<4, 4>>($seeds, $ops)
            + $f::<Target<8, 16>>($seeds, $ops)
            + $f::<Target<8, 4>>($seeds, $ops)
            + $f::<Target<4, 16>>($seeds, $ops)
    };
}

#[test]
fn heap4_matches_model() {
    assert!(every_layout!(heap4_layout, 0..6, 3_000) >= 100_000);
}

#[test]
fn heap5_matches_model() {
    assert!(every_layout!(heap5_layout, 0..6, 3_000) >= 100_000);
}

#[test]
fn heap2_matches_model() {
    assert!(every_layout!(heap2_layout, 0..6, 3_000) >= 100_000);
}

#[test]
fn heap1_matches_model() {
    assert!(every_layout!(heap1_layout, 0..6, 3_000) >= 100_000);
}
