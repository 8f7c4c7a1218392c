//! Sets a cfg for each thing some tests need from outside the repository and that is missing, so
//! that those tests show as *ignored, with the reason* instead of passing without testing
//! anything:
//!
//! - `shared_absent`: the project's shared test data (`../shared` beside the repository, or the
//!   folder `RTOS_HEAP_SHARED` names) is not there;
//! - `gdb_absent`: no `gdb` or no `gcc` (the ELF tests of `inspect` build a program and take a core);
//! - `chromium_absent`: no Chromium (the HTML report's headless check).
//!
//! With `RTOS_HEAP_REQUIRE_SHARED` (as `.ci/run` sets) the first two are never set, and with
//! `RTOS_HEAP_REQUIRE_CHROMIUM` the last: those tests run, and fail if what they need is missing.

use std::path::PathBuf;
use std::process::Command;

fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn main() {
    for cfg in ["shared_absent", "gdb_absent", "chromium_absent"] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    for var in [
        "RTOS_HEAP_SHARED",
        "RTOS_HEAP_REQUIRE_SHARED",
        "RTOS_HEAP_REQUIRE_CHROMIUM",
        "CHROMIUM",
        "PATH",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let dir = std::env::var_os("RTOS_HEAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
                .join("../../../shared")
        });
    let traces = dir.join("traces");
    // A path that does not exist makes cargo run this script again at every build: the cfg
    // follows the folder appearing or going away.
    println!("cargo::rerun-if-changed={}", traces.display());
    let require_shared = std::env::var_os("RTOS_HEAP_REQUIRE_SHARED").is_some();
    if !traces.is_dir() && !require_shared {
        println!("cargo::rustc-cfg=shared_absent");
    }
    let tools = runs("gdb") && runs("gcc");
    if !tools && !require_shared {
        println!("cargo::rustc-cfg=gdb_absent");
    }
    let chromium = std::env::var("CHROMIUM").ok();
    let found = chromium
        .iter()
        .map(String::as_str)
        .chain(["chromium", "chromium-browser", "google-chrome"])
        .any(runs);
    if !found && std::env::var_os("RTOS_HEAP_REQUIRE_CHROMIUM").is_none() {
        println!("cargo::rustc-cfg=chromium_absent");
    }
}
