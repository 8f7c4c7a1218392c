//! heap_2 as the global allocator of a whole test binary.
mod global;

use rtos_heap::{Heap2, LockedHeap, StaticRegion};

static MEMORY: StaticRegion<{ 128 << 20 }> = StaticRegion::new();
global_heap_test!(
    LockedHeap<Heap2>,
    LockedHeap::new(Heap2::new()),
    |h: &mut Heap2| h.init(MEMORY.take().unwrap()).unwrap()
);

#[test]
fn collections_on_heap2() {
    global::run_and_check(&GLOBAL.0);
}
