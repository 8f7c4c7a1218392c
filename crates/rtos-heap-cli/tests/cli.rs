//! The `rtos-heap` binary on generated traces: every command, JSON output checked against direct
//! library calls, placements, hook-log conversion and every malformed-input case.

mod common;

use std::path::Path;

use common::{bin, id_trace, json, write};
use predicates::prelude::*;
use rtos_heap_cli::layout::{Layout, Preset, Scheme};
use rtos_heap_cli::replay::{ReplayOptions, replay_ops};
use rtos_heap_cli::sim::{HeapSpec, build};
use rtos_heap_cli::trace::{Op, ParseOptions, TraceReader};

fn ops_of(path: &Path) -> Vec<Op> {
    let text = std::fs::read_to_string(path).unwrap();
    TraceReader::new(text.as_bytes(), "t", ParseOptions::default())
        .read_all()
        .unwrap()
}

fn direct(
    scheme: Scheme,
    layout: Layout,
    regions: Vec<usize>,
    ops: &[Op],
) -> rtos_heap_cli::replay::ReplayResult {
    let spec = HeapSpec {
        scheme,
        layout,
        regions,
    };
    let mut h = build(&spec).unwrap();
    replay_ops(h.as_mut(), ops, &ReplayOptions::default(), None).unwrap()
}

fn scheme_of(v: &serde_json::Value) -> Scheme {
    match v["scheme"].as_str().unwrap() {
        "heap1" => Scheme::Heap1,
        "heap2" => Scheme::Heap2,
        "heap3" => Scheme::Heap3,
        "heap4" => Scheme::Heap4,
        "heap5" => Scheme::Heap5,
        s => panic!("scheme {s}"),
    }
}

fn u(v: &serde_json::Value) -> usize {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}")) as usize
}

#[test]
fn no_arguments_runs_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    bin()
        .env("TMPDIR", dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("workload: rtos"))
        .stdout(predicate::str::contains("heap_4"))
        .stdout(predicate::str::contains("configTOTAL_HEAP_SIZE"))
        .stdout(predicate::str::contains("Report written to"));
    let report = std::fs::read_to_string(dir.path().join("rtos-heap-demo.html")).unwrap();
    assert!(report.contains("<svg class=\"heap-map\""));
}

#[test]
fn demo_json_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.html");
    let v = json(&["demo", "--report", report.to_str().unwrap()]);
    let w = rtos_heap_workloads::rtos();
    let ops = rtos_heap_cli::trace::from_workload(&w);
    let layout = Preset::CortexM.layout();
    let replays = v["replays"].as_array().unwrap();
    assert_eq!(replays.len(), 5);
    for r in replays {
        let d = direct(scheme_of(r), layout, vec![w.heap_size], &ops);
        assert_eq!(u(&r["peak_used"]), d.peak_used);
        assert_eq!(u(&r["min_ever_free"]), d.min_ever_free);
        assert_eq!(u(&r["failed_allocs"]), d.failed_allocs as usize);
        assert_eq!(u(&r["stats"]["free_blocks"]), d.stats.free_blocks);
        assert_eq!(u(&r["stats"]["available_bytes"]), d.stats.available_bytes);
    }
    // heap_4 at the workload's 96 KiB: no failure (workloads.md: the peak request is ~70.5 KB).
    let h4 = replays.iter().find(|r| r["scheme"] == "heap4").unwrap();
    assert!(h4["first_failure"].is_null());
    assert!(std::fs::metadata(&report).unwrap().len() > 10_000);
}

#[test]
fn replay_json_matches_the_library_for_every_scheme_and_target() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.ids", &id_trace(11, 3000, 200, 0.55));
    let ops = ops_of(&trace);
    for (target, layout) in [
        ("cortex-m", Preset::CortexM.layout()),
        ("x86-64", Preset::X86_64.layout()),
        ("aarch64", Preset::Aarch64.layout()),
    ] {
        let v = json(&[
            "replay",
            trace.to_str().unwrap(),
            "--heap-size",
            "6K",
            "--target",
            target,
        ]);
        assert_eq!(u(&v["trace"]["ops"]), ops.len());
        for r in v["replays"].as_array().unwrap() {
            let d = direct(scheme_of(r), layout, vec![6144], &ops);
            assert_eq!(u(&r["peak_used"]), d.peak_used, "{target} {}", r["scheme"]);
            assert_eq!(u(&r["failed_allocs"]), d.failed_allocs as usize);
            assert_eq!(u(&r["largest_free_end"]), d.largest_free_end);
            assert_eq!(u(&r["stats"]["min_ever_free"]), d.stats.min_ever_free);
            assert_eq!(u(&r["stats"]["successful_frees"]), d.stats.successful_frees);
            assert_eq!(r["layout"]["word"], layout.word);
            match (&r["first_failure"], &d.first_failure) {
                (serde_json::Value::Null, None) => {}
                (f, Some(df)) => assert_eq!(u(&f["line"]), df.line as usize),
                (f, None) => panic!("unexpected failure {f}"),
            }
        }
    }
}

