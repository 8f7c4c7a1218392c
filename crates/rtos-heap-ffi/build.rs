//! Reads the FreeRTOSConfig.h-style build settings from the environment and writes them as Rust
//! constants (`$OUT_DIR/config.rs`).
//!
//! - `RTOS_HEAP_TOTAL_HEAP_SIZE` (configTOTAL_HEAP_SIZE): bytes of `ucHeap`, default 65536.
//! - `RTOS_HEAP_BYTE_ALIGNMENT` (portBYTE_ALIGNMENT): 4, 8 or 16, default 8.
//! - `RTOS_HEAP_MAX_REGIONS`: most regions `vPortDefineHeapRegions` accepts (heap_5), default 8.

use std::env;
use std::fs;
use std::path::PathBuf;

fn setting(name: &str, default: usize, check: impl Fn(usize) -> bool, rule: &str) -> usize {
    println!("cargo::rerun-if-env-changed={name}");
    let Ok(text) = env::var(name) else {
        return default;
    };
    let text = text.trim().replace('_', "");
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => usize::from_str_radix(hex, 16),
        None => text.parse::<usize>(),
    };
    match parsed {
        Ok(v) if check(v) => v,
        _ => panic!("{name}={text:?}: expected {rule}"),
    }
}

/// Test support only: `cfg(shared_absent)` when `../shared/vectors` (or `RTOS_HEAP_SHARED`) is
/// missing and `RTOS_HEAP_REQUIRE_SHARED` is not set, so that the vector tests show as ignored
/// with the reason. The folder is not watched: after adding it, touch this file.
fn shared_cfg() {
    println!("cargo::rustc-check-cfg=cfg(shared_absent)");
    println!("cargo::rerun-if-env-changed=RTOS_HEAP_SHARED");
    println!("cargo::rerun-if-env-changed=RTOS_HEAP_REQUIRE_SHARED");
    let dir = env::var_os("RTOS_HEAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
                .join("../../../shared")
        });
    if !dir.join("vectors").is_dir() && env::var_os("RTOS_HEAP_REQUIRE_SHARED").is_none() {
        println!("cargo::rustc-cfg=shared_absent");
    }
}

fn main() {
    shared_cfg();
    let total = setting(
        "RTOS_HEAP_TOTAL_HEAP_SIZE",
        65536,
        |v| (64..=isize::MAX as usize).contains(&v),
        "a byte count of at least 64 (decimal or 0x-hex)",
    );
    let align = setting(
        "RTOS_HEAP_BYTE_ALIGNMENT",
        8,
        |v| matches!(v, 4 | 8 | 16),
        "4, 8 or 16",
    );
    let regions = setting(
        "RTOS_HEAP_MAX_REGIONS",
        8,
        |v| (1..=64).contains(&v),
        "a region count from 1 to 64",
    );
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    fs::write(
        out.join("config.rs"),
        format!(
            "/// `configTOTAL_HEAP_SIZE` (`RTOS_HEAP_TOTAL_HEAP_SIZE` at build time).\n\
             pub const TOTAL_HEAP_SIZE: usize = {total};\n\
             /// `portBYTE_ALIGNMENT` (`RTOS_HEAP_BYTE_ALIGNMENT` at build time).\n\
             pub const BYTE_ALIGNMENT: usize = {align};\n\
             /// Most heap_5 regions (`RTOS_HEAP_MAX_REGIONS` at build time).\n\
             pub const MAX_REGIONS: usize = {regions};\n"
        ),
    )
    .expect("write config.rs");
    // The scheme as a cfg: `rtos_heap_scheme = "N"` for feature heap_N. With none or several
    // features, src/lib.rs stops the build with a compile_error!; a scheme is still chosen here (the
    // lowest selected, else 4) so that the error is the only message.
    let selected: Vec<u32> = (1..=5)
        .filter(|n| env::var_os(format!("CARGO_FEATURE_HEAP_{n}")).is_some())
        .collect();
    let scheme = selected.first().copied().unwrap_or(4);
    println!(
        "cargo::rustc-check-cfg=cfg(rtos_heap_scheme, values(\"1\", \"2\", \"3\", \"4\", \"5\"))"
    );
    println!("cargo::rustc-cfg=rtos_heap_scheme=\"{scheme}\"");
    println!("cargo::rerun-if-changed=build.rs");
    // Never set: marks the portable.h types so that cbindgen guards them with `PORTABLE_H`.
    println!("cargo::rustc-check-cfg=cfg(rtos_heap_portable_h)");
}
