//! The benchmark driver. `measure` replays one workload on one allocator (the process callgrind
//! runs); every other subcommand measures one family of figures and writes it to `results/`;
//! `report` turns `results/` into the tables of `docs/BENCHMARKS.md` and the ladder chart.
//! `benches/run-all.sh` calls them all in order.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use rtos_heap_bench::callgrind;
use rtos_heap_bench::codesize::CallGraph;
use rtos_heap_bench::metrics::{self, FOOTPRINT_SIZES};
use rtos_heap_bench::replay::{
    Slots, free_all, latencies, replay_ladder_timed, replay_setup, replay_timed,
};
use rtos_heap_bench::results::{
    self, CodeSizeRow, CpuTimeRow, EfficiencyRow, IndexWorkRow, Instructions, LatencyRow, Machine,
    MemoryRow, OutcomeRow,
};
use rtos_heap_bench::subjects::Kind;
use rtos_heap_bench::{
    EFFICIENCY_SEEDS, MAIN_WORKLOADS, POOL_WORKLOADS, is_ladder, is_pool, ladder_names,
    with_subject, workload,
};
use rtos_heap_workloads::{Op, Workload};

#[derive(Parser)]
#[command(about = "rtos-heap benchmark driver", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replays one workload once on a fresh allocator: the process to run under callgrind.
    Measure {
        /// Allocator.
        alloc: Kind,
        /// Workload: random, rtos, fragmented, `ladder<K>`, `pool<32|128>-<lifo|fifo|random>`.
        workload: String,
    },
    /// Instructions per operation under callgrind for every allocator × workload.
    Callgrind {
        /// Output file.
        #[arg(long, default_value = "results/instructions.json")]
        out: PathBuf,
        /// Directory for callgrind's output files.
        #[arg(long, default_value = "results/tmp")]
        scratch: PathBuf,
        /// Workloads (default: random, rtos, fragmented and every ladder).
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<String>,
        /// Allocators (default: the family of each workload; named ones run on every workload).
        #[arg(long, value_delimiter = ',')]
        allocs: Vec<Kind>,
    },
    /// Failed allocations and peak live bytes (counting replay, with an overlap check).
    Outcomes {
        /// Output file.
        #[arg(long, default_value = "results/outcomes.json")]
        out: PathBuf,
    },
    /// What heap_4's free-block index has to do on each workload: free blocks met per
    /// operation, and the mix of splits, whole takes, insertions and merges.
    IndexWork {
        /// Output file.
        #[arg(long, default_value = "results/index_work.json")]
        out: PathBuf,
    },
    /// The efficiency ratio over the 50 seeds.
    Efficiency {
        /// Output file.
        #[arg(long, default_value = "results/efficiency.json")]
        out: PathBuf,
    },
    /// Per-operation latency percentiles with the cycle counter.
    Latency {
        /// Output file.
        #[arg(long, default_value = "results/latency.json")]
        out: PathBuf,
        /// Replays per allocator × workload (samples are pooled).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Per-allocation footprint, minimum block and control-structure bytes.
    Memory {
        /// Output file.
        #[arg(long, default_value = "results/memory.json")]
        out: PathBuf,
    },
    /// Machine-code bytes of each allocator's allocate + free path in a release binary.
    Codesize {
        /// Output file.
        #[arg(long, default_value = "results/codesize.json")]
        out: PathBuf,
        /// The binary to inspect (default: this driver).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Collects criterion's medians into CPU time per operation.
    CriterionCollect {
        /// criterion's output directory (`$CARGO_TARGET_DIR/criterion`).
        #[arg(long)]
        dir: PathBuf,
        /// Output file.
        #[arg(long, default_value = "results/cpu_time.json")]
        out: PathBuf,
    },
    /// Records the machine and tool versions.
    Machine {
        /// Output file.
        #[arg(long, default_value = "results/machine.json")]
        out: PathBuf,
    },
    /// Writes the tables into docs/BENCHMARKS.md and draws docs/ladder.svg from results/.
    Report {
        /// Results directory.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// The document whose generated sections are replaced.
        #[arg(long, default_value = "docs/BENCHMARKS.md")]
        doc: PathBuf,
        /// The ladder chart to write.
        #[arg(long, default_value = "docs/ladder.svg")]
        chart: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Measure { alloc, workload } => measure(alloc, &workload),
        Cmd::Callgrind {
            out,
            scratch,
            workloads,
            allocs,
        } => run_callgrind(&out, &scratch, workloads, allocs),
        Cmd::Outcomes { out } => outcomes(&out),
        Cmd::IndexWork { out } => index_work(&out),
        Cmd::Efficiency { out } => efficiency(&out),
        Cmd::Latency { out, repeat } => latency(&out, repeat),
        Cmd::Memory { out } => memory(&out),
        Cmd::Codesize { out, binary } => codesize(&out, binary),
        Cmd::CriterionCollect { dir, out } => criterion_collect(&dir, &out),
        Cmd::Machine { out } => machine(&out),
        Cmd::Report {
            results,
            doc,
            chart,
        } => rtos_heap_bench::report::write(&results, &doc, &chart),
    }
}

/// The heap size `kind` gets on workload `w`: the workload's, except for a general heap on a
/// `pool` workload, which gets room for its headers and minimum blocks (4x the pool's bytes).
fn heap_size_for(kind: Kind, w: &Workload) -> usize {
    if is_pool(&w.name) && !kind.is_pool() {
        4 * w.heap_size
    } else {
        w.heap_size
    }
}

fn measure(alloc: Kind, name: &str) -> Result<()> {
    let w = workload(name).with_context(|| format!("unknown workload {name}"))?;
    let (setup_failed, failed) = with_subject!(alloc, heap_size_for(alloc, &w), |s| {
        let mut slots = Slots::for_workload(&w);
        let sf = replay_setup(&mut s, &w.setup, &mut slots);
        let f = if is_ladder(name) {
            replay_ladder_timed(&mut s, &w.ops, &mut slots)
        } else {
            replay_timed(&mut s, &w.ops, &mut slots)
        };
        (sf, f)
    });
    println!(
        "{{\"ops\":{},\"setup_failed\":{setup_failed},\"failed\":{failed}}}",
        w.ops.len()
    );
    Ok(())
}

fn default_workloads() -> Vec<String> {
    MAIN_WORKLOADS
        .iter()
        .map(|s| s.to_string())
        .chain(ladder_names())
        .chain(POOL_WORKLOADS.iter().map(|s| s.to_string()))
        .collect()
}

/// The allocators measured on workload `name`: the pools on `pool` workloads, the general
/// allocators elsewhere.
fn kinds_for(name: &str) -> Vec<Kind> {
    if is_pool(name) {
        Kind::POOLS.to_vec()
    } else {
        Kind::measured().collect()
    }
}

/// The allocators whose instructions are counted on workload `name`: [`kinds_for`], FreeRTOS's
/// C heaps side by side (when `../shared/reference/freertos` and gcc are there), and on the
/// `pool` workloads rtos-heap's `Heap4` and C heap_4 too (a general heap on a pool's pattern).
fn counted_kinds(name: &str, c: bool) -> Vec<Kind> {
    let mut kinds = kinds_for(name);
    if is_pool(name) {
        kinds.extend([
            Kind::Heap4C,
            Kind::Heap4Trusted,
            Kind::Heap4TreeC,
            Kind::Heap4HybridC,
        ]);
        if c {
            kinds.extend([Kind::CHeap4, Kind::CHeap4Asserts]);
        }
    } else {
        kinds.extend([Kind::Heap4Trusted, Kind::Heap4Locked]);
        if c {
            kinds.extend(Kind::C_HEAPS);
        }
    }
    kinds
}

fn run_callgrind(
    out: &Path,
    scratch: &Path,
    workloads: Vec<String>,
    allocs: Vec<Kind>,
) -> Result<()> {
    let driver = std::env::current_exe()?;
    std::fs::create_dir_all(scratch)?;
    let workloads = if workloads.is_empty() {
        default_workloads()
    } else {
        workloads
    };

    let c = rtos_heap_bench::subjects::c_available(4096);
    if !c {
        eprintln!(
            "callgrind: FreeRTOS's C heaps cannot be built ({} and gcc are needed): no C rows",
            rtos_heap_bench::freertos::reference_dir().display()
        );
    }
    // Keep rows of other workloads/allocators from an earlier run.
    let mut rows: Vec<Instructions> = results::read(out).unwrap_or_default();
    for name in &workloads {
        let w = workload(name).with_context(|| format!("unknown workload {name}"))?;
        let n_alloc = w
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Alloc { .. }))
            .count();
        let n_free = w.ops.len() - n_alloc;
        // Allocators named with `--allocs` run on any workload; by default each workload gets
        // its family and the C heaps.
        let kinds: Vec<Kind> = if allocs.is_empty() {
            counted_kinds(name, c)
        } else {
            allocs.clone()
        };
        // The C libraries are compiled before the runs (never under callgrind).
        for k in &kinds {
            if let Some(b) = k.c_build() {
                rtos_heap_bench::freertos::library(b, heap_size_for(*k, &w))?;
            }
        }
        if kinds.is_empty() {
            continue;
        }
        let base = callgrind::run(&driver, "noop", name, scratch)?;
        eprintln!("callgrind {name}: baseline {} instructions", base.total);
        for k in kinds {
            let r = callgrind::run(&driver, k.name(), name, scratch)?;
            let per = |a: u64, b: u64, n: usize| (a as f64 - b as f64) / n.max(1) as f64;
            let ladder_ops = is_ladder(name).then(|| {
                let rounds = w.ops.len() / 4;
                core::array::from_fn(|i| per(r.ladder[i], base.ladder[i], rounds))
            });
            let row = Instructions {
                alloc: k.name().into(),
                workload: name.clone(),
                ops: w.ops.len(),
                allocs: n_alloc,
                frees: n_free,
                total: r.total,
                baseline: base.total,
                per_op: per(r.total, base.total, w.ops.len()),
                per_alloc: per(r.alloc, base.alloc, n_alloc),
                per_free: per(r.free, base.free, n_free),
                ladder_ops,
            };
            eprintln!("  {:<12} {:>10.1} instr/op", k.name(), row.per_op);
            rows.retain(|x| !(x.alloc == row.alloc && x.workload == row.workload));
            rows.push(row);
        }
    }
    results::write(out, &rows)
}

