//! `rtos-heap inspect --elf`: a real program running FreeRTOS's heap_4.c (built from
//! `../shared/reference/freertos` with gcc, 64- and 32-bit, at test time), its heap read by symbol
//! from a gdb core file and from a raw dump of `ucHeap`; everything must agree with what the heap
//! itself reported. Needs gcc (with multilib for 32-bit) and gdb: ignored without them or without
//! `../shared` (see `build.rs`), unless `RTOS_HEAP_REQUIRE_SHARED` is set (as `.ci/run` does,
//! installing both).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::{bin, shared_dir};
use serde_json::Value;

/// The build script ignores this test without gcc or gdb; one gone since is a failure.
fn need(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is needed (install it, or let the build script see it is missing)"
    );
}

/// Builds and runs the program; returns what the heap reported and the live payload offsets.
fn run_app(dir: &Path, shared: &Path, bits: u32) -> Option<(HashMap<String, u64>, Vec<u64>)> {
    let reference = shared.join("reference/freertos");
    let exe = dir.join(format!("app{bits}"));
    let out = Command::new("gcc")
        .arg(format!("-m{bits}"))
        .args(["-O1", "-g", "-no-pie", "-DconfigTOTAL_HEAP_SIZE=32768"])
        .arg(format!("-I{}", reference.join("inc").display()))
        .arg(format!("-I{}", reference.display()))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/heap_app.c"))
        .arg(reference.join("heap_4.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if bits == 32 && std::env::var_os("RTOS_HEAP_REQUIRE_SHARED").is_none() {
            eprintln!("skipped: no 32-bit gcc (gcc-multilib): {err}");
            return None;
        }
        panic!("gcc -m{bits} failed: {err}");
    }
    let stats = dir.join(format!("stats{bits}"));
    let raw = dir.join(format!("raw{bits}"));
    let core = dir.join(format!("core{bits}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/dump-heap.gdb");
    // Run under gdb: stop at dump_point(), dump the heap with the repository's gdb script, and
    // write a core file.
    let out = Command::new("gdb")
        .args(["-batch", "-nx", "-ex"])
        .arg(format!("source {}", script.display()))
        .args(["-ex", "break dump_point", "-ex"])
        .arg(format!("run {} {}", stats.display(), raw.display()))
        .arg("-ex")
        .arg(format!(
            "dump-heap {}",
            dir.join(format!("gdb{bits}.bin")).display()
        ))
        .arg("-ex")
        .arg(format!("gcore {}", core.display()))
        .args(["-ex", "kill"])
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        core.exists(),
        "gdb wrote no core: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&stats).unwrap();
    let mut reported = HashMap::new();
    let mut live = Vec::new();
    for line in text.lines() {
        if let Some(off) = line.strip_prefix("live ") {
            live.push(off.parse().unwrap());
        } else {
            for kv in line.split_whitespace() {
                let (k, v) = kv.split_once('=').unwrap();
                reported.insert(k.to_string(), v.parse().unwrap());
            }
        }
    }
    live.sort();
    Some((reported, live))
}

fn inspect(args: &[&str]) -> Value {
    let out = bin()
        .arg("inspect")
        .args(args)
        .arg("--json")
        .assert()
        .success()
        .get_output()
        .clone();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[cfg_attr(
    any(shared_absent, gdb_absent),
    ignore = "needs ../shared, gcc (with gcc-multilib) and gdb"
)]
fn core_file_and_raw_dump_read_by_the_firmwares_symbols() {
    let shared = shared_dir();
    need("gcc");
    need("gdb");
    let dir = tempfile::tempdir().unwrap();
    for (bits, header) in [(64, 16), (32, 8)] {
        let Some((reported, live)) = run_app(dir.path(), &shared, bits) else {
            continue;
        };
        let exe = dir.path().join(format!("app{bits}"));
        let exe = exe.to_str().unwrap();
        // The core file: the heap and its statics, so every statistic, counters included.
        let core = dir.path().join(format!("core{bits}"));
        let v = inspect(&[core.to_str().unwrap(), "--elf", exe]);
        assert_eq!(
            v["findings"].as_array().unwrap().len(),
            0,
            "{bits}: {}",
            v["findings"]
        );
        assert_eq!(v["head_source"], "xStart.pxNextFreeBlock");
        for (k, want) in &reported {
            assert_eq!(v["stats"][k].as_u64(), Some(*want), "{bits}-bit core: {k}");
        }
        let allocated: Vec<u64> = v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["kind"] == "allocated")
            .map(|b| b["offset"].as_u64().unwrap() + header)
            .collect();
        assert_eq!(
            allocated, live,
            "{bits}-bit: the allocated blocks are the live pointers"
        );
        // The raw dump of ucHeap: placed by the symbol; the walk's statistics, no counters.
        let raw = dir.path().join(format!("raw{bits}"));
        let r = inspect(&[raw.to_str().unwrap(), "--elf", exe]);
        assert_eq!(
            r["blocks"], v["blocks"],
            "{bits}-bit: raw dump and core agree"
        );
        assert_eq!(
            r["stats"]["xSizeOfLargestFreeBlockInBytes"].as_u64(),
            Some(reported["xSizeOfLargestFreeBlockInBytes"])
        );
        assert!(r["stats"]["xNumberOfSuccessfulAllocations"].is_null());
        // tools/dump-heap.gdb: its dump and facts file, without the ELF.
        let g = dir.path().join(format!("gdb{bits}.bin"));
        let facts = dir.path().join(format!("gdb{bits}.bin.facts"));
        let d = inspect(&[g.to_str().unwrap(), "--facts", facts.to_str().unwrap()]);
        assert_eq!(
            d["blocks"], v["blocks"],
            "{bits}-bit: the gdb script's dump"
        );
        assert_eq!(d["free_list"], v["free_list"]);
        assert_eq!(d["head_source"], "xStart.pxNextFreeBlock");
    }
}
