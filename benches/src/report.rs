//! Turns `results/*.json` into the tables of `docs/BENCHMARKS.md` and the ladder charts.
//!
//! The document is hand-written prose with generated sections between
//! `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; only those are replaced, so the
//! prose survives a regeneration.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::results::{
    self, CodeSizeRow, CpuTimeRow, EfficiencyRow, IndexWorkRow, Instructions, LatencyRow, Machine,
    MemoryRow, OutcomeRow,
};
use crate::subjects::Kind;
use crate::svg::{LogLogChart, Series};
use crate::{MAIN_WORKLOADS, POOL_WORKLOADS, ladder_names};
use rtos_heap_workloads::LADDER_HOLES;

/// The reference efficiency of FreeRTOS heap_4.
pub const C_HEAP4_EFFICIENCY: f64 = 0.935;

/// Replaces the generated section `name` of `doc` with `body`.
///
/// # Errors
/// If the section's markers are missing.
pub fn replace_section(doc: &str, name: &str, body: &str) -> Result<String> {
    let open = format!("<!-- generated:{name} -->");
    let close = format!("<!-- /generated:{name} -->");
    let a = doc
        .find(&open)
        .with_context(|| format!("marker {open} missing"))?;
    let b = doc
        .find(&close)
        .with_context(|| format!("marker {close} missing"))?;
    if b < a {
        bail!("markers of {name} out of order");
    }
    Ok(format!("{}{open}\n{body}{}", &doc[..a], &doc[b..]))
}

fn kinds() -> impl Iterator<Item = Kind> {
    Kind::measured()
}

/// The Rust allocators, `Heap4` without its bad-free checks and FreeRTOS's C heaps (the tables
/// of instruction counts).
fn kinds_and_c() -> impl Iterator<Item = Kind> {
    Kind::measured()
        .chain([Kind::Heap4Trusted])
        .chain(Kind::C_HEAPS)
}

/// The rows of the pool table: the pools, then rtos-heap's and FreeRTOS's heap_4 on the same
/// patterns.
const POOL_ROWS: [Kind; 8] = [
    Kind::Pool,
    Kind::HeaplessPool,
    Kind::Heap4C,
    Kind::Heap4Trusted,
    Kind::Heap4TreeC,
    Kind::Heap4HybridC,
    Kind::CHeap4,
    Kind::CHeap4Asserts,
];

/// rtos-heap's heaps compared with FreeRTOS's (asserts off) in the ratio table: (ours, C).
const VS_C: [(Kind, Kind); 7] = [
    (Kind::Heap4C, Kind::CHeap4),
    (Kind::Heap4Trusted, Kind::CHeap4),
    (Kind::Heap4, Kind::CHeap4),
    (Kind::Heap4TreeC, Kind::CHeap4),
    (Kind::Heap4HybridC, Kind::CHeap4),
    (Kind::Heap2, Kind::CHeap2),
    (Kind::Heap2Tree, Kind::CHeap2),
];

