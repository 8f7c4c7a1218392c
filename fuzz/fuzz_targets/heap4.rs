//! heap_4 under the action driver, differential against the first-fit model.
#![no_main]

#[path = "driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use rtos_heap::AddressList;

fuzz_target!(|actions: Vec<driver::Action>| driver::heap4::<AddressList>(&actions));
