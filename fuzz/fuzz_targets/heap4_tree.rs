//! heap_4 with the tree index (`AddressTree<true>`: every tree invariant checked after every
//! index operation) under the action driver, differential against the first-fit model.
#![no_main]

#[path = "driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use rtos_heap::{AddressTree, Heap4, Native, TargetLayout};

const LEN: usize = 8192;

fuzz_target!(|actions: Vec<driver::Action>| {
    let mut buf = driver::Buf::new(LEN);
    let mut h = Heap4::<Native, AddressTree<true>>::new();
    #[cfg(feature = "heap-protector")]
    h.set_canary(0x9E37_79B9_7F4A_7C15_u64 as usize).unwrap();
    // SAFETY: the buffer outlives the heap (both dropped at the end of this input).
    unsafe { h.init_from_raw(buf.ptr(), LEN).unwrap() };
    let base = buf.ptr().as_ptr() as usize;
    let end = (LEN - Native::HEADER) / Native::ALIGN * Native::ALIGN;
    let mut m =
        driver::model::FirstFit::new(Native::HEADER, Native::ALIGN, Native::SIZE_MAX, &[(0, end)]);
    driver::run(&mut h, &actions, Native::HEADER, base, Some(&mut m), true);
});
