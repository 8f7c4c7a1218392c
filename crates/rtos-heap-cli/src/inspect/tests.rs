//! The walk against the core crate's own heaps (rtos-heap images) and against hand-built images of
//! the C layout, clean and with each kind of damage.

use std::ptr::NonNull;

use rtos_heap::{BlockKind, Heap4, Heap5, HeapRegion, RawHeap, Target, TargetLayout};
use rtos_heap_workloads::Rng;

use super::memory::Memory;
use super::*;

/// A 16-byte aligned buffer the heaps under test live in.
fn buffer(len: usize) -> Vec<u128> {
    vec![0u128; len.div_ceil(16)]
}

fn bytes_of(buf: &[u128], len: usize) -> Vec<u8> {
    buf.iter().flat_map(|w| w.to_le_bytes()).take(len).collect()
}

/// Random mallocs and frees on `heap`; returns the live pointers.
fn churn(heap: &mut impl RawHeap, seed: u64, steps: usize) -> Vec<NonNull<u8>> {
    let mut rng = Rng::new(seed);
    let mut live = Vec::new();
    for _ in 0..steps {
        if live.is_empty() || rng.unit() < 0.55 {
            if let Ok(p) = heap.malloc(rng.range(1, 300) as usize) {
                live.push(p);
            }
        } else {
            let p = live.swap_remove(rng.below(live.len() as u64) as usize);
            // SAFETY: `p` came from this heap's malloc and is freed once (removed from `live`).
            unsafe { heap.free(p, None) }.expect("valid free");
        }
    }
    live
}

fn kind_of(k: BlockKind) -> Kind {
    match k {
        BlockKind::Allocated => Kind::Allocated,
        BlockKind::Free => Kind::Free,
        BlockKind::EndMarker => Kind::EndMarker,
        BlockKind::Corrupt => Kind::Damaged,
    }
}

/// (address, size, kind) of every block inspect found.
fn shape(i: &Inspection) -> Vec<(u64, u64, Kind)> {
    i.walk
        .blocks
        .iter()
        .map(|b| (b.address, b.size, b.kind))
        .collect()
}

/// The same of the core crate's own walk.
fn core_shape(blocks: impl Iterator<Item = rtos_heap::BlockInfo>) -> Vec<(u64, u64, Kind)> {
    blocks
        .map(|b| (b.address as u64, b.size as u64, kind_of(b.kind)))
        .collect()
}

fn rtos_facts<T: TargetLayout>(regions: Vec<(u64, u64)>) -> Facts {
    Facts {
        heap5: regions.len() > 1,
        word: T::WORD,
        align: T::ALIGN,
        flavour: Flavour::RtosHeap,
        origin: regions[0].0,
        regions,
        canary: 0,
        head: None,
        end: None,
    }
}

fn check_against_core<T: TargetLayout>(seed: u64) {
    const LEN: usize = 16 * 1024;
    let mut buf = buffer(LEN);
    let start = NonNull::new(buf.as_mut_ptr().cast::<u8>()).unwrap();
    let mut heap = Heap4::<T>::new();
    // SAFETY: `buf` outlives `heap` (both are locals; the heap is dropped first) and nothing else
    // touches it while the heap is in use.
    unsafe { heap.init_from_raw(start, LEN) }.unwrap();
    let _live = churn(&mut heap, seed, 3000);
    let core = core_shape(heap.blocks());
    let stats = heap.stats();
    let mem = Memory::raw(start.as_ptr() as u64, bytes_of(&buf, LEN));
    let facts = rtos_facts::<T>(vec![(start.as_ptr() as u64, LEN as u64)]);
    let i = inspect(&mem, &facts, Counters::default(), None).unwrap();
    let ours = shape(&i);
    assert_eq!(ours, core, "{} {}", T::WORD, T::ALIGN);
    assert!(i.walk.findings.is_empty(), "{:?}", i.walk.findings);
    assert_eq!(i.walk.free_bytes as usize, stats.available_bytes);
    assert_eq!(i.walk.free_blocks as usize, stats.free_blocks);
    assert_eq!(i.walk.largest as usize, stats.largest_free_block);
    assert_eq!(i.walk.smallest as usize, stats.smallest_free_block);
}

#[test]
fn rtos_heap_images_read_as_the_core_walks_them() {
    for seed in 1..4 {
        check_against_core::<Target<4, 8>>(seed);
        check_against_core::<Target<8, 8>>(seed);
        check_against_core::<Target<4, 4>>(seed);
        check_against_core::<Target<8, 16>>(seed);
    }
}

