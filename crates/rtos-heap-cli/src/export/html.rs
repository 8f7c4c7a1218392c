//! `--report out.html`: one self-contained page (no external files, fonts or scripts) with an SVG
//! heap map per scheme and moment (final state; peak use or first failure) and SVG time series of
//! free bytes, largest free block and minimum ever free.
//!
//! The SVG is written by hand: the pictures are rectangles and polylines, and a plotting crate
//! would add a font stack and many dependencies for nothing the page needs.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{Exporter, count, thousands};
use crate::replay::{HeapMap, ReplayResult};
use crate::report::Report;

/// HTML report exporter.
pub struct Html;

const W: f64 = 960.0;

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Colour of an allocated block by age: old blocks blue, young ones red.
fn age_colour(born: Option<u64>, now: u64) -> String {
    match born {
        None => UNKNOWN_AGE.into(),
        Some(b) => {
            let t = if now == 0 {
                0.0
            } else {
                (b as f64 / now as f64).clamp(0.0, 1.0)
            };
            let hue = 220.0 - 220.0 * t;
            format!("hsl({hue:.0},70%,50%)")
        }
    }
}

/// One rectangle of a heap map.
pub(crate) struct MapRect {
    /// Region index (one row per region).
    pub region: usize,
    /// Offset from the region's start.
    pub offset: usize,
    /// Bytes.
    pub size: usize,
    /// CSS class (`alloc`, `free`, …: the page's checks count them).
    pub class: &'static str,
    /// Fill colour.
    pub fill: String,
    /// Tooltip.
    pub title: String,
}

/// An SVG heap map: one row per region (`regions` holds their lengths), each block a rectangle
/// along the address axis.
pub(crate) fn map_svg(
    s: &mut String,
    caption: &str,
    regions: &[usize],
    rects: impl Iterator<Item = MapRect>,
    id: &str,
) {
    let row = 36.0;
    let gap = 14.0;
    let n = regions.len().max(1);
    let h = n as f64 * (row + gap) + 20.0;
    let _ = write!(
        s,
        r#"<svg class="heap-map" id="{id}" width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img"><title>{}</title>"#,
        esc(caption)
    );
    for (ri, &len) in regions.iter().enumerate() {
        let y = ri as f64 * (row + gap) + 4.0;
        let _ = write!(
            s,
            r##"<rect class="region" x="0" y="{y}" width="{W}" height="{row}" fill="#f4f4f4" stroke="#999"/><text x="2" y="{:.0}" font-size="11" fill="#333">region {ri}: 0 … {} B</text>"##,
            y + row + 11.0,
            thousands(len)
        );
    }
    for b in rects {
        let (Some(&len), y) = (regions.get(b.region), b.region as f64 * (row + gap) + 4.0) else {
            continue;
        };
        let scale = W / len.max(1) as f64;
        let x = b.offset as f64 * scale;
        let w = (b.size as f64 * scale).max(0.6);
        let _ = write!(
            s,
            r#"<rect class="{}" x="{x:.2}" y="{y}" width="{w:.2}" height="{row}" fill="{}"><title>{}</title></rect>"#,
            b.class,
            b.fill,
            esc(&b.title)
        );
    }
    s.push_str("</svg>");
}

fn heap_map(s: &mut String, r: &ReplayResult, m: &HeapMap, id: &str) {
    let rects = m.blocks.iter().map(|b| MapRect {
        region: b.region,
        offset: b.offset,
        size: b.size,
        class: if b.allocated { "alloc" } else { "free" },
        fill: if b.allocated {
            age_colour(b.born, m.op)
        } else {
            FREE.into()
        },
        title: match (b.allocated, b.born, b.line) {
            (true, Some(born), Some(line)) => format!(
                "{} B at offset {}: allocated at trace line {} (operation {}), {} old",
                thousands(b.size),
                thousands(b.offset),
                thousands(line as usize),
                thousands(born as usize),
                count(m.op.saturating_sub(born), "operation", "operations")
            ),
            (true, _, _) => format!(
                "{} B at offset {}: allocated (origin unknown)",
                thousands(b.size),
                thousands(b.offset)
            ),
            (false, _, _) => format!(
                "{} B at offset {}: free",
                thousands(b.size),
                thousands(b.offset)
            ),
        },
    });
    let caption = format!(
        "{} heap map ({}), after operation {}",
        r.scheme, m.label, m.op
    );
    map_svg(s, &caption, &r.regions, rects, id);
}

