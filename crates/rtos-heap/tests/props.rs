//! Property tests (proptest, with shrinking to a minimal failing sequence):
//! - any sequence of allocate (any size, alignments 1..=256), calloc, realloc and free keeps every
//!   block aligned, its contents intact (so no two live blocks overlap), `check()` passing and the
//!   byte accounting exact, on heap_2, heap_4 and heap_5 with 32- and 64-bit layouts;
//! - heap_4's offsets and statistics equal the placement model's for any malloc/free sequence.

mod common;
mod model;

use std::alloc::Layout;
use std::ptr::NonNull;

use proptest::prelude::*;
use rtos_heap::{
    BlockKind, CortexM, Heap2, Heap4, Heap5, HeapRegion, Host64, RawHeap, TargetLayout,
};

#[derive(Debug, Clone)]
enum Action {
    Alloc { size: usize, align_log: u32 },
    Calloc { count: usize, size: usize },
    Free { pick: usize },
    Realloc { pick: usize, size: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1usize..1500, 0u32..9).prop_map(|(size, align_log)| Action::Alloc { size, align_log }),
        1 => (0usize..20, 0usize..100).prop_map(|(count, size)| Action::Calloc { count, size }),
        3 => any::<usize>().prop_map(|pick| Action::Free { pick }),
        2 => (any::<usize>(), 1usize..2000).prop_map(|(pick, size)| Action::Realloc { pick, size }),
    ]
}

struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u8,
}

fn verify(l: &Live) -> Result<(), TestCaseError> {
    // SAFETY: a live block of `layout.size()` bytes written with `tag`.
    let bytes = unsafe { std::slice::from_raw_parts(l.ptr.as_ptr(), l.layout.size()) };
    prop_assert!(
        bytes.iter().all(|&b| b == l.tag),
        "block contents overwritten"
    );
    prop_assert_eq!(l.ptr.as_ptr() as usize % l.layout.align(), 0);
    Ok(())
}

/// Runs `actions` on `heap`; `used` returns the bytes of the heap's allocated blocks and markers.
fn run<H: RawHeap>(
    heap: &mut H,
    total: usize,
    used: impl Fn(&H) -> usize,
    actions: &[Action],
) -> Result<(), TestCaseError> {
    let mut live: Vec<Live> = Vec::new();
    let mut tag = 0u8;
    for a in actions {
        tag = tag.wrapping_add(1);
        match *a {
            Action::Alloc { size, align_log } => {
                let layout = Layout::from_size_align(size, 1 << align_log).unwrap();
                if let Ok(ptr) = heap.allocate(layout) {
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { ptr.as_ptr().write_bytes(tag, size) };
                    live.push(Live { ptr, layout, tag });
                }
            }
            Action::Calloc { count, size } => {
                if let Ok(ptr) = heap.calloc(count, size) {
                    let n = count * size;
                    // SAFETY: a fresh block of `n` bytes.
                    let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), n) };
                    prop_assert!(bytes.iter().all(|&b| b == 0), "calloc not zeroed");
                    // SAFETY: as above.
                    unsafe { ptr.as_ptr().write_bytes(tag, n) };
                    live.push(Live {
                        ptr,
                        layout: Layout::from_size_align(n, 1).unwrap(),
                        tag,
                    });
                }
            }
            Action::Free { pick } if !live.is_empty() => {
                let l = live.swap_remove(pick % live.len());
                verify(&l)?;
                // SAFETY: a live block, freed once.
                prop_assert_eq!(unsafe { heap.free(l.ptr, Some(l.layout)) }, Ok(()));
            }
            Action::Realloc { pick, size } if !live.is_empty() => {
                let i = pick % live.len();
                verify(&live[i])?;
                let old = live[i].layout;
                // SAFETY: a live block allocated with `old`.
                if let Ok(p) = unsafe { heap.reallocate(live[i].ptr, old, size) } {
                    let keep = old.size().min(size);
                    // SAFETY: the first `keep` bytes were preserved.
                    let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), keep) };
                    prop_assert!(
                        bytes.iter().all(|&b| b == live[i].tag),
                        "realloc lost contents"
                    );
                    // SAFETY: the block now holds `size` bytes.
                    unsafe { p.as_ptr().write_bytes(tag, size) };
                    live[i] = Live {
                        ptr: p,
                        layout: Layout::from_size_align(size, old.align()).unwrap(),
                        tag,
                    };
                } else {
                    verify(&live[i])?;
                }
            }
            _ => {}
        }
        prop_assert_eq!(heap.check(), Ok(()));
        let s = heap.stats();
        prop_assert_eq!(s.available_bytes, heap.free_bytes());
        prop_assert!(s.min_ever_free <= heap.free_bytes());
        prop_assert_eq!(
            used(heap) + heap.free_bytes(),
            total,
            "bytes lost or invented"
        );
    }
    for l in &live {
        verify(l)?;
    }
    for l in live {
        // SAFETY: live blocks.
        prop_assert_eq!(unsafe { heap.free(l.ptr, Some(l.layout)) }, Ok(()));
    }
    prop_assert_eq!(heap.free_bytes(), total);
    Ok(())
}

