//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared` next to the repository (or `RTOS_HEAP_SHARED`). Tests that call it carry
/// `#[cfg_attr(shared_absent, ignore = …)]` (the cfg comes from `build.rs`), so they only run when
/// it was found; a folder gone since then is a failure, never a silent pass.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("RTOS_HEAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("vectors").is_dir(),
        "{} has no vectors/ (set RTOS_HEAP_SHARED)",
        dir.display()
    );
    dir
}

/// A heap-owned byte buffer whose start is `misalign` bytes past a 64-byte boundary, leaked so it
/// can serve as `'static` heap memory.
pub fn buffer(len: usize, misalign: usize) -> (*mut u8, usize) {
    let words = (len + misalign).div_ceil(64) + 1;
    let v: Vec<[u64; 8]> = vec![[0u64; 8]; words];
    let p = Box::leak(v.into_boxed_slice()).as_mut_ptr().cast::<u8>();
    // SAFETY: `misalign < 64` bytes into a buffer of `len + misalign` bytes at least.
    (unsafe { p.add(misalign) }, len)
}
