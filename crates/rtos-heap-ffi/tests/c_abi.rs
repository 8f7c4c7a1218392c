//! The C ABI from C: for every scheme, a static library is built (`ffi-release` profile, the
//! scheme's feature and its hooks), C test programs are compiled with gcc against it and run —
//! natively and under valgrind memcheck. Also: the FreeRTOS-style workload in C (100,000+ heap
//! operations per scheme, `xPortCheckHeap` after every phase, several threads through the kernel
//! lock and through the critical section), and the compile errors for zero or two schemes.

mod common;

use common::{Config, H1, H2, H3, H4, H4_CS, H5};

fn api_test(cfg: Config, source: &str) {
    let exe = common::compile(cfg, source, &[]);
    let out = common::run_program(&exe, &[]);
    assert!(out.contains("C API test passed"), "{out}");
    if common::valgrind_available() {
        let out = common::memcheck(&exe, &["valgrind"]);
        assert!(out.contains("C API test passed"), "{out}");
    }
}

#[test]
fn heap_1_c_api() {
    api_test(H1, "test_heap1.c");
}

#[test]
fn heap_2_c_api() {
    api_test(H2, "test_heap2.c");
}

#[test]
fn heap_3_c_api() {
    api_test(H3, "test_heap3.c");
}

#[test]
fn heap_4_c_api() {
    api_test(H4, "test_heap4.c");
}

#[test]
fn heap_5_c_api() {
    api_test(H5, "test_heap5.c");
}

/// Parses "workload: N heap operations …" and returns N.
fn operations(out: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("workload:"))
        .unwrap_or_else(|| panic!("no summary line in {out:?}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn workload(cfg: Config, extra: &[&str], threads: &str) {
    let exe = common::compile(cfg, "workload.c", extra);
    let out = common::run_program(&exe, &["120000", threads]);
    eprint!("{}: {out}", cfg.name);
    assert!(operations(&out) >= 100_000, "{out}");
    if common::valgrind_available() {
        let out = common::memcheck(&exe, &["20000", threads]);
        assert!(operations(&out) >= 20_000, "{out}");
    }
}

#[test]
fn workload_heap_1() {
    workload(H1, &[], "1");
}

#[test]
fn workload_heap_2() {
    workload(H2, &[], "1");
}

#[test]
fn workload_heap_3() {
    workload(H3, &[], "1");
}

#[test]
fn workload_heap_4() {
    workload(H4, &[], "1");
}

#[test]
fn workload_heap_5() {
    workload(H5, &[], "1");
}

/// Four threads share the heap through vTaskSuspendAll/xTaskResumeAll (a recursive mutex here).
#[test]
fn workload_heap_4_threads_kernel_lock() {
    workload(H4, &["-DTHREADS"], "4");
}

/// Four threads share the heap through the critical-section feature, linked without any kernel
/// symbol (the C program defines no vTaskSuspendAll: the link would fail if the library needed it).
#[test]
fn workload_heap_4_threads_critical_section() {
    workload(H4_CS, &["-DTHREADS"], "4");
}

#[test]
fn two_schemes_or_none_do_not_build() {
    let out = common::check_features("heap_5");
    assert!(!out.status.success(), "heap_4 (default) + heap_5 built");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than one heap scheme selected"), "{err}");

    let out = common::check_features("");
    assert!(out.status.success(), "the default build (heap_4) failed");
}

#[test]
fn no_scheme_does_not_build() {
    let _guard = common::work_dir();
    let out =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(common::crate_dir())
            .args([
                "check",
                "--quiet",
                "-p",
                "rtos-heap-ffi",
                "--lib",
                "--no-default-features",
            ])
            .arg("--target-dir")
            .arg(common::work_dir().join("target-check-none"))
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("run cargo check");
    assert!(!out.status.success(), "a build without a scheme succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no heap scheme selected"), "{err}");
}

#[test]
fn pool_c_api() {
    api_test(H4, "test_pool.c");
}
