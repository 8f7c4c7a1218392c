//! Instruction counts under `valgrind --tool=callgrind`.
//!
//! Method: `bench-driver measure <allocator> <workload>` builds a fresh subject, replays the
//! untimed set-up, then calls [`replay_timed`](crate::replay::replay_timed) once. Callgrind runs
//! with `--toggle-collect=*replay_timed*` (ladder: `*replay_ladder_timed*`), so only instructions
//! executed inside that function and everything it calls are counted: workload generation,
//! region allocation and set-up are not. The same run with the no-op allocator gives the cost of
//! the loop itself (reading the operation, one non-inlined call, keeping the pointer), which is
//! subtracted:
//!
//! `instructions per op = (Ir(allocator) - Ir(no-op)) / operations`.
//!
//! `callgrind_annotate --inclusive=yes` then splits the count between the allocator's `alloc` and
//! `free` wrappers (and, for the ladder, between the four operations of a round).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Counts of one callgrind run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// Instructions executed while collection was on (the timed replay).
    pub total: u64,
    /// Inclusive instructions of the allocator's `alloc` wrapper.
    pub alloc: u64,
    /// Inclusive instructions of the allocator's `free` wrapper.
    pub free: u64,
    /// Ladder only: inclusive instructions of `ladder_op0` … `ladder_op3`.
    pub ladder: [u64; 4],
}

/// Runs `driver measure <kind> <workload>` under callgrind and reads its counts. `scratch` is a
/// directory for the output file.
pub fn run(driver: &Path, kind: &str, workload: &str, scratch: &Path) -> Result<Run> {
    let out = scratch.join(format!("callgrind.{kind}.{workload}.out"));
    let toggle = if crate::is_ladder(workload) {
        "*replay_ladder_timed*"
    } else {
        "*replay_timed*"
    };
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(format!("--toggle-collect={toggle}"))
        .arg("--quiet")
        .arg(driver)
        .args(["measure", kind, workload])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running valgrind (is it installed?)")?;
    if !status.success() {
        bail!("valgrind failed on {kind} {workload}: {status}");
    }
    let text =
        std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    let total = totals(&text).context("no totals in callgrind output")?;
    let annotate = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(&out)
        .output()
        .context("running callgrind_annotate")?;
    if !annotate.status.success() {
        bail!("callgrind_annotate failed on {}", out.display());
    }
    let listing = String::from_utf8_lossy(&annotate.stdout);
    let f = functions(&listing);
    let find = |pred: &dyn Fn(&str) -> bool| -> u64 {
        f.iter()
            .filter(|(n, _)| pred(n))
            .map(|(_, c)| *c)
            .max()
            .unwrap_or(0)
    };
    let mut ladder = [0; 4];
    for (i, l) in ladder.iter_mut().enumerate() {
        let name = format!("replay::ladder_op{i}");
        *l = find(&|n| n.contains(&name));
    }
    let run = Run {
        total,
        alloc: find(&|n| n.ends_with("BenchAlloc>::alloc")),
        free: find(&|n| n.ends_with("BenchAlloc>::free")),
        ladder,
    };
    let _ = std::fs::remove_file(&out);
    Ok(run)
}

/// The `totals:` (or `summary:`) line of a callgrind output file.
pub fn totals(text: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .next_back()
}

/// The function lines of a `callgrind_annotate` listing: (function name, instructions).
pub fn functions(listing: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for line in listing.lines() {
        let t = line.trim_start();
        let Some((num, rest)) = t.split_once(' ') else {
            continue;
        };
        if !num.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let Ok(n) = num.replace(',', "").parse::<u64>() else {
            continue;
        };
        let rest = rest.trim_start();
        // Skip a "(12.3%)" column if present.
        let rest = match rest.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or(r, |(_, x)| x).trim_start(),
            None => rest,
        };
        // "file:function [object]"; the file part has no ':' (or is "???").
        let rest = rest.rsplit_once(" [").map_or(rest, |(a, _)| a);
        let Some((_, func)) = rest.split_once(':') else {
            continue;
        };
        out.push((func.to_string(), n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_totals_and_functions() {
        let out = "events: Ir\nfn=(1) main\n1 2\ntotals: 123456\n";
        assert_eq!(totals(out), Some(123_456));
        let listing = "\
--------------------------------------------------------------------------------
Ir                  file:function
--------------------------------------------------------------------------------
1,234,567 (100.0%)  ???:rtos_heap_bench::replay::replay_timed [/x/bench-driver]
  600,000 (48.60%)  ???:<rtos_heap_bench::subjects::TalcSubject as rtos_heap_bench::subjects::BenchAlloc>::alloc [/x/bench-driver]
";
        let f = functions(listing);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0],
            (
                "rtos_heap_bench::replay::replay_timed".to_string(),
                1_234_567
            )
        );
        assert_eq!(f[1].1, 600_000);
        assert!(f[1].0.ends_with("BenchAlloc>::alloc"));
    }
}
