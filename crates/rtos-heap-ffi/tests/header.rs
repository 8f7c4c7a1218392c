//! `include/rtos_heap.h` is what cbindgen generates from the sources now: regenerates it and fails
//! on any difference. `RTOS_HEAP_BLESS=1 cargo test -p rtos-heap-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = dir.join("include/rtos_heap.h");
    if std::env::var_os("RTOS_HEAP_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write the header");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "include/rtos_heap.h is out of date (first difference at line {line}); regenerate it with \
             `RTOS_HEAP_BLESS=1 cargo test -p rtos-heap-ffi --test header`"
        );
    }
    // The FreeRTOS API and the extras are all declared.
    for name in [
        "pvPortMalloc",
        "vPortFree",
        "pvPortCalloc",
        "xPortGetFreeHeapSize",
        "xPortGetMinimumEverFreeHeapSize",
        "xPortResetHeapMinimumEverFreeHeapSize",
        "vPortGetHeapStats",
        "vPortInitialiseBlocks",
        "vPortHeapResetState",
        "vPortDefineHeapRegions",
        "xPortCheckHeap",
        "pvPortRealloc",
        "xPortGetRejectedFreeCount",
        "uxPortHeapWalk",
        "HeapStats_t",
        "HeapRegion_t",
    ] {
        assert!(generated.contains(name), "{name} missing from the header");
    }
}