#[test]
fn explicit_word_bits_and_alignment_override_the_preset() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.ids", "a 0 1\na 1 9\n");
    let v = json(&[
        "replay",
        trace.to_str().unwrap(),
        "--heap-size",
        "1K",
        "--scheme",
        "heap4",
        "--word-bits",
        "64",
        "--alignment",
        "16",
    ]);
    let r = &v["replays"][0];
    assert_eq!((u(&r["layout"]["word"]), u(&r["layout"]["align"])), (8, 16));
    // Header 16; round_up(1 + 16, 16) = 32 and round_up(9 + 16, 16) = 32.
    assert_eq!(u(&r["peak_used"]), 64);
}

#[test]
fn placements_match_the_library_and_mark_failures() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.ids", &id_trace(12, 2000, 300, 0.6));
    let ops = ops_of(&trace);
    let layout = Preset::CortexM.layout();
    for (scheme, args) in [
        ("heap4", vec!["--heap-size", "4K"]),
        ("heap5", vec!["--regions", "1K,3K"]),
    ] {
        let out = dir.path().join(format!("{scheme}.txt"));
        let mut cmd = bin();
        cmd.args([
            "replay",
            trace.to_str().unwrap(),
            "--scheme",
            scheme,
            "--placements",
        ])
        .arg(&out)
        .args(&args);
        let status = cmd.output().unwrap().status;
        let got = std::fs::read_to_string(&out).unwrap();
        let failed = got.lines().any(|l| l == "-1");
        assert_eq!(
            status.code(),
            Some(i32::from(failed)),
            "exit 1 exactly when one failed"
        );
        let (s, regions) = if scheme == "heap4" {
            (Scheme::Heap4, vec![4096])
        } else {
            (Scheme::Heap5, vec![1024, 3072])
        };
        let mut h = build(&HeapSpec {
            scheme: s,
            layout,
            regions,
        })
        .unwrap();
        let mut want = Vec::new();
        let r = replay_ops(h.as_mut(), &ops, &ReplayOptions::default(), Some(&mut want)).unwrap();
        assert_eq!(got, String::from_utf8(want).unwrap());
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len() as u64, r.allocs);
        // Both successes and failures occur in this trace at this size.
        assert!(r.failed_allocs > 0 && r.failed_allocs < r.allocs);
        assert_eq!(
            lines.iter().filter(|l| **l == "-1").count() as u64,
            r.failed_allocs
        );
        if scheme == "heap5" {
            assert!(
                lines.iter().any(|l| l.starts_with("0 "))
                    && lines.iter().any(|l| l.starts_with("1 "))
            );
        }
    }
}

#[test]
fn size_answer_is_rechecked_at_that_size_and_just_below() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.ids", &id_trace(13, 4000, 160, 0.52));
    let ops = ops_of(&trace);
    for (target, layout) in [
        ("cortex-m", Preset::CortexM.layout()),
        ("x86-64", Preset::X86_64.layout()),
    ] {
        let v = json(&[
            "size",
            trace.to_str().unwrap(),
            "--target",
            target,
            "--margin",
            "20",
        ]);
        for s in v["sizes"].as_array().unwrap() {
            let scheme = scheme_of(s);
            let min = u(&s["minimum"]);
            let clean = |size: usize| {
                let r = direct(scheme, layout, vec![size], &ops);
                r.failed_allocs == r.size_independent_failures
            };
            assert!(clean(min), "{target} {scheme}: minimum {min} fails");
            assert!(
                !clean(min - 1),
                "{target} {scheme}: one byte less ({}) runs clean",
                min - 1
            );
            assert!(
                !clean(min - layout.align),
                "{target} {scheme}: one alignment step less runs clean"
            );
            let rec = u(&s["recommended"]);
            assert!(rec as f64 >= min as f64 * 1.2 && rec % 1024 == 0);
            assert!(clean(rec));
            for r in s["failing_above_minimum"].as_array().unwrap() {
                assert!(!clean(u(&r["from"])) && !clean(u(&r["to"])));
            }
        }
    }
}

