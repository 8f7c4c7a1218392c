//! Sets two cfgs.
//!
//! `cfg(rtos_heap_small)`: code size before speed, with the `small` feature or when the build
//! optimises for size (`opt-level = "s"` or `"z"`, as the C library's `ffi-size` profile does):
//! shorter loops and one free path. Same behaviour, placement and errors.
//!
//! Test support only: `cfg(shared_absent)` when the project's shared conformance data
//! (`../shared/vectors` beside the repository, or `RTOS_HEAP_SHARED`) is not there, so that the
//! tests reading it show as *ignored, with the reason* instead of passing without testing
//! anything. `RTOS_HEAP_REQUIRE_SHARED` (set by `.ci/run`) keeps them running. The library itself
//! does not look at the cfg. The folder is not watched (a crate used as a dependency would be
//! rebuilt at every build): after adding `../shared`, touch this file or set `RTOS_HEAP_SHARED`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rtos_heap_small)");
    let opt = std::env::var("OPT_LEVEL").unwrap_or_default();
    if std::env::var_os("CARGO_FEATURE_SMALL").is_some() || opt == "s" || opt == "z" {
        println!("cargo::rustc-cfg=rtos_heap_small");
    }
    println!("cargo::rustc-check-cfg=cfg(shared_absent)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RTOS_HEAP_SHARED");
    println!("cargo::rerun-if-env-changed=RTOS_HEAP_REQUIRE_SHARED");
    let dir = std::env::var_os("RTOS_HEAP_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
                .join("../../../shared")
        });
    if !dir.join("vectors").is_dir() && std::env::var_os("RTOS_HEAP_REQUIRE_SHARED").is_none() {
        println!("cargo::rustc-cfg=shared_absent");
    }
}