fn used_of(blocks: impl Iterator<Item = rtos_heap::BlockInfo>) -> usize {
    blocks
        .filter(|b| b.kind == BlockKind::Allocated)
        .map(|b| b.size)
        .sum()
}

fn heap4<T: TargetLayout>(len: usize) -> Heap4<T> {
    let (p, len) = common::buffer(len, 0);
    let mut h = Heap4::new();
    // SAFETY: a leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
    // Lay it out now, so that its total is known.
    let q = h.malloc(1).unwrap();
    // SAFETY: just allocated.
    unsafe { h.free(q, None).unwrap() };
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn heap4_32_invariants(actions in prop::collection::vec(action(), 1..120)) {
        let mut h = heap4::<CortexM>(12 * 1024);
        let total = h.free_bytes();
        run(&mut h, total, |h| used_of(h.blocks()), &actions)?;
    }

    #[test]
    fn heap4_64_invariants(actions in prop::collection::vec(action(), 1..120)) {
        let mut h = heap4::<Host64>(12 * 1024);
        let total = h.free_bytes();
        run(&mut h, total, |h| used_of(h.blocks()), &actions)?;
    }

    #[test]
    fn heap2_invariants(actions in prop::collection::vec(action(), 1..120)) {
        let (p, len) = common::buffer(16 * 1024, 0);
        let mut h = Heap2::<CortexM>::new();
        // SAFETY: a leaked buffer.
        unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
        let total = h.free_bytes();
        run(&mut h, total, |h| used_of(h.blocks()), &actions)?;
    }

    #[test]
    fn heap5_invariants(actions in prop::collection::vec(action(), 1..120), gap in 0usize..100) {
        let (p, _) = common::buffer(16 * 1024, 0);
        let mut h = Heap5::<Host64, 3>::new();
        // SAFETY: disjoint parts of a leaked buffer.
        unsafe {
            h.define_regions_raw(&[
                HeapRegion { start: p, size: 3000 },
                HeapRegion { start: p.add(3000 + gap), size: 5000 },
                HeapRegion { start: p.add(9000 + gap), size: 6000 },
            ]).unwrap();
        }
        let total = h.free_bytes();
        run(&mut h, total, |h| used_of(h.blocks()), &actions)?;
    }

    #[test]
    fn heap4_placement_matches_model(ops in prop::collection::vec((any::<bool>(), 1usize..3000, any::<usize>()), 1..200)) {
        let (p, len) = common::buffer(8192, 0);
        let mut h = Heap4::<CortexM>::new();
        // SAFETY: a leaked buffer.
        unsafe { h.init_from_raw(NonNull::new(p).unwrap(), len).unwrap() };
        let end = (p as usize + len - CortexM::HEADER) / 8 * 8 - p as usize;
        let mut m = model::FirstFit::new(CortexM::HEADER, CortexM::ALIGN, CortexM::SIZE_MAX, &[(0, end)]);
        let mut live = Vec::new();
        for (alloc, size, pick) in ops {
            if alloc || live.is_empty() {
                let got = h.malloc(size).ok().map(|q| q.as_ptr() as usize - CortexM::HEADER - p as usize);
                prop_assert_eq!(got, m.malloc(size));
                if let Some(off) = got {
                    live.push(off);
                }
            } else {
                let off = live.swap_remove(pick % live.len());
                // SAFETY: a live block of this heap.
                let q = unsafe { NonNull::new(p.add(off + CortexM::HEADER)).unwrap() };
                // SAFETY: freed once.
                prop_assert_eq!(unsafe { h.free(q, None) }, Ok(()));
                m.free(off);
            }
            let s = h.stats();
            let ms = m.stats();
            prop_assert_eq!(
                (s.available_bytes, s.min_ever_free, s.largest_free_block, s.smallest_free_block, s.free_blocks),
                (ms.free, ms.min_ever, ms.largest, ms.smallest, ms.blocks)
            );
        }
    }
}