#[test]
fn compare_at_one_size_and_at_each_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.ids", &id_trace(14, 1500, 120, 0.55));
    let v = json(&["compare", trace.to_str().unwrap(), "--heap-size", "3K"]);
    let rs = v["replays"].as_array().unwrap();
    assert_eq!(rs.len(), 5);
    assert!(rs.iter().all(|r| u(&r["heap_size"]) == 3072));
    let v = json(&["compare", trace.to_str().unwrap()]);
    let sizes = v["sizes"].as_array().unwrap();
    for r in v["replays"].as_array().unwrap() {
        let s = sizes.iter().find(|s| s["scheme"] == r["scheme"]).unwrap();
        assert_eq!(u(&r["heap_size"]), u(&s["minimum"]));
        assert_eq!(u(&r["failed_allocs"]), u(&r["size_independent_failures"]));
    }
    bin()
        .args(["compare", trace.to_str().unwrap(), "--heap-size", "3K"])
        .assert()
        .success()
        .stdout(predicate::str::contains("heap_1").and(predicate::str::contains("heap_5")));
}

/// A heap_4 "device": replays a trace and writes the hook log FreeRTOS V11 would print (block
/// sizes). Replaying that log must reproduce every address: the conversion is exact for the same
/// scheme and layout.
#[test]
fn hook_log_replay_reproduces_the_device_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let text = id_trace(15, 3000, 250, 0.55);
    let ops = TraceReader::new(text.as_bytes(), "t", ParseOptions::default())
        .read_all()
        .unwrap();
    for (target, layout, scheme, name) in [
        ("cortex-m", Preset::CortexM.layout(), Scheme::Heap4, "heap4"),
        ("x86-64", Preset::X86_64.layout(), Scheme::Heap4, "heap4"),
        ("cortex-m", Preset::CortexM.layout(), Scheme::Heap2, "heap2"),
    ] {
        let mut dev = build(&HeapSpec::single(scheme, layout, 1 << 20)).unwrap();
        let base = 0x2000_0000usize;
        let mut table = vec![(0usize, 0usize); 4096];
        let mut log = String::new();
        let mut offsets = Vec::new();
        for op in &ops {
            let slot = op.slot as usize;
            match op.kind {
                rtos_heap_cli::trace::OpKind::Alloc { size, .. } => {
                    let before = dev.free_bytes();
                    let before = if before == 0 { dev.capacity() } else { before };
                    let a = dev.alloc(size, 0).unwrap();
                    let block = before - dev.free_bytes();
                    let (_, off) = dev.locate(a);
                    table[slot] = (a, block);
                    offsets.push(off.to_string());
                    log.push_str(&format!("malloc 0x{:x} {block}\n", base + off));
                }
                rtos_heap_cli::trace::OpKind::Free => {
                    let (a, block) = table[slot];
                    let (_, off) = dev.locate(a);
                    dev.free(a).unwrap();
                    log.push_str(&format!("free 0x{:x} {block}\n", base + off));
                }
            }
        }
        let log_path = write(dir.path(), "hook.log", &log);
        let out = dir.path().join("p.txt");
        bin()
            .args([
                "replay",
                log_path.to_str().unwrap(),
                "--heap-size",
                "1M",
                "--target",
                target,
                "--scheme",
                name,
                "--placements",
            ])
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::contains("converted from block sizes"));
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(got.lines().collect::<Vec<_>>(), offsets, "{target} {name}");
    }
}

