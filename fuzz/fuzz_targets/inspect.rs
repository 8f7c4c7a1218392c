//! Fuzzes `rtos-heap inspect`'s walk: any bytes as a heap image, read as heap_4 or heap_5, C or
//! rtos-heap flavour, 32- or 64-bit, with any stored list head, pxEnd and canary. It must never
//! panic or loop, every finding must name an address inside the heap's regions (or the origin),
//! and the blocks must come out in address order, inside their regions, never overlapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtos_heap_cli::inspect::memory::Memory;
use rtos_heap_cli::inspect::{Counters, Facts, Flavour, inspect};

const BASE: u64 = 0x2000_0000;

fuzz_target!(|data: &[u8]| {
    let Some((head, image)) = data.split_first_chunk::<10>() else {
        return;
    };
    let knobs = head[0];
    let word = if knobs & 1 != 0 { 8 } else { 4 };
    let align = [4, 8, 16, 8][usize::from(knobs >> 1 & 3)];
    let len = image.len() as u64;
    if len < 64 {
        return;
    }
    let regions = if knobs & 8 != 0 {
        // heap_5: two regions, the second starting `head[1]` bytes after the first half.
        let split = len / 2;
        let gap = u64::from(head[1]) % (split / 2).max(1);
        vec![(BASE, split / 2), (BASE + split + gap, len - split - gap)]
    } else {
        vec![(BASE, len)]
    };
    let word_of = |b: &[u8]| u64::from(u32::from_le_bytes(b.try_into().unwrap()));
    let facts = Facts {
        heap5: regions.len() > 1,
        word,
        align,
        flavour: if knobs & 16 != 0 { Flavour::RtosHeap } else { Flavour::C },
        regions,
        canary: if knobs & 32 != 0 { word_of(&head[2..6]) } else { 0 },
        head: (knobs & 64 != 0).then(|| BASE + word_of(&head[6..10]) % len),
        end: None,
        origin: BASE,
    };
    let mem = Memory::raw(BASE, image.to_vec());
    let Ok(i) = inspect(&mem, &facts, Counters::default(), None) else {
        return;
    };
    let mut last_end = 0;
    for b in &i.walk.blocks {
        let (start, rlen) = facts.regions[b.region];
        assert!(b.address >= start && b.address + b.size <= start + rlen, "{b:?}");
        assert!(b.address >= last_end, "blocks overlap or go down: {b:?}");
        last_end = b.address + b.size;
    }
    for f in &i.walk.findings {
        assert!(f.address >= BASE && f.address <= BASE + len, "{f:?}");
    }
});
