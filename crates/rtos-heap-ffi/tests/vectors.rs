//! The C replay driver (`tests/c/replay.c`) reads the traces of `../shared/vectors` and calls the
//! exported functions: through the C ABI (native 64-bit layout, `portBYTE_ALIGNMENT` 8, a 64-byte
//! aligned 65536-byte heap) it must reproduce `vectors/a8_m0/*.heapN_64.out` line for line (the
//! `a`, `c`, `s` and `w` lines; `!` and `e` notes are the C build's own). Skipped without
//! `../shared` unless `RTOS_HEAP_REQUIRE_SHARED` is set.

mod common;

use std::path::Path;

use common::{Config, H1, H2, H4, H5};

fn significant(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('!') && !l.starts_with('e'))
        .collect()
}

fn replay(shared: &Path, cfg: Config, scheme: u32) -> usize {
    let exe = common::compile(cfg, "replay.c", &[]);
    let mut traces: Vec<_> = std::fs::read_dir(shared.join("vectors/traces"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    traces.sort();
    let mut compared = 0;
    for trace in traces {
        let stem = trace.file_stem().unwrap().to_str().unwrap();
        let expected_file = shared.join(format!("vectors/a8_m0/{stem}.heap{scheme}_64.out"));
        let Ok(expected) = std::fs::read_to_string(&expected_file) else {
            continue;
        };
        let got = common::run_program(&exe, &[trace.to_str().unwrap()]);
        let (got, expected) = (significant(&got), significant(&expected));
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g,
                e,
                "{stem}.heap{scheme}_64: output line {} differs",
                i + 1
            );
        }
        assert_eq!(
            got.len(),
            expected.len(),
            "{stem}.heap{scheme}_64: number of lines"
        );
        compared += 1;
    }
    if common::valgrind_available() {
        for stem in ["basic", "edge", "exhaust105"] {
            let trace = shared.join(format!("vectors/traces/{stem}.trace"));
            common::memcheck(&exe, &[trace.to_str().unwrap()]);
        }
    }
    compared
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn c_abi_reproduces_a8_m0_heap_1() {
    let shared = common::shared_dir();
    assert_eq!(replay(&shared, H1, 1), 7);
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn c_abi_reproduces_a8_m0_heap_2() {
    let shared = common::shared_dir();
    assert_eq!(replay(&shared, H2, 2), 7);
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn c_abi_reproduces_a8_m0_heap_4() {
    let shared = common::shared_dir();
    assert_eq!(replay(&shared, H4, 4), 7);
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn c_abi_reproduces_a8_m0_heap_5() {
    let shared = common::shared_dir();
    assert_eq!(replay(&shared, H5, 5), 7);
}
