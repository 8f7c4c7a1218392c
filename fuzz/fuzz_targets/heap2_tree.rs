//! heap_2 with the size tree under the action driver, differential against the best-fit model.
//! `SizeTree<true>` checks every tree invariant after every index operation.
#![no_main]

#[path = "driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use rtos_heap::SizeTree;

fuzz_target!(|actions: Vec<driver::Action>| driver::heap2::<SizeTree<true>>(&actions));
