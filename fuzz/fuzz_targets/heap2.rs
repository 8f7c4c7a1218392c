//! heap_2 under the action driver, differential against the best-fit model.
#![no_main]

#[path = "driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use rtos_heap::SizeList;

fuzz_target!(|actions: Vec<driver::Action>| driver::heap2::<SizeList>(&actions));