/// Zoom and pan of the heap maps, then the page's own checks of what the browser laid out (read
/// by the headless test, tests/report.rs, as `data-*` attributes of `<body>`).
const SCRIPT: &str = r#"<script>
function view(svg){return svg.getAttribute('viewBox').split(' ').map(Number);}
function setView(svg,x,w){var v=view(svg),W=+svg.dataset.w;w=Math.min(W,Math.max(W/4096,w));x=Math.min(W-w,Math.max(0,x));svg.setAttribute('viewBox',x+' 0 '+w+' '+v[3]);}
function zoom(svg,f,at){var v=view(svg),p=v[0]+v[2]*at;setView(svg,p-(p-v[0])*f,v[2]*f);}
document.querySelectorAll('svg.heap-map').forEach(function(svg){
  svg.dataset.w=view(svg)[2];svg.setAttribute('preserveAspectRatio','none');svg.style.cursor='grab';
  svg.addEventListener('wheel',function(e){e.preventDefault();var b=svg.getBoundingClientRect();zoom(svg,e.deltaY<0?0.8:1.25,(e.clientX-b.left)/b.width);});
  var drag=null;
  svg.addEventListener('mousedown',function(e){drag={x:e.clientX,v:view(svg)};});
  window.addEventListener('mouseup',function(){drag=null;});
  svg.addEventListener('mousemove',function(e){if(!drag)return;var b=svg.getBoundingClientRect();setView(svg,drag.v[0]-(e.clientX-drag.x)*drag.v[2]/b.width,drag.v[2]);});
  svg.addEventListener('dblclick',function(){setView(svg,0,+svg.dataset.w);});
});
(function(){
  var d=document.body.dataset,q=function(s){return document.querySelectorAll(s);};
  d.maps=q('svg.heap-map').length;
  d.blocks=q('svg.heap-map rect.alloc').length;
  d.lines=q('svg.series polyline').length;
  var m=document.querySelector('svg.heap-map');d.mapWidth=m?Math.round(m.getBoundingClientRect().width):0;
  var legend=true;
  q('svg.heap-map rect.alloc').forEach(function(r){var f=r.getAttribute('fill');if(!(f.indexOf('hsl(')==0||f=='#8e6c8a'))legend=false;});
  q('svg.heap-map rect.free').forEach(function(r){if(r.getAttribute('fill')!='#d9d9d9')legend=false;});
  d.legendOk=legend?1:0;
  var tips=true;
  q('svg.heap-map rect.alloc, svg.heap-map rect.free').forEach(function(r){var t=r.querySelector('title');if(!t||t.textContent.indexOf(' at offset ')<0)tips=false;});
  d.tooltipsOk=tips?1:0;
  d.tracedBlocks=Array.prototype.filter.call(q('svg.heap-map rect.alloc title'),function(t){return t.textContent.indexOf('trace line')>=0;}).length;
  d.failMarks=q('svg.series line.fail-mark').length;
  var inside=true;
  q('svg.series polyline').forEach(function(p){var h=+p.ownerSVGElement.getAttribute('height');p.getAttribute('points').split(' ').forEach(function(xy){var y=+xy.split(',')[1];if(!(y>=0&&y<=h))inside=false;});});
  d.seriesInside=inside?1:0;
  var z=0;
  if(m){var w0=view(m)[2];zoom(m,0.5,0.5);var w1=view(m)[2];m.dispatchEvent(new MouseEvent('dblclick'));z=(w1<w0&&view(m)[2]==w0)?1:0;}
  d.zoomOk=z;
})();
</script></body></html>"#;

/// Fill of a free block.
const FREE: &str = "#d9d9d9";
/// Fill of an allocated block whose allocation is not known.
const UNKNOWN_AGE: &str = "#8e6c8a";