#[test]
fn free_of_an_unknown_address_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(
        dir.path(),
        "h.log",
        "malloc 0x100 24\nfree 0x999 24\nfree 0x100 24\n",
    );
    bin()
        .args([
            "replay",
            t.to_str().unwrap(),
            "--heap-size",
            "1K",
            "--scheme",
            "heap4",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 free of unknown addresses"))
        .stdout(predicate::str::contains("h.log:2: free of address 0x999"));
}

fn assert_parse_error(text: &[u8], line: u64, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.trace");
    std::fs::write(&p, text).unwrap();
    let want = format!("{}:{line}: expected ", p.display());
    for cmd in ["replay", "size", "compare"] {
        let mut c = bin();
        c.arg(cmd).arg(&p);
        if cmd == "replay" {
            c.args(["--heap-size", "4K"]);
        }
        c.assert()
            .failure()
            .code(2)
            .stderr(predicate::str::contains(want.clone()))
            .stderr(predicate::str::contains(expected))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn every_malformed_input_names_file_line_and_expectation() {
    assert_parse_error(b"a 0 10\nb 1 2\n", 2, "`a <id> <size> [align]` or `f <id>`");
    assert_parse_error(b"a x 10\n", 1, "an allocation id");
    assert_parse_error(b"a 0 -5\n", 1, "a size in bytes");
    assert_parse_error(b"a 0 5 6\n", 1, "an alignment: a power of two");
    assert_parse_error(b"a 0 5\na 0 6\n", 2, "an id that is not live");
    assert_parse_error(b"a 0 5\nf\n", 2, "`a <id> <size> [align]` or `f <id>`");
    assert_parse_error(b"# only a comment\nhello\n", 2, "a trace line");
    assert_parse_error(b"malloc 0xZZ 16\n", 1, "a hexadecimal address");
    assert_parse_error(
        b"malloc 0x10 16\nmalloc 0x20\n",
        2,
        "`malloc <hex address> <size>`",
    );
    assert_parse_error(b"malloc 0x10 3\n", 1, "a block size");
    assert_parse_error(
        b"malloc 0x10 5 24 0\nfree 0x10 5 24 t\n",
        2,
        "the tick count",
    );
    assert_parse_error(
        b"malloc 0x10 5 24 0\nmalloc 0x30 x 24 0\n",
        2,
        "the requested size",
    );
    assert_parse_error(b"a 0 5\n\xff\xfe\n", 2, "UTF-8 text");
}

#[test]
fn bad_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "t.ids", "a 0 5\n");
    let p = t.to_str().unwrap();
    bin()
        .args(["replay", p])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("give --heap-size"));
    bin()
        .args(["replay", "/nonexistent/x"])
        .args(["--heap-size", "1K"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot open /nonexistent/x"));
    bin()
        .args(["replay", p, "--heap-size", "1K", "--word-bits", "16"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--word-bits must be 32 or 64"));
    bin()
        .args(["replay", p, "--heap-size", "1K", "--placements", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("exactly one --scheme"));
    bin()
        .args([
            "replay",
            p,
            "--heap-size",
            "1K",
            "--scheme",
            "heap3",
            "--placements",
            "x",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("heap_3 has no placements"));
    bin()
        .args(["replay", p, "--heap-size", "12Q"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a byte count"));
    bin()
        .args(["replay", p, "--heap-size", "8", "--scheme", "heap4"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot use 8 bytes"));
}

#[test]
fn report_has_maps_and_series_for_every_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "t.ids", &id_trace(16, 1000, 150, 0.55));
    let out = dir.path().join("r.html");
    bin()
        .args([
            "replay",
            t.to_str().unwrap(),
            "--heap-size",
            "2K",
            "--report",
        ])
        .arg(&out)
        .assert()
        .code(1); // heap_1 runs out at 2K: the trace did not run there
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    for s in ["heap_1", "heap_2", "heap_4", "heap_5"] {
        assert!(html.contains(&format!("id=\"map-{s}-0\"")), "{s} map");
        assert!(html.contains(&format!("id=\"series-{s}\"")), "{s} series");
    }
    // 2 KiB is too small for this trace: maps are taken at the first failure and at the end.
    assert!(html.contains("Heap map: first failure"));
}

/// Options that cannot mean anything are usage errors (exit 2), each with a message naming it.
#[test]
fn nonsense_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ids = write(dir.path(), "t.ids", "a 0 100\na 1 50\nf 0\n");
    let hook = write(dir.path(), "h.log", "malloc 0x1000 120\nfree 0x1000 120\n");
    let t = ids.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["size", t, "--margin", "1000000000000"], "--margin"),
        (&["size", t, "--margin=-5"], "--margin"),
        (&["size", t, "--max-replays", "0"], "--max-replays"),
        (&["size", t, "--time-limit", "0"], "--time-limit"),
        (&["compare", t, "--time-limit", "nan"], "--time-limit"),
        (
            &["replay", t, "--scheme", "heap4", "--regions", "1K,2K"],
            "--regions is for heap_5",
        ),
        (
            &["size", t, "--scheme", "heap4", "--regions", "1K"],
            "--regions is for heap_5",
        ),
        (
            &[
                "replay",
                t,
                "--scheme",
                "heap5",
                "--regions",
                "1K,2K",
                "--heap-size",
                "4K",
            ],
            "not both",
        ),
        (
            &[
                "replay",
                t,
                "--heap-size",
                "4K",
                "--size-field",
                "requested",
            ],
            "--size-field is for hook logs",
        ),
    ];
    for (args, msg) in cases {
        bin()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
    }
    bin()
        .args(["replay", t, "--heap-size", "4K", "--log-target", "x86-64"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--log-target is for hook logs"));
    // On a hook log they are fine.
    bin()
        .args([
            "replay",
            hook.to_str().unwrap(),
            "--heap-size",
            "4K",
            "--size-field",
            "block",
        ])
        .assert()
        .success();
}

#[test]
fn a_trace_with_nothing_to_replay_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "e.ids", "# only a comment\n\n");
    for cmd in ["size", "replay", "compare"] {
        let mut c = bin();
        c.args([cmd, empty.to_str().unwrap(), "--heap-size", "4K"]);
        if cmd == "size" {
            c = bin();
            c.args([cmd, empty.to_str().unwrap()]);
        }
        c.assert()
            .code(2)
            .stderr(predicate::str::contains("no allocation or free"));
    }
}

/// Errors and warnings say each thing once, in the trace's own terms, on one line.
#[test]
fn messages_read_well() {
    let dir = tempfile::tempdir().unwrap();
    // A directory: the cause once.
    let out = bin()
        .args(["size", dir.path().to_str().unwrap()])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(err.matches("Is a directory").count(), 1, "{err}");
    // A region too small: the reason once.
    let t = write(dir.path(), "t.ids", "a 0 100\nf 7\n");
    let out = bin()
        .args([
            "replay",
            t.to_str().unwrap(),
            "--scheme",
            "heap5",
            "--regions",
            "10",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(err.matches("too small").count(), 1, "{err}");
    // An unknown id is printed as the id it is.
    bin()
        .args([
            "replay",
            t.to_str().unwrap(),
            "--heap-size",
            "1K",
            "--scheme",
            "heap4",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("free of id 7, which is not live"))
        .stdout(predicate::str::contains("0x7").not())
        .stdout(predicate::str::contains("1 free of unknown"));
    // A NUL byte is escaped, and the message is one line.
    let nul = write(dir.path(), "n.ids", "a 0 10\0x\n");
    let out = bin()
        .args(["replay", nul.to_str().unwrap(), "--heap-size", "1K"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("\\u{0}") && !err.contains('\0'), "{err:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
}

#[test]
fn size_fails_on_unproven_minima_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "t.ids", &id_trace(5, 3000, 300, 0.55));
    let args = [
        "size",
        t.to_str().unwrap(),
        "--scheme",
        "heap2",
        "--max-replays",
        "1",
    ];
    let v = json(&args);
    assert!(
        v["sizes"][0]["result"]["minimum"].is_null(),
        "one replay proves nothing"
    );
    bin().args(args).arg("--fail-unproven").assert().code(1);
}

/// A request no heap of the layout can serve: no size, no recommendation, exit 1.
#[test]
fn a_request_that_never_fits_has_no_heap_size() {
    let dir = tempfile::tempdir().unwrap();
    for (text, target, bytes) in [
        (
            "a 0 100\na 1 4294967296\n",
            "cortex-m",
            "4,294,967,296 bytes",
        ),
        (
            "a 0 100\na 1 18446744073709551615\n",
            "x86-64",
            "18,446,744,073,709,551,615 bytes",
        ),
    ] {
        let t = write(dir.path(), "t.ids", text);
        bin()
            .args([
                "size",
                t.to_str().unwrap(),
                "--scheme",
                "heap4",
                "--target",
                target,
            ])
            .assert()
            .code(1)
            .stdout(predicate::str::contains("never (line 2)"))
            .stdout(predicate::str::contains(format!("line 2 asks for {bytes}")))
            .stdout(predicate::str::contains("#define").not());
    }
}