fn fmt_num(v: f64) -> String {
    let r = v.round();
    if r.abs() >= 1000.0 {
        let s = format!("{}", r as i64);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v.abs() >= 100.0 {
        format!("{r}")
    } else {
        format!("{v:.1}")
    }
}

fn header(cols: &[String]) -> String {
    let mut s = format!("| allocator | {} |\n|---|", cols.join(" | "));
    for _ in cols {
        s.push_str("---:|");
    }
    s.push('\n');
    s
}

/// A results row of one allocator on one workload.
trait Keyed {
    fn alloc(&self) -> &str;
    fn workload(&self) -> &str;
}

macro_rules! keyed {
    ($($t:ty),*) => {$(
        impl Keyed for $t {
            fn alloc(&self) -> &str {
                &self.alloc
            }
            fn workload(&self) -> &str {
                &self.workload
            }
        }
    )*};
}

keyed!(Instructions, CpuTimeRow, OutcomeRow);

/// A table with one line per allocator of `kinds` and one group of `width` cells per workload of
/// `workloads`: `cells` formats the row of that allocator on that workload, `–` where there is
/// none.
fn grid<R: Keyed, W: AsRef<str>>(
    cols: &[String],
    kinds: impl IntoIterator<Item = Kind>,
    workloads: &[W],
    rows: &[R],
    width: usize,
    cells: impl Fn(&R) -> String,
) -> String {
    let missing = vec!["–"; width].join(" | ");
    let mut s = header(cols);
    for k in kinds {
        let line: Vec<String> = workloads
            .iter()
            .map(|w| {
                rows.iter()
                    .find(|r| r.alloc() == k.name() && r.workload() == w.as_ref())
                    .map_or_else(|| missing.clone(), &cells)
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", k.label(), line.join(" | "));
    }
    s
}

fn instructions_table(rows: &[Instructions]) -> String {
    let cols: Vec<String> = MAIN_WORKLOADS.iter().map(|w| format!("`{w}`")).collect();
    grid(&cols, kinds_and_c(), &MAIN_WORKLOADS, rows, 1, |r| {
        fmt_num(r.per_op)
    })
}

/// A ratio with two significant decimals, or four below 0.1 (the tree on `fragmented`).
fn ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("{r:.4}")
    }
}

/// Ours / C (asserts off) on every workload measured for both: the table that says where
/// rtos-heap is cheaper than the C original and by how much.
fn vs_c_table(rows: &[Instructions]) -> String {
    let get = |k: Kind, w: &str| {
        rows.iter()
            .find(|r| r.alloc == k.name() && r.workload == w)
            .map(|r| r.per_op)
    };
    let workloads: Vec<String> = MAIN_WORKLOADS
        .iter()
        .map(|w| w.to_string())
        .chain(POOL_WORKLOADS.iter().map(|w| w.to_string()))
        .chain(ladder_names())
        .collect();
    let mut s = String::from("| rtos-heap | vs |");
    for w in &workloads {
        let _ = write!(s, " `{w}` |");
    }
    s.push_str("\n|---|---|");
    for _ in &workloads {
        s.push_str("---:|");
    }
    s.push('\n');
    for (ours, c) in VS_C {
        let cells: Vec<String> = workloads
            .iter()
            .map(|w| match (get(ours, w), get(c, w)) {
                (Some(a), Some(b)) if b > 0.0 => ratio(a / b),
                _ => "–".into(),
            })
            .collect();
        if cells.iter().all(|c| c == "–") {
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            ours.label(),
            c.label(),
            cells.join(" | ")
        );
    }
    s
}

fn pool_table(rows: &[Instructions]) -> String {
    let cols: Vec<String> = POOL_WORKLOADS.iter().map(|w| format!("`{w}`")).collect();
    grid(&cols, POOL_ROWS, &POOL_WORKLOADS, rows, 1, |r| {
        format!(
            "{} ({} / {})",
            fmt_num(r.per_op),
            fmt_num(r.per_alloc),
            fmt_num(r.per_free)
        )
    })
}

fn split_table(rows: &[Instructions]) -> String {
    let cols: Vec<String> = MAIN_WORKLOADS
        .iter()
        .flat_map(|w| [format!("`{w}` alloc"), format!("`{w}` free")])
        .collect();
    grid(&cols, kinds_and_c(), &MAIN_WORKLOADS, rows, 2, |r| {
        format!("{} | {}", fmt_num(r.per_alloc), fmt_num(r.per_free))
    })
}

fn ladder_table(rows: &[Instructions], worst: bool) -> String {
    let cols: Vec<String> = LADDER_HOLES.iter().map(|k| format!("K={k}")).collect();
    grid(&cols, kinds_and_c(), &ladder_names(), rows, 1, |r| {
        fmt_num(ladder_value(r, worst))
    })
}

fn ladder_value(r: &Instructions, worst: bool) -> f64 {
    match (&r.ladder_ops, worst) {
        (Some(ops), true) => ops.iter().copied().fold(f64::MIN, f64::max),
        _ => r.per_op,
    }
}

fn ladder_chart(rows: &[Instructions], worst: bool) -> String {
    let series = kinds()
        .chain([Kind::CHeap4])
        .filter(|k| *k != Kind::Heap4C)
        .map(|k| Series {
            label: k.name().to_string(),
            dashed: !k.name().starts_with("heap") && !k.name().starts_with("c-"),
            points: LADDER_HOLES
                .iter()
                .zip(ladder_names())
                .filter_map(|(&holes, w)| {
                    rows.iter()
                        .find(|r| r.alloc == k.name() && r.workload == w)
                        .map(|r| (holes as f64, ladder_value(r, worst).max(1.0)))
                })
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    LogLogChart {
        title: format!(
            "ladder: {} instructions per operation vs holes K (callgrind)",
            if worst { "worst" } else { "mean" }
        ),
        x_label: "K = number of free holes in front of the request".into(),
        y_label: "instructions per operation (log)".into(),
        series,
    }
    .render()
}

fn cpu_table(rows: &[CpuTimeRow]) -> String {
    let cols: Vec<String> = MAIN_WORKLOADS
        .iter()
        .map(|w| format!("`{w}` ns/op"))
        .collect();
    grid(&cols, kinds(), &MAIN_WORKLOADS, rows, 1, |r| {
        fmt_num(r.ns_per_op)
    })
}

fn latency_tables(rows: &[LatencyRow]) -> String {
    let mut s = String::new();
    for w in MAIN_WORKLOADS {
        let _ = writeln!(s, "`{w}` (TSC ticks per operation):\n");
        s.push_str(&header(&[
            "p50".into(),
            "p99".into(),
            "p99.9".into(),
            "max".into(),
        ]));
        for k in Kind::ALL {
            if let Some(r) = rows.iter().find(|r| r.alloc == k.name() && r.workload == w) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    k.label(),
                    r.p50,
                    r.p99,
                    r.p999,
                    r.max
                );
            }
        }
        s.push('\n');
    }
    s
}

fn outcome_table(rows: &[OutcomeRow]) -> String {
    let cols: Vec<String> = MAIN_WORKLOADS
        .iter()
        .map(|w| format!("`{w}` failed / peak live B"))
        .collect();
    grid(&cols, kinds(), &MAIN_WORKLOADS, rows, 1, |r| {
        format!("{} / {}", r.outcome.failed, r.outcome.peak_live_bytes)
    })
}

fn index_work_table(rows: &[IndexWorkRow]) -> String {
    let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    let mut s = String::from(
        "| workload | free blocks per op (mean) | log2(n + 1) (mean) | allocations: split / whole | frees: insert / merge one / merge both |\n|---|---:|---:|---|---|\n",
    );
    for r in rows {
        let w = &r.work;
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.2} | {:.0} % / {:.0} % | {:.0} % / {:.0} % / {:.0} % |",
            r.workload,
            w.mean_free_blocks,
            w.mean_log2,
            pct(w.split, w.allocs),
            pct(w.exact, w.allocs),
            pct(w.attach, w.frees),
            pct(w.merge_one, w.frees),
            pct(w.merge_two, w.frees),
        );
    }
    s
}

