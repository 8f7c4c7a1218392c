//! The fixed-block pool under the action driver: every size the pool cannot serve fails, every
//! block it hands out is tagged and verified, double and interior frees are refused.
#![no_main]

#[path = "driver.rs"]
mod driver;

use std::alloc::Layout;

use libfuzzer_sys::fuzz_target;
use rtos_heap::Pool;

fuzz_target!(|input: (u8, Vec<driver::Action>)| {
    let (shape, actions) = input;
    let mut buf = driver::Buf::new(4096);
    let block = Layout::from_size_align(8 + (shape as usize % 120), 1 << (shape % 4)).unwrap();
    let mut p = Pool::new();
    // SAFETY: the buffer outlives the pool.
    if unsafe { p.init_from_raw(buf.ptr(), 4096, block) }.is_err() {
        return;
    }
    driver::run(&mut p, &actions, 0, 0, None, true);
});
