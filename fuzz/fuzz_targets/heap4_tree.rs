//! heap_4 with the tree index under the action driver, differential against the first-fit model.
//! `AddressTree<true>` checks every tree invariant after every index operation.
#![no_main]

#[path = "driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use rtos_heap::AddressTree;

fuzz_target!(|actions: Vec<driver::Action>| driver::heap4::<AddressTree<true>>(&actions));