/// The start of a page: doctype, title, the report's style sheet, `<body>`.
pub(crate) fn page_head(title: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{}</title><style>
body{{font-family:system-ui,sans-serif;margin:20px;color:#222;max-width:1000px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}h2{{margin-top:28px}}h3{{margin:18px 0 4px}}
.legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}
.note{{color:#555;font-size:90%}}
</style></head><body>"#,
        esc(title)
    )
}

/// Which value of a sample a line plots.
type Field = fn(&crate::replay::Sample) -> usize;

/// The value range the time series show: that of the run after start-up (the first 2 % of the
/// operations, where the heap fills from empty), with a little room, so that the steady state
/// uses the chart's height instead of a flat line under the start-up spike. Values outside are
/// drawn at the edge.
fn series_range(r: &ReplayResult) -> (f64, f64) {
    let last = r.series.last().map_or(0, |p| p.op);
    let steady: Vec<&crate::replay::Sample> =
        r.series.iter().filter(|p| p.op * 50 >= last).collect();
    let pick = if steady.len() >= 2 {
        steady
    } else {
        r.series.iter().collect()
    };
    let vals = pick.iter().flat_map(|p| [p.free, p.largest, p.min_ever]);
    let (lo, hi) = vals.fold((usize::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, r.capacity.max(1) as f64);
    }
    let pad = ((hi - lo) as f64 * 0.08).max(64.0);
    ((lo as f64 - pad).max(0.0), hi as f64 + pad)
}

fn series(s: &mut String, r: &ReplayResult, id: &str) {
    let (h, left, bottom, top) = (240.0, 70.0, 26.0, 10.0);
    let last = r.series.last().map_or(1, |p| p.op.max(1)) as f64;
    let (ymin, ymax) = series_range(r);
    let px = |op: u64| left + (W - left - 10.0) * (op as f64 / last).min(1.0);
    let py = |v: usize| {
        let t = ((v as f64 - ymin) / (ymax - ymin)).clamp(0.0, 1.0);
        top + (h - top - bottom) * (1.0 - t)
    };
    let _ = write!(
        s,
        r#"<svg class="series" id="{id}" width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img" data-ymin="{ymin:.0}" data-ymax="{ymax:.0}"><title>{} free bytes over time (the axis spans the run after start-up; values beyond are drawn at the edge)</title>"#,
        r.scheme
    );
    // Axes and grid.
    for k in 0..=4 {
        let v = (ymin + (ymax - ymin) * k as f64 / 4.0) as usize;
        let y = py(v);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.0}" y="{:.1}" font-size="11" text-anchor="end" fill="#333">{}</text>"##,
            W - 10.0,
            left - 4.0,
            y + 4.0,
            thousands(v)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{left}" x2="{left}" y1="{top}" y2="{:.0}" stroke="#666"/><line x1="{left}" x2="{:.0}" y1="{:.0}" y2="{:.0}" stroke="#666"/><text x="{:.0}" y="{:.0}" font-size="11" text-anchor="end" fill="#333">operation {}</text>"##,
        h - bottom,
        W - 10.0,
        h - bottom,
        h - bottom,
        W - 10.0,
        h - 6.0,
        thousands(last as usize)
    );
    let lines: [(&str, &str, Field); 3] = [
        ("free bytes", "#2a9d55", |p| p.free),
        ("largest free block", "#2b6cb0", |p| p.largest),
        ("minimum ever free", "#c53030", |p| p.min_ever),
    ];
    for (i, (name, colour, f)) in lines.iter().enumerate() {
        let pts: Vec<String> = r
            .series
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.op), py(f(p))))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="line" fill="none" stroke="{colour}" stroke-width="1.5" points="{}"><title>{name}</title></polyline>"#,
            pts.join(" ")
        );
        let lx = left + 10.0 + 170.0 * i as f64;
        let _ = write!(
            s,
            r##"<rect x="{lx}" y="{top}" width="12" height="4" fill="{colour}"/><text x="{:.0}" y="{:.0}" font-size="11" fill="#333">{name}</text>"##,
            lx + 16.0,
            top + 6.0
        );
    }
    // Failed allocations: a red tick each on the time axis.
    for f in &r.failures {
        let x = px(f.op);
        let _ = write!(
            s,
            r##"<line class="fail-mark" x1="{x:.1}" x2="{x:.1}" y1="{:.0}" y2="{:.0}" stroke="#d00" stroke-width="1.5"><title>allocation of {} failed at trace line {} (operation {})</title></line>"##,
            h - bottom - 8.0,
            h - bottom + 4.0,
            count(f.size, "byte", "bytes"),
            thousands(f.line as usize),
            thousands(f.op as usize)
        );
    }
    s.push_str("</svg>");
}