#[test]
fn rtos_heap_heap5_image_with_two_regions() {
    type T = Target<8, 8>;
    let mut buf = buffer(12 * 1024);
    let base = buf.as_mut_ptr().cast::<u8>();
    // Two regions with a gap between them; the second starts 3 bytes off the grid.
    let regions = [(0usize, 4000usize), (6003, 5000)];
    let list = regions.map(|(o, l)| HeapRegion {
        // SAFETY: both offsets lie inside `buf`.
        start: unsafe { base.add(o) },
        size: l,
    });
    let mut heap = Heap5::<T>::new();
    // SAFETY: the regions lie in `buf`, which outlives `heap`, and do not overlap.
    unsafe { heap.define_regions_raw(&list) }.unwrap();
    let _live = churn(&mut heap, 9, 4000);
    let core = core_shape(heap.blocks());
    let stats = heap.stats();
    let mem = Memory::raw(base as u64, bytes_of(&buf, 12 * 1024));
    let facts = rtos_facts::<T>(
        regions
            .iter()
            .map(|&(o, l)| (base as u64 + o as u64, l as u64))
            .collect(),
    );
    let i = inspect(&mem, &facts, Counters::default(), None).unwrap();
    let ours = shape(&i);
    assert_eq!(ours, core);
    assert!(i.walk.findings.is_empty(), "{:?}", i.walk.findings);
    assert_eq!(i.walk.free_blocks as usize, stats.free_blocks);
    assert_eq!(i.walk.free_bytes as usize, stats.available_bytes);
}

/// A C heap_4 image (32-bit, alignment 8, base 0x2000_0000) built from a list of (size,
/// allocated) blocks that tile the heap up to the end marker; `canary` protects the links.
struct CImage {
    bytes: Vec<u8>,
    facts: Facts,
    /// Header addresses of the blocks, in order.
    at: Vec<u64>,
}

const BASE: u64 = 0x2000_0000;
const TOTAL: u64 = 1024;

fn c_image(blocks: &[(u64, bool)], canary: u32) -> CImage {
    let end = (TOTAL - 8) / 8 * 8;
    assert_eq!(
        blocks.iter().map(|b| b.0).sum::<u64>(),
        end,
        "blocks must tile the heap"
    );
    let mut bytes = vec![0xeeu8; TOTAL as usize];
    let mut put = |addr: u64, v: u32| {
        let o = (addr - BASE) as usize;
        bytes[o..o + 4].copy_from_slice(&v.to_le_bytes());
    };
    let mut at = Vec::new();
    let mut a = BASE;
    for &(size, _) in blocks {
        at.push(a);
        a += size;
    }
    let pxend = BASE + end;
    let frees: Vec<u64> = at
        .iter()
        .zip(blocks)
        .filter(|(_, b)| !b.1)
        .map(|(a, _)| *a)
        .collect();
    for (k, (&addr, &(size, alloc))) in at.iter().zip(blocks).enumerate() {
        let link = if alloc {
            0
        } else {
            let next = frees.iter().find(|&&f| f > addr).copied().unwrap_or(pxend);
            next as u32
        };
        let _ = k;
        put(addr, link ^ canary);
        put(addr + 4, size as u32 | if alloc { 0x8000_0000 } else { 0 });
    }
    put(pxend, canary);
    put(pxend + 4, 0);
    let head = frees.first().copied().unwrap_or(pxend) as u32 ^ canary;
    CImage {
        bytes,
        facts: Facts {
            heap5: false,
            word: 4,
            align: 8,
            flavour: Flavour::C,
            regions: vec![(BASE, TOTAL)],
            canary: u64::from(canary),
            head: Some(u64::from(head)),
            end: Some(pxend),
            origin: BASE,
        },
        at,
    }
}

