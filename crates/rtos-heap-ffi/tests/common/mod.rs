//! Helpers of the C ABI tests: the shared reference folder, the per-configuration static library
//! builds, the C compiler and valgrind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

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

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Scratch space of these tests (inside the cargo target directory).
pub fn work_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ffi-c");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One build of the library: its cargo features and the matching C defines.
#[derive(Clone, Copy)]
pub struct Config {
    pub name: &'static str,
    pub features: &'static str,
    pub defines: &'static [&'static str],
}

pub const H1: Config = Config {
    name: "h1",
    features: "heap_1,malloc-failed-hook,assert-hook,application-allocated-heap",
    defines: &["-DRTOS_HEAP_1", "-DAPP_HEAP"],
};
pub const H2: Config = Config {
    name: "h2",
    features: "heap_2,malloc-failed-hook,assert-hook,application-allocated-heap,clear-on-free",
    defines: &["-DRTOS_HEAP_2", "-DAPP_HEAP"],
};
pub const H3: Config = Config {
    name: "h3",
    features: "heap_3,malloc-failed-hook,assert-hook",
    defines: &["-DRTOS_HEAP_3"],
};
pub const H4: Config = Config {
    name: "h4",
    features: "heap_4,malloc-failed-hook,assert-hook,application-allocated-heap,clear-on-free,heap-protector",
    defines: &["-DRTOS_HEAP_4", "-DAPP_HEAP"],
};
pub const H5: Config = Config {
    name: "h5",
    features: "heap_5,malloc-failed-hook,assert-hook,heap-protector,clear-on-free",
    defines: &["-DRTOS_HEAP_5"],
};
/// heap_4 as [`H4`], finding free blocks with the O(log n) tree index (feature `tree-index`).
pub const H4_TREE: Config = Config {
    name: "h4tree",
    features: "heap_4,tree-index,malloc-failed-hook,assert-hook,application-allocated-heap,clear-on-free,heap-protector",
    defines: &["-DRTOS_HEAP_4", "-DAPP_HEAP", "-DTREE_INDEX"],
};
/// heap_5 as [`H5`], with the tree index.
pub const H5_TREE: Config = Config {
    name: "h5tree",
    features: "heap_5,tree-index,malloc-failed-hook,assert-hook,heap-protector,clear-on-free",
    defines: &["-DRTOS_HEAP_5", "-DTREE_INDEX"],
};
/// heap_4 with the library's own `ucHeap`, no hooks, and a critical section instead of the kernel.
pub const H4_CS: Config = Config {
    name: "h4cs",
    features: "heap_4,critical-section,critical-section/std",
    defines: &["-DRTOS_HEAP_4", "-DNO_KERNEL"],
};

static BUILD: Mutex<()> = Mutex::new(());

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(crate_dir())
        .env("RTOS_HEAP_TOTAL_HEAP_SIZE", "65536")
        .env_remove("RTOS_HEAP_BYTE_ALIGNMENT")
        .env_remove("RTOS_HEAP_MAX_REGIONS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS");
    c
}

/// Builds the static library of `cfg` (profile `ffi-release`, panic = abort) and returns the path
/// of its own copy of `librtos_heap_ffi.a`. Builds are serialised: they share one target folder.
pub fn library(cfg: Config) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let work = work_dir();
    let lib_dir = work.join(format!("lib-{}", cfg.name));
    std::fs::create_dir_all(&lib_dir).unwrap();
    let target = work.join("target");
    run(cargo()
        .args([
            "build",
            "--quiet",
            "-p",
            "rtos-heap-ffi",
            "--lib",
            "--profile",
            "ffi-release",
        ])
        .args(["--no-default-features", "--features", cfg.features])
        .arg("--target-dir")
        .arg(&target));
    let lib = lib_dir.join("librtos_heap_ffi.a");
    // Copy, then rename over the old copy: another test of the same configuration may be linking
    // against it right now (the lock covers the build, not the link), and must never read a
    // half-written archive. The rename swaps the file whole; a reader keeps the one it opened.
    let tmp = lib_dir.join(format!("librtos_heap_ffi.a.{}.tmp", std::process::id()));
    std::fs::copy(target.join("ffi-release/librtos_heap_ffi.a"), &tmp).unwrap();
    std::fs::rename(&tmp, &lib).unwrap();
    lib
}

/// `cargo check` of the library with `features` (default features on); the captured output.
pub fn check_features(features: &str) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    cargo()
        .args([
            "check",
            "--quiet",
            "-p",
            "rtos-heap-ffi",
            "--lib",
            "--features",
            features,
        ])
        .arg("--target-dir")
        .arg(work_dir().join("target-check"))
        .output()
        .expect("run cargo check")
}

/// Compiles `tests/c/<source>` against the library of `cfg` into an executable.
pub fn compile(cfg: Config, source: &str, extra: &[&str]) -> PathBuf {
    let lib = library(cfg);
    let dir = crate_dir();
    let exe = work_dir().join(format!("{}-{}", cfg.name, source.trim_end_matches(".c")));
    let cc = std::env::var_os("CC").unwrap_or_else(|| "gcc".into());
    run(Command::new(cc)
        .args([
            "-std=c11",
            "-D_DEFAULT_SOURCE",
            "-O1",
            "-g",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .args(cfg.defines)
        .args(extra)
        .arg("-I")
        .arg(dir.join("include"))
        .arg("-I")
        .arg(dir.join("tests/c"))
        .arg(dir.join("tests/c").join(source))
        .arg(&lib)
        // --gc-sections as every firmware link: see docs/c-abi.md ("Linking").
        .args([
            "-Wl,--gc-sections",
            "-lpthread",
            "-ldl",
            "-lm",
            "-lgcc_s",
            "-o",
        ])
        .arg(&exe));
    exe
}

/// Runs a test program; panics (with its output) unless it succeeds. Returns its stdout.
pub fn run_program(exe: &Path, args: &[&str]) -> String {
    let out = run(Command::new(exe).args(args));
    String::from_utf8(out.stdout).unwrap()
}

/// Whether valgrind runs here. Without it the memcheck runs are skipped with a notice, unless
/// `RTOS_HEAP_REQUIRE_VALGRIND` is set (then they fail).
pub fn valgrind_available() -> bool {
    let ok = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("RTOS_HEAP_REQUIRE_VALGRIND").is_some() {
            panic!("RTOS_HEAP_REQUIRE_VALGRIND is set but valgrind does not run");
        }
        eprintln!("skipped: valgrind not found (the memcheck runs of the C tests)");
    }
    ok
}

/// Runs a test program under valgrind memcheck: any memory error fails the test.
pub fn memcheck(exe: &Path, args: &[&str]) -> String {
    let out = run(Command::new("valgrind")
        .args([
            "--quiet",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(exe)
        .args(args));
    String::from_utf8(out.stdout).unwrap()
}
