//! heap_5 over three regions under the action driver, differential against the first-fit model.
#![no_main]

#[path = "driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use rtos_heap::{Heap5, HeapRegion, Native, TargetLayout};

const LEN: usize = 3 * 4096;

fuzz_target!(|actions: Vec<driver::Action>| {
    let mut buf = driver::Buf::new(LEN);
    let p = buf.ptr().as_ptr();
    let mut h = Heap5::<Native, 3>::new();
    #[cfg(feature = "heap-protector")]
    h.set_canary(0x7F4A_7C15).unwrap();
    let regions = [(0usize, 2048usize), (4096, 4096), (8192 + 64, 4096 - 64)];
    let hr = regions.map(|(o, s)| HeapRegion {
        start: p.wrapping_add(o),
        size: s,
    });
    // SAFETY: disjoint parts of the buffer, which outlives the heap.
    unsafe { h.define_regions_raw(&hr).unwrap() };
    let base = p as usize;
    let laid: Vec<(usize, usize)> = regions
        .iter()
        .map(|&(o, s)| (o, (o + s - Native::HEADER) / Native::ALIGN * Native::ALIGN))
        .collect();
    let mut m =
        driver::model::FirstFit::new(Native::HEADER, Native::ALIGN, Native::SIZE_MAX, &laid);
    driver::run(&mut h, &actions, Native::HEADER, base, Some(&mut m), true);
});