impl CImage {
    fn put(&mut self, addr: u64, v: u32) {
        let o = (addr - BASE) as usize;
        self.bytes[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn inspect(&self) -> Inspection {
        let mem = Memory::raw(BASE, self.bytes.clone());
        inspect(&mem, &self.facts, Counters::default(), None).unwrap()
    }
}

/// alloc 64, free 128, alloc 32, alloc 96, free 80, alloc 48, free (rest): 1016 bytes.
const LAYOUT: [(u64, bool); 7] = [
    (64, true),
    (128, false),
    (32, true),
    (96, true),
    (80, false),
    (48, true),
    (568, false),
];

fn kinds(i: &Inspection) -> Vec<(u64, Damage)> {
    i.walk
        .findings
        .iter()
        .map(|f| (f.address, f.kind))
        .collect()
}

#[test]
fn clean_c_image() {
    for canary in [0, 0x5a5a_1234] {
        let img = c_image(&LAYOUT, canary);
        let i = img.inspect();
        assert!(i.walk.findings.is_empty(), "{:?}", i.walk.findings);
        assert_eq!(i.walk.free_list, vec![img.at[1], img.at[4], img.at[6]]);
        assert_eq!(i.stats.xPortGetFreeHeapSize, 128 + 80 + 568);
        assert_eq!(i.stats.xNumberOfFreeBlocks, 3);
        assert_eq!(i.stats.xSizeOfLargestFreeBlockInBytes, 568);
        assert_eq!(i.stats.xSizeOfSmallestFreeBlockInBytes, 80);
        assert_eq!(i.largest_request, 560);
        assert_eq!(i.used_bytes, 64 + 32 + 96 + 48);
        assert_eq!(i.walk.blocks.len(), 8, "7 blocks and the end marker");
    }
}

#[test]
fn overwritten_size_is_reported_and_the_walk_resynchronises() {
    let mut img = c_image(&LAYOUT, 0);
    img.put(img.at[2] + 4, 0x1234_5677); // the 32-byte allocated block's size word
    let i = img.inspect();
    assert_eq!(kinds(&i), vec![(img.at[2], Damage::BadHeader)]);
    // The damaged span ends at the next plausible header: every block after it is read.
    let after: Vec<u64> = i
        .walk
        .blocks
        .iter()
        .filter(|b| b.address > img.at[2])
        .map(|b| b.address)
        .collect();
    assert_eq!(
        after,
        [img.at[3], img.at[4], img.at[5], img.at[6], BASE + 1016]
    );
    assert_eq!(i.walk.blocks[2].kind, Kind::Damaged);
    assert_eq!(i.walk.blocks[2].size, 32);
}

#[test]
fn size_past_the_end() {
    let mut img = c_image(&LAYOUT, 0);
    img.put(img.at[5] + 4, 0x8000_0000 | 4096);
    let i = img.inspect();
    assert_eq!(kinds(&i), vec![(img.at[5], Damage::SizePastEnd)]);
    assert!(
        i.walk
            .blocks
            .iter()
            .any(|b| b.address == img.at[6] && b.kind == Kind::Free)
    );
}

#[test]
fn free_link_outside_the_heap_and_out_of_order() {
    let mut img = c_image(&LAYOUT, 0);
    img.put(img.at[1], 0x0800_0000);
    let i = img.inspect();
    assert_eq!(kinds(&i), vec![(img.at[1], Damage::LinkOutsideHeap)]);
    assert_eq!(
        i.walk.free_list,
        vec![img.at[1], img.at[4], img.at[6]],
        "the list resynchronises on the next free block"
    );

    let mut img = c_image(&LAYOUT, 0);
    img.put(img.at[4], img.at[1] as u32);
    let i = img.inspect();
    assert_eq!(kinds(&i), vec![(img.at[4], Damage::LinkOutOfOrder)]);
    assert_eq!(i.walk.free_list, vec![img.at[1], img.at[4], img.at[6]]);
}

#[test]
fn link_to_an_allocated_block_and_a_skipped_free_block() {
    let mut img = c_image(&LAYOUT, 0);
    // The first free block's link skips the second free block.
    img.put(img.at[1], img.at[6] as u32);
    let i = img.inspect();
    assert_eq!(kinds(&i), vec![(img.at[4], Damage::NotOnFreeList)]);
    assert_eq!(i.stats.xPortGetFreeHeapSize, 128 + 568);

    let mut img = c_image(&LAYOUT, 0);
    img.put(img.at[1], img.at[3] as u32);
    let i = img.inspect();
    assert_eq!(kinds(&i), vec![(img.at[1], Damage::LinkNotAFreeBlock)]);
}

#[test]
fn unmerged_neighbours() {
    let layout = [
        (64, true),
        (128, false),
        (32, false),
        (96, true),
        (696, false),
    ];
    let img = c_image(&layout, 0);
    let i = img.inspect();
    assert_eq!(kinds(&i), vec![(img.at[2], Damage::UnmergedNeighbours)]);
}

#[test]
fn canary_mismatch_and_end_marker() {
    let mut img = c_image(&LAYOUT, 0x1d0b_62f4);
    img.facts.canary = 0x1d0b_62f5;
    img.facts.head = None; // the stored head decodes differently too: let the walk find it
    let i = img.inspect();
    let allocated: Vec<u64> = [0, 2, 3, 5].iter().map(|&k| img.at[k]).collect();
    let canary: Vec<u64> = kinds(&i)
        .into_iter()
        .filter(|f| f.1 == Damage::CanaryMismatch)
        .map(|f| f.0)
        .collect();
    assert_eq!(canary, allocated);

    let mut img = c_image(&LAYOUT, 0);
    img.put(BASE + 1016 + 4, 64);
    let i = img.inspect();
    assert!(
        kinds(&i).contains(&(BASE + 1016, Damage::EndMarker)),
        "{:?}",
        kinds(&i)
    );
}

#[test]
fn facts_file_and_numbers() {
    let f = parse_facts_file(
        "scheme=heap_5\nword_bytes=8\nportBYTE_ALIGNMENT=8\nbase_address=0x1000\nregion=0x1000:1000\nregion=0x2000:2K\n",
        Flavour::C,
    )
    .unwrap();
    assert!(f.heap5);
    assert_eq!(f.regions, vec![(0x1000, 1000), (0x2000, 2048)]);
    assert_eq!(f.origin, 0x1000);
    assert!(parse_facts_file("scheme=heap_2\nbase_address=0\n", Flavour::C).is_err());
    assert!(parse_facts_file("bogus\n", Flavour::C).is_err());
    assert!(
        parse_facts_file("scheme=heap_4\nbase_address=0\n", Flavour::C).is_err(),
        "no bytes"
    );
    assert_eq!(parse_u64("0x10"), Ok(16));
    assert_eq!(parse_u64("2K"), Ok(2048));
    assert!(parse_u64("0xg").is_err());
}

#[test]
fn histogram_buckets() {
    let img = c_image(&LAYOUT, 0);
    let i = img.inspect();
    let h: Vec<(u64, u64, u64, u64)> = i
        .histogram
        .iter()
        .map(|b| (b.from, b.to, b.allocated, b.free))
        .collect();
    assert_eq!(
        h,
        vec![
            (17, 32, 1, 0),
            (33, 64, 2, 0),
            (65, 128, 1, 2),
            (513, 1024, 0, 1)
        ]
    );
}

#[test]
fn facts_that_describe_no_heap_are_errors() {
    let img = c_image(&LAYOUT, 0);
    let mem = Memory::raw(BASE, img.bytes.clone());
    let mut f = img.facts.clone();
    f.regions = vec![(BASE, 16)];
    let e = inspect(&mem, &f, Counters::default(), None).unwrap_err();
    assert!(e.to_string().contains("cannot hold a block"), "{e}");
    f.regions = vec![(BASE, 512), (BASE + 256, 256)];
    f.heap5 = true;
    let e = inspect(&mem, &f, Counters::default(), None).unwrap_err();
    assert!(e.to_string().contains("ascending"), "{e}");
    f.regions = vec![(u64::MAX - 8, 64)];
    assert!(
        inspect(&mem, &f, Counters::default(), None).is_err(),
        "past the address space"
    );
    f.regions.clear();
    assert!(inspect(&mem, &f, Counters::default(), None).is_err());
}

#[test]
fn an_image_of_zeros_is_all_damage_and_no_panic() {
    for flavour in [Flavour::C, Flavour::RtosHeap] {
        let mem = Memory::raw(BASE, vec![0; 1024]);
        let mut facts = c_image(&LAYOUT, 0).facts;
        facts.flavour = flavour;
        facts.head = None;
        let i = inspect(&mem, &facts, Counters::default(), None).unwrap();
        assert!(i.damaged());
        assert_eq!(i.walk.findings[0].kind, Damage::BadHeader);
        assert_eq!(i.walk.blocks[0].kind, Kind::Damaged);
        assert_eq!(
            i.walk.blocks[0].size, 1016,
            "one damaged span up to the end marker"
        );
        assert_eq!(i.stats.xNumberOfFreeBlocks, 0);
        assert_eq!(i.largest_request, 0);
    }
}
