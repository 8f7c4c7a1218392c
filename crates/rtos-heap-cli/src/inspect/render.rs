//! Text and HTML renderings of an [`Inspection`] (JSON is its `serde` form).

use std::fmt::Write as _;

use super::{Inspection, Kind};
use crate::export::html::{MapRect, esc, map_svg, page_head};
use crate::export::thousands;

fn n(v: u64) -> String {
    thousands(v as usize)
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".into(), n)
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Allocated => "allocated",
        Kind::Free => "free",
        Kind::EndMarker => "end marker",
        Kind::Damaged => "DAMAGED",
    }
}

/// The terminal report: summary, statistics, findings, histogram, every block.
pub fn text(i: &Inspection) -> String {
    let mut s = String::new();
    let w = &i.walk;
    let _ = writeln!(
        s,
        "{} image ({} layout), {}; offsets from {:#x}",
        i.scheme,
        match i.flavour {
            super::Flavour::C => "FreeRTOS C",
            super::Flavour::RtosHeap => "rtos-heap",
        },
        i.layout,
        i.origin
    );
    for (k, (addr, len)) in i.regions.iter().enumerate() {
        let _ = writeln!(s, "  region {k}: {addr:#x}, {} bytes", n(*len));
    }
    let _ = writeln!(s, "free list followed from {}", w.head_source);
    let _ = writeln!(s);
    let st = &i.stats;
    let rows: [(&str, String); 9] = [
        ("xPortGetFreeHeapSize", n(st.xPortGetFreeHeapSize)),
        (
            "xPortGetMinimumEverFreeHeapSize",
            opt(st.xPortGetMinimumEverFreeHeapSize),
        ),
        (
            "xAvailableHeapSpaceInBytes",
            n(st.xAvailableHeapSpaceInBytes),
        ),
        (
            "xSizeOfLargestFreeBlockInBytes",
            n(st.xSizeOfLargestFreeBlockInBytes),
        ),
        (
            "xSizeOfSmallestFreeBlockInBytes",
            n(st.xSizeOfSmallestFreeBlockInBytes),
        ),
        ("xNumberOfFreeBlocks", n(st.xNumberOfFreeBlocks)),
        (
            "xMinimumEverFreeBytesRemaining",
            opt(st.xMinimumEverFreeBytesRemaining),
        ),
        (
            "xNumberOfSuccessfulAllocations",
            opt(st.xNumberOfSuccessfulAllocations),
        ),
        ("xNumberOfSuccessfulFrees", opt(st.xNumberOfSuccessfulFrees)),
    ];
    let _ = writeln!(s, "Statistics (as vPortGetHeapStats would report them)");
    for (k, v) in rows {
        let _ = writeln!(s, "  {k:<33} {v:>12}");
    }
    let _ = writeln!(s, "  counters from: {}", i.counters_from);
    let allocated = w
        .blocks
        .iter()
        .filter(|b| b.kind == Kind::Allocated)
        .count();
    let _ = writeln!(
        s,
        "\n{} allocated blocks ({} bytes, headers included), {} free blocks ({} bytes); fragmentation {:.1} %",
        n(allocated as u64),
        n(i.used_bytes),
        n(w.blocks.iter().filter(|b| b.kind == Kind::Free).count() as u64),
        n(w.free_bytes),
        i.fragmentation * 100.0
    );
    let _ = writeln!(
        s,
        "largest request that succeeds now: pvPortMalloc({}) (the largest free block, {} bytes, less the {}-byte header)",
        n(i.largest_request),
        n(w.largest),
        i.layout.header()
    );
    if let Some(t) = &i.trace {
        let _ = writeln!(
            s,
            "trace: the image is the heap after {} operations of the trace ({} prefix(es) give these blocks); {} allocation(s) failed on the way",
            n(t.ops),
            n(t.match_count),
            n(t.failed)
        );
    }
    let _ = writeln!(s);
    if w.findings.is_empty() {
        let _ = writeln!(
            s,
            "No damage: every header checks out, the free list reaches every free block in address order, and no two free blocks are neighbours."
        );
    } else {
        let _ = writeln!(s, "DAMAGE: {} finding(s)", w.findings.len());
        for f in &w.findings {
            let _ = writeln!(
                s,
                "  offset {:>8} ({:#x}) {:<20} {}",
                n(f.offset),
                f.address,
                serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                f.message
            );
        }
    }
    let _ = writeln!(s, "\nBlock sizes");
    let _ = writeln!(s, "  {:>17} {:>10} {:>6}", "bytes", "allocated", "free");
    for b in &i.histogram {
        let _ = writeln!(
            s,
            "  {:>17} {:>10} {:>6}",
            format!("{}–{}", n(b.from), n(b.to)),
            b.allocated,
            b.free
        );
    }
    let _ = writeln!(s, "\nBlocks");
    let _ = writeln!(
        s,
        "  {:>8} {:>18} {:>8} {:<10} {:<6} source",
        "offset", "address", "size", "kind", "listed"
    );
    for b in &w.blocks {
        let _ = writeln!(
            s,
            "  {:>8} {:>#18x} {:>8} {:<10} {:<6} {}",
            n(b.offset),
            b.address,
            n(b.size),
            kind_name(b.kind),
            if b.listed { "yes" } else { "" },
            b.source.as_deref().unwrap_or("")
        );
    }
    s
}

