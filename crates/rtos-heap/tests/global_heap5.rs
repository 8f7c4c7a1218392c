//! heap_5 over two separate static regions as the global allocator of a whole test binary.
mod global;

use rtos_heap::{Heap5, LockedHeap, StaticRegion};

static SRAM1: StaticRegion<{ 1 << 20 }> = StaticRegion::new();
static SRAM2: StaticRegion<{ 128 << 20 }> = StaticRegion::new();
global_heap_test!(
    LockedHeap<Heap5>,
    LockedHeap::new(Heap5::new()),
    |h: &mut Heap5| {
        let (a, b) = (SRAM1.take().unwrap(), SRAM2.take().unwrap());
        // Regions must be given in ascending address order.
        if (a.as_ptr() as usize) < (b.as_ptr() as usize) {
            h.define_regions([a, b])
        } else {
            h.define_regions([b, a])
        }
        .unwrap()
    }
);

#[test]
fn collections_on_heap5() {
    global::run_and_check(&GLOBAL.0);
}
