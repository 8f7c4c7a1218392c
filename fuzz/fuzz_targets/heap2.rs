//! heap_2 under the action driver, differential against the best-fit model.
#![no_main]

#[path = "driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use rtos_heap::{Heap2, Native, TargetLayout};

const LEN: usize = 8192;

fuzz_target!(|actions: Vec<driver::Action>| {
    let mut buf = driver::Buf::new(LEN);
    let mut h = Heap2::<Native>::new();
    #[cfg(feature = "heap-protector")]
    h.set_canary(0x2545_F491).unwrap();
    // SAFETY: the buffer outlives the heap.
    unsafe { h.init_from_raw(buf.ptr(), LEN).unwrap() };
    let base = buf.ptr().as_ptr() as usize;
    let mut m = driver::model::BestFit::new(
        Native::HEADER,
        Native::ALIGN,
        Native::SIZE_MAX,
        LEN - Native::ALIGN,
    );
    driver::run(&mut h, &actions, Native::HEADER, base, Some(&mut m), true);
});