fn summary_rows(s: &mut String, report: &Report) {
    s.push_str("<table><tr><th>scheme</th><th>heap bytes</th><th>allocations</th><th>peak used</th><th>min ever free</th><th>largest free (end)</th><th>fragmentation end / max</th></tr>");
    for r in &report.replays {
        let res = match &r.first_failure {
            None => "ok".to_string(),
            Some(f) => format!(
                "{} failed (first: line {})",
                thousands(r.failed_allocs as usize),
                f.line
            ),
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} % / {:.1} %</td></tr>",
            r.scheme,
            thousands(r.heap_size),
            esc(&res),
            thousands(r.peak_used),
            thousands(r.min_ever_free),
            thousands(r.largest_free_end),
            r.fragmentation_end * 100.0,
            r.max_fragmentation * 100.0
        );
    }
    s.push_str("</table>");
}

fn size_rows(s: &mut String, report: &Report) {
    s.push_str("<h2>Heap size</h2><table><tr><th>scheme</th><th>minimum heap</th><th>every size from</th><th>configTOTAL_HEAP_SIZE</th><th>sizes above the minimum that fail</th><th>not replayed (budget)</th></tr>");
    let list = |v: &[crate::size::SizeRange]| {
        if v.is_empty() {
            return "none".to_string();
        }
        let mut parts: Vec<String> = v
            .iter()
            .take(8)
            .map(|x| {
                if x.from == x.to {
                    thousands(x.from)
                } else {
                    format!("{}–{}", thousands(x.from), thousands(x.to))
                }
            })
            .collect();
        if v.len() > 8 {
            parts.push(format!("… {} ranges in all", v.len()));
        }
        parts.join(", ")
    };
    for e in &report.sizes {
        let r = &e.result;
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.scheme,
            esc(&super::table::min_cell(r)),
            r.all_succeed_from.map_or("-".into(), thousands),
            e.recommended.map_or("-".into(), thousands),
            list(&r.failing_above_minimum),
            list(&r.untested)
        );
    }
    s.push_str("</table>");
}

impl Exporter for Html {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut s = String::new();
        let t = &report.trace;
        s.push_str(&page_head(&format!(
            "rtos-heap {} — {}",
            report.command, t.source
        )));
        let _ = write!(
            s,
            "<h1>rtos-heap {}</h1><p>{} — {} operations{}</p>",
            esc(&report.command),
            esc(&t.source),
            thousands(t.ops as usize),
            report.replays.first().map_or(String::new(), |r| format!(
                "; target: {}",
                esc(&r.layout.to_string())
            ))
        );
        if !report.replays.is_empty() {
            summary_rows(&mut s, report);
        }
        if !report.sizes.is_empty() {
            size_rows(&mut s, report);
        }
        for n in &report.notes {
            let _ = write!(s, r#"<p class="note">{}</p>"#, esc(n));
        }
        let _ = write!(
            s,
            r##"<p class="legend">Heap maps: each block along the address axis, coloured by the age of its allocation: <span style="width:120px;background:linear-gradient(to right,hsl(220,70%,50%),hsl(110,70%,50%),hsl(0,70%,50%))"></span> allocated at the start … just before the map<span style="background:{UNKNOWN_AGE}"></span>allocated, origin unknown<span style="background:{FREE}"></span>free. Hover a block for its offset, size, allocation line and age; scroll on a map to zoom, drag to pan, double-click to reset. Red ticks on a time axis: failed allocations.</p>"##
        );
        for r in &report.replays {
            let _ = write!(
                s,
                r#"<section class="scheme" id="{}"><h2>{}</h2>"#,
                r.scheme.c_name(),
                r.scheme
            );
            // heap_3 has no blocks of its own to draw.
            let maps: Vec<&HeapMap> = r.maps.iter().filter(|m| !m.blocks.is_empty()).collect();
            if maps.is_empty() {
                s.push_str(if r.scheme == crate::layout::Scheme::Heap3 {
                    r#"<p class="note">No heap map: heap_3 hands the blocks to the C library.</p>"#
                } else {
                    r#"<p class="note">No heap map: the heap was never laid out.</p>"#
                });
            }
            for (i, m) in maps.into_iter().enumerate() {
                let _ = write!(
                    s,
                    "<h3>Heap map: {} (trace line {}, operation {})</h3>",
                    esc(&m.label),
                    thousands(m.line as usize),
                    thousands(m.op as usize + 1)
                );
                heap_map(&mut s, r, m, &format!("map-{}-{i}", r.scheme.c_name()));
            }
            s.push_str("<h3>Free bytes, largest free block and minimum ever free</h3>");
            series(&mut s, r, &format!("series-{}", r.scheme.c_name()));
            s.push_str("</section>");
        }
        s.push_str(SCRIPT);
        out.write_all(s.as_bytes())
    }
}
