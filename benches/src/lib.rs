//! Benchmarks of rtos-heap (work in progress).
