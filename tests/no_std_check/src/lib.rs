//! A `#![no_std]` consumer of rtos-heap: if this links as a static library without std, the core
//! crate needs nothing from std (the critical-section implementation is left to the firmware, as
//! on a real target).
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::mem::MaybeUninit;

use rtos_heap::{CortexM, Heap1, Heap2, Heap4, Heap5, LockedHeap, Pool, RawHeap, StaticRegion};

#[global_allocator]
static HEAP: LockedHeap<Heap4<CortexM>> = LockedHeap::new(Heap4::new());
static MEMORY: StaticRegion<8192> = StaticRegion::new();
static OTHER: StaticRegion<4096> = StaticRegion::new();

/// Firmware entry point of the check: uses each scheme once.
#[unsafe(no_mangle)]
pub extern "C" fn no_std_check() -> usize {
    if let Some(m) = MEMORY.take() {
        let _ = HEAP.lock().init(m);
    }
    let mut v: Vec<u32> = Vec::new();
    v.extend_from_slice(&[1, 2, 3]);
    let mut total = v.iter().sum::<u32>() as usize;
    if let Some(m) = OTHER.take() {
        let (a, rest) = m.split_at_mut(1024);
        let (b, rest) = rest.split_at_mut(1024);
        let (c, d) = rest.split_at_mut(1024);
        let mut h1 = Heap1::<CortexM>::new();
        let mut h2 = Heap2::<CortexM>::new();
        let mut h5 = Heap5::<CortexM, 2>::new();
        let mut pool = Pool::new();
        let _ = h1.init(a);
        let _ = h2.init(b);
        let (c1, c2) = c.split_at_mut(512);
        let _ = h5.set_canary(0x5a5a_5a5a);
        let _ = h5.define_regions([c1, c2]);
        let _ = pool.init(d, core::alloc::Layout::new::<[u32; 4]>());
        total += h1.malloc(8).is_ok() as usize + h2.malloc(8).is_ok() as usize;
        total += h5.malloc(8).is_ok() as usize + pool.malloc(8).is_ok() as usize;
    }
    let _unused: MaybeUninit<u8> = MaybeUninit::uninit();
    total
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
