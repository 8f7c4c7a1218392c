//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rtos_heap_workloads::Rng;

/// `../shared` next to the repository (or `RTOS_HEAP_SHARED`). Tests that call it carry
/// `#[cfg_attr(shared_absent, ignore = …)]`, so they only run when the build script found it;
/// a folder gone since then is a failure, never a silent pass.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("RTOS_HEAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("traces").is_dir(),
        "{} has no traces/ (set RTOS_HEAP_SHARED)",
        dir.display()
    );
    dir
}

/// The `rtos-heap` binary.
pub fn bin() -> Command {
    Command::cargo_bin("rtos-heap").expect("binary built")
}

/// Writes `text` to `name` in `dir`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write test file");
    p
}

/// A random id trace: `steps` operations, sizes 1..=max (some larger), about `p_alloc` allocations.
pub fn id_trace(seed: u64, steps: usize, max: u64, p_alloc: f64) -> String {
    let mut rng = Rng::new(seed);
    let mut live: Vec<u64> = Vec::new();
    let mut next = 0u64;
    let mut s = String::from("# generated id trace\n");
    for _ in 0..steps {
        if live.is_empty() || rng.unit() < p_alloc {
            let size = if rng.unit() < 0.1 {
                rng.range(max, 4 * max)
            } else {
                rng.range(1, max)
            };
            s.push_str(&format!("a {next} {size}\n"));
            live.push(next);
            next += 1;
        } else {
            let k = rng.below(live.len() as u64) as usize;
            s.push_str(&format!("f {}\n", live.swap_remove(k)));
        }
    }
    s
}

/// Runs the binary with `args` and parses its stdout as JSON. The exit status must be 0, or for
/// `replay` 1 exactly when an allocation failed in some replay (docs/cli.md, exit codes).
pub fn json(args: &[&str]) -> serde_json::Value {
    let out = bin().args(args).arg("--json").output().expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: stderr: {}", String::from_utf8_lossy(&out.stderr)));
    let failed = args.first() == Some(&"replay")
        && v["replays"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["failed_allocs"].as_u64() != Some(0)));
    assert_eq!(
        out.status.code(),
        Some(i32::from(failed)),
        "exit status of {args:?}"
    );
    v
}
