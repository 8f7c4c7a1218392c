//! FreeRTOS's own C heaps, measured in the same run as everything else.
//!
//! The unmodified `heap_2.c` / `heap_4.c` of `../shared/reference/freertos` are compiled here at
//! benchmark time (never copied into the repository) with gcc `-O2`, the same 64-bit layout as
//! the Rust subjects (`portBYTE_ALIGNMENT` 8), `configTOTAL_HEAP_SIZE` = the workload's heap size,
//! into a shared library with the reference's `shim_so.c`, in two builds:
//!
//! - **asserts off**: `configASSERT` empty (`-DORACLE_NO_ASSERTS`), a production build — the one
//!   every "vs C" ratio compares with;
//! - **asserts on**: `configASSERT` records a failed check and continues (the reference's stub).
//!
//! The library is loaded with `libloading`; `pvPortMalloc` / `vPortFree` are called through
//! function pointers from the subject's `alloc` / `free` wrappers, so callgrind counts them as it
//! counts every other allocator. `vPortHeapResetState` gives every subject a fresh heap.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// One C scheme and build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    /// 2 or 4.
    pub scheme: u8,
    /// `configASSERT` active (the reference stub's recording assert) or empty.
    pub asserts: bool,
}

/// The `../shared/reference/freertos` directory: `RTOS_HEAP_SHARED` or the `shared` folder next
/// to the repository.
pub fn reference_dir() -> PathBuf {
    std::env::var_os("RTOS_HEAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("reference/freertos")
}

/// Where the compiled libraries are kept: `RTOS_HEAP_FREERTOS_LIBS`, else `freertos-c` in the
/// cargo target directory.
fn lib_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RTOS_HEAP_FREERTOS_LIBS") {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("freertos-c")
}

/// The shared library of `build` for a heap of `heap_size` bytes, compiled when missing.
///
/// # Errors
/// When `../shared/reference/freertos` is missing or gcc fails.
pub fn library(build: Build, heap_size: usize) -> Result<PathBuf> {
    let dir = lib_dir();
    let name = format!(
        "libfreertos_heap{}_{}{}.so",
        build.scheme,
        heap_size,
        if build.asserts { "_asserts" } else { "" }
    );
    let lib = dir.join(&name);
    if lib.exists() {
        return Ok(lib);
    }
    let src = reference_dir();
    if !src.join("shim_so.c").is_file() {
        bail!("{} not found (set RTOS_HEAP_SHARED)", src.display());
    }
    std::fs::create_dir_all(&dir)?;
    // Built under a temporary name and renamed: concurrent builders never load half a file.
    let tmp = dir.join(format!(".{}-{name}.tmp", std::process::id()));
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-m64", "-fPIC", "-shared", "-Wno-unused-function"])
        .arg(format!("-DHEAP={}", build.scheme))
        .arg(format!("-DconfigTOTAL_HEAP_SIZE={heap_size}"))
        .arg(format!("-I{}", src.join("inc").display()))
        .arg(format!("-I{}", src.display()));
    if !build.asserts {
        gcc.arg("-DORACLE_NO_ASSERTS");
    }
    let status = gcc
        .arg(src.join("shim_so.c"))
        .arg(src.join(format!("heap_{}.c", build.scheme)))
        .arg("-o")
        .arg(&tmp)
        .status()
        .context("running gcc")?;
    if !status.success() {
        bail!("gcc failed building {} ({status})", lib.display());
    }
    std::fs::rename(&tmp, &lib)?;
    Ok(lib)
}

type Malloc = unsafe extern "C" fn(usize) -> *mut core::ffi::c_void;
type Free = unsafe extern "C" fn(*mut core::ffi::c_void);
type Reset = unsafe extern "C" fn();

/// A loaded C heap: `pvPortMalloc` and `vPortFree` of one library.
pub struct CHeap {
    malloc: Malloc,
    free: Free,
    // Keeps the library mapped while the function pointers above are used.
    _lib: libloading::Library,
}

impl CHeap {
    /// Loads `build` for `heap_size` bytes (compiling it when needed) and resets its heap.
    ///
    /// # Errors
    /// As [`library`], or when the library cannot be loaded.
    pub fn load(build: Build, heap_size: usize) -> Result<CHeap> {
        let path = library(build, heap_size)?;
        // SAFETY: the library is the FreeRTOS heap built just above; its initialisers do nothing
        // but zero its own statics.
        let lib = unsafe { libloading::Library::new(&path) }
            .with_context(|| format!("loading {}", path.display()))?;
        // SAFETY: the symbols have the C signatures of FreeRTOS's portable.h, declared above.
        let (malloc, free, reset) = unsafe {
            (
                *lib.get::<Malloc>(b"pvPortMalloc\0")?,
                *lib.get::<Free>(b"vPortFree\0")?,
                *lib.get::<Reset>(b"vPortHeapResetState\0")?,
            )
        };
        // SAFETY: no block of this library's heap is live in this process any more (a subject
        // owns the library's heap while it lives, and only one lives at a time).
        unsafe { reset() };
        Ok(CHeap {
            malloc,
            free,
            _lib: lib,
        })
    }

    /// `pvPortMalloc(size)`.
    #[inline(always)]
    pub fn malloc(&mut self, size: usize) -> *mut u8 {
        // SAFETY: pvPortMalloc accepts any size.
        unsafe { (self.malloc)(size) }.cast()
    }

    /// `vPortFree(ptr)`.
    ///
    /// # Safety
    /// `ptr` was returned by [`malloc`](Self::malloc) of this heap and is not used afterwards.
    #[inline(always)]
    pub unsafe fn free(&mut self, ptr: *mut u8) {
        // SAFETY: forwarded contract.
        unsafe { (self.free)(ptr.cast()) }
    }
}