fn efficiency_table(rows: &[EfficiencyRow]) -> String {
    let mut s = header(&["mean".into(), "min".into(), "max".into()]);
    for k in kinds() {
        if let Some(r) = rows.iter().find(|r| r.alloc == k.name()) {
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {:.3} |",
                k.label(),
                r.mean,
                r.min,
                r.max
            );
        }
    }
    let _ = writeln!(
        s,
        "| *FreeRTOS heap_4 in C (issue's reference)* | {C_HEAP4_EFFICIENCY:.3} | | |"
    );
    s
}

fn memory_tables(rows: &[MemoryRow]) -> String {
    let mut s = String::new();
    let sizes: Vec<usize> = rows
        .first()
        .map(|r| r.footprints.iter().map(|f| f.size).collect())
        .unwrap_or_default();
    s.push_str(
        "Bytes one allocation occupies (stride between consecutive blocks), by request size:\n\n",
    );
    s.push_str(&header(
        &sizes.iter().map(|n| format!("{n} B")).collect::<Vec<_>>(),
    ));
    for k in kinds() {
        if let Some(r) = rows.iter().find(|r| r.alloc == k.name()) {
            let cells: Vec<String> = r.footprints.iter().map(|f| f.stride.to_string()).collect();
            let _ = writeln!(s, "| {} | {} |", k.label(), cells.join(" | "));
        }
    }
    s.push_str("\nFixed costs and overhead:\n\n");
    s.push_str(&header(&[
        "minimum block (B)".into(),
        "overhead of an 8-byte request (B)".into(),
        "overhead of a 100-byte request (B)".into(),
        "allocator object (B)".into(),
        "64 KiB region: largest single allocation (B)".into(),
        "region bytes not grantable (B)".into(),
    ]));
    for k in kinds() {
        if let Some(r) = rows.iter().find(|r| r.alloc == k.name()) {
            let stride = |n: usize| r.footprints.iter().find(|f| f.size == n).map(|f| f.stride);
            let over =
                |n: usize| stride(n).map_or("–".into(), |s| (s as i64 - n as i64).to_string());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                k.label(),
                stride(1).map_or("–".into(), |v| v.to_string()),
                over(8),
                over(100),
                r.control.object_bytes,
                r.control.largest_alloc,
                r.control.region - r.control.largest_alloc
            );
        }
    }
    s
}

