//! C ABI of rtos-heap (work in progress).
