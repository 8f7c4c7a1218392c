//! The `tree-index` build option: the heap_4 and heap_5 static libraries built with rtos-heap's
//! O(log n) `AddressTree` must pass the very same C programs as the list builds — the C API tests
//! (exact addresses, statistics and refusals from C), and the FreeRTOS-style workload (100,000+
//! operations with `xPortCheckHeap` after every phase), natively and under valgrind memcheck.

mod common;

use common::{Config, H4_TREE, H5_TREE};

fn api_test(cfg: Config, source: &str) {
    let exe = common::compile(cfg, source, &[]);
    let out = common::run_program(&exe, &[]);
    assert!(out.contains("C API test passed"), "{out}");
    if common::valgrind_available() {
        let out = common::memcheck(&exe, &["valgrind"]);
        assert!(out.contains("C API test passed"), "{out}");
    }
}

/// Parses "workload: N heap operations …" and returns N.
fn operations(out: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("workload:"))
        .unwrap_or_else(|| panic!("no summary line in {out:?}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn workload(cfg: Config) {
    let exe = common::compile(cfg, "workload.c", &[]);
    let out = common::run_program(&exe, &["120000", "1"]);
    eprint!("{}: {out}", cfg.name);
    assert!(operations(&out) >= 100_000, "{out}");
    if common::valgrind_available() {
        let out = common::memcheck(&exe, &["20000", "1"]);
        assert!(operations(&out) >= 20_000, "{out}");
    }
}

#[test]
fn heap_4_tree_c_api() {
    api_test(H4_TREE, "test_heap4.c");
}

#[test]
fn heap_5_tree_c_api() {
    api_test(H5_TREE, "test_heap5.c");
}

#[test]
fn workload_heap_4_tree() {
    workload(H4_TREE);
}

#[test]
fn workload_heap_5_tree() {
    workload(H5_TREE);
}
