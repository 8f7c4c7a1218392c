//! Puts `memory.x` on the linker's path and embeds the conformance traces of
//! `../shared/vectors/traces` (or `$RTOS_HEAP_SHARED/vectors/traces`) into the firmware; sets
//! `cfg(armv6m)` for the Armv6-M build (`thumbv6m-none-eabi`).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    std::fs::copy(here.join("memory.x"), out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=RTOS_HEAP_SHARED");
    println!("cargo:rustc-check-cfg=cfg(armv6m)");
    if std::env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv6m")) {
        println!("cargo:rustc-cfg=armv6m");
    }

    let shared = std::env::var_os("RTOS_HEAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("../../../shared"));
    let dir = shared.join("vectors/traces");
    let mut traces: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set RTOS_HEAP_SHARED)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    traces.sort();
    let mut src = String::from(
        "/// The conformance traces: (name, text).\npub static TRACES: &[(&str, &str)] = &[\n",
    );
    for t in &traces {
        let stem = t.file_stem().unwrap().to_str().unwrap();
        let path = t.canonicalize().unwrap();
        src.push_str(&format!(
            "    ({stem:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
        println!("cargo:rerun-if-changed={}", path.display());
    }
    src.push_str("];\n");
    std::fs::write(out.join("traces.rs"), src).unwrap();
}