fn outcomes(out: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for name in default_workloads() {
        let heap_size = workload(&name).context("workload")?.heap_size;
        for k in kinds_for(&name) {
            let outcome = metrics::outcome(k, &name);
            rows.push(OutcomeRow {
                alloc: k.name().into(),
                workload: name.clone(),
                heap_size,
                outcome,
            });
        }
    }
    results::write(out, &rows)
}

fn index_work(out: &Path) -> Result<()> {
    let rows: Vec<IndexWorkRow> = MAIN_WORKLOADS
        .iter()
        .map(|w| IndexWorkRow {
            workload: (*w).into(),
            work: metrics::index_work(w),
        })
        .collect();
    for r in &rows {
        eprintln!("index-work {}: {:?}", r.workload, r.work);
    }
    results::write(out, &rows)
}

fn efficiency(out: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for k in Kind::measured() {
        let ratios: Vec<Option<f64>> = EFFICIENCY_SEEDS
            .map(|s| metrics::efficiency(k, s))
            .collect();
        let got: Vec<f64> = ratios.iter().flatten().copied().collect();
        if got.is_empty() {
            bail!("{}: no efficiency seed ever failed", k.name());
        }
        let mean = got.iter().sum::<f64>() / got.len() as f64;
        let min = got.iter().copied().fold(f64::MAX, f64::min);
        let max = got.iter().copied().fold(f64::MIN, f64::max);
        eprintln!(
            "efficiency {:<12} mean {mean:.4} min {min:.4} max {max:.4}",
            k.name()
        );
        rows.push(EfficiencyRow {
            alloc: k.name().into(),
            ratios,
            mean,
            min,
            max,
        });
    }
    results::write(out, &rows)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latency(out: &Path, repeat: usize) -> Result<()> {
    let mut rows = Vec::new();
    for name in MAIN_WORKLOADS.into_iter().chain(POOL_WORKLOADS) {
        let w = workload(name).context("workload")?;
        for k in std::iter::once(Kind::Noop).chain(kinds_for(name)) {
            let mut all = Vec::new();
            for _ in 0..repeat.max(1) {
                let samples = with_subject!(k, w.heap_size, |s| {
                    let mut slots = Slots::for_workload(&w);
                    replay_setup(&mut s, &w.setup, &mut slots);
                    let l = latencies(&mut s, &w.ops, &mut slots);
                    // The heapless pool is a process-wide singleton: give every block back.
                    free_all(&mut s, &mut slots);
                    l
                });
                let Some(samples) = samples else {
                    eprintln!("no cycle counter on this machine: latency skipped");
                    return Ok(());
                };
                all.extend(samples);
            }
            all.sort_unstable();
            let row = LatencyRow {
                alloc: k.name().into(),
                workload: name.into(),
                samples: all.len(),
                p50: percentile(&all, 50.0),
                p99: percentile(&all, 99.0),
                p999: percentile(&all, 99.9),
                max: all.last().copied().unwrap_or(0),
            };
            eprintln!(
                "latency {name:<10} {:<12} p50 {} p99 {} p99.9 {} max {}",
                row.alloc, row.p50, row.p99, row.p999, row.max
            );
            rows.push(row);
        }
    }
    results::write(out, &rows)
}

fn memory(out: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for k in Kind::measured() {
        let footprints = FOOTPRINT_SIZES
            .iter()
            .map(|&s| metrics::footprint(k, s))
            .collect();
        let control = metrics::control(k, metrics::FOOTPRINT_REGION);
        rows.push(MemoryRow {
            alloc: k.name().into(),
            footprints,
            control,
        });
    }
    results::write(out, &rows)
}

fn codesize(out: &Path, binary: Option<PathBuf>) -> Result<()> {
    let binary = match binary {
        Some(b) => b,
        None => std::env::current_exe()?,
    };
    let g = CallGraph::of_binary(&binary)?;
    let mut rows = Vec::new();
    for k in Kind::measured().chain(Kind::POOLS) {
        let ty = subject_type(k);
        let root = |m: &str| {
            let want = format!(
                "<rtos_heap_bench::subjects::{ty} as rtos_heap_bench::subjects::BenchAlloc>::{m}"
            );
            g.find(|n| n == want)
        };
        let (ra, rf) = (root("alloc"), root("free"));
        if ra.is_empty() || rf.is_empty() {
            bail!(
                "{}: alloc/free wrappers not found in {}",
                k.name(),
                binary.display()
            );
        }
        let a = g.reachable(&ra);
        let f = g.reachable(&rf);
        let both: std::collections::BTreeSet<u64> = a.union(&f).copied().collect();
        rows.push(CodeSizeRow {
            alloc: k.name().into(),
            alloc_bytes: g.bytes(&a),
            free_bytes: g.bytes(&f),
            total_bytes: g.bytes(&both),
            functions: g.names(&both),
        });
    }
    results::write(out, &rows)
}

/// The subject type of each allocator, as it appears in symbol names.
fn subject_type(k: Kind) -> &'static str {
    match k {
        Kind::Noop => "Noop",
        Kind::Heap4 => "Heap4Layout",
        Kind::Heap4C => "Heap4Malloc",
        Kind::Heap4Trusted => "Heap4TrustedSubject",
        Kind::Heap4Locked => "Heap4LockedSubject",
        Kind::Heap4Tree => "Heap4TreeLayout",
        Kind::Heap4TreeC => "Heap4TreeMalloc",
        Kind::Heap4HybridC => "Heap4HybridMalloc",
        Kind::Heap2 => "Heap2Layout",
        Kind::Heap2Tree => "Heap2TreeLayout",
        Kind::Heap5x1 => "Heap5x1Layout",
        Kind::Heap5x2 => "Heap5x2Layout",
        Kind::Talc => "TalcSubject",
        Kind::Rlsf => "RlsfSubject",
        Kind::LinkedList => "LinkedListSubject",
        Kind::Buddy => "BuddySubject",
        Kind::Pool => "PoolSubject",
        Kind::HeaplessPool => "HeaplessPool32",
        Kind::CHeap4 | Kind::CHeap4Asserts => "CHeap4Subject",
        Kind::CHeap2 | Kind::CHeap2Asserts => "CHeap2Subject",
    }
}

fn criterion_collect(dir: &Path, out: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for name in MAIN_WORKLOADS {
        let ops = workload(name).context("workload")?.ops.len();
        for k in Kind::measured() {
            let f = dir.join(name).join(k.name()).join("new/estimates.json");
            let Ok(v) = results::read::<serde_json::Value>(&f) else {
                eprintln!("no criterion result {}", f.display());
                continue;
            };
            let ns = v["median"]["point_estimate"]
                .as_f64()
                .with_context(|| format!("no median in {}", f.display()))?;
            rows.push(CpuTimeRow {
                alloc: k.name().into(),
                workload: name.into(),
                ns_per_op: ns / ops as f64,
            });
        }
    }
    results::write(out, &rows)
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine(out: &Path) -> Result<()> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let m = Machine {
        cpu,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        rustc: command_line("rustc", &["--version"]),
        valgrind: command_line("valgrind", &["--version"]),
        load: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string(),
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    };
    results::write(out, &m)
}