/// A self-contained HTML page: the summary, the findings and a heap map of the image.
pub fn html(i: &Inspection, title: &str) -> String {
    let mut s = page_head(&format!("rtos-heap inspect — {title}"));
    let _ = write!(
        s,
        "<h1>rtos-heap inspect</h1><p>{} — {} image, {}</p>",
        esc(title),
        i.scheme,
        esc(&i.layout.to_string())
    );
    let st = &i.stats;
    let _ = write!(
        s,
        "<table><tr><th>free bytes</th><th>min ever free</th><th>largest free block</th><th>free blocks</th><th>allocated bytes</th><th>fragmentation</th><th>largest request now</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} %</td><td>{}</td></tr></table>",
        n(st.xPortGetFreeHeapSize),
        opt(st.xPortGetMinimumEverFreeHeapSize),
        n(st.xSizeOfLargestFreeBlockInBytes),
        n(st.xNumberOfFreeBlocks),
        n(i.used_bytes),
        i.fragmentation * 100.0,
        n(i.largest_request)
    );
    if i.walk.findings.is_empty() {
        s.push_str("<p>No damage found.</p>");
    } else {
        s.push_str(
            "<h2>Damage</h2><table><tr><th>offset</th><th>address</th><th>what is wrong</th></tr>",
        );
        for f in &i.walk.findings {
            let _ = write!(
                s,
                "<tr class=\"finding\"><td>{}</td><td>{:#x}</td><td>{}</td></tr>",
                n(f.offset),
                f.address,
                esc(&f.message)
            );
        }
        s.push_str("</table>");
    }
    s.push_str(r##"<p class="legend"><span style="background:#3b6fb6"></span>allocated<span style="background:#d9d9d9"></span>free<span style="background:#e53e3e"></span>damaged</p>"##);
    let a = i.layout.align as u64;
    let starts: Vec<u64> = i.regions.iter().map(|r| r.0.div_ceil(a) * a).collect();
    let lens: Vec<usize> = i
        .regions
        .iter()
        .zip(&starts)
        .map(|(r, s)| (r.1 - (s - r.0)) as usize)
        .collect();
    let rects = i
        .walk
        .blocks
        .iter()
        .filter(|b| b.kind != Kind::EndMarker)
        .map(|b| {
            let (class, fill) = match b.kind {
                Kind::Allocated => ("alloc", "#3b6fb6"),
                Kind::Free => ("free", "#d9d9d9"),
                _ => ("damaged", "#e53e3e"),
            };
            MapRect {
                region: b.region,
                offset: (b.address - starts[b.region]) as usize,
                size: b.size as usize,
                class,
                fill: fill.into(),
                title: format!(
                    "{} B {} at offset {} ({:#x}){}",
                    n(b.size),
                    kind_name(b.kind),
                    n(b.offset),
                    b.address,
                    b.source
                        .as_deref()
                        .map_or(String::new(), |src| format!(", from {src}"))
                ),
            }
        });
    s.push_str("<h2>Heap map</h2>");
    map_svg(
        &mut s,
        &format!("{} heap map of the image", i.scheme),
        &lens,
        rects,
        "map-image",
    );
    s.push_str(
        r#"<script>
document.body.dataset.maps=document.querySelectorAll('svg.heap-map').length;
document.body.dataset.blocks=document.querySelectorAll('svg.heap-map rect.alloc').length;
</script></body></html>"#,
    );
    s
}
