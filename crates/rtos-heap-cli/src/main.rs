//! The rtos-heap command-line tool (work in progress).
fn main() {}
