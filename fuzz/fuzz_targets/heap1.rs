//! heap_1 under the action driver (frees are accepted and change nothing; no model here: the
//! driver's free-bytes differential needs a freeing model).
#![no_main]

#[path = "driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use rtos_heap::{Heap1, Native};

const LEN: usize = 8192;

fuzz_target!(|actions: Vec<driver::Action>| {
    let mut buf = driver::Buf::new(LEN);
    let mut h = Heap1::<Native>::new();
    // SAFETY: the buffer outlives the heap.
    unsafe { h.init_from_raw(buf.ptr(), LEN).unwrap() };
    driver::run(&mut h, &actions, 0, 0, None, false);
});