fn codesize_table(rows: &[CodeSizeRow]) -> String {
    let mut s = header(&[
        "allocate path (B)".into(),
        "free path (B)".into(),
        "allocate + free (B)".into(),
        "functions".into(),
    ]);
    for k in kinds().chain(Kind::POOLS) {
        if let Some(r) = rows.iter().find(|r| r.alloc == k.name()) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                k.label(),
                r.alloc_bytes,
                r.free_bytes,
                r.total_bytes,
                r.functions.len()
            );
        }
    }
    s
}

fn machine_text(m: &Machine) -> String {
    format!(
        "- CPU: {} ({} logical CPUs)\n- Toolchain: {}; {}\n- Load average at the start of the run: {}\n- Date: {}\n",
        m.cpu, m.cpus, m.rustc, m.valgrind, m.load, m.date
    )
}

fn read_opt<T: serde::de::DeserializeOwned>(dir: &Path, file: &str) -> Option<T> {
    match results::read(&dir.join(file)) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("report: {e:#} (section left as it was)");
            None
        }
    }
}

/// Regenerates every generated section of `doc` and the ladder charts (`chart`, and the worst-case
/// chart beside it) from the JSON files in `dir`. A missing results file leaves its section alone.
pub fn write(dir: &Path, doc: &Path, chart: &Path) -> Result<()> {
    let mut text =
        std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    if let Some(m) = read_opt::<Machine>(dir, "machine.json") {
        text = replace_section(&text, "machine", &machine_text(&m))?;
    }
    if let Some(rows) = read_opt::<Vec<Instructions>>(dir, "instructions.json") {
        text = replace_section(&text, "instructions", &instructions_table(&rows))?;
        text = replace_section(&text, "split", &split_table(&rows))?;
        text = replace_section(&text, "pool", &pool_table(&rows))?;
        text = replace_section(&text, "vs-c", &vs_c_table(&rows))?;
        text = replace_section(&text, "ladder-mean", &ladder_table(&rows, false))?;
        text = replace_section(&text, "ladder-worst", &ladder_table(&rows, true))?;
        std::fs::write(chart, ladder_chart(&rows, false))?;
        let worst = chart.with_file_name(
            chart
                .file_stem()
                .map(|s| format!("{}-worst.svg", s.to_string_lossy()))
                .unwrap_or_else(|| "ladder-worst.svg".into()),
        );
        std::fs::write(worst, ladder_chart(&rows, true))?;
    }
    if let Some(rows) = read_opt::<Vec<CpuTimeRow>>(dir, "cpu_time.json") {
        text = replace_section(&text, "cpu", &cpu_table(&rows))?;
    }
    if let Some(rows) = read_opt::<Vec<LatencyRow>>(dir, "latency.json") {
        text = replace_section(&text, "latency", &latency_tables(&rows))?;
    }
    if let Some(rows) = read_opt::<Vec<OutcomeRow>>(dir, "outcomes.json") {
        text = replace_section(&text, "outcomes", &outcome_table(&rows))?;
    }
    if let Some(rows) = read_opt::<Vec<IndexWorkRow>>(dir, "index_work.json") {
        text = replace_section(&text, "index-work", &index_work_table(&rows))?;
    }
    if let Some(rows) = read_opt::<Vec<EfficiencyRow>>(dir, "efficiency.json") {
        text = replace_section(&text, "efficiency", &efficiency_table(&rows))?;
    }
    if let Some(rows) = read_opt::<Vec<MemoryRow>>(dir, "memory.json") {
        text = replace_section(&text, "memory", &memory_tables(&rows))?;
    }
    if let Some(rows) = read_opt::<Vec<CodeSizeRow>>(dir, "codesize.json") {
        text = replace_section(&text, "codesize", &codesize_table(&rows))?;
    }
    std::fs::write(doc, text).with_context(|| format!("writing {}", doc.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_named_section() {
        let doc = "a\n<!-- generated:x -->\nold\n<!-- /generated:x -->\nb\n<!-- generated:y -->\nkeep\n<!-- /generated:y -->\n";
        let out = replace_section(doc, "x", "new\n").unwrap();
        assert_eq!(
            out,
            "a\n<!-- generated:x -->\nnew\n<!-- /generated:x -->\nb\n<!-- generated:y -->\nkeep\n<!-- /generated:y -->\n"
        );
        assert!(replace_section(doc, "z", "").is_err());
    }

    /// A row of `alloc` on `workload`: `per` is (per op, per alloc, per free).
    fn row(alloc: &str, workload: &str, per: (f64, f64, f64)) -> Instructions {
        Instructions {
            alloc: alloc.into(),
            workload: workload.into(),
            ops: 10,
            allocs: 5,
            frees: 5,
            total: 0,
            baseline: 0,
            per_op: per.0,
            per_alloc: per.1,
            per_free: per.2,
            ladder_ops: None,
        }
    }

    #[test]
    fn grid_cells_keep_their_columns_when_a_row_is_missing() {
        let t = split_table(&[row("talc", "rtos", (1.0, 2.0, 3.0))]);
        // random (missing), rtos, fragmented (missing): two cells each.
        assert!(
            t.contains("| talc 5.1.1 | – | – | 2.0 | 3.0 | – | – |"),
            "{t}"
        );
        let header_cells = t.lines().next().unwrap().matches('|').count();
        for line in t.lines() {
            assert_eq!(line.matches('|').count(), header_cells, "{line}");
        }
    }

    #[test]
    fn numbers_are_formatted_for_tables() {
        assert_eq!(fmt_num(37_578.4), "37,578");
        assert_eq!(fmt_num(402.4), "402");
        assert_eq!(fmt_num(53.94), "53.9");
        assert_eq!(ratio(1.234), "1.23");
        assert_eq!(ratio(0.00436), "0.0044");
    }

    #[test]
    fn the_vs_c_table_divides_by_the_c_row_of_the_same_workload() {
        let rows = vec![
            row("heap4-c", "rtos", (88.0, 0.0, 0.0)),
            row("c-heap4", "rtos", (80.0, 0.0, 0.0)),
            row("heap4-c", "fragmented", (17_500.0, 0.0, 0.0)),
        ];
        let t = vs_c_table(&rows);
        let line = t
            .lines()
            .find(|l| l.starts_with("| rtos-heap Heap4 (malloc/free API)"))
            .unwrap();
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // allocator, vs, random, rtos, fragmented…: no C row on `fragmented` here.
        assert_eq!(cells[3], "–");
        assert_eq!(cells[4], "1.10");
        assert_eq!(cells[5], "–");
    }
}
