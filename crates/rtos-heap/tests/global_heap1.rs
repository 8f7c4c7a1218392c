//! heap_1 (never frees) as the global allocator of a whole test binary.
mod global;

use rtos_heap::{Heap1, LockedHeap, RawHeap, StaticRegion};

static MEMORY: StaticRegion<{ 256 << 20 }> = StaticRegion::new();
global_heap_test!(
    LockedHeap<Heap1>,
    LockedHeap::new(Heap1::new()),
    |h: &mut Heap1| h.init(MEMORY.take().unwrap()).unwrap()
);

#[test]
fn collections_on_heap1() {
    let before = GLOBAL.0.free_bytes();
    global::workload(false);
    let s = GLOBAL.0.stats();
    assert!(s.successful_allocations > 5_000);
    assert!(GLOBAL.0.free_bytes() < before, "heap_1 only ever grows");
    let check = GLOBAL.0.lock().check();
    check.unwrap();
}
