//! The default output: readable tables.

use std::io::{self, Write};

use super::{Exporter, count, thousands};
use crate::layout::Scheme;
use crate::replay::ReplayResult;
use crate::report::{Report, SizeEntry};
use crate::size::SizeRange;

/// Text table exporter.
pub struct Table;

fn pad(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i == 0 {
            s.push_str(&format!("{c:<w$}"));
        } else {
            s.push_str(&format!("  {c:>w$}"));
        }
    }
    s.trim_end().to_string()
}

fn print_table(out: &mut dyn Write, head: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    writeln!(out, "{}", pad(&head, &widths))?;
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    writeln!(out, "{}", pad(&rule, &widths))?;
    for r in rows {
        writeln!(out, "{}", pad(r, &widths))?;
    }
    Ok(())
}

fn heap_cell(r: &ReplayResult) -> String {
    if r.regions.len() > 1 {
        let parts: Vec<String> = r.regions.iter().map(|&s| thousands(s)).collect();
        parts.join("+")
    } else {
        thousands(r.heap_size)
    }
}

fn result_cell(r: &ReplayResult) -> String {
    match &r.first_failure {
        None => "ok".into(),
        Some(f) => format!(
            "{} failed (first: line {}, {} B)",
            thousands(r.failed_allocs as usize),
            thousands(f.line as usize),
            thousands(f.size as usize)
        ),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn ranges(v: &[SizeRange], max: usize) -> String {
    let mut parts: Vec<String> = v
        .iter()
        .take(max)
        .map(|r| {
            if r.from == r.to {
                thousands(r.from)
            } else {
                format!("{}–{}", thousands(r.from), thousands(r.to))
            }
        })
        .collect();
    if v.len() > max {
        parts.push(format!("… ({} ranges in all)", v.len()));
    }
    parts.join(", ")
}

fn write_replays(out: &mut dyn Write, rs: &[ReplayResult]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rs
        .iter()
        .map(|r| {
            vec![
                r.scheme.to_string(),
                heap_cell(r),
                result_cell(r),
                thousands(r.peak_used),
                thousands(r.min_ever_free),
                thousands(r.largest_free_end),
                format!(
                    "{} / {}",
                    pct(r.fragmentation_end),
                    pct(r.max_fragmentation)
                ),
            ]
        })
        .collect();
    print_table(
        out,
        &[
            "scheme",
            "heap bytes",
            "allocations",
            "peak used",
            "min ever free",
            "largest free (end)",
            "fragmentation end / max",
        ],
        &rows,
    )?;
    writeln!(out)?;
    writeln!(out, "Final HeapStats:")?;
    let rows: Vec<Vec<String>> = rs
        .iter()
        .map(|r| {
            let s = &r.stats;
            let smallest = if s.smallest_free_block >= usize::MAX / 2
                || s.smallest_free_block == u32::MAX as usize
            {
                "-".to_string()
            } else {
                thousands(s.smallest_free_block)
            };
            vec![
                r.scheme.to_string(),
                thousands(s.available_bytes),
                thousands(s.largest_free_block),
                smallest,
                thousands(s.free_blocks),
                thousands(s.min_ever_free),
                thousands(s.successful_allocations),
                thousands(s.successful_frees),
                thousands(s.failed_allocations),
            ]
        })
        .collect();
    print_table(
        out,
        &[
            "scheme",
            "available",
            "largest",
            "smallest",
            "free blocks",
            "min ever free",
            "allocations",
            "frees",
            "failed",
        ],
        &rows,
    )?;
    for r in rs {
        if let Some(f) = &r.first_failure {
            writeln!(
                out,
                "{}: first failed allocation at line {} (operation {}): {}{}: {}{}",
                r.scheme,
                thousands(f.line as usize),
                thousands(f.op as usize),
                count(f.size, "byte", "bytes"),
                if f.align > 0 {
                    format!(" aligned to {}", f.align)
                } else {
                    String::new()
                },
                f.reason,
                if f.size_independent {
                    " (fails at any heap size)"
                } else {
                    ""
                }
            )?;
        }
        if r.frees_of_failed > 0 || r.rejected_frees > 0 {
            writeln!(
                out,
                "{}: {} of failed allocations skipped, {} refused",
                r.scheme,
                count(r.frees_of_failed, "free", "frees"),
                count(r.rejected_frees, "free", "frees")
            )?;
        }
    }
    Ok(())
}

/// The minimum, or what is known when the budget ended first.
pub(super) fn min_cell(r: &crate::size::SizeResult) -> String {
    if let Some(n) = r.never_fits {
        return format!("never (line {})", thousands(n.line as usize));
    }
    match (r.minimum, r.verified) {
        (Some(m), _) => thousands(m),
        (None, Some(v)) => format!("≤ {} (not proven)", thousands(v)),
        (None, None) => "not found".into(),
    }
}

fn write_sizes(out: &mut dyn Write, ss: &[SizeEntry], command: &str) -> io::Result<()> {
    let rows: Vec<Vec<String>> = ss
        .iter()
        .map(|e| {
            let r = &e.result;
            vec![
                r.scheme.to_string(),
                min_cell(r),
                r.all_succeed_from.map_or("-".into(), thousands),
                e.recommended.map_or("-".into(), thousands),
                if r.failing_above_minimum.is_empty() {
                    "none".into()
                } else {
                    format!("{} ranges", r.failing_above_minimum.len())
                },
                r.replays.to_string(),
                format!("{:.2} s", e.seconds),
            ]
        })
        .collect();
    print_table(
        out,
        &[
            "scheme",
            "minimum heap",
            "every size from",
            "configTOTAL_HEAP_SIZE",
            "fails above minimum",
            "replays",
            "time",
        ],
        &rows,
    )?;
    if let Some(e) = ss.first() {
        writeln!(
            out,
            "configTOTAL_HEAP_SIZE = max(minimum + {:.0} % margin, every-size-from), rounded up to 1 KiB.",
            e.margin * 100.0
        )?;
    }
    for e in ss {
        let r = &e.result;
        if let Some(n) = r.never_fits {
            writeln!(
                out,
                "{}: line {} asks for {}, more than any heap of a {}-bit target can hand out (pvPortMalloc returns NULL at every size): no heap size runs this trace",
                r.scheme,
                thousands(n.line as usize),
                count(n.size, "byte", "bytes"),
                r.layout.word * 8
            )?;
        }
        if let Some(rec) = e.recommended {
            match r.scheme {
                Scheme::Heap1 | Scheme::Heap2 | Scheme::Heap4 => writeln!(
                    out,
                    "{}: #define configTOTAL_HEAP_SIZE    ( ( size_t ) {rec} )",
                    r.scheme
                )?,
                Scheme::Heap3 => writeln!(
                    out,
                    "heap_3: ignores configTOTAL_HEAP_SIZE; give the C library's heap (linker script) at least {} bytes plus its own per-block overhead",
                    thousands(rec)
                )?,
                Scheme::Heap5 => writeln!(
                    out,
                    "heap_5: ignores configTOTAL_HEAP_SIZE; make the last HeapRegion_t {} bytes",
                    thousands(rec)
                )?,
            }
        }
    }
    for e in ss {
        let r = &e.result;
        if !r.failing_above_minimum.is_empty() {
            writeln!(
                out,
                "{}: sizes above the minimum that fail: {}",
                r.scheme,
                ranges(&r.failing_above_minimum, 8)
            )?;
        }
        if !r.untested.is_empty() {
            writeln!(
                out,
                "{}: not replayed ({}): {}",
                r.scheme,
                if command == "demo" {
                    "the demo's short budget; `rtos-heap size` takes --max-replays and --time-limit"
                } else {
                    "budget: --max-replays, --time-limit"
                },
                ranges(&r.untested, 8)
            )?;
        }
        if r.size_independent_failures > 0 {
            writeln!(
                out,
                "{}: {} at any heap size (zero or oversized requests); not counted as failures here",
                r.scheme,
                count(
                    r.size_independent_failures,
                    "allocation fails",
                    "allocations fail"
                )
            )?;
        }
        if !r.fixed_regions.is_empty() {
            let f: Vec<String> = r.fixed_regions.iter().map(|&s| thousands(s)).collect();
            writeln!(
                out,
                "{}: size of the last region, after fixed regions of {} bytes",
                r.scheme,
                f.join(" + ")
            )?;
        }
    }
    Ok(())
}

impl Exporter for Table {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let t = &report.trace;
        let exact = if t.sizes.exact {
            "sizes exact".to_string()
        } else {
            format!(
                "sizes converted from block sizes: each true request is up to {} bytes below the replayed one",
                t.sizes.below
            )
        };
        let format = t
            .format
            .map_or("generated".to_string(), |f| format!("{f:?}").to_lowercase());
        writeln!(
            out,
            "{}: {} ({} operations, {})",
            report.command,
            t.source,
            thousands(t.ops as usize),
            format
        )?;
        writeln!(out, "Sizes: {exact}")?;
        if let Some(r) = report.replays.first() {
            writeln!(out, "Target: {}", r.layout)?;
        } else if let Some(s) = report.sizes.first() {
            writeln!(out, "Target: {}", s.result.layout)?;
        }
        writeln!(out)?;
        if !report.replays.is_empty() {
            write_replays(out, &report.replays)?;
        }
        if !report.sizes.is_empty() {
            if !report.replays.is_empty() {
                writeln!(out)?;
            }
            write_sizes(out, &report.sizes, &report.command)?;
        }
        let c = &t.counts;
        if c.unknown_frees + c.device_failures + c.reused_addresses + c.skipped_lines > 0 {
            writeln!(
                out,
                "Trace: {} of unknown addresses or ids skipped, {} that failed on the device not replayed, {} handed out twice, {} skipped",
                count(c.unknown_frees, "free", "frees"),
                count(c.device_failures, "allocation", "allocations"),
                count(c.reused_addresses, "address", "addresses"),
                count(c.skipped_lines, "line", "lines")
            )?;
        }
        for w in t.warnings.iter().take(5) {
            writeln!(out, "warning: {}:{}: {}", t.source, w.line, w.message)?;
        }
        if t.warning_count > 5 {
            writeln!(
                out,
                "… {} in all (--json lists 100)",
                count(t.warning_count, "warning", "warnings")
            )?;
        }
        for n in &report.notes {
            writeln!(out, "Note: {n}")?;
        }
        Ok(())
    }
}
